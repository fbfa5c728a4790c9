"""The Voice Lab and A/B logic: widgets and recipes convert exactly both ways, a shared link never crashes the Lab,
renders are cached, exports load back, sweeps render each recipe once, and blind trials are fair and counted."""

from __future__ import annotations

import base64
import io
import json
import zlib
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import lab
from explorer.audio import AudioCache, audio_cache_key, rms_dbfs, wav_bytes
from explorer.engines import Engine, load_vocab
from explorer.errors import ExplorerError, NoSoundError, RecipeError, VoiceError
from explorer.meters import Acoustics, Intelligibility, Meters, SweepPoint
from explorer.recipe import (
    CentroidAxis,
    CentroidMove,
    Component,
    DimEdit,
    Interpolation,
    Mix,
    PCAStep,
    Recipe,
    RecipeContext,
    apply_recipe,
)
from explorer.synth import FIRST_CHUNK_PHONEMES, prepare
from explorer.voices import load_bytes


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


@pytest.fixture(scope="module")
def context(bundled_voices):
    """PCA axes and centroids of the 54 bundled voices."""
    return RecipeContext.from_voices(bundled_voices)


def full_state() -> lab.LabState:
    """A state using every part the Lab can show."""
    return lab.LabState(
        Mix((Component("af_heart", 2.0, 1.0), Component("bm_george", 1.0, 3.0))),
        "prosody",
        ((0, 1.5), (3, -2.0)),
        CentroidAxis("gender", "male", "female", 0.5),
        (DimEdit.single("zero", 7), DimEdit.half("scale", "prosody", 1.1)),
    )


# ----------------------------------------------------------------------------------------------- state and recipes


def test_the_lab_starts_from_an_equal_mix_of_the_loaded_voices_it_was_given(bundled_voices):
    state = lab.LabState.default(["af_heart", "nobody", "bf_emma", "af_heart"], bundled_voices)
    assert state.to_recipe() == Recipe(Mix((Component("af_heart"), Component("bf_emma"))))
    assert lab.LabState.default(["nobody"], bundled_voices).base.voice_names == (bundled_voices.names[0],)


def test_the_recipe_applies_sliders_then_the_centroid_then_further_edits_in_order():
    recipe = full_state().to_recipe()
    assert recipe.edits == (
        PCAStep("prosody", 0, 1.5),
        PCAStep("prosody", 3, -2.0),
        CentroidAxis("gender", "male", "female", 0.5),
        DimEdit(op="zero", start=7, stop=8),
        DimEdit(op="scale", start=128, stop=256, value=1.1),
    )


def test_widget_values_read_back_as_the_same_state_even_over_stale_values():
    state = full_state()
    stale = {
        lab.pca_key("prosody", 1): 4.0,  # a slider left from before: the state says PC2 is 0
        lab.pca_key("decoder", 0): 3.0,  # another layer's slider: not read
        lab.CENTROID_KEY: "female",  # the toward-centroid key, unused on an axis
        lab.INTERP_A: "am_adam",  # interpolation widgets, unused while mixing
    }
    assert lab.LabState.from_widgets({**stale, **state.widget_values()}) == state
    assert state.widget_values()[lab.pca_key("prosody", 1)] == 0.0


def test_an_interpolation_and_a_toward_centroid_move_survive_the_widgets():
    state = lab.LabState(Interpolation("af_heart", "am_adam", 0.3, "slerp"),
                         centroid=CentroidMove("language", "British English", -0.4))
    assert lab.LabState.from_widgets(state.widget_values()) == state


def test_zero_sliders_and_a_zero_centroid_amount_add_no_edit():
    values = {lab.MIX_VOICES: ["af_heart"], lab.PCA_COMPONENTS: [0, 1], lab.pca_key("decoder", 0): 0.0,
              lab.pca_key("decoder", 1): 0.0, lab.CENTROID_MODE: "toward", lab.CENTROID_KIND: "gender",
              lab.CENTROID_KEY: "female", lab.CENTROID_AMOUNT: 0.0}
    assert lab.LabState.from_widgets(values).to_recipe() == Recipe.single("af_heart")


