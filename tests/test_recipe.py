"""Voice recipes: what each step does to a pack, how recipes travel (JSON, share strings, files), and that nothing a
person or a URL can send gets past the parser except as a RecipeError."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.analysis import summary_vectors
from explorer.errors import RecipeError, VoiceError
from explorer.recipe import (
    MAX_COMPONENTS,
    MAX_EDITS,
    MAX_JSON_BYTES,
    MAX_TOKEN_CHARS,
    MAX_VOICE_STRING_CHARS,
    MAX_WEIGHT,
    AttributeEdit,
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
    describe,
    load_recipe,
    ood_report,
)
from explorer.voices import MAX_PACK_VALUE, Voice, VoiceSet

SYNTHETIC_NAMES = ["af_one", "af_two", "af_three", "am_four", "am_five", "bf_six", "bm_seven", "bm_eight"]
PLANTED = np.zeros(256)
PLANTED[[5, 40]] = [0.6, 0.8]
"""The decoder direction along which the synthetic voices were spread: it must come out as decoder PC1."""


def make_synthetic_voices() -> VoiceSet:
    rng = np.random.default_rng(7)
    voices = []
    for spread, name in zip(np.linspace(-2, 2, len(SYNTHETIC_NAMES)), SYNTHETIC_NAMES):
        mean = 0.05 * rng.normal(size=256) + spread * PLANTED
        rows = mean + 0.02 * rng.normal(size=(510, 256)) + np.linspace(0, 0.1, 510)[:, None]
        voices.append(Voice.from_array(name, rows.astype(np.float32), "synthetic"))
    return VoiceSet(voices)


SYNTHETIC = make_synthetic_voices()


@pytest.fixture(scope="module")
def synthetic():
    """Eight small voices (two languages, two genders) with one planted decoder direction."""
    return SYNTHETIC


def mean_vector(pack: np.ndarray) -> np.ndarray:
    return summary_vectors(np.asarray(pack)[None])[0]


def pack_of(voices: VoiceSet, name: str) -> np.ndarray:
    return voices[name].pack.astype(np.float64)


# --- the base: single voice, mix, interpolation ---------------------------------------------------------------------


def test_a_single_voice_recipe_is_the_stock_pack_exactly(bundled_voices):
    pack = apply_recipe(Recipe.single("af_heart"), bundled_voices)
    assert pack.shape == (510, 256) and pack.dtype == np.float32
    assert not pack.flags.writeable
    np.testing.assert_array_equal(pack, bundled_voices["af_heart"].pack)


def test_timbre_of_one_voice_with_the_prosody_of_another_is_exact(bundled_voices):
    recipe = Recipe(Mix.from_weights({"af_heart": 1.0}, {"am_adam": 1.0}))
    pack = apply_recipe(recipe, bundled_voices)
    np.testing.assert_array_equal(pack[:, :128], bundled_voices["af_heart"].pack[:, :128])
    np.testing.assert_array_equal(pack[:, 128:], bundled_voices["am_adam"].pack[:, 128:])


def test_mix_weights_are_normalised_per_half(bundled_voices):
    heavy = Recipe(Mix((Component("af_heart", 7, 1), Component("bf_emma", 3, 3))))
    unit = Recipe(Mix((Component("af_heart", 0.7, 0.25), Component("bf_emma", 0.3, 0.75))))
    assert heavy.base.weights("decoder") == pytest.approx({"af_heart": 0.7, "bf_emma": 0.3})
    assert heavy.base.weights("prosody") == pytest.approx({"af_heart": 0.25, "bf_emma": 0.75})
    pack = apply_recipe(heavy, bundled_voices)
    np.testing.assert_allclose(pack, apply_recipe(unit, bundled_voices), atol=1e-6)
    heart, emma = pack_of(bundled_voices, "af_heart"), pack_of(bundled_voices, "bf_emma")
    np.testing.assert_allclose(pack[:, :128], 0.7 * heart[:, :128] + 0.3 * emma[:, :128], atol=1e-6)
    np.testing.assert_allclose(pack[:, 128:], 0.25 * heart[:, 128:] + 0.75 * emma[:, 128:], atol=1e-6)


def test_the_mix_is_taken_row_by_row(synthetic):
    pack = apply_recipe(Recipe(Mix.from_weights({"af_one": 1, "bm_eight": 1})), synthetic)
    expected = (pack_of(synthetic, "af_one") + pack_of(synthetic, "bm_eight")) / 2
    np.testing.assert_allclose(pack, expected, atol=1e-6)


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_linear_interpolation_endpoints_are_the_voices_exactly(bundled_voices, t):
    pack = apply_recipe(Recipe(Interpolation("af_heart", "am_adam", t)), bundled_voices)
    np.testing.assert_array_equal(pack, bundled_voices["am_adam" if t else "af_heart"].pack)


@pytest.mark.parametrize("t", [0.5, -1.0, 2.5])
def test_linear_interpolation_midpoint_and_extrapolation(bundled_voices, t):
    a, b = pack_of(bundled_voices, "af_heart"), pack_of(bundled_voices, "am_adam")
    pack = apply_recipe(Recipe(Interpolation("af_heart", "am_adam", t)), bundled_voices)
    np.testing.assert_allclose(pack, a + t * (b - a), atol=1e-5)


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_slerp_endpoints_are_the_voices(bundled_voices, t):
    pack = apply_recipe(Recipe(Interpolation("af_heart", "am_adam", t, "slerp")), bundled_voices)
    np.testing.assert_allclose(pack, bundled_voices["am_adam" if t else "af_heart"].pack, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("t", [0.25, 0.5, -1.0, 2.0])
def test_slerp_turns_each_row_half_at_constant_speed_and_blends_the_norm_linearly(bundled_voices, t):
    a, b = pack_of(bundled_voices, "af_heart"), pack_of(bundled_voices, "am_adam")
    pack = apply_recipe(Recipe(Interpolation("af_heart", "am_adam", t, "slerp")), bundled_voices).astype(np.float64)
    for half in (slice(0, 128), slice(128, 256)):
        ha, hb, hp = a[:, half], b[:, half], pack[:, half]
        na, nb, norm = (np.linalg.norm(x, axis=1) for x in (ha, hb, hp))
        np.testing.assert_allclose(norm, np.maximum((1 - t) * na + t * nb, 0), rtol=1e-5)
        omega = np.arccos(np.clip((ha * hb).sum(1) / (na * nb), -1, 1))
        unit_a, unit_b, unit_p = ha / na[:, None], hb / nb[:, None], hp / norm[:, None]
        # The result lies in the plane of a and b, at angle t * omega from a (measured toward b).
        along_a = (unit_p * unit_a).sum(1)
        along_b = (unit_p * unit_b).sum(1)
        np.testing.assert_allclose(along_a, np.cos(t * omega), atol=1e-5)
        np.testing.assert_allclose(along_b, np.cos((1 - t) * omega), atol=1e-5)


def test_slerp_of_equal_norm_rows_keeps_the_norm_where_linear_shrinks_it(synthetic):
    a = np.zeros((510, 256), np.float32)
    b = np.zeros((510, 256), np.float32)
    a[:, 0] = a[:, 128] = 1.0
    b[:, 1] = b[:, 129] = 1.0
    voices = synthetic.with_voices([Voice.from_array("x_a", a, "test"), Voice.from_array("x_b", b, "test")])
    slerp = apply_recipe(Recipe(Interpolation("x_a", "x_b", 0.5, "slerp")), voices)
    linear = apply_recipe(Recipe(Interpolation("x_a", "x_b", 0.5)), voices)
    np.testing.assert_allclose(np.linalg.norm(slerp[:, :128], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(linear[:, :128], axis=1), np.sqrt(0.5), rtol=1e-6)


@pytest.mark.parametrize("a, b, t, half, clamped", [("af_heart", "bm_george", -2.0, slice(0, 128), 487),
                                                     ("jf_tebukuro", "af_heart", 3.0, slice(128, 256), 500)])
def test_slerp_extrapolated_past_a_zero_norm_stops_at_zero_instead_of_turning_around(bundled_voices, a, b, t, half,
                                                                                      clamped):
    """A person drags t to an end of its range on two stock voices; where the norm blended linearly from |a| to |b|
    would go below zero, that row-half is zero, not the direction flipped and scaled by the negative norm.

    Across the bundled voices 1,678 pairs x t in {-2, 3} x half hit the clamp; these two hit it on 487 and 500 of
    their 510 rows (measured)."""
    pack = apply_recipe(Recipe(Interpolation(a, b, t, "slerp")), bundled_voices).astype(np.float64)[:, half]
    linear_norm = (1 - t) * np.linalg.norm(pack_of(bundled_voices, a)[:, half], axis=1) \
        + t * np.linalg.norm(pack_of(bundled_voices, b)[:, half], axis=1)
    below_zero = linear_norm < 0
    assert below_zero.sum() == clamped
    assert not pack[below_zero].any()
    np.testing.assert_allclose(np.linalg.norm(pack[~below_zero], axis=1), linear_norm[~below_zero], rtol=1e-5)


@pytest.mark.parametrize("t", [0.5, -2.0, 3.0])
def test_slerp_of_a_zero_row_falls_back_to_linear(synthetic, t):
    """As the Interpolation docstring promises: a row-half that is zero in either voice has no direction to turn, so
    it is ``(1 - t) a + t b`` there (no NaN, no warning), while the other row-halves are slerped."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 0.3, (2, 510, 256)).astype(np.float32)
    a[:10, :128] = 0  # a's decoder half is zero on rows 0-9
    b[5:15, 128:] = 0  # b's prosody half is zero on rows 5-14
    a[20:25] = b[20:25] = 0  # both voices are zero on rows 20-24
    voices = synthetic.with_voices([Voice.from_array("x_a", a, "test"), Voice.from_array("x_b", b, "test")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by a zero norm would warn
        pack = apply_recipe(Recipe(Interpolation("x_a", "x_b", t, "slerp")), voices).astype(np.float64)
    linear = (1 - t) * a.astype(np.float64) + t * b.astype(np.float64)
    for rows, half in ((slice(0, 10), slice(0, 128)), (slice(5, 15), slice(128, 256)), (slice(20, 25), slice(None))):
        np.testing.assert_allclose(pack[rows, half], linear[rows, half], rtol=1e-6, atol=1e-7)
    slerped = pack[30:, :128]  # untouched rows still follow the great circle: their norm is the blended norm
    expected_norm = np.maximum((1 - t) * np.linalg.norm(a[30:, :128], axis=1)
                               + t * np.linalg.norm(b[30:, :128], axis=1), 0)
    np.testing.assert_allclose(np.linalg.norm(slerped, axis=1), expected_norm, rtol=1e-5)
    assert not np.allclose(slerped, linear[30:, :128], atol=1e-3)


def test_slerp_of_opposite_rows_falls_back_to_linear(synthetic):
    a = np.ones((510, 256), np.float32)
    voices = synthetic.with_voices([Voice.from_array("x_a", a, "test"), Voice.from_array("x_b", -a, "test")])
    pack = apply_recipe(Recipe(Interpolation("x_a", "x_b", 0.25, "slerp")), voices)
    np.testing.assert_allclose(pack, 0.5, atol=1e-6)


# --- edits ------------------------------------------------------------------------------------------------------------


def test_the_planted_direction_is_decoder_pc1_of_the_synthetic_set(synthetic):
    first = RecipeContext.from_voices(synthetic).pca["decoder"].components[0]
    assert abs(first @ PLANTED[:128]) > 0.99


@pytest.mark.parametrize("layer", ["decoder", "prosody", "both"])
@pytest.mark.parametrize("component, amount", [(0, 1.5), (2, -2.0)])
def test_a_pca_step_moves_only_that_component_by_amount_std(synthetic, layer, component, amount):
    context = RecipeContext.from_voices(synthetic)
    result = context.pca[layer]
    before = apply_recipe(Recipe.single("am_four"), synthetic)
    after = apply_recipe(Recipe.single("am_four").with_edit(PCAStep(layer, component, amount)), synthetic)
    moved = result.project(mean_vector(after)) - result.project(mean_vector(before))
    expected = np.zeros(len(result.components))
    expected[component] = amount * result.component_std[component]
    np.testing.assert_allclose(moved, expected, atol=1e-5)
    untouched = np.ones(256, bool)
    untouched[{"decoder": slice(0, 128), "prosody": slice(128, 256), "both": slice(0, 256)}[layer]] = False
    np.testing.assert_array_equal(after[:, untouched], before[:, untouched])


def test_a_pca_step_along_pc1_follows_the_planted_direction(synthetic):
    context = RecipeContext.from_voices(synthetic)
    std = context.pca["decoder"].component_std[0]
    before = apply_recipe(Recipe.single("af_one"), synthetic)
    after = apply_recipe(Recipe.single("af_one").with_edit(PCAStep("decoder", 0, 1.0)), synthetic)
    shift = mean_vector(after) - mean_vector(before)
    np.testing.assert_allclose(abs(shift @ PLANTED), std, rtol=1e-2)


@pytest.mark.parametrize("layer, component, amount", [("decoder", 0, 2.0), ("prosody", 3, -1.0), ("both", 1, 0.5)])
def test_a_pca_step_on_the_bundled_voices_moves_the_projection_by_amount_std(
    bundled_voices, layer, component, amount
):
    result = RecipeContext.from_voices(bundled_voices).pca[layer]
    before = bundled_voices["bf_emma"].pack
    after = apply_recipe(Recipe.single("bf_emma").with_edit(PCAStep(layer, component, amount)), bundled_voices)
    moved = result.project(mean_vector(after)) - result.project(mean_vector(before))
    expected = np.zeros(len(result.components))
    expected[component] = amount * result.component_std[component]
    np.testing.assert_allclose(moved, expected, atol=1e-5)


def test_a_pca_component_the_reference_lacks_is_refused_at_apply_time(synthetic):
    recipe = Recipe.single("af_one").with_edit(PCAStep("decoder", 20, 1.0))
    with pytest.raises(RecipeError, match=r"Edit 1 .*components 0-7"):
        apply_recipe(recipe, synthetic)


@pytest.mark.parametrize("kind, key", [("gender", "female"), ("language", "British English"), ("group", "am")])
def test_a_centroid_move_of_one_lands_on_the_members_mean_pack(synthetic, kind, key):
    members = [v.name for v in synthetic if getattr(v, kind) == key]
    centroid = np.mean([pack_of(synthetic, n) for n in members], axis=0)
    pack = apply_recipe(Recipe.single("am_four").with_edit(CentroidMove(kind, key, 1.0)), synthetic)
    np.testing.assert_allclose(pack, centroid, atol=1e-6)


@pytest.mark.parametrize("amount", [0.5, -1.0, 2.0])
def test_a_centroid_move_goes_part_way_away_or_past(synthetic, amount):
    centroid = RecipeContext.from_voices(synthetic).centroid_pack("gender", "male")
    start = pack_of(synthetic, "af_two")
    pack = apply_recipe(Recipe.single("af_two").with_edit(CentroidMove("gender", "male", amount)), synthetic)
    np.testing.assert_allclose(pack, start + amount * (centroid - start), atol=1e-6)


def test_a_centroid_axis_moves_along_the_difference_of_two_centroids(bundled_voices):
    context = RecipeContext.from_voices(bundled_voices)
    axis = context.centroid_pack("gender", "female") - context.centroid_pack("gender", "male")
    start = pack_of(bundled_voices, "am_adam")
    recipe = Recipe.single("am_adam").with_edit(CentroidAxis("gender", "male", "female", 0.8))
    pack = apply_recipe(recipe, bundled_voices)
    np.testing.assert_allclose(pack, start + 0.8 * axis, atol=1e-5)


def test_an_unknown_centroid_is_refused_with_the_known_keys(synthetic):
    recipe = Recipe.single("af_one").with_edit(CentroidMove("language", "Klingon", 1.0))
    with pytest.raises(RecipeError, match="No language centroid 'Klingon'.*American English"):
        apply_recipe(recipe, synthetic)


@pytest.mark.parametrize(
    "edit, dims, expected",
    [
        (DimEdit.single("set", 7, 0.25), [7], lambda old: np.full_like(old, 0.25)),
        (DimEdit.single("offset", 200, -0.5), [200], lambda old: old - 0.5),
        (DimEdit.single("scale", 3, 2.0), [3], lambda old: old * 2.0),
        (DimEdit.single("zero", 130), [130], np.zeros_like),
        (DimEdit("scale", 10, 20, -1.0), list(range(10, 20)), lambda old: -old),
        (DimEdit.half("zero", "decoder"), list(range(128)), np.zeros_like),
        (DimEdit.half("offset", "prosody", 0.1), list(range(128, 256)), lambda old: old + 0.1),
    ],
)
def test_dim_edits_change_only_their_dims(bundled_voices, edit, dims, expected):
    stock = pack_of(bundled_voices, "af_heart")
    pack = apply_recipe(Recipe.single("af_heart").with_edit(edit), bundled_voices)
    np.testing.assert_allclose(pack[:, dims], expected(stock[:, dims]), atol=1e-6)
    others = np.setdiff1d(np.arange(256), dims)
    np.testing.assert_array_equal(pack[:, others], bundled_voices["af_heart"].pack[:, others])


@pytest.mark.parametrize(
    "edit",
    [
        PCAStep("prosody", 0, 1.0),
        CentroidMove("group", "bf", 0.5),
        CentroidAxis("language", "British English", "American English", 1.0),
        DimEdit.single("offset", 100, 0.3),
    ],
)
def test_every_row_of_the_pack_is_edited(bundled_voices, edit):
    pack = apply_recipe(Recipe.single("af_heart").with_edit(edit), bundled_voices)
    assert (pack != bundled_voices["af_heart"].pack).any(axis=1).all()


def test_edits_apply_in_order(synthetic):
    base = Recipe.single("af_one")
    set_then_scale = base.with_edits([DimEdit.single("set", 0, 1.0), DimEdit.single("scale", 0, 3.0)])
    scale_then_set = base.with_edits([DimEdit.single("scale", 0, 3.0), DimEdit.single("set", 0, 1.0)])
    assert (apply_recipe(set_then_scale, synthetic)[:, 0] == 3.0).all()
    assert (apply_recipe(scale_then_set, synthetic)[:, 0] == 1.0).all()


def full_recipe() -> Recipe:
    return Recipe(
        Mix.from_weights({"af_heart": 0.7, "bf_emma": 0.3}, {"am_adam": 1.0}),
        (
            PCAStep("decoder", 0, 1.5),
            CentroidMove("gender", "female", 0.5),
            CentroidAxis("language", "British English", "American English", -0.8),
            DimEdit.half("scale", "decoder", 1.5),
            DimEdit.single("zero", 3),
            DimEdit("offset", 10, 20, 0.05),
        ),
    )


def test_applying_is_deterministic_even_with_a_fresh_context(bundled_voices):
    recipe = full_recipe()
    first = apply_recipe(recipe, bundled_voices)
    again = apply_recipe(recipe, bundled_voices)
    fresh = apply_recipe(recipe, bundled_voices, RecipeContext._build(bundled_voices))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)


def test_the_context_is_built_once_per_voice_set(synthetic, bundled_voices):
    assert RecipeContext.from_voices(synthetic) is RecipeContext.from_voices(synthetic)
    assert RecipeContext.from_voices(synthetic) is not RecipeContext.from_voices(bundled_voices)
    assert RecipeContext.from_voices(synthetic).centroid_keys("gender") == ["female", "male"]


def test_a_given_context_is_the_reference_for_steps(synthetic, bundled_voices):
    """A Lab voice set may hold uploads; PCA and centroids still come from the reference the app passes."""
    voices = bundled_voices.with_voices([synthetic["af_one"]])
    recipe = Recipe.single("af_one").with_edit(CentroidMove("gender", "female", 1.0))
    pack = apply_recipe(recipe, voices, RecipeContext.from_voices(bundled_voices))
    np.testing.assert_allclose(
        pack, RecipeContext.from_voices(bundled_voices).centroid_pack("gender", "female"), atol=1e-6
    )


def test_recipes_without_steps_need_no_reference_and_steps_need_three_voices(synthetic):
    pair = VoiceSet([synthetic["af_one"], synthetic["am_four"]])
    apply_recipe(Recipe(Mix.from_weights({"af_one": 1, "am_four": 1})).with_edit(DimEdit.single("zero", 0)), pair)
    with pytest.raises(RecipeError, match="at least 3 reference voices"):
        apply_recipe(Recipe.single("af_one").with_edit(PCAStep("decoder", 0, 1.0)), pair)


# --- describing and updating ---------------------------------------------------------------------------------------


def test_describe_gives_one_line_per_step():
    assert describe(full_recipe()).splitlines() == [
        "timbre (decoder) 70% af_heart + 30% bf_emma; prosody 100% am_adam",
        "PCA decoder PC1 +1.5 std",
        "toward gender 'female' centroid x0.5",
        "along language axis 'British English' -> 'American English' x-0.8",
        "scale decoder half (dims 0-127) x1.5",
        "zero dim 3",
        "offset dims 10-19 by +0.05",
    ]


@pytest.mark.parametrize(
    "recipe, line",
    [
        (Recipe.single("af_heart"), "voice af_heart"),
        (Recipe(Mix.from_weights({"af_heart": 2, "bf_emma": 1})), "mix 66.7% af_heart + 33.3% bf_emma"),
        (Recipe(Interpolation("af_heart", "am_adam", 0.5, "slerp")), "slerp af_heart -> am_adam at t=0.5"),
        (Recipe.single("a").with_edit(CentroidMove("group", "bf", -1)), "away from group 'bf' centroid x1"),
        (Recipe.single("a").with_edit(DimEdit.single("set", 5, 0.1)), "set dim 5 to 0.1"),
    ],
)
def test_describe_reads_like_what_the_lab_shows(recipe, line):
    assert line in describe(recipe).splitlines()


def test_functional_updates_leave_the_original_unchanged():
    recipe = Recipe.single("af_heart")
    edited = recipe.with_edit(PCAStep("decoder", 0, 1.0)).with_edit(DimEdit.single("zero", 1))
    assert recipe.edits == () and len(edited.edits) == 2
    replaced = edited.replace_edit(0, PCAStep("decoder", 0, 2.0))
    assert replaced.edits[0].amount == 2.0 and edited.edits[0].amount == 1.0
    assert edited.remove_edit(0).edits == (DimEdit.single("zero", 1),)
    assert edited.with_base(Interpolation("af_heart", "am_adam", 0.3)).edits == edited.edits
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.base = Mix((Component("am_adam"),))
    with pytest.raises(RecipeError, match="Edit 5 does not exist"):
        edited.replace_edit(5, DimEdit.single("zero", 1))
    assert Recipe.single("af_heart") == recipe and hash(Recipe.single("af_heart")) == hash(recipe)


def test_recipe_helpers_accept_numpy_numbers_as_sliders_give_them():
    step = PCAStep("decoder", np.int64(2), np.float32(0.5))
    assert (type(step.component), type(step.amount)) == (int, float)
    assert Recipe.single("a").with_edit(step).to_dict()["edits"][0]["amount"] == 0.5


# --- serialisation -------------------------------------------------------------------------------------------------


def test_json_and_token_round_trips_give_the_same_recipe_and_pack(bundled_voices):
    recipe = full_recipe()
    pack = apply_recipe(recipe, bundled_voices)
    for restored in (Recipe.from_json(recipe.to_json()), Recipe.from_token(recipe.to_token())):
        assert restored == recipe
        np.testing.assert_array_equal(apply_recipe(restored, bundled_voices), pack)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_the_token_is_url_safe_and_compact():
    token = full_recipe().to_token()
    assert set(token) <= set(TOKEN_ALPHABET)
    assert len(token) < 600


def test_the_json_names_its_schema_version():
    assert json.loads(Recipe.single("af_heart").to_json()) == {
        "version": 1,
        "base": {"type": "mix", "components": [{"voice": "af_heart", "decoder": 1.0, "prosody": 1.0}]},
        "edits": [],
    }


def test_hand_written_json_may_leave_out_defaults():
    text = '{"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart"}]}}'
    assert Recipe.from_json(text) == Recipe.single("af_heart")


def test_the_largest_possible_recipe_fits_every_limit():
    longest_name = "v" * 64
    components = tuple(Component(f"{i}{longest_name[1:]}", 1 / 3, 2 / 3) for i in range(MAX_COMPONENTS))
    edit = CentroidAxis("language", "K" * 32, "Q" * 32, -1 / 3)
    recipe = Recipe(Mix(components), (edit,) * MAX_EDITS)
    assert len(recipe.to_json().encode()) <= MAX_JSON_BYTES
    assert len(recipe.to_token()) <= MAX_TOKEN_CHARS
    assert Recipe.from_token(recipe.to_token()) == recipe


def test_load_recipe_takes_a_file_json_text_or_a_token(tmp_path):
    recipe = full_recipe()
    path = tmp_path / "voice.json"
    path.write_text(recipe.to_json())
    assert load_recipe(str(path)) == recipe
    assert load_recipe(path) == recipe
    assert load_recipe(recipe.to_json()) == recipe
    assert load_recipe(f"  {recipe.to_token()}\n") == recipe
    with pytest.raises(RecipeError, match="No recipe file"):
        load_recipe(str(tmp_path / "missing.json"))
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_JSON_BYTES + 1))
    with pytest.raises(RecipeError, match="larger than 16 KiB"):
        load_recipe(big)


