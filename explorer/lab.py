"""The Voice Lab and A/B listening pages' logic: widget values to recipes and back, renders, sweeps, blind trials.

Four responsibilities, each free of Streamlit so it can be tested on its own:

1. ``LabState``: what the Lab's widgets hold (a base, PCA sliders on one layer, one centroid move, further edits),
   converted exactly to and from a ``Recipe`` and to and from the flat widget values a page keeps in session state.
   ``restore`` turns a share string (from a URL) into a state, or into the defaults and a warning.
2. Live readouts and renders: ``readout`` (nearest stock voices, out-of-distribution report, the map position),
   ``synthesize_cached`` (a render through a shared ``AudioCache``, so replaying never synthesises again), exports.
3. Sweeps: render one sentence at several amounts along an axis (PCA component, centroid move, centroid axis,
   interpolation ``t``) and measure where the edit stops being speech or stops being the voice.
4. A/B: which recipe each side plays, a seeded hidden X for blind trials, and the session's tally.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import altair as alt
import numpy as np
import pandas as pd

from explorer.analysis import LAYERS, nearest_voices, summary_vectors
from explorer.audio import SAMPLE_RATE, AudioCache, audio_cache_key
from explorer.errors import ExplorerError, NoSoundError, RecipeError
from explorer.recipe import (
    DIM_OPS,
    MAX_COMPONENTS,
    MAX_TOKEN_CHARS,
    METHODS,
    Base,
    CentroidAxis,
    CentroidMove,
    Component,
    DimEdit,
    Edit,
    Interpolation,
    Mix,
    OODReport,
    PCAStep,
    Recipe,
    RecipeContext,
    apply_recipe,
    ood_report,
)
from explorer.synth import FIRST_CHUNK_PHONEMES, RenderedChunk, Synthesis, prepare, synthesize
from explorer.voices import STYLE_DIM, VoiceSet, pack_bytes, validate_voice_name

if TYPE_CHECKING:
    from explorer.engines import Engine
    from explorer.meters import Meters, SweepPoint

__all__ = [
    "BlindTally",
    "BlindTrial",
    "LabState",
    "Readout",
    "Render",
    "Restored",
    "SweepPlan",
    "SweepResult",
    "SweepStep",
    "blind_x_audio",
    "centroid_axis_sweep",
    "centroid_sweep",
    "decoder_key",
    "dim_edit",
    "draw_trial",
    "export_files",
    "interpolation_sweep",
    "meter_rows",
    "meters_table",
    "pca_key",
    "pca_sweep",
    "prosody_key",
    "readout",
    "restore",
    "run_sweep",
    "share_url",
    "side_recipe",
    "sweep_amounts",
    "sweep_chart",
    "synthesize_cached",
]

# ------------------------------------------------------------------------------------------------ widget keys

BASE_MODE = "lab_base_mode"
"""``"mix"`` (blend voices, each half with its own weights) or ``"interpolate"`` (between two voices)."""
MIX_VOICES = "lab_mix_voices"
INTERP_A = "lab_interp_a"
INTERP_B = "lab_interp_b"
INTERP_T = "lab_interp_t"
INTERP_METHOD = "lab_interp_method"
PCA_LAYER = "lab_pca_layer"
PCA_COMPONENTS = "lab_pca_components"
"""0-based components that have a slider."""
CENTROID_MODE = "lab_centroid_mode"
CENTROID_KIND = "lab_centroid_kind"
CENTROID_KEY = "lab_centroid_key"
AXIS_FROM = "lab_axis_from"
AXIS_TO = "lab_axis_to"
CENTROID_AMOUNT = "lab_centroid_amount"
EXTRA_EDITS = "lab_extra_edits"
"""Not a widget: the dim edits added with the Lab's form, and any edits of a restored recipe the sliders cannot show."""

