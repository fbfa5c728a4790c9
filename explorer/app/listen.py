"""What the listening pages (Voices, Voice Lab, A/B) compute, free of Streamlit so it can be tested on its own.

- Live readouts and renders: ``readout`` (nearest stock voices, out-of-distribution report, the map position),
  ``synthesize_cached`` (a render through a shared ``AudioCache``, so replaying never synthesises again), exports,
  the share link and the meters as a table.
- A/B: which recipe each side plays, a seeded hidden X for blind trials, and the session's tally.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd

from explorer.analysis import nearest_voices, summary_vectors
from explorer.app.rating import answer_times, results_files, utc_now
from explorer.audio import SAMPLE_RATE, AudioCache, audio_cache_key, is_silent, loudness_match, read_audio_bytes
from explorer.errors import AnalysisError, ExplorerError, RecipeError, shown
from explorer.recipe import MAX_TOKEN_CHARS, OODReport, Recipe, RecipeContext, ood_report
from explorer.synth import FIRST_CHUNK_PHONEMES, RenderedChunk, Synthesis, prepare, synthesize
from explorer.voices import LANGUAGES, VoiceSet, pack_bytes, validate_voice_name

if TYPE_CHECKING:
    from explorer.engines import Engine
    from explorer.meters import Meters

@dataclass(frozen=True)
class SpeechRequest:
    """What a listening page is asked to say and how: the session's text, language, speed and engine kind."""

    text: str
    lang: str
    speed: float
    engine_kind: str

    @property
    def recognisable_text(self) -> str | None:
        """The text the word error rate is measured against, or None where the recogniser cannot follow it."""
        from explorer.meters import RECOGNISED_LANGUAGES  # scipy and the meters load only when a render is measured

        return self.text if self.lang in RECOGNISED_LANGUAGES else None

    def signature(self, *voices: object) -> tuple[object, ...]:
        """Return what identifies a render of ``voices`` (recipes' share strings) for this request: a page replays
        its last render while the signature stays the same."""
        return (*voices, self.text, self.lang, self.speed, self.engine_kind)

__all__ = [
    "AB_MODES",
    "AB_SOURCES",
    "ABSide",
    "HISTORY_LENGTH",
    "HeardRender",
    "back_to_back",
    "heard_renders",
    "remember",
    "SpeechRequest",
    "BLIND_ANSWERS",
    "BLIND_TEST_LENGTHS",
    "DEFAULT_BLIND_TRIALS",
    "BlindTally",
    "FEEDBACK_MODES",
    "BlindTrial",
    "RECORDING_SECONDS",
    "Readout",
    "Recording",
    "Render",
    "blind_stimuli",
    "draw_trial",
    "equal_lengths",
    "export_files",
    "meter_rows",
    "meters_table",
    "readout",
    "SHARED_TEXT_CHARS",
    "SPEED_RANGE",
    "SPEED_STEP",
    "share_params",
    "share_url",
    "shared_speech",
    "side_recipe",
    "synthesize_cached",
]

@dataclass(frozen=True)
class Readout:
    """What the Lab shows while sliding: where the pack sits among the stock voices.

    Attributes:
        vector: the pack's mean over rows (the summary vector the PCA map and OOD report use).
        nearest: the nearest stock voices, ``(name, distance)`` of mean vectors, nearest first: the measure the
            out-of-distribution report uses.
        ood: the out-of-distribution report.
    """

    vector: np.ndarray = field(repr=False)
    nearest: tuple[tuple[str, float], ...]
    ood: OODReport


def readout(pack: np.ndarray, voices: VoiceSet, context: RecipeContext, k: int = 5) -> Readout:
    """Return the live readout of ``pack`` against the stock voices of ``context``."""
    vector = summary_vectors(np.asarray(pack)[None])[0]
    nearest = nearest_voices(vector, context.vectors, list(context.names), k=k, metric="euclidean")
    return Readout(vector, tuple(nearest), ood_report(pack, voices, context))


@dataclass(frozen=True)
class Render:
    """One synthesis and its audio-cache key (which identifies the audio for meters and replays)."""

    synthesis: Synthesis
    key: str
    cached: bool

    @property
    def audio(self) -> np.ndarray:
        """The rendered audio (float32, 24 kHz)."""
        return self.synthesis.audio