# --- hostile input -------------------------------------------------------------------------------------------------


def valid_dict() -> dict:
    return full_recipe().to_dict()


def edited(path: tuple, value: object) -> dict:
    """Return a valid recipe dict with the value at ``path`` replaced, or added when the key is new."""
    data = valid_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "must be a JSON object"),
        ({"base": valid_dict()["base"]}, "needs a 'version'"),
        (edited(("version",), 2), "schema version 2"),
        (edited(("version",), True), "not a schema version"),
        (edited(("extra",), 1), "unknown keys 'extra'"),
        (edited(("base", "type"), "blend"), "use one of mix, interpolate"),
        (edited(("base", "components", 0, "voice"), "../../etc/passwd"), "Invalid voice name"),
        (edited(("base", "components", 0, "voice"), "<script>x</script>"), "Invalid voice name"),
        (edited(("base", "components", 0, "decoder"), True), "must be a number, not true/false"),
        (edited(("base", "components", 0, "decoder"), "0.7"), "must be a number, not text"),
        (edited(("base", "components", 0, "decoder"), -100.5), "between -100 and 100"),
        (edited(("base", "components", 0, "decoder"), 1e300), "between -100 and 100"),
        (edited(("base", "components", 0, "decoder"), float("nan")), "finite"),
        (edited(("base", "components", 0, "weight"), 1), "unknown keys 'weight'"),
        (edited(("base", "components"), [{"voice": f"af_v{i}"} for i in range(9)]), "1-8 voices"),
        (edited(("base", "components"), []), "1-8 voices"),
        (edited(("base", "components"), [{"voice": "af_a"}, {"voice": "af_a"}]), "appears twice"),
        (edited(("base", "components"), [{"voice": "af_a", "decoder": 0, "prosody": 1}]), "decoder weight"),
        (edited(("base", "components"), {"voice": "af_a"}), "must be a list"),
        (edited(("edits",), [{"type": "pca", "layer": "pitch", "component": 0, "amount": 1}]), "PCA layer"),
        (edited(("edits",), [{"type": "pca", "layer": "decoder", "component": 128, "amount": 1}]), "0 and 127"),
        (edited(("edits",), [{"type": "pca", "layer": "decoder", "component": 1.0, "amount": 1}]), "whole number"),
        (edited(("edits",), [{"type": "pca", "layer": "decoder", "component": 0, "amount": 11}]), "-10 and 10"),
        (edited(("edits",), [{"type": "pca", "layer": "decoder", "component": 0}]), "lacks amount"),
        (edited(("edits",), [{"type": "centroid", "kind": "age", "key": "old", "amount": 1}]), "Centroid kind"),
        (edited(("edits",), [{"type": "centroid", "kind": "gender", "key": "<b>", "amount": 1}]), "centroid key"),
        (edited(("edits",), [{"type": "centroid", "kind": "gender", "key": "male", "amount": 4}]), "-3 and 3"),
        (edited(("edits",), [{"type": "axis", "kind": "gender", "from_key": "male", "to_key": "male", "amount": 1}]),
         "two different ends"),
        (edited(("edits",), [{"type": "dims", "op": "set", "start": 5, "stop": 5, "value": 1}]), "stop"),
        (edited(("edits",), [{"type": "dims", "op": "set", "start": 0, "stop": 300, "value": 1}]), "stop"),
        (edited(("edits",), [{"type": "dims", "op": "scale", "start": 0, "stop": 1, "value": 1e6}]), "-10 and 10"),
        (edited(("edits",), [{"type": "dims", "op": "zero", "start": 0, "stop": 1, "value": 2}]), "takes no value"),
        (edited(("edits",), [{"type": "dims", "op": "invert", "start": 0, "stop": 1}]), "operation"),
        (edited(("edits",), [{"type": "dims", "op": "set", "start": 0, "stop": 1}] * 33), "at most 32 edits"),
        (edited(("edits",), {"type": "dims"}), "must be a list"),
        (edited(("edits",), [[[[{"type": "dims"}]]]]), "must be a JSON object"),
        (edited(("edits",), [{"op": "set"}]), "has type None"),
        (edited(("base",), {"type": "interpolate", "a": "af_a", "b": "am_b", "t": 3.5}), "between -2 and 3"),
        (edited(("base",), {"type": "interpolate", "a": "af_a", "b": "am_b", "t": 1, "method": "cubic"}), "method"),
    ],
)
def test_malformed_recipes_are_refused_with_a_clear_message(data, message):
    with pytest.raises(RecipeError, match=message):
        Recipe.from_dict(data)


