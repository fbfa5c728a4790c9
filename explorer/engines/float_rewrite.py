"""Rewrite an int8 Kokoro ONNX export into float operations on its own dequantised weights.

The official Kokoro-82M v1.0 int8 export was made by onnxruntime's dynamic quantiser: before every convolution and
matrix product the activations are quantised at run time (``DynamicQuantizeLinear``), the product runs on integers
(``ConvInteger``, ``MatMulInteger``) and the result is scaled back to float; LSTMs run as ``DynamicQuantizeLSTM``.
This module has 2 responsibilities:

1. The rewrite (:func:`float_rewrite`): each such chain becomes one float ``Conv``/``MatMul`` (each quantised LSTM a
   float ``LSTM``) whose weights are the int8 values times their scales, ``(w - zero_point) * scale``: the same
   rounded weights, float activations, and the convolution bias in float instead of re-rounded at run time. Nodes
   and initializers nothing reads any more are dropped. Everything else in the graph is kept as it is.
2. The cached file (:func:`float_model`): the rewrite of a given int8 file is made once into ``cache_dir()`` (beside
   the offline int8 model), written atomically and recorded with its SHA-256 and the source's; a cached file that no
   longer matches its record is rebuilt, one that cannot be rebuilt is refused with ModelFilesError.

Only the ``onnx`` package is needed (imported when a rewrite runs); onnxruntime runs the result.
"""

from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.cache import Progress, cached_file_ok, file_sha256, record_cached_file
from explorer.errors import ModelFilesError
from explorer.paths import cache_dir

if TYPE_CHECKING:
    import onnx

__all__ = [
    "FLOAT_SUFFIX",
    "REWRITE_VERSION",
    "GraphIndex",
    "RewriteSummary",
    "float_model",
    "float_model_path",
    "float_rewrite",
]

REWRITE_VERSION = 1
"""Recorded beside each rewritten file: a change to the rewrite rebuilds files made by an older one."""
FLOAT_SUFFIX = "-float.onnx"
"""``kokoro-v1.0-int8.onnx`` is rewritten into ``kokoro-v1.0-int8-float.onnx``."""
INTEGER_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM")
"""The integer operations the rewrite replaces; none is left in its result."""

_REWRITE_LOCK = threading.Lock()


@dataclass(frozen=True)
class RewriteSummary:
    """What :func:`float_rewrite` changed, by operation type.

    Attributes:
        replaced: integer operations replaced, e.g. ``{"ConvInteger": 87, "MatMulInteger": 148}``.
        removed_nodes: nodes dropped in all (the replaced chains, now unused quantisers and scale products).
        float_weights: float weight tensors created (a weight shared by several operations is dequantised once).
    """

    replaced: dict[str, int]
    removed_nodes: int
    float_weights: int


class GraphIndex:
    """Index of one ONNX graph: who produces and who reads each tensor, and its constant tensors."""

    def __init__(self, graph: onnx.GraphProto):
        from onnx import numpy_helper

        self.graph = graph
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}
        self.producer = {output: node for node in graph.node for output in node.output if output}
        self.readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                if name:
                    self.readers[name].append(node)
        self._to_array = numpy_helper.to_array

    def array(self, name: str) -> np.ndarray:
        """The value of the constant tensor ``name``."""
        if name not in self.initializers:
            raise _Unexpected(f"'{name}' is not a constant")
        return self._to_array(self.initializers[name])

    def only_reader(self, name: str, op_type: str) -> onnx.NodeProto:
        """The single node reading ``name``, which must be an ``op_type``."""
        readers = self.readers.get(name, [])
        if len(readers) != 1 or readers[0].op_type != op_type:
            found = ", ".join(node.op_type for node in readers) or "nothing"
            raise _Unexpected(f"'{name}' should be read by one {op_type}, not by {found}")
        return readers[0]

    def made_by(self, name: str, op_type: str) -> onnx.NodeProto:
        """The node producing ``name``, which must be an ``op_type``."""
        node = self.producer.get(name)
        if node is None or node.op_type != op_type:
            raise _Unexpected(f"'{name}' should come from a {op_type}")
        return node