@pytest.mark.parametrize(
    "values, message",
    [
        ({lab.MIX_VOICES: []}, "Pick at least one voice"),
        ({lab.MIX_VOICES: ["af_heart"], lab.decoder_key("af_heart"): 0.0}, "decoder weight"),
        ({lab.MIX_VOICES: [f"af_v{i}" for i in range(9)]}, "at most 8"),
        ({lab.MIX_VOICES: ["af_heart"], lab.CENTROID_MODE: "axis", lab.CENTROID_KIND: "gender",
          lab.AXIS_FROM: "male", lab.AXIS_TO: "male", lab.CENTROID_AMOUNT: 1.0}, "two different ends"),
    ],
)
def test_widget_values_that_make_no_recipe_raise_a_recipe_error(values, message):
    with pytest.raises(RecipeError, match=message):
        lab.LabState.from_widgets(values)


def test_what_the_sliders_cannot_show_stays_as_further_edits_in_its_place():
    edits = (
        PCAStep("decoder", 2, 1.0),
        PCAStep("decoder", 1, 1.0),  # descending: a second slider would reorder the recipe
        PCAStep("prosody", 0, 1.0),  # another layer
        CentroidMove("gender", "female", 1.0),
    )
    recipe = Recipe(Mix((Component("af_heart"),)), edits)
    state = lab.LabState.from_recipe(recipe)
    assert state.pca_amounts == ((2, 1.0),)
    assert state.centroid is None
    assert state.extra_edits == edits[1:]
    beyond = Recipe(Mix((Component("af_heart"),)), (PCAStep("both", 0, 7.5),))
    assert lab.LabState.from_recipe(beyond).extra_edits == beyond.edits


VOICES = st.sampled_from(["af_heart", "am_adam", "bf_emma", "bm_george", "jf_alpha"])


def _dim_edit(op: str, dim: int, value: float) -> DimEdit:
    return DimEdit.single(op, dim, 0.0 if op == "zero" else value)


EDITS = st.one_of(
    st.builds(PCAStep, st.sampled_from(["decoder", "prosody", "both"]), st.integers(0, 5),
              st.floats(-10, 10).map(lambda x: round(x, 2))),
    st.builds(CentroidMove, st.just("gender"), st.sampled_from(["female", "male"]), st.floats(-3, 3)),
    st.builds(CentroidAxis, st.just("language"), st.just("American English"), st.just("British English"),
              st.floats(-3, 3)),
    st.builds(_dim_edit, st.sampled_from(["set", "offset", "scale", "zero"]), st.integers(0, 255), st.floats(-10, 10)),
)
BASES = st.one_of(
    st.lists(st.tuples(VOICES, st.floats(0.1, 100), st.floats(0.1, 100)), min_size=1, max_size=4,
             unique_by=lambda c: c[0]).map(lambda cs: Mix(tuple(Component(*c) for c in cs))),
    st.builds(Interpolation, VOICES, VOICES, st.floats(-2, 3), st.sampled_from(["linear", "slerp"])),
)


@settings(max_examples=150, deadline=None)
@given(BASES, st.lists(EDITS, max_size=8))
def test_every_recipe_maps_onto_the_lab_and_back_exactly(base, edits):
    recipe = Recipe(base, tuple(edits))
    state = lab.LabState.from_recipe(recipe)
    assert state.to_recipe() == recipe
    assert lab.LabState.from_widgets(state.widget_values()).to_recipe() == recipe


def test_picking_new_voices_keeps_the_edits(bundled_voices):
    state = full_state().with_voices(["bf_emma", "nobody"], bundled_voices)
    assert state.base == Mix((Component("bf_emma"),))
    assert state.to_recipe().edits == full_state().to_recipe().edits
    assert full_state().with_voices(["nobody"], bundled_voices) == full_state()


# ----------------------------------------------------------------------------------------------- share strings


def test_a_shared_recipe_restores_the_same_state(bundled_voices, context):
    recipe = full_state().to_recipe()
    restored = lab.restore(recipe.to_token(), bundled_voices, context, ["af_heart"])
    assert restored.warning is None
    assert restored.recipe == recipe and restored.state == full_state()


def test_no_token_gives_the_default_mix_without_a_warning(bundled_voices, context):
    restored = lab.restore(None, bundled_voices, context, ["bf_emma"])
    assert restored.warning is None and restored.recipe == Recipe.single("bf_emma")


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode())).rstrip(b"=").decode()


