"""Find the recipe whose voice sounds like a target recording: what ``python -m explorer match``, the "Match a voice"
page and ``explorer.match_voice`` run.

Kokoro has no speaker encoder, so the matcher searches the style space, scoring each candidate voice by how alike
its renders and the target sound to the speaker-similarity meter (resemblyzer): the cosine of their embeddings,
averaged over a few **search sentences**. The **held-out sentences** are never rendered during the search; the
report scores the found voice on them, so a match that only fits the search sentences shows.

The search, in three stages, each counted in evaluations (one candidate voice rendered on every search sentence and
scored):

1. **Stock voices.** Every reference voice is scored; the best is where a person would start by hand.
2. **Mix.** The best few (``MatchConfig.mix_voices``) are blended with separate timbre (decoder) and prosody weights,
   softmax-normalised so the mix stays a weighted mean of stock voices, searched by CMA-ES (the ``cma`` library).
3. **Refine.** From the best mix, least squares (scipy's trust-region reflective ``least_squares``) move along the
   top PCA components of the decoder half (timbre), within ``pca_limit`` standard deviations, bringing the
   candidate's embedding of every search sentence as close to the target's as it can: 256 numbers a sentence to go
   on where CMA-ES sees one similarity. Its Jacobian's candidates are one batch (parallel on workers), and a
   candidate the out-of-distribution report calls out of distribution is refused unrendered (where speech stops
   surviving). Timbre-only candidates share their prosody, which the torch engine keeps (``TorchEngine``'s prosody
   store), so they render the decoder alone.

Candidates render in fp32 (``MATCH_ENGINE``): in bf16 the rounding makes a voice's embedding jump by 0.02-0.035 for
any change of its style however small (fp32: 0.002 for a 0.005 std step), so the Jacobian would be noise and the
search would keep whichever candidate the noise favoured on the search sentences.

The result is an ordinary recipe (a mix and PCA steps), so ``synth --recipe``, ``mix --recipe`` and share strings
take it. Renders are seeded per sentence, so a search is deterministic for a given seed and worker count.
Evaluations run in this process, or in parallel on Ray actors (:class:`explorer.match_workers.RayEvaluator`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from explorer.audio import is_silent, read_audio_bytes, read_audio_file, style_sha256
from explorer.engines.base import release_freed_memory
from explorer.engines.choice import load_engine
from explorer.errors import AnalysisError, ExplorerError, shown
from explorer.g2p import phonemize
from explorer.meters import (
    RECOGNISED_LANGUAGES,
    as_mono,
    pitch_track,
    speaker_embedding,
    speech_seconds,
    transcribe,
    word_error_rate,
)
from explorer.recipe import Component, Mix, PCAStep, Recipe, RecipeContext, apply_recipe, describe, ood_report
from explorer.synth import speech_span
from explorer.voices import VoiceSet, load_voices

if TYPE_CHECKING:
    from pathlib import Path

    from explorer.engines.base import Engine

__all__ = [
    "BUDGET_LIMITS",
    "MATCH_ENGINE",
    "MATCH_SENTENCES",
    "MATCH_LANGUAGES",
    "MAX_TARGET_SECONDS",
    "MIN_SPEECH_SECONDS",
    "MINUTES_LIMITS",
    "REFINE_STEP",
    "Evaluator",
    "LocalEvaluator",
    "MatchConfig",
    "MatchError",
    "MatchProgress",
    "MatchReport",
    "MatchResult",
    "Scorer",
    "ScorerSpec",
    "SentenceScores",
    "Target",
    "forget_renders",
    "match_voice",
    "matcher_unavailable",
    "report_match",
]

MATCH_SENTENCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        ("Would you like to come over for dinner on Friday evening?",
         "The weather has been strange this year, warm one day and cold the next."),
        ("She opened the window and listened to the rain falling on the garden.",
         "Our train leaves at half past seven, so please don't be late.",
         "Every book on that shelf was written by someone who lived in this town."),
    ),
    "e": (
        ("¿Te gustaría venir a cenar el viernes por la noche?",
         "Este año el tiempo ha sido extraño, un día hace calor y al siguiente frío."),
        ("Abrió la ventana y escuchó la lluvia que caía sobre el jardín.",
         "Nuestro tren sale a las siete y media, así que no llegues tarde.",
         "Todos los libros de esa estantería los escribió alguien de este pueblo."),
    ),
    "f": (
        ("Voudrais-tu venir dîner vendredi soir à la maison ?",
         "Le temps a été étrange cette année, chaud un jour et froid le lendemain."),
        ("Elle a ouvert la fenêtre et écouté la pluie tomber sur le jardin.",
         "Notre train part à sept heures et demie, alors ne sois pas en retard.",
         "Chaque livre de cette étagère a été écrit par quelqu'un de cette ville."),
    ),
    "i": (
        ("Ti piacerebbe venire a cena venerdì sera?",
         "Quest'anno il tempo è stato strano, un giorno caldo e il giorno dopo freddo."),
        ("Ha aperto la finestra e ha ascoltato la pioggia cadere sul giardino.",
         "Il nostro treno parte alle sette e mezza, quindi non fare tardi.",
         "Ogni libro su quello scaffale è stato scritto da qualcuno di questa città."),
    ),
    "p": (
        ("Você gostaria de vir jantar na sexta-feira à noite?",
         "O tempo tem estado estranho este ano, quente num dia e frio no outro."),
        ("Ela abriu a janela e ouviu a chuva cair no jardim.",
         "O nosso trem sai às sete e meia, então não se atrase.",
         "Cada livro daquela estante foi escrito por alguém desta cidade."),
    ),
}
"""Per language (English for American and British voices), the search sentences and the held-out sentences: a
question and a statement to search on, three other statements to judge the result on."""
_SENTENCE_SET = {"a": "en", "b": "en", "e": "e", "f": "f", "i": "i", "p": "p"}
"""Kokoro language code to its sentences."""
MATCH_LANGUAGES: dict[str, tuple[str, ...]] = {"a": ("a", "b"), "b": ("a", "b"), "e": ("e",), "f": ("f",),
                                               "i": ("i",), "p": ("p",)}
"""The languages the matcher's candidates speak (Kokoro codes), each with the languages of the stock voices that
speak it natively (both Englishes for English)."""
MAX_TARGET_SECONDS = 60.0
"""A longer recording is cut to its first minute (the report says so): a minute of speech is far more than the
speaker encoder needs, and its cost grows with the length."""
MIN_SPEECH_SECONDS = 2.0
"""Less speech than this (after resemblyzer's voice-activity trimming) is refused: too little to know a voice by."""
MIN_SAMPLE_RATE = 8_000
"""A recording sampled more slowly than telephone speech does not carry a voice's timbre."""
BUDGET_LIMITS = (10, 100_000)
"""The fewest and most evaluations a search may be given."""
MINUTES_LIMITS = (0.05, 24 * 60.0)
"""The shortest and longest time limit a search may be given, in minutes."""
MATCH_ENGINE = "torch-fp32"
"""The engine candidates render with (see the module's docstring for why fp32): the torch engine, which keeps
prosodies for timbre-only candidates."""
REFINE_STEP = 0.05
"""The refine stage's finite-difference step, in standard deviations along a component: large enough that the
embedding moves well beyond fp32's rounding, small enough to stay on its local slope."""
_REFUSED_RESIDUAL = 0.5
"""What the refine stage's least squares see of a refused candidate on every number: a cost far above any voice's,
so they step back."""
_EMBEDDINGS_KEPT = 4096
"""Embeddings of renders remembered across searches (about 1 KiB each): stock voices are scored again in every
search of the same sentences, and a refused or repeated candidate costs nothing."""


class MatchError(ExplorerError):
    """A target recording, a search setting or a worker the matcher cannot use; the message says which and why."""


def matcher_unavailable() -> str | None:
    """Return why the matcher cannot run here, or None where it can: it needs the speaker-similarity meter
    (resemblyzer) and CMA-ES (cma), both in ``requirements-meters.txt``, which Streamlit Community Cloud does not
    install. Looks for the packages without importing them."""
    import importlib.util

    missing = [name for name in ("resemblyzer", "cma") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"The voice matcher needs {' and '.join(missing)}, which this installation lacks: run `make run`, or "
            "`pip install -r requirements-meters.txt`.")


# the target ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A recording of the voice to match, checked and analysed.

    Attributes:
        audio: float32 mono samples at ``sample_rate``, cut to ``MAX_TARGET_SECONDS``.
        sample_rate: its rate in Hz.
        name: what the person called it (a file name), for messages.
        seconds: its length in seconds before any cut.
        speech_seconds: how much speech the speaker encoder's voice-activity trimming keeps.
        pitch_hz: the median F0 of its voiced frames (Praat), or None where none is voiced.
        embedding: its resemblyzer embedding (unit norm, 256 values).

    Example:
        >>> import explorer
        >>> george = explorer.load_voices()["bm_george"].pack
        >>> speech = explorer.synthesize("Would you like to come over for dinner on Friday evening?", style=george)
        >>> target = explorer.Target.from_array(speech.audio, 24000, "george.wav")
        >>> target.speech_seconds > 2, 80 < target.pitch_hz < 200, target.embedding.shape
        (True, True, (256,))
    """

    audio: np.ndarray = field(repr=False)
    sample_rate: int
    name: str
    seconds: float
    speech_seconds: float
    pitch_hz: float | None
    embedding: np.ndarray = field(repr=False)

    @property
    def cut(self) -> bool:
        """Whether the recording was longer than ``MAX_TARGET_SECONDS`` and only its start is matched."""
        return self.seconds > MAX_TARGET_SECONDS

    def describe(self) -> str:
        """Return one line: length, speech found, pitch and any cut."""
        pitch = f", pitch about {self.pitch_hz:.0f} Hz" if self.pitch_hz else ", no voiced frames found"
        cut = f"; only the first {MAX_TARGET_SECONDS:.0f} s are matched" if self.cut else ""
        return (f"{shown(self.name)}: {self.seconds:.1f} s at {self.sample_rate} Hz, {self.speech_seconds:.1f} s of "
                f"speech found{pitch}{cut}.")

    @classmethod
    def from_array(cls, audio: object, sample_rate: float, name: str = "recording") -> Target:
        """Check and analyse samples (1-D, or 2-D with channels on the shorter axis, averaged to mono).

        Raises:
            MatchError: not audio samples, a rate below ``MIN_SAMPLE_RATE``, silence, or less than
                ``MIN_SPEECH_SECONDS`` of speech.
        """
        try:
            rate = float(sample_rate)
            if not math.isfinite(rate) or rate < MIN_SAMPLE_RATE:
                raise MatchError(f"{shown(name)} is sampled at {sample_rate} Hz; a voice needs at least "
                                 f"{MIN_SAMPLE_RATE} Hz.")
            mono = as_mono(audio, rate)
        except AnalysisError as error:
            raise MatchError(f"{shown(name)} cannot be matched: {error}") from None
        seconds = mono.size / rate
        mono = mono[: int(MAX_TARGET_SECONDS * rate)]
        if is_silent(mono):
            raise MatchError(f"{shown(name)} is silent: there is no voice in it to match.")
        speech = speech_seconds(mono, rate)
        if speech < MIN_SPEECH_SECONDS:
            raise MatchError(f"{shown(name)} holds {speech:.1f} s of speech; the matcher needs at least "
                             f"{MIN_SPEECH_SECONDS:.0f} s to know a voice by.")
        f0 = pitch_track(mono, rate)
        voiced = f0[np.isfinite(f0)]
        return cls(
            audio=mono.astype(np.float32), sample_rate=int(round(rate)), name=name, seconds=seconds,
            speech_seconds=speech, pitch_hz=float(np.median(voiced)) if voiced.size else None,
            embedding=speaker_embedding(mono, rate),
        )

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "upload") -> Target:
        """Check, decode and analyse the bytes of an audio file (an upload or a browser recording).

        Raises:
            MatchError: what :func:`explorer.audio.read_audio_bytes` or :meth:`from_array` refuses.
        """
        try:
            audio, rate = read_audio_bytes(data, name)
        except ExplorerError as error:
            raise MatchError(str(error)) from None
        return cls.from_array(audio, rate, name)

    @classmethod
    def from_file(cls, path: str | Path) -> Target:
        """Check, read and analyse an audio file a person named.

        Raises:
            MatchError: what :func:`explorer.audio.read_audio_file` or :meth:`from_array` refuses.
        """
        from pathlib import Path

        try:
            audio, rate = read_audio_file(path)
        except ExplorerError as error:
            raise MatchError(str(error)) from None
        return cls.from_array(audio, rate, Path(path).name)


# settings -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchConfig:
    """How a search runs.

    Attributes:
        budget: the most evaluations (stock voices included), within ``BUDGET_LIMITS``.
        minutes: a time limit, within ``MINUTES_LIMITS``, or None for none.
        seed: seeds the optimiser (and, through it, every candidate); renders are seeded per sentence.
        lang: the Kokoro language code the candidates speak (one with ``MATCH_SENTENCES``).
        transcript: what the target says; when given, the candidates speak it as the first search sentence too.
        mix_voices: how many of the best stock voices the mix stage blends.
        decoder_components: PCA components of the decoder half the refine stage moves along.
        prosody_components: PCA components of the prosody half it moves along (none by default: a prosody step
            changes the durations, whole frames at a time, so finite differences there are steps, not slopes).
        pca_limit: the most it moves along a component, in standard deviations across the reference voices.
        mix_evaluations: how many evaluations the mix stage takes (fewer where the budget ends first). A fixed
            number, not a share of the budget, so a search is the same whatever its budget until that budget ends:
            the best after 100 evaluations of a 1000-evaluation search is what a 100-evaluation search finds.

    Example:
        >>> import explorer
        >>> config = explorer.MatchConfig(budget=100, lang="b", transcript="Hello, this is my voice.")
        >>> config.search_sentences[0], len(config.held_out_sentences)
        ('Hello, this is my voice.', 3)
        >>> explorer.MatchConfig(budget=5)
        Traceback (most recent call last):
        explorer.match.MatchError: The budget must be a whole number of evaluations from 10 to 100,000, not '5'.
    """

    budget: int = 300
    minutes: float | None = None
    seed: int = 0
    lang: str = "a"
    transcript: str | None = None
    mix_voices: int = 4
    decoder_components: int = 16
    prosody_components: int = 0
    pca_limit: float = 2.5
    mix_evaluations: int = 60

    def __post_init__(self) -> None:
        low, high = BUDGET_LIMITS
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or not low <= self.budget <= high:
            raise MatchError(f"The budget must be a whole number of evaluations from {low} to {high:,}, not "
                             f"{shown(self.budget)}.")
        if self.minutes is not None:
            low_m, high_m = MINUTES_LIMITS
            if (isinstance(self.minutes, bool) or not isinstance(self.minutes, (int, float))
                    or not math.isfinite(self.minutes) or not low_m <= self.minutes <= high_m):
                raise MatchError(f"The time limit must be {low_m:g} to {high_m:g} minutes, not {shown(self.minutes)}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise MatchError(f"The seed must be a whole number from 0 to {2**31 - 1}, not {shown(self.seed)}.")
        if self.lang not in _SENTENCE_SET:
            raise MatchError(f"The matcher speaks {', '.join(_SENTENCE_SET)} (Kokoro's language codes), not "
                             f"{shown(self.lang)}.")
        if self.transcript is not None and not self.transcript.strip():
            raise MatchError("The transcript is empty; leave it out when the words are not known.")
        if not 1 <= self.mix_voices <= 8 or not 0 <= self.decoder_components <= 32 \
                or not 0 <= self.prosody_components <= 32 or not 0 < self.pca_limit <= 10 \
                or not 0 <= self.mix_evaluations <= BUDGET_LIMITS[1]:
            raise MatchError("The search's shape (mix voices 1-8, components 0-32, PCA limit up to 10 std, mix "
                             "evaluations up to the largest budget) is out of range.")

    @property
    def search_sentences(self) -> tuple[str, ...]:
        """What candidates speak during the search: the transcript (when given), then the language's sentences."""
        stock = MATCH_SENTENCES[_SENTENCE_SET[self.lang]][0]
        return (self.transcript.strip(), *stock) if self.transcript else stock

    @property
    def held_out_sentences(self) -> tuple[str, ...]:
        """What the report judges the result on: never rendered during the search."""
        return MATCH_SENTENCES[_SENTENCE_SET[self.lang]][1]


# scoring ------------------------------------------------------------------------------------------


_EMBEDDING_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()


def forget_renders() -> None:
    """Forget the embeddings of renders this process remembers, so the next search renders everything anew (a
    benchmark times each search as a fresh one)."""
    _EMBEDDING_CACHE.clear()


class Scorer:
    """Renders packs speaking sentences (seeded per sentence, so a voice and its moved copy hear the same vocoder
    noise) and scores them against a target embedding. It lives where the engine does: in this process, or in a
    Ray actor.

    Args:
        engine: a loaded engine (the torch engine keeps prosodies, so timbre-only candidates render the decoder
            alone).
        voices: the reference voices recipes are applied against.
        lang: the Kokoro language code the sentences are spoken in.
        seed: sentence ``i`` is rendered with ``seed + i``.
        context: the recipe context of ``voices``; built (and cached) when not given.
    """

    def __init__(self, engine: Engine, voices: VoiceSet, lang: str = "a", seed: int = 0,
                 context: RecipeContext | None = None):
        self.engine, self.voices, self.lang, self.seed = engine, voices, lang, seed
        self.context = context or RecipeContext.from_voices(voices)
        self._phonemes: dict[str, str] = {}

    def pack(self, recipe: Recipe) -> np.ndarray:
        """Return the pack ``recipe`` describes against the reference voices."""
        return apply_recipe(recipe, self.voices, self.context)

    def admits(self, recipe: Recipe) -> bool:
        """Whether ``recipe``'s voice lies within the stock voices' distribution (else it is refused unrendered)."""
        return not ood_report(self.pack(recipe), self.voices, self.context).out_of_distribution

    def render(self, pack: np.ndarray, sentence: str, index: int) -> np.ndarray:
        """Return the seeded render of ``sentence`` (the ``index``-th of its list), cut to the speech."""
        import torch

        phonemes = self._phonemes.get(sentence)
        if phonemes is None:
            phonemes = self._phonemes[sentence] = phonemize(sentence, self.lang).phonemes
        torch.manual_seed(self.seed + index)
        audio = self.engine.render(phonemes, pack).audio
        return np.asarray(audio[speech_span(audio)], dtype=np.float32)

    def embeddings(self, pack: np.ndarray, sentences: Sequence[str]) -> list[np.ndarray]:
        """Return the speaker embedding of ``pack`` speaking each sentence (remembered across searches)."""
        return [self._embedding(pack, sentence, index)[0] for index, sentence in enumerate(sentences)]

    def _embedding(self, pack: np.ndarray, sentence: str, index: int,
                   keep_audio: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the embedding of ``pack`` speaking the ``index``-th sentence, remembered; with ``keep_audio``, also
        the render (rendered when the embedding was remembered), so nothing is rendered twice."""
        key = (self.engine.name, self.engine.weights, self.lang, self.seed + index, sentence, style_sha256(pack))
        embedding = _EMBEDDING_CACHE.get(key)
        audio = None
        if embedding is None or keep_audio:
            audio = self.render(pack, sentence, index)
        if embedding is None:
            embedding = _EMBEDDING_CACHE[key] = speaker_embedding(audio)
            if len(_EMBEDDING_CACHE) > _EMBEDDINGS_KEPT:
                _EMBEDDING_CACHE.popitem(last=False)
        else:
            _EMBEDDING_CACHE.move_to_end(key)
        return embedding, audio

    def recipe_embeddings(self, recipe: Recipe, sentences: Sequence[str]) -> np.ndarray:
        """Return :meth:`pack_embeddings` of ``recipe``'s voice."""
        return self.pack_embeddings(self.pack(recipe), sentences)

    def pack_embeddings(self, pack: np.ndarray, sentences: Sequence[str]) -> np.ndarray:
        """Return the embeddings of ``pack`` speaking each of ``sentences``: [sentences, 256] (the memory its renders
        freed handed back: a search renders hundreds of lengths)."""
        embedded = np.stack(self.embeddings(pack, sentences))
        release_freed_memory()
        return embedded

    def pack_similarity(self, pack: np.ndarray, sentences: Sequence[str], target: np.ndarray) -> float:
        """Return the mean similarity of ``pack`` speaking ``sentences`` to the ``target`` embedding."""
        return float(np.mean(self.pack_embeddings(pack, sentences) @ target))

    def sentence_scores(self, recipe: Recipe, sentences: Sequence[str], target: np.ndarray,
                        recognise: bool) -> SentenceScores:
        """Return ``recipe``'s similarity to ``target`` on each sentence and, with ``recognise``, its word error
        rate there (the recogniser transcribes each render)."""
        return self.pack_sentence_scores(self.pack(recipe), sentences, target, recognise)

    def pack_sentence_scores(self, pack: np.ndarray, sentences: Sequence[str], target: np.ndarray,
                             recognise: bool) -> SentenceScores:
        """Return :meth:`sentence_scores` of a pack."""
        heard = [self._embedding(pack, sentence, index, keep_audio=recognise)
                 for index, sentence in enumerate(sentences)]
        similarities = [float(np.dot(embedding, target)) for embedding, _ in heard]
        wers = [word_error_rate(sentence, transcribe(audio))
                for sentence, (_, audio) in zip(sentences, heard)] if recognise else []
        release_freed_memory()
        return SentenceScores(tuple(similarities), tuple(wers))


@dataclass(frozen=True)
class ScorerSpec:
    """Everything needed to build a :class:`Scorer` anywhere, in this process or on a Ray worker: small and
    picklable, so a worker loads its own voices and engine.

    Attributes:
        voices: where the reference voices come from (``load_voices``' source; None for the bundled voices).
        exclude: voices left out of the reference set (the benchmark holds one out).
        engine: the engine kind (``load_engine``'s; ``MATCH_ENGINE`` by default).
        lang: the Kokoro language code candidates speak.
        seed: sentence ``i`` is rendered with ``seed + i``.
        device: where the torch engine computes ("cpu", "cuda", "cuda:N"; None is the CPU).
    """

    voices: str | None = None
    exclude: tuple[str, ...] = ()
    engine: str = MATCH_ENGINE
    lang: str = "a"
    seed: int = 0
    device: str | None = None

    def reference_voices(self) -> VoiceSet:
        """Return the reference voices: the source's, less ``exclude``.

        Raises:
            MatchError: an excluded voice is not in the set, or fewer than 3 voices are left.
        """
        loaded = load_voices(self.voices)
        missing = [name for name in self.exclude if name not in loaded]
        if missing:
            raise MatchError(f"Cannot exclude {', '.join(shown(name) for name in missing)}: not among the voices.")
        kept = VoiceSet([voice for voice in loaded if voice.name not in self.exclude])
        if len(kept) < 3:
            raise MatchError(f"The matcher needs at least 3 reference voices; {len(kept)} are left.")
        return kept

    def build(self, engine: Engine | None = None) -> Scorer:
        """Return the scorer: the reference voices and ``engine`` (loaded from ``self.engine`` on ``self.device``
        when not given)."""
        return Scorer(engine or load_engine(self.engine, device=self.device), self.reference_voices(), self.lang,
                      self.seed)


@dataclass(frozen=True)
class SentenceScores:
    """A voice's similarity to the target on each of some sentences, and its word error rate on each (empty where the
    language has no recogniser)."""

    similarities: tuple[float, ...]
    wers: tuple[float, ...] = ()

    @property
    def similarity(self) -> float:
        """The mean similarity."""
        return float(np.mean(self.similarities))

    @property
    def wer(self) -> float | None:
        """The mean word error rate, or None where it was not measured."""
        return float(np.mean(self.wers)) if self.wers else None


class Evaluator(Protocol):
    """Scores batches of candidate recipes, in order: in this process or on workers."""

    workers: int

    def embeddings(self, recipes: Sequence[Recipe], sentences: Sequence[str]) -> list[np.ndarray]:
        """Return each recipe's embeddings speaking ``sentences`` ([sentences, 256] each)."""
        ...

    def admitted(self, recipes: Sequence[Recipe]) -> list[bool]:
        """Return whether each recipe's voice lies within the stock voices' distribution."""
        ...

    def sentence_scores(self, recipes: Sequence[Recipe], sentences: Sequence[str], target: np.ndarray,
                        recognise: bool) -> list[SentenceScores]:
        """Return each recipe's per-sentence similarity (and word error rate, with ``recognise``)."""
        ...


@dataclass
class LocalEvaluator:
    """Evaluates in this process, one candidate after another."""

    scorer: Scorer
    workers: int = 1

    def embeddings(self, recipes: Sequence[Recipe], sentences: Sequence[str]) -> list[np.ndarray]:
        return [self.scorer.recipe_embeddings(recipe, sentences) for recipe in recipes]

    def admitted(self, recipes: Sequence[Recipe]) -> list[bool]:
        return [self.scorer.admits(recipe) for recipe in recipes]

    def sentence_scores(self, recipes: Sequence[Recipe], sentences: Sequence[str], target: np.ndarray,
                        recognise: bool) -> list[SentenceScores]:
        return [self.scorer.sentence_scores(recipe, sentences, target, recognise) for recipe in recipes]


# the search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchProgress:
    """Where a search stands, told to its observer after every batch of evaluations.

    Attributes:
        evaluations: candidates scored so far.
        budget: the most it will score.
        stage: "stock voices", "mix" or "refine".
        best: the best recipe so far, and ``similarity`` its mean similarity on the search sentences.
        curve: ``(evaluations, best similarity)`` after every batch.
        seconds: time since the search started.
    """

    evaluations: int
    budget: int
    stage: str
    best: Recipe
    similarity: float
    curve: tuple[tuple[int, float], ...]
    seconds: float


@dataclass(frozen=True)
class MatchResult:
    """What a search found.

    Attributes:
        recipe: the best recipe; ``similarity`` its mean similarity on the search sentences.
        stock: the reference voices ranked by that similarity, best first.
        curve: ``(evaluations, best similarity)`` after every batch, from the first stock voice on.
        evaluated: every candidate rendered, in order, with its similarity.
        timeline: the seconds from the start of the search to each of those evaluations.
        evaluations: candidates scored; ``refused`` candidates turned away unrendered as out of distribution.
        seconds: how long the search took.
        stopped: why it stopped: "budget", "time", "converged" (the refine stage's least squares found no better
            way on before the budget ended) or "interrupted" (the best found so far is kept).
        config: the settings it ran with; ``workers`` how many evaluated at once.
    """

    recipe: Recipe
    similarity: float
    stock: tuple[tuple[str, float], ...]
    curve: tuple[tuple[int, float], ...]
    evaluated: tuple[tuple[Recipe, float], ...] = field(repr=False)
    timeline: tuple[float, ...] = field(repr=False)
    evaluations: int
    refused: int
    seconds: float
    stopped: str
    config: MatchConfig
    workers: int = 1

    @property
    def best_stock(self) -> tuple[str, float]:
        """The best stock voice and its similarity."""
        return self.stock[0]

    def best_within(self, evaluations: int) -> tuple[Recipe, float]:
        """Return the best recipe among the first ``evaluations`` candidates, and its similarity: what a search
        with that budget finds (the stages do not depend on the budget)."""
        first = self.evaluated[:max(1, evaluations)]
        return max(first, key=lambda pair: pair[1])


class _Search:
    """One search's bookkeeping: the budget, the clock, the best so far and the curve."""

    def __init__(self, evaluator: Evaluator, target: Target, config: MatchConfig,
                 observer: Callable[[MatchProgress], None] | None):
        self.evaluator, self.target, self.config, self.observer = evaluator, target, config, observer
        self.sentences = config.search_sentences
        self.started = time.perf_counter()
        self.evaluations = self.refused = 0
        self.best: tuple[Recipe, float] | None = None
        self.curve: list[tuple[int, float]] = []
        self.evaluated: list[tuple[Recipe, float]] = []
        self.timeline: list[float] = []
        self.stopped = "budget"
        self.stage = "stock voices"

    @property
    def left(self) -> int:
        """Evaluations left in the budget."""
        return self.config.budget - self.evaluations

    def out_of_time(self) -> bool:
        if self.config.minutes is not None and time.perf_counter() - self.started >= 60 * self.config.minutes:
            self.stopped = "time"
            return True
        return False

    def embed(self, recipes: Sequence[Recipe]) -> list[np.ndarray | None]:
        """Render and embed ``recipes`` on the search sentences ([sentences, 256] each; None for one refused
        unrendered as out of distribution, in the refine stage), update the best and tell the observer."""
        admitted = self.evaluator.admitted(recipes) if self.stage == "refine" else [True] * len(recipes)
        rendered = [recipe for recipe, ok in zip(recipes, admitted) if ok]
        found = iter(self.evaluator.embeddings(rendered, self.sentences))
        embedded = [next(found) if ok else None for ok in admitted]
        self.refused += len(recipes) - len(rendered)
        self.evaluations += len(rendered)
        for recipe, embedding in zip(recipes, embedded):
            if embedding is not None:
                score = self.similarity(embedding)
                self.evaluated.append((recipe, score))
                self.timeline.append(time.perf_counter() - self.started)
                if self.best is None or score > self.best[1]:
                    self.best = (recipe, score)
        self.curve.append((self.evaluations, self.best[1]))
        if self.observer is not None:
            self.observer(MatchProgress(self.evaluations, self.config.budget, self.stage, self.best[0],
                                        self.best[1], tuple(self.curve), time.perf_counter() - self.started))
        return embedded

    def similarity(self, embedded: np.ndarray) -> float:
        """Return a candidate's mean similarity to the target over the search sentences, from its embeddings."""
        return float(np.mean(embedded @ self.target.embedding))

    def score(self, recipes: Sequence[Recipe]) -> list[float]:
        """Return each recipe's :meth:`similarity` (0 for one refused), through :meth:`embed`."""
        return [0.0 if e is None else self.similarity(e) for e in self.embed(recipes)]

    def optimise(self, start: np.ndarray, sigma: float, bound: float, budget: int, seed: int,
                 recipe_of: Callable[[np.ndarray], Recipe]) -> None:
        """Run CMA-ES from ``start`` (step ``sigma``, every coordinate within ±``bound``) for ``budget`` evaluations,
        scoring the recipes ``recipe_of`` makes of its candidates."""
        with warnings.catch_warnings():   # cma says once that it cannot plot without matplotlib
            warnings.simplefilter("ignore", UserWarning)
            import cma

        options = {"seed": seed, "bounds": [-bound, bound], "verbose": -9, "tolx": 1e-6, "tolfun": 1e-5,
                   "popsize": max(4, 2 * self.evaluator.workers) if len(start) < 4 else None}
        strategy = cma.CMAEvolutionStrategy(start, sigma, {k: v for k, v in options.items() if v is not None})
        spent = self.evaluations

        def room() -> int:
            return 0 if self.out_of_time() else min(budget - (self.evaluations - spent), self.left)

        while not strategy.stop() and room() > 0:
            candidates = strategy.ask()
            scores: list[float] = []
            while len(scores) < len(candidates) and room() > 0:   # refused candidates cost no evaluation
                chunk = candidates[len(scores):len(scores) + room()]
                scores += self.score([recipe_of(x) for x in chunk])
            if len(scores) < len(candidates):   # a generation the budget cuts short is not told
                break
            strategy.tell(candidates, [-score for score in scores])


    def fit(self, recipe_of: Callable[[np.ndarray], Recipe], components: int, bound: float) -> None:
        """Move ``components`` coordinates (each within ±``bound``) so that the embeddings of ``recipe_of``'s
        candidate on the search sentences come as close to the target's as they can: scipy's trust-region
        least squares on their differences (256 numbers a sentence, where CMA-ES sees one similarity). The
        Jacobian is taken by forward differences of ``REFINE_STEP`` std, its candidates scored as one batch (in
        parallel on workers). Ends at the budget, the time limit, or where the least squares converge."""
        from scipy.optimize import least_squares

        target = self.target.embedding
        refused = np.full(len(self.sentences) * target.size, _REFUSED_RESIDUAL)
        known: dict[bytes, np.ndarray] = {}

        def residuals(points: Sequence[np.ndarray]) -> list[np.ndarray | None]:
            room = 0 if self.out_of_time() else self.left
            if room < len(points):
                if room:   # what the budget still holds is scored, so a search's prefix is a smaller search
                    self.embed([recipe_of(x) for x in points[:room]])
                raise _Spent
            return [None if embedded is None else (embedded - target).ravel().astype(np.float64)
                    for embedded in self.embed([recipe_of(x) for x in points])]

        def at(x: np.ndarray) -> np.ndarray:
            key = x.tobytes()
            if key not in known:   # scipy asks for the Jacobian where it has just evaluated
                found = residuals([x])[0]
                known[key] = refused if found is None else found
            return known[key]

        def jacobian(x: np.ndarray) -> np.ndarray:
            here = at(x)
            steps = np.where(x + REFINE_STEP <= bound, REFINE_STEP, -REFINE_STEP)
            moved = residuals([x + step * unit for step, unit in zip(steps, np.eye(len(x)))])
            columns = np.zeros((here.size, len(x)))
            for i, (step, there) in enumerate(zip(steps, moved)):
                if there is not None and here is not refused:
                    columns[:, i] = (there - here) / step
            return columns

        try:
            least_squares(at, np.zeros(components), jac=jacobian, bounds=(-bound, bound), method="trf",
                          x_scale=bound * math.sqrt(components), max_nfev=BUDGET_LIMITS[1])
            self.stopped = "converged"
        except _Spent:
            pass


class _Spent(Exception):
    """The budget or the time limit ends the refine stage."""


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def _mix_recipe(names: Sequence[str], x: np.ndarray) -> Recipe:
    """Return the mix of ``names`` whose decoder and prosody weights are the softmax of ``x``'s two halves (rounded,
    so the recipe holds exactly what was scored)."""
    count = len(names)
    decoder, prosody = np.round(_softmax(x[:count]), 4), np.round(_softmax(x[count:]), 4)
    components = tuple(Component(name, float(d), float(p)) for name, d, p in zip(names, decoder, prosody) if d or p)
    return Recipe(Mix(components))


def _refined_recipe(base: Recipe, decoder: int, x: np.ndarray) -> Recipe:
    """Return ``base`` moved along the first ``decoder`` decoder components and then the prosody components by ``x``
    (rounded to 0.001 std; zero steps left out)."""
    steps = [PCAStep("decoder", i, float(amount)) for i, amount in enumerate(np.round(x[:decoder], 3)) if amount]
    steps += [PCAStep("prosody", i, float(amount)) for i, amount in enumerate(np.round(x[decoder:], 3)) if amount]
    return base.with_edits(steps)


def match_voice(
    target: Target,
    evaluator: Evaluator,
    voice_names: Sequence[str],
    config: MatchConfig = MatchConfig(),
    observer: Callable[[MatchProgress], None] | None = None,
) -> MatchResult:
    """Search for the recipe whose voice sounds most like ``target`` (see the module's docstring for the stages).

    Args:
        target: the recording to match.
        evaluator: where candidates are scored (:class:`LocalEvaluator`, or Ray actors).
        voice_names: the reference voices to start from (the evaluator's voices, less any held out).
        config: budget, time limit, seed, language and the search's shape.
        observer: told after every batch; may raise (a Streamlit rerun does) to stop the search.

    Returns:
        The best recipe found; Ctrl-C (KeyboardInterrupt) stops the search and keeps it.

    Raises:
        MatchError: fewer reference voices than the budget can score, or none.

    Example:
        >>> import explorer
        >>> from explorer.match import LocalEvaluator, Scorer
        >>> voices = explorer.load_voices()
        >>> speech = explorer.synthesize("Would you like to come over for dinner on Friday evening?",
        ...                              style=voices["bm_george"].pack)
        >>> target = explorer.Target.from_array(speech.audio, 24000, "george.wav")
        >>> scorer = Scorer(explorer.load_engine("torch"), voices)
        >>> small = explorer.MatchConfig(budget=10, mix_voices=2, mix_evaluations=4, decoder_components=2,
        ...                              prosody_components=0)
        >>> result = explorer.match_voice(target, LocalEvaluator(scorer), ["am_adam", "bm_lewis", "am_onyx"], small)
        >>> result.evaluations, result.similarity >= result.best_stock[1]
        (10, True)
        >>> explorer.save_pack(scorer.pack(result.recipe), "found.pt").name
        'found.pt'
    """
    names = list(voice_names)
    if not names:
        raise MatchError("The matcher needs at least one reference voice.")
    if len(names) > config.budget:
        raise MatchError(f"A budget of {config.budget} evaluations cannot score the {len(names)} reference voices; "
                         f"give at least {len(names)}.")
    search = _Search(evaluator, target, config, observer)
    stock: list[tuple[str, float]] = []
    try:
        for start in range(0, len(names), max(1, evaluator.workers)):
            if search.out_of_time():
                break
            batch = names[start:start + max(1, evaluator.workers)]
            stock += zip(batch, search.score([Recipe.single(name) for name in batch]))
        stock.sort(key=lambda pair: -pair[1])
        best = [name for name, _ in stock[:min(config.mix_voices, len(stock))]]
        if len(best) > 1 and search.left > 0:
            search.stage = "mix"
            start = np.zeros(2 * len(best))
            start[0] = start[len(best)] = 2.0
            search.optimise(start, 1.0, 6.0, config.mix_evaluations, config.seed + 1,
                            lambda x: _mix_recipe(best, x))
        components = config.decoder_components + config.prosody_components
        if components and search.left > 0:
            search.stage = "refine"
            base = search.best[0]
            search.fit(lambda x: _refined_recipe(base, config.decoder_components, x), components, config.pca_limit)
    except KeyboardInterrupt:
        search.stopped = "interrupted"
    if search.best is None:
        raise MatchError("The search was stopped before it scored a single voice.")
    stock.sort(key=lambda pair: -pair[1])
    return MatchResult(
        recipe=search.best[0], similarity=search.best[1], stock=tuple(stock), curve=tuple(search.curve),
        evaluated=tuple(search.evaluated), timeline=tuple(search.timeline), evaluations=search.evaluations,
        refused=search.refused, seconds=time.perf_counter() - search.started,
        stopped=search.stopped, config=config, workers=evaluator.workers,
    )


# the report ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchReport:
    """A search's result judged on the search sentences and on held-out sentences it never rendered, beside the best
    stock voice's figures on the same sentences.

    Attributes:
        result: the search's result.
        found_search, found_held_out: the found voice on the search and held-out sentences.
        stock_search, stock_held_out: the best stock voice on the same.
        held_out_target: what the held-out similarities were measured against ("the recording", or a held-out
            voice's renders in the benchmark).
    """

    result: MatchResult
    found_search: SentenceScores
    found_held_out: SentenceScores
    stock_search: SentenceScores
    stock_held_out: SentenceScores
    held_out_target: str = "the recording"

    def to_dict(self) -> dict:
        """Return the report as JSON-ready data: figures, the curve and the settings."""
        result, config = self.result, self.result.config

        def figures(scores: SentenceScores) -> dict:
            return {"similarity": round(scores.similarity, 4),
                    "per_sentence": [round(value, 4) for value in scores.similarities],
                    "wer": None if scores.wer is None else round(scores.wer, 4)}

        return {
            "recipe": result.recipe.to_dict(),
            "share": result.recipe.to_token(),
            "search_sentences": list(config.search_sentences),
            "held_out_sentences": list(config.held_out_sentences),
            "held_out_target": self.held_out_target,
            "found": {"search": figures(self.found_search), "held_out": figures(self.found_held_out)},
            "best_stock_voice": {"name": result.best_stock[0], "search": figures(self.stock_search),
                                 "held_out": figures(self.stock_held_out)},
            "stock_ranking": [[name, round(value, 4)] for name, value in result.stock],
            "evaluations": result.evaluations,
            "refused_out_of_distribution": result.refused,
            "seconds": round(result.seconds, 1),
            "stopped": result.stopped,
            "workers": result.workers,
            "curve": [[count, round(value, 4)] for count, value in result.curve],
            "config": {"budget": config.budget, "minutes": config.minutes, "seed": config.seed, "lang": config.lang,
                       "transcript": config.transcript, "mix_voices": config.mix_voices,
                       "decoder_components": config.decoder_components,
                       "prosody_components": config.prosody_components, "pca_limit": config.pca_limit},
            "wer_note": None if config.lang in RECOGNISED_LANGUAGES else
            "Word error rate not measured: the bundled recogniser knows English only.",
        }

    def lines(self) -> list[str]:
        """Return the report for a terminal: a few plain lines."""
        result = self.result

        def wer(scores: SentenceScores) -> str:
            return "" if scores.wer is None else f", word error rate {scores.wer:.3f}"

        return [
            "found: " + describe(result.recipe).replace("\n", "\n       "),
            f"  similarity {self.found_search.similarity:.3f} on the search sentences, "
            f"{self.found_held_out.similarity:.3f} on held-out sentences{wer(self.found_held_out)}",
            f"best stock voice {result.best_stock[0]}: {self.stock_search.similarity:.3f} on the search sentences, "
            f"{self.stock_held_out.similarity:.3f} on held-out sentences{wer(self.stock_held_out)}",
            f"{result.evaluations} evaluations ({result.refused} refused out of distribution) in "
            f"{result.seconds:.0f} s on {result.workers} worker(s); stopped by {result.stopped}",
        ]


def report_match(
    result: MatchResult,
    evaluator: Evaluator,
    target: Target,
    held_out_target: np.ndarray | None = None,
    held_out_label: str = "the recording",
) -> MatchReport:
    """Judge ``result``: the found voice and the best stock voice, each on the search sentences and on the held-out
    sentences (with word error rates where the language has a recogniser).

    Args:
        result: what :func:`match_voice` found.
        evaluator: where the renders run.
        target: the recording matched (its embedding scores the search sentences).
        held_out_target: what the held-out renders are compared with: the recording's embedding by default; the
            benchmark gives the held-out voice's own renders of the held-out sentences.
        held_out_label: what ``held_out_target`` is, for the report.
    """
    config = result.config
    recognise = config.lang in RECOGNISED_LANGUAGES
    held_target = target.embedding if held_out_target is None else held_out_target
    recipes = [result.recipe, Recipe.single(result.best_stock[0])]
    found_search, stock_search = evaluator.sentence_scores(recipes, config.search_sentences, target.embedding, False)
    found_held, stock_held = evaluator.sentence_scores(recipes, config.held_out_sentences, held_target, recognise)
    return MatchReport(result, found_search, found_held, stock_search, stock_held, held_out_label)
