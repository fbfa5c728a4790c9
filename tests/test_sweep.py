"""explorer.sweep: each sweep adds its edit to the current recipe, renders each recipe once, measures against the start
and end voices, and marks where speech stopped; the sweep chart plots what was measured."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import charts, sweep
from explorer.errors import NoSoundError, RecipeError
from explorer.meters import SweepPoint
from explorer.recipe import (
    CentroidAxis,
    CentroidMove,
    Interpolation,
    PCAStep,
    Recipe,
    apply_recipe,
)
from tests.conftest import full_lab_state

# ----------------------------------------------------------------------------------------------- sweeps


def test_sweep_amounts_are_even_and_bounded():
    assert sweep.sweep_amounts(-1, 1, 5) == (-1.0, -0.5, 0.0, 0.5, 1.0)
    for low, high, count in [(0, 1, 1), (0, 1, 13), (1, 1, 3), (2, 1, 3), (0, float("nan"), 3), (0, 1, 2.0)]:
        with pytest.raises(RecipeError):
            sweep.sweep_amounts(low, high, count)


def test_each_sweep_adds_its_edit_to_the_current_recipe():
    recipe = full_lab_state().to_recipe()
    amounts = (-1.0, 0.0, 1.0)
    plans = {
        "pca": (sweep.pca_sweep(recipe, "decoder", 4, amounts), PCAStep("decoder", 4, 1.0)),
        "toward": (sweep.centroid_sweep(recipe, "gender", "male", amounts), CentroidMove("gender", "male", 1.0)),
        "axis": (sweep.centroid_axis_sweep(recipe, "gender", "male", "female", amounts),
                 CentroidAxis("gender", "male", "female", 1.0)),
    }
    for plan, last in plans.values():
        assert [step.amount for step in plan.steps] == list(amounts)
        assert plan.steps[-1].recipe == recipe.with_edit(last)
        assert (plan.start, plan.end) == (plan.steps[0].recipe, plan.steps[-1].recipe)


def test_an_interpolation_sweep_compares_with_the_two_voices_themselves():
    recipe = full_lab_state().to_recipe()
    plan = sweep.interpolation_sweep(recipe, "af_heart", "am_adam", (0.25, 0.75), "slerp")
    assert plan.steps[0].recipe == Recipe(Interpolation("af_heart", "am_adam", 0.25, "slerp"), recipe.edits)
    assert plan.start == Recipe(Interpolation("af_heart", "am_adam", 0.0, "slerp"), recipe.edits)
    assert plan.end.base.t == 1.0


def test_a_sweep_out_of_a_recipes_bounds_raises_before_rendering():
    with pytest.raises(RecipeError):
        sweep.pca_sweep(Recipe.single("af_heart"), "decoder", 0, (0.0, 11.0))


def test_a_sweep_renders_each_recipe_once_and_measures_against_start_and_end(bundled_voices, stock_context):
    plan = sweep.interpolation_sweep(Recipe.single("af_heart"), "af_heart", "am_adam", (0.0, 0.5, 1.0, 1.5))
    rendered, progress, measured = [], [], {}

    def render(pack):
        rendered.append(pack)
        return np.full(100, float(len(rendered)), np.float32)

    def measure(renders, text, start, end):
        measured.update(renders=renders, text=text, start=start, end=end)
        return [SweepPoint(amount, 0.0, 1.0, 0.5, None, 1.0) for amount, _ in renders]

    result = sweep.run_sweep(plan, voices=bundled_voices, context=stock_context, render=render, text="Hi.", measure=measure,
                           progress=lambda done, what: progress.append(done))
    assert len(rendered) == 4  # t=0 and t=1 are steps and also the start and end voices
    assert [amount for amount, _ in measured["renders"]] == [0.0, 0.5, 1.0, 1.5]
    assert measured["start"][0] == 1.0 and measured["end"][0] == 3.0 and measured["text"] == "Hi."
    assert progress[-1] == 1.0
    assert [clip[0] for clip in result.audio] == [1.0, 2.0, 3.0, 4.0]
    assert list(result.table().amount) == [0.0, 0.5, 1.0, 1.5]


def test_a_sweep_step_the_model_renders_as_no_sound_is_where_speech_stopped_not_a_failure(bundled_voices, stock_context):
    """A sweep far past the stock voices reaches styles the model renders as silence or NaN: the sweep still ends,
    that step heard as no words (WER 1) with nothing else measured, and the end voice's similarity is not measured
    against another step's render."""
    plan = sweep.pca_sweep(Recipe.single("af_heart"), "decoder", 0, (0.0, 4.0, 8.0))
    measured = {}

    heart = bundled_voices["af_heart"].pack
    farthest_sounding = np.abs(apply_recipe(plan.steps[1].recipe, bundled_voices, stock_context) - heart).max()

    def render(pack):
        if np.abs(pack - heart).max() > farthest_sounding:
            raise NoSoundError("This voice renders silence: its style is far outside the stock voices.")
        return np.ones(100, np.float32)

    def measure(renders, text, start, end):
        measured.update(amounts=[amount for amount, _ in renders], start=start, end=end)
        return [SweepPoint(amount, 0.0, 1.0, 0.5, 200.0, 1.0, "hi") for amount, _ in renders]

    result = sweep.run_sweep(plan, voices=bundled_voices, context=stock_context, render=render, measure=measure)
    silent = [point.amount for point in result.points if point.transcript.startswith("(no sound")]
    assert silent == [8.0] and measured["amounts"] == [0.0, 4.0]
    for point, clip in zip(result.points, result.audio):
        if point.amount in silent:
            assert (point.wer, point.similarity_to_start, point.f0_median_hz, clip.size) == (1.0, None, None, 0)
    assert not measured["end"].any()  # the end (8 std) has no sound: compared with silence, never a step's render


def test_the_sweep_chart_plots_what_was_measured_and_skips_what_was_not():
    plan = sweep.pca_sweep(Recipe.single("af_heart"), "decoder", 0, (0.0, 1.0))
    points = (SweepPoint(0.0, 0.0, 1.0, 0.6, 180.0, 1.0, "hi"), SweepPoint(1.0, None, 0.7, 1.0, 170.0, 1.0))
    result = sweep.SweepResult(plan, (np.zeros(10), np.zeros(10)), points)
    chart = charts.sweep_chart(result.table(), result.plan.axis)
    assert sorted(chart.data.measure.unique()) == ["similarity to end", "similarity to start", "word error rate"]
    assert len(chart.data) == 5 and result.measured
    unmeasured = sweep.SweepResult(plan, (np.zeros(10),) * 2,
                                 tuple(SweepPoint(a, None, None, None, 180.0, 1.0) for a in (0.0, 1.0)))
    assert not unmeasured.measured and charts.sweep_chart(unmeasured.table(), "x").data.empty
