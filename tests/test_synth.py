"""Synthesis: chunks rendered in order with the right style row, joined with pauses, timed honestly.

The logic is specified against a fake engine whose audio shows what it was asked to render (a constant equal to the
first value of the style row it used, one sample run per phoneme); one test renders through a real torch engine.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from explorer import synth
from explorer.audio import SAMPLE_RATE
from explorer.errors import SynthesisError
from explorer.g2p import BOUNDARY_PAUSES
from explorer.paths import CONFIG_PATH

SAMPLES_PER_PHONEME = 100
SECONDS_PER_PHONEME = 0.001


class FakeEngine:
    """Duck-types explorer.engines.Engine: renders a flat tone whose level is the style value it picked."""

    name = "fake"
    weights = "no weights (test fake)"

    def __init__(self, context_tokens: int = 510):
        self.vocab = json.loads(CONFIG_PATH.read_text())["vocab"]
        self.context_tokens = context_tokens
        self.calls: list[tuple[str, tuple[int, ...], float]] = []

    def render(self, phonemes: str, style, speed: float = 1.0):
        style = np.asarray(style, dtype=np.float32)
        if not 0.25 <= speed <= 4:
            raise SynthesisError("Speed must be between 0.25 and 4.")
        assert 0 < len(phonemes) <= self.context_tokens - 2, "the chunker broke the engine's contract"
        assert all(symbol in self.vocab for symbol in phonemes), "a symbol outside the vocab reached the engine"
        self.calls.append((phonemes, style.shape, speed))
        vector = style.reshape(-1, 256)[min(len(phonemes) - 1, 509)] if style.ndim > 1 else style
        samples = round(len(phonemes) * SAMPLES_PER_PHONEME / speed)
        return types.SimpleNamespace(
            audio=np.full(samples, vector[0], dtype=np.float32),
            durations=np.ones(len(phonemes) + 2, dtype=np.int64),
            compute_seconds=len(phonemes) * SECONDS_PER_PHONEME,
        )


def row_numbered_pack() -> np.ndarray:
    """A [510, 256] pack whose row r is filled with r / 1000, so the audio level tells which row was used."""
    return np.repeat((np.arange(510, dtype=np.float32) / 1000)[:, None], 256, axis=1)


TWO_SENTENCES = ("Hello world, this is the first sentence of a test that has two of them. "
                 + "This second sentence is quite a lot longer than the first one, " * 3)


def segments(result: synth.Synthesis) -> list[np.ndarray]:
    """Cut a fake engine's synthesis back into its chunks, checking each pause is exact silence."""
    parts, start = [], 0
    for index, phonemes in enumerate(result.chunks):
        length = len(phonemes) * SAMPLES_PER_PHONEME
        parts.append(result.audio[start:start + length])
        start += length
        if index < len(result.chunks) - 1:
            pause = round(BOUNDARY_PAUSES["sentence"] * SAMPLE_RATE)
            assert not result.audio[start:start + pause].any()
            start += pause
    assert start == len(result.audio)
    return parts


def test_exactly_one_of_text_or_phonemes_is_required():
    engine = FakeEngine()
    with pytest.raises(SynthesisError, match="either text or phonemes"):
        synth.synthesize(style=np.zeros(256), engine=engine)
    with pytest.raises(SynthesisError, match="either text or phonemes"):
        synth.synthesize("Hi.", phonemes="hˈI", style=np.zeros(256), engine=engine)


def test_chunks_are_joined_with_a_short_pause_at_sentence_boundaries():
    engine = FakeEngine()
    result = synth.synthesize(TWO_SENTENCES, style=np.full(256, 0.5, dtype=np.float32), engine=engine, lang="a")
    assert len(result.chunks) == 2
    assert [call[0] for call in engine.calls] == list(result.chunks)
    assert all((part == 0.5).all() for part in segments(result))
    assert result.sample_rate == SAMPLE_RATE and result.audio.dtype == np.float32


def test_a_voicepack_gives_each_chunk_the_row_for_its_own_length():
    engine = FakeEngine()
    result = synth.synthesize(TWO_SENTENCES, style=row_numbered_pack(), engine=engine)
    first, second = segments(result)
    assert len(result.chunks[0]) != len(result.chunks[1])
    assert first[0] == pytest.approx((len(result.chunks[0]) - 1) / 1000)
    assert second[0] == pytest.approx((len(result.chunks[1]) - 1) / 1000)
    assert all(shape == (510, 256) for _, shape, _ in engine.calls)  # the engine picks the row, not synth


