"""Speak text (or phonemes) with a style vector or voicepack: chunk, render each chunk, trim its silent edges and
join the chunks with pauses.

Three responsibilities:

1. Turn the input into chunks that fit the engine's context (:func:`prepare`, through :mod:`explorer.g2p`).
2. Render the chunks one by one, yielding each as soon as it is ready (:func:`render_plan`,
   :func:`synthesize_stream`), so playback can start while the rest renders.
3. Join them into one :class:`Synthesis` with what produced it and how fast (:func:`synthesize`).

A voicepack is handed to the engine whole for every chunk: the engine picks row ``len(chunk_phonemes) - 1`` for
each chunk, exactly as ``kokoro.KPipeline`` does, so a short first chunk and a long second one get different rows.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import numpy as np

from explorer.audio import SAMPLE_RATE, wav_bytes
from explorer.engines import CONTEXT_TOKENS, Engine, load_engine, load_vocab
from explorer.errors import SynthesisError
from explorer.g2p import Chunk, ChunkPlan, chunk_phonemes, chunk_text
from explorer.paths import atomic_write_bytes, check_output

__all__ = [
    "EDGE_KEEP_SECONDS",
    "EDGE_SILENCE_DB",
    "FIRST_CHUNK_PHONEMES",
    "PHONEMES_PER_SECOND",
    "RenderedChunk",
    "Synthesis",
    "expected_audio_seconds",
    "prepare",
    "render_plan",
    "speech_span",
    "synthesize",
    "synthesize_plan",
    "synthesize_stream",
]

EDGE_SILENCE_DB = -40.0
"""A 10 ms frame this far below a chunk's loudest frame is silence; Kokoro's silent edges measure far below it."""
EDGE_KEEP_SECONDS = 0.05
"""Silence kept before a chunk's first and after its last sound, so soft onsets and endings are not clipped."""
FIRST_CHUNK_PHONEMES = 20
"""The short first chunk the app streams with: text then starts with its first clause ("Hello there,"), or its
whole first sentence when that has no clause break (chunks are only cut at clause or sentence ends here), so the
first audio is ready after one clause renders. ``python -m explorer bench`` times the alternatives."""
PHONEMES_PER_SECOND = 17.8
"""Kokoro's speaking rate at speed 1, measured over the bench corpus and the ``bench cli`` paragraph spoken by
af_heart, am_adam, bf_emma and jf_alpha (chunk pauses included): what :func:`expected_audio_seconds` divides by."""


def expected_audio_seconds(plan: ChunkPlan, speed: float = 1.0) -> float:
    """Return about how many seconds of speech ``plan`` will render at ``speed``, before anything renders: what
    ``auto`` weighs a one-off job by (:func:`explorer.engines.auto_choice`).

    Example:
        >>> from explorer.synth import expected_audio_seconds, prepare
        >>> round(expected_audio_seconds(prepare(phonemes="həlˈO wˈɜːld. " * 20)))
        16
    """
    return sum(len(chunk.phonemes) for chunk in plan.chunks) / PHONEMES_PER_SECOND / speed


@dataclass(frozen=True)
class RenderedChunk:
    """One chunk's audio, yielded as soon as the engine has rendered it.

    Attributes:
        index: position of the chunk (0-based).
        count: number of chunks in the whole input.
        chunk: the text, phonemes and boundary it was rendered from.
        audio: float32 mono audio of the chunk alone.
        sample_rate: samples per second of ``audio``.
        pause_seconds: silence that follows this chunk (0 after the last one).
        durations: predicted frames per token, including the two pads; None when the engine's model does not
            output them (the official int8 ONNX export).
        compute_seconds: the engine's time for this chunk.
        trimmed_samples: how much silence was cut from the start of the model's audio (the first token's frames
            start that many samples before ``audio``).
    """

    index: int
    count: int
    chunk: Chunk
    audio: np.ndarray = field(repr=False)
    sample_rate: int
    pause_seconds: float
    durations: np.ndarray | None = field(repr=False)
    compute_seconds: float
    trimmed_samples: int = 0

    @property
    def padded_audio(self) -> np.ndarray:
        """The chunk's audio followed by its pause: concatenating these in order gives the whole synthesis."""
        silence = np.zeros(round(self.pause_seconds * self.sample_rate), dtype=np.float32)
        return np.concatenate([np.asarray(self.audio, dtype=np.float32), silence])


