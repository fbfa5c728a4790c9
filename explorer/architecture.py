"""Kokoro's architecture, measured on the real ``kokoro.KModel`` object rather than described from memory.

:func:`summarize` describes a model built by :func:`explorer.engines.model.build_model`: parameter counts per module
and as a tree, which modules read each half of the 256-value style vector, the data flow from tokens to audio, and
weight statistics.

Every figure comes from the model object. The style routing and the data flow come from one traced forward pass:
hooks on every module record the tensor shapes each call sees and whether its inputs carry either half of a style
vector whose two halves hold different random values, so "reads style[:128]" is observed, not assumed.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from explorer.engines.model import build_model, describe_weights
from explorer.errors import AnalysisError
from explorer.paths import CONFIG_PATH

if TYPE_CHECKING:
    from kokoro import KModel

__all__ = [
    "ArchitectureSummary",
    "BertFigures",
    "DataFlow",
    "ExpectationCheck",
    "FlowStep",
    "ModuleNode",
    "ModuleShare",
    "StyleConsumer",
    "StyleHalf",
    "WeightStats",
    "analyze_architecture",
    "module_weight_stats",
    "summarize",
]


HALF_NAMES = ("decoder", "prosody")
"""Names of the style vector's first and second half, as ``explorer.analysis.LAYERS`` uses them."""

TRACE_PHONEMES = "hI"
"""The input of the traced forward pass: short, so the pass stays cheap even when random weights stretch durations."""

TREE_ROOT = "model"
"""Path shown for the KModel itself in the module tree."""

SEED_EXPECTATIONS: tuple[tuple[str, tuple[str, ...], float, float], ...] = (
    ("BERT", ("bert",), 0.40, 0.50),
    ("Decoder", ("decoder",), 0.30, 0.40),
    ("Prosody Predictor", ("predictor",), 0.10, 0.15),
    ("Text Encoder", ("text_encoder",), 0.05, 0.10),
)
"""Parameter shares the seed analysis suite expected (label, top-level modules, low, high). Reports compare the
measured shares against these; nothing here is a measurement."""

SEED_BERT_CLAIMS: tuple[tuple[str, str, str, int | None], ...] = (
    ("vocab_size", "Vocabulary size", "configurable", None),
    ("hidden_size", "Hidden size", "768 (typical)", 768),
)
"""What the seed suite said of its BERT encoder (figure, label, the seed's words, the number they give if any).
Reports set the measured figures against these; nothing here is a measurement."""


@dataclass(frozen=True)
class ModuleShare:
    """One top-level module of KModel and its share of all parameters."""

    name: str
    module_type: str
    params: int
    share: float


@dataclass(frozen=True)
class ModuleNode:
    """One module in the tree: ``own_params`` are held directly, ``total_params`` include every descendant."""

    path: str
    module_type: str
    depth: int
    own_params: int
    total_params: int
    children: tuple[str, ...]


@dataclass(frozen=True)
class StyleConsumer:
    """A module that read one half of the style vector during the traced pass.

    ``how`` is "direct" when the module received the half itself (e.g. an AdaIN ``fc`` layer), "concatenated" when
    it received a tensor with the half appended to other features (e.g. an LSTM over ``[features, style]``).
    """

    path: str
    module_type: str
    how: str
    params: int


@dataclass(frozen=True)
class StyleHalf:
    """Where one half of the style vector goes.

    ``top_level`` are the top-level modules holding its readers; ``entry_points`` the outermost modules that
    received it; ``consumers`` the innermost ones (no child of theirs read it too), where it meets parameters.
    """

    name: str
    start: int
    stop: int
    top_level: tuple[str, ...]
    entry_points: tuple[str, ...]
    consumers: tuple[StyleConsumer, ...]

    def consumer_types(self) -> dict[str, int]:
        """Return how many innermost readers there are per ``"<type> (<how>)"``, most frequent first."""
        counts: dict[str, int] = {}
        for consumer in self.consumers:
            key = f"{consumer.module_type} ({consumer.how})"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class FlowStep:
    """One step of the traced forward pass.

    ``name`` is a module path, or "tokens", "alignment" and "audio" for the steps KModel does without a module.
    ``depth`` is 1 for modules KModel calls itself, 2 for the modules those call. ``style`` names the style half
    the step read, if any.
    """

    order: int
    name: str
    module_type: str
    depth: int
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    style: str | None = None