HOSTILE_TOKENS = {
    "not base64": "%%%<script>alert(1)</script>",
    "a path": "../../etc/passwd",
    "a json file name": "recipe.json",
    "damaged zlib": base64.urlsafe_b64encode(b"\x78\x9c garbage").decode().rstrip("="),
    "a compression bomb": base64.urlsafe_b64encode(zlib.compress(b" " * 10_000_000)).decode().rstrip("="),
    "an unknown voice": Recipe.single("xx_nobody").to_token(),
    "an unknown centroid": Recipe(Mix((Component("af_heart"),)), (CentroidMove("group", "zz", 1.0),)).to_token(),
    "a PCA component beyond the reference": Recipe(Mix((Component("af_heart"),)),
                                                   (PCAStep("decoder", 100, 1.0),)).to_token(),
    "markdown in a key": _token(json.dumps({"version": 1, "base": {"type": "mix", "components": []},
                                            "[click](http://evil)": 1})),
    "deep nesting": _token('{"version": 1, "base": ' + "[" * 5000 + "]" * 5000 + "}"),
    "NaN": _token('{"version": 1, "base": {"type": "interpolate", "a": "af_heart", "b": "am_adam", "t": NaN}}'),
    "too long": "A" * 20_000,
}


@pytest.mark.parametrize("token", HOSTILE_TOKENS.values(), ids=HOSTILE_TOKENS.keys())
def test_a_hostile_share_string_gives_the_defaults_and_a_warning(token, bundled_voices, context):
    restored = lab.restore(token, bundled_voices, context, ["af_heart"])
    assert restored.recipe == Recipe.single("af_heart")
    assert restored.warning.startswith("The recipe in the link was not loaded")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_restore_never_raises_whatever_the_url_holds(bundled_voices, context, token):
    restored = lab.restore(token, bundled_voices, context, ["af_heart"])
    assert restored.recipe == Recipe.single("af_heart") or restored.warning is None


def test_the_share_link_holds_only_the_recipe():
    url = lab.share_url("https://example.org:8501/lab?recipe=old&x=1#top", "abc-_123")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "example.org:8501", "/lab", "")
    assert parse_qs(parts.query) == {"recipe": ["abc-_123"]}


# ----------------------------------------------------------------------------------------------- dim slicing


@pytest.mark.parametrize(
    "target, kwargs, expected",
    [
        ("one dim", {"dim": 12}, DimEdit("set", 12, 13, 0.5)),
        ("range", {"dims": (10, 20)}, DimEdit("set", 10, 21, 0.5)),
        ("decoder half", {}, DimEdit("set", 0, 128, 0.5)),
        ("prosody half", {}, DimEdit("set", 128, 256, 0.5)),
        ("all dims", {}, DimEdit("set", 0, 256, 0.5)),
    ],
)
def test_the_slicing_form_names_one_dim_an_inclusive_range_or_a_half(target, kwargs, expected):
    assert lab.dim_edit("set", target, value=0.5, **kwargs) == expected


def test_zeroing_ignores_the_value_field():
    assert lab.dim_edit("zero", "one dim", dim=3, value=2.5) == DimEdit("zero", 3, 4)


@pytest.mark.parametrize(
    "op, target, kwargs",
    [("rotate", "one dim", {}), ("set", "a third half", {}), ("set", "one dim", {"dim": 256}),
     ("set", "range", {"dims": (20, 10)}), ("set", "range", {"dims": (0, 2.5)}),
     ("scale", "all dims", {"value": 11.0})],
)
def test_a_slicing_form_out_of_bounds_raises_a_recipe_error(op, target, kwargs):
    with pytest.raises(RecipeError):
        lab.dim_edit(op, target, **kwargs)


# ----------------------------------------------------------------------------------------------- readouts


def test_an_unedited_stock_voice_reads_as_itself_and_in_distribution(bundled_voices, context):
    readout = lab.readout(bundled_voices["bf_emma"].pack, bundled_voices, context)
    assert readout.nearest[0][0] == "bf_emma" and readout.nearest[0][1] == pytest.approx(1.0)
    assert len(readout.nearest) == 5
    assert not readout.ood.out_of_distribution
    np.testing.assert_allclose(readout.vector, bundled_voices["bf_emma"].pack.mean(axis=0), atol=1e-6)


def test_a_far_pca_step_reads_as_out_of_distribution(bundled_voices, context):
    pack = apply_recipe(Recipe(Mix((Component("bf_emma"),)), (PCAStep("both", 0, 9.0),)), bundled_voices, context)
    assert lab.readout(pack, bundled_voices, context).ood.out_of_distribution


