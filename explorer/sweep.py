"""Sweeps: render one sentence at several amounts along an axis of the voice space and measure each render.

An axis is a PCA component, a move toward a centroid, the axis between two centroids, or the ``t`` of an
interpolation between two voices. The meters (word error rate against the sentence, speaker similarity to the start
and end voices, pitch, duration) say where an edit stops being speech or stops being the voice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from explorer.audio import SAMPLE_RATE
from explorer.errors import NoSoundError, RecipeError
from explorer.recipe import CentroidAxis, CentroidMove, Interpolation, PCAStep, Recipe, RecipeContext, apply_recipe
from explorer.voices import VoiceSet

if TYPE_CHECKING:
    import pandas as pd

    from explorer.meters import SweepPoint

__all__ = [
    "MAX_SWEEP_STEPS",
    "MIN_SWEEP_STEPS",
    "SWEEP_AXES",
    "SWEEP_TEXT",
    "SweepPlan",
    "SweepResult",
    "SweepStep",
    "centroid_axis_sweep",
    "centroid_sweep",
    "interpolation_sweep",
    "pca_sweep",
    "run_sweep",
    "sweep_amounts",
]

SWEEP_AXES = ("PCA component", "Centroid move", "Centroid axis", "Interpolation t")
"""What a sweep can move along (one ``*_sweep`` function each)."""
MIN_SWEEP_STEPS = 2
"""Fewest renders a sweep makes: its two ends."""
MAX_SWEEP_STEPS = 12
"""Most renders a sweep makes, each measured by the recogniser and the speaker encoder."""
SWEEP_TEXT = "The quick brown fox jumps over the lazy dog."
"""The sentence a sweep speaks unless it is given another."""
_MEASURES = ("wer", "similarity_to_start", "similarity_to_end")
"""The meters a sweep chart shows; a sweep with none of them measured has nothing to chart."""


@dataclass(frozen=True)
class SweepStep:
    """One point of a sweep: how far along the axis, and the recipe rendered there."""

    amount: float
    recipe: Recipe


@dataclass(frozen=True)
class SweepPlan:
    """The recipes a sweep renders, and the start and end voices its renders are compared with.

    Attributes:
        axis: what is swept, in words (the chart's x axis title).
        steps: the amounts and their recipes, in order.
        start: the recipe of the start voice (the first step; voice ``a`` for an interpolation).
        end: the recipe of the end voice (the last step; voice ``b`` for an interpolation).
    """

    axis: str
    steps: tuple[SweepStep, ...]
    start: Recipe
    end: Recipe


def sweep_amounts(low: float, high: float, count: int) -> tuple[float, ...]:
    """Return ``count`` evenly spaced amounts from ``low`` to ``high`` (both included), rounded to 4 decimals.

    Raises:
        RecipeError: ``count`` outside 2-12, ``low`` not below ``high``, or a bound not finite.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not MIN_SWEEP_STEPS <= count <= MAX_SWEEP_STEPS:
        raise RecipeError(f"A sweep takes {MIN_SWEEP_STEPS}-{MAX_SWEEP_STEPS} steps; {count!r} were asked for.")
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise RecipeError(f"A sweep runs from a lower to a higher amount; got {low:g} to {high:g}.")
    return tuple(round(float(value), 4) for value in np.linspace(low, high, count))


def _plan(axis: str, recipe_at: Callable[[float], Recipe], amounts: Sequence[float]) -> SweepPlan:
    steps = tuple(SweepStep(float(amount), recipe_at(float(amount))) for amount in amounts)
    return SweepPlan(axis, steps, steps[0].recipe, steps[-1].recipe)


def pca_sweep(recipe: Recipe, layer: str, component: int, amounts: Sequence[float]) -> SweepPlan:
    """Return the sweep adding a step along 0-based ``component`` of ``layer`` to ``recipe``, one per amount (std)."""
    return _plan(f"{layer} PC{component + 1} (std)", lambda a: recipe.with_edit(PCAStep(layer, component, a)), amounts)


def centroid_sweep(recipe: Recipe, kind: str, key: str, amounts: Sequence[float]) -> SweepPlan:
    """Return the sweep moving ``recipe`` toward a centroid by each amount (1 lands on it)."""
    return _plan(f"toward {kind} '{key}'", lambda a: recipe.with_edit(CentroidMove(kind, key, a)), amounts)


def centroid_axis_sweep(recipe: Recipe, kind: str, from_key: str, to_key: str, amounts: Sequence[float]) -> SweepPlan:
    """Return the sweep moving ``recipe`` along the axis from one centroid to another by each amount."""
    return _plan(f"{kind} axis '{from_key}' -> '{to_key}'",
                 lambda a: recipe.with_edit(CentroidAxis(kind, from_key, to_key, a)), amounts)


def interpolation_sweep(recipe: Recipe, a: str, b: str, amounts: Sequence[float], method: str = "linear") -> SweepPlan:
    """Return the sweep from voice ``a`` (t=0) to voice ``b`` (t=1) with ``recipe``'s edits on top.

    The start and end voices are ``a`` and ``b`` themselves (t=0 and t=1, with the edits), whatever the amounts.
    """
    def at(t: float) -> Recipe:
        return Recipe(Interpolation(a, b, t, method), recipe.edits)

    plan = _plan(f"{method} t from {a} to {b}", at, amounts)
    return SweepPlan(plan.axis, plan.steps, at(0.0), at(1.0))


@dataclass(frozen=True)
class SweepResult:
    """A sweep's renders and their meters, in step order."""

    plan: SweepPlan
    audio: tuple[np.ndarray, ...] = field(repr=False)
    points: tuple[SweepPoint, ...]

    def table(self) -> pd.DataFrame:
        """Return one row per step (amount, WER, similarities, pitch, duration, transcript)."""
        from explorer.meters import sweep_table

        return sweep_table(self.points)

    @property
    def measured(self) -> bool:
        """True when the recogniser or the speaker encoder gave at least one value."""
        return any(getattr(point, name) is not None for point in self.points for name in _MEASURES)


def run_sweep(
    plan: SweepPlan,
    *,
    voices: VoiceSet,
    context: RecipeContext,
    render: Callable[[np.ndarray], np.ndarray],
    text: str = SWEEP_TEXT,
    measure: Callable[..., list[SweepPoint]] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> SweepResult:
    """Render every step of ``plan`` and measure it.

    Args:
        plan: from one of the ``*_sweep`` functions.
        voices: where the recipes' voices are looked up.
        context: the stock reference for PCA steps and centroids.
        render: pack -> audio (24 kHz); the page passes a cached synthesis of ``text``.
        text: the sentence every step speaks (the reference for the word error rate).
        measure: ``meters.sweep`` by default (tests pass a fake).
        progress: told ``(done 0-1, what)`` after each render.

    Returns:
        The audio of each step and one ``SweepPoint`` per step. A step the model renders as no sound (its style is
        too far out, ``NoSoundError``) is where speech stopped: its audio is empty, its word error rate 1 (no word
        heard), the rest unmeasured, and its transcript says why.

    Raises:
        RecipeError: a step's recipe cannot be applied here.
        SynthesisError: the engine refused the text.
    """
    if measure is None:
        from explorer.meters import sweep as measure  # scipy and the meters load only when a sweep runs
    renders: dict[Recipe, np.ndarray | None] = {}
    wanted = [step.recipe for step in plan.steps] + [plan.start, plan.end]
    unique = list(dict.fromkeys(wanted))
    for index, recipe in enumerate(unique, 1):
        try:
            renders[recipe] = render(apply_recipe(recipe, voices, context))
        except NoSoundError:
            renders[recipe] = None
        if progress:
            progress(index / len(unique), f"Rendered {index} of {len(unique)}")
    sounding = [(step.amount, renders[step.recipe]) for step in plan.steps if renders[step.recipe] is not None]
    silence = np.zeros(SAMPLE_RATE // 10, np.float32)  # what a listener hears of a no-sound start or end
    start, end = (silence if renders[recipe] is None else renders[recipe] for recipe in (plan.start, plan.end))
    measured = iter(measure(sounding, text, start=start, end=end) if sounding else [])
    points = tuple(next(measured) if renders[step.recipe] is not None else _no_sound_point(step.amount)
                   for step in plan.steps)
    audio = tuple(np.zeros(0, np.float32) if renders[step.recipe] is None else renders[step.recipe]
                  for step in plan.steps)
    return SweepResult(plan, audio, points)


def _no_sound_point(amount: float) -> SweepPoint:
    """The meters of a sweep step the model rendered as no sound: no word heard, nothing else to measure."""
    from explorer.meters import SweepPoint

    return SweepPoint(amount=float(amount), wer=1.0, similarity_to_start=None, similarity_to_end=None,
                      f0_median_hz=None, duration_s=0.0, transcript="(no sound: the style is too far out)")