@dataclass(frozen=True)
class DataFlow:
    """The measured path from token ids to audio for one short input."""

    phonemes: str
    n_tokens: int
    n_frames: int
    n_samples: int
    sample_rate: int
    steps: tuple[FlowStep, ...]

    @property
    def samples_per_frame(self) -> float:
        """Audio samples per predicted duration frame (the model's overall upsampling)."""
        return self.n_samples / self.n_frames

    @property
    def frame_ms(self) -> float:
        """Milliseconds of audio per duration frame."""
        return 1000.0 * self.samples_per_frame / self.sample_rate


@dataclass(frozen=True)
class WeightStats:
    """Statistics over every parameter value of one module (population std)."""

    name: str
    count: int
    mean: float
    std: float
    abs_max: float


@dataclass(frozen=True)
class ExpectationCheck:
    """A measured parameter share set against the seed suite's expected range."""

    label: str
    modules: tuple[str, ...]
    expected_low: float
    expected_high: float
    measured: float

    @property
    def verdict(self) -> str:
        """Return "below", "within" or "above" the expected range."""
        if self.measured < self.expected_low:
            return "below"
        if self.measured > self.expected_high:
            return "above"
        return "within"


@dataclass(frozen=True)
class BertFigures:
    """PL-BERT, KModel's ALBERT text encoder, as measured on its modules and config.

    ALBERT shares parameters between layers: ``layers`` transformer layers run on every pass (``layer_calls`` is how
    many the traced pass ran), but only ``hidden_groups`` x ``layers_per_group`` distinct layers hold parameters, and
    each group's are reused by ``layers // hidden_groups`` consecutive layers. ``unshared_params`` is what BERT would
    hold if every layer run had its own parameters, and ``unshared_share`` its share of a model that size.

    Example:
        >>> import explorer
        >>> from explorer.architecture import summarize
        >>> bert = summarize(explorer.build_model()).bert
        >>> bert.vocab_size, bert.hidden_size, bert.layers, bert.attention_heads, bert.distinct_layers
        (178, 768, 12, 12, 1)
        >>> [(row["figure"], row["measured"], row["verdict"]) for row in bert.seed_comparison()]
        [('vocab_size', 178, 'the seed gives no number'), ('hidden_size', 768, 'as the seed says')]
    """

    module_type: str
    vocab_size: int
    vocab_symbols: int
    embedding_size: int
    hidden_size: int
    layers: int
    layer_calls: int
    attention_heads: int
    head_size: int
    intermediate_size: int
    max_positions: int
    hidden_groups: int
    layers_per_group: int
    params: int
    shared_layer_params: int
    pooler_params: int
    unshared_params: int
    unshared_share: float

    @property
    def distinct_layers(self) -> int:
        """Transformer layers that hold parameters of their own (ALBERT's groups times the layers in each)."""
        return self.hidden_groups * self.layers_per_group

    @property
    def layers_per_shared_set(self) -> int:
        """How many of the layers run reuse each group's parameters."""
        return self.layers // self.hidden_groups

    def seed_comparison(self) -> list[dict[str, Any]]:
        """Return, per figure the seed suite described, what it said, what was measured and a verdict.

        Returns:
            One dict per entry of ``SEED_BERT_CLAIMS``: ``figure``, ``label``, ``seed`` (its words), ``measured``
            and ``verdict`` ("as the seed says", "differs", or "the seed gives no number").
        """
        rows = []
        for figure, label, words, number in SEED_BERT_CLAIMS:
            measured = getattr(self, figure)
            if number is None:
                verdict = "the seed gives no number"
            else:
                verdict = "as the seed says" if measured == number else "differs"
            rows.append({"figure": figure, "label": label, "seed": words, "measured": measured, "verdict": verdict})
        return rows

    def to_json(self) -> dict[str, Any]:
        """Return the figures, ``distinct_layers``, ``layers_per_shared_set`` and ``seed`` (the seed comparison)."""
        return {
            **asdict(self),
            "distinct_layers": self.distinct_layers,
            "layers_per_shared_set": self.layers_per_shared_set,
            "seed": self.seed_comparison(),
        }

    def _unshared_against_seed(self) -> str:
        """Say where the unshared share falls against the seed's expected BERT share, if it had one."""
        for label, names, low, high in SEED_EXPECTATIONS:
            if names == ("bert",):
                verdict = ExpectationCheck(label, names, low, high, self.unshared_share).verdict
                return f" ({verdict} the {100 * low:.0f}-{100 * high:.0f} % the seed suite expected of {label})"
        return ""

    def report_lines(self) -> list[str]:
        """Return the report's lines on BERT: its figures, the layer sharing, and the comparison with the seed."""
        groups = f"{self.hidden_groups} group{'s' if self.hidden_groups != 1 else ''} of {self.layers_per_group}"
        lines = [
            f"PL-BERT text encoder (bert, {self.module_type}, an ALBERT): {self.params:,} parameters",
            f"  Vocabulary: {self.vocab_size} token ids ({self.vocab_symbols} assigned to phoneme symbols), each "
            f"embedded in {self.embedding_size} values",
            f"  Hidden size {self.hidden_size}; {self.attention_heads} attention heads of {self.head_size} values; "
            f"feed-forward {self.intermediate_size}; up to {self.max_positions} positions",
            f"  Layers: {self.layers} run per pass ({self.layer_calls} in the traced pass), sharing the parameters of "
            f"{self.distinct_layers} distinct layer{'s' if self.distinct_layers != 1 else ''} ({groups}; "
            f"{self.shared_layer_params:,} parameters)",
            f"  Without the sharing BERT would hold {self.unshared_params:,} parameters: "
            f"{100 * self.unshared_share:.1f} % of a model that size{self._unshared_against_seed()}.",
            f"  Pooler: {self.pooler_params:,} parameters; it runs, but bert hands KModel only the per-token states.",
            "  Against the seed suite's description:",
        ]
        for row in self.seed_comparison():
            lines.append(f"    {row['label']}: the seed says {row['seed']!r}; measured {row['measured']}; "
                         f"{row['verdict']}")
        return lines