# ----------------------------------------------------------------------------------------------- renders, exports


def test_a_render_is_synthesised_once_and_replayed_from_the_cache(bundled_voices):
    engine, cache = ToneEngine(), AudioCache(10**8)
    pack = bundled_voices["af_heart"].pack
    first = lab.synthesize_cached("Hello there.", style=pack, engine=engine, cache=cache)
    again = lab.synthesize_cached("Hello there.", style=pack, engine=engine, cache=cache)
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
    first = lab.synthesize_cached(text, style=pack, engine=engine, cache=cache, on_chunk=streamed.append)
    assert [chunk.index for chunk in streamed] == list(range(len(first.synthesis.chunks)))
    assert streamed[0].chunk.text == "Hello there," and len(streamed[0].chunk.phonemes) <= FIRST_CHUNK_PHONEMES
    np.testing.assert_array_equal(np.concatenate([chunk.padded_audio for chunk in streamed]), first.audio)
    again = lab.synthesize_cached(text, style=pack, engine=engine, cache=cache, on_chunk=streamed.append)
    assert again.cached and len(streamed) == len(first.synthesis.chunks)


@pytest.mark.parametrize("change", [{"speed": 1.5}, {"lang": "b"}, {"style": "am_adam"}, {"text": "Hello."}])
def test_any_change_of_text_language_voice_or_speed_renders_again(bundled_voices, change):
    engine, cache = ToneEngine(), AudioCache(10**8)
    request = {"text": "Hello there.", "style": "af_heart", "lang": "a", "speed": 1.0}
    for values in (request, {**request, **change}):
        lab.synthesize_cached(values["text"], style=bundled_voices[values["style"]].pack, engine=engine, cache=cache,
                              lang=values["lang"], speed=values["speed"])
    assert engine.renders == 2


def test_an_export_loads_back_as_the_same_pack_with_its_recipe(bundled_voices, context):
    recipe = full_state().to_recipe()
    pack = apply_recipe(recipe, bundled_voices, context)
    editable = pack.copy()
    builders = lab.export_files(editable, recipe, "my_voice")
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
        lab.export_files(np.zeros((510, 256), np.float32), Recipe.single("af_heart"), name)


SOUND = Acoustics(2.0, 180.0, 150.0, 220.0, 0.6, 2100.0, -20.0, -23.0)


def test_meter_rows_name_every_measure_and_say_why_one_is_missing():
    rows = lab.meter_rows(Meters(SOUND, unavailable={"intelligibility": "faster-whisper is not installed."}))
    assert rows["Word error rate"] == "unavailable: faster-whisper is not installed."
    assert rows["Sounds like"] == "not measured"
    assert rows["Median F0"] == "180 Hz" and rows["F0 range (5–95 %)"] == "150–220 Hz"
    heard = lab.meter_rows(Meters(SOUND, Intelligibility("hello there", 0.25), (("A", 0.91),)))
    assert (heard["Word error rate"], heard["Transcript"], heard["Sounds like"]) == ("25%", "hello there", "A 0.91")


def test_meters_of_two_sides_sit_side_by_side():
    table = lab.meters_table({"A": Meters(SOUND), "B": Meters(Acoustics(1.0, None, None, None, 0.0, None, None,
                                                                       None))})
    assert list(table.columns) == ["A", "B"]
    assert table.loc["Median F0", "B"] == "–" and table.loc["Duration", "B"] == "1.00 s"


# ----------------------------------------------------------------------------------------------- sweeps


def test_sweep_amounts_are_even_and_bounded():
    assert lab.sweep_amounts(-1, 1, 5) == (-1.0, -0.5, 0.0, 0.5, 1.0)
    for low, high, count in [(0, 1, 1), (0, 1, 13), (1, 1, 3), (2, 1, 3), (0, float("nan"), 3), (0, 1, 2.0)]:
        with pytest.raises(RecipeError):
            lab.sweep_amounts(low, high, count)