def test_errors_say_which_edit_or_component_is_wrong():
    with pytest.raises(RecipeError, match=r"^Edit 2: "):
        Recipe.from_dict(edited(("edits", 1, "amount"), 99))
    with pytest.raises(RecipeError, match=r"^Mix component 2: "):
        Recipe.from_dict(edited(("base", "components", 1, "voice"), "a/b"))


def test_an_unknown_voice_is_refused_at_apply_time(synthetic):
    with pytest.raises(RecipeError, match="Unknown voice 'af_heart'.*8 loaded voices"):
        apply_recipe(Recipe.single("af_heart"), synthetic)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"version": 1, "base": {"type": "interpolate", "a": "af_a", "b": "af_b", "t": NaN}}', "finite"),
        ('{"version": 1, "base": {"type": "interpolate", "a": "af_a", "b": "af_b", "t": -Infinity}}', "finite"),
        ('{"version": 1, "base": {"type": "interpolate", "a": "af_a", "b": "af_b", "t": 1e999}}', "beyond any amount"),
        ('{"version": 1, "version": 1, "base": {}}', "repeats a key"),
        ('{"version": 1, "base": ', "not valid JSON"),
        ('{"version": 1, "base": {"type": "mix", "components": [{"voice": "af_a"}]}} trailing', "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"a": ' * 2000 + "1" + "}" * 2000, "nested too deeply"),
        ("[" * 50 + "]" * 50, "must be a JSON object"),
        ('{"version": 1, "base": "' + "x" * MAX_JSON_BYTES + '"}', "longer than 16 KiB"),
        ('{"version": ' + "9" * 5000 + "}", "not valid JSON"),
        (b"\xff\xfe{", "not UTF-8"),
    ],
)
def test_malformed_json_is_refused(text, message):
    with pytest.raises(RecipeError, match=message):
        Recipe.from_json(text)