@dataclass(frozen=True)
class Synthesis:
    """A whole rendering and what produced it.

    Attributes:
        audio: float32 mono audio, chunks joined with their pauses.
        sample_rate: samples per second (24 kHz for Kokoro).
        chunks: the phoneme string of each chunk, in order.
        engine: the engine's name ("torch" or "onnx").
        weights: which weights the engine used, in words.
        g2p: which converter made the phonemes ("raw phonemes" when given).
        notes: fallbacks, removed characters, dropped symbols: things to show a person.
        compute_seconds: the engine's rendering time summed over chunks (G2P excluded, see ``g2p_seconds``).
        g2p_seconds: time spent converting and chunking the input.
        durations: predicted frames per token for each chunk (pads included), None where the engine gives none.

    Example:
        >>> import explorer
        >>> speech = explorer.synthesize("Hello there.", style=explorer.load_voices()["am_adam"].pack)
        >>> speech.engine in {"onnx", "torch"}, speech.audio.dtype, speech.wav()[:4]
        (True, dtype('float32'), b'RIFF')
    """

    audio: np.ndarray = field(repr=False)
    sample_rate: int
    chunks: tuple[str, ...]
    engine: str
    weights: str
    g2p: str
    notes: tuple[str, ...]
    compute_seconds: float
    g2p_seconds: float = 0.0
    durations: tuple[np.ndarray | None, ...] = field(default=(), repr=False)

    @property
    def seconds(self) -> float:
        """Length of the audio in seconds, pauses included."""
        return len(self.audio) / self.sample_rate

    @property
    def rtf(self) -> float:
        """Real-time factor: engine compute seconds per second of audio (below 1 is faster than real time)."""
        return self.compute_seconds / self.seconds if self.seconds else float("inf")

    @property
    def phonemes(self) -> str:
        """All chunks' phonemes joined by spaces."""
        return " ".join(self.chunks)

    def wav(self) -> bytes:
        """Return the audio as 16-bit WAV bytes (what the app plays and ``save`` writes)."""
        return wav_bytes(self.audio, self.sample_rate)

    def save(self, path: str | Path) -> Path:
        """Write the audio to ``path`` as WAV, atomically.

        Raises:
            ExplorerError: the folder does not exist or takes no new file, or ``path`` is a folder or a device
                (:func:`explorer.paths.check_output`).
        """
        return atomic_write_bytes(check_output(path), self.wav())

    def _repr_html_(self) -> str:
        """Show a player in Jupyter: ``synthesize(...)`` as a cell's last line is playable."""
        encoded = base64.b64encode(self.wav()).decode()
        return (f'<audio controls src="data:audio/wav;base64,{encoded}"></audio>'
                f"<div>{self.seconds:.2f} s · {self.engine} · RTF {self.rtf:.2f}</div>")


def prepare(
    text: str | None = None,
    *,
    phonemes: str | None = None,
    engine: Engine | None = None,
    lang: str = "a",
    first_chunk_phonemes: int | None = None,
) -> ChunkPlan:
    """Split text or raw phonemes into chunks that fit ``engine`` and use only symbols it knows.

    Args:
        text: text to speak in language ``lang``; give this or ``phonemes``, not both.
        phonemes: raw phonemes (Kokoro's misaki symbols); symbols outside the engine's vocab are dropped with a note.
        engine: the engine that will render; its vocab and context size shape the chunks. None takes those of the
            bundled config, which every engine built from it has: the command line checks the text this way before
            it spends seconds loading the engine.
        lang: Kokoro language code for ``text``.
        first_chunk_phonemes: optional smaller first chunk, so audio can start sooner.

    Returns:
        The chunk plan (chunks, converter name, notes).

    Raises:
        SynthesisError: neither or both inputs given, or the input cannot be pronounced.
    """
    if (text is None) == (phonemes is None):
        raise SynthesisError("Give either text or phonemes to speak, not both and not neither.")
    if engine is None:
        vocab, context_tokens = load_vocab(), CONTEXT_TOKENS
    else:
        vocab, context_tokens = engine.vocab, engine.context_tokens
    limits = {"vocab": vocab, "max_phonemes": context_tokens - 2, "first_chunk_phonemes": first_chunk_phonemes}
    if text is not None:
        return chunk_text(text, lang, **limits)
    return chunk_phonemes(phonemes, **limits)