def test_each_sweep_adds_its_edit_to_the_current_recipe():
    recipe = full_state().to_recipe()
    amounts = (-1.0, 0.0, 1.0)
    plans = {
        "pca": (lab.pca_sweep(recipe, "decoder", 4, amounts), PCAStep("decoder", 4, 1.0)),
        "toward": (lab.centroid_sweep(recipe, "gender", "male", amounts), CentroidMove("gender", "male", 1.0)),
        "axis": (lab.centroid_axis_sweep(recipe, "gender", "male", "female", amounts),
                 CentroidAxis("gender", "male", "female", 1.0)),
    }
    for plan, last in plans.values():
        assert [step.amount for step in plan.steps] == list(amounts)
        assert plan.steps[-1].recipe == recipe.with_edit(last)
        assert (plan.start, plan.end) == (plan.steps[0].recipe, plan.steps[-1].recipe)


def test_an_interpolation_sweep_compares_with_the_two_voices_themselves():
    recipe = full_state().to_recipe()
    plan = lab.interpolation_sweep(recipe, "af_heart", "am_adam", (0.25, 0.75), "slerp")
    assert plan.steps[0].recipe == Recipe(Interpolation("af_heart", "am_adam", 0.25, "slerp"), recipe.edits)
    assert plan.start == Recipe(Interpolation("af_heart", "am_adam", 0.0, "slerp"), recipe.edits)
    assert plan.end.base.t == 1.0


def test_a_sweep_out_of_a_recipes_bounds_raises_before_rendering():
    with pytest.raises(RecipeError):
        lab.pca_sweep(Recipe.single("af_heart"), "decoder", 0, (0.0, 11.0))


def test_a_sweep_renders_each_recipe_once_and_measures_against_start_and_end(bundled_voices, context):
    plan = lab.interpolation_sweep(Recipe.single("af_heart"), "af_heart", "am_adam", (0.0, 0.5, 1.0, 1.5))
    rendered, progress, measured = [], [], {}

    def render(pack):
        rendered.append(pack)
        return np.full(100, float(len(rendered)), np.float32)

    def measure(renders, text, start, end):
        measured.update(renders=renders, text=text, start=start, end=end)
        return [SweepPoint(amount, 0.0, 1.0, 0.5, None, 1.0) for amount, _ in renders]

    result = lab.run_sweep(plan, voices=bundled_voices, context=context, render=render, text="Hi.", measure=measure,
                           progress=lambda done, what: progress.append(done))
    assert len(rendered) == 4  # t=0 and t=1 are steps and also the start and end voices
    assert [amount for amount, _ in measured["renders"]] == [0.0, 0.5, 1.0, 1.5]
    assert measured["start"][0] == 1.0 and measured["end"][0] == 3.0 and measured["text"] == "Hi."
    assert progress[-1] == 1.0
    assert [clip[0] for clip in result.audio] == [1.0, 2.0, 3.0, 4.0]
    assert list(result.table().amount) == [0.0, 0.5, 1.0, 1.5]


def test_a_sweep_step_the_model_renders_as_no_sound_is_where_speech_stopped_not_a_failure(bundled_voices, context):
    """A sweep far past the stock voices reaches styles the model renders as silence or NaN: the sweep still ends,
    that step heard as no words (WER 1) with nothing else measured, and the end voice's similarity is not measured
    against another step's render."""
    plan = lab.pca_sweep(Recipe.single("af_heart"), "decoder", 0, (0.0, 4.0, 8.0))
    measured = {}

    heart = bundled_voices["af_heart"].pack
    farthest_sounding = np.abs(apply_recipe(plan.steps[1].recipe, bundled_voices, context) - heart).max()

    def render(pack):
        if np.abs(pack - heart).max() > farthest_sounding:
            raise NoSoundError("This voice renders silence: its style is far outside the stock voices.")
        return np.ones(100, np.float32)

    def measure(renders, text, start, end):
        measured.update(amounts=[amount for amount, _ in renders], start=start, end=end)
        return [SweepPoint(amount, 0.0, 1.0, 0.5, 200.0, 1.0, "hi") for amount, _ in renders]

    result = lab.run_sweep(plan, voices=bundled_voices, context=context, render=render, measure=measure)
    silent = [point.amount for point in result.points if point.transcript.startswith("(no sound")]
    assert silent == [8.0] and measured["amounts"] == [0.0, 4.0]
    for point, clip in zip(result.points, result.audio):
        if point.amount in silent:
            assert (point.wer, point.similarity_to_start, point.f0_median_hz, clip.size) == (1.0, None, None, 0)
    assert not measured["end"].any()  # the end (8 std) has no sound: compared with silence, never a step's render


