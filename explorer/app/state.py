"""Every key the app keeps in ``st.session_state``, in one place, and the Lab's widgets as a recipe.

A key read or written by more than one page lives in ``STATE_DEFAULTS`` (set once per session by
``ui.init_state``); the others belong to one page's widgets and are grouped by page below. Pages and ``ui`` name
keys only through this module (``tests/test_layers.py`` holds them to it), so a key is spelt once.

``LabState`` is what the Lab's widgets hold (a base, PCA sliders on one layer, one centroid move, further edits),
converted exactly to and from a ``Recipe`` and to and from the flat widget values a page keeps in session state;
``restore`` turns a share string (from a URL) into a state, or into the defaults and a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
from dataclasses import dataclass

import numpy as np

from explorer.analysis import LAYERS
from explorer.attributes import ATTRIBUTES
from explorer.errors import ExplorerError, RecipeError
from explorer.g2p import SAMPLE_SENTENCES
from explorer.recipe import (
    AttributeEdit,
    DIM_OPS,
    MAX_COMPONENTS,
    METHODS,
    Base,
    CentroidAxis,
    CentroidMove,
    Component,
    DimEdit,
    Edit,
    Interpolation,
    Mix,
    PCAStep,
    Recipe,
    RecipeContext,
    apply_recipe,
)
from explorer.sweep import SWEEP_AXES
from explorer.voices import STYLE_DIM, VoiceSet

__all__ = [
    "STATE_DEFAULTS",
    "LabState",
    "Restored",
    "ab_player_key",
    "ab_score_key",
    "ab_choice_key",
    "ab_download_key",
    "attribute_key",
    "ab_side_key",
    "decoder_key",
    "dim_edit",
    "download_key",
    "edit_remove_key",
    "lab_recipe_to_come",
    "lab_history_key",
    "pca_key",
    "prosody_key",
    "restore",
    "sweep_centroid_key",
    "sweep_range_key",
    "voices_filter_key",
    "voices_text_key",
]

DEFAULT_TEXT = SAMPLE_SENTENCES["a"]
DEFAULT_VOICE = "af_heart"

# ------------------------------------------------------------------------------------------------ session-wide

SAMPLE_TEXT = "sample_text"
"""The sample text every page speaks (the Voices page's text box edits it too)."""
ENGINE_KIND = "engine_kind"
"""The engine kind the sidebar chose (``ENGINE_KINDS``)."""
LANG = "lang"
"""The Kokoro language code of the sample text."""
SPEED = "speed"
"""The speaking rate, 0.5-2 in the app."""
UPLOADED_VOICES = "uploaded_voices"
"""Voices this session added (uploads, Hub repos), on top of the bundled ones."""
LAB_VOICES = "lab_voices"
"""The voices the Lab starts its mix from (the Map's selection)."""
RECIPE_TOKEN = "recipe_token"
"""The Lab's current share string: A/B's "Lab recipe" side and the Map's marker read it."""
BLIND_TALLY = "blind_tally"
"""The A/B page's blind trials (``BlindTally.to_dict``)."""
PREFERENCE_TALLY = "preference_tally"
"""The A/B page's preference trials (``PreferenceTally.to_dict``)."""
RATING_SHEET = "rating_sheet"
"""The A/B page's rating screens (``RatingSheet.to_dict``)."""
ANALYSIS_ROW = "analysis_row"
"""``"mean"`` or a row: the summary vector every analysis page uses."""

STATE_DEFAULTS: dict[str, object] = {
    SAMPLE_TEXT: DEFAULT_TEXT,
    ENGINE_KIND: "auto",
    LANG: "a",
    SPEED: 1.0,
    UPLOADED_VOICES: (),
    LAB_VOICES: (DEFAULT_VOICE,),
    RECIPE_TOKEN: None,
    BLIND_TALLY: {"answers": []},
    PREFERENCE_TALLY: {"orders": [], "scores": []},
    RATING_SHEET: {},
}
"""Every key that must survive page changes, with its value at the start of a session."""

# ------------------------------------------------------------------------------------------------ Voices page

VOICES_VOICE = "voices_voice"
VOICES_CLICKED = "voices_clicked"
VOICES_HEARD = "voices_heard"
VOICES_TEXT = "voices_text"
VOICES_HEAR = "voices_hear"
VOICES_TABLE = "voices_table"
VOICES_UPLOAD = "voices_upload"
VOICES_UPLOAD_OUTCOMES = "voices_upload_outcomes"
VOICES_LANG = "voices_lang"
VOICES_HUB_REPO = "voices_hub_repo"
VOICES_HUB_LOAD = "voices_hub_load"

# ------------------------------------------------------------------------------------------------ Map page

MAP_ROW = "map_row"
MAP_LAYER = "map_layer"
MAP_METHOD = "map_method"
MAP_X = "map_x"
MAP_Y = "map_y"
MAP_PERPLEXITY = "map_perplexity"
MAP_COLOR = "map_color"
MAP_CHART = "map_chart"
MAP_OPEN_LAB = "map_open_lab"

# ------------------------------------------------------------------------------------------------ Groups page

GROUPS_ROW = "groups_row"
GROUPS_KIND = "groups_kind"
GROUPS_LAYER = "groups_layer"
GROUPS_VOICE = "groups_voice"
GROUPS_K = "groups_k"

# ------------------------------------------------------------------------------------------------ Dimensions page

DIMENSIONS_ROW = "dimensions_row"

# ------------------------------------------------------------------------------------------------ Voice Lab page

LAB_VOICE = "lab_voice"
LAB_VOICES_SEEN = "lab_voices_seen"
LAB_SHARED = "lab_shared"
"""The query the Lab last wrote to the URL: a query that differs from it is a share link just opened."""
SPEECH_KEYS = {"text": SAMPLE_TEXT, "lang": LANG, "speed": SPEED}
"""The session key each spoken setting a share link carries sets."""
LAB_RESET = "lab_reset"
LAB_NEAREST = "lab_nearest"
LAB_MAP = "lab_map"
LAB_SYNTHESIZE = "lab_synthesize"
LAB_RENDERED = "lab_rendered"
LAB_METERS = "lab_meters"
LAB_HISTORY = "lab_history"
LAB_COMPARE = "lab_compare"
LAB_TO_AB = "lab_to_ab"
LAB_EXPORT_NAME = "lab_export_name"
LAB_DIM_OP = "lab_dim_op"
LAB_DIM_TARGET = "lab_dim_target"
LAB_DIM_ONE = "lab_dim_one"
LAB_DIM_RANGE = "lab_dim_range"
LAB_DIM_VALUE = "lab_dim_value"
LAB_DIM_ADD = "lab_dim_add"
LAB_DIM_ERROR = "lab_dim_error"

# ------------------------------------------------------------------------------------------------ Voice Lab sweep

LAB_SWEEP_AXIS = "lab_sweep_axis"
LAB_SWEEP_LAYER = "lab_sweep_layer"
LAB_SWEEP_COMPONENT = "lab_sweep_component"
LAB_SWEEP_KIND = "lab_sweep_kind"
LAB_SWEEP_A = "lab_sweep_a"
LAB_SWEEP_B = "lab_sweep_b"
LAB_SWEEP_METHOD = "lab_sweep_method"
LAB_SWEEP_STEPS = "lab_sweep_steps"
LAB_SWEEP_TEXT = "lab_sweep_text"
LAB_SWEEP_RUN = "lab_sweep_run"
LAB_SWEEP_RESULT = "lab_sweep_result"
LAB_SWEEP_CHART = "lab_sweep_chart"
LAB_SWEEP_TABLE = "lab_sweep_table"

# ------------------------------------------------------------------------------------------------ Match page

MATCH_SOURCE = "match_source"
MATCH_UPLOAD = "match_upload"
MATCH_RECORD = "match_record"
MATCH_TARGET = "match_target"
"""The analysed recording: ``(sha256 of its bytes, Target)``, so a rerun does not analyse it again."""
MATCH_LANG = "match_lang"
MATCH_TRANSCRIPT = "match_transcript"
MATCH_START_FROM = "match_start_from"
MATCH_BUDGET = "match_budget"
MATCH_MINUTES = "match_minutes"
MATCH_SEED = "match_seed"
MATCH_START = "match_start"
MATCH_STOP = "match_stop"
MATCH_PROGRESS = "match_progress"
"""The running search's last ``MatchProgress``: what is left when a person stops it (or leaves the page)."""
MATCH_RESULT = "match_result"
"""The finished search: its report (``MatchReport.to_dict``) and the recording it matched (its sha256)."""
MATCH_OPEN_LAB = "match_open_lab"
MATCH_OPEN_AB = "match_open_ab"
MATCH_OPEN_AB_RECORDING = "match_open_ab_recording"
MATCH_HEAR = "match_hear"
MATCH_CHART = "match_chart"
MATCH_DOWNLOAD_RECIPE = "match_download_recipe"
MATCH_DOWNLOAD_PACK = "match_download_pack"

# ------------------------------------------------------------------------------------------------ A/B page

AB_SEED = "ab_seed"
AB_MODE = "ab_mode"
AB_MATCH = "ab_match"
AB_SYNTHESIZE = "ab_synthesize"
AB_RENDERED = "ab_rendered"
AB_METERS = "ab_meters"
AB_DIFFERENCE = "ab_difference"
AB_FEEDBACK = "ab_feedback"
AB_TEST_LENGTH = "ab_test_length"
AB_FEEDBACK_MODE = "ab_feedback_mode"
AB_NEW_TEST = "ab_new_test"
AB_RESULTS = "ab_results"
AB_PREFERENCE_LENGTH = "ab_preference_length"
AB_RATING_SCREENS = "ab_rating_screens"
AB_MORE_RECIPES = "ab_more_recipes"
AB_SUBMIT = "ab_submit"
AB_LISTENER = "ab_listener"
AB_LISTENER_NAME = "ab_listener_name"
AB_SHARED_TEST = "ab_shared_test"
AB_STORE_ERROR = "ab_store_error"
AB_EVERYONE = "ab_everyone"
AB_REFRESH = "ab_refresh"

# ------------------------------------------------------------------------------------------------ Architecture page

ARCH_WEIGHTS_SOURCE = "arch_weights_source"
ARCH_DEPTH = "arch_depth"
ARCH_FLOW_DETAIL = "arch_flow_detail"


def voices_text_key(lang: str) -> str:
    """Return the key of the Voices page's sample text in language ``lang`` (not English: that is ``SAMPLE_TEXT``)."""
    return f"voices_text_{lang}"


def voices_filter_key(column: str) -> str:
    """Return the key of the Voices page's filter on ``column`` (language, gender, group, source)."""
    return f"voices_filter_{column}"


def ab_side_key(side: str, what: str) -> str:
    """Return the key of A/B side ``side``'s ``what`` ("source", "voice", "token", "upload", "transcript", or
    "recording": the recording it plays, decoded, with what it was decoded from)."""
    return f"ab_{side}_{what}"


def ab_player_key(test: str, trial: int, label: str) -> str:
    """Return the key of the container of listening test ``test``'s player ``label`` in trial (or screen) ``trial``:
    a new trial gets new players, never the last trial's where it was left."""
    return f"ab_{test}_{trial}_{label}"


def ab_score_key(test: str, trial: int, position: int = 0) -> str:
    """Return the key of the score given in trial (or screen) ``trial`` of ``test`` to the stimulus at ``position``:
    each trial's scale starts afresh."""
    return f"ab_score_{test}_{trial}_{position}"


def ab_download_key(filename: str) -> str:
    """Return the key of the blind test's download button for ``filename``."""
    return f"ab_download_{filename}"


def ab_choice_key(side: str) -> str:
    """Return the key of the blind trial's "X is ``side``" button."""
    return f"ab_choose_{side}"


def lab_history_key(index: int) -> str:
    """Return the key of the button that takes the Lab's render ``index`` (of its history) to the A/B page."""
    return f"lab_history_{index}"


def edit_remove_key(index: int) -> str:
    """Return the key of the Lab's button that removes extra edit ``index``."""
    return f"lab_remove_{index}"


def download_key(suffix: str) -> str:
    """Return the key of the Lab's download button for the ``suffix`` file (.pt, .npz, .recipe.json)."""
    return f"lab_download_{suffix}"


def sweep_centroid_key(role: str, kind: str) -> str:
    """Return the key of the sweep's centroid choice ``role`` ("key", "from" or "to") among centroids of ``kind``."""
    return f"lab_sweep_{role}_{kind}"


def sweep_range_key(axis: str) -> str:
    """Return the key of the sweep's amount range for ``axis`` (one of ``SWEEP_AXES``): each axis keeps its own."""
    return f"lab_sweep_range_{SWEEP_AXES.index(axis)}"


# ------------------------------------------------------------------------------------------------ Voice Lab widgets

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


def attribute_key(attribute: str) -> str:
    """Return the widget key of the Lab's slider for the named ``attribute`` ("pitch", "pace"...)."""
    return f"lab_attr_{attribute}"


def pca_key(layer: str, component: int) -> str:
    """Return the widget key of the slider for 0-based ``component`` of ``layer``'s PCA."""
    return f"lab_pca_{layer}_{component}"


@dataclass(frozen=True)
class LabState:
    """What the Lab's widgets describe, in the order the recipe applies it.

    The recipe is ``base``, then one attribute edit per nonzero named slider (in ``ATTRIBUTES`` order), then one PCA
    step per nonzero slider of ``pca_layer`` (ascending component), then the centroid move or axis, then
    ``extra_edits`` in order. ``from_recipe`` maps any recipe onto this shape exactly:
    whatever the sliders cannot show (a second PCA layer, a PCA step beyond the slider range, a second centroid move)
    is kept in ``extra_edits``, so ``LabState.from_recipe(r).to_recipe() == r`` for every recipe.

    Attributes:
        base: a mix (voices with decoder and prosody weights) or an interpolation.
        pca_layer: "decoder", "prosody" or "both".
        pca_amounts: ``(component, amount)`` pairs, components 0-based, distinct and ascending, amounts nonzero and
            within ±``PCA_SLIDER_LIMIT`` std.
        centroid: the centroid move or axis (amount nonzero), or None.
        extra_edits: edits applied after all of the above.
        attributes: ``(attribute, amount)`` pairs of the named sliders, in ``ATTRIBUTES`` order, amounts nonzero.
    """

    base: Base
    pca_layer: str = "decoder"
    pca_amounts: tuple[tuple[int, float], ...] = ()
    centroid: CentroidMove | CentroidAxis | None = None
    extra_edits: tuple[Edit, ...] = ()
    attributes: tuple[tuple[str, float], ...] = ()

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
        names = [name for name, _ in self.attributes]
        if names != [name for name in ATTRIBUTES if name in names] or any(amount == 0 for _, amount in self.attributes):
            raise RecipeError("Attribute sliders must be distinct attributes, in order, with nonzero amounts.")
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
        return dataclasses.replace(self, base=Mix(tuple(Component(name) for name in names)))

    def to_recipe(self) -> Recipe:
        """Return the recipe these widgets describe.

        Raises:
            RecipeError: a value out of bounds, or more than 32 edits in all.
        """
        steps: list[Edit] = [AttributeEdit(name, amount) for name, amount in self.attributes]
        steps += [PCAStep(self.pca_layer, component, amount) for component, amount in self.pca_amounts]
        if self.centroid is not None:
            steps.append(self.centroid)
        return Recipe(self.base, (*steps, *self.extra_edits))

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> LabState:
        """Return the state whose ``to_recipe()`` is ``recipe``, putting on sliders what they can show."""
        edits = list(recipe.edits)
        attributes: list[tuple[str, float]] = []
        order = list(ATTRIBUTES)
        while edits and isinstance(edits[0], AttributeEdit) and edits[0].amount != 0 and (
                not attributes or order.index(edits[0].attribute) > order.index(attributes[-1][0])):
            edit = edits.pop(0)
            attributes.append((edit.attribute, edit.amount))
        layer = edits[0].layer if edits and isinstance(edits[0], PCAStep) else "decoder"
        amounts: list[tuple[int, float]] = []
        while edits and isinstance(edits[0], PCAStep) and edits[0].layer == layer and _fits_slider(edits[0].amount) \
                and (not amounts or edits[0].component > amounts[-1][0]):
            step = edits.pop(0)
            amounts.append((step.component, step.amount))
        centroid = None
        if edits and isinstance(edits[0], (CentroidMove, CentroidAxis)) and edits[0].amount != 0:
            centroid = edits.pop(0)
        return cls(recipe.base, layer, tuple(amounts), centroid, tuple(edits), tuple(attributes))

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
        chosen = dict(self.attributes)
        values.update({attribute_key(name): chosen.get(name, 0.0) for name in ATTRIBUTES})
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
        attributes = tuple((name, float(values.get(attribute_key(name), 0.0))) for name in ATTRIBUTES)
        return cls(base, layer, tuple(pair for pair in amounts if pair[1]), centroid,
                   tuple(values.get(EXTRA_EDITS, ())), tuple(pair for pair in attributes if pair[1]))


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


def lab_recipe_to_come(token: str | None, lab_voices: Sequence[str], seen: Sequence[str] | None, voices: VoiceSet,
                       context: RecipeContext) -> Restored:
    """Return what the Lab will show next, as the Lab's own ``_restore`` makes it: its current recipe (``token``; the
    defaults, with the warning why, where it cannot be used), on an equal mix of ``lab_voices`` with its edits kept
    where voices were picked since the Lab last ran (``lab_voices`` differs from ``seen``). The Map's cross follows
    the latest pick with it."""
    restored = restore(token, voices, context, lab_voices)
    if seen is None or tuple(seen) == tuple(lab_voices):
        return restored
    moved = restored.state.with_voices(lab_voices, voices)
    return Restored(moved, moved.to_recipe(), restored.warning)


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
