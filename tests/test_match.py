"""The voice matcher: a recording is checked and analysed, a search scores stock voices, mixes and PCA moves by
speaker similarity on its search sentences only, keeps the best it found however it stops, and its report judges
the result on held-out sentences beside the best stock voice."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile

from explorer.audio import wav_bytes
from explorer.match import (
    MATCH_ENGINE,
    MATCH_SENTENCES,
    MAX_TARGET_SECONDS,
    REFINE_STEP,
    LocalEvaluator,
    MatchConfig,
    MatchError,
    Scorer,
    Target,
    match_voice,
    report_match,
)
from explorer.recipe import Mix, PCAStep, Recipe
from explorer.voices import VoiceSet

REFERENCE = ("am_adam", "am_onyx", "bm_lewis", "af_heart")
HELD_OUT = "bm_george"
SMALL = {"mix_voices": 2, "mix_evaluations": 4, "decoder_components": 2, "prosody_components": 0}
"""A search small enough for the suite: 4 stock voices, a mix of 2, a refine along 2 decoder components."""


@pytest.fixture(scope="module")
def engine():
    from explorer.engines import load_engine

    return load_engine(MATCH_ENGINE)


@pytest.fixture(scope="module")
def reference(bundled_voices):
    return VoiceSet([bundled_voices[name] for name in REFERENCE])


@pytest.fixture(scope="module")
def scorer(engine, reference):
    return Scorer(engine, reference)


@pytest.fixture(scope="module")
def george(engine, bundled_voices):
    """The held-out voice speaking the search sentences: a recording of a voice the reference set lacks."""
    whole = Scorer(engine, bundled_voices)
    clips = [whole.render(bundled_voices[HELD_OUT].pack, text, i) for i, text in enumerate(MATCH_SENTENCES["en"][0])]
    return np.concatenate(clips)


@pytest.fixture(scope="module")
def target(george):
    return Target.from_array(george, 24000, "george.wav")


@pytest.fixture(scope="module")
def search(target, scorer):
    return match_voice(target, LocalEvaluator(scorer), REFERENCE, MatchConfig(budget=14, **SMALL))


# the recording


def test_a_recording_is_analysed_for_length_speech_and_pitch(target, george):
    assert target.sample_rate == 24000 and target.seconds == pytest.approx(len(george) / 24000)
    assert 2.0 < target.speech_seconds <= target.seconds + 0.1
    assert 80 < target.pitch_hz < 200                      # a man's voice
    assert target.embedding.shape == (256,) and np.linalg.norm(target.embedding) == pytest.approx(1, abs=1e-5)
    assert "s of speech found" in target.describe() and not target.cut


def test_any_rate_and_channel_count_is_read_as_mono(george):
    from scipy.signal import resample_poly

    stereo = np.stack([resample_poly(george, 147, 80), 0.5 * resample_poly(george, 147, 80)], axis=1)  # 44.1 kHz
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 44100, format="FLAC")
    found = Target.from_bytes(buffer.getvalue(), "two channels.flac")
    assert found.sample_rate == 44100 and found.audio.ndim == 1
    assert found.seconds == pytest.approx(len(george) / 24000, abs=0.01)


def test_a_long_recording_is_cut_to_its_first_minute_and_says_so(george):
    long = np.tile(george, int(MAX_TARGET_SECONDS * 24000 / len(george)) + 2)
    found = Target.from_array(long, 24000, "long.wav")
    assert found.cut and len(found.audio) == MAX_TARGET_SECONDS * 24000
    assert "only the first 60 s are matched" in found.describe()


@pytest.mark.parametrize("make, message", [
    (lambda g: np.zeros(48000), "is silent"),
    (lambda g: g[:24000], "at least 2 s"),
    (lambda g: np.full(48000, np.nan), "NaN"),
    (lambda g: np.zeros((3, 3, 3)), "one channel"),
])
def test_a_recording_without_enough_voice_is_refused_in_one_sentence(george, make, message):
    with pytest.raises(MatchError, match=message):
        Target.from_array(make(george), 24000, "bad.wav")


def test_a_rate_below_telephone_speech_is_refused(george):
    with pytest.raises(MatchError, match="at least 8000 Hz"):
        Target.from_array(george, 4000, "slow.wav")


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"this is not audio at all" * 100, "not an audio file"),
    (wav_bytes(np.zeros(48000))[:30], "not an audio file"),          # a header cut short
])
def test_bytes_that_are_not_audio_are_refused_in_one_sentence(data, message):
    with pytest.raises(MatchError, match=message):
        Target.from_bytes(data, "upload.wav")


def test_a_huge_upload_is_refused_before_it_is_decoded(monkeypatch):
    monkeypatch.setattr("explorer.audio._MAX_AUDIO_FILE_BYTES", 1000)
    with pytest.raises(MatchError, match="at most 0 MiB"):
        Target.from_bytes(wav_bytes(np.zeros(24000)), "huge.wav")


# settings


@pytest.mark.parametrize("settings, message", [
    ({"budget": 5}, "budget must be a whole number of evaluations from 10"),
    ({"budget": 10**6}, "budget"),
    ({"budget": 12.5}, "budget"),
    ({"minutes": 0}, "time limit"),
    ({"minutes": float("inf")}, "time limit"),
    ({"seed": -1}, "seed"),
    ({"lang": "j"}, "matcher speaks"),
    ({"transcript": "  "}, "transcript is empty"),
])
def test_settings_out_of_range_are_refused(settings, message):
    with pytest.raises(MatchError, match=message):
        MatchConfig(**settings)


def test_a_transcript_is_spoken_first_and_the_held_out_sentences_never_change():
    config = MatchConfig(transcript="Hello there, this is my voice.")
    assert config.search_sentences == ("Hello there, this is my voice.", *MATCH_SENTENCES["en"][0])
    assert config.held_out_sentences == MATCH_SENTENCES["en"][1]
    assert not set(config.search_sentences) & set(config.held_out_sentences)


# the search


def test_the_search_ranks_every_stock_voice_then_only_improves(search):
    assert [name for name, _ in search.stock] and set(dict(search.stock)) == set(REFERENCE)
    assert [value for _, value in search.stock] == sorted((value for _, value in search.stock), reverse=True)
    bests = [best for _, best in search.curve]
    assert bests == sorted(bests) and search.similarity == bests[-1]
    assert search.similarity >= search.best_stock[1]
    assert search.evaluations == 14 and search.stopped in ("budget", "converged")
    assert len(search.evaluated) == len(search.timeline) == 14


def test_the_result_is_a_recipe_of_stock_voices_and_pca_steps(search):
    recipe = search.recipe
    assert isinstance(recipe.base, Mix) and set(recipe.voice_names) <= set(REFERENCE)
    assert all(isinstance(edit, PCAStep) for edit in recipe.edits)
    assert Recipe.from_token(recipe.to_token()) == recipe


def test_the_refine_stage_takes_each_slope_as_one_batch_and_improves_on_the_mix(target, scorer):
    """The least squares ask for the candidate where they stand (1 evaluation) and for its slope along every
    component (one batch of 3), and the voice they reach sounds more like the target than the best mix."""
    stages = []
    config = MatchConfig(budget=24, **{**SMALL, "decoder_components": 3})
    result = match_voice(target, LocalEvaluator(scorer), REFERENCE, config,
                         lambda state: stages.append((state.stage, state.evaluations)))
    counts = [0] + [count for _, count in stages]
    refined = [count - before for (stage, count), before in zip(stages, counts) if stage == "refine"]
    assert set(refined) == {1, 3} and refined.count(3) >= 2
    assert result.evaluations == 24
    assert result.similarity > result.best_within(8)[1] + 0.01
    assert {edit.component for edit in result.recipe.edits} <= {0, 1, 2}


def test_the_matchers_renders_move_smoothly_with_the_style(scorer):
    """The refine stage's slopes need a voice's embedding to follow small moves of its style: in the matcher's fp32
    a 0.005 std step moves it a tenth as far as a step of REFINE_STEP (in bf16 any step moved it 0.02-0.035)."""
    sentences = MATCH_SENTENCES["en"][0][:1]
    start = scorer.recipe_embeddings(Recipe.single("am_adam"), sentences)

    def moved(amount: float) -> float:
        recipe = Recipe.single("am_adam").with_edits([PCAStep("decoder", 0, amount)])
        return float(np.linalg.norm(scorer.recipe_embeddings(recipe, sentences) - start))

    tiny, step = moved(0.005), moved(REFINE_STEP)
    assert tiny < 0.01 and tiny < step / 4


def test_a_search_is_deterministic_and_its_prefix_is_a_smaller_search(target, scorer, search):
    again = match_voice(target, LocalEvaluator(scorer), REFERENCE, MatchConfig(budget=14, **SMALL))
    assert again.recipe == search.recipe and again.similarity == search.similarity
    shorter = match_voice(target, LocalEvaluator(scorer), REFERENCE, MatchConfig(budget=10, **SMALL))
    assert (shorter.recipe, shorter.similarity) == search.best_within(10)


def test_only_the_search_sentences_are_rendered_during_a_search(target, scorer):
    spoken = []

    class Spy(LocalEvaluator):
        def embeddings(self, recipes, sentences):
            spoken.extend(sentences)
            return super().embeddings(recipes, sentences)

    match_voice(target, Spy(scorer), REFERENCE, MatchConfig(budget=10, **SMALL))
    assert set(spoken) == set(MATCH_SENTENCES["en"][0])


def test_interrupting_a_search_keeps_the_best_found_so_far(target, scorer):
    def interrupt(state):
        if state.evaluations >= 6:
            raise KeyboardInterrupt

    result = match_voice(target, LocalEvaluator(scorer), REFERENCE, MatchConfig(budget=14, **SMALL), interrupt)
    assert result.stopped == "interrupted" and 6 <= result.evaluations < 14
    assert result.similarity == max(score for _, score in result.evaluated)


def test_a_time_limit_stops_the_search(target, scorer):
    result = match_voice(target, LocalEvaluator(scorer), REFERENCE, MatchConfig(budget=1000, minutes=0.05, **SMALL))
    assert result.stopped == "time" and result.evaluations < 1000


def test_a_budget_too_small_for_the_stock_voices_is_refused(target, scorer):
    with pytest.raises(MatchError, match="cannot score the 12 reference voices"):
        match_voice(target, LocalEvaluator(scorer), REFERENCE * 3, MatchConfig(budget=10))


def test_a_candidate_far_outside_the_stock_voices_is_refused_unrendered(scorer):
    assert scorer.admits(Recipe.single("am_adam"))
    assert not scorer.admits(Recipe.single("am_adam").with_edit(PCAStep("decoder", 0, 10.0)))


# the report


def test_the_report_judges_the_result_on_held_out_sentences_beside_the_best_stock_voice(search, scorer, target):
    report = report_match(search, LocalEvaluator(scorer), target)
    assert len(report.found_held_out.similarities) == len(MATCH_SENTENCES["en"][1])
    assert report.found_search.similarity == pytest.approx(search.similarity, abs=1e-6)
    assert report.stock_search.similarity == pytest.approx(search.best_stock[1], abs=1e-6)
    assert report.found_held_out.wer is not None and report.found_held_out.wer <= 0.2   # it still speaks
    data = json.loads(json.dumps(report.to_dict()))
    assert Recipe.from_dict(data["recipe"]) == search.recipe and Recipe.from_token(data["share"]) == search.recipe
    assert data["best_stock_voice"]["name"] == search.best_stock[0]
    assert data["held_out_sentences"] == list(MATCH_SENTENCES["en"][1]) and data["evaluations"] == 14
    assert data["curve"][-1][1] == pytest.approx(search.similarity, abs=1e-4)
    assert any("held-out" in line for line in report.lines())


def test_renders_are_remembered_across_searches_until_forgotten(scorer, monkeypatch):
    from explorer.match import forget_renders

    rendered = []
    real = scorer.render
    monkeypatch.setattr(scorer, "render", lambda *args: rendered.append(args) or real(*args))
    pack, sentences = scorer.pack(Recipe.single("am_adam")), MATCH_SENTENCES["en"][0][:1]
    first = scorer.embeddings(pack, sentences)
    count = len(rendered)
    assert scorer.embeddings(pack, sentences)[0] is first[0] and len(rendered) == count
    forget_renders()
    np.testing.assert_allclose(scorer.embeddings(pack, sentences)[0], first[0], atol=1e-6)  # seeded: the same
    assert len(rendered) == count + 1
