"""Which pitch tracker the meters keep: Praat's (``praat-parselmouth``, what ``explorer.meters.pitch_track`` runs)
against librosa's pYIN, on tones whose F0 is known and on Kokoro's renders, whose vocoder is driven by the F0
curve its prosody predictor outputs (so that curve is the truth the audio was made from).

Per case it reports the error of the median F0 in cents and of the 10th-90th percentile spread in semitones (the
two numbers the pitch and pitch-range attributes are built on), the share of truly voiced time tracked as voiced,
and the tracker's time per second of audio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer.audio import SAMPLE_RATE
from explorer.engines.base import style_vector
from explorer.g2p import phonemize
from explorer.meters import F0_MAX_HZ, F0_MIN_HZ, PITCH_HOP_S, pitch_track

__all__ = ["PitchCase", "format_pitch_report", "render_cases", "run_pitch_benchmark", "synthetic_cases", "tracker_pyin"]

RENDER_VOICES = ("af_heart", "am_adam", "bf_emma", "bm_george", "jf_alpha", "zm_yunxi")
RENDER_SENTENCES = ("The quick brown fox jumps over the lazy dog.",
                    "Would you like a cup of tea before we leave for the station?")


@dataclass(frozen=True)
class PitchCase:
    """One clip and the truth about its pitch: the median F0 (Hz) and the 10th-90th percentile spread (st)."""

    name: str
    audio: np.ndarray
    median_hz: float
    spread_st: float


def _spread(f0: np.ndarray) -> float:
    low, high = np.percentile(f0, [10, 90])
    return float(12 * np.log2(high / low))


def synthetic_cases(sample_rate: int = SAMPLE_RATE) -> list[PitchCase]:
    """Return tones of known pitch, 1.5 s each: a sine, a voice-like harmonic complex, the same with a vibrato of
    ±1 semitone at 5 Hz, with noise at 10 dB SNR, and a glide up a fifth, at F0s from 90 to 330 Hz."""
    t = np.arange(int(1.5 * sample_rate)) / sample_rate
    rng = np.random.default_rng(0)
    cases = []
    for f0 in (90.0, 140.0, 220.0, 330.0):
        curves = {"sine": np.full_like(t, f0), "voice": np.full_like(t, f0),
                  "vibrato": f0 * 2 ** (np.sin(2 * np.pi * 5 * t) / 12), "noisy": np.full_like(t, f0),
                  "glide": f0 * 2 ** (7 / 12 * t / t[-1])}
        for kind, curve in curves.items():
            phase = 2 * np.pi * np.cumsum(curve) / sample_rate
            harmonics = range(1, 2) if kind == "sine" else range(1, int(4000 / f0))
            audio = sum(np.sin(k * phase) / k for k in harmonics if k * curve.max() < sample_rate / 2)
            audio = 0.3 * audio / np.max(np.abs(audio))
            if kind == "noisy":
                audio = audio + rng.normal(scale=np.sqrt(np.mean(audio**2) / 10), size=audio.size)
            cases.append(PitchCase(f"{kind} {f0:g} Hz", audio, float(np.median(curve)), _spread(curve)))
    return cases


def render_cases(engine: object, voices: object) -> list[PitchCase]:
    """Return Kokoro renders with the truth from the predictor's own F0 curve (frames above ``F0_MIN_HZ``)."""
    import torch

    cases = []
    for sentence in RENDER_SENTENCES:
        phonemes = phonemize(sentence, "a").phonemes
        tokens = torch.from_numpy(engine.token_ids(phonemes))
        for name in RENDER_VOICES:
            style = torch.from_numpy(style_vector(voices[name].pack, phonemes)).unsqueeze(0)
            with torch.inference_mode():
                curve = engine.runner.predict_prosody(tokens, style, 1.0).f0.float().numpy().reshape(-1)
            curve = curve[curve > F0_MIN_HZ]
            torch.manual_seed(0)
            audio = np.asarray(engine.render(phonemes, voices[name].pack).audio, dtype=np.float64)
            cases.append(PitchCase(f"{name}: {sentence[:20]}…", audio, float(np.median(curve)), _spread(curve)))
    return cases


def tracker_pyin(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """librosa's probabilistic YIN with the meters' range and hop: F0 in Hz per frame, NaN where unvoiced."""
    import librosa

    f0, _, _ = librosa.pyin(audio.astype(np.float64), fmin=F0_MIN_HZ, fmax=F0_MAX_HZ, sr=sample_rate,
                            frame_length=2048, hop_length=int(PITCH_HOP_S * sample_rate))
    return f0


TRACKERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"praat": pitch_track, "pyin": tracker_pyin}


def run_pitch_benchmark(engine: object | None = None, voices: object | None = None) -> list[dict]:
    """Run every tracker on the synthetic cases and, given a torch engine and voices, on renders.

    Returns:
        One row per tracker and case family ("synthetic", "renders"): median and worst error of the median F0
        (cents), median and worst error of the spread (semitones), voiced share, milliseconds per audio second.
    """
    families = {"synthetic": synthetic_cases()}
    if engine is not None:
        families["renders"] = render_cases(engine, voices)
    rows = []
    for tracker, track in TRACKERS.items():
        track(families["synthetic"][0].audio)  # first call pays imports and compilation
        for family, cases in families.items():
            median_errors, spread_errors, voiced, seconds, audio_seconds = [], [], [], 0.0, 0.0
            for case in cases:
                started = time.perf_counter()
                f0 = track(case.audio)
                seconds += time.perf_counter() - started
                audio_seconds += case.audio.size / SAMPLE_RATE
                found = f0[np.isfinite(f0)]
                voiced.append(found.size / max(f0.size, 1))
                if found.size < 3:
                    median_errors.append(np.inf)
                    spread_errors.append(np.inf)
                    continue
                median_errors.append(abs(1200 * np.log2(np.median(found) / case.median_hz)))
                spread_errors.append(abs(_spread(found) - case.spread_st))
            rows.append({
                "tracker": tracker, "cases": f"{family} ({len(cases)})",
                "median F0 error, cents (median / worst)": f"{np.median(median_errors):.1f} / {max(median_errors):.1f}",
                "spread error, st (median / worst)": f"{np.median(spread_errors):.2f} / {max(spread_errors):.2f}",
                "voiced share": round(float(np.median(voiced)), 3),
                "ms per audio second": round(1000 * seconds / audio_seconds, 1),
            })
    return rows


def format_pitch_report(rows: list[dict]) -> str:
    """Return the rows as a plain-text table."""
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False)