def test_a_single_style_vector_is_used_for_every_chunk():
    engine = FakeEngine()
    synth.synthesize(TWO_SENTENCES, style=np.full(256, 0.25, dtype=np.float32), engine=engine)
    assert [shape for _, shape, _ in engine.calls] == [(256,), (256,)]


def test_real_time_factor_is_engine_compute_time_over_audio_length():
    result = synth.synthesize(TWO_SENTENCES, style=np.zeros(256), engine=FakeEngine())
    phonemes = sum(len(chunk) for chunk in result.chunks)
    assert result.compute_seconds == pytest.approx(phonemes * SECONDS_PER_PHONEME)
    assert result.seconds == pytest.approx(len(result.audio) / SAMPLE_RATE)
    assert result.rtf == pytest.approx(result.compute_seconds / result.seconds)
    assert result.g2p_seconds >= 0


def test_the_synthesis_says_which_engine_weights_and_g2p_made_it():
    result = synth.synthesize("Hola mundo.", style=np.zeros(256), engine=FakeEngine(), lang="e")
    assert (result.engine, result.weights, result.g2p) == ("fake", "no weights (test fake)", "espeak es")
    assert result.phonemes == " ".join(result.chunks)
    assert len(result.durations) == len(result.chunks)


def test_notes_carry_g2p_fallbacks_and_dropped_symbols():
    spanish = synth.synthesize("¿Qué tal?", style=np.zeros(256), engine=FakeEngine(), lang="e")
    assert any("'¿'" in note for note in spanish.notes)  # espeak writes ¿, Kokoro's vocab has no such symbol
    raw = synth.synthesize(phonemes="hˈI ɫ ðˈɛɹ", style=np.zeros(256), engine=FakeEngine())
    assert raw.g2p == "raw phonemes" and raw.chunks == ("hˈI ðˈɛɹ",)
    assert any("'ɫ'" in note for note in raw.notes)


def test_chunks_never_exceed_the_engine_context():
    engine = FakeEngine(context_tokens=40)
    result = synth.synthesize("One two three four five six seven eight nine ten eleven twelve. " * 5,
                              style=np.zeros(256), engine=engine)
    assert len(result.chunks) > 5
    assert all(len(chunk) <= 38 for chunk in result.chunks)


def test_faster_speech_shortens_the_pauses_too():
    result = synth.synthesize(TWO_SENTENCES, style=np.zeros(256), engine=FakeEngine(), speed=2.0)
    speech = sum(round(len(chunk) * SAMPLES_PER_PHONEME / 2.0) for chunk in result.chunks)
    assert len(result.audio) - speech == round(BOUNDARY_PAUSES["sentence"] / 2.0 * SAMPLE_RATE)


def test_the_engine_refusing_a_speed_is_reported_as_a_synthesis_error():
    with pytest.raises(SynthesisError, match="Speed"):
        synth.synthesize("Hello.", style=np.zeros(256), engine=FakeEngine(), speed=0)


def test_the_stream_yields_the_first_chunk_before_rendering_the_rest():
    engine = FakeEngine()
    stream = synth.synthesize_stream(TWO_SENTENCES, style=np.zeros(256), engine=engine)
    first = next(stream)
    assert len(engine.calls) == 1
    assert (first.index, first.count) == (0, 2)
    assert first.pause_seconds == BOUNDARY_PAUSES["sentence"]
    rest = list(stream)
    assert [chunk.index for chunk in rest] == [1] and rest[-1].pause_seconds == 0


def test_streamed_padded_chunks_add_up_to_the_whole_synthesis():
    pack = row_numbered_pack()
    streamed = np.concatenate([chunk.padded_audio for chunk in
                               synth.synthesize_stream(TWO_SENTENCES, style=pack, engine=FakeEngine())])
    whole = synth.synthesize(TWO_SENTENCES, style=pack, engine=FakeEngine())
    np.testing.assert_array_equal(streamed, whole.audio)


def test_a_short_first_chunk_can_be_streamed_for_a_faster_start():
    engine = FakeEngine()
    plan = synth.prepare(TWO_SENTENCES, engine=engine, first_chunk_phonemes=20)
    assert len(plan.chunks[0].phonemes) <= 20
    assert [chunk.chunk for chunk in synth.render_plan(plan, style=np.zeros(256), engine=engine)] == list(plan.chunks)