BASE_MODES = ("mix", "interpolate")
CENTROID_MODES = ("none", "toward", "axis")
DEFAULT_PCA_COMPONENTS = (0, 1, 2)
PCA_SLIDER_LIMIT = 5.0
"""PCA sliders span ±5 std (the stock voices lie within about ±3); larger steps of a restored recipe stay as edits."""
DEFAULT_AXES: dict[str, tuple[str, str]] = {
    "gender": ("male", "female"),
    "language": ("American English", "British English"),
}
"""Axis ends offered first for each centroid kind: male -> female, American -> British English."""
DIM_TARGETS = ("one dim", "range", "decoder half", "prosody half", "all dims")


def decoder_key(voice: str) -> str:
    """Return the widget key of ``voice``'s decoder (timbre) weight in the mix."""
    return f"lab_dec_{voice}"


def prosody_key(voice: str) -> str:
    """Return the widget key of ``voice``'s prosody weight in the mix."""
    return f"lab_pro_{voice}"


def pca_key(layer: str, component: int) -> str:
    """Return the widget key of the slider for 0-based ``component`` of ``layer``'s PCA."""
    return f"lab_pca_{layer}_{component}"


# ------------------------------------------------------------------------------------------------ Lab state


@dataclass(frozen=True)
class LabState:
    """What the Lab's widgets describe, in the order the recipe applies it.

    The recipe is ``base``, then one PCA step per nonzero slider of ``pca_layer`` (ascending component), then the
    centroid move or axis, then ``extra_edits`` in order. ``from_recipe`` maps any recipe onto this shape exactly:
    whatever the sliders cannot show (a second PCA layer, a PCA step beyond the slider range, a second centroid move)
    is kept in ``extra_edits``, so ``LabState.from_recipe(r).to_recipe() == r`` for every recipe.

    Attributes:
        base: a mix (voices with decoder and prosody weights) or an interpolation.
        pca_layer: "decoder", "prosody" or "both".
        pca_amounts: ``(component, amount)`` pairs, components 0-based, distinct and ascending, amounts nonzero and
            within ±``PCA_SLIDER_LIMIT`` std.
        centroid: the centroid move or axis (amount nonzero), or None.
        extra_edits: edits applied after all of the above.
    """

    base: Base
    pca_layer: str = "decoder"
    pca_amounts: tuple[tuple[int, float], ...] = ()
    centroid: CentroidMove | CentroidAxis | None = None
    extra_edits: tuple[Edit, ...] = ()

    def __post_init__(self) -> None:
        if self.pca_layer not in LAYERS:
            raise RecipeError(f"PCA layer {str(self.pca_layer)[:40]!r} is not one of {', '.join(LAYERS)}.")
        components = [component for component, _ in self.pca_amounts]
        if components != sorted(set(components)):
            raise RecipeError("PCA slider components must be distinct and in ascending order.")
        for component, amount in self.pca_amounts:
            if not _fits_slider(amount):
                raise RecipeError(
                    f"PCA slider PC{component + 1} is {amount:g}; sliders hold nonzero amounts within "
                    f"±{PCA_SLIDER_LIMIT:g} std."
                )
        if self.centroid is not None and self.centroid.amount == 0:
            raise RecipeError("A centroid move of 0 changes nothing; leave the centroid out instead.")
        self.to_recipe()  # validates every part (components, bounds, number of edits)

    @classmethod
    def default(cls, voices: Sequence[str], known: VoiceSet) -> LabState:
        """Return the starting state: an equal mix of ``voices`` (those loaded, at most 8), else the first voice."""
        names = [name for name in dict.fromkeys(voices) if name in known][:MAX_COMPONENTS] or known.names[:1]
        if not names:
            raise RecipeError("No voices are loaded, so the Lab has nothing to start from.")
        return cls(Mix(tuple(Component(name) for name in names)))

    def with_voices(self, voices: Sequence[str], known: VoiceSet) -> LabState:
        """Return a copy whose base is an equal mix of ``voices`` (those loaded), edits kept; unchanged if none is."""
        names = [name for name in dict.fromkeys(voices) if name in known][:MAX_COMPONENTS]
        if not names:
            return self
        return LabState(Mix(tuple(Component(name) for name in names)), self.pca_layer, self.pca_amounts,
                        self.centroid, self.extra_edits)

    def to_recipe(self) -> Recipe:
        """Return the recipe these widgets describe.

        Raises:
            RecipeError: a value out of bounds, or more than 32 edits in all.
        """
        steps: list[Edit] = [PCAStep(self.pca_layer, component, amount) for component, amount in self.pca_amounts]
        if self.centroid is not None:
            steps.append(self.centroid)
        return Recipe(self.base, (*steps, *self.extra_edits))

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> LabState:
        """Return the state whose ``to_recipe()`` is ``recipe``, putting on sliders what they can show."""
        edits = list(recipe.edits)
        layer = edits[0].layer if edits and isinstance(edits[0], PCAStep) else "decoder"
        amounts: list[tuple[int, float]] = []
        while edits and isinstance(edits[0], PCAStep) and edits[0].layer == layer and _fits_slider(edits[0].amount) \
                and (not amounts or edits[0].component > amounts[-1][0]):
            step = edits.pop(0)
            amounts.append((step.component, step.amount))
        centroid = None
        if edits and isinstance(edits[0], (CentroidMove, CentroidAxis)) and edits[0].amount != 0:
            centroid = edits.pop(0)
        return cls(recipe.base, layer, tuple(amounts), centroid, tuple(edits))

    def widget_values(self) -> dict[str, object]:
        """Return the value of every widget key ``from_widgets`` reads for this state (set them all on restore).

        Values a widget cannot show for this state (the interpolation's voices while mixing) are left out; the page
        gives those widgets its own defaults.
        """
        values: dict[str, object] = {}
        if isinstance(self.base, Mix):
            values[BASE_MODE] = "mix"
            values[MIX_VOICES] = list(self.base.voice_names)
            for component in self.base.components:
                values[decoder_key(component.voice)] = component.decoder
                values[prosody_key(component.voice)] = component.prosody
        else:
            values.update({BASE_MODE: "interpolate", INTERP_A: self.base.a, INTERP_B: self.base.b,
                           INTERP_T: self.base.t, INTERP_METHOD: self.base.method})
        amounts = dict(self.pca_amounts)
        components = sorted(set(DEFAULT_PCA_COMPONENTS) | set(amounts))
        values[PCA_LAYER] = self.pca_layer
        values[PCA_COMPONENTS] = components
        values.update({pca_key(self.pca_layer, c): amounts.get(c, 0.0) for c in components})
        if isinstance(self.centroid, CentroidMove):
            values.update({CENTROID_MODE: "toward", CENTROID_KIND: self.centroid.kind, CENTROID_KEY: self.centroid.key,
                           CENTROID_AMOUNT: self.centroid.amount})
        elif isinstance(self.centroid, CentroidAxis):
            values.update({CENTROID_MODE: "axis", CENTROID_KIND: self.centroid.kind, AXIS_FROM: self.centroid.from_key,
                           AXIS_TO: self.centroid.to_key, CENTROID_AMOUNT: self.centroid.amount})
        else:
            values[CENTROID_MODE] = "none"
        values[EXTRA_EDITS] = tuple(self.extra_edits)
        return values

    @classmethod
    def from_widgets(cls, values: Mapping[str, object]) -> LabState:
        """Return the state the widget values describe (``values`` is usually ``st.session_state``).

        Missing weights count as 1, missing sliders as 0, a missing mode as "mix" / no centroid.

        Raises:
            RecipeError: no voice picked, all of a half's weights zero, or any value out of bounds.
        """
        if values.get(BASE_MODE, "mix") == "interpolate":
            base: Base = Interpolation(values.get(INTERP_A), values.get(INTERP_B), values.get(INTERP_T, 0.5),
                                       values.get(INTERP_METHOD, METHODS[0]))
        else:
            names = list(values.get(MIX_VOICES) or ())
            if not names:
                raise RecipeError("Pick at least one voice to start from.")
            if len(names) > MAX_COMPONENTS:
                raise RecipeError(f"A mix takes at most {MAX_COMPONENTS} voices; {len(names)} are picked.")
            base = Mix(tuple(Component(name, values.get(decoder_key(name), 1.0), values.get(prosody_key(name), 1.0))
                             for name in names))
        layer = str(values.get(PCA_LAYER, "decoder"))
        components = sorted(set(values.get(PCA_COMPONENTS, DEFAULT_PCA_COMPONENTS)))
        amounts = tuple((c, float(values.get(pca_key(layer, c), 0.0))) for c in components)
        centroid: CentroidMove | CentroidAxis | None = None
        mode = values.get(CENTROID_MODE, "none")
        amount = values.get(CENTROID_AMOUNT, 0.0)
        if mode == "toward" and amount:
            centroid = CentroidMove(values.get(CENTROID_KIND), values.get(CENTROID_KEY), amount)
        elif mode == "axis" and amount:
            centroid = CentroidAxis(values.get(CENTROID_KIND), values.get(AXIS_FROM), values.get(AXIS_TO), amount)
        return cls(base, layer, tuple(pair for pair in amounts if pair[1]), centroid,
                   tuple(values.get(EXTRA_EDITS, ())))