def token_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc$def", "not URL-safe base64"),
        ("<script>alert(1)</script>", "not URL-safe base64"),
        ("abcde", "not URL-safe base64"),
        ("A" * (MAX_TOKEN_CHARS + 1), "longer than 8192"),
        (token_of(b"not zlib at all"), "does not decompress"),
        (token_of(zlib.compress(b'{"version": 1}')[:-6]), "truncated"),
        (token_of(zlib.compress(b'{"version": 1}') + b"junk"), "trailing"),
        (token_of(zlib.compress(b"not json")), "not valid JSON"),
        (token_of(zlib.compress(b"\xff\xfe")), "not UTF-8"),
        (token_of(zlib.compress(b'{"version": 1, "base": {"type": "mix", "components": []}}')), "1-8 voices"),
        (token_of(zlib.compress(b"[" * 5000 + b"]" * 5000, 9)), "nested too deeply"),
        (None, "must be text"),
        (42, "must be text"),
    ],
)
def test_malformed_tokens_are_refused(token, message):
    with pytest.raises(RecipeError, match=message):
        Recipe.from_token(token)


def test_a_compression_bomb_is_stopped_while_inflating():
    bomb = token_of(zlib.compress(b"{" + b" " * 5_000_000, 9))
    assert len(bomb) <= MAX_TOKEN_CHARS
    with pytest.raises(RecipeError, match="inflates to more than 16 KiB"):
        Recipe.from_token(bomb)