def synthesize_cached(
    text: str,
    *,
    style: np.ndarray,
    engine: Engine,
    cache: AudioCache,
    lang: str = "a",
    speed: float = 1.0,
    on_chunk: Callable[[RenderedChunk], None] | None = None,
) -> Render:
    """Speak ``text`` with ``style``, or return the cached synthesis of exactly this request.

    Every render of the app starts with a short first chunk (``FIRST_CHUNK_PHONEMES``): ``on_chunk`` gets it as soon
    as it is rendered, to play while the rest renders, and the Lab, A/B and Voices pages share one chunking, so one
    page's render replays on another. The key is ``audio_cache_key`` of the engine, its weights, the chunks'
    phonemes, the style and the speed: the same text in two languages, or two packs, never share audio. The cached
    audio is read-only, as every session replaying it gets the same array. (The text is converted to phonemes once
    for the key and again inside ``synthesize``: cheap next to rendering, and it keeps one synthesis path.)

    Args:
        text: what to say, in language ``lang``.
        style: a voicepack or a 256-vector.
        engine: renders on a cache miss.
        cache: the shared audio cache.
        lang: Kokoro language code.
        speed: speaking rate, 0.25-4.
        on_chunk: called with each chunk as it is rendered; never called on a cache hit (the whole audio is there).

    Returns:
        The synthesis, its cache key, and whether it came from the cache.

    Raises:
        SynthesisError: text, style or speed the engine refuses.
    """
    plan = prepare(text, engine=engine, lang=lang, first_chunk_phonemes=FIRST_CHUNK_PHONEMES)
    key = audio_cache_key(engine.name, engine.weights, [chunk.phonemes for chunk in plan.chunks], style, speed)
    hit = cache.get(key)
    if isinstance(hit, Synthesis):
        return Render(hit, key, True)
    result = synthesize(text, style=style, engine=engine, lang=lang, speed=speed,
                        first_chunk_phonemes=FIRST_CHUNK_PHONEMES, on_chunk=on_chunk)
    result.audio.setflags(write=False)  # shared with every session that replays it
    cache.put(key, result)
    return Render(result, key, False)


HISTORY_LENGTH = 8
"""How many of a listener's renders the Lab keeps to replay (their audio stays in the shared audio cache)."""


@dataclass(frozen=True)
class HeardRender:
    """One render a listener heard in the Lab: where its audio is in the audio cache, and what it said how.

    Attributes:
        key: the render's audio-cache key.
        token: the recipe's share string.
        text, lang, speed, engine_kind: what was said, and how (``SpeechRequest``).
        description: the recipe in one line.
        seconds: the audio's length.
    """

    key: str
    token: str
    text: str
    lang: str
    speed: float
    engine_kind: str
    description: str
    seconds: float

    @property
    def request(self) -> SpeechRequest:
        """The request that made it."""
        return SpeechRequest(self.text, self.lang, self.speed, self.engine_kind)

    @classmethod
    def from_dict(cls, data: object) -> HeardRender | None:
        """Return the entry kept in session state, or None where it is damaged."""
        names = [item.name for item in dataclasses.fields(cls)]
        if not isinstance(data, Mapping) or set(data) != set(names):
            return None
        try:
            heard = cls(**{name: data[name] for name in names})
        except TypeError:
            return None
        texts = (heard.key, heard.token, heard.text, heard.lang, heard.engine_kind, heard.description)
        if not all(isinstance(text, str) for text in texts) or \
                not all(isinstance(value, (int, float)) and math.isfinite(value) for value in (heard.speed,
                                                                                               heard.seconds)):
            return None
        return heard


def heard_renders(history: object) -> list[HeardRender]:
    """Return the render history kept in session state (a list of ``HeardRender`` dicts), damaged entries dropped."""
    entries = map(HeardRender.from_dict, history if isinstance(history, list) else [])
    return [entry for entry in entries if entry is not None]


def remember(history: object, heard: HeardRender) -> list[dict]:
    """Return the session's render history (``history``, as kept in session state) with ``heard`` as its newest
    entry, in the form kept there: a render heard again moves to the end, and only the last ``HISTORY_LENGTH``
    stay."""
    entries = [entry for entry in heard_renders(history) if entry.key != heard.key]
    return [dataclasses.asdict(entry) for entry in [*entries, heard][-HISTORY_LENGTH:]]