def _fits_slider(amount: float) -> bool:
    return amount != 0 and abs(amount) <= PCA_SLIDER_LIMIT


@dataclass(frozen=True)
class Restored:
    """The Lab state a share string gave, or the defaults with a warning saying why the string was not used."""

    state: LabState
    recipe: Recipe
    warning: str | None = None


def restore(token: str | None, voices: VoiceSet, context: RecipeContext, default_voices: Sequence[str]) -> Restored:
    """Return the Lab state of a share string from a URL or session; never raises for a bad string.

    Only ``Recipe.from_token`` parses it (never ``load_recipe``, which reads files), and the recipe is applied once
    to prove its voices, centroids and components exist here.

    Args:
        token: the share string, or None/empty for the defaults.
        voices: the session's voices, where the recipe's names are looked up.
        context: the stock reference for PCA steps and centroids.
        default_voices: the voices of the default mix (the session's ``lab_voices``).

    Returns:
        The restored state, or the defaults and a one-sentence warning (to be escaped before display).
    """
    default = LabState.default(default_voices, voices)
    if not token:
        return Restored(default, default.to_recipe())
    try:
        recipe = Recipe.from_token(token)
        apply_recipe(recipe, voices, context)
    except ExplorerError as error:
        return Restored(default, default.to_recipe(), f"The recipe in the link was not loaded: {error} "
                                                      "The Lab starts from the defaults.")
    return Restored(LabState.from_recipe(recipe), recipe)


