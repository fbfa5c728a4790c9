"""explorer.app.listen: readouts, renders cached and replayed, exports that load back, meters side by side, the share
link, and A/B blind trials that are fair and counted."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import torch

from explorer.app import listen
from explorer.audio import SAMPLE_RATE, AudioCache, audio_cache_key, rms_dbfs, wav_bytes
from explorer.engines import Engine, load_vocab
from explorer.errors import ExplorerError, RecipeError, VoiceError
from explorer.meters import Acoustics, Intelligibility, Meters
from explorer.recipe import (
    Component,
    Mix,
    PCAStep,
    Recipe,
    apply_recipe,
)
from explorer.synth import FIRST_CHUNK_PHONEMES, prepare
from explorer.voices import load_bytes
from tests.conftest import full_lab_state


class ToneEngine(Engine):
    """A fast stand-in engine: a tone whose pitch follows style dim 0, 50 ms per token; counts its renders."""

    name = "tone"

    def __init__(self) -> None:
        super().__init__(load_vocab(), "tone test weights")
        self.renders = 0

    def _run(self, tokens, style, speed):
        self.renders += 1
        t = np.arange(int(tokens.shape[1] * 1200 / speed)) / 24000
        return (0.3 * np.sin(2 * np.pi * (150 + 50 * style[0]) * t)).astype(np.float32), None


def test_the_share_link_holds_the_recipe_and_what_it_says():
    request = listen.SpeechRequest("Hello & goodbye? 100%", "b", 1.25, "auto")
    url = listen.share_url("https://example.org:8501/lab?recipe=old&x=1#top", listen.share_params("abc-_123", request))
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "example.org:8501", "/lab", "")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query == {"recipe": "abc-_123", "text": "Hello & goodbye? 100%", "lang": "b", "speed": "1.25"}
    assert listen.shared_speech(query) == ({"text": "Hello & goodbye? 100%", "lang": "b", "speed": 1.25}, {})


def test_a_text_too_long_for_a_link_stays_out_of_it():
    request = listen.SpeechRequest("a" * (listen.SHARED_TEXT_CHARS + 1), "a", 1.0, "auto")
    assert listen.share_params("t", request) == {"recipe": "t", "lang": "a", "speed": "1"}


@pytest.mark.parametrize(("query", "problem"), [
    ({"text": "  "}, "The link's text is empty"),
    ({"text": "x" * 1001}, "The link's text has 1,001 characters; a link carries at most 1,000"),
    ({"lang": "../etc"}, "The link's language '../etc' is not one of a, b, e, f, h, i, j, p, z"),
    ({"speed": "nan"}, "The link's speed 'nan' is not one of 0.5 to 2 in steps of 0.05"),
    ({"speed": "9"}, "The link's speed '9' is not one of 0.5 to 2"),
    ({"speed": "1.234"}, "The link's speed '1.234' is not one of 0.5 to 2"),
    ({"speed": "fast"}, "The link's speed 'fast' is not one of 0.5 to 2"),
])
def test_a_share_link_that_says_something_unusable_is_told_and_changes_nothing(query, problem):
    found, problems = listen.shared_speech({"recipe": "t", **query})
    assert found == {} and len(problems) == 1 and next(iter(problems.values())).startswith(problem)


# ----------------------------------------------------------------------------------------------- readouts


def test_an_unedited_stock_voice_reads_as_itself_and_in_distribution(bundled_voices, stock_context):
    readout = listen.readout(bundled_voices["bf_emma"].pack, bundled_voices, stock_context)
    assert readout.nearest[0][0] == "bf_emma" and readout.nearest[0][1] == pytest.approx(0.0, abs=1e-6)
    assert len(readout.nearest) == 5
    assert not readout.ood.out_of_distribution
    np.testing.assert_allclose(readout.vector, bundled_voices["bf_emma"].pack.mean(axis=0), atol=1e-6)


def test_the_nearest_voices_and_the_out_of_distribution_report_measure_nearness_alike(bundled_voices, stock_context):
    """Walkthrough: the report named jf_nezumi as nearest while the table beside it began with jf_tebukuro."""
    recipe = Recipe(Mix((Component("jf_nezumi", 0.5), Component("jf_tebukuro", 0.3), Component("af_heart", 0.2))))
    readout = listen.readout(apply_recipe(recipe, bundled_voices, stock_context), bundled_voices, stock_context)
    assert readout.nearest[0] == (readout.ood.nearest_voice, pytest.approx(readout.ood.distance))
    assert [distance for _, distance in readout.nearest] == sorted(distance for _, distance in readout.nearest)


def test_a_far_pca_step_reads_as_out_of_distribution(bundled_voices, stock_context):
    pack = apply_recipe(Recipe(Mix((Component("bf_emma"),)), (PCAStep("both", 0, 9.0),)), bundled_voices, stock_context)
    assert listen.readout(pack, bundled_voices, stock_context).ood.out_of_distribution


# ----------------------------------------------------------------------------------------------- renders, exports


def test_a_render_is_synthesised_once_and_replayed_from_the_cache(bundled_voices):
    engine, cache = ToneEngine(), AudioCache(10**8)
    pack = bundled_voices["af_heart"].pack
    first = listen.synthesize_cached("Hello there.", style=pack, engine=engine, cache=cache)
    again = listen.synthesize_cached("Hello there.", style=pack, engine=engine, cache=cache)
    assert (first.cached, again.cached, engine.renders) == (False, True, 1)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert not again.audio.flags.writeable
    chunks = [chunk.phonemes for chunk in
              prepare("Hello there.", engine=engine, first_chunk_phonemes=FIRST_CHUNK_PHONEMES).chunks]
    assert first.key == audio_cache_key("tone", "tone test weights", chunks, pack, 1.0)


def test_a_render_streams_its_short_first_chunk_and_a_replay_streams_nothing(bundled_voices):
    """The Lab plays the first clause while the rest renders; a replay has the whole audio at once."""
    engine, cache, streamed = ToneEngine(), AudioCache(10**8), []
    text = "Hello there, and welcome to the voice explorer. Move a slider and listen to what changes."
    pack = bundled_voices["af_heart"].pack
    first = listen.synthesize_cached(text, style=pack, engine=engine, cache=cache, on_chunk=streamed.append)
    assert [chunk.index for chunk in streamed] == list(range(len(first.synthesis.chunks)))
    assert streamed[0].chunk.text == "Hello there," and len(streamed[0].chunk.phonemes) <= FIRST_CHUNK_PHONEMES
    np.testing.assert_array_equal(np.concatenate([chunk.padded_audio for chunk in streamed]), first.audio)
    again = listen.synthesize_cached(text, style=pack, engine=engine, cache=cache, on_chunk=streamed.append)
    assert again.cached and len(streamed) == len(first.synthesis.chunks)


@pytest.mark.parametrize("change", [{"speed": 1.5}, {"lang": "b"}, {"style": "am_adam"}, {"text": "Hello."}])
def test_any_change_of_text_language_voice_or_speed_renders_again(bundled_voices, change):
    engine, cache = ToneEngine(), AudioCache(10**8)
    request = {"text": "Hello there.", "style": "af_heart", "lang": "a", "speed": 1.0}
    for values in (request, {**request, **change}):
        listen.synthesize_cached(values["text"], style=bundled_voices[values["style"]].pack, engine=engine, cache=cache,
                              lang=values["lang"], speed=values["speed"])
    assert engine.renders == 2


def test_an_export_loads_back_as_the_same_pack_with_its_recipe(bundled_voices, stock_context):
    recipe = full_lab_state().to_recipe()
    pack = apply_recipe(recipe, bundled_voices, stock_context)
    editable = pack.copy()
    builders = listen.export_files(editable, recipe, "my_voice")
    editable[:] = 0  # the downloads keep the pack as it was when the buttons were made
    files = {filename: build() for filename, build in builders.items()}
    assert sorted(files) == ["my_voice.npz", "my_voice.pt", "my_voice.recipe.json"]
    assert tuple(torch.load(io.BytesIO(files["my_voice.pt"]), weights_only=True).shape) == (510, 1, 256)
    assert np.load(io.BytesIO(files["my_voice.npz"]))["my_voice"].shape == (510, 1, 256)
    for suffix in (".pt", ".npz"):
        (voice,) = load_bytes(files[f"my_voice{suffix}"], f"my_voice{suffix}")
        np.testing.assert_array_equal(voice.pack, pack)
    assert Recipe.from_json(files["my_voice.recipe.json"]) == recipe


@pytest.mark.parametrize("name", ["", "../evil", "a/b", "x" * 65, "<b>"])
def test_an_export_name_that_is_no_voice_name_is_refused(name):
    with pytest.raises(VoiceError):
        listen.export_files(np.zeros((510, 256), np.float32), Recipe.single("af_heart"), name)


SOUND = Acoustics(2.0, 180.0, 150.0, 220.0, 0.6, 2100.0, -20.0, -23.0)


def test_meter_rows_name_every_measure_and_say_why_one_is_missing():
    rows = listen.meter_rows(Meters(SOUND, unavailable={"intelligibility": "faster-whisper is not installed."}))
    assert rows["Word error rate"] == "unavailable: faster-whisper is not installed."
    assert rows["Sounds like"] == "not measured"
    assert rows["Median F0"] == "180 Hz" and rows["F0 range (5–95 %)"] == "150–220 Hz"
    heard = listen.meter_rows(Meters(SOUND, Intelligibility("hello there", 0.25), (("A", 0.91),)))
    assert (heard["Word error rate"], heard["Transcript"], heard["Sounds like"]) == ("25%", "hello there", "A 0.91")


def test_meters_of_two_sides_sit_side_by_side():
    table = listen.meters_table({"A": Meters(SOUND), "B": Meters(Acoustics(1.0, None, None, None, 0.0, None, None,
                                                                       None))})
    assert list(table.columns) == ["A", "B"]
    assert table.loc["Median F0", "B"] == "–" and table.loc["Duration", "B"] == "1.00 s"


# ----------------------------------------------------------------------------------------------- the Lab's renders


def heard(key: str, description: str = "voice af_heart") -> listen.HeardRender:
    return listen.HeardRender(key, "token", "Hello.", "a", 1.0, "auto", description, 1.5)


def test_the_render_history_keeps_the_newest_last_moves_a_render_heard_again_and_is_bounded():
    history = []
    for key in ["k0", "k1", "k2", "k1"]:
        history = listen.remember(history, heard(key))
    assert [entry["key"] for entry in history] == ["k0", "k2", "k1"]
    for index in range(20):
        history = listen.remember(history, heard(f"n{index}"))
    assert len(history) == listen.HISTORY_LENGTH and history[-1]["key"] == "n19"
    assert listen.heard_renders(history)[-1] == heard("n19")


@pytest.mark.parametrize("damaged", [None, "history", [1, 2], [{"key": "k"}], [{**vars(heard("k")), "speed": "x"}],
                                     [{**vars(heard("k")), "seconds": float("nan")}], [{**vars(heard("k")), "x": 1}]])
def test_a_damaged_render_history_reads_as_empty(damaged):
    assert listen.heard_renders(damaged) == []
    assert listen.remember(damaged, heard("new")) == [vars(heard("new"))]


def test_back_to_back_plays_the_first_then_a_pause_then_the_second_at_its_loudness():
    rate = 24_000
    t = np.arange(rate) / rate
    quiet, loud = (0.05 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (0.5 * np.sin(2 * np.pi * 330 * t[:12_000]))
    joined = listen.back_to_back(quiet, loud, gap_seconds=0.5)
    assert len(joined) == rate + 12_000 + 12_000
    assert not joined[rate:rate + 12_000].any()
    assert rms_dbfs(joined[rate + 12_000:]) == pytest.approx(rms_dbfs(quiet), abs=0.1)


# ----------------------------------------------------------------------------------------------- A/B


def test_each_ab_source_gives_its_recipe():
    lab_recipe = full_lab_state().to_recipe()
    token = lab_recipe.to_token()
    assert listen.side_recipe("stock voice", voice="bf_emma") == Recipe.single("bf_emma")
    assert listen.side_recipe("Lab recipe", lab_token=token) == lab_recipe
    assert listen.side_recipe("recipe string", token=f"  {token} ") == lab_recipe
    assert listen.side_recipe("recipe string", token=f"http://localhost:8501/lab?recipe={token}&x=1") == lab_recipe


@pytest.mark.parametrize(
    "source, kwargs, message",
    [("Lab recipe", {}, "no recipe yet"), ("recipe string", {"token": " "}, "Paste a recipe"),
     ("recipe string", {"token": "!!"}, "URL-safe"), ("stock voice", {"voice": "../x"}, "voice"),
     ("somewhere", {}, "not one of")],
)
def test_an_ab_side_that_cannot_play_says_why(source, kwargs, message):
    with pytest.raises(RecipeError, match=message):
        listen.side_recipe(source, **kwargs)


def test_a_recording_side_plays_the_recording_as_mono_at_the_models_rate_cut_to_a_minute():
    rate = 44_100
    t = np.arange(int(70 * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    recording = listen.Recording.from_samples(np.stack([tone, tone], axis=1), rate, "long.wav")
    assert recording.audio.dtype == np.float32 and recording.audio.shape == (60 * SAMPLE_RATE,)
    assert recording.seconds == pytest.approx(70.0) and "the first 60 s play" in recording.describe()
    assert np.abs(recording.audio).max() == pytest.approx(0.3, abs=0.01)
    assert recording.key == listen.Recording.from_samples(tone[:, None], rate, "other.wav").key  # keyed by the audio
    assert recording.label.startswith("recording long.wav (sha256 ") and recording.key[10:22] in recording.label


def test_a_recording_upload_reads_as_its_samples_would():
    t = np.arange(32_000) / 16_000
    tone = (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    from_file = listen.Recording.from_bytes(wav_bytes(tone, 16_000, "FLOAT"), "me.wav")
    assert from_file.audio.shape == (2 * SAMPLE_RATE,) and "2.0 s." in from_file.describe()
    assert np.allclose(from_file.audio, listen.Recording.from_samples(tone, 16_000, "me.wav").audio, atol=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [(lambda: listen.Recording.from_bytes(b"RIFF not really", "x.wav"), "not an audio file"),
     (lambda: listen.Recording.from_bytes(b"", "x.wav"), "empty"),
     (lambda: listen.Recording.from_samples(np.zeros(48_000), 24_000, "quiet.wav"), "silent"),
     (lambda: listen.Recording.from_samples(np.ones((2, 3, 4)), 24_000, "cube.wav"), "one channel"),
     (lambda: listen.Recording.from_samples(np.ones(100), 0, "x.wav"), "sample rate")],
)
def test_a_recording_that_cannot_play_says_why(make, message):
    with pytest.raises(ExplorerError, match=message):
        make()


def test_an_ab_side_is_called_by_its_recipe_or_its_recording():
    recording = listen.Recording.from_samples(np.sin(np.arange(24_000) / 5.0), SAMPLE_RATE, "me.wav")
    assert listen.ABSide(Recipe.single("bf_emma")).token == Recipe.single("bf_emma").to_token()
    assert listen.ABSide(recording=recording).token == recording.label


def test_the_hidden_x_is_seeded_and_not_always_the_same_side():
    trials = [listen.draw_trial(1234, index) for index in range(200)]
    assert trials == [listen.draw_trial(1234, index) for index in range(200)]
    assert [t.index for t in trials] == list(range(200))
    share = sum(t.x_is == "A" for t in trials) / 200
    assert 0.35 < share < 0.65
    assert [t.x_is for t in trials] != [listen.draw_trial(99, index).x_is for index in range(200)]


def tally(right: int, wrong: int) -> listen.BlindTally:
    return listen.BlindTally(("AA",) * right + ("BA",) * wrong, ("",) * (right + wrong))


def test_the_tally_keeps_every_answer_and_says_what_they_show():
    answered = listen.BlindTally()
    assert answered.summary() == "No blind trials yet." and answered.p_value == 1.0
    for index, choice in enumerate("AABB"):
        answered = answered.record(listen.BlindTrial(index, "A"), choice)
    assert (answered.trials, answered.correct, answered.answers) == (4, 2, ("AA", "AA", "AB", "AB"))
    assert answered.table().to_dict("records")[2] == {"trial": 3, "X was": "A", "you said": "B", "right": False,
                                                      "answered at": answered.times[2]}
    assert tally(8, 0).p_value == pytest.approx(1 / 256) and tally(0, 3).p_value == 1.0
    assert tally(14, 2).summary() == (
        "14 of 16 correct: you can tell them apart (guessing does this well once in 478 runs).")
    assert tally(5, 3).summary() == (
        "5 of 8 correct: not enough to say you can tell them apart (guessing does this well 36 times in 100 runs).")
    with pytest.raises(ExplorerError, match=r"^A blind choice is A or B, not 'X'\.$"):
        answered.record(listen.BlindTrial(5, "A"), "X")
    with pytest.raises(ExplorerError, match=r"^A blind choice is A or B, not 'aaaaaaaaaa'\.$"):  # cut to 10
        answered.record(listen.BlindTrial(5, "A"), "a" * 500)


def test_a_finished_test_exports_every_trial_with_what_was_compared():
    answered = listen.BlindTally()
    for index, choice in enumerate("AB"):
        answered = answered.record(listen.BlindTrial(index, "A"), choice)
    assert all(len(time) == 25 and time.endswith("+00:00") for time in answered.times)   # 2026-12-05T11:26:39+00:00
    files = answered.export({"A": "tokenA", "B": "tokenB", "text": "Hi.", "seed": 7})
    csv = files["blind-test.csv"].decode().splitlines()
    assert csv[0] == "trial,X was,you said,right,answered at" and csv[2].startswith("2,A,B,False,")
    document = json.loads(files["blind-test.json"])
    assert document["stimuli"] == {"A": "tokenA", "B": "tokenB", "text": "Hi.", "seed": 7}
    assert [trial["you said"] for trial in document["trials"]] == ["A", "B"]
    assert document["result"] == {"correct": 1, "trials": 2, "p_value": 0.75, "summary": answered.summary()}
    assert listen.BlindTally.from_dict(answered.to_dict()) == answered
    assert listen.BlindTally.from_dict({"answers": ["AA"], "times": [5]}).times == ("",)   # damaged times: unknown


@pytest.mark.parametrize("stored", [None, {}, {"trials": 3, "correct": 2}, {"answers": "AA"}, {"answers": ["AC"]},
                                    {"answers": [1]}, {"answers": ["AA"] * 1001}, "junk"])
def test_a_damaged_tally_in_session_state_starts_afresh(stored):
    assert listen.BlindTally.from_dict(stored) == listen.BlindTally()
    assert listen.BlindTally.from_dict(tally(3, 2).to_dict()) == tally(3, 2)


@pytest.mark.parametrize("x_is", ["A", "B"])
def test_x_sounds_like_its_side_and_lasts_as_long_as_both_but_is_not_the_same_file(x_is):
    longer = (0.5 * np.sin(np.linspace(0, 2000, 24000))).astype(np.float32)
    shorter = (0.3 * np.sin(np.linspace(0, 3000, 20000))).astype(np.float32)
    a, b, x = listen.blind_stimuli(longer, shorter, listen.BlindTrial(0, x_is))
    assert len(a) == len(b) == len(x) == 24000
    assert np.array_equal(a, longer) and np.array_equal(b[:20000], shorter) and not np.any(b[20000:])
    side = a if x_is == "A" else b
    assert wav_bytes(x) != wav_bytes(side) and wav_bytes(x) not in (wav_bytes(a), wav_bytes(b))
    assert abs(rms_dbfs(x) - rms_dbfs(side)) < 0.1 and np.allclose(x, side, atol=1e-2)