def test_constructing_invalid_steps_directly_raises_recipe_errors():
    with pytest.raises(RecipeError, match="must be a number"):
        PCAStep("decoder", 0, True)
    with pytest.raises(RecipeError, match="at most 32 edits"):
        Recipe.single("af_heart").with_edits([DimEdit.single("zero", 0)] * 33)
    with pytest.raises(RecipeError, match="not a recipe edit"):
        Recipe.single("af_heart").with_edit("zero dim 0")
    with pytest.raises(RecipeError, match="Invalid voice name"):
        Recipe.single("")
    with pytest.raises(RecipeError, match="schema version a value too large to show"):
        Recipe.from_dict(edited(("version",), 10**5000))


# --- out-of-distribution report ------------------------------------------------------------------------------------


def test_a_stock_voice_is_in_distribution_at_distance_zero_from_itself(bundled_voices):
    report = ood_report(bundled_voices["af_heart"].pack, bundled_voices)
    assert report.nearest_voice == "af_heart" and report.verdict == "within the stock voices"
    assert report.distance == pytest.approx(0, abs=1e-9)
    assert report.dims_out_of_range == () and report.cells_out_of_range == 0
    assert not report.out_of_distribution
    assert report.summary().startswith("Within the stock voices")


def test_a_pack_a_little_beyond_the_stock_range_of_a_dim_is_at_the_edge_not_within(bundled_voices):
    """Walkthrough: a voice with dims outside the stock range, but by less than the margin, read "Within the stock
    voices" while the map showed it outside the cloud; it now reads as at the edge and says how many dims."""
    context = RecipeContext.from_voices(bundled_voices)
    low, high = context.vectors[:, 42].min(), context.vectors[:, 42].max()
    value = bundled_voices["af_heart"].pack.reshape(510, 256).mean(axis=0)[42]
    offset = float(high - value + 0.1 * (high - low))
    report = ood_report(apply_recipe(Recipe.single("af_heart").with_edit(DimEdit.single("offset", 42, offset)),
                                     bundled_voices), bundled_voices)
    assert not report.out_of_distribution and report.verdict == "at the edge of the stock voices"
    assert report.summary().startswith("At the edge of the stock voices: nearest stock voice af_heart")
    assert "; 1 dim outside the stock range, most of all dim 42" in report.summary()


def test_a_pack_pushed_far_along_a_dim_is_out_of_distribution_with_that_dim(bundled_voices):
    pack = apply_recipe(Recipe.single("af_heart").with_edit(DimEdit.single("offset", 42, 3.0)), bundled_voices)
    report = ood_report(pack, bundled_voices)
    assert report.out_of_distribution
    worst = report.dims_out_of_range[0]
    assert worst.dim == 42 and worst.excess == pytest.approx(worst.value - worst.high) and worst.excess > 1
    assert report.rows_out_of_range == 510 and report.cells_out_of_range >= 510
    assert report.to_json()["dims_out_of_range"][0]["dim"] == 42
    assert "dim 42" in report.summary()


def test_a_pack_far_from_every_voice_is_out_of_distribution_by_distance(bundled_voices):
    pack = apply_recipe(Recipe(Interpolation("af_heart", "zm_yunxi", 3.0)), bundled_voices)
    report = ood_report(pack, bundled_voices)
    assert report.distance > report.distance_threshold and report.out_of_distribution


@pytest.mark.parametrize("pair", [("af_heart", "zm_yunxi"), ("bf_emma", "jm_kumo"), ("am_adam", "if_sara")])
def test_half_and_half_mixes_of_stock_voices_are_in_distribution(bundled_voices, pair):
    pack = apply_recipe(Recipe(Mix.from_weights(dict.fromkeys(pair, 1.0))), bundled_voices)
    report = ood_report(pack, bundled_voices)
    assert not report.out_of_distribution and report.dims_out_of_range == ()


def test_the_ood_report_refuses_a_broken_pack(bundled_voices):
    with pytest.raises(VoiceError):
        ood_report(np.full((510, 256), np.nan), bundled_voices)


# --- properties ----------------------------------------------------------------------------------------------------

KEYS = {"group": ["af", "am", "bf", "bm"], "language": ["American English", "British English"],
        "gender": ["female", "male"]}