def dim_edit(op: str, target: str, *, dim: int = 0, dims: tuple[int, int] = (0, 0), value: float = 0.0) -> DimEdit:
    """Return the dim edit the Lab's slicing form describes.

    Args:
        op: "set", "offset", "scale" or "zero" (``value`` is ignored for zero).
        target: one of ``DIM_TARGETS``: "one dim" (``dim``), "range" (``dims``, both ends included),
            "decoder half" (0-127), "prosody half" (128-255) or "all dims".
        dim: the dim for "one dim".
        dims: first and last dim for "range".
        value: the value set, the offset or the scale factor.

    Raises:
        RecipeError: unknown op or target, dims out of 0-255, or a value out of bounds.
    """
    if op not in DIM_OPS:
        raise RecipeError(f"Dim edit operation {str(op)[:40]!r} is not one of {', '.join(DIM_OPS)}.")
    value = 0.0 if op == "zero" else value
    if target == "one dim":
        return DimEdit.single(op, dim, value)
    if target == "range":
        start, last = dims
        if isinstance(last, bool) or not isinstance(last, (int, np.integer)):
            raise RecipeError(f"The last dim of a range must be a whole number, not {str(last)[:40]!r}.")
        return DimEdit(op, start, int(last) + 1, value)
    if target in ("decoder half", "prosody half"):
        return DimEdit.half(op, target.split()[0], value)
    if target == "all dims":
        return DimEdit(op, 0, STYLE_DIM, value)
    raise RecipeError(f"Dim target {str(target)[:40]!r} is not one of {', '.join(DIM_TARGETS)}.")