def back_to_back(first: np.ndarray, second: np.ndarray, gap_seconds: float = 0.6,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return ``first``, a silence of ``gap_seconds`` and ``second`` as one clip, the second at the first's BS.1770
    loudness: two renders compared by ear without the louder one winning."""
    first, second = loudness_match(first, second)
    return np.concatenate([first, np.zeros(int(gap_seconds * sample_rate), dtype=np.float32), second])


def export_files(pack: np.ndarray, recipe: Recipe, name: str) -> dict[str, Callable[[], bytes]]:
    """Return ``{filename: build}`` for the pack as ``.pt`` and ``.npz`` ([510, 1, 256]) and its recipe as JSON.

    Each file is built only when its ``build()`` is called (a download button calls it on the click): writing a
    ``.pt`` imports torch, which would otherwise add a second to the Lab's first run and time to every rerun. The
    name is checked at once, so a bad one is refused before any button shows.

    Raises:
        VoiceError: ``name`` is not a valid voice name (letters, digits, ``_.-``, at most 64).
    """
    name = validate_voice_name(name)
    pack = np.array(pack, dtype=np.float32)  # a copy: later edits of the caller's array do not change the download
    text = recipe.to_json()
    return {
        f"{name}.pt": lambda: pack_bytes(pack, ".pt", name),
        f"{name}.npz": lambda: pack_bytes(pack, ".npz", name),
        f"{name}.recipe.json": lambda: text.encode("utf-8"),
    }


SPEED_RANGE = (0.5, 2.0)
"""The speeds the listening pages offer."""
SPEED_STEP = 0.05
"""Their grid."""
SHARED_TEXT_CHARS = 1000
"""The longest sample text a share link carries: browsers and servers cut URLs of a few thousand characters."""


def share_params(token: str, request: SpeechRequest) -> dict[str, str]:
    """Return the query a share link carries: the recipe's share string, and the text (where it is at most
    ``SHARED_TEXT_CHARS`` long), language and speed, so the recipient hears exactly what the sender heard."""
    params = {"recipe": token}
    if len(request.text) <= SHARED_TEXT_CHARS:
        params["text"] = request.text
    params.update(lang=request.lang, speed=f"{request.speed:g}")
    return params


def share_url(page_url: str, params: Mapping[str, str]) -> str:
    """Return ``page_url`` with its query string replaced by ``params`` (``share_params``; fragment dropped)."""
    parts = urlsplit(page_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(dict(params)), ""))


def shared_speech(query: Mapping[str, str], whose: str = "The link's") -> tuple[dict[str, object], dict[str, str]]:
    """Read what a link says to speak: return the ``text``, ``lang`` and ``speed`` it sets (those present and valid)
    and, for each that is present but cannot be used, why (keyed "text", "language" or "speed"; each reason starts
    with ``whose`` and has no full stop, so the page can say what it does instead)."""
    found: dict[str, object] = {}
    problems: dict[str, str] = {}
    if "text" in query:
        text = str(query["text"])
        if not text.strip():
            problems["text"] = f"{whose} text is empty"
        elif len(text) > SHARED_TEXT_CHARS:
            problems["text"] = f"{whose} text has {len(text):,} characters; a link carries at most " \
                               f"{SHARED_TEXT_CHARS:,}"
        else:
            found["text"] = text
    if "lang" in query:
        if query["lang"] in LANGUAGES:
            found["lang"] = query["lang"]
        else:
            problems["language"] = f"{whose} language {shown(query['lang'])} is not one of {', '.join(LANGUAGES)}"
    if "speed" in query:
        try:
            speed = float(query["speed"])
        except ValueError:
            speed = math.nan
        on_grid = round(speed / SPEED_STEP) * SPEED_STEP if math.isfinite(speed) else math.nan
        if SPEED_RANGE[0] <= speed <= SPEED_RANGE[1] and abs(speed - on_grid) < 1e-9:
            found["speed"] = round(on_grid, 2)
        else:
            problems["speed"] = f"{whose} speed {shown(query['speed'])} is not one of {SPEED_RANGE[0]:g} to " \
                                f"{SPEED_RANGE[1]:g} in steps of {SPEED_STEP:g}"
    return found, problems


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def meter_rows(result: Meters) -> dict[str, str]:
    """Return the meters of one render as ``{measure: text}``, every measure present, in display order.

    A meter that could not run reads ``unavailable: <reason>``; one not asked for reads "not measured".
    """
    sound = result.acoustics
    pitch_range = (f"{sound.f0_low_hz:.0f}–{sound.f0_high_hz:.0f} Hz"
                   if sound.f0_low_hz is not None and sound.f0_high_hz is not None else "–")
    rows = {
        "Duration": _number(sound.duration_s, " s", 2),
        "Median F0": _number(sound.f0_median_hz, " Hz", 0),
        "F0 range (5–95 %)": pitch_range,
        "Voiced share": f"{sound.voiced_fraction:.0%}",
        "Spectral centroid": _number(sound.spectral_centroid_hz, " Hz", 0),
        "Loudness": _number(sound.loudness_lufs, " LUFS", 1),
    }
    if result.intelligibility is not None:
        rows["Word error rate"] = f"{result.intelligibility.wer:.0%}"
        rows["Transcript"] = result.intelligibility.transcript or "(nothing heard)"
    else:
        reason = result.unavailable.get("intelligibility")
        rows["Word error rate"] = f"unavailable: {reason}" if reason else "not measured"
    if result.similarity:
        rows["Sounds like"] = ", ".join(f"{name} {score:.2f}" for name, score in result.similarity)
    else:
        reason = result.unavailable.get("similarity")
        rows["Sounds like"] = f"unavailable: {reason}" if reason else "not measured"
    return rows


def meters_table(results: Mapping[str, Meters]) -> pd.DataFrame:
    """Return the meters of several renders side by side: one row per measure, one column per render."""
    return pd.DataFrame({label: meter_rows(result) for label, result in results.items()})


AB_MODES = ("side by side", "blind ABX", "preference (CMOS)", "rating (MUSHRA)")
"""How the A/B page plays its voices: openly, or as one of its three listening tests."""
AB_SOURCES = ("stock voice", "Lab recipe", "recipe string", "recording")
"""What an A/B side can play: a stock voice, the Lab's current recipe, a pasted share string or link, or a
recording (an upload, or the one given to the Match page) heard as it is."""
RECORDING_SECONDS = 60.0
"""The longest recording an A/B side plays: the start of a longer one (the matcher matches the same minute)."""
MAX_TOKEN_INPUT_CHARS = MAX_TOKEN_CHARS + 1024
"""Longest pasted recipe string or share link (a share string is at most 8 KiB; a link adds the address)."""
SIDES = ("A", "B")
BLIND_ANSWERS = frozenset(x + said for x in SIDES for said in SIDES)
"""A blind answer: the side X played, then the side the listener said ("AB": X was A, they said B)."""
BLIND_X_GAIN = 10 ** (-0.05 / 20)
"""X plays 0.05 dB quieter than its side: inaudible, but its WAV differs, so the page source does not give X away
(Streamlit names media files by their content)."""


def side_recipe(source: str, *, voice: str | None = None, token: str | None = None,
                lab_token: str | None = None) -> Recipe:
    """Return the recipe one A/B side plays.

    Args:
        source: one of ``AB_SOURCES``.
        voice: the stock voice, for "stock voice".
        token: the pasted share string, for "recipe string".
        lab_token: the Lab's current share string (session ``recipe_token``), for "Lab recipe".

    Raises:
        RecipeError: unknown source, a malformed string, or no Lab recipe yet.
    """
    if source == "stock voice":
        return Recipe.single(voice)
    if source == "Lab recipe":
        if not lab_token:
            raise RecipeError("The Voice Lab has no recipe yet: open the Voice Lab and make one first.")
        return Recipe.from_token(lab_token)
    if source == "recipe string":
        if not token or not token.strip():
            raise RecipeError("Paste a recipe string (the Lab's share link holds one after 'recipe=').")
        return Recipe.from_token(token.strip().rsplit("recipe=", 1)[-1].split("&", 1)[0])
    raise RecipeError(f"A/B source {str(source)[:40]!r} is not one of {', '.join(AB_SOURCES)}.")


@dataclass(frozen=True)
class Recording:
    """A recording an A/B side plays instead of a render: what a person wants a voice to sound like.

    Attributes:
        audio: mono float32 at ``SAMPLE_RATE`` (resampled), at most ``RECORDING_SECONDS`` long.
        key: identifies the audio (its sha256), as an audio-cache key identifies a render, for meters and replays.
        name: what the person called it (a file name).
        seconds: its length before any cut.
    """

    audio: np.ndarray = field(repr=False)
    key: str
    name: str
    seconds: float

    @classmethod
    def from_samples(cls, audio: object, sample_rate: float, name: str) -> Recording:
        """Return the recording of ``audio`` (any shape ``meters.as_mono`` takes) at ``sample_rate`` Hz.

        Raises:
            AnalysisError: not audio samples, a rate that is not a positive number, or silence.
        """
        from explorer.meters import as_mono, resample

        mono = as_mono(audio, sample_rate)
        seconds = mono.size / float(sample_rate)
        mono = resample(mono[: int(RECORDING_SECONDS * sample_rate)], sample_rate, SAMPLE_RATE).astype(np.float32)
        if is_silent(mono):
            raise AnalysisError(f"{shown(name)} is silent: there is nothing in it to listen to.")
        return cls(mono, "recording:" + hashlib.sha256(mono.tobytes()).hexdigest(), name, seconds)

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Recording:
        """Return the recording an audio file's bytes hold (an upload).

        Raises:
            ExplorerError: what :func:`explorer.audio.read_audio_bytes` or :meth:`from_samples` refuses.
        """
        return cls.from_samples(*read_audio_bytes(data, name), name)

    @property
    def label(self) -> str:
        """What a test's results call it: the name and the start of the audio's sha256."""
        return f"recording {self.name} (sha256 {self.key.removeprefix('recording:')[:12]})"

    def describe(self) -> str:
        """Return one line: the name, length and any cut."""
        cut = f"; the first {RECORDING_SECONDS:.0f} s play" if self.seconds > RECORDING_SECONDS else ""
        return f"{shown(self.name)}: {self.seconds:.1f} s{cut}."


@dataclass(frozen=True)
class ABSide:
    """What one A/B side plays: a recipe's voice saying the page's text, or a recording heard as it is.

    Attributes:
        recipe, pack: the recipe and the pack it makes, for a voice.
        recording: the recording, for a recording; ``transcript`` what it says, when the person typed it (for its
            word error rate).
    """

    recipe: Recipe | None = None
    pack: np.ndarray | None = field(default=None, repr=False)
    recording: Recording | None = None
    transcript: str | None = None

    @property
    def token(self) -> str:
        """What a test's results and downloads call this side: the recipe's share string, or the recording's
        label."""
        return self.recording.label if self.recording is not None else self.recipe.to_token()


@dataclass(frozen=True)
class BlindTrial:
    """One blind trial: which side the hidden X plays."""

    index: int
    x_is: str


def draw_trial(seed: int, index: int) -> BlindTrial:
    """Return trial ``index`` of a session seeded with ``seed``: the same pair always hides the same X."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])
    return BlindTrial(int(index), SIDES[int(rng.integers(2))])