def finite(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


components = st.lists(
    st.builds(Component, st.sampled_from(SYNTHETIC_NAMES), finite(-100, 100), finite(-100, 100)),
    min_size=1,
    max_size=MAX_COMPONENTS,
    unique_by=lambda c: c.voice,
).filter(lambda cs: sum(abs(c.decoder) for c in cs) > 0 and sum(abs(c.prosody) for c in cs) > 0)
bases = st.one_of(
    components.map(lambda cs: Mix(tuple(cs))),
    st.builds(
        Interpolation, st.sampled_from(SYNTHETIC_NAMES), st.sampled_from(SYNTHETIC_NAMES), finite(-2, 3),
        st.sampled_from(["linear", "slerp"]),
    ),
)
kind_and_keys = st.sampled_from(sorted(KEYS)).flatmap(
    lambda kind: st.tuples(st.just(kind), st.permutations(KEYS[kind]).map(lambda keys: keys[:2]))
)
dim_edits = st.integers(0, 255).flatmap(
    lambda start: st.builds(
        DimEdit, st.sampled_from(["set", "offset", "scale"]), st.just(start), st.integers(start + 1, 256),
        finite(-10, 10),
    )
)
edits = st.one_of(
    st.builds(PCAStep, st.sampled_from(["decoder", "prosody", "both"]), st.integers(0, 7), finite(-10, 10)),
    kind_and_keys.flatmap(lambda kk: st.builds(CentroidMove, st.just(kk[0]), st.just(kk[1][0]), finite(-3, 3))),
    kind_and_keys.flatmap(
        lambda kk: st.builds(CentroidAxis, st.just(kk[0]), st.just(kk[1][0]), st.just(kk[1][1]), finite(-3, 3))
    ),
    dim_edits,
    st.integers(0, 255).map(lambda dim: DimEdit.single("zero", dim)),
)
recipes = st.builds(Recipe, bases, st.lists(edits, max_size=MAX_EDITS).map(tuple))
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(recipes)
def test_any_valid_recipe_round_trips_and_applies_to_a_pack_within_the_limit_or_names_the_step_that_leaves_it(recipe):
    """Every valid recipe survives its share string and JSON; applied, it gives a finite pack within
    ``MAX_PACK_VALUE``, or a RecipeError naming the base or the edit whose result leaves that range."""
    assert Recipe.from_token(recipe.to_token()) == recipe
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert len(describe(recipe).splitlines()) == 1 + len(recipe.edits)
    try:
        pack = apply_recipe(recipe, SYNTHETIC)
    except RecipeError as error:
        assert re.match(r"^(The base|Edit \d+) .*±32", str(error)), str(error)
        return
    assert pack.shape == (510, 256) and pack.dtype == np.float32 and np.isfinite(pack).all()
    assert np.abs(pack).max() <= MAX_PACK_VALUE


MAX_ERROR_CHARS = 200
"""The longest refusal a share string may get (the longest seen in 9,000 fuzzed tokens: 107 characters)."""


def assert_a_recipe_that_round_trips_or_one_clear_line(token: object) -> None:
    """What a person pasting ``token`` gets: a recipe that survives its own round trips, or a RecipeError whose
    message is one short, non-empty sentence (never a traceback, never a blank box)."""
    try:
        recipe = Recipe.from_token(token)
    except RecipeError as error:
        message = str(error)
        assert message and message == message.strip() and "\n" not in message, repr(message)
        assert len(message) <= MAX_ERROR_CHARS and message[0].isupper() and message.endswith("."), message
        return
    assert isinstance(recipe, Recipe)
    assert Recipe.from_token(recipe.to_token()) == recipe
    assert Recipe.from_json(recipe.to_json()) == recipe


def cut_short(token: str) -> st.SearchStrategy[str]:
    return st.integers(0, len(token)).map(lambda end: token[:end])


@PROPERTY
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), st.text(TOKEN_ALPHABET, max_size=300),
                 recipes.map(Recipe.to_token), recipes.map(Recipe.to_token).flatmap(cut_short)))
def test_arbitrary_text_or_bytes_as_a_token_gives_a_recipe_or_a_one_line_recipe_error(data):
    assert_a_recipe_that_round_trips_or_one_clear_line(data)


@PROPERTY
@given(st.binary(max_size=300))
def test_arbitrary_compressed_bytes_as_a_token_give_a_recipe_or_a_one_line_recipe_error(data):
    for raw in (data, zlib.compress(data)):
        assert_a_recipe_that_round_trips_or_one_clear_line(token_of(raw))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(json_values, st.sampled_from([("version",), ("base",), ("edits",), ("base", "components"),
                                     ("base", "components", 0), ("base", "components", 0, "decoder"),
                                     ("edits", 0), ("edits", 0, "amount"), ("edits", 2, "key"), ("edits", 5, "start")]))
def test_any_json_value_anywhere_in_a_recipe_is_accepted_or_a_recipe_error(value, path):
    data = edited(path, value)
    try:
        recipe = Recipe.from_dict(data)
    except RecipeError:
        return
    assert Recipe.from_json(recipe.to_json()) == recipe


# --------------------------------------------------------------------------- negative weights and other tools' strings


def test_recipes_made_before_negative_weights_keep_their_json_and_share_strings():
    """Allowing negative weights changed nothing a stored recipe or a shared link holds."""
    heart = Recipe.single("af_heart")
    blend = Recipe(Mix.from_weights({"af_heart": 0.7, "bf_emma": 0.3}, {"am_adam": 1.0}),
                   (PCAStep("decoder", 0, 1.5), CentroidAxis("gender", "male", "female", 0.5)))
    assert heart.to_json(indent=None) == (
        '{"version":1,"base":{"type":"mix","components":[{"voice":"af_heart","decoder":1.0,"prosody":1.0}]},'
        '"edits":[]}'
    )
    assert blend.to_json(indent=None) == (
        '{"version":1,"base":{"type":"mix","components":[{"voice":"af_heart","decoder":0.7,"prosody":0.0},'
        '{"voice":"bf_emma","decoder":0.3,"prosody":0.0},{"voice":"am_adam","decoder":0.0,"prosody":1.0}]},'
        '"edits":[{"type":"pca","layer":"decoder","component":0,"amount":1.5},'
        '{"type":"axis","kind":"gender","from_key":"male","to_key":"female","amount":0.5}]}'
    )
    tokens = {  # made by the explorer before this change
        "eNodjEEKgCAURO8ya4naepWQMP2RC_2iIol496zVMLx501EpZccBchM4dSbIjtLiTHj3QMCwjxwolAy5d1R25oP6Om7SqcyFJcOW0"
        "rxYVoGYOLNtfxtqCJB1v6vGC-pmJEI": heart,
        "eNp1kNEKgzAMRf8lz2UoYwz8lSESbdyKtpHWiSL--1LWbfqwp_am594kXWEiHww7KHIFNQaCYoVxGeQEa2ZQ0LAd2JEbAxS3FSY2T"
        "XzEtnoQ-lEITQ1r8lBkp6uCwXNgvUSVbepnqNuKrMUjf_7Po61Qoz3y2Y7PhS83BaRNmi3NPTSxS49L9Hzdu00kSUk-P-M1P11i2-"
        "TF2QRBO-O0qDu5t7X1bKuOlvgr2JNURk66pVT5BGYSWG4v2F9viQ": blend,
    }
    for token, recipe in tokens.items():
        assert Recipe.from_token(token) == recipe


def test_a_negative_weight_subtracts_the_voice_and_weights_are_divided_by_the_sum_of_their_sizes(bundled_voices):
    mix = Mix.from_weights({"af_heart": 2, "am_adam": -1}, {"af_heart": 1})
    assert mix.weights("decoder") == pytest.approx({"af_heart": 2 / 3, "am_adam": -1 / 3})
    assert mix.weights("prosody") == {"af_heart": 1.0, "am_adam": 0.0}
    assert mix.describe() == "timbre (decoder) 66.7% af_heart - 33.3% am_adam; prosody 100% af_heart"
    assert Mix((Component("af_heart", -1.0, -1.0),)).describe() == "mix -100% af_heart"
    pack = apply_recipe(Recipe(mix), bundled_voices)
    heart, adam = (bundled_voices[name].pack.astype(np.float64) for name in ("af_heart", "am_adam"))
    np.testing.assert_allclose(pack[:, :128], (2 * heart[:, :128] - adam[:, :128]) / 3, atol=1e-6)
    np.testing.assert_array_equal(pack[:, 128:], bundled_voices["af_heart"].pack[:, 128:])
    assert Component("af_heart", -MAX_WEIGHT, MAX_WEIGHT).decoder == -100.0
    with pytest.raises(RecipeError, match="between -100 and 100"):
        Component("af_heart", -100.5)
    with pytest.raises(RecipeError, match="Every prosody weight of the mix is zero"):
        Mix((Component("af_heart", 1.0, 0.0), Component("am_adam", -1.0, 0.0)))