# ------------------------------------------------------------------------------------------------ readouts, renders


@dataclass(frozen=True)
class Readout:
    """What the Lab shows while sliding: where the pack sits among the stock voices.

    Attributes:
        vector: the pack's mean over rows (the summary vector the PCA map and OOD report use).
        nearest: the stock voices most similar in direction, ``(name, cosine)``, best first.
        ood: the out-of-distribution report.
    """

    vector: np.ndarray = field(repr=False)
    nearest: tuple[tuple[str, float], ...]
    ood: OODReport


def readout(pack: np.ndarray, voices: VoiceSet, context: RecipeContext, k: int = 5) -> Readout:
    """Return the live readout of ``pack`` against the stock voices of ``context``."""
    vector = summary_vectors(np.asarray(pack)[None])[0]
    nearest = nearest_voices(vector, context.vectors, list(context.names), k=k, metric="cosine")
    return Readout(vector, tuple(nearest), ood_report(pack, voices, context))


@dataclass(frozen=True)
class Render:
    """One synthesis and its audio-cache key (which identifies the audio for meters and replays)."""

    synthesis: Synthesis
    key: str
    cached: bool

    @property
    def audio(self) -> np.ndarray:
        """The rendered audio (float32, 24 kHz)."""
        return self.synthesis.audio


def synthesize_cached(
    text: str,
    *,
    style: np.ndarray,
    engine: Engine,
    cache: AudioCache,
    lang: str = "a",
    speed: float = 1.0,
    on_chunk: Callable[[RenderedChunk], None] | None = None,
) -> Render:
    """Speak ``text`` with ``style``, or return the cached synthesis of exactly this request.

    Every render of the app starts with a short first chunk (``FIRST_CHUNK_PHONEMES``): ``on_chunk`` gets it as soon
    as it is rendered, to play while the rest renders, and the Lab, A/B and Voices pages share one chunking, so one
    page's render replays on another. The key is ``audio_cache_key`` of the engine, its weights, the chunks'
    phonemes, the style and the speed: the same text in two languages, or two packs, never share audio. The cached
    audio is read-only, as every session replaying it gets the same array. (The text is converted to phonemes once
    for the key and again inside ``synthesize``: cheap next to rendering, and it keeps one synthesis path.)

    Args:
        text: what to say, in language ``lang``.
        style: a voicepack or a 256-vector.
        engine: renders on a cache miss.
        cache: the shared audio cache.
        lang: Kokoro language code.
        speed: speaking rate, 0.25-4.
        on_chunk: called with each chunk as it is rendered; never called on a cache hit (the whole audio is there).

    Returns:
        The synthesis, its cache key, and whether it came from the cache.

    Raises:
        SynthesisError: text, style or speed the engine refuses.
    """
    plan = prepare(text, engine=engine, lang=lang, first_chunk_phonemes=FIRST_CHUNK_PHONEMES)
    key = audio_cache_key(engine.name, engine.weights, [chunk.phonemes for chunk in plan.chunks], style, speed)
    hit = cache.get(key)
    if isinstance(hit, Synthesis):
        return Render(hit, key, True)
    result = synthesize(text, style=style, engine=engine, lang=lang, speed=speed,
                        first_chunk_phonemes=FIRST_CHUNK_PHONEMES, on_chunk=on_chunk)
    result.audio.setflags(write=False)  # shared with every session that replays it
    cache.put(key, result)
    return Render(result, key, False)


def export_files(pack: np.ndarray, recipe: Recipe, name: str) -> dict[str, Callable[[], bytes]]:
    """Return ``{filename: build}`` for the pack as ``.pt`` and ``.npz`` ([510, 1, 256]) and its recipe as JSON.

    Each file is built only when its ``build()`` is called (a download button calls it on the click): writing a
    ``.pt`` imports torch, which would otherwise add a second to the Lab's first run and time to every rerun. The
    name is checked at once, so a bad one is refused before any button shows.

    Raises:
        VoiceError: ``name`` is not a valid voice name (letters, digits, ``_.-``, at most 64).
    """
    name = validate_voice_name(name)
    pack = np.array(pack, dtype=np.float32)  # a copy: later edits of the caller's array do not change the download
    text = recipe.to_json()
    return {
        f"{name}.pt": lambda: pack_bytes(pack, ".pt", name),
        f"{name}.npz": lambda: pack_bytes(pack, ".npz", name),
        f"{name}.recipe.json": lambda: text.encode("utf-8"),
    }