def test_the_sweep_chart_plots_what_was_measured_and_skips_what_was_not():
    plan = lab.pca_sweep(Recipe.single("af_heart"), "decoder", 0, (0.0, 1.0))
    points = (SweepPoint(0.0, 0.0, 1.0, 0.6, 180.0, 1.0, "hi"), SweepPoint(1.0, None, 0.7, 1.0, 170.0, 1.0))
    result = lab.SweepResult(plan, (np.zeros(10), np.zeros(10)), points)
    chart = lab.sweep_chart(result)
    assert sorted(chart.data.measure.unique()) == ["similarity to end", "similarity to start", "word error rate"]
    assert len(chart.data) == 5 and result.measured
    unmeasured = lab.SweepResult(plan, (np.zeros(10),) * 2,
                                 tuple(SweepPoint(a, None, None, None, 180.0, 1.0) for a in (0.0, 1.0)))
    assert not unmeasured.measured and lab.sweep_chart(unmeasured).data.empty


# ----------------------------------------------------------------------------------------------- A/B


def test_each_ab_source_gives_its_recipe():
    lab_recipe = full_state().to_recipe()
    token = lab_recipe.to_token()
    assert lab.side_recipe("stock voice", voice="bf_emma") == Recipe.single("bf_emma")
    assert lab.side_recipe("Lab recipe", lab_token=token) == lab_recipe
    assert lab.side_recipe("recipe string", token=f"  {token} ") == lab_recipe
    assert lab.side_recipe("recipe string", token=f"http://localhost:8501/lab?recipe={token}&x=1") == lab_recipe


@pytest.mark.parametrize(
    "source, kwargs, message",
    [("Lab recipe", {}, "no recipe yet"), ("recipe string", {"token": " "}, "Paste a recipe"),
     ("recipe string", {"token": "!!"}, "URL-safe"), ("stock voice", {"voice": "../x"}, "voice"),
     ("somewhere", {}, "not one of")],
)
def test_an_ab_side_that_cannot_play_says_why(source, kwargs, message):
    with pytest.raises(RecipeError, match=message):
        lab.side_recipe(source, **kwargs)


def test_the_hidden_x_is_seeded_and_not_always_the_same_side():
    trials = [lab.draw_trial(1234, index) for index in range(200)]
    assert trials == [lab.draw_trial(1234, index) for index in range(200)]
    assert [t.index for t in trials] == list(range(200))
    share = sum(t.x_is == "A" for t in trials) / 200
    assert 0.35 < share < 0.65
    assert [t.x_is for t in trials] != [lab.draw_trial(99, index).x_is for index in range(200)]


def test_the_tally_counts_trials_and_right_answers():
    tally = lab.BlindTally()
    assert tally.summary() == "No blind trials yet." and tally.p_value == 1.0
    for index, choice in enumerate("AABB"):
        tally = tally.record(lab.BlindTrial(index, "A"), choice)
    assert (tally.trials, tally.correct) == (4, 2)
    assert lab.BlindTally(8, 8).p_value == pytest.approx(1 / 256)
    assert lab.BlindTally(3, 0).p_value == 1.0
    assert "7 of 8 correct" in lab.BlindTally(8, 7).summary()
    with pytest.raises(ExplorerError, match=r"^A blind choice is A or B, not 'X'\.$"):
        tally.record(lab.BlindTrial(5, "A"), "X")
    with pytest.raises(ExplorerError, match=r"^A blind choice is A or B, not 'aaaaaaaaaa'\.$"):  # cut to 10
        tally.record(lab.BlindTrial(5, "A"), "a" * 500)


@pytest.mark.parametrize("stored", [None, {}, {"trials": "x", "correct": 0}, {"trials": 1, "correct": 2},
                                    {"trials": -1, "correct": -2}, "junk"])
def test_a_damaged_tally_in_session_state_starts_afresh(stored):
    assert lab.BlindTally.from_dict(stored) == lab.BlindTally()
    assert lab.BlindTally.from_dict(lab.BlindTally(5, 3).to_dict()) == lab.BlindTally(5, 3)


def test_x_sounds_like_its_side_but_is_not_the_same_file():
    audio = (0.5 * np.sin(np.linspace(0, 2000, 24000))).astype(np.float32)
    x = lab.blind_x_audio(audio)
    assert wav_bytes(x) != wav_bytes(audio)
    assert abs(rms_dbfs(x) - rms_dbfs(audio)) < 0.1
