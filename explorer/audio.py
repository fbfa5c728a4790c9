"""Audio in and out: WAV bytes, a bounded cache of renderings, local playback, and loudness matching for A/B.

Four responsibilities:

1. WAV encoding and decoding through ``soundfile`` (:func:`wav_bytes`, :func:`read_wav`), and reading an audio file
   a person named, refused before decoding when it is not audio, empty or huge (:func:`read_audio_file`).
2. :class:`AudioCache`, a thread-safe LRU bounded by bytes, keyed by :func:`audio_cache_key`, so replaying an A/B
   pair never synthesises twice.
3. :func:`play` through ``sounddevice`` (imported only when playing), which reports (never raises) when PortAudio or
   an output device is missing, as on servers, CI and Streamlit Community Cloud.
4. :func:`loudness_match` (BS.1770 integrated loudness through ``pyloudnorm``, :func:`integrated_lufs`) and
   :func:`rms_dbfs`, so voices are compared at the same loudness.

Example:
    >>> import numpy as np
    >>> from explorer import audio
    >>> tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(audio.SAMPLE_RATE) / audio.SAMPLE_RATE)
    >>> samples, rate = audio.read_wav(audio.wav_bytes(tone))
    >>> samples.shape, rate
    ((24000,), 24000)
    >>> louder, quieter = audio.loudness_match(tone, tone / 4)
    >>> round(audio.integrated_lufs(louder), 1) == round(audio.integrated_lufs(quieter), 1)
    True
    >>> cache = audio.AudioCache(max_bytes=10_000_000)
    >>> key = audio.audio_cache_key("onnx", "int8", "həlˈoʊ", np.zeros(256), 1.0)
    >>> cache.put(key, tone), np.array_equal(cache.get(key), tone), cache.stats().hits
    (True, True, 1)
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from explorer.errors import SynthesisError, printable, shown

__all__ = [
    "SAMPLE_RATE",
    "AudioCache",
    "CacheStats",
    "PlaybackResult",
    "audio_cache_key",
    "integrated_lufs",
    "is_silent",
    "loudness_match",
    "play",
    "read_audio_bytes",
    "read_audio_file",
    "read_wav",
    "rms_dbfs",
    "style_sha256",
    "wav_bytes",
]

SAMPLE_RATE = 24_000
"""Kokoro's output rate, the default everywhere here."""

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
_MAX_AUDIO_FILE_BYTES = 64 * 1024 * 1024
"""Largest audio file :func:`read_audio_bytes` reads (23 minutes of 16-bit mono at 24 kHz)."""
_MAX_AUDIO_SAMPLES = 32 * 1024 * 1024
"""Most samples (frames times channels) it decodes, checked from the header first: 128 MiB as float32, whatever the
compression (a small FLAC file of silence can hold hours)."""