def fastapi_pack(text: str, voices) -> np.ndarray:
    """Kokoro-FastAPI's combination, step by step as ``TTSService.get_voices_path`` does it (float32 tensors, each
    weight over the sum of all weights, the first voice added, then ``+`` adds and ``-`` subtracts)."""
    parts = re.split(r"([-+])", text.replace(" ", ""))
    terms = []
    for part in parts[::2]:
        name, _, weight = part.partition("(")
        terms.append((name, float(weight.rstrip(")")) if weight else 1.0))
    total = sum(weight for _, weight in terms)
    combined = voices[terms[0][0]].pack * np.float32(terms[0][1] / total)
    for operator, (name, weight) in zip(parts[1::2], terms[1:]):
        tensor = voices[name].pack * np.float32(weight / total)
        combined = combined + tensor if operator == "+" else combined - tensor
    return combined


@pytest.mark.parametrize(
    "text",
    ["af_bella(2)+af_sky(1)", "af_bella-af_sky", "af_bella(2) - af_sky(1)", "af_heart(0.5)+bf_emma(0.3)-am_adam(0.2)",
     "af_bella+af_bella+af_sky", "am_adam(3)-af_heart(1)-bf_emma(1)+bm_george", "af_heart(7)", "af_heart(0)-am_adam"],
)
def test_a_kokoro_fastapi_voice_string_gives_the_voice_kokoro_fastapi_makes(text, bundled_voices):
    """A person pastes the voice string they use with Kokoro-FastAPI: the same voice, to float32 rounding."""
    recipe = Recipe.from_voice_string(text)
    pack = apply_recipe(recipe, bundled_voices)
    np.testing.assert_allclose(pack, fastapi_pack(text, bundled_voices), rtol=0, atol=2e-6)
    assert apply_recipe(Recipe.from_voice_string(recipe.to_voice_string("fastapi")), bundled_voices) \
        == pytest.approx(pack, abs=1e-6)


@pytest.mark.parametrize("text", ["af_bella,af_sky", "af_bella,af_bella,af_sky", "bf_emma, am_adam ,af_heart"])
def test_a_kokoro_voice_string_gives_the_mean_kpipeline_load_voice_makes(text, bundled_voices):
    names = [name.strip() for name in text.split(",")]
    recipe = Recipe.from_voice_string(text)
    mean = np.mean([bundled_voices[name].pack for name in names], axis=0)
    np.testing.assert_allclose(apply_recipe(recipe, bundled_voices), mean, rtol=0, atol=1e-6)
    assert recipe.to_voice_string("kokoro") == ",".join(sorted(names, key=names.index))


@pytest.mark.parametrize(
    ("text", "weights"),
    [
        ("af_heart", {"af_heart": 1.0}),
        ("  af_bella ( 2 ) + af_sky ( 1 )  ", {"af_bella": 2.0, "af_sky": 1.0}),
        ("af_bella-af_sky", {"af_bella": 1.0, "af_sky": -1.0}),
        ("af_bella(.5)+af_sky(2.)-am_adam(0)", {"af_bella": 0.5, "af_sky": 2.0, "am_adam": 0.0}),
        ("af_bella+af_sky+af_bella", {"af_bella": 2.0, "af_sky": 1.0}),
        ("af_bella,af_sky,af_bella", {"af_bella": 2.0, "af_sky": 1.0}),
        ("my-voice", {"my": 1.0, "voice": -1.0}),
    ],
)
def test_voice_strings_are_read_with_kokoro_fastapis_grammar_or_kokoros(text, weights):
    recipe = Recipe.from_voice_string(text)
    assert recipe == Recipe(Mix(tuple(Component(name, weight, weight) for name, weight in weights.items())))
    assert Recipe.from_voice_string("my-voice", style="kokoro") == Recipe.single("my-voice")


@pytest.mark.parametrize(
    ("recipe", "fastapi", "kokoro"),
    [
        (Recipe.single("af_heart"), "af_heart", "af_heart"),
        (Recipe(Mix.from_weights({"af_bella": 2, "af_sky": 1})), "af_bella(2)+af_sky", "af_bella,af_bella,af_sky"),
        (Recipe(Mix.from_weights({"af_heart": 0.7, "bf_emma": 0.3})), "af_heart(0.7)+bf_emma(0.3)",
         ",".join(["af_heart"] * 7 + ["bf_emma"] * 3)),
        (Recipe(Mix.from_weights({"af_heart": 1, "bf_emma": 1}, {"af_heart": 3, "bf_emma": 3})), "af_heart+bf_emma",
         "af_heart,bf_emma"),
        (Recipe(Mix.from_weights({"am_adam": -1, "af_heart": 2, "bf_emma": 0})), "af_heart(2)-am_adam", None),
        (Recipe(Mix.from_weights({"af_heart": 1, "bf_emma": np.pi})), "af_heart+bf_emma(3.141592653589793)", None),
        (Recipe(Interpolation("af_heart", "am_adam", 0.25)), "af_heart(0.75)+am_adam(0.25)",
         "af_heart,af_heart,af_heart,am_adam"),
        (Recipe(Interpolation("af_heart", "af_heart", 0.6)), "af_heart", "af_heart"),
        (Recipe(Mix.from_weights({"af_heart": 1e-5, "bf_emma": 1})), "af_heart(0.00001)+bf_emma", None),
        (Recipe(Mix((Component("af_heart", -2.0, -2.0), Component("am_adam", -1.0, -1.0)))),
         "af_heart(0)-af_heart(2)-am_adam", None),
    ],
)
def test_a_pure_mix_exports_to_the_strings_other_tools_read(recipe, fastapi, kokoro, bundled_voices):
    assert recipe.to_voice_string() == recipe.to_voice_string("fastapi") == fastapi
    if kokoro is None:
        with pytest.raises(RecipeError, match=r"hexgrad/kokoro averages voices.*\.pt"):
            recipe.to_voice_string("kokoro")
    else:
        assert recipe.to_voice_string("kokoro") == kokoro
    pack = apply_recipe(recipe, bundled_voices)
    for text in (fastapi, kokoro or fastapi):
        np.testing.assert_allclose(apply_recipe(Recipe.from_voice_string(text), bundled_voices), pack, atol=1e-6)


@pytest.mark.parametrize(
    ("recipe", "fragment"),
    [
        (Recipe.single("af_heart").with_edit(DimEdit.single("zero", 3)), "its edit beyond the mix exists only here"),
        (Recipe.single("af_heart").with_edits([PCAStep("decoder", 0, 1.0), CentroidMove("gender", "male", 0.5)]),
         "its 2 edits beyond the mix exist only here"),
        (Recipe(Interpolation("af_heart", "am_adam", 0.5, "slerp")), "a slerp between two voices"),
        (Recipe(Interpolation("af_heart", "am_adam", 1.5)), "an extrapolation (t=1.5)"),
        (Recipe(Mix.from_weights({"af_heart": 1}, {"am_adam": 1})), "weights 'af_heart' differently in its timbre"),
        (Recipe.single("my-voice"), "reads the '-' in voice 'my-voice' as a subtraction"),
    ],
)
def test_a_recipe_beyond_a_whole_voice_mix_has_no_voice_string_and_says_to_export_the_pt(recipe, fragment):
    with pytest.raises(RecipeError) as error:
        recipe.to_voice_string("fastapi")
    message = str(error.value)
    assert fragment in message and "export the voice as a .pt file" in message and "\n" not in message
    if not isinstance(recipe.base, Mix) or len(recipe.voice_names) > 1 or recipe.edits:
        with pytest.raises(RecipeError, match=r"hexgrad/kokoro.*\.pt"):
            recipe.to_voice_string("kokoro")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is empty"),
        (" \t\n", "is empty"),
        ("+af_bella", "empty term"),
        ("af_bella+", "empty term"),
        ("af_bella+-af_sky", "empty term"),
        ("af_bella,,af_sky", "empty name"),
        (",af_bella", "empty name"),
        ("af_bella((2))", "is not NAME or NAME(WEIGHT)"),
        ("af_bella(2", "is not NAME or NAME(WEIGHT)"),
        ("af_bella(2)x", "is not NAME or NAME(WEIGHT)"),
        ("af_bella)2(", "is not NAME or NAME(WEIGHT)"),
        ("(2)", "is not NAME or NAME(WEIGHT)"),
        ("af_bella()", "is not a number like 2 or 0.5"),
        ("af_bella(abc)", "is not a number like 2 or 0.5"),
        ("af_bella(1e3)", "is not a number like 2 or 0.5"),
        ("af_bella(inf)", "is not a number like 2 or 0.5"),
        ("af_bella(nan)", "is not a number like 2 or 0.5"),
        ("af_bella(1,5)", "Invalid voice name"),
        ("af_bella(-1)", "signs a weight"),
        ("af_bella(200)", "more than 100; weights are relative"),
        ("af_bella(1" + "0" * 400 + ")", "more than 100"),
        ("af_bella(0)+af_sky(0)", "Every weight in voice string"),
        ("af_bella+af_sky-af_bella", "both adds and subtracts 'af_bella'"),
        ("+".join(f"af_v{i}" for i in range(MAX_COMPONENTS + 1)), "names 9 voices; a mix takes at most 8"),
        (",".join(f"af_v{i}" for i in range(MAX_COMPONENTS + 1)), "names 9 voices; a mix takes at most 8"),
        ("x" * (MAX_VOICE_STRING_CHARS + 1), "longer than 1024 characters"),
        ("../../etc/passwd", "holds '/'"),
        ("af..bella", "Invalid voice name 'af..bella'"),
        ("af_bella\x1b[2J+af_sky", "holds '\\x1b', which no voice string has"),
        ("af_bella+\u202eaf_sky", "holds '\\u202e'"),
        ("af_bélla", "holds 'é'"),
        ("a" * 65, "Invalid voice name"),
    ],
)
def test_a_hostile_voice_string_is_one_clear_recipe_error(text, fragment):
    with pytest.raises(RecipeError) as error:
        Recipe.from_voice_string(text)
    message = str(error.value)
    assert fragment in message, message
    assert "\n" not in message and "\x1b" not in message and len(message) <= MAX_ERROR_CHARS, message
    assert message[0].isupper() and message.endswith("."), message