class _Unexpected(Exception):
    """The graph does not have the shape the rewrite expects at one node (turned into ModelFilesError)."""


def float_rewrite(model: onnx.ModelProto) -> RewriteSummary:
    """Rewrite ``model`` in place: integer convolutions, matrix products and LSTMs become float ones.

    Each ``DynamicQuantizeLinear -> ConvInteger|MatMulInteger [-> Add(int32 bias)] -> Cast -> Mul(scale)`` chain
    becomes ``Conv|MatMul(x, (w - w_zero_point) * w_scale [, bias])`` writing the chain's output, and each
    ``DynamicQuantizeLSTM`` an ``LSTM`` on its dequantised weights, transposed to the ONNX layout. Both orders of
    bias and scale that onnxruntime's quantiser has produced are understood.

    Args:
        model: an int8 model from onnxruntime's dynamic quantiser (e.g. the official Kokoro int8 export).

    Returns:
        What was replaced and removed.

    Raises:
        ModelFilesError: an integer operation is wired in a way the rewrite does not understand (nothing is changed
            then), or the model has no integer operation at all.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    index = GraphIndex(graph)
    replacements: dict[int, onnx.NodeProto] = {}  # id of the last node of a chain -> the float node replacing it
    new_weights: dict[str, onnx.TensorProto] = {}
    counts: dict[str, int] = defaultdict(int)

    def float_weight(name: str, values: np.ndarray) -> str:
        if name not in new_weights:
            new_weights[name] = numpy_helper.from_array(np.ascontiguousarray(values, dtype=np.float32), name)
        return name

    original = list(graph.node)  # held, so each node keeps the id the replacements are keyed by
    for node in original:
        if node.op_type not in INTEGER_OPS:
            continue
        try:
            if node.op_type == "DynamicQuantizeLSTM":
                replacements[id(node)] = _float_lstm(index, node, float_weight, helper)
            else:
                last, product = _float_product(index, node, float_weight, helper)
                replacements[id(last)] = product
        except _Unexpected as exc:
            raise ModelFilesError(
                f"The int8 model cannot be rewritten to float: at {node.op_type} node '{node.name}', {exc}."
            ) from None
        counts[node.op_type] += 1
    if not counts:
        raise ModelFilesError("The model has no integer convolutions or matrix products to rewrite to float.")

    nodes = [replacements.get(id(node), node) for node in original
             if id(node) in replacements or node.op_type not in INTEGER_OPS]
    nodes = _topological(_without_dead_nodes(nodes, {output.name for output in graph.output}))
    read = {name for node in nodes for name in _reads(node)} | {output.name for output in graph.output}
    kept = [tensor for tensor in graph.initializer if tensor.name in read]
    kept += [tensor for name, tensor in new_weights.items() if name in read]
    produced = {name for node in nodes for name in node.output} | {tensor.name for tensor in kept}
    value_info = [info for info in graph.value_info if info.name in produced]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    graph.value_info.extend(value_info)
    original_left = len(nodes) - len(replacements)
    return RewriteSummary(
        replaced=dict(counts), removed_nodes=len(original) - original_left, float_weights=len(new_weights)
    )


def _float_product(
    index: GraphIndex, node: onnx.NodeProto, float_weight: Callable[[str, np.ndarray], str], helper: Any
) -> tuple[onnx.NodeProto, onnx.NodeProto]:
    """Return (the chain's last node, the float Conv/MatMul replacing the chain) for one integer product."""
    quantiser = index.made_by(node.input[0], "DynamicQuantizeLinear")
    if len(node.input) > 2 and node.input[2] and node.input[2] != quantiser.output[2]:
        raise _Unexpected("its input zero point is not the one its quantiser computed")
    weight = index.array(node.input[1]).astype(np.float32)
    zero_point = index.array(node.input[3]).astype(np.float32) if len(node.input) > 3 and node.input[3] else 0.0
    after = index.readers.get(node.output[0], [])
    bias = None
    if len(after) == 1 and after[0].op_type == "Add":  # official export: int32 bias added before the scale
        bias = _float_bias(index, after[0], node.output[0])
        cast = index.only_reader(after[0].output[0], "Cast")
    else:
        cast = index.only_reader(node.output[0], "Cast")
    scale_mul = index.only_reader(cast.output[0], "Mul")
    scale_name = next(name for name in scale_mul.input if name != cast.output[0])
    scales = index.made_by(scale_name, "Mul")
    if quantiser.output[1] not in scales.input:
        raise _Unexpected("its output scale does not use the input scale of its quantiser")
    weight_scale = index.array(next(name for name in scales.input if name != quantiser.output[1])).astype(np.float32)
    if node.op_type == "ConvInteger":
        values = (weight - _per_output_channel(zero_point, weight.ndim)) * _per_output_channel(weight_scale, weight.ndim)
        inputs = [quantiser.input[0], float_weight(f"{node.input[1]}_float", values)]
        if bias is not None:
            inputs.append(float_weight(f"{bias}_float", index.array(bias)))
        product = helper.make_node("Conv", inputs, [scale_mul.output[0]], name=f"{node.name}_float")
        product.attribute.extend(node.attribute)
    else:
        if bias is not None:
            raise _Unexpected("a matrix product with an integer bias is not supported")
        values = (weight - zero_point) * weight_scale  # zero point and scale per column of [K, N], or one
        product = helper.make_node(
            "MatMul", [quantiser.input[0], float_weight(f"{node.input[1]}_float", values)], [scale_mul.output[0]],
            name=f"{node.name}_float",
        )
    return scale_mul, product


def _per_output_channel(values: np.ndarray | float, ndim: int) -> np.ndarray:
    """A convolution's zero point or scale shaped to broadcast over its weight: one value, or one per output
    channel (the weight's first axis)."""
    values = np.asarray(values, dtype=np.float32)
    return values.reshape((-1,) + (1,) * (ndim - 1)) if values.size > 1 else values.reshape(())


def _float_bias(index: GraphIndex, add: onnx.NodeProto, product_output: str) -> str:
    """Name of the float bias behind an ``Add(product, Reshape(Cast(Floor|Round(Div(bias, scale)))))``."""
    quantised = next(name for name in add.input if name != product_output)
    node = index.producer.get(quantised)
    while node is not None and node.op_type in ("Reshape", "Cast", "Floor", "Round"):
        node = index.producer.get(node.input[0])
    if node is None or node.op_type != "Div" or node.input[0] not in index.initializers:
        raise _Unexpected("its integer bias is not a float constant divided by the scale")
    return node.input[0]


def _float_lstm(
    index: GraphIndex, node: onnx.NodeProto, float_weight: Callable[[str, np.ndarray], str], helper: Any
) -> onnx.NodeProto:
    """The float LSTM replacing one DynamicQuantizeLSTM: W, R dequantised and transposed to [dirs, 4H, in]."""
    inputs = list(node.input) + [""] * (12 - len(node.input))

    def dequantised(weight: str, scale: str, zero_point: str) -> str:
        values = index.array(weight).astype(np.float32)  # [directions, inputs, 4 * hidden]
        scales = index.array(scale).astype(np.float32)
        zeros = index.array(zero_point).astype(np.float32) if zero_point else np.zeros_like(scales)
        shape = (values.shape[0], 1, -1)  # one scale per direction, or per direction and gate column
        real = (values - zeros.reshape(shape)) * scales.reshape(shape)
        return float_weight(f"{weight}_float", np.transpose(real, (0, 2, 1)))

    w = dequantised(inputs[1], inputs[8], inputs[9])
    r = dequantised(inputs[2], inputs[10], inputs[11])
    lstm = helper.make_node("LSTM", [inputs[0], w, r, *inputs[3:8]], list(node.output), name=f"{node.name}_float")
    lstm.attribute.extend(node.attribute)
    while lstm.input and not lstm.input[-1]:
        lstm.input.pop()
    return lstm


def _reads(node: onnx.NodeProto) -> set[str]:
    """Names a node reads: its inputs and, for control flow (Loop, If, Scan), those its subgraphs read."""
    names = set(node.input)
    for attribute in node.attribute:
        for subgraph in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
            for inner in subgraph.node:
                names |= _reads(inner)
    return names


def _topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Order ``nodes`` so each comes after the nodes whose outputs it reads, keeping the given order where it can
    (onnxruntime's quantiser can leave a node before the one feeding a Loop body it contains)."""
    produced_by = {name: index for index, node in enumerate(nodes) for name in node.output if name}
    waiting_on = [{produced_by[name] for name in _reads(node) if name in produced_by} - {index}
                  for index, node in enumerate(nodes)]
    readers: dict[int, list[int]] = defaultdict(list)
    for index, sources in enumerate(waiting_on):
        for source in sources:
            readers[source].append(index)
    ready = [index for index, sources in enumerate(waiting_on) if not sources]
    heapq.heapify(ready)
    ordered = []
    while ready:
        index = heapq.heappop(ready)
        ordered.append(nodes[index])
        for reader in readers[index]:
            waiting_on[reader].discard(index)
            if not waiting_on[reader]:
                heapq.heappush(ready, reader)
    if len(ordered) != len(nodes):
        raise ModelFilesError("The rewritten graph has a cycle; the int8 model is not a valid ONNX graph.")
    return ordered


def _without_dead_nodes(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """Drop, until none is left, nodes none of whose outputs is read by another node or is a graph output."""
    while True:
        read = set(outputs)
        for node in nodes:
            read |= _reads(node)
        alive = [node for node in nodes if any(name in read for name in node.output if name)]
        if len(alive) == len(nodes):
            return nodes
        nodes = alive


def float_model_path(source: Path) -> Path:
    """Where the float rewrite of ``source`` is cached: ``cache_dir()/<source stem>-float.onnx``."""
    return cache_dir() / f"{Path(source).stem}{FLOAT_SUFFIX}"


def float_model(source: Path | str, source_sha256: str | None = None, progress: Progress | None = None) -> Path:
    """Return the float rewrite of the int8 model ``source``, made once and cached.

    The rewrite is written to :func:`float_model_path` through a temporary file and a rename, with a marker that
    records its SHA-256, the source's SHA-256 and :data:`REWRITE_VERSION`. A later call reuses it when the marker
    matches (one ``stat``; the file is hashed again when its size or time changed); a file that does not match its
    marker, a missing marker, another source or an older rewrite is rebuilt.

    Args:
        source: the int8 ONNX file.
        source_sha256: its SHA-256 when already known (the offline model's is); computed otherwise.
        progress: called with (fraction done, message) while the rewrite is made.

    Returns:
        The path of the float model.

    Raises:
        ModelFilesError: the source is missing, unreadable or not rewritable, or the cache cannot be written.
    """
    report = progress or (lambda fraction, message: None)
    source = Path(source)
    if not source.is_file():
        raise ModelFilesError(f"The int8 ONNX model {source} was not found.")
    target = float_model_path(source)
    provenance = f"from:{source_sha256 or file_sha256(source)} rewrite:v{REWRITE_VERSION}"
    with _REWRITE_LOCK:
        if not cached_file_ok(target, provenance=provenance):
            report(0.0, f"Rewriting {source.name} to float operations (once)")
            data = _rewritten_bytes(source, report)
            report(0.9, f"Writing {target.name} to {target.parent}")
            try:
                record_cached_file(target, data, provenance=provenance)
            except OSError as exc:
                raise ModelFilesError(f"Cannot write the float ONNX model into {target.parent}: {exc}") from None
    report(1.0, "Float ONNX model ready")
    return target


def _rewritten_bytes(source: Path, report: Progress) -> bytes:
    """Load ``source``, rewrite it, check it and return it serialised."""
    import onnx

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own untyped errors
        raise ModelFilesError(f"{source.name} is not a readable ONNX model ({str(exc)[:200]}).") from None
    report(0.3, "Dequantising weights")
    summary = float_rewrite(model)
    report(0.7, f"Replaced {_describe(summary.replaced.items())}")
    data = model.SerializeToString()
    del model
    try:
        onnx.checker.check_model(data)
    except onnx.checker.ValidationError as exc:
        raise ModelFilesError(f"The float rewrite of {source.name} is not a valid ONNX graph: {str(exc)[:300]}") from None
    return data


def _describe(counts: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{count} {op}" for op, count in counts)