def render_plan(plan: ChunkPlan, *, style: np.ndarray, engine: Engine, speed: float = 1.0) -> Iterator[RenderedChunk]:
    """Render a chunk plan one chunk at a time.

    Args:
        plan: from :func:`prepare`.
        style: a 256-dim style vector, or a voicepack ([510, 256] or [510, 1, 256]) from which the engine takes row
            ``len(chunk_phonemes) - 1`` for each chunk.
        engine: renders each chunk; it validates style and speed.
        speed: speaking rate (1 is normal); pauses between chunks shrink or grow with it.

    Yields:
        Each chunk's audio as soon as it is rendered.

    Raises:
        SynthesisError: the engine refused the style, speed or phonemes.
    """
    count = len(plan.chunks)
    for index, chunk in enumerate(plan.chunks):
        rendered = engine.render(chunk.phonemes, style, speed)
        speech = speech_span(rendered.audio)
        yield RenderedChunk(
            index=index,
            count=count,
            chunk=chunk,
            audio=rendered.audio[speech],
            sample_rate=SAMPLE_RATE,
            pause_seconds=0.0 if index == count - 1 else chunk.pause_seconds / float(speed),
            durations=rendered.durations,
            compute_seconds=rendered.compute_seconds,
            trimmed_samples=int(speech.start),
        )


