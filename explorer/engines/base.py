"""What every engine shares: the :class:`Engine` interface, its input checks and its result, and the machine facts
the engines are chosen and tuned by: the CPU (:func:`physical_cores`, :func:`native_bf16`) and the memory the
process may use (:func:`cgroup_memory_limit`, :func:`physical_memory`).

An engine turns phonemes and a style vector into 24 kHz audio. Given a whole voicepack, it styles ``phonemes`` with
row ``len(phonemes) - 1`` (clipped to the pack), counted on the phoneme string as given, exactly as
``kokoro.KPipeline`` does. kokoro-onnx takes row ``len(tokens)`` instead (tokens without the two pads, so one row
later when every symbol is known); pass a 256-vector to choose a row yourself.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explorer.errors import ModelFilesError, NoSoundError, SynthesisError, VoiceError
from explorer.paths import CONFIG_PATH, load_config
from explorer.voices import PACK_ROWS, STYLE_DIM, Voice, as_pack

__all__ = [
    "CONTEXT_TOKENS",
    "WARM_UP_PHONEMES",
    "Engine",
    "Rendered",
    "cgroup_memory_limit",
    "load_vocab",
    "native_bf16",
    "physical_cores",
    "physical_memory",
    "release_freed_memory",
    "runnable_precision",
    "style_vector",
    "usable_memory",
]

CONTEXT_TOKENS = 510
"""Tokens one call may take, counting the two pads: at most 508 phonemes (the pack has a row for each length)."""
MIN_SPEED = 0.25
MAX_SPEED = 4.0
SILENT_PEAK_DBFS = -60.0
"""A render whose loudest sample stays below this is silence to a listener. Measured with the offline int8 model on
one sentence: the 54 stock voices (and af_heart scaled by 1.003) peak at -20 to +1 dBFS, a lone punctuation mark at
about -10 dBFS, while a pack set to 10 everywhere renders 22 s peaking at -180 dBFS."""
WARM_UP_PHONEMES = "həlˈO"
"""What :meth:`Engine.warm_up` renders: short, so it costs a fraction of a second."""
OVERLOAD_RMS = 1.0
"""A render whose RMS level is above full scale is mostly clipped noise, not speech. Measured likewise: stock voices
0.05-0.2, a pack of zeros 0.46; stock voices scaled so that their largest value is 20-32 (packs may hold up to 32),
from 3 to 1e18."""


@dataclass(frozen=True, eq=False)
class Rendered:
    """What one engine call produced.

    Attributes:
        audio: mono float32 audio at ``SAMPLE_RATE`` (read-only).
        durations: predicted frames per token, including the two pads (int64, read-only), or None when the model
            does not output them (the official int8 ONNX export outputs audio only). A frame is
            ``2 * prod(upsample_rates) * gen_istft_hop_size`` samples (600 for Kokoro v1.0, 25 ms).
        compute_seconds: time spent in the model call, not counting the wait for another thread's call.
    """

    audio: np.ndarray
    durations: np.ndarray | None
    compute_seconds: float


def physical_cores() -> int:
    """Return the physical cores this process may use: the thread count at which Kokoro runs fastest."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
    except ImportError:
        physical = usable
    return max(1, min(physical, usable))


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` among its /proc/cpuinfo flags).

    Only then is torch's bf16 autocast faster than fp32; elsewhere torch emulates bf16. Where /proc/cpuinfo cannot be
    read (not Linux), False.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.partition(":")[2].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def runnable_precision(precision: str) -> str:
    """Return the precision a torch engine asked for ``precision`` runs in here: bf16 only where the CPU computes it
    natively (:func:`native_bf16`), fp32 otherwise."""
    return "fp32" if precision == "bf16" and not native_bf16() else precision


_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")
_NO_LIMIT = 1 << 60
"""A cgroup limit this large means none: cgroup v1 writes "no limit" as 9223372036854771712 (2**63 less a page)."""


def cgroup_memory_limit(root: Path | str = _CGROUP_ROOT, membership: Path | str = _PROC_CGROUP) -> int | None:
    """Return the memory limit, in bytes, of the cgroup this process runs in; None where none is set or none is found.

    Reads cgroup v2's ``memory.max`` and cgroup v1's ``memory/memory.limit_in_bytes`` in the process's own cgroup (as
    ``membership`` names it) and in every cgroup above it, since a parent's limit holds for its children, and returns
    the smallest. In a container the process's cgroup is usually the mount's root, which is read in any case. A file
    that is missing, unreadable or not a number, ``max``, and values of 2**60 or more (v1's "no limit") set none.

    Args:
        root: where the cgroup filesystem is mounted.
        membership: the file naming the process's cgroups (``/proc/self/cgroup``); when it cannot be read, only the
            root cgroup is read.

    Example:
        >>> from explorer.engines import cgroup_memory_limit
        >>> cgroup_memory_limit("/no/cgroup/here") is None
        True
    """
    root = Path(root)
    try:
        lines = Path(membership).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    own = {"v2": "/", "v1": "/"}  # hierarchy-ID:controllers:path; v2's line is 0::path, v1's names "memory"
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "" and line.startswith("0:"):
            own["v2"] = path
        elif "memory" in controllers.split(","):
            own["v1"] = path
    files = [*_up_to_root(root, own["v2"], "memory.max"),
             *_up_to_root(root / "memory", own["v1"], "memory.limit_in_bytes")]
    limits = [limit for limit in map(_read_limit, files) if limit is not None]
    return min(limits, default=None)


def _up_to_root(mount: Path, path: str, name: str) -> list[Path]:
    """Return the file ``name`` in the cgroup at ``path`` under ``mount`` and in each cgroup above it, the root last."""
    parts = [part for part in path.strip().split("/") if part and part not in {".", ".."}]
    return [mount.joinpath(*parts[:depth], name) for depth in range(len(parts), -1, -1)]


def _read_limit(path: Path) -> int | None:
    """Return the limit a cgroup memory file sets in bytes, or None for no limit (missing, unreadable, ``max``)."""
    try:
        value = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if 0 < value < _NO_LIMIT else None


def physical_memory() -> int | None:
    """Return the machine's physical memory in bytes, or None where it cannot be read."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows), or no such name
        total = -1
    if total > 0:
        return total
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except (ImportError, OSError):
        return None


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Hand the heap memory this process has freed back to the system; return whether it could (glibc only).

    A process that renders many utterances of different lengths frees large tensors of every size, and glibc keeps
    the freed blocks in its heap rather than returning them: measured, a matcher process grew from 0.97 to 1.85 GB
    over 140 evaluations, 0.63 GB of it freed memory that ``malloc_trim`` returned, at about 10 ms a call (29 ms at
    most) against 1.6 s an evaluation.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def usable_memory(root: Path | str = _CGROUP_ROOT, membership: Path | str = _PROC_CGROUP) -> int | None:
    """Return the bytes of memory this process may use: the smaller of its cgroup's limit
    (:func:`cgroup_memory_limit`, read with ``root`` and ``membership``) and the machine's physical memory; None when
    neither can be read."""
    found = [amount for amount in (cgroup_memory_limit(root, membership), physical_memory()) if amount is not None]
    return min(found, default=None)


def load_vocab(config: Path | str | Mapping[str, Any] = CONFIG_PATH) -> dict[str, int]:
    """Return the phoneme-to-id vocab of a Kokoro config (a ``config.json`` path or the dict), without torch.

    Raises:
        ModelFilesError: the file is missing or unreadable, or holds no vocab.
    """
    settings = load_config(config)
    vocab = settings.get("vocab")
    if not isinstance(vocab, Mapping) or not vocab:
        raise ModelFilesError("The model config has no phoneme vocab ('vocab').")
    return {str(symbol): int(token) for symbol, token in vocab.items()}


def style_vector(style: object, phonemes: str) -> np.ndarray:
    """Return the float32 256-vector that styles ``phonemes``.

    Args:
        style: a style vector (``[256]`` or ``[1, 256]``), or a voicepack (``[510, 256]`` or ``[510, 1, 256]``) from
            which row ``len(phonemes) - 1`` is taken, clipped to 0-509 (see the module docstring).
        phonemes: the phoneme string as it will be rendered, unknown symbols included (they count, as in KPipeline).

    Raises:
        SynthesisError: wrong shape, not numeric, or NaN/infinite values.
    """
    if hasattr(style, "detach"):
        style = style.detach().cpu().float().numpy()
    try:
        array = np.asarray(style)
    except Exception as exc:  # noqa: BLE001 - anything numpy refuses is "not numeric" to a person
        raise SynthesisError(f"The style is not a numeric array ({exc}).") from None
    if array.dtype.kind not in "fiu":
        raise SynthesisError(f"The style is not numeric (dtype {array.dtype}).")
    if array.ndim >= 2 and array.shape[0] == PACK_ROWS:
        try:
            array = as_pack(array, "style")[Voice.row_for_phonemes(phonemes)]
        except VoiceError as exc:
            raise SynthesisError(str(exc)) from None
    elif array.shape in ((STYLE_DIM,), (1, STYLE_DIM)):
        array = array.reshape(STYLE_DIM)
    else:
        raise SynthesisError(
            f"The style has shape {list(array.shape)}; give a 256-value style vector or a [510, 256] voicepack."
        )
    vector = np.array(array, dtype=np.float32)
    if not np.isfinite(vector).all():
        raise SynthesisError("The style contains NaN or infinite values.")
    return vector


def _check_speed(speed: object) -> float:
    """Return ``speed`` as a float when it is a finite number from 0.25 to 4 (1 is the voice's natural pace).

    Raises:
        SynthesisError: not a number, NaN/infinite, or outside 0.25-4.
    """
    try:
        value = float(speed)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SynthesisError(f"Speed {str(speed)[:40]!r} is not a number.") from None
    if not math.isfinite(value) or not MIN_SPEED <= value <= MAX_SPEED:
        raise SynthesisError(f"Speed {value:g} is out of range: use a value from {MIN_SPEED:g} to {MAX_SPEED:g}.")
    return value


def _check_audio(audio: np.ndarray) -> None:
    """Refuse a model's audio that is no sound: NaN or infinite, silent, or overloaded.

    A style far outside the stock voices (values of tens, or a whole pack set to one value) drives Kokoro's decoder
    out of range, and what comes out is NaN, a constant near zero, or noise thousands of times full scale, while a
    WAV writer would quietly clip it or write silence. Every engine's audio passes through here, so no such render
    reaches a player or a file; the sentence says what to change.

    Raises:
        NoSoundError: the audio is not finite, peaks below ``SILENT_PEAK_DBFS``, or has an RMS level above
            ``OVERLOAD_RMS``.
    """
    if not np.isfinite(audio).all():
        heard = "audio that is not a number (NaN or infinite values)"
    elif np.abs(audio).max(initial=0.0) < 10 ** (SILENT_PEAK_DBFS / 20):
        heard = f"silence (no sample reaches {SILENT_PEAK_DBFS:g} dBFS)"
    elif (level := float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))) > OVERLOAD_RMS:
        heard = f"noise far beyond full scale (RMS level {level:.3g}; full scale is 1)"
    else:
        return
    raise NoSoundError(
        f"This voice renders {heard}: its style is far outside the stock voices, so move it back toward one "
        "(smaller edits or amounts)."
    )


class Engine(ABC):
    """Renders phonemes with a style vector; one instance can serve every thread and Streamlit session at once.

    An Engine has 2 responsibilities:

    1. Validate a request (phonemes, style, speed) into the model's inputs, refusing bad ones with SynthesisError.
    2. Run its model, one call at a time: a lock serialises model calls, because concurrent calls would only fight
       over the same cores (and the torch vocoder shares one random generator). Everything else is read-only.

    Attributes:
        name: "torch" or "onnx".
        weights: which weights are in use, in words (file and where it lives).
        vocab: phoneme symbol to token id, from the model config.
        context_tokens: tokens one call may take including the two pads (510: at most 508 phonemes).
        load_seconds: how long the parts of building it took, by part, where the engine times them (empty
            otherwise): what ``bench startup`` reports.

    Example:
        >>> import explorer
        >>> engine = explorer.load_engine("onnx")
        >>> speech = explorer.synthesize("Hi.", style=explorer.load_voices()["af_heart"].pack, engine=engine)
        >>> engine.max_phonemes, speech.engine
        (508, 'onnx')
    """

    name: str
    context_tokens: int = CONTEXT_TOKENS

    def __init__(self, vocab: Mapping[str, int], weights: str, load_seconds: Mapping[str, float] | None = None):
        self.vocab = dict(vocab)
        self.weights = weights
        self.load_seconds = dict(load_seconds or {})
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={self.weights!r})"

    @property
    def max_phonemes(self) -> int:
        """The most phonemes (vocab symbols) one call can render."""
        return self.context_tokens - 2

    def unknown_symbols(self, phonemes: str) -> list[str]:
        """Return the distinct symbols of ``phonemes`` outside the vocab, in order of first appearance."""
        return list(dict.fromkeys(symbol for symbol in phonemes if symbol not in self.vocab))

    def token_ids(self, phonemes: str) -> np.ndarray:
        """Return the model input for ``phonemes``: int64 ``[1, T]``, vocab ids wrapped in a 0 at each end.

        Symbols outside the vocab are dropped (callers that want to warn use :meth:`unknown_symbols`).

        Raises:
            SynthesisError: not a string, nothing but spaces once unknown symbols are dropped, or more than
                ``max_phonemes`` symbols left.
        """
        if not isinstance(phonemes, str):
            raise SynthesisError(f"Phonemes must be a string, not {type(phonemes).__name__}.")
        if not phonemes.strip():
            raise SynthesisError("There are no phonemes to render: the input is empty.")
        known = [symbol for symbol in phonemes if symbol in self.vocab]
        if not "".join(known).strip():
            raise SynthesisError(f"The phonemes {phonemes[:40]!r} contain no symbol Kokoro can pronounce.")
        ids = [self.vocab[symbol] for symbol in known]
        if len(ids) > self.max_phonemes:
            raise SynthesisError(
                f"{len(ids)} phonemes are too many for one call: the model takes at most {self.max_phonemes}; "
                "split the text into chunks (explorer.synth does this)."
            )
        return np.array([[0, *ids, 0]], dtype=np.int64)

    def render(self, phonemes: str, style: object, speed: float = 1.0) -> Rendered:
        """Render ``phonemes`` in the voice ``style`` describes. Safe to call from many threads at once.

        Args:
            phonemes: Kokoro phoneme symbols (misaki's); symbols outside the vocab are dropped.
            style: a 256-vector, or a voicepack from which row ``len(phonemes) - 1`` is used (see ``style_vector``).
            speed: pace multiplier from 0.25 to 4; 1 is the voice's natural pace.

        Returns:
            The audio at 24 kHz, the predicted durations when the model gives them, and the compute time.

        Raises:
            SynthesisError: bad phonemes, style or speed; the model failed on this input; or its audio is no sound
                (NaN or infinite, silent, or overloaded: see :func:`_check_audio`).
        """
        tokens = self.token_ids(phonemes)
        vector = style_vector(style, phonemes)
        pace = _check_speed(speed)
        with self._lock:
            start = time.perf_counter()
            audio, durations = self._run(tokens, vector, pace)
            elapsed = time.perf_counter() - start
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        _check_audio(audio)
        audio.setflags(write=False)
        if durations is not None:
            durations = np.asarray(durations, dtype=np.int64).reshape(-1)
            durations.setflags(write=False)
        return Rendered(audio, durations, elapsed)

    def warm_up(self) -> None:
        """Render a short phrase once and discard it, so the next request does not pay the runtime's one-time costs
        (thread pools, kernels chosen for a new shape). Worth it where a person waits for the first request (the
        app calls it in the background after a load); a one-off command that renders once anyway skips it."""
        with self._lock:
            self._run(self.token_ids(WARM_UP_PHONEMES), np.zeros(STYLE_DIM, dtype=np.float32), 1.0)
        self.clear_cache()

    def clear_cache(self) -> None:
        """Forget what the engine keeps from earlier calls, so the next render does all of its work (benchmarks
        time it so); an engine that keeps nothing has nothing to do."""

    @abstractmethod
    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the model on validated input (called under the lock); return audio and durations (or None)."""