@dataclass(frozen=True)
class PlaybackResult:
    """Whether local playback started, and why not when it did not.

    Attributes:
        played: True when the audio was handed to an output device.
        reason: one sentence for a person: the device used, or what is missing.
        device: the output device's name when played, else empty.
    """

    played: bool
    reason: str
    device: str = ""


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of an :class:`AudioCache`.

    Attributes:
        hits: lookups that found an entry.
        misses: lookups that did not.
        bytes: bytes held now.
        items: entries held now.
        max_bytes: the bound.
    """

    hits: int
    misses: int
    bytes: int
    items: int
    max_bytes: int


def _checked(audio: object) -> np.ndarray:
    """Return ``audio`` as float32 (1-D mono or 2-D frames x channels), refusing NaN/Inf and other shapes."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim not in (1, 2) or array.size == 0:
        raise SynthesisError(f"Audio must be a non-empty 1-D (mono) or 2-D array; got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise SynthesisError("Audio contains NaN or infinite samples.")
    return array


def wav_bytes(audio: object, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> bytes:
    """Encode audio as a WAV file in memory, clipping samples to [-1, 1] first.

    Args:
        audio: float samples, 1-D mono or 2-D frames x channels.
        sample_rate: samples per second.
        subtype: a ``soundfile`` WAV subtype: "PCM_16" (default, what browsers and players expect), "PCM_24", or
            "FLOAT" (lossless for float32 audio).

    Returns:
        The bytes of a complete WAV file.

    Raises:
        SynthesisError: empty, non-finite or misshapen audio, a bad sample rate, or an unknown subtype.
    """
    array = np.clip(_checked(audio), -1.0, 1.0)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise SynthesisError(f"The sample rate must be a positive whole number of Hz; got {sample_rate}.")
    if not soundfile.check_format("WAV", subtype):
        raise SynthesisError(f"WAV cannot hold subtype {subtype!r}; use PCM_16, PCM_24 or FLOAT.")
    buffer = io.BytesIO()
    soundfile.write(buffer, array, int(sample_rate), format="WAV", subtype=subtype)
    return buffer.getvalue()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Decode WAV (or any format libsndfile reads) from bytes.

    Returns:
        ``(audio, sample_rate)``: float32 samples in [-1, 1] (1-D for mono) and the rate in Hz.

    Raises:
        SynthesisError: the bytes are not audio libsndfile can read.
    """
    try:
        audio, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise SynthesisError(f"These bytes are not a readable audio file ({exc}).") from exc
    return audio, int(sample_rate)


def read_audio_file(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file a person named (WAV, or any format libsndfile reads), for playback.

    The file is checked before anything is decoded: it must exist, hold 1 byte to 64 MiB, and pass
    :func:`read_audio_bytes`'s checks.

    Returns:
        ``(audio, sample_rate)`` as :func:`read_wav` gives them.

    Raises:
        SynthesisError: no such file, an empty, oversize or unreadable file, or one holding no audio or too much.

    Example:
        >>> import numpy as np
        >>> from pathlib import Path
        >>> from explorer import audio
        >>> _ = Path("beep.wav").write_bytes(audio.wav_bytes(np.full(2400, 0.25)))
        >>> samples, rate = audio.read_audio_file("beep.wav")
        >>> samples.shape, rate
        ((2400,), 24000)
    """
    path = Path(path)
    name = path.name or str(path)
    try:
        if not path.is_file():
            raise SynthesisError(f"No audio file at {shown(str(path), 200)}.")
        _check_audio_size(path.stat().st_size, shown(name))   # before the bytes are read
        data = path.read_bytes()
    except OSError as exc:
        raise SynthesisError(f"Audio file {shown(name)} cannot be read ({shown(exc.strerror or exc, 120)}).") from None
    return read_audio_bytes(data, name)


def _check_audio_size(size: int, name: str) -> None:
    if size > _MAX_AUDIO_FILE_BYTES:
        raise SynthesisError(f"Audio file {name} holds {size / 2**20:.0f} MiB; at most "
                             f"{_MAX_AUDIO_FILE_BYTES // 2**20} MiB are read.")


def read_audio_bytes(data: bytes, name: str = "upload") -> tuple[np.ndarray, int]:
    """Decode the bytes of an audio file a person gave (a file they named, an upload, a recording), checked before
    anything is decoded: 1 byte to 64 MiB, audio by its header, and 1 to 32 Mi samples (frames times channels).

    Returns:
        ``(audio, sample_rate)`` as :func:`read_wav` gives them.

    Raises:
        SynthesisError: empty or oversize bytes, no audio format libsndfile reads, or no audio or too much in it;
            the message names the file as ``name``.
    """
    name = shown(name)
    if not data:
        raise SynthesisError(f"Audio file {name} is empty.")
    _check_audio_size(len(data), name)
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise SynthesisError(f"{name} is not an audio file: libsndfile reads no audio format in it.") from None
    samples = info.frames * info.channels
    if info.frames <= 0 or info.channels <= 0:
        raise SynthesisError(f"Audio file {name} holds no audio (0 samples).")
    if samples > _MAX_AUDIO_SAMPLES:
        minutes = info.frames / max(info.samplerate, 1) / 60
        raise SynthesisError(f"Audio file {name} holds {minutes:.0f} minutes of {info.channels}-channel audio; at "
                             f"most {_MAX_AUDIO_SAMPLES // 2**20} Mi samples are read (23 minutes of mono at 24 kHz).")
    return read_wav(data)


def style_sha256(style: object) -> str:
    """Hash a style vector or voicepack by its float32 values and shape (the same numbers give the same hash)."""
    array = np.ascontiguousarray(np.asarray(style, dtype=np.float32))
    digest = hashlib.sha256(str(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def audio_cache_key(
    engine_name: str, weights: str, phonemes: str | Sequence[str], style: object, speed: float
) -> str:
    """Return the cache key of one rendering: everything that decides the audio, and nothing else.

    Args:
        engine_name: "torch" or "onnx".
        weights: the engine's weights description.
        phonemes: the phoneme string, or the chunks' phoneme strings in order.
        style: the style vector or voicepack (hashed by value).
        speed: speaking rate.

    Returns:
        A hex SHA-256 string.

    Raises:
        SynthesisError: ``speed`` is not a number.
    """
    chunks = [phonemes] if isinstance(phonemes, str) else list(phonemes)
    try:
        rate = float(speed)
    except (TypeError, ValueError):
        raise SynthesisError(f"Speed {str(speed)[:40]!r} is not a number.") from None
    fields = [engine_name, weights, chunks, style_sha256(style), repr(rate)]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def _size_of(value: object) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, np.ndarray):
        return value.nbytes
    audio = getattr(value, "audio", None)
    if isinstance(audio, np.ndarray):
        return audio.nbytes
    raise TypeError(f"Cannot size a {type(value).__name__}; pass size= to AudioCache.put.")


class AudioCache:
    """A thread-safe least-recently-used cache bounded by the bytes of audio it holds.

    Values are audio arrays, WAV bytes, or objects with an ``audio`` array (such as a ``Synthesis``); arrays are
    stored as read-only copies, so nobody can change what another caller gets back.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        if max_bytes < 0:
            raise ValueError("max_bytes must be zero or more")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        """Return the value stored under ``key`` (marking it recently used), or None."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._hits += 1
            self._items.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: object, size: int | None = None) -> bool:
        """Store ``value`` under ``key``, evicting least-recently-used entries until it fits.

        Args:
            key: usually from :func:`audio_cache_key`.
            value: audio array, WAV bytes, or an object with an ``audio`` array.
            size: its size in bytes, when it cannot be worked out from the value.

        Returns:
            True if stored; False when the value alone is larger than ``max_bytes`` (it is not stored).
        """
        size = _size_of(value) if size is None else int(size)
        if isinstance(value, np.ndarray):
            value = value.copy()
            value.setflags(write=False)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return False
            while self._items and self._bytes + size > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
            self._items[key] = (value, size)
            self._bytes += size
            return True

    def clear(self) -> None:
        """Drop every entry (the hit and miss counts are kept)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        """Return hits, misses, bytes and items held, and the bound."""
        with self._lock:
            return CacheStats(self._hits, self._misses, self._bytes, len(self._items), self.max_bytes)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def play(audio: object, sample_rate: int = SAMPLE_RATE, *, blocking: bool = False) -> PlaybackResult:
    """Play audio on the default output device, if there is one.

    ``sounddevice`` is imported here, not with this module: it raises OSError on import when the PortAudio library is
    missing, and PortAudio reports an error when no output device exists; both are reported in the result, never
    raised.

    Args:
        audio: float samples (clipped to [-1, 1]).
        sample_rate: samples per second.
        blocking: wait until playback has finished (a command line must, or its exit cuts the sound off).

    Returns:
        ``played``, a sentence saying on which device (``Playing on ...`` or, when blocking, ``Played on ...``) or what
        is missing, and the device's name.

    Raises:
        SynthesisError: the audio itself is unusable (empty, NaN, wrong shape).
    """
    array = np.clip(_checked(audio), -1.0, 1.0)
    try:
        import sounddevice
    except OSError:
        return PlaybackResult(False, "No local playback: the PortAudio library is missing (on Debian or Ubuntu: "
                                     "apt install libportaudio2).")
    except ImportError:
        return PlaybackResult(False, "No local playback: the sounddevice package is not installed.")
    try:
        device = str(sounddevice.query_devices(kind="output")["name"])
        sounddevice.play(array, int(sample_rate), blocking=blocking)
    except (sounddevice.PortAudioError, ValueError) as exc:
        return PlaybackResult(False, f"No local playback: no usable audio output device ({printable(exc)[:120]}).")
    return PlaybackResult(True, f"{'Played' if blocking else 'Playing'} on {device}.", device)


def _rms(array: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(array, dtype=np.float64))))


SILENT_PEAK = 1e-4
"""A recording whose loudest sample stays below this (-80 dBFS) holds nothing to hear or measure."""


def is_silent(audio: np.ndarray) -> bool:
    """True when ``audio`` (samples in [-1, 1]) is empty or its loudest sample is below ``SILENT_PEAK``: a recording
    with no voice in it, which resemblyzer's level normalisation (it divides by the RMS) cannot take either."""
    return float(np.abs(audio).max(initial=0.0)) < SILENT_PEAK


def rms_dbfs(audio: object) -> float:
    """Return the RMS level in dB relative to full scale 1.0 (a full-scale sine reads -3.01; silence -inf)."""
    rms = _rms(_checked(audio))
    return 20.0 * float(np.log10(rms)) if rms > 0 else float("-inf")


def integrated_lufs(audio: object, sample_rate: int = SAMPLE_RATE) -> float:
    """Return the BS.1770-4 integrated loudness of a clip in LUFS (``pyloudnorm``; -inf for silence). A clip shorter
    than the standard's 400 ms gating block is measured as one block of its own length.

    Raises:
        SynthesisError: empty, non-finite or misshapen audio.
    """
    import pyloudnorm

    array = _checked(audio).astype(np.float64)
    if not array.any():
        return float("-inf")
    meter = pyloudnorm.Meter(sample_rate, block_size=min(0.4, len(array) / sample_rate))
    with np.errstate(divide="ignore"):  # every block gated away reads -inf, as silence does
        return float(meter.integrated_loudness(array))


def loudness_match(
    *clips: object, target_lufs: float | None = None, sample_rate: int = SAMPLE_RATE,
) -> tuple[np.ndarray, ...]:
    """Scale clips to the same BS.1770 integrated loudness (``integrated_lufs``), so a listening comparison is not
    won by the louder one.

    Without ``target_lufs`` every clip is brought to the first one's loudness and the first is left as it is; with
    it, all are brought to that level. If a scaled peak would leave [-1, 1], every clip is turned down by the same
    factor until the highest peak is exactly 1: their loudness stays equal (if quieter than asked) and nothing
    clips. A silent clip cannot be matched and keeps its zeros.

    Returns:
        The clips scaled, float32, in the order given.

    Raises:
        SynthesisError: no clip, or a clip that is empty, non-finite or misshapen.
    """
    if not clips:
        raise SynthesisError("Loudness matching needs at least one clip.")
    arrays = [_checked(clip) for clip in clips]
    levels = [integrated_lufs(array, sample_rate) for array in arrays]
    target = levels[0] if target_lufs is None else float(target_lufs)
    gains = [10.0 ** ((target - level) / 20.0) if np.isfinite(level) and np.isfinite(target) else 1.0
             for level in levels]
    peak = max(float(np.abs(array).max()) * gain for array, gain in zip(arrays, gains))
    if peak > 1.0:
        gains = [gain / peak for gain in gains]
    return tuple((array * gain).astype(np.float32) for array, gain in zip(arrays, gains))
