"""Choosing an engine: what each engine kind means here, ``auto``'s choice, and one engine per kind for a server.

``torch`` uses the Hub's ``kokoro-v1_0.pth`` when it is in the Hugging Face cache, else the offline model's
weights, in ``DEFAULT_TORCH_PRECISION`` (``torch-fp32`` and ``torch-bf16`` choose). ``auto`` uses torch when the
process may use enough memory for it and either the real torch weights are on this machine or the CPU computes bf16
natively, else the offline int8 ONNX model (measured: see :func:`auto_kind`); neither needs a network. The ONNX
model runs as it is (``onnx-int8``) or rewritten to float operations on the same weights (``onnx-float``); ``onnx``
uses ``DEFAULT_ONNX_VARIANT``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from explorer.cache import Progress
from explorer.engines.base import Engine, runnable_precision, usable_memory
from explorer.engines.model_files import (
    OFFLINE_LABEL,
    OFFLINE_TORCH_LABEL,
    TORCH_WEIGHTS,
    cached_torch_weights,
    offline_packages_installed,
    torch_weights_here,
    traced_graphs_cached,
)
from explorer.engines.onnx_engine import DEFAULT_ONNX_VARIANT, FLOAT_LABEL, ONNX_VARIANTS, OnnxEngine
from explorer.engines.torch_engine import DEFAULT_TORCH_PRECISION, TORCH_PRECISIONS, TorchEngine, torch_device
from explorer.errors import ExplorerError, SynthesisError, shown
from explorer.paths import CONFIG_PATH, regular_file

__all__ = [
    "ENGINE_KINDS",
    "ENGINE_VARIABLE",
    "ONE_OFF_COSTS",
    "TRACING_SECONDS",
    "PRELOAD_VARIABLE",
    "TORCH_MEMORY",
    "OneOffCost",
    "SharedEngines",
    "auto_choice",
    "auto_kind",
    "auto_reason",
    "available_engines",
    "load_engine",
    "onnx_variant",
    "resolve_engine",
    "torch_precision",
    "warm_engine",
]

PRELOAD_VARIABLE = "EXPLORER_PRELOAD"
"""Environment variable that, set to ``0``, stops the app from loading the engine in the background when a page
that speaks opens (:meth:`SharedEngines.preload`): memory is then spent only at the first synthesis."""
ENGINE_VARIABLE = "EXPLORER_ENGINE"
"""Environment variable naming the engine kind ``auto`` stands for, overriding :func:`auto_kind`'s choice: e.g.
``onnx`` where memory is short (0.3-0.6 GB instead of torch's 0.5-1.0 GB, 2.1 GB once while it traces its graphs),
or ``torch`` where it is not."""
TORCH_MEMORY = 4 * 1024**3
"""Memory a process needs for ``auto`` to choose torch (4 GiB); with less it takes the ONNX engine. Measured peaks:
torch 0.4 GB loaded from its traced graphs and 1.0 GB speaking a 32 s paragraph, but once per machine 1.4 GB (bf16)
to 2.1 GB (fp32) while it traces them and 2.4 GB when it first imports the offline weights, and a server on torch
with eight sessions synthesizing at once and the meters loaded 2.4-2.6 GB (before the traced graphs); onnx 0.5 GB,
that server 1.4 GB. 4 GiB is about 1.5 times torch's highest peak, because a process over its limit is killed, while
ONNX only costs speed. Community Cloud's limit (about 2.7 GB) is below it, so a deployment there stays on ONNX
without a setting."""
ENGINE_KINDS = (
    "auto", "torch", *(f"torch-{precision}" for precision in TORCH_PRECISIONS),
    "onnx", *(f"onnx-{variant}" for variant in ONNX_VARIANTS),
)
"""``torch`` runs the cached ``.pth`` (else the offline model's weights) in ``DEFAULT_TORCH_PRECISION``;
``torch-fp32`` and ``torch-bf16`` choose the precision. ``onnx`` runs the offline (or given) model in the default
variant; ``onnx-int8`` and ``onnx-float`` choose one. ``auto``: see :func:`auto_kind`."""


@dataclass(frozen=True)
class OneOffCost:
    """What a new process spends on one job with an engine: a fixed part (interpreter, imports, loading, the
    runtime's first-call costs, the text converter) and a part per second of speech (the real-time factor)."""

    fixed_seconds: float
    rtf: float

    def seconds(self, audio_seconds: float) -> float:
        """Expected whole-process time for ``audio_seconds`` of speech."""
        return self.fixed_seconds + self.rtf * audio_seconds


ONE_OFF_COSTS = {
    "torch-bf16": OneOffCost(2.1, 0.21),
    "torch-fp32": OneOffCost(2.2, 0.45),
    "onnx": OneOffCost(1.0, 0.36),
}
"""Fitted to ``python -m explorer bench cli`` (``synth`` in fresh processes, medians of 3 rounds) on a 2-core Xeon
with AVX512-BF16 and AMX: 4.7 s of speech took 3.15 s on torch-bf16 and 2.68 s on onnx, 32.7 s of speech 9.14 s and
12.83 s. torch-fp32's real-time factor is ``bench``'s (0.45); its graphs are twice the size. The break-even for
torch-bf16 is about 8 s of speech."""
TRACING_SECONDS = 6.0
"""What a torch process adds when its traced graphs are not cached yet: kokoro's modules built (3.3 s, importing
kokoro and transformers included) and traced (about 3 s), once per machine."""


def auto_kind(weights: Path | str | None = None, audio_seconds: float | None = None) -> str:
    """Return the engine kind ``auto`` stands for here.

    The rule, first match wins:

    1. A file decides by its kind: ``onnx`` for an ``.onnx`` file, ``torch`` for another.
    2. The kind named by the ``EXPLORER_ENGINE`` environment variable, when it is set.
    3. ``onnx`` when the process may use less than ``TORCH_MEMORY`` (4 GiB): its cgroup's memory limit where it runs
       under one (a container, Community Cloud's 2.7 GB), else the machine's physical memory
       (:func:`~explorer.engines.base.usable_memory`; memory that cannot be read does not count against torch).
    4. ``torch`` when ``kokoro-v1_0.pth`` is in the Hugging Face cache (the official weights unquantised) or the CPU
       computes bf16 natively (torch-bf16 on the offline model's weights), unless the job is known: for a new
       process that will render ``audio_seconds`` of speech (a command), whichever engine is expected to finish
       first (:data:`ONE_OFF_COSTS`; torch loads for longer and renders faster, so a sentence or two goes to onnx).
    5. ``onnx`` (the offline int8 model, faster than torch in fp32).

    :func:`auto_reason` says which of these decided, in words.

    torch-bf16 is the faster where it runs, and no slower when other work shares the cores; it needs 2.6 times the
    memory and ten times the load time (once per process, kokoro's import being most of it). Measured with
    ``python -m explorer bench all`` on a 2-core AMD EPYC with AVX512-BF16 (5 sentences x af_heart, am_adam; time
    relative to onnx-int8 rendering the same sentence in turn; load average 1.8-3.1; quality: WER 0.014 for all
    three, speaker similarity to onnx-int8 0.976 for torch):

    ==========  ====  ===========  ===========  ==========  =======  ======
    config      RTF   time vs ref  first audio  one busy    peak MB  load s
    ==========  ====  ===========  ===========  ==========  =======  ======
    onnx-int8   0.36  1.0          0.44 s       0.60        526      0.5
    torch-fp32  0.45  1.27         0.57 s                   1380     5.4
    torch-bf16  0.25  0.70         0.35 s       0.61        1380     5.0
    ==========  ====  ===========  ===========  ==========  =======  ======

    "one busy": RTF with another process busy on one of the two cores, the engines taking turns.

    Raises:
        SynthesisError: ``EXPLORER_ENGINE`` names no engine kind.
    """
    return auto_choice(weights, audio_seconds)[0]


def auto_reason(weights: Path | str | None = None) -> str:
    """Return why ``auto`` stands for :func:`auto_kind`'s choice here, in words (which step of its rule decided).

    Raises:
        SynthesisError: ``EXPLORER_ENGINE`` names no engine kind.

    Example:
        >>> from explorer.engines import auto_reason
        >>> auto_reason("voice-model.onnx")
        'the weights given are an ONNX export'
    """
    return auto_choice(weights)[1]


def auto_choice(weights: Path | str | None = None, audio_seconds: float | None = None) -> tuple[str, str]:
    """Return ``(kind, reason)`` for ``auto``: the rule :func:`auto_kind` documents, and which step of it decided
    (one reading of the environment, the memory and the caches for a caller that shows both). ``audio_seconds``:
    how much speech a new process will render, for a one-off job; None for a process that serves many.

    Raises:
        SynthesisError: ``EXPLORER_ENGINE`` names no engine kind.

    Example:
        >>> from explorer.engines import auto_choice
        >>> auto_choice("voice-model.onnx")
        ('onnx', 'the weights given are an ONNX export')
    """
    if weights is not None:
        if Path(weights).suffix.lower() == ".onnx":
            return "onnx", "the weights given are an ONNX export"
        return "torch", "the weights given are torch weights"
    chosen = os.environ.get(ENGINE_VARIABLE, "").strip()
    if chosen:
        if chosen not in ENGINE_KINDS or chosen == "auto":
            raise SynthesisError(f"{ENGINE_VARIABLE}={chosen[:40]!r} names no engine: set it to one of "
                                 f"{', '.join(ENGINE_KINDS[1:])}, or unset it.")
        return chosen, f"{ENGINE_VARIABLE} is set to {chosen}"
    memory = usable_memory()
    if memory is not None and memory < TORCH_MEMORY:
        return "onnx", (f"this process may use {_gib(memory)} of memory, less than the {_gib(TORCH_MEMORY)} auto "
                        "requires for torch")
    enough = f" and {_gib(memory)} of memory may be used" if memory is not None else ""
    if cached_torch_weights() is not None:
        reason = f"{TORCH_WEIGHTS} is in the Hugging Face cache{enough}"
    elif runnable_precision("bf16") == "bf16":
        reason = f"the CPU computes bf16 natively{enough}"
    else:
        return "onnx", (f"the CPU does not compute bf16 natively and {TORCH_WEIGHTS} is not in the Hugging Face "
                        "cache: the int8 model is faster than torch in fp32")
    return ("torch", reason) if audio_seconds is None else _one_off_choice(audio_seconds, reason)


def _one_off_choice(audio_seconds: float, torch_reason: str) -> tuple[str, str]:
    """Return ``(kind, reason)`` for a new process rendering ``audio_seconds`` of speech where the rule would run
    torch for ``torch_reason``: the engine expected to finish first (:data:`ONE_OFF_COSTS`)."""
    precision = runnable_precision(DEFAULT_TORCH_PRECISION)
    traced = traced_graphs_cached(torch_weights_here(), CONFIG_PATH, precision)
    torch_seconds = ONE_OFF_COSTS[f"torch-{precision}"].seconds(audio_seconds) + (0.0 if traced else TRACING_SECONDS)
    onnx_seconds = ONE_OFF_COSTS["onnx"].seconds(audio_seconds)
    expected = f"about {audio_seconds:.0f} s of speech in a new process"
    if torch_seconds <= onnx_seconds:
        return "torch", (f"{torch_reason}, and for {expected} torch is expected to finish first ({torch_seconds:.1f} s "
                         f"against {onnx_seconds:.1f} s on onnx)")
    tracing = "" if traced else " and would first trace its graphs (once)"
    return "onnx", (f"for {expected} onnx is expected to finish first ({onnx_seconds:.1f} s against "
                    f"{torch_seconds:.1f} s on torch, which loads for longer{tracing})")


def _gib(amount: int) -> str:
    """Return an amount of memory in words: ``2.5 GiB``."""
    return f"{amount / 1024**3:.1f} GiB"


def resolve_engine(kind: str = "auto", weights: Path | str | None = None) -> tuple[str, Path | None]:
    """Return which engine ``load_engine(kind, weights)`` would build, and from which file, without building it.

    ``auto`` stands for :func:`auto_kind`. The torch kinds take a torch ``.pth`` or an ``.onnx`` export (its weights
    are imported); without a file they use ``kokoro-v1_0.pth`` from the Hugging Face cache, else the offline model's
    weights. The ONNX kinds run a given ``.onnx`` file, else the offline model (see :func:`onnx_variant`).

    Returns:
        ``("torch" | "onnx", path or None)``; None means the offline model (its weights, for torch).

    Raises:
        SynthesisError: ``kind`` is not one of ``ENGINE_KINDS``.
    """
    if kind not in ENGINE_KINDS:
        raise SynthesisError(f"Unknown engine {str(kind)[:40]!r}: choose one of {', '.join(ENGINE_KINDS)}.")
    path = Path(weights) if weights is not None else None
    if kind == "auto":
        kind = auto_kind(path)
    if kind.startswith("onnx"):
        return "onnx", path
    return "torch", path if path is not None else cached_torch_weights()


def onnx_variant(kind: str) -> str | None:
    """Return the ONNX variant an engine kind asks for ("int8", "float"), or None for the default."""
    return kind.removeprefix("onnx-") if kind.startswith("onnx-") else None


def torch_precision(kind: str) -> str | None:
    """Return the torch precision an engine kind asks for ("fp32", "bf16"), or None for the default."""
    return kind.removeprefix("torch-") if kind.startswith("torch-") else None


def load_engine(kind: str = "auto", weights: Path | str | None = None, progress: Progress | None = None,
                device: str | None = None) -> Engine:
    """Build the engine ``kind`` names (one of ``ENGINE_KINDS``); see :func:`resolve_engine` for the choice.

    Args:
        kind: which engine; ``auto`` is :func:`auto_kind`; ``torch-fp32``/``torch-bf16`` choose the torch
            precision, ``onnx-int8``/``onnx-float`` the ONNX variant.
        weights: a torch ``.pth`` or an ``.onnx`` file; None for the defaults.
        progress: told how assembling the offline ONNX model (its float rewrite, or the import of its weights into
            torch) goes, when that happens.
        device: where a torch engine computes ("cpu", "cuda", "cuda:N"; None is the CPU); the ONNX engine runs on
            the CPU only.

    Returns:
        The engine; its ``weights`` attribute says which weights (and which variant) it uses.

    Raises:
        SynthesisError: unknown kind; a device that is not there, or other than the CPU for the ONNX engine.
        ModelFilesError: missing or corrupt model files; ``weights`` names a folder, a device or a pipe.

    Example:
        >>> import explorer
        >>> engine = explorer.load_engine("onnx")     # the offline int8 ONNX model, no network needed
        >>> isinstance(engine, explorer.Engine), engine.name
        (True, 'onnx')
    """
    resolved, path = resolve_engine(kind, weights)
    if weights is not None:  # before a torch model is built for it, or an .onnx file is rewritten or imported
        regular_file(weights, "The weights file")
    chosen = auto_kind(weights) if kind == "auto" else kind
    if resolved == "torch":
        return TorchEngine(path, precision=torch_precision(chosen), progress=progress, device=device)
    if device is not None and torch_device(device).type != "cpu":
        raise SynthesisError(f"The ONNX engine runs on the CPU only; the device {shown(device)} needs the torch "
                             "engine.")
    return OnnxEngine(path, progress=progress, variant=onnx_variant(chosen))


def warm_engine(kind: str = "auto", progress: Progress | None = None) -> Engine:
    """Return :func:`load_engine`'s engine after :meth:`~explorer.engines.base.Engine.warm_up`: what a server whose
    visitors wait for their first render loads (in the background, see :class:`SharedEngines`)."""
    engine = load_engine(kind, progress=progress)
    engine.warm_up()
    return engine


class SharedEngines:
    """One engine per kind for a whole process (a server's sessions), each loaded once, possibly ahead of need.

    Loading takes up to seconds (the warm-up render included), so the app starts it in the background
    when a page that speaks opens (:meth:`preload`); a synthesis asked for meanwhile waits for that load instead of
    starting another. A failed load is not kept: the next :meth:`get` tries again and raises its error.

    Args:
        loader: builds an engine from a kind and a progress callback; :func:`warm_engine` by default.

    Example:
        >>> from explorer.engines import SharedEngines
        >>> shared = SharedEngines(loader=lambda kind, progress=None: f"{kind} engine")
        >>> shared.loaded("onnx"), shared.get("onnx"), shared.loaded("onnx")
        (False, 'onnx engine', True)
    """

    def __init__(self, loader: Callable[..., Engine] = warm_engine):
        self._loader = loader
        self._engines: dict[str, Engine] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._preloaded: set[str] = set()
        self._guard = threading.Lock()

    def loaded(self, kind: str) -> bool:
        """Whether the engine for ``kind`` is ready (:meth:`get` returns at once)."""
        return kind in self._engines

    def get(self, kind: str, progress: Progress | None = None) -> Engine:
        """Return the engine for ``kind``, loading it unless it is loaded; while another thread loads it, wait.

        Raises:
            ExplorerError: the load failed (e.g. ``SynthesisError`` for an unknown kind, ``ModelFilesError``).
        """
        with self._guard:
            lock = self._locks.setdefault(kind, threading.Lock())
        with lock:
            if kind not in self._engines:
                self._engines[kind] = self._loader(kind, progress=progress)
            return self._engines[kind]

    def preload(self, kind: str) -> threading.Thread | None:
        """Start loading the engine for ``kind`` in a daemon thread, once per kind; None when it is loaded, being
        loaded or was preloaded before.

        A failure is left for the next :meth:`get` to raise where a person sees it; it is not tried again in the
        background, where every rerun of a page would repeat it.
        """
        with self._guard:
            lock = self._locks.setdefault(kind, threading.Lock())
            if kind in self._engines or kind in self._preloaded or lock.locked():
                return None
            self._preloaded.add(kind)
        thread = threading.Thread(target=self._load_quietly, args=(kind,), name=f"preload {kind}", daemon=True)
        thread.start()
        return thread

    def _load_quietly(self, kind: str) -> None:
        try:
            self.get(kind)
        except ExplorerError:
            pass


def available_engines() -> list[tuple[str, str]]:
    """Return ``(kind, description)`` for each engine kind that can be loaded here without a network.

    Torch is listed when ``kokoro-v1_0.pth`` is in the Hugging Face cache or the offline packages are installed (it
    then imports their weights), ``torch-bf16`` only where the CPU computes bf16 natively; onnx and each ONNX variant
    when the offline packages are installed (their integrity is checked when the model is assembled).

    Example:
        >>> import explorer
        >>> kinds = [kind for kind, _ in explorer.available_engines()]
        >>> "onnx" in kinds and "torch" in kinds        # torch runs the offline model's weights if nothing else
        True
    """
    found = []
    cached = cached_torch_weights()
    offline = offline_packages_installed()
    if cached is not None or offline:
        label = f"{TORCH_WEIGHTS} (Hugging Face cache: {cached})" if cached is not None else OFFLINE_TORCH_LABEL
        precisions = [precision for precision in TORCH_PRECISIONS if runnable_precision(precision) == precision]
        found.append(("torch", f"{label}, {runnable_precision(DEFAULT_TORCH_PRECISION)}"))
        found.extend((f"torch-{precision}", f"{label}, {precision}") for precision in precisions)
    if offline:
        labels = {"int8": OFFLINE_LABEL, "float": f"{OFFLINE_LABEL} {FLOAT_LABEL}"}
        found.append(("onnx", labels[DEFAULT_ONNX_VARIANT]))
        found.extend((f"onnx-{variant}", labels[variant]) for variant in ONNX_VARIANTS)
    return found
