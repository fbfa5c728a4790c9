"""Measure the named attribute directions (``build_axes``) and prove them on voices and texts the build never used
(``check_axes``): what ``python -m explorer axes build`` and ``axes check`` run.

How a direction is found (regression on audio, not gradients through the predictor):

1. **Fit.** Around each base voice (English stock voices and 50/50 mixes of them) the build renders random small
   moves in the top PCA components of both halves (in units of each component's spread across the stock voices,
   so moves stay among the voices) and measures every attribute in the audio (Praat pitch, speaking time, BS.1770
   loudness, spectral centroid). A least-squares fit of the attribute changes on the moves gives the average local
   Jacobian. Audio rather than the predictor's own F0 and duration outputs, because a listener hears the audio: the
   fit sees how the vocoder turns a prosody edit into loudness and brightness too, so those can be held still.
2. **Solve.** Each attribute's direction is the smallest move (in those units) within the halves that carry it
   (``Attribute.halves``) whose fitted effect is one unit of the attribute and none of the others, each attribute
   weighed by the span the calibration searches: first-order cross-talk is cancelled by construction.
3. **Calibrate.** Steps along each direction are rendered on calibration voices; the median measured change at each
   step, with its spread, becomes the curve an amount is read through, and the range offered is where every voice
   moved monotonically, the other attributes moved by less than 8 % of their own ranges (the goal is 10 %), and
   speech survived (word error rate at most 0.05, similarity to the start voice at least 0.80). The calibration
   voices are ones the fit never moved, and pace is read from the predicted durations, as in the fit.
4. **Gains.** Voices answer a step differently, by up to 2x, so every English stock voice but the check's is moved
   to half and all of each end of the calibrated range, and its change over the curve's is its gain there. A
   ridge regression on the voice's top PCA coordinates predicts any voice's gain, kept only where it beats the
   voices' mean in leave-one-out; the edit reads the curve where it, times the voice's gain, gives the amount
   asked, never past the calibrated end. The range offered is what three voices in four reach there.

Every render is seeded, so a build is deterministic on one machine; the vocoder's noise is the same for a voice and
its moved copy, so the differences measured are the edit's.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.analysis import LAYERS, summary_vectors
from explorer.attributes import (
    ATTRIBUTES,
    AXES_VERSION,
    GAIN_LIMITS,
    GAIN_SIDES,
    AttributeAxis,
    VoiceAxes,
    VoiceGain,
    attribute_change,
    load_axes,
    phoneme_count,
)
from explorer.cache import Progress
from explorer.errors import AxesError
from explorer.engines.base import style_vector
from explorer.g2p import phonemize
from explorer.meters import (
    F0_MIN_HZ,
    attribute_values,
    intelligibility,
    pitch_values,
    speaker_similarity,
)
from explorer.paths import VOICES_DIR, atomic_write_bytes
from explorer.recipe import RecipeContext
from explorer.synth import speech_span
from explorer.voices import VoiceSet

if TYPE_CHECKING:
    import pandas as pd

    from explorer.engines.base import Engine

__all__ = [
    "BUILD_SENTENCES",
    "CHECK_SENTENCES",
    "CHECK_VOICES",
    "SEARCH_LIMITS",
    "AxesBuildConfig",
    "AxesCheck",
    "ProsodyProbe",
    "Renderer",
    "Take",
    "attribute_table",
    "build_axes",
    "check_axes",
    "speaking_seconds",
    "voices_sha256",
    "write_axes",
]

BUILD_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Would you like a cup of tea before we leave for the station?",
    "My brother drove all the way to the coast last summer to see the whales.",
    "Is it really true that nobody knew about the meeting until this morning?",
)
"""The corpus directions are fitted and calibrated on, and the stock voices' attribute table is measured on:
statements and questions. (A tongue twister, "She sells sea shells by the sea shore...", was dropped: the
recogniser writes "seashells" and "seashore" as one word, so stock voices scored a word error rate of 0.13-0.25 on
it, above the 0.05 the offered range is held to.)"""
CHECK_SENTENCES = (
    "I never said she stole my money, but someone certainly did.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The museum opens at nine, so we should leave early to find a parking space.",
    "Why did the old clock in the hallway stop ticking last night?",
)
"""Held-out sentences for ``check_axes``: the build never renders them."""
FIT_VOICES = ("af_heart", "af_bella", "af_nicole", "af_sarah", "af_sky", "am_adam", "am_michael", "am_fenrir",
              "am_puck", "bf_emma", "bf_isabella", "bm_george", "bm_lewis")
"""Stock voices the fit moves around (English, both genders, both accents)."""
CALIBRATION_VOICES = ("af_alloy", "af_nova", "am_echo", "am_onyx", "bf_lily", "bm_fable")
"""Stock voices the calibration steps are rendered on: English voices of both genders and accents that the fit never
moved. Voices answer one step differently, by up to 2x (pitch in semitones moves less for the higher voices), so
which voices calibrate matters: with these six, 2 of 5 sliders meet every goal on the check's voices; with the
fit's own voices, 1 of 5. All 22 English voices but the check's, on 2 sentences, left pitch range and pace with no
range at all: one of 22 voices always turned back at the first step (the pitch tracker's noise on 2 sentences)."""
CHECK_VOICES = ("af_kore", "af_aoede", "am_eric", "am_liam", "bf_alice", "bm_daniel")
"""Held-out voices for ``check_axes``: the build never moves them (it only measures them for the table)."""
GAIN_VOICES = (*FIT_VOICES, *CALIBRATION_VOICES, "af_jessica", "af_river", "am_santa")
"""The voices whose gains the build measures, to predict any voice's: every English stock voice but the check's."""
SEARCH_LIMITS = {"pitch": 8.0, "pitch_range": 6.0, "pace": 40.0, "energy": 6.0, "brightness": 30.0}
"""How far, in each attribute's unit, the calibration looks in each direction; the range offered is within it."""
CROSSTALK_LIMIT = 0.10
"""Most an attribute may move, as a share of its own offered range, when another attribute's slider moves."""
BUILD_CROSSTALK_LIMIT = 0.08
"""The build holds the range it offers to this, below ``CROSSTALK_LIMIT``, so that voices it never tried, which
respond a little differently, still meet the goal."""
MAX_WER = 0.05
MIN_SIMILARITY = 0.80
TARGET_TOLERANCE = 0.25
"""``check_axes``'s goal: the measured change within 25 % of the intended one."""


@dataclass(frozen=True)
class AxesBuildConfig:
    """How much ``build_axes`` measures. The defaults are the shipped build (about an hour on 2 cores);
    ``small()`` is the test suite's (about a minute).

    Attributes:
        fit_voices: stock voices the fit moves around.
        mixes: 50/50 mixes of two fit voices added as further bases.
        moves: random moves of both halves rendered around each base (for energy and brightness).
        components: top PCA components of each half the moves (and so the directions) use.
        move_size: each move's standard deviation, in units of the component's spread across stock voices.
        sentences: the corpus: the predictor speaks all of it, and so do the calibration and the table.
        fit_sentences: how many of the sentences the fit's renders speak (energy and brightness vary little
            between sentences; the range's calibration needs more of them to see past the tracker's noise).
        prosody_moves: random moves of the prosody half around each base whose predicted prosody is measured (for
            pitch, pitch range and pace: the predictor alone, exact and 10x cheaper than a render).
        prosody_move_size: their standard deviation: smaller, as the predictor's outputs have no noise to beat.
        calibration_voices: voices the calibration steps are rendered on.
        calibration_sentences: how many of the sentences the calibration's renders speak.
        steps_per_side: calibration steps on each side of 0, evenly spaced up to the search limit.
        gain_voices: voices moved to half and all of each end of every calibrated range to measure their gains.
        gain_sentences: how many of the sentences their renders speak.
        gain_components: top PCA components of each half a voice's gain is predicted from.
        seed: for the mixes, the moves and the vocoder's noise.
        table_voices: the voices whose attributes the table lists (None: every voice given).
    """

    fit_voices: tuple[str, ...] = FIT_VOICES
    mixes: int = 4
    moves: int = 10
    components: int = 8
    move_size: float = 0.5
    sentences: tuple[str, ...] = BUILD_SENTENCES
    fit_sentences: int = 2
    prosody_moves: int = 30
    prosody_move_size: float = 0.25
    calibration_voices: tuple[str, ...] = CALIBRATION_VOICES
    calibration_sentences: int = len(BUILD_SENTENCES)
    steps_per_side: int = 4
    gain_voices: tuple[str, ...] = GAIN_VOICES
    gain_sentences: int = 3
    gain_components: int = 2
    seed: int = 0
    table_voices: tuple[str, ...] | None = None

    @classmethod
    def small(cls) -> AxesBuildConfig:
        """The smallest build that still finds every direction: what the test suite rebuilds."""
        return cls(fit_voices=("af_heart", "am_adam", "bf_emma", "bm_george"), mixes=0, moves=8, components=4,
                   sentences=BUILD_SENTENCES[:1], fit_sentences=1, prosody_moves=8,
                   calibration_voices=("af_heart", "am_adam"), calibration_sentences=1, steps_per_side=2,
                   gain_voices=("af_heart", "am_adam", "bf_emma", "bm_george"), gain_sentences=1, table_voices=())


FRAME_SECONDS = 0.025
"""One duration frame of Kokoro v1.0 (600 samples at 24 kHz)."""


def speaking_seconds(durations: np.ndarray) -> float:
    """Return how long the phonemes take, from Kokoro's predicted frames per token (the two pads, which make the
    pauses at the edges, left out)."""
    return int(np.asarray(durations).reshape(-1)[1:-1].sum()) * FRAME_SECONDS


@dataclass(frozen=True)
class Take:
    """One render: its audio cut to the speech, and the speaking time its predicted durations give (None when the
    engine does not state them)."""

    speech: np.ndarray
    seconds: float | None


@dataclass
class Renderer:
    """Renders a pack speaking one of a few sentences, seeded (sentence ``i`` with ``seed + i``, whatever the pack,
    so a voice and its moved copy hear the same vocoder noise), and measures it. Pace is read from the predicted
    durations, which set the audio's length exactly, rather than from where the silence threshold cuts the edges
    (noise of about 2 % between a voice and its moved copy, as large as a small step's effect)."""

    engine: Engine
    sentences: Sequence[str]
    seed: int
    phonemes: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.phonemes = [phonemize(sentence, "a").phonemes for sentence in self.sentences]

    def take(self, pack: np.ndarray, index: int) -> Take:
        """Return the seeded render of sentence ``index``."""
        import torch

        torch.manual_seed(self.seed + index)
        rendered = self.engine.render(self.phonemes[index], pack)
        seconds = speaking_seconds(rendered.durations) if rendered.durations is not None else None
        return Take(np.asarray(rendered.audio[speech_span(rendered.audio)], dtype=np.float32), seconds)

    def values(self, take: Take, index: int) -> dict[str, float] | None:
        """Return the attribute values of one render, or None when one of them cannot be measured."""
        values = attribute_values(take.speech, self.phonemes[index], speaking_seconds=take.seconds)
        return None if any(value is None for value in values.values()) else values  # type: ignore[return-value]

    def measure(self, pack: np.ndarray) -> list[dict[str, float] | None]:
        """Return the attribute values of ``pack`` speaking each sentence."""
        return [self.values(self.take(pack, index), index) for index in range(len(self.phonemes))]

PROBE_COST = 0.08
"""A prediction of the prosody alone costs about this share of a render (for the progress bar)."""
PREDICTED = ("pitch", "pitch_range", "pace")
"""The attributes the prosody predictor's own outputs give (its F0 curve and durations drive the vocoder)."""


@dataclass
class ProsodyProbe:
    """Measures pitch, pitch range and pace from Kokoro's prosody predictor alone, without the vocoder: its F0 curve
    (frames above ``F0_MIN_HZ`` are voiced) and its durations (the two pads left out) are what the vocoder renders,
    exactly and without noise. Needs a torch engine, whose ``runner`` runs the predictor."""

    engine: Engine
    sentences: Sequence[str]
    tokens: list = field(init=False)
    phonemes: list[str] = field(init=False)

    def __post_init__(self) -> None:
        import torch

        if not hasattr(self.engine, "runner"):
            raise AxesError(f"The axes build needs a torch engine, whose predictor it runs; not {self.engine.name}.")
        self.phonemes = [phonemize(sentence, "a").phonemes for sentence in self.sentences]
        self.tokens = [torch.from_numpy(self.engine.token_ids(phonemes)) for phonemes in self.phonemes]

    def values(self, pack: np.ndarray) -> list[dict[str, float] | None]:
        """Return pitch (Hz), pitch range (st) and pace (phonemes per second) of ``pack`` for each sentence."""
        import torch

        found = []
        for phonemes, tokens in zip(self.phonemes, self.tokens):
            style = torch.from_numpy(style_vector(pack.astype(np.float32), phonemes)).unsqueeze(0)
            with torch.inference_mode():
                prosody = self.engine.runner.predict_prosody(tokens, style, 1.0)
            f0 = prosody.f0.float().numpy().reshape(-1)
            pitch, spread = pitch_values(np.where(f0 > F0_MIN_HZ, f0, np.nan))
            seconds = speaking_seconds(prosody.durations)
            found.append(None if pitch is None or seconds <= 0 else
                         {"pitch": pitch, "pitch_range": spread, "pace": phoneme_count(phonemes) / seconds})
        return found


def _changes(
    before: Sequence[dict[str, float] | None],
    after: Sequence[dict[str, float] | None],
    names: Sequence[str] = tuple(ATTRIBUTES),
) -> np.ndarray:
    """Return ``[sentences, names]`` changes in each attribute's unit; NaN where a render was unmeasurable."""
    rows = []
    for old, new in zip(before, after):
        rows.append([attribute_change(name, old[name], new[name]) if old and new else np.nan for name in names])
    return np.array(rows)


def _basis(context: RecipeContext, components: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the move basis ``[2 * components, 256]`` (each PCA component times its spread, decoder then prosody)
    and the half each row belongs to."""
    rows, halves = [], []
    for half in ("decoder", "prosody"):
        result = context.pca[half]
        for index in range(min(components, len(result.components))):
            row = np.zeros(256)
            row[LAYERS[half]] = result.component_std[index] * result.components[index]
            rows.append(row)
            halves.append(half)
    return np.array(rows), np.array(halves)


def _fit_jacobian(moves: np.ndarray, changes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of ``changes [n, attributes]`` on ``moves [n, coords]`` and a constant. The constant takes
    the mean of what grows with any move whatever its direction (moved away from a stock voice, intonation
    spreads), which would otherwise leak into the slopes.

    Returns:
        The Jacobian ``[attributes, coords]`` and each attribute's R^2 (the share of its change the fit explains).
    """
    design = np.column_stack([moves, np.ones(len(moves))])
    solution, *_ = np.linalg.lstsq(design, changes, rcond=None)
    residual = changes - design @ solution
    centred = changes - changes.mean(axis=0)
    r2 = 1 - np.sum(residual**2, axis=0) / np.maximum(np.sum(centred**2, axis=0), 1e-12)
    return solution[:-1].T, r2


def _solve_direction(jacobian: np.ndarray, halves: np.ndarray, attribute: str) -> np.ndarray:
    """Return the move (basis coordinates) of smallest size whose fitted effect is one unit of ``attribute`` and
    nothing of the others, using only the coordinates of the halves that carry it. Each attribute's row is weighed
    by its search limit, so cross-talk counts in proportion to the attribute's span; a small ridge keeps the solve
    stable where a half barely moves an attribute."""
    names = list(ATTRIBUTES)
    scale = np.array([SEARCH_LIMITS[name] for name in names])
    usable = np.isin(halves, ATTRIBUTES[attribute].halves)
    weighted = jacobian[:, usable] / scale[:, None]
    target = np.zeros(len(names))
    target[names.index(attribute)] = 1.0 / scale[names.index(attribute)]
    gram = weighted @ weighted.T
    ridge = 1e-3 * np.trace(gram) / len(names)
    move = np.zeros(jacobian.shape[1])
    move[usable] = weighted.T @ np.linalg.solve(gram + ridge * np.eye(len(names)), target)
    return move


@dataclass(frozen=True)
class _Calibration:
    """What the steps along one direction measured: changes ``[steps, voices, sentences, attributes]``, word error
    rates and similarities ``[steps, voices, sentences]``."""

    steps: np.ndarray
    changes: np.ndarray
    wer: np.ndarray
    similarity: np.ndarray

    def medians(self) -> np.ndarray:
        """Median change per step and attribute over voices and sentences."""
        return np.nanmedian(self.changes.reshape(len(self.steps), -1, len(ATTRIBUTES)), axis=1)

    def spreads(self) -> np.ndarray:
        """Half the interquartile range per step and attribute."""
        flat = self.changes.reshape(len(self.steps), -1, len(ATTRIBUTES))
        low, high = np.nanpercentile(flat, [25, 75], axis=1)
        return (high - low) / 2

    def failures(self, attribute: str, ranges: dict[str, float]) -> list[str]:
        """Per step, why it cannot be offered ("" when it can): a voice that did not move monotonically from 0 to it
        (its median over sentences, which a pitch tracker's octave error in one sentence does not sway), another
        attribute's median moving by ``BUILD_CROSSTALK_LIMIT`` of its range or more, or speech that did not
        survive."""
        own = list(ATTRIBUTES).index(attribute)
        zero = int(np.flatnonzero(self.steps == 0)[0])
        per_voice = np.nanmedian(self.changes[..., own], axis=2)               # [steps, voices]
        medians = self.medians()
        reasons = []
        for index in range(len(self.steps)):
            path = per_voice[zero:index + 1] if index >= zero else per_voice[index:zero + 1][::-1]
            sign = 1.0 if index >= zero else -1.0
            found = []
            if not (np.all(np.isfinite(path)) and np.all(np.diff(path, axis=0) * sign > 0)):
                found.append("not monotonic for every voice")
            found += [f"cross-talk on {name} {medians[index, other]:+.2g} {ATTRIBUTES[name].unit}"
                      for other, name in enumerate(ATTRIBUTES)
                      if other != own and abs(medians[index, other]) >= BUILD_CROSSTALK_LIMIT * ranges[name]]
            if np.nanmean(self.wer[index]) > MAX_WER:
                found.append(f"word error rate {np.nanmean(self.wer[index]):.2f}")
            if np.nanmedian(self.similarity[index]) < MIN_SIMILARITY:
                found.append(f"similarity {np.nanmedian(self.similarity[index]):.2f}")
            reasons.append("; ".join(found))
        return reasons


def _offered(calibration: _Calibration, attribute: str, ranges: dict[str, float]) -> tuple[float, float]:
    """Return the range offered: the median change at the furthest step on each side reached through admissible
    steps only (0 on a side whose first step fails)."""
    own = list(ATTRIBUTES).index(attribute)
    medians = calibration.medians()[:, own]
    failures = calibration.failures(attribute, ranges)
    zero = int(np.flatnonzero(calibration.steps == 0)[0])
    ends = []
    for side in (range(zero - 1, -1, -1), range(zero + 1, len(medians))):
        end, previous = 0.0, zero
        for index in side:
            if failures[index] or (medians[index] - medians[previous]) * (index - previous) <= 0:
                break
            end, previous = float(medians[index]), index
        ends.append(end)
    return ends[0], ends[1]


def voices_sha256(folder: Path = VOICES_DIR) -> str:
    """Return the SHA-256 of the bundled voices' manifest, which names every voice file's own hash."""
    return hashlib.sha256((folder / "SHA256SUMS").read_bytes()).hexdigest()


def build_axes(
    voices: VoiceSet,
    engine: Engine,
    config: AxesBuildConfig = AxesBuildConfig(),
    progress: Progress | None = None,
) -> VoiceAxes:
    """Measure a direction per attribute, calibrate it, and measure every voice's attributes; see the module doc.

    Args:
        voices: the stock voices (reference for the PCA basis, source of the bases, rows of the table).
        engine: renders every step (a torch engine: its renders can be seeded).
        config: how much to measure.
        progress: told the fraction done and what is being measured.

    Returns:
        The axes, ready for ``VoiceAxes.to_json``.

    Raises:
        AxesError: a configured voice is not in ``voices``, or a direction cannot be offered at all.
    """
    table_names = config.table_voices if config.table_voices is not None else tuple(voices.names)
    missing = [name for name in (*config.fit_voices, *config.calibration_voices, *config.gain_voices, *table_names)
               if name not in voices]
    if missing:
        raise AxesError(f"The axes build needs voices that are not loaded: {', '.join(missing)}.")
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    context = RecipeContext.from_voices(voices)
    basis, halves = _basis(context, config.components)
    renderer = Renderer(engine, config.sentences, config.seed)
    fit_renderer = Renderer(engine, config.sentences[:config.fit_sentences], config.seed)
    calibration_renderer = Renderer(engine, config.sentences[:config.calibration_sentences], config.seed)
    probe = ProsodyProbe(engine, config.sentences)
    bases = [voices[name].pack.astype(np.float64) for name in config.fit_voices]
    for _ in range(config.mixes):
        first, second = rng.choice(len(config.fit_voices), size=2, replace=False)
        bases.append((bases[first] + bases[second]) / 2)
    sentences = len(config.sentences)
    calibration_renders = ((len(ATTRIBUTES) * 2 * config.steps_per_side + 1) * len(config.calibration_voices)
                           * len(calibration_renderer.sentences))
    probes = len(bases) * (1 + config.prosody_moves) * sentences * PROBE_COST
    fit_renders = len(bases) * (1 + config.moves) * len(fit_renderer.sentences)
    gain_renderer = Renderer(engine, config.sentences[:config.gain_sentences], config.seed)
    gain_renders = len(config.gain_voices) * len(gain_renderer.sentences) * (1 + 4 * len(ATTRIBUTES))
    total = probes + fit_renders + calibration_renders + gain_renders + len(table_names) * sentences
    done = 0

    def tick(count: float, what: str) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(done / total, 1.0), what)

    # Pitch, pitch range and pace come from the predictor (the decoder half cannot reach them); energy and
    # brightness, which the vocoder makes, from renders.
    prosody = halves == "prosody"
    predicted_moves, predicted_deltas = _sample_moves(
        bases, basis, prosody, probe.values, PREDICTED, rng, config.prosody_moves, config.prosody_move_size,
        lambda number: tick((1 + config.prosody_moves) * sentences * PROBE_COST,
                            f"fit: predicted prosody around base {number} of {len(bases)}"))
    moves, deltas = _sample_moves(
        bases, basis, np.ones(len(basis), bool), fit_renderer.measure, tuple(ATTRIBUTES), rng, config.moves,
        config.move_size, lambda number: tick((1 + config.moves) * len(fit_renderer.sentences),
                                              f"fit: renders around base {number} of {len(bases)}"))
    if min(len(moves), len(predicted_moves)) < len(basis):
        raise AxesError(f"The fit measured {min(len(moves), len(predicted_moves))} moves, fewer than its "
                        f"{len(basis)} coordinates.")
    jacobian, r2 = _fit_jacobian(moves, deltas)
    rows = [list(ATTRIBUTES).index(name) for name in PREDICTED]
    jacobian[rows] = 0.0
    jacobian[np.ix_(rows, np.flatnonzero(prosody))], r2[rows] = _fit_jacobian(predicted_moves, predicted_deltas)

    directions = {name: _solve_direction(jacobian, halves, name) @ basis for name in ATTRIBUTES}
    starts = {}
    for name in config.calibration_voices:
        starts[name] = _Start.of(calibration_renderer, voices[name].pack.astype(np.float64))
        tick(len(calibration_renderer.sentences), f"calibrate: {name} as it is")
    calibrations = {}
    for name in ATTRIBUTES:
        calibrations[name] = _calibrate(starts, config.steps_per_side, directions[name], SEARCH_LIMITS[name],
                                        lambda name=name: tick(1, f"calibrate: {name}"))
    axes, dropped = _offer(directions, calibrations, config.steps_per_side)
    if not axes:
        raise AxesError("No direction could be offered: " + "; ".join(f"{k}: {v}" for k, v in dropped.items()))
    gain_packs = {name: voices[name].pack.astype(np.float64) for name in config.gain_voices}
    gains = _measure_gains(axes, gain_renderer, gain_packs,
                           lambda what: tick(len(gain_renderer.sentences), f"gains: {what}"))
    axes, gain_fits = _with_gains(axes, gains, context, np.stack(list(gain_packs.values())), config.gain_components)

    table = attribute_table(voices, renderer, table_names, lambda: tick(sentences, "attribute table"))
    provenance = {
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "explorer": version("kokoro-voice-explorer"),
        "axes_version": AXES_VERSION,
        "voices_sha256": voices_sha256(),
        "voices": len(voices),
        "engine": f"{engine.name}: {engine.weights}",
        "corpus": list(config.sentences),
        "config": {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()},
        "fit_moves": {"renders": len(moves), "predicted prosody": len(predicted_moves)},
        "fit_r2": {name: round(float(value), 4) for name, value in zip(ATTRIBUTES, r2)},
        "dropped": dropped,
        "gains": gain_fits,
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    return VoiceAxes(axes=axes, table=table, provenance=provenance)


def _sample_moves(
    bases: Sequence[np.ndarray],
    basis: np.ndarray,
    coords: np.ndarray,
    measure: Callable[[np.ndarray], list[dict[str, float] | None]],
    names: Sequence[str],
    rng: np.random.Generator,
    count: int,
    size: float,
    tick: Callable[[int], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Around each base, measure ``count`` random moves of the basis coordinates ``coords`` (normal, standard
    deviation ``size``) and the mean change of ``names`` over the sentences ``measure`` speaks.

    Returns:
        The moves ``[n, coords]`` and changes ``[n, names]`` (moves that could not be measured left out).
    """
    moves, deltas = [], []
    for number, base in enumerate(bases, 1):
        before = measure(base)
        for _ in range(count):
            move = np.where(coords, rng.normal(scale=size, size=len(basis)), 0.0)
            change = np.nanmean(_changes(before, measure(base + move @ basis), names), axis=0)
            if np.all(np.isfinite(change)):
                moves.append(move[coords])
                deltas.append(change)
        tick(number)
    return np.array(moves), np.array(deltas)


def _offer(
    directions: dict[str, np.ndarray], calibrations: dict[str, _Calibration], steps_per_side: int,
) -> tuple[dict[str, AttributeAxis], dict[str, str]]:
    """Return the axes that can be offered, each with its range, and why each other attribute cannot be. Cross-talk
    is judged against the other attributes' offered ranges, which depend on one another: three rounds settle them."""
    ranges = {name: 2 * SEARCH_LIMITS[name] for name in ATTRIBUTES}
    for _ in range(3):
        offered = {name: _offered(calibrations[name], name, ranges) for name in ATTRIBUTES}
        ranges = {name: high - low if high > low else 2 * SEARCH_LIMITS[name] for name, (low, high) in offered.items()}
    axes, dropped = {}, {}
    for name in ATTRIBUTES:
        low, high = offered[name]
        calibration = calibrations[name]
        if low >= 0 or high <= 0:
            side, first = ("raise", steps_per_side + 1) if high <= 0 else ("lower", steps_per_side - 1)
            reason = calibration.failures(name, ranges)[first] or "the median moved the wrong way"
            dropped[name] = f"the smallest step to {side} it failed: {reason}"
            continue
        medians, spreads = calibration.medians(), calibration.spreads()
        axes[name] = AttributeAxis(
            attribute=name, direction=directions[name], steps=calibration.steps,
            changes={other: medians[:, i] for i, other in enumerate(ATTRIBUTES)},
            spread={other: spreads[:, i] for i, other in enumerate(ATTRIBUTES)},
            low=low, high=high,
        )
    return axes, dropped


def _measure_gains(
    axes: dict[str, AttributeAxis],
    renderer: Renderer,
    packs: dict[str, np.ndarray],
    tick: Callable[[str], None],
) -> dict[str, np.ndarray]:
    """Move every voice in ``packs`` to half and all of each end of every offered range (the steps that take the
    calibration curve there) and return, per attribute, the voices' gains ``[voices, sides, 2]`` (lowering, raising;
    half, all): each voice's own change (its median over the sentences) over the curve's; NaN where no render could
    be measured."""
    gains = {name: np.full((len(packs), 2, 2), np.nan) for name in axes}
    for v, (voice, pack) in enumerate(packs.items()):
        before = renderer.measure(pack)
        tick(f"{voice} as it is")
        for name, axis in axes.items():
            own = list(ATTRIBUTES).index(name)
            for side, end in enumerate((axis.low, axis.high)):
                for point, amount in enumerate((end / 2, end)):
                    changes = _changes(before, renderer.measure(pack + axis.offset(amount)))[:, own]
                    if np.any(np.isfinite(changes)):
                        gains[name][v, side, point] = np.nanmedian(changes) / amount
                    tick(f"{voice}, {name} {amount:+.3g} {axis.unit}")
    return gains


OFFERED_PERCENTILE = 25
"""The range offered is what this share of the voices falls short of (the rest reach it) at the calibrated end: a
median would leave the check's voices, weaker than most at brightness, 30 % short at both ends; the lower quartile
holds them within 21 %."""
GAIN_PENALTIES = np.logspace(-2, 4, 25)
"""The ridge penalties a gain model chooses among (by leave-one-out); the largest amounts to the voices' mean."""


def _with_gains(
    axes: dict[str, AttributeAxis], gains: dict[str, np.ndarray], context: RecipeContext, packs: np.ndarray,
    components: int,
) -> tuple[dict[str, AttributeAxis], dict[str, dict[str, dict]]]:
    """Return the axes with a gain model for each side (``_fit_gain`` on the packs' top ``components`` PCA
    coordinates of each half, each in units of its spread across the stock voices) and what each fit found.

    The calibration's ends become each axis's ``reach``; the range offered is what three voices in four reach
    there: an end times the lower quartile of the voices' gains at it, where that is below 1."""
    columns, shifts = [], []
    for half in ("decoder", "prosody"):
        result = context.pca[half]
        for index in range(min(components, len(result.components))):
            column = np.zeros(256)
            column[LAYERS[half]] = result.components[index] / result.component_std[index]
            columns.append(column)
            shifts.append(-float(result.mean @ result.components[index]) / result.component_std[index])
    matrix, shift = np.array(columns).T, np.array(shifts)
    coordinates = summary_vectors(packs) @ matrix + shift
    fitted, found = {}, {}
    for name, axis in axes.items():
        fits = [[_fit_gain(gains[name][:, side, point], coordinates) for point in range(2)] for side in range(2)]
        models = tuple(tuple(VoiceGain(intercept + float(slopes @ shift), matrix @ slopes)
                             for (intercept, slopes), _ in side) for side in fits)
        reached = [float(np.nanpercentile(np.clip(gains[name][:, side, 1], *GAIN_LIMITS), OFFERED_PERCENTILE))
                   if np.any(np.isfinite(gains[name][:, side, 1])) else 1.0 for side in range(2)]
        fitted[name] = dataclasses.replace(axis, gains=models, reach=(axis.low, axis.high),
                                           low=axis.low * min(1.0, reached[0]), high=axis.high * min(1.0, reached[1]))
        found[name] = {side: {point: record for point, (_, record) in zip(("half", "all"), fit)}
                       for side, fit in zip(GAIN_SIDES, fits)}
    return fitted, found


def _fit_gain(gains: np.ndarray, coordinates: np.ndarray) -> tuple[tuple[float, np.ndarray], dict]:
    """Fit the log of the voices' gains (clipped to ``GAIN_LIMITS``; a voice that moved the wrong way counts as the
    least) on their coordinates by ridge regression, the penalty chosen by leave-one-out (scikit-learn's
    ``RidgeCV``). The model is kept only where it predicts a left-out voice's gain better than the other voices'
    mean does; elsewhere every voice gets that mean.

    Returns:
        The intercept and slopes on the coordinates, and a record of the fit: voices, median gain, the
        leave-one-out error (rms of the log gain) of the model and of the mean, and which was kept.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    usable = np.isfinite(gains)
    target = np.log(np.clip(gains[usable], *GAIN_LIMITS))
    features = coordinates[usable]
    slopes = np.zeros(coordinates.shape[1])
    record: dict = {"voices": int(usable.sum())}
    if len(target) < 3:
        record["kept"] = "none" if len(target) == 0 else "mean"
        return (float(target.mean()) if len(target) else 0.0, slopes), record
    mean_errors = (target - target.mean()) * len(target) / (len(target) - 1)
    model = RidgeCV(alphas=GAIN_PENALTIES)
    model_errors = target - cross_val_predict(model, features, target, cv=LeaveOneOut())
    rms = {kind: float(np.sqrt(np.mean(errors**2)))
           for kind, errors in (("model", model_errors), ("mean", mean_errors))}
    record.update({"median gain": round(float(np.exp(np.median(target))), 3),
                   "leave-one-out rms": {kind: round(value, 3) for kind, value in rms.items()}})
    if rms["model"] < rms["mean"]:
        model.fit(features, target)
        record.update(kept="model", penalty=float(model.alpha_))
        return (float(model.intercept_), np.asarray(model.coef_, dtype=np.float64)), record
    record["kept"] = "mean"
    return (float(target.mean()), slopes), record


def attribute_table(
    voices: VoiceSet, renderer: Renderer, names: Iterable[str], tick: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, float]]:
    """Return each named voice's attributes, averaged over the renderer's sentences (a voice none of whose renders
    can be measured is left out)."""
    table = {}
    for name in names:
        measured = [values for values in renderer.measure(voices[name].pack) if values is not None]
        tick()
        if measured:
            table[name] = {attribute: float(np.mean([values[attribute] for values in measured]))
                           for attribute in ATTRIBUTES}
    return table


def _calibrate(
    starts: dict[str, _Start],
    steps_per_side: int,
    direction: np.ndarray,
    limit: float,
    tick: Callable[[], None],
) -> _Calibration:
    """Render ``steps_per_side`` steps each side of 0 along ``direction`` (in units by the fit's estimate), evenly
    spaced up to ``limit``, on every calibration voice (``starts``) and sentence."""
    side = limit * np.arange(1, steps_per_side + 1) / steps_per_side
    steps = np.concatenate([-side[::-1], [0.0], side])
    sentences = len(next(iter(starts.values())).takes)
    shape = (len(steps), len(starts), sentences)
    changes = np.full((*shape, len(ATTRIBUTES)), np.nan)
    wer, similarity = np.full(shape, np.nan), np.full(shape, np.nan)
    changes[steps_per_side], wer[steps_per_side], similarity[steps_per_side] = 0.0, 0.0, 1.0
    for v, start in enumerate(starts.values()):
        for s, step in enumerate(steps):
            if step != 0:
                changes[s, v], wer[s, v], similarity[s, v] = start.moved_to(start.pack + step * direction, tick)
    return _Calibration(steps, changes, wer, similarity)


@dataclass(frozen=True)
class _Start:
    """A voice before it moves: its pack, its takes of the renderer's sentences and their attribute values."""

    renderer: Renderer
    pack: np.ndarray
    takes: list[Take]
    values: list[dict[str, float] | None]

    @classmethod
    def of(cls, renderer: Renderer, pack: np.ndarray) -> _Start:
        takes = [renderer.take(pack, index) for index in range(len(renderer.phonemes))]
        return cls(renderer, pack, takes, [renderer.values(take, index) for index, take in enumerate(takes)])

    def moved_to(self, pack: np.ndarray, tick: Callable[[], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render ``pack`` speaking every sentence (``tick`` after each) and return, against this start, the
        attribute changes ``[sentences, attributes]`` and the word error rates and similarities ``[sentences]``."""
        after, wer, similarity = [], [], []
        for index, (before, sentence) in enumerate(zip(self.takes, self.renderer.sentences)):
            take = self.renderer.take(pack, index)
            after.append(self.renderer.values(take, index))
            wer.append(intelligibility(take.speech, sentence).wer)
            similarity.append(speaker_similarity(before.speech, take.speech))
            tick()
        return _changes(self.values, after), np.array(wer), np.array(similarity)


# the check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxesCheck:
    """What ``check_axes`` measured along every direction on held-out voices and texts.

    Attributes:
        rows: one per attribute and amount: intended change, measured median and interquartile spread, and the
            worst cross-talk, word error rate and similarity there.
        monotonic: attribute name to whether every voice moved monotonically across the amounts tried.
        voices: the voices tried.
        sentences: the sentences spoken.
        answers: one per attribute, amount and voice: the voice's predicted gain, its measured gain (its median
            change over the curve's where its step read it), its measured change, and whether it was held at the
            reach.
    """

    rows: list[dict]
    monotonic: dict[str, bool]
    voices: tuple[str, ...]
    sentences: tuple[str, ...]
    answers: list[dict] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """Return one row per attribute: range offered, worst targeting error, monotonicity, worst cross-talk, worst
        word error rate and similarity, and whether each goal is met."""
        import pandas as pd

        table = pd.DataFrame(self.rows)
        rows = []
        for name, group in table.groupby("attribute", sort=False):
            error = float(group["error_percent"].max())
            crosstalk = float(group["crosstalk_percent"].max())
            rows.append({
                "attribute": name,
                "unit": ATTRIBUTES[name].unit,
                "range": f"{group['intended'].min():+g} to {group['intended'].max():+g}",
                "worst error %": round(error, 1),
                "monotonic": self.monotonic[name],
                "worst cross-talk %": round(crosstalk, 1),
                "cross-talk on": group.loc[group["crosstalk_percent"].idxmax(), "crosstalk_on"],
                "worst WER": round(float(group["wer"].max()), 3),
                "lowest similarity": round(float(group["similarity"].min()), 3),
                "goals met": bool(error <= 100 * TARGET_TOLERANCE and self.monotonic[name]
                                  and crosstalk < 100 * CROSSTALK_LIMIT and group["wer"].max() <= MAX_WER
                                  and group["similarity"].min() >= MIN_SIMILARITY),
            })
        return pd.DataFrame(rows)

    def verdict(self) -> str:
        """Return one line: how many sliders met every goal, and the average worst-case cross-talk (the measure
        kokoro-voice-designer reports: 9 of 12 sliders on target, 8.4 %)."""
        summary = self.summary()
        return (f"{int(summary['goals met'].sum())} of {len(summary)} sliders meet every goal; average worst-case "
                f"cross-talk {summary['worst cross-talk %'].mean():.1f} % of the other attribute's range "
                f"(kokoro-voice-designer: 9 of 12 on target, 8.4 %).")

    def steps(self) -> pd.DataFrame:
        """Return every amount tried, one row each."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def gains(self) -> pd.DataFrame:
        """Return, per attribute and side, how the voices' gains were predicted against how they answered: the
        range of each over voices and amounts, the median prediction error (predicted over measured, in percent)
        and how many steps held a voice at the reach. Where an attribute misses its target, this says whether the
        gain model is why."""
        import pandas as pd

        table = pd.DataFrame(self.answers)
        rows = []
        for (name, raising), group in table.groupby(["attribute", table["intended"] > 0], sort=False):
            error = 100 * np.abs(group["predicted gain"] / group["measured gain"] - 1)
            rows.append({
                "attribute": name, "side": GAIN_SIDES[int(raising)],
                "predicted gain": f"{group['predicted gain'].min():.2f} to {group['predicted gain'].max():.2f}",
                "measured gain": f"{group['measured gain'].min():.2f} to {group['measured gain'].max():.2f}",
                "median prediction error %": round(float(np.nanmedian(error)), 1),
                "held at the reach": f"{int(group['held'].sum())} of {len(group)}",
            })
        return pd.DataFrame(rows)


def check_axes(
    voices: VoiceSet,
    engine: Engine,
    axes: VoiceAxes | None = None,
    *,
    check_voices: Iterable[str] = CHECK_VOICES,
    sentences: Iterable[str] = CHECK_SENTENCES,
    fractions: Sequence[float] = (-1.0, -0.5, 0.5, 1.0),
    seed: int = 1,
    progress: Progress | None = None,
) -> AxesCheck:
    """Render amounts along every attribute (``fractions`` of its offered range each side), each voice moved by the
    axis's calibrated offset for that voice (what the recipe edit ``{"type": "attribute"}`` adds to every row), on
    voices and sentences the build never used (their gains predicted, never measured), and measure what changed.

    Per attribute and amount it records the intended change, the measured change (median and interquartile spread
    over voices and sentences), the targeting error, the largest cross-talk (another attribute's median change as a
    percentage of that attribute's offered range), the mean word error rate and the median similarity to the
    start voice.

    Raises:
        AxesError: a check voice is not loaded, or the axes file is missing or damaged.
    """
    axes = axes if axes is not None else load_axes()
    names = tuple(check_voices)
    missing = [name for name in names if name not in voices]
    if missing:
        raise AxesError(f"The axes check needs voices that are not loaded: {', '.join(missing)}.")
    texts = tuple(sentences)
    renderer = Renderer(engine, texts, seed)
    ranges = {name: axis.high - axis.low for name, axis in axes.axes.items()}
    total = len(names) * len(texts) * (1 + len(ATTRIBUTES) * len(fractions))
    done = 0

    def tick(count: int, what: str) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done / total, what)

    starts = {}
    for name in names:
        starts[name] = _Start.of(renderer, voices[name].pack)
        tick(len(texts), f"start voices: {name}")
    rows: list[dict] = []
    answers: list[dict] = []
    monotonic = {}
    for attribute, axis in axes.axes.items():
        amounts = sorted({(axis.high if f > 0 else -axis.low) * f for f in fractions} | {0.0})
        per_voice = {name: [0.0] for name in names}
        own = list(ATTRIBUTES).index(attribute)
        for amount in [a for a in amounts if a != 0.0]:
            changes, wer, similarity = [], [], []
            for name in names:
                effect, = axes.effects(voices[name].pack, [(attribute, amount)])
                moved = (voices[name].pack + axis.offset(amount, voices[name].pack)).astype(np.float32)
                voice_changes, voice_wer, voice_similarity = starts[name].moved_to(
                    moved,
                    lambda name=name: tick(1, f"{attribute} {amount:+.3g} {axis.unit}: {name}"))
                changes.extend(voice_changes)
                wer.extend(voice_wer)
                similarity.extend(voice_similarity)
                measured = float(np.nanmedian(voice_changes[:, own]))
                per_voice[name].append(measured)
                answers.append({"attribute": attribute, "intended": round(amount, 3), "voice": name,
                                "predicted gain": round(effect.gain, 3),
                                "measured gain": round(measured / effect.read, 3), "measured": round(measured, 3),
                                "held": effect.held})
            table = np.array(changes)
            medians = np.nanmedian(table, axis=0)
            low, high = np.nanpercentile(table, [25, 75], axis=0)
            cross = {other: 100 * abs(medians[i]) / ranges[other]   # on the attributes the file offers a range of
                     for i, other in enumerate(ATTRIBUTES) if other != attribute and other in ranges}
            worst = max(cross, key=cross.get, default="")
            rows.append({
                "attribute": attribute, "intended": round(amount, 3), "measured": round(float(medians[own]), 3),
                "spread": round(float((high[own] - low[own]) / 2), 3),
                "error_percent": round(100 * abs(medians[own] - amount) / abs(amount), 1),
                "crosstalk_percent": round(cross.get(worst, 0.0), 1), "crosstalk_on": worst,
                **{f"change_{other}": round(float(medians[i]), 3) for i, other in enumerate(ATTRIBUTES)},
                "wer": round(float(np.mean(wer)), 4), "similarity": round(float(np.median(similarity)), 4),
            })
        order = np.argsort([0.0, *[a for a in amounts if a != 0.0]])
        monotonic[attribute] = all(bool(np.all(np.diff(np.array(values)[order]) > 0)) for values in per_voice.values())
    return AxesCheck(rows=rows, monotonic=monotonic, voices=names, sentences=texts, answers=answers)


def write_axes(axes: VoiceAxes, path: Path) -> Path:
    """Write ``axes`` to ``path`` atomically and return it."""
    atomic_write_bytes(path, axes.to_json().encode())
    return path