def share_url(page_url: str, token: str) -> str:
    """Return ``page_url`` with its query string replaced by ``recipe=<token>`` (fragment dropped)."""
    parts = urlsplit(page_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode({"recipe": token}), ""))


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def meter_rows(result: Meters) -> dict[str, str]:
    """Return the meters of one render as ``{measure: text}``, every measure present, in display order.

    A meter that could not run reads ``unavailable: <reason>``; one not asked for reads "not measured".
    """
    sound = result.acoustics
    pitch_range = (f"{sound.f0_low_hz:.0f}–{sound.f0_high_hz:.0f} Hz"
                   if sound.f0_low_hz is not None and sound.f0_high_hz is not None else "–")
    rows = {
        "Duration": _number(sound.duration_s, " s", 2),
        "Median F0": _number(sound.f0_median_hz, " Hz", 0),
        "F0 range (5–95 %)": pitch_range,
        "Voiced share": f"{sound.voiced_fraction:.0%}",
        "Spectral centroid": _number(sound.spectral_centroid_hz, " Hz", 0),
        "Loudness": _number(sound.loudness_lufs, " LUFS", 1),
    }
    if result.intelligibility is not None:
        rows["Word error rate"] = f"{result.intelligibility.wer:.0%}"
        rows["Transcript"] = result.intelligibility.transcript or "(nothing heard)"
    else:
        reason = result.unavailable.get("intelligibility")
        rows["Word error rate"] = f"unavailable: {reason}" if reason else "not measured"
    if result.similarity:
        rows["Sounds like"] = ", ".join(f"{name} {score:.2f}" for name, score in result.similarity)
    else:
        reason = result.unavailable.get("similarity")
        rows["Sounds like"] = f"unavailable: {reason}" if reason else "not measured"
    return rows


def meters_table(results: Mapping[str, Meters]) -> pd.DataFrame:
    """Return the meters of several renders side by side: one row per measure, one column per render."""
    return pd.DataFrame({label: meter_rows(result) for label, result in results.items()})


# ------------------------------------------------------------------------------------------------ sweeps

SWEEP_AXES = ("PCA component", "Centroid move", "Centroid axis", "Interpolation t")
MIN_SWEEP_STEPS = 2
MAX_SWEEP_STEPS = 12
SWEEP_TEXT = "The quick brown fox jumps over the lazy dog."
SWEEP_MEASURES = {"wer": "word error rate", "similarity_to_start": "similarity to start",
                  "similarity_to_end": "similarity to end"}
"""The sweep chart's measures: ``SweepPoint`` field -> legend label."""


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
        return any(getattr(point, name) is not None for point in self.points for name in SWEEP_MEASURES)


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


def sweep_chart(result: SweepResult) -> alt.Chart:
    """Return word error rate and similarity to the start and end voices against the amount (lines with points).

    Measures that could not run (None) are left out, so the chart is empty when no meter could run
    (``SweepResult.measured`` says so beforehand).
    """
    frame = result.table()
    long = frame.melt(id_vars=["amount", "transcript"],
                      value_vars=["wer", "similarity_to_start", "similarity_to_end"],
                      var_name="measure", value_name="value").dropna(subset=["value"])
    long["measure"] = long["measure"].map(SWEEP_MEASURES)
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("amount:Q", title=result.plan.axis),
            y=alt.Y("value:Q", title="Word error rate / similarity"),
            color=alt.Color("measure:N", title="Measure", scale=alt.Scale(domain=list(SWEEP_MEASURES.values()))),
            tooltip=["amount:Q", "measure:N", alt.Tooltip("value:Q", format=".3f"), "transcript:N"],
        )
        .properties(height=280, title="Where the edit stops being speech")
    )