def speech_span(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> slice:
    """Return the part of one chunk's audio to keep: its sound, with ``EDGE_KEEP_SECONDS`` of silence each side.

    Kokoro starts every call with about 0.3 s of silence and ends it with 0.4-0.7 s, so joined chunks would be
    separated by nearly a second of dead air and the first word would come 0.3 s late. Cutting the edges makes the
    join's pause (``explorer.g2p.BOUNDARY_PAUSES``) the only one. Silence is judged on 10 ms frames,
    ``EDGE_SILENCE_DB`` below the loudest; a silent or constant clip is kept whole.
    """
    frame = sample_rate // 100
    frames = len(audio) // frame
    if frames == 0:
        return slice(0, len(audio))
    power = np.mean(np.square(audio[: frames * frame].reshape(frames, frame), dtype=np.float64), axis=1)
    if power.max() == 0:
        return slice(0, len(audio))
    loud = np.flatnonzero(power > power.max() * 10 ** (EDGE_SILENCE_DB / 10))
    keep = round(EDGE_KEEP_SECONDS * sample_rate)
    return slice(max(0, int(loud[0]) * frame - keep), min(len(audio), (int(loud[-1]) + 1) * frame + keep))


def synthesize_stream(
    text: str | None = None,
    *,
    phonemes: str | None = None,
    style: np.ndarray,
    engine: Engine | None = None,
    lang: str = "a",
    speed: float = 1.0,
    first_chunk_phonemes: int | None = None,
) -> Iterator[RenderedChunk]:
    """Yield chunk audio as it renders: play ``chunk.padded_audio`` of each in turn for gapless speech.

    Same arguments as :func:`synthesize`. To show the converter's notes before the audio, call :func:`prepare` and
    :func:`render_plan` instead.

    Yields:
        Each chunk's audio as soon as it is rendered.

    Example:
        >>> import explorer
        >>> pack = explorer.load_voices()["bf_emma"].pack
        >>> chunks = list(explorer.synthesize_stream("Good morning.\\nHow are you?", style=pack))
        >>> len(chunks), all(chunk.padded_audio.ndim == 1 for chunk in chunks)
        (2, True)
    """
    engine = _resolve(engine)
    plan = prepare(text, phonemes=phonemes, engine=engine, lang=lang, first_chunk_phonemes=first_chunk_phonemes)
    yield from render_plan(plan, style=style, engine=engine, speed=speed)


def synthesize(
    text: str | None = None,
    *,
    phonemes: str | None = None,
    style: np.ndarray,
    engine: Engine | None = None,
    lang: str = "a",
    speed: float = 1.0,
    first_chunk_phonemes: int | None = None,
    on_chunk: Callable[[RenderedChunk], None] | None = None,
) -> Synthesis:
    """Speak text or raw phonemes with a style vector or voicepack.

    Args:
        text: text to speak in language ``lang``; give this or ``phonemes``, not both.
        phonemes: raw phonemes; symbols outside the engine's vocab are dropped with a note.
        style: a 256-dim style vector, or a voicepack ([510, 256] or [510, 1, 256]); with a pack each chunk uses
            row ``len(chunk_phonemes) - 1``.
        engine: the engine to render with; ``None`` uses ``explorer.engines.load_engine("auto")``, loaded on the
            first such call and kept for the next ones.
        lang: Kokoro language code for ``text``.
        speed: speaking rate, 0.25-4 (1 is normal).
        first_chunk_phonemes: optional smaller first chunk (e.g. ``FIRST_CHUNK_PHONEMES``), so ``on_chunk`` gets
            audio to play sooner; the chunks, and so the audio, then differ slightly from the default's.
        on_chunk: called with each chunk as soon as it is rendered, before the next one starts (to play it).

    Returns:
        The joined audio, the chunks, which engine, weights and G2P produced it, notes, and timings.

    Raises:
        SynthesisError: bad input, style or speed.

    Example:
        >>> import explorer
        >>> speech = explorer.synthesize("Hello there.", style=explorer.load_voices()["af_heart"].pack)
        >>> speech.sample_rate, speech.seconds > 0.3, len(speech.chunks)
        (24000, True, 1)
        >>> speech.save("hello.wav").name          # in Jupyter, ``speech`` itself is a playable audio widget
        'hello.wav'
    """
    engine = _resolve(engine)
    started = perf_counter()
    plan = prepare(text, phonemes=phonemes, engine=engine, lang=lang, first_chunk_phonemes=first_chunk_phonemes)
    return synthesize_plan(plan, style=style, engine=engine, speed=speed, on_chunk=on_chunk,
                           g2p_seconds=perf_counter() - started)


def synthesize_plan(
    plan: ChunkPlan,
    *,
    style: np.ndarray,
    engine: Engine,
    speed: float = 1.0,
    on_chunk: Callable[[RenderedChunk], None] | None = None,
    g2p_seconds: float = 0.0,
) -> Synthesis:
    """Speak a chunk plan already made by :func:`prepare`: what :func:`synthesize` does after its G2P.

    For a caller that checks the text before it loads an engine (the command line does, as loading takes seconds),
    so the text is converted once.

    Args:
        plan: from :func:`prepare` (with this engine, or with ``engine=None``: the bundled config's vocab).
        style, engine, speed, on_chunk: as for :func:`synthesize`.
        g2p_seconds: how long making ``plan`` took, kept in the result.

    Example:
        >>> import explorer
        >>> from explorer.synth import prepare, synthesize_plan
        >>> plan = prepare("Hello there.")                       # checked before any engine is loaded
        >>> speech = synthesize_plan(plan, style=explorer.load_voices()["af_heart"].pack,
        ...                          engine=explorer.load_engine("onnx"))
        >>> speech.chunks == tuple(chunk.phonemes for chunk in plan.chunks)
        True
    """
    rendered = []
    for part in render_plan(plan, style=style, engine=engine, speed=speed):
        rendered.append(part)
        if on_chunk is not None:
            on_chunk(part)
    return Synthesis(
        audio=np.concatenate([part.padded_audio for part in rendered]),
        sample_rate=rendered[0].sample_rate,
        chunks=tuple(chunk.phonemes for chunk in plan.chunks),
        engine=engine.name,
        weights=engine.weights,
        g2p=plan.g2p,
        notes=plan.notes,
        compute_seconds=sum(part.compute_seconds for part in rendered),
        g2p_seconds=g2p_seconds,
        durations=tuple(part.durations for part in rendered),
    )


def _resolve(engine: Engine | None) -> Engine:
    return engine if engine is not None else _auto_engine()


@functools.lru_cache(maxsize=1)
def _auto_engine() -> Engine:
    """The ``auto`` engine, loaded once per process: a notebook calling ``synthesize`` again reuses the model."""
    return load_engine("auto")