def test_synthesize_hands_each_chunk_over_as_soon_as_it_is_rendered():
    """The app plays the first chunk while the rest renders: ``on_chunk`` sees it before the second is rendered."""
    engine, seen = FakeEngine(), []
    result = synth.synthesize(TWO_SENTENCES, style=row_numbered_pack(), engine=engine,
                              first_chunk_phonemes=synth.FIRST_CHUNK_PHONEMES,
                              on_chunk=lambda chunk: seen.append((chunk.index, len(engine.calls))))
    assert seen == [(index, index + 1) for index in range(len(result.chunks))] and len(seen) >= 3
    assert len(result.chunks[0]) <= synth.FIRST_CHUNK_PHONEMES


def test_the_silent_edges_of_a_chunk_are_cut_to_a_short_margin():
    """Kokoro pads each call with ~0.3 s of silence before and ~0.5 s after; joins keep only their own pause."""
    rate = SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate).astype(np.float32)
    audio = np.concatenate([np.zeros(int(0.3 * rate)), 1e-4 * np.ones(int(0.1 * rate)), tone,
                            np.zeros(int(0.6 * rate))]).astype(np.float32)
    kept = audio[synth.speech_span(audio)]
    keep = round(synth.EDGE_KEEP_SECONDS * rate)
    assert len(kept) == rate + 2 * keep  # the -70 dB hum before the tone counts as silence
    np.testing.assert_array_equal(kept[keep:-keep], tone)
    assert synth.speech_span(np.zeros(rate, dtype=np.float32)) == slice(0, rate)  # nothing to judge by: kept whole


def test_chunks_are_joined_with_their_edges_trimmed_and_the_boundary_pause_between(monkeypatch):
    engine = FakeEngine()
    render = engine.render

    def padded(phonemes, style, speed=1.0):
        result = render(phonemes, style, speed)
        silence = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
        return types.SimpleNamespace(**{**vars(result), "audio": np.concatenate([silence, result.audio, silence])})

    monkeypatch.setattr(engine, "render", padded)
    chunks = list(synth.synthesize_stream(TWO_SENTENCES, style=np.full(256, 0.5, dtype=np.float32), engine=engine))
    keep = round(synth.EDGE_KEEP_SECONDS * SAMPLE_RATE)
    frame = SAMPLE_RATE // 100  # silence is judged on 10 ms frames: the cut lands on a frame edge
    for chunk in chunks:
        assert chunk.trimmed_samples == SAMPLE_RATE // 2 - keep
        assert 0 <= len(chunk.audio) - (len(chunk.chunk.phonemes) * SAMPLES_PER_PHONEME + 2 * keep) < frame
    assert chunks[0].pause_seconds == BOUNDARY_PAUSES["sentence"]


def test_without_an_engine_the_auto_engine_is_loaded_once_and_kept(monkeypatch):
    asked = []
    monkeypatch.setattr(synth, "load_engine", lambda kind="auto", weights=None: asked.append(kind) or FakeEngine())
    synth._auto_engine.cache_clear()
    try:
        first = synth.synthesize("Hello.", style=np.zeros(256))
        second = synth.synthesize("Hello again.", style=np.zeros(256))
    finally:
        synth._auto_engine.cache_clear()  # the next test's auto engine is the real one
    assert asked == ["auto"] and first.engine == second.engine == "fake"


def test_renders_through_a_real_torch_engine(request, bundled_voices):
    """Integration: the tiny random-weight torch engine from conftest renders two lines joined by a pause."""
    try:
        engine = request.getfixturevalue("tiny_torch_engine")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no tiny_torch_engine fixture yet")
    result = synth.synthesize("Hello world.\nGood night.", style=bundled_voices["af_heart"].pack, engine=engine)
    assert result.engine == "torch" and len(result.chunks) == 2
    assert result.audio.dtype == np.float32 and np.isfinite(result.audio).all() and result.rtf > 0
    samples_per_frame = 600  # Kokoro v1.0's decoder: 2 * prod(upsample_rates) * hop size
    speech = sum(int(durations.sum()) * samples_per_frame for durations in result.durations)
    assert len(result.audio) == speech + round(BOUNDARY_PAUSES["line"] * SAMPLE_RATE)
