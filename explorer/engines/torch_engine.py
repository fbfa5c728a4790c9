"""The torch engine: the official ``kokoro.KModel`` in evaluation mode, in fp32 or bf16.

It imports torch only when it is built, so an app running the ONNX engine never loads it. An engine that builds its
own model runs it from graphs traced from kokoro's modules and cached (:mod:`explorer.engines.traced_model`): a
process that finds them never imports kokoro or transformers, and is ready to render about a second after ``import
torch``. It sets torch to one thread per physical core. ``warm_up()`` (the app calls it in the background) renders a
short phrase so the first request does not pay torch's one-time costs; a one-off command skips it.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.cache import Progress
from explorer.engines.base import WARM_UP_PHONEMES, Engine, load_vocab, physical_cores, runnable_precision
from explorer.engines.model_files import OFFLINE_TORCH_LABEL, cached_torch_weights, offline_torch_weights
from explorer.engines.onnx_weights import imported_weights
from explorer.errors import SynthesisError, shown
from explorer.paths import CONFIG_PATH
from explorer.voices import STYLE_DIM

if TYPE_CHECKING:
    import torch
    from kokoro import KModel

    from explorer.engines.kmodel_inference import EagerKModel, Prosody
    from explorer.engines.traced_model import TracedKModel

__all__ = ["DEFAULT_TORCH_PRECISION", "TORCH_DEVICES", "TORCH_PRECISIONS", "TorchEngine", "torch_device"]

TORCH_PRECISIONS = ("fp32", "bf16")
"""``fp32`` as kokoro computes, or ``bf16`` (autocast before the vocoder, a bf16 vocoder: see
:mod:`explorer.engines.kmodel_inference`), only where the CPU computes bf16 natively; elsewhere fp32, and
``TorchEngine.precision_note`` says why."""
DEFAULT_TORCH_PRECISION = "bf16"
"""What ``torch`` runs in where the CPU supports it: about half of fp32's time, the same WER and similarity."""
PROSODIES_KEPT = 8
"""How many prosodies a torch engine keeps (see ``TorchEngine``): the last few texts, prosody styles and speeds."""
TORCH_DEVICES = ("cpu", "cuda")
"""Where a torch engine computes: the CPU, or a CUDA GPU (``cuda`` or ``cuda:N``) where torch sees one."""


def torch_device(device: str | None) -> torch.device:
    """Return the torch device ``device`` names (None is the CPU), once it is known to be there.

    Raises:
        SynthesisError: not one of ``TORCH_DEVICES`` (``cuda:N`` included), or a CUDA device torch does not see
            (a CPU build of torch, no GPU, or fewer GPUs).
    """
    import torch

    text = "cpu" if device is None else str(device).strip().lower()
    kind, _, number = text.partition(":")
    if kind not in TORCH_DEVICES or (number and (kind != "cuda" or not number.isdigit())):
        raise SynthesisError(f"Unknown device {shown(device)}: choose cpu, cuda or cuda:N.")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count <= int(number or 0):
            build = "a CPU build of torch" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
            raise SynthesisError(f"The device {shown(text)} is not there: torch sees {count} CUDA GPU(s) ({build}). "
                                 "Use --device cpu.")
    return torch.device(text)