@dataclass(frozen=True)
class ArchitectureSummary:
    """Everything the explorer reports about the model's structure, all measured on one KModel.

    Build it with :func:`summarize`; ``to_json()`` and ``report_text()`` are what the CLI and the app show.

    Example:
        >>> import explorer
        >>> from explorer.architecture import summarize
        >>> summary = summarize(explorer.build_model())
        >>> summary.style_dim, summary.node("decoder").total_params == summary.modules[-1].params
        (128, True)
        >>> [check.label for check in summary.expectation_checks()]
        ['BERT', 'Decoder', 'Prosody Predictor', 'Text Encoder']
        >>> "Total parameters: 81,810,022" in summary.report_text()
        True
    """

    kokoro_version: str
    weights: str
    total_params: int
    style_dim: int
    modules: tuple[ModuleShare, ...]
    nodes: tuple[ModuleNode, ...] = field(repr=False)
    halves: tuple[StyleHalf, ...] = field(repr=False)
    data_flow: DataFlow = field(repr=False)
    weight_stats: tuple[WeightStats, ...] = field(repr=False)
    bert: BertFigures = field(repr=False)

    def tree(self, max_depth: int | None = None) -> tuple[ModuleNode, ...]:
        """Return the module tree in pre-order, down to ``max_depth`` (0 is the model itself; None for all)."""
        return tuple(node for node in self.nodes if max_depth is None or node.depth <= max_depth)

    def node(self, path: str) -> ModuleNode:
        """Return the tree node at ``path`` (``TREE_ROOT`` for the model itself)."""
        for candidate in self.nodes:
            if candidate.path == path:
                return candidate
        raise AnalysisError(f"The model has no module '{path[:80]}'.")

    def half(self, name: str) -> StyleHalf:
        """Return the style half called ``name`` ("decoder" or "prosody")."""
        for candidate in self.halves:
            if candidate.name == name:
                return candidate
        raise AnalysisError(f"Unknown style half '{name[:40]}': use {' or '.join(HALF_NAMES)}.")

    def expectation_checks(self) -> tuple[ExpectationCheck, ...]:
        """Return the measured share of each group the seed suite had an expectation for."""
        shares = {module.name: module.share for module in self.modules}
        return tuple(
            ExpectationCheck(label, names, low, high, sum(shares.get(name, 0.0) for name in names))
            for label, names, low, high in SEED_EXPECTATIONS
        )

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict.

        Returns:
            Keys ``kokoro_version``, ``weights``, ``total_params``, ``style_dim``, ``modules`` (name, module_type,
            params, share), ``expectations`` (label, modules, expected_low, expected_high, measured, verdict),
            ``style_halves`` (per half: start, stop, top_level, entry_points, consumer_types, consumers),
            ``data_flow`` (phonemes, n_tokens, n_frames, n_samples, sample_rate, samples_per_frame, frame_ms,
            steps), ``weight_stats`` (name, count, mean, std, abs_max) and ``tree`` (path, module_type, depth,
            own_params, total_params, children), ``bert`` (:meth:`BertFigures.to_json`).
        """
        flow = asdict(self.data_flow)
        flow["samples_per_frame"] = self.data_flow.samples_per_frame
        flow["frame_ms"] = self.data_flow.frame_ms
        data = {
            "kokoro_version": self.kokoro_version,
            "weights": self.weights,
            "total_params": self.total_params,
            "style_dim": self.style_dim,
            "modules": [asdict(module) for module in self.modules],
            "expectations": [{**asdict(check), "verdict": check.verdict} for check in self.expectation_checks()],
            "style_halves": {
                half.name: {
                    "start": half.start,
                    "stop": half.stop,
                    "top_level": half.top_level,
                    "entry_points": half.entry_points,
                    "consumer_types": half.consumer_types(),
                    "consumers": [asdict(consumer) for consumer in half.consumers],
                }
                for half in self.halves
            },
            "data_flow": flow,
            "weight_stats": [asdict(stats) for stats in self.weight_stats],
            "tree": [asdict(node) for node in self.nodes],
            "bert": self.bert.to_json(),
        }
        return json.loads(json.dumps(data))  # tuples become lists: the dict equals what a reader of the file gets

    def report_text(self, tree_depth: int = 2, flow_depth: int = 1) -> str:
        """Return a plain-text report for people.

        Args:
            tree_depth: deepest level of the module tree to list (0 is the model).
            flow_depth: 1 lists the modules KModel calls itself; 2 adds the modules those call.

        Returns:
            The report: parameter shares and how they compare with the seed suite's expectations, BERT's figures
            (and the seed's), the style routing, the data flow, weight statistics and the module tree.
        """
        lines = [
            f"Kokoro architecture (kokoro {self.kokoro_version}; weights: {self.weights})",
            f"Total parameters: {self.total_params:,}",
            "",
            "Parameters per top-level module:",
        ]
        width = max(len(f"{m.name} ({m.module_type})") for m in self.modules)
        for module in self.modules:
            label = f"{module.name} ({module.module_type})"
            lines.append(f"  {label:<{width}}  {module.params:>12,}  {100 * module.share:5.1f} %")
        lines += ["", *self._expectation_lines(), "", *self.bert.report_lines()]
        lines += ["", *self._style_lines(), "", *self._flow_lines(flow_depth)]
        lines += ["", f"Weight statistics ({self.weights}):"]
        lines.append(f"  {'module':<14} {'values':>12} {'mean':>10} {'std':>10} {'|max|':>10}")
        for stats in self.weight_stats:
            lines.append(
                f"  {stats.name:<14} {stats.count:>12,} {stats.mean:>10.4g} {stats.std:>10.4g} {stats.abs_max:>10.4g}"
            )
        lines += ["", f"Module tree (to depth {tree_depth}; total parameters, own in brackets when non-zero):"]
        for node in self.tree(tree_depth):
            own = f" [own {node.own_params:,}]" if node.own_params and node.children else ""
            name = node.path.rsplit(".", 1)[-1]
            lines.append(f"  {'  ' * node.depth}{name} ({node.module_type}): {node.total_params:,}{own}")
        return "\n".join(lines) + "\n"

    def _expectation_lines(self) -> list[str]:
        checks = self.expectation_checks()
        lines = ["Measured shares against the seed analysis suite's expectations:"]
        for check in checks:
            expected = f"{100 * check.expected_low:.0f}-{100 * check.expected_high:.0f} %"
            measured = f"{100 * check.measured:.1f} %"
            if check.verdict == "within":
                verdict = "as expected"
            else:
                bound = check.expected_low if check.verdict == "below" else check.expected_high
                gap = 100 * abs(check.measured - bound)
                verdict = f"DIFFERS: {gap:.1f} points {check.verdict} the expected range"
            lines.append(f"  {check.label} ({'+'.join(check.modules)}): {measured}; expected {expected}; {verdict}")
        covered = {name for check in checks for name in check.modules}
        for module in self.modules:
            if module.name not in covered:
                lines.append(f"  {module.name}: {100 * module.share:.1f} %; the seed suite had no expectation for it")
        held = sum(check.verdict == "within" for check in checks)
        lines.append(f"  {held} of {len(checks)} expectations hold for these counts.")
        return lines

    def _style_lines(self) -> list[str]:
        lines = [f"Style vector: {2 * self.style_dim} values per voicepack row, read in two halves:"]
        for half in self.halves:
            types = ", ".join(f"{count} x {kind}" for kind, count in half.consumer_types().items())
            params = sum(consumer.params for consumer in half.consumers)
            lines += [
                f"  style[{half.start}:{half.stop}] ({half.name} half) -> read only inside: "
                f"{', '.join(half.top_level)}",
                textwrap.fill(
                    f"enters at: {', '.join(half.entry_points)}", 116, initial_indent="    ", subsequent_indent="      "
                ),
                f"    read by {len(half.consumers)} layers ({params:,} parameters): {types}",
            ]
        return lines

    def _flow_lines(self, flow_depth: int) -> list[str]:
        flow = self.data_flow
        lines = [
            f"Data flow (one traced forward pass on phonemes '{flow.phonemes}': {flow.n_tokens} tokens incl. the two"
            f" pads, {flow.n_frames} frames, {flow.n_samples:,} samples):"
        ]
        shown = [step for step in flow.steps if step.depth <= flow_depth]
        for number, step in enumerate(shown, start=1):
            source = " -> ".join(_shape_text(shape) for shape in (*step.inputs[:1], step.output))
            style = f"  + {step.style} half of style" if step.style else ""
            label = f"{'  ' * (step.depth - 1)}{step.name} ({step.module_type})"
            lines.append(f"  {number:>3}. {label:<56} {source}{style}")
        lines.append(
            f"  Audio: {flow.sample_rate} Hz; {flow.samples_per_frame:g} samples ({flow.frame_ms:g} ms) per duration"
            " frame."
        )
        return lines


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def module_weight_stats(model: torch.nn.Module) -> tuple[WeightStats, ...]:
    """Return count, mean, std and largest magnitude of the parameter values of each top-level module.

    Returns:
        One entry per top-level module with parameters, in model order; sums run in float64.
    """
    stats = []
    for name, module in model.named_children():
        count, total, squares, abs_max = 0, 0.0, 0.0, 0.0
        with torch.no_grad():
            for param in module.parameters():
                count += param.numel()
                total += float(param.sum(dtype=torch.float64))
                squares += float(torch.linalg.vector_norm(param, dtype=torch.float64)) ** 2
                abs_max = max(abs_max, float(torch.linalg.vector_norm(param, ord=math.inf)))
        if count:
            mean = total / count
            stats.append(WeightStats(name, count, mean, math.sqrt(max(squares / count - mean * mean, 0.0)), abs_max))
    return tuple(stats)


def _module_tree(model: torch.nn.Module) -> tuple[ModuleNode, ...]:
    """Return every module in pre-order with own and total parameter counts."""

    def visit(module: torch.nn.Module, path: str, depth: int) -> list[ModuleNode]:
        own = sum(param.numel() for param in module.parameters(recurse=False))
        children = [(f"{path}.{name}" if depth else name, child) for name, child in module.named_children()]
        below = [visit(child, child_path, depth + 1) for child_path, child in children]
        total = own + sum(subtree[0].total_params for subtree in below)
        node = ModuleNode(path or TREE_ROOT, type(module).__name__, depth, own, total, tuple(p for p, _ in children))
        return [node, *chain.from_iterable(below)]

    return tuple(visit(model, "", 0))


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    """Yield the tensors in a module's inputs or outputs (a packed sequence counts as its data)."""
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        yield value.data
    elif isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _tensors(item)


def _carries(tensor: torch.Tensor, half: torch.Tensor) -> str | None:
    """Return "direct" or "concatenated" if ``tensor`` holds ``half`` along some dim (first or last block), else None.

    The half is broadcast over every other dim, as KModel expands one style vector over tokens and frames.
    """
    width = half.numel()
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return None
    values = half.to(tensor.dtype)
    for dim, size in enumerate(tensor.shape):
        if size < width:
            continue
        shape = [1] * tensor.dim()
        shape[dim] = width
        corner = tuple(slice(None) if axis == dim else 0 for axis in range(tensor.dim()))
        for start in sorted({0, size - width}):
            block = tensor.narrow(dim, start, width)
            # One cheap vector comparison first; the full one only where the half may be.
            if torch.allclose(block[corner], values, rtol=1e-5, atol=1e-6) and torch.allclose(
                block, values.view(shape), rtol=1e-5, atol=1e-6
            ):
                return "direct" if size == width else "concatenated"
    return None


@dataclass
class _Call:
    """One module call seen by the trace hooks (mutable while the call runs)."""

    path: str
    module_type: str
    depth: int
    inputs: tuple[tuple[int, ...], ...]
    reads: dict[str, str]
    output: tuple[int, ...] = ()


def _trace(
    model: KModel, phonemes: str, style_dim: int
) -> tuple[list[_Call], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run KModel once with hooks on every module; return the calls, the token ids, the durations and the audio.

    The style vector is random with a fixed seed, so its two halves hold different values that can be recognised
    wherever they reach. The global RNG state is restored afterwards.
    """
    ids = [model.vocab[symbol] for symbol in phonemes if symbol in model.vocab]
    if not ids:
        raise AnalysisError(f"None of the phonemes '{phonemes[:40]}' are in the model's vocabulary.")
    if len(ids) + 2 > model.context_length:
        raise AnalysisError(f"The traced input must be at most {model.context_length - 2} phonemes.")
    input_ids = torch.tensor([[0, *ids, 0]], dtype=torch.long)
    paths = {id(module): path for path, module in model.named_modules() if path}
    calls: list[_Call] = []
    stack: list[_Call] = []

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ref_s = torch.randn(1, len(HALF_NAMES) * style_dim)
        halves = {name: ref_s[0, i * style_dim : (i + 1) * style_dim] for i, name in enumerate(HALF_NAMES)}

        def before(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            values = (*args, *kwargs.values())
            reads = {}
            for name, half in halves.items():
                found = {_carries(tensor, half) for tensor in _tensors(values)} - {None}
                if found:
                    reads[name] = "direct" if "direct" in found else "concatenated"
            shapes = tuple(tuple(tensor.shape) for tensor in _tensors(values))
            call = _Call(paths[id(module)], type(module).__name__, len(stack) + 1, shapes, reads)
            calls.append(call)
            stack.append(call)

        def after(module: torch.nn.Module, args: tuple, output: Any) -> None:
            call = stack.pop()
            first = next(iter(_tensors(output)), None)
            call.output = tuple(first.shape) if first is not None else ()

        handles = []
        for module in model.modules():
            if module is model:
                continue
            handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
            handles.append(module.register_forward_hook(after))
        try:
            audio, durations = model.forward_with_tokens(input_ids, ref_s, 1)
        finally:
            for handle in handles:
                handle.remove()
    return calls, input_ids, durations.reshape(-1), audio.reshape(-1)


def _style_halves(model: torch.nn.Module, calls: list[_Call], style_dim: int) -> tuple[StyleHalf, ...]:
    """Turn the trace's observations into, per half, the modules that read it."""
    modules = dict(model.named_modules())
    halves = []
    for index, name in enumerate(HALF_NAMES):
        how: dict[str, str] = {}
        for call in calls:
            if name in call.reads and how.get(call.path) != "direct":
                how[call.path] = call.reads[name]
        readers = sorted(how, key=list(modules).index)
        innermost = [path for path in readers if not any(other.startswith(path + ".") for other in readers)]
        entries = [path for path in readers if not any(path.startswith(other + ".") for other in readers)]
        consumers = tuple(
            StyleConsumer(
                path, type(modules[path]).__name__, how[path], sum(p.numel() for p in modules[path].parameters())
            )
            for path in innermost
        )
        top_level = tuple(dict.fromkeys(path.split(".")[0] for path in readers))
        halves.append(StyleHalf(name, index * style_dim, (index + 1) * style_dim, top_level, tuple(entries), consumers))
    return tuple(halves)


def _bert_figures(model: KModel, calls: list[_Call], total_params: int) -> BertFigures:
    """Read PL-BERT's figures off its modules, and count the transformer layers the traced pass ran.

    Sizes come from the weight shapes where a module holds them (embeddings, projections); the number of layers run
    per pass and of hidden groups come from ALBERT's config, and each distinct layer's use is counted in the trace.
    """
    bert = model.bert
    embeddings, encoder = bert.embeddings, bert.encoder
    layers = {
        f"bert.encoder.albert_layer_groups.{group}.albert_layers.{index}": layer
        for group, layer_group in enumerate(encoder.albert_layer_groups)
        for index, layer in enumerate(layer_group.albert_layers)
    }
    if not layers:
        raise AnalysisError("The model's BERT has no transformer layer.")
    uses = {path: sum(call.path == path for call in calls) for path in layers}
    counts = {path: sum(param.numel() for param in layer.parameters()) for path, layer in layers.items()}
    params = sum(param.numel() for param in bert.parameters())
    unshared = params + sum(counts[path] * (used - 1) for path, used in uses.items() if used > 1)
    first = next(iter(layers.values()))
    pooler = getattr(bert, "pooler", None)
    return BertFigures(
        module_type=type(bert).__name__,
        vocab_size=int(embeddings.word_embeddings.num_embeddings),
        vocab_symbols=len(model.vocab),
        embedding_size=int(embeddings.word_embeddings.embedding_dim),
        hidden_size=int(encoder.embedding_hidden_mapping_in.out_features),
        layers=int(bert.config.num_hidden_layers),
        layer_calls=sum(uses.values()),
        attention_heads=int(first.attention.num_attention_heads),
        head_size=int(first.attention.attention_head_size),
        intermediate_size=int(first.ffn.out_features),
        max_positions=int(embeddings.position_embeddings.num_embeddings),
        hidden_groups=len(encoder.albert_layer_groups),
        layers_per_group=len(encoder.albert_layer_groups[0].albert_layers),
        params=params,
        shared_layer_params=sum(counts.values()),
        pooler_params=sum(param.numel() for param in pooler.parameters()) if pooler is not None else 0,
        unshared_params=unshared,
        unshared_share=unshared / (total_params - params + unshared),
    )


def _sample_rate(model: torch.nn.Module) -> int:
    """Return the audio rate the vocoder's source module is built for."""
    rates = {int(module.sampling_rate) for module in model.modules() if hasattr(module, "sampling_rate")}
    if len(rates) != 1:
        raise AnalysisError(f"Could not find one audio sample rate in the model (found {sorted(rates)}).")
    return rates.pop()


def _data_flow(
    model: KModel,
    calls: list[_Call],
    input_ids: torch.Tensor,
    durations: torch.Tensor,
    audio: torch.Tensor,
    phonemes: str,
) -> DataFlow:
    """Return the traced calls in call order, with the steps KModel does outside any module.

    Depth 1 keeps every module KModel calls; depth 2 only the calls of modules with parameters (activations,
    dropout and reshaping modules add lines, not information).
    """
    modules = dict(model.named_modules())
    duration_head = next(path for path, module in modules.items() if module is model.predictor.duration_proj)
    n_tokens, n_frames = input_ids.shape[-1], int(durations.sum())
    rows: list[tuple[str, str, int, tuple[tuple[int, ...], ...], tuple[int, ...], str | None]] = [
        ("tokens", "input", 1, (), tuple(input_ids.shape), None)
    ]
    head_depth = None
    for call in calls:
        if head_depth is not None and call.depth <= head_depth:
            rows.append(("alignment", "durations", 1, (tuple(durations.shape),), (n_tokens, n_frames), None))
            head_depth = None
        if call.depth > 2 or (call.depth == 2 and not any(True for _ in modules[call.path].parameters())):
            continue
        rows.append((call.path, call.module_type, call.depth, call.inputs, call.output, ", ".join(call.reads) or None))
        if call.path == duration_head:
            head_depth = call.depth
    rows.append(("audio", "output", 1, (), tuple(audio.shape), None))
    steps = tuple(FlowStep(order, *row) for order, row in enumerate(rows, start=1))
    return DataFlow(phonemes, n_tokens, n_frames, int(audio.numel()), _sample_rate(model), steps)


def summarize(
    model: KModel, weights_description: str = "random initialisation", phonemes: str = TRACE_PHONEMES
) -> ArchitectureSummary:
    """Measure ``model``: counts, tree, BERT's figures, style routing, data flow and weight statistics.

    Args:
        model: a ``kokoro.KModel`` (from :func:`build_model`).
        weights_description: what the weights are, shown in reports.
        phonemes: input of the traced forward pass (symbols outside the vocabulary are dropped, as KModel does).

    Returns:
        The summary. The traced pass runs under a fixed seed and leaves the global RNG state as it was. It hooks
        every module of ``model`` while it runs, so give it a model no other thread is using at the same time.

    Raises:
        AnalysisError: no phoneme of ``phonemes`` is in the model's vocabulary, or it is too long.
    """
    style_dim = int(model.predictor.text_encoder.sty_dim)
    nodes = _module_tree(model)
    root = nodes[0]
    by_path = {node.path: node for node in nodes}
    modules = tuple(
        ModuleShare(
            path, by_path[path].module_type, by_path[path].total_params, by_path[path].total_params / root.total_params
        )
        for path in root.children
        if by_path[path].total_params
    )
    calls, input_ids, durations, audio = _trace(model, phonemes, style_dim)
    return ArchitectureSummary(
        kokoro_version=version("kokoro"),
        weights=weights_description,
        total_params=root.total_params,
        style_dim=style_dim,
        modules=modules,
        nodes=nodes,
        halves=_style_halves(model, calls, style_dim),
        data_flow=_data_flow(model, calls, input_ids, durations, audio, phonemes),
        weight_stats=module_weight_stats(model),
        bert=_bert_figures(model, calls, root.total_params),
    )


def analyze_architecture(
    weights: Path | str | None = None, config: Path | str | Mapping[str, Any] = CONFIG_PATH
) -> ArchitectureSummary:
    """Build the model and summarise it: what ``python -m explorer architecture [--weights PATH]`` reports.

    Args:
        weights: a local Kokoro ``.pth`` for the weight statistics; None for random initialisation, which is enough
            for counts, routing and data flow.
        config: the model config (path to ``config.json`` or the dict itself).

    Raises:
        ModelFilesError: the config or weights cannot be used.

    Example:
        >>> import explorer
        >>> summary = explorer.analyze_architecture()
        >>> summary.total_params, [(module.name, round(module.share, 2)) for module in summary.modules]
        (81810022, [('bert', 0.08), ('bert_encoder', 0.0), ('predictor', 0.2), ('text_encoder', 0.07),
                    ('decoder', 0.65)])
        >>> summary.half("prosody").top_level, summary.half("decoder").top_level
        (('predictor',), ('decoder',))
    """
    return summarize(build_model(config, weights), describe_weights(weights))
