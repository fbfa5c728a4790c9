"""explorer.app.state: the Lab's widgets and recipes convert exactly both ways, a shared link never crashes the Lab,
and the slicing form names the dims it means."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.app import state as app_state
from explorer.errors import RecipeError
from explorer.recipe import (
    CentroidAxis,
    CentroidMove,
    Component,
    DimEdit,
    Interpolation,
    Mix,
    PCAStep,
    Recipe,
)
from tests.conftest import full_lab_state

# ----------------------------------------------------------------------------------------------- state and recipes


def test_the_lab_starts_from_an_equal_mix_of_the_loaded_voices_it_was_given(bundled_voices):
    state = app_state.LabState.default(["af_heart", "nobody", "bf_emma", "af_heart"], bundled_voices)
    assert state.to_recipe() == Recipe(Mix((Component("af_heart"), Component("bf_emma"))))
    assert app_state.LabState.default(["nobody"], bundled_voices).base.voice_names == (bundled_voices.names[0],)


def test_the_recipe_applies_sliders_then_the_centroid_then_further_edits_in_order():
    recipe = full_lab_state().to_recipe()
    assert recipe.edits == (
        PCAStep("prosody", 0, 1.5),
        PCAStep("prosody", 3, -2.0),
        CentroidAxis("gender", "male", "female", 0.5),
        DimEdit(op="zero", start=7, stop=8),
        DimEdit(op="scale", start=128, stop=256, value=1.1),
    )


def test_widget_values_read_back_as_the_same_state_even_over_stale_values():
    state = full_lab_state()
    stale = {
        app_state.pca_key("prosody", 1): 4.0,  # a slider left from before: the state says PC2 is 0
        app_state.pca_key("decoder", 0): 3.0,  # another layer's slider: not read
        app_state.CENTROID_KEY: "female",  # the toward-centroid key, unused on an axis
        app_state.INTERP_A: "am_adam",  # interpolation widgets, unused while mixing
    }
    assert app_state.LabState.from_widgets({**stale, **state.widget_values()}) == state
    assert state.widget_values()[app_state.pca_key("prosody", 1)] == 0.0


def test_an_interpolation_and_a_toward_centroid_move_survive_the_widgets():
    state = app_state.LabState(Interpolation("af_heart", "am_adam", 0.3, "slerp"),
                         centroid=CentroidMove("language", "British English", -0.4))
    assert app_state.LabState.from_widgets(state.widget_values()) == state


def test_zero_sliders_and_a_zero_centroid_amount_add_no_edit():
    values = {app_state.MIX_VOICES: ["af_heart"], app_state.PCA_COMPONENTS: [0, 1], app_state.pca_key("decoder", 0): 0.0,
              app_state.pca_key("decoder", 1): 0.0, app_state.CENTROID_MODE: "toward", app_state.CENTROID_KIND: "gender",
              app_state.CENTROID_KEY: "female", app_state.CENTROID_AMOUNT: 0.0}
    assert app_state.LabState.from_widgets(values).to_recipe() == Recipe.single("af_heart")


@pytest.mark.parametrize(
    "values, message",
    [
        ({app_state.MIX_VOICES: []}, "Pick at least one voice"),
        ({app_state.MIX_VOICES: ["af_heart"], app_state.decoder_key("af_heart"): 0.0}, "decoder weight"),
        ({app_state.MIX_VOICES: [f"af_v{i}" for i in range(9)]}, "at most 8"),
        ({app_state.MIX_VOICES: ["af_heart"], app_state.CENTROID_MODE: "axis", app_state.CENTROID_KIND: "gender",
          app_state.AXIS_FROM: "male", app_state.AXIS_TO: "male", app_state.CENTROID_AMOUNT: 1.0}, "two different ends"),
    ],
)
def test_widget_values_that_make_no_recipe_raise_a_recipe_error(values, message):
    with pytest.raises(RecipeError, match=message):
        app_state.LabState.from_widgets(values)


def test_what_the_sliders_cannot_show_stays_as_further_edits_in_its_place():
    edits = (
        PCAStep("decoder", 2, 1.0),
        PCAStep("decoder", 1, 1.0),  # descending: a second slider would reorder the recipe
        PCAStep("prosody", 0, 1.0),  # another layer
        CentroidMove("gender", "female", 1.0),
    )
    recipe = Recipe(Mix((Component("af_heart"),)), edits)
    state = app_state.LabState.from_recipe(recipe)
    assert state.pca_amounts == ((2, 1.0),)
    assert state.centroid is None
    assert state.extra_edits == edits[1:]
    beyond = Recipe(Mix((Component("af_heart"),)), (PCAStep("both", 0, 7.5),))
    assert app_state.LabState.from_recipe(beyond).extra_edits == beyond.edits


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
    state = app_state.LabState.from_recipe(recipe)
    assert state.to_recipe() == recipe
    assert app_state.LabState.from_widgets(state.widget_values()).to_recipe() == recipe


def test_picking_new_voices_keeps_the_edits(bundled_voices):
    state = full_lab_state().with_voices(["bf_emma", "nobody"], bundled_voices)
    assert state.base == Mix((Component("bf_emma"),))
    assert state.to_recipe().edits == full_lab_state().to_recipe().edits
    assert full_lab_state().with_voices(["nobody"], bundled_voices) == full_lab_state()


# ----------------------------------------------------------------------------------------------- share strings


def test_a_shared_recipe_restores_the_same_state(bundled_voices, stock_context):
    recipe = full_lab_state().to_recipe()
    restored = app_state.restore(recipe.to_token(), bundled_voices, stock_context, ["af_heart"])
    assert restored.warning is None
    assert restored.recipe == recipe and restored.state == full_lab_state()


def test_no_token_gives_the_default_mix_without_a_warning(bundled_voices, stock_context):
    restored = app_state.restore(None, bundled_voices, stock_context, ["bf_emma"])
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
def test_a_hostile_share_string_gives_the_defaults_and_a_warning(token, bundled_voices, stock_context):
    restored = app_state.restore(token, bundled_voices, stock_context, ["af_heart"])
    assert restored.recipe == Recipe.single("af_heart")
    assert restored.warning.startswith("The recipe in the link was not loaded")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_restore_never_raises_whatever_the_url_holds(bundled_voices, stock_context, token):
    restored = app_state.restore(token, bundled_voices, stock_context, ["af_heart"])
    assert restored.recipe == Recipe.single("af_heart") or restored.warning is None


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
    assert app_state.dim_edit("set", target, value=0.5, **kwargs) == expected


def test_zeroing_ignores_the_value_field():
    assert app_state.dim_edit("zero", "one dim", dim=3, value=2.5) == DimEdit("zero", 3, 4)


@pytest.mark.parametrize(
    "op, target, kwargs",
    [("rotate", "one dim", {}), ("set", "a third half", {}), ("set", "one dim", {"dim": 256}),
     ("set", "range", {"dims": (20, 10)}), ("set", "range", {"dims": (0, 2.5)}),
     ("scale", "all dims", {"value": 11.0})],
)
def test_a_slicing_form_out_of_bounds_raises_a_recipe_error(op, target, kwargs):
    with pytest.raises(RecipeError):
        app_state.dim_edit(op, target, **kwargs)


def test_named_sliders_round_trip_through_the_widgets_and_the_recipe():
    from explorer.recipe import AttributeEdit

    lab = app_state.LabState(Mix((Component("af_heart"),)), attributes=(("pitch", 2.0), ("pace", -10.0)))
    assert lab.to_recipe().edits == (AttributeEdit("pitch", 2.0), AttributeEdit("pace", -10.0))
    values = lab.widget_values()
    assert values[app_state.attribute_key("pitch")] == 2.0 and values[app_state.attribute_key("energy")] == 0.0
    assert app_state.LabState.from_widgets(values) == lab == app_state.LabState.from_recipe(lab.to_recipe())


def test_attribute_edits_the_sliders_cannot_show_stay_as_edits_in_their_order():
    from explorer.recipe import AttributeEdit

    recipe = Recipe.single("af_heart").with_edits(
        [AttributeEdit("pace", 5.0), AttributeEdit("pitch", 1.0), AttributeEdit("pace", -5.0)])
    lab = app_state.LabState.from_recipe(recipe)
    assert lab.attributes == (("pace", 5.0),)
    assert lab.extra_edits == (AttributeEdit("pitch", 1.0), AttributeEdit("pace", -5.0))
    assert lab.to_recipe() == recipe


def test_the_maps_cross_follows_the_voices_just_picked_with_the_labs_edits(bundled_voices, stock_context):
    """Walkthrough: after picking voices on the Map, the cross still showed the Lab's previous voice."""
    current = Recipe.single("af_heart").with_edit(PCAStep("decoder", 0, 1.0))
    token = current.to_token()
    same = app_state.lab_recipe_to_come(token, ("af_heart",), ("af_heart",), bundled_voices, stock_context)
    assert same.recipe == current and same.warning is None
    to_come = app_state.lab_recipe_to_come(token, ("bf_emma", "am_adam"), ("af_heart",), bundled_voices,
                                           stock_context).recipe
    assert to_come.voice_names == ("bf_emma", "am_adam") and to_come.edits == current.edits
    fresh = app_state.lab_recipe_to_come(None, ("bf_emma",), None, bundled_voices, stock_context)
    assert fresh.recipe == Recipe.single("bf_emma")
    broken = app_state.lab_recipe_to_come("not-a-recipe!!", ("bf_emma",), None, bundled_voices, stock_context)
    assert broken.recipe == Recipe.single("bf_emma") and broken.warning.startswith("The recipe in the link was not")