class TorchEngine(Engine):
    """The official ``kokoro.KModel`` in evaluation mode, run without autograd, in fp32 or bf16.

    It runs kokoro's computation as :mod:`explorer.engines.kmodel_inference` splits it, computing the prosody (from
    the text, the prosody half of the style and the speed) apart from the decoder and keeping the last
    ``PROSODIES_KEPT``: an edit to the decoder half of a style then renders the decoder alone. An engine that builds
    its own model runs it from traced graphs (:mod:`explorer.engines.traced_model`), loaded from the cache when they
    are there, else traced once from the modules; the audio is the same, bit for bit.

    Args:
        weights: a local ``kokoro-v1_0.pth``, or a Kokoro ONNX export whose weights are imported into KModel
            (:func:`explorer.engines.onnx_weights.imported_weights`, once, cached); None takes ``kokoro-v1_0.pth`` from
            the Hugging Face cache when it is there, else imports the offline int8 model's weights (no network
            either way). When ``model`` is given, ``weights`` only names what it holds.
        config: the model config; the bundled ``assets/config.json`` by default (never downloaded).
        model: an already built KModel to use as it is, its modules run in Python (e.g. one shared with the
            architecture page): torch's thread count is then left alone.
        precision: "fp32" or "bf16" (see ``TORCH_PRECISIONS``); None is ``DEFAULT_TORCH_PRECISION``. bf16 on a CPU
            without native bf16 runs fp32, and ``precision_note`` says why.
        progress: told how assembling the offline model and importing its weights go, when that happens.
        traced: False runs kokoro's modules in Python even for the engine's own model (``bench profile`` times
            them), building the model in every process.
        device: where the engine's own model computes (see :func:`torch_device`; None is the CPU). On a CUDA GPU
            it runs kokoro's modules (the cached graphs are the CPU's) with its weights, the prosodies it keeps and
            every intermediate there, bf16 autocast on CUDA for "bf16" where the GPU computes bf16; the audio comes
            back to the CPU. A given ``model`` computes where its weights are.

    Attributes:
        device: where it computes.
        precision: the precision the engine runs in ("fp32" or "bf16").
        precision_note: why it runs fp32 when bf16 was asked for; empty otherwise.
        runner: what computes: an :class:`~explorer.engines.kmodel_inference.EagerKModel` (kokoro's modules, its
            ``generator`` in bf16 a bf16 one, converted in place in the engine's own model, a copy for a shared
            model) or a :class:`~explorer.engines.traced_model.TracedKModel`.
        load_seconds: how long each part of building the engine took: ``weights`` (finding or importing them),
            ``graphs`` (loading the cached graphs), ``import kokoro`` (with transformers), ``model`` (building
            kokoro's modules and loading the weights into them), ``trace``.

    Raises:
        ModelFilesError: the config or weights are missing, damaged, not a Kokoro export or do not fit.
        SynthesisError: unknown precision, or a device that is not there.
    """

    name = "torch"

    def __init__(
        self,
        weights: Path | str | None = None,
        config: Path | str | Mapping[str, Any] = CONFIG_PATH,
        model: KModel | None = None,
        precision: str | None = None,
        progress: Progress | None = None,
        traced: bool = True,
        device: str | None = None,
    ):
        precision = precision or DEFAULT_TORCH_PRECISION
        if precision not in TORCH_PRECISIONS:
            raise SynthesisError(
                f"Unknown torch precision {str(precision)[:40]!r}: choose one of {', '.join(TORCH_PRECISIONS)}."
            )
        self.device = torch_device(device) if model is None else next(model.parameters()).device
        self.precision, self.precision_note = _runnable_precision(precision, self.device)
        self.load_seconds: dict[str, float] = {}
        if model is not None:
            from explorer.engines.kmodel_inference import EagerKModel, bf16_generator
            from explorer.engines.model import describe_weights

            label, vocab = describe_weights(weights), model.vocab
            generator = model.decoder.generator
            if self.precision == "bf16":  # a copy: the shared model stays as it is
                generator = bf16_generator(generator)
            self.runner: EagerKModel | TracedKModel = EagerKModel(model.eval(), generator, self.precision)
        else:
            import torch

            started = time.perf_counter()
            path, label = _weights_file(weights, config, progress)
            vocab = load_vocab(config)
            self._time("weights", started)
            self.runner = _own_runner(path, config, self.precision, traced, vocab, self._time, self.device)
            torch.set_num_threads(physical_cores())
        # The precision and a GPU are part of the description, so a replay cache keyed on it never mixes their audio.
        where = "" if self.device.type == "cpu" else f" on {self.device}"
        super().__init__(vocab, f"{label}, computed in {self.precision}{where}", self.load_seconds)
        self._prosodies: OrderedDict[tuple[bytes, bytes, float], Prosody] = OrderedDict()

    def _time(self, part: str, started: float) -> float:
        """Record how long a part of the load took since ``started``; return the time now, when the next part starts."""
        now = time.perf_counter()
        self.load_seconds[part] = round(now - started, 3)
        return now

    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            style_row = torch.from_numpy(style).unsqueeze(0).to(self.device)
            prosody = self._prosody(tokens, style, style_row, speed)
            audio = self.runner.decode(prosody, style_row)
        return audio.float().cpu().numpy(), prosody.durations.reshape(-1).cpu().numpy()

    def clear_cache(self) -> None:
        """Forget the prosodies kept from earlier calls."""
        with self._lock:
            self._prosodies.clear()

    def _prosody(self, tokens: np.ndarray, style: np.ndarray, style_row: torch.Tensor, speed: float) -> Prosody:
        """Return the prosody of ``tokens`` for the prosody half of ``style`` (``style_row`` on the device) and this
        speed, from the last few when it is there: moving a decoder-half slider then renders the decoder alone."""
        import torch

        key = (tokens.tobytes(), style[STYLE_DIM // 2:].tobytes(), speed)
        if key in self._prosodies:
            self._prosodies.move_to_end(key)
            return self._prosodies[key]
        prosody = self.runner.predict_prosody(torch.from_numpy(tokens).to(self.device), style_row, speed)
        self._prosodies[key] = prosody
        if len(self._prosodies) > PROSODIES_KEPT:
            self._prosodies.popitem(last=False)
        return prosody


def _runnable_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """Return the precision an engine asked for ``precision`` runs in on ``device``, and why it differs, if it does:
    bf16 only where the CPU (:func:`~explorer.engines.base.runnable_precision`) or the GPU computes it natively."""
    import torch

    if device.type == "cuda":
        runs = "fp32" if precision == "bf16" and not torch.cuda.is_bf16_supported() else precision
        note = "bf16 was asked for, but this GPU does not compute bf16: running fp32."
    else:
        runs = runnable_precision(precision)
        note = ("bf16 was asked for, but this CPU has no native bf16 (avx512_bf16 or amx_bf16), where it would be "
                "slower than fp32: running fp32.")
    return runs, "" if runs == precision else note


def _weights_file(
    weights: Path | str | None, config: Path | str | Mapping[str, Any], progress: Progress | None
) -> tuple[Path, str]:
    """Return the torch weights file a TorchEngine runs (see its ``weights`` argument) and how it is described: a
    ``.pth`` as it is, an ONNX export's weights imported once (cached)."""
    from explorer.engines.model import describe_weights

    if weights is None:
        weights = cached_torch_weights()
    if weights is not None and Path(weights).suffix.lower() != ".onnx":
        return Path(weights), describe_weights(weights)
    if weights is None:
        path = offline_torch_weights(progress, config)
        return path, f"{OFFLINE_TORCH_LABEL} (cached: {path})"
    path = imported_weights(weights, None, config, progress)
    label = f"{Path(weights).name} (local ONNX: {Path(weights).resolve()}) weights imported into kokoro.KModel"
    return path, f"{label} (cached: {path})"


def _own_runner(
    weights: Path, config: Path | str | Mapping[str, Any], precision: str, traced: bool, vocab: Mapping[str, int],
    timed: Callable[[str, float], float], device: torch.device,
) -> EagerKModel | TracedKModel:
    """Return what an engine that builds its own model runs: the cached graphs when ``traced`` and they are there;
    else kokoro's modules built from ``weights`` (weight norm folded, bf16 weights in bf16), which are traced and
    cached when ``traced`` (and run as they are, with a warning, when that fails). On a GPU, kokoro's modules moved
    there (the graphs are traced on and for the CPU), the generator's weights in bf16 for "bf16" and the rest
    float32 under CUDA's autocast. ``timed(part, started)`` records each part's time."""
    traced = traced and device.type == "cpu"
    from explorer.engines.kmodel_inference import EagerKModel, bf16_autocast_weights, bf16_generator, fold_weight_norm
    from explorer.engines.model import build_model
    from explorer.engines.traced_model import load_cached_graphs, trace_graphs

    started = time.perf_counter()
    if traced:
        found = load_cached_graphs(weights, config, precision)
        started = timed("graphs", started)
        if found is not None:
            return found
    import kokoro  # noqa: F401  (timed apart: with transformers' ALBERT it is most of building the model)

    started = timed("import kokoro", started)
    model = build_model(config, weights)
    fold_weight_norm(model)
    generator = model.decoder.generator
    if precision == "bf16":
        generator = bf16_generator(generator, in_place=True)
        if device.type == "cpu":  # what CPU autocast casts anyway; CUDA's autocast is left to choose for itself
            bf16_autocast_weights(model)
    model.to(device)
    eager = EagerKModel(model, generator, precision)
    started = timed("model", started)
    if not traced:
        return eager
    import torch

    example = torch.tensor([[0, *(vocab[symbol] for symbol in WARM_UP_PHONEMES if symbol in vocab), 0]])
    try:
        runner = trace_graphs(eager, example, weights, config)
    except Exception as exc:  # a cache that cannot be written, a tracer failure: the modules still run
        warnings.warn(f"Running kokoro's modules in Python, as they could not be traced and cached "
                      f"({type(exc).__name__}: {shown(str(exc), 200)}): every new process builds them again "
                      "(seconds).", stacklevel=3)
        return eager
    timed("trace", started)
    return runner