# ------------------------------------------------------------------------------------------------ A/B listening

AB_SOURCES = ("stock voice", "Lab recipe", "recipe string")
MAX_TOKEN_INPUT_CHARS = MAX_TOKEN_CHARS + 1024
"""Longest pasted recipe string or share link (a share string is at most 8 KiB; a link adds the address)."""
SIDES = ("A", "B")
BLIND_X_GAIN = 10 ** (-0.05 / 20)
"""X plays 0.05 dB quieter than its side: inaudible, but its WAV differs, so the page source does not give X away
(Streamlit names media files by their content)."""


def side_recipe(source: str, *, voice: str | None = None, token: str | None = None,
                lab_token: str | None = None) -> Recipe:
    """Return the recipe one A/B side plays.

    Args:
        source: one of ``AB_SOURCES``.
        voice: the stock voice, for "stock voice".
        token: the pasted share string, for "recipe string".
        lab_token: the Lab's current share string (session ``recipe_token``), for "Lab recipe".

    Raises:
        RecipeError: unknown source, a malformed string, or no Lab recipe yet.
    """
    if source == "stock voice":
        return Recipe.single(voice)
    if source == "Lab recipe":
        if not lab_token:
            raise RecipeError("The Voice Lab has no recipe yet: open the Voice Lab and make one first.")
        return Recipe.from_token(lab_token)
    if source == "recipe string":
        if not token or not token.strip():
            raise RecipeError("Paste a recipe string (the Lab's share link holds one after 'recipe=').")
        return Recipe.from_token(token.strip().rsplit("recipe=", 1)[-1].split("&", 1)[0])
    raise RecipeError(f"A/B source {str(source)[:40]!r} is not one of {', '.join(AB_SOURCES)}.")


@dataclass(frozen=True)
class BlindTrial:
    """One blind trial: which side the hidden X plays."""

    index: int
    x_is: str


def draw_trial(seed: int, index: int) -> BlindTrial:
    """Return trial ``index`` of a session seeded with ``seed``: the same pair always hides the same X."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])
    return BlindTrial(int(index), SIDES[int(rng.integers(2))])


def blind_x_audio(audio: np.ndarray) -> np.ndarray:
    """Return X's audio: its side's audio at ``BLIND_X_GAIN`` (see there)."""
    return (np.asarray(audio, dtype=np.float32) * BLIND_X_GAIN).astype(np.float32)


@dataclass(frozen=True)
class BlindTally:
    """The session's blind trials: how many, and how many times the listener matched X to its side."""

    trials: int = 0
    correct: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> BlindTally:
        """Return the tally kept in session state (``{"trials": n, "correct": k}``); anything else is a fresh one."""
        try:
            trials, correct = int(data["trials"]), int(data["correct"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            return cls()
        return cls(trials, correct) if 0 <= correct <= trials else cls()

    def to_dict(self) -> dict[str, int]:
        """Return the form kept in session state."""
        return {"trials": self.trials, "correct": self.correct}

    def record(self, trial: BlindTrial, choice: str) -> BlindTally:
        """Return the tally after the listener said X is ``choice`` ("A" or "B") in ``trial``.

        Raises:
            ExplorerError: ``choice`` is not "A" or "B".
        """
        if choice not in SIDES:
            raise ExplorerError(f"A blind choice is A or B, not {str(choice)[:10]!r}.")
        return BlindTally(self.trials + 1, self.correct + (choice == trial.x_is))

    @property
    def p_value(self) -> float:
        """Chance of doing at least this well by guessing (one-sided binomial, p = 1/2); 1.0 before any trial."""
        return sum(math.comb(self.trials, k) for k in range(self.correct, self.trials + 1)) / 2**self.trials

    def summary(self) -> str:
        """Return e.g. "7 of 8 correct (88 %); guessing does this well with probability 0.035"."""
        if not self.trials:
            return "No blind trials yet."
        return (f"{self.correct} of {self.trials} correct ({self.correct / self.trials:.0%}); guessing does this "
                f"well with probability {self.p_value:.3g}.")