def equal_lengths(*clips: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return ``clips`` as float32, each padded with silence at its end to the longest one's length, so that no
    player of a listening test shows a length that tells its stimulus from the others."""
    length = max(len(clip) for clip in clips)
    return tuple(np.pad(np.asarray(clip, dtype=np.float32), (0, length - len(clip))) for clip in clips)


def blind_stimuli(audio_a: np.ndarray, audio_b: np.ndarray, trial: BlindTrial) -> tuple[np.ndarray, ...]:
    """Return what a blind trial plays as A, B and X: all three the same length (``equal_lengths``), so no player
    shows a length that gives X away; X is its side at ``BLIND_X_GAIN``."""
    a, b = equal_lengths(audio_a, audio_b)
    return a, b, ((a if trial.x_is == "A" else b) * BLIND_X_GAIN).astype(np.float32)


BLIND_TEST_LENGTHS = (8, 12, 16, 24)
"""How many trials a blind test may have."""
DEFAULT_BLIND_TRIALS = 12
"""A blind test's length unless the listener picks another: 10 right of 12 is already beyond guessing (p 0.019)."""
FEEDBACK_MODES = ("at the end", "after each trial")
"""When a blind test tells the listener whether they were right; at the end by default, so that it does not teach
them which is which as the test runs."""
MAX_BLIND_TRIALS = 1000
"""The most trials a tally keeps (session state is the listener's own, but it is read back as data)."""


@dataclass(frozen=True)
class BlindTally:
    """The session's blind trials: per trial, which side X played and which the listener said, e.g. ``"AB"``."""

    answers: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    """When each answer was given (``utc_now``); "" where unknown."""

    def __post_init__(self) -> None:
        if len(self.times) != len(self.answers):
            object.__setattr__(self, "times", ("",) * len(self.answers))

    @property
    def trials(self) -> int:
        """How many trials were answered."""
        return len(self.answers)

    @property
    def correct(self) -> int:
        """How many times the listener matched X to its side."""
        return sum(answer[0] == answer[1] for answer in self.answers)

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> BlindTally:
        """Return the tally kept in session state (``{"answers": ["AB", ...]}``); anything else is a fresh one."""
        answers = data.get("answers") if isinstance(data, Mapping) else None
        if not isinstance(answers, (list, tuple)) or len(answers) > MAX_BLIND_TRIALS or \
                not all(isinstance(answer, str) and answer in BLIND_ANSWERS for answer in answers):
            return cls()
        return cls(tuple(answers), answer_times(data, len(answers)))

    def to_dict(self) -> dict[str, list[str]]:
        """Return the form kept in session state."""
        return {"answers": list(self.answers), "times": list(self.times)}

    def record(self, trial: BlindTrial, choice: str) -> BlindTally:
        """Return the tally after the listener said X is ``choice`` ("A" or "B") in ``trial``.

        Raises:
            ExplorerError: ``choice`` is not "A" or "B".
        """
        if choice not in SIDES:
            raise ExplorerError(f"A blind choice is A or B, not {str(choice)[:10]!r}.")
        return BlindTally((*self.answers, trial.x_is + choice)[-MAX_BLIND_TRIALS:],
                          (*self.times, utc_now())[-MAX_BLIND_TRIALS:])

    def table(self) -> pd.DataFrame:
        """Return one row per trial: its number, the side X played, the listener's answer, whether it was right and
        when it was given."""
        return pd.DataFrame([{"trial": index + 1, "X was": answer[0], "you said": answer[1],
                              "right": answer[0] == answer[1], "answered at": time}
                             for index, (answer, time) in enumerate(zip(self.answers, self.times))],
                            columns=["trial", "X was", "you said", "right", "answered at"])

    def export(self, stimuli: Mapping[str, object]) -> dict[str, bytes]:
        """Return the test as files to download: ``blind-test.csv`` (one row per trial) and ``blind-test.json``
        (``stimuli``: what was compared and how, e.g. both recipes' share strings, the text, language, speed, engine
        and seed; then every trial and the result in words and numbers)."""
        return results_files("blind-test", self.table(), stimuli, {
            "correct": self.correct, "trials": self.trials, "p_value": self.p_value, "summary": self.summary()})

    @property
    def p_value(self) -> float:
        """Chance of doing at least this well by guessing (one-sided binomial test, p = 1/2, scipy's
        ``binomtest``); 1.0 before any trial."""
        if not self.trials:
            return 1.0
        from scipy.stats import binomtest

        return float(binomtest(self.correct, self.trials, 0.5, alternative="greater").pvalue)

    def summary(self) -> str:
        """Return the tally in words and numbers, e.g. "14 of 16 correct: you can tell them apart (guessing does
        this well once in 478 runs)." A verdict needs guessing to do as well less than once in 20 runs."""
        if not self.trials:
            return "No blind trials yet."
        p = self.p_value
        chance = f"once in {round(1 / p):,} runs" if p < 0.1 else f"{round(100 * p)} times in 100 runs"
        verdict = "you can tell them apart" if p < 0.05 else "not enough to say you can tell them apart"
        return f"{self.correct} of {self.trials} correct: {verdict} (guessing does this well {chance})."