def test_voice_string_arguments_of_the_wrong_kind_are_recipe_errors():
    with pytest.raises(RecipeError, match="must be text, not a number"):
        Recipe.from_voice_string(3)
    with pytest.raises(RecipeError, match="use one of fastapi, kokoro"):
        Recipe.from_voice_string("af_heart", style="openai")
    with pytest.raises(RecipeError, match="use one of fastapi, kokoro"):
        Recipe.single("af_heart").to_voice_string("espeak")


def test_subtracting_a_voice_is_guarded_by_the_ood_report(bundled_voices, stock_context):
    """Kokoro-FastAPI's ``a-b`` halves the difference of two voices: far from every stock voice, and the report says so.
    """
    pack = apply_recipe(Recipe.from_voice_string("af_bella-af_sky"), bundled_voices)
    assert ood_report(pack, bundled_voices, stock_context).out_of_distribution
    nearby = apply_recipe(Recipe.from_voice_string("af_bella(10)-af_sky(1)"), bundled_voices)
    assert np.abs(nearby).max() <= MAX_PACK_VALUE


voice_string_text = st.lists(
    st.sampled_from(["af_heart", "am_adam", "bf_emma", "af_one", "(", ")", "+", "-", ",", " ", "2", "0.5", ".", "0"]),
    max_size=12,
).map("".join)


@PROPERTY
@given(st.one_of(voice_string_text, st.text(max_size=40)))
def test_any_text_as_a_voice_string_gives_a_mix_whose_string_reads_back_or_one_clear_line(text):
    try:
        recipe = Recipe.from_voice_string(text)
    except RecipeError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) <= MAX_ERROR_CHARS and message.endswith("."), message
        return
    assert isinstance(recipe.base, Mix) and not recipe.edits
    for style in ("fastapi", "kokoro"):
        try:
            exported = recipe.to_voice_string(style)
        except RecipeError:
            continue
        again = Recipe.from_voice_string(exported, style)
        for layer in ("decoder", "prosody"):
            weights = {name: w for name, w in recipe.base.weights(layer).items() if w}
            assert again.base.weights(layer) == pytest.approx(weights, abs=1e-12)


# ------------------------------------------------------------------------------------------------ named attributes


def test_an_attribute_edit_adds_the_voices_calibrated_offset_to_every_row(bundled_voices):
    from explorer.attributes import load_axes

    recipe = Recipe.single("af_heart").with_edit(AttributeEdit("pitch", 2.0))
    moved = apply_recipe(recipe, bundled_voices)
    offset = load_axes().axis("pitch").offset(2.0, bundled_voices["af_heart"].pack)
    assert np.allclose(moved - bundled_voices["af_heart"].pack, offset[None, :].astype(np.float32), atol=1e-6)
    assert describe(recipe).splitlines()[-1] == "pitch +2 st"


def test_an_attribute_edit_travels_as_json_and_share_string(bundled_voices):
    recipe = Recipe.single("bm_george").with_edits([AttributeEdit("pace", -10), AttributeEdit("brightness", 5)])
    data = json.loads(recipe.to_json())
    assert data["edits"][0] == {"type": "attribute", "attribute": "pace", "amount": -10.0}
    assert Recipe.from_json(recipe.to_json()) == Recipe.from_token(recipe.to_token()) == recipe
    assert np.array_equal(apply_recipe(Recipe.from_token(recipe.to_token()), bundled_voices),
                          apply_recipe(recipe, bundled_voices))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"type": "attribute", "attribute": "loudness", "amount": 1}, "Attribute is 'loudness'; use one of pitch"),
        ({"type": "attribute", "attribute": "pitch", "amount": 99}, "Pitch amount (st) is 99; it must lie between"),
        ({"type": "attribute", "attribute": "pitch", "amount": True}, "Pitch amount (st)"),
        ({"type": "attribute", "attribute": "pace", "amount": "fast"}, "Pace amount (%)"),
        ({"type": "attribute", "attribute": "pace"}, "lacks amount"),
        ({"type": "attribute", "attribute": "pace", "amount": 1, "unit": "%"}, "unknown keys 'unit'"),
    ],
    ids=["unknown", "too-far", "bool", "text", "missing", "extra-key"],
)
def test_a_bad_attribute_edit_is_a_recipe_error(edit, message):
    data = {"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart"}]}, "edits": [edit]}
    with pytest.raises(RecipeError, match=re.escape(message)):
        Recipe.from_dict(data)


def test_attribute_edits_of_one_attribute_may_not_add_up_past_its_calibrated_range():
    from explorer.attributes import load_axes

    high = load_axes().axis("pitch").high
    many = [AttributeEdit("pitch", high / 2)] * 2
    assert len(Recipe.single("af_heart").with_edits(many).edits) == 2            # exactly the end: allowed
    with pytest.raises(RecipeError, match=r"The pitch edits add up to \+[\d.]+ st; together they must lie between"):
        Recipe.single("af_heart").with_edits([*many, AttributeEdit("pitch", high / 4)])
    with pytest.raises(RecipeError, match="add up to"):
        Recipe.from_dict({"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart"}]},
                          "edits": [{"type": "attribute", "attribute": "pitch", "amount": high}] * 32})


def test_a_missing_or_damaged_axes_file_is_a_recipe_error_naming_it(tmp_path, monkeypatch):
    from explorer import attributes

    monkeypatch.setattr(attributes, "AXES_PATH", tmp_path / "voice-axes.json")
    with pytest.raises(RecipeError, match=r"No voice axes file at '.*voice-axes.json': build it with"):
        AttributeEdit("pitch", 1.0)
    (tmp_path / "voice-axes.json").write_text("{")
    with pytest.raises(RecipeError, match="is damaged.*Rebuild it with `python -m explorer axes build`"):
        Recipe.from_token(Recipe.single("af_heart").to_token()).with_edit(AttributeEdit("pace", 5))
