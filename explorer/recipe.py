"""Voice recipes: small, validated, shareable descriptions of an edited voice, and the algebra that applies them.

A recipe is a base followed by edits applied in order:

- the base is either a **mix** of 1-8 voices, each with one weight for the decoder half (dims 0-127, timbre) and one
  for the prosody half (dims 128-255, rhythm, pitch, duration), so "timbre of A with the prosody of B" is a mix; or an
  **interpolation** between two voices (linear or spherical, ``t`` may extrapolate);
- up to 32 edits: a step along a PCA axis, a move toward (or away from) a centroid, a move along the axis between two
  centroids, set/offset/scale/zero on one dim, a range of dims or a whole half, and a named attribute (pitch, pitch
  range, pace, energy, brightness) by an amount in its unit, along the calibrated directions of
  ``explorer.attributes``.

Applying a recipe edits all 510 rows of the pack the same way (Kokoro picks one row per utterance length, so every
row must carry the edit) and is deterministic. PCA axes and centroids are measured on a reference voice set (the
stock voices), held by a ``RecipeContext`` the app can build once and cache.

Bounds (anything outside raises ``RecipeError``):

- mix: 1-8 components, distinct voices, weights in [-100, 100] (a negative weight subtracts the voice); each half's
  weights are divided by the sum of their sizes (absolute values), as Kokoro-FastAPI does, and that sum must not be
  zero (a half nobody contributes to has no value). Without negative weights this is the plain weighted mean;
  subtracting voices easily leaves the stock voices behind, which the out-of-distribution report (``ood_report``)
  tells;
- interpolation ``t`` in [-2, 3] (0 is voice ``a``, 1 is voice ``b``);
- PCA step: amount in [-10, 10] standard deviations of the component across the reference voices;
- centroid move and centroid axis: amount in [-3, 3] (1 lands on the centroid, or moves by the whole axis);
- attribute: amount within the range the shipped axes offer for it (e.g. about ±5 semitones of pitch), and so must
  the sum of a recipe's edits of one attribute;
- dims: ``start`` < ``stop`` within 0-256; set and offset values and scale factors in [-10, 10] (stock values lie
  within about ±3.2); ``zero`` takes no value;
- at most 32 edits; recipe JSON at most 16 KiB, share strings at most 8 KiB; schema version 1;
- what the base and every edit produce stays within ±``MAX_PACK_VALUE`` (32), what a voicepack may hold: four
  in-bounds edits that each scale by 10 would otherwise reach 1e4, where the engines render NaN or silence.

Share strings (``to_token``) are compact JSON, compressed with zlib, in URL-safe base64 without padding.

Other Kokoro tools name a blend of voices in one string (``Recipe.from_voice_string``, ``Recipe.to_voice_string``):

- Kokoro-FastAPI (``api/src/services/tts_service.py``, ``TTSService.get_voices_path``, and the checks of
  ``api/src/routers/openai_compatible.py``): terms ``NAME`` or ``NAME(WEIGHT)`` joined by ``+`` or ``-``
  (``af_bella(2)+af_sky(1)``, ``af_bella-af_sky``); spaces are ignored, a missing weight is 1, the first term is
  added, and every weight is divided by the sum of all the weights (``VOICE_WEIGHT_NORMALIZATION``, on by default),
  so ``a(2)-b(1)`` is ``2/3 a - 1/3 b``: a mix here with weights 2 and -1.
- hexgrad/kokoro (``KPipeline.load_voice``): names joined by ``,`` are averaged (``af_bella,af_sky``); a name given
  twice counts twice, so ``af_bella,af_bella,af_sky`` is weights 2 and 1.

Only a recipe that is a mix with the same weights in both halves (or a linear interpolation with ``t`` in [0, 1],
which is one) has such a string: those tools weight a voice as a whole, and have no interpolation beyond the two
voices, slerp or edits. For anything else export the ``.pt`` (``python -m explorer mix --recipe R --out VOICE.pt``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import weakref
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Union

import numpy as np

from explorer.analysis import CENTROID_KINDS, LAYERS, MIN_VOICES, PCAResult, nearest_voices, pca, summary_vectors
from explorer.attributes import ATTRIBUTES, AttributeAxis, load_axes
from explorer.errors import AxesError, RecipeError, VoiceError, shown
from explorer.voices import HALF, MAX_PACK_VALUE, PACK_ROWS, STYLE_DIM, VoiceSet, as_pack, validate_voice_name

__all__ = [
    "DIM_OPS",
    "MAX_CENTROID_AMOUNT",
    "MAX_COMPONENTS",
    "MAX_DIM_VALUE",
    "MAX_EDITS",
    "MAX_JSON_BYTES",
    "MAX_PCA_AMOUNT",
    "MAX_TOKEN_CHARS",
    "MAX_VOICE_STRING_CHARS",
    "PT_EXPORT_ADVICE",
    "MAX_WEIGHT",
    "METHODS",
    "T_RANGE",
    "VOICE_STRING_STYLES",
    "AttributeEdit",
    "Base",
    "CentroidAxis",
    "CentroidMove",
    "Component",
    "DimEdit",
    "DimOutOfRange",
    "Edit",
    "Interpolation",
    "Mix",
    "OODReport",
    "PCAStep",
    "Recipe",
    "RecipeContext",
    "apply_recipe",
    "describe",
    "load_recipe",
    "ood_report",
]

SCHEMA_VERSION = 1
MAX_COMPONENTS = 8
"""Most voices one mix may blend."""
MAX_EDITS = 32
"""Most edits one recipe may hold."""
MAX_WEIGHT = 100.0
"""Largest size of a voice's weight in a mix, per half, either sign (a negative weight subtracts the voice); each
half's weights are divided by the sum of their sizes."""
T_RANGE = (-2.0, 3.0)
"""Interpolation ``t``: 0 is voice ``a``, 1 is voice ``b``; beyond them it extrapolates."""
MAX_PCA_AMOUNT = 10.0
"""In standard deviations of the component; the stock voices lie within about ±3."""
MAX_CENTROID_AMOUNT = 3.0
"""Largest centroid move or axis amount either way: 1 lands on the centroid, or moves by the whole axis."""
MAX_DIM_VALUE = 10.0
"""Largest value set, offset added or scale factor of a dim edit either way (stock values lie within about ±3.2)."""
MAX_KEY_CHARS = 32
MAX_JSON_BYTES = 16 * 1024
"""Largest recipe JSON read (a file, a text, or what a share string inflates to); a full recipe is under 8 KiB."""
MAX_TOKEN_CHARS = 8 * 1024
"""Longest share string read (``Recipe.from_token``)."""
METHODS = ("linear", "slerp")
"""Interpolation methods: straight line, or spherical per row and half (see ``Interpolation``)."""
DIM_OPS = ("set", "offset", "scale", "zero")
"""What a ``DimEdit`` does to its dims."""
HALVES = {"decoder": (0, HALF), "prosody": (HALF, STYLE_DIM)}

OOD_RANGE_MARGIN = 0.25
"""A mean-vector dim beyond the stock [min, max] by more than this share of that range makes a pack OOD."""
OOD_DISTANCE_FACTOR = 1.0
"""A pack farther from every stock voice than this times the stock spacing (the largest distance from a stock voice
to its nearest neighbour) is OOD. Every 50/50 mix of two bundled voices stays inside both limits."""
_RANGE_TOLERANCE = 1e-6

VOICE_STRING_STYLES = ("fastapi", "kokoro")
"""The voice strings of other Kokoro tools: Kokoro-FastAPI's ``af_bella(2)+af_sky(1)``, hexgrad/kokoro's
``af_bella,af_sky`` (see ``Recipe.from_voice_string``)."""
PT_EXPORT_ADVICE = "export the voice as a .pt file instead (python -m explorer mix --recipe R --out VOICE.pt)"
"""How a recipe without a voice string reaches another tool: the end of ``to_voice_string``'s refusal."""
MAX_VOICE_STRING_CHARS = 1024
"""Longest voice string read (eight 64-character names with their weights fit in under 700)."""
_KOKORO_MAX_NAMES = 16
"""Most names a hexgrad/kokoro string repeats to weight voices (``a,a,b`` is 2:1): weights must be multiples of 1/16."""
_FASTAPI_WEIGHT = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_FASTAPI_TERM = re.compile(r"(?P<name>[^()]*)(?:\((?P<weight>[^()]*)\))?")
_WEIGHT_TOLERANCE = 1e-9
_VOICE_STRING_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-+(),")

_BOM = "\ufeff"
"""The byte-order mark some editors (Windows Notepad among them) put before JSON; it is read as nothing."""
_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,31}")
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_\-]+")
_SLERP_EPSILON = 1e-6


def _shown(value: object) -> str:
    try:
        return repr(value)[:40]
    except ValueError:
        return "a value too large to show"


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value: object, label: str, low: float, high: float) -> float:
    """Return ``value`` as a float inside [low, high]; booleans are not numbers."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RecipeError(f"{label} must be a number, not {_type_name(value)}.")
    try:
        number = float(value)
    except OverflowError:  # an integer too long for a float (Python reads 4,300 digits) is finite, and far too large
        raise RecipeError(f"{label} is out of range: it must lie between {low:g} and {high:g}.") from None
    if not math.isfinite(number):
        raise RecipeError(f"{label} must be a finite number, not {_shown(value)}.")
    if not low <= number <= high:
        raise RecipeError(f"{label} is {number:g}; it must lie between {low:g} and {high:g}.")
    return number


def _integer(value: object, label: str, low: int, high: int) -> int:
    """Return ``value`` as an int inside [low, high]; booleans and floats are not accepted."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise RecipeError(f"{label} must be a whole number, not {_type_name(value)}.")
    if not low <= value <= high:
        raise RecipeError(f"{label} is {_shown(value)}; it must lie between {low} and {high}.")
    return int(value)


def _choice(value: object, label: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise RecipeError(f"{label} is {_shown(value)}; use one of {', '.join(choices)}.")
    return str(value)


def _voice(value: object, label: str) -> str:
    try:
        return str(validate_voice_name(value))
    except VoiceError as error:
        raise RecipeError(f"{label}: {error}") from None


def _key(value: object, label: str) -> str:
    if not isinstance(value, str) or not _KEY_PATTERN.fullmatch(value):
        raise RecipeError(
            f"{label} {_shown(value)} is not a centroid key: use 1-{MAX_KEY_CHARS} letters, digits, spaces, '_', '-' "
            "or '.'."
        )
    return str(value)


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)


def _percent(weight: float) -> str:
    return f"{weight * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _dims_text(start: int, stop: int) -> str:
    for name, (low, high) in HALVES.items():
        if (start, stop) == (low, high):
            return f"{name} half (dims {low}-{high - 1})"
    if (start, stop) == (0, STYLE_DIM):
        return f"all dims (0-{STYLE_DIM - 1})"
    return f"dim {start}" if stop == start + 1 else f"dims {start}-{stop - 1}"


@dataclass(frozen=True)
class Component:
    """One voice in a mix, with its weight for the decoder half (timbre) and for the prosody half.

    Example:
        >>> import explorer
        >>> mix = explorer.Mix((explorer.Component("af_heart"), explorer.Component("am_adam", decoder=0.0)))
        >>> mix.describe()
        'timbre (decoder) 100% af_heart; prosody 50% af_heart + 50% am_adam'
    """

    voice: str
    decoder: float = 1.0
    prosody: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "voice", _voice(self.voice, "Mix voice"))
        _set(self, "decoder", _number(self.decoder, f"Decoder weight of '{self.voice}'", -MAX_WEIGHT, MAX_WEIGHT))
        _set(self, "prosody", _number(self.prosody, f"Prosody weight of '{self.voice}'", -MAX_WEIGHT, MAX_WEIGHT))


@dataclass(frozen=True)
class Mix:
    """A base that blends 1-8 voices row by row, each half with its own weights, divided per half by the sum of their
    sizes (a negative weight subtracts that voice, as in Kokoro-FastAPI's ``a(2)-b(1)``: 2/3 a - 1/3 b).

    Example:
        >>> import explorer
        >>> mix = explorer.Mix.from_weights({"af_heart": 3, "bf_emma": 1})
        >>> mix.weights("decoder"), mix.describe()
        ({'af_heart': 0.75, 'bf_emma': 0.25}, 'mix 75% af_heart + 25% bf_emma')
        >>> explorer.Mix.from_weights({"af_heart": 1}, {"am_adam": 1}).describe()   # timbre of one, prosody of another
        'timbre (decoder) 100% af_heart; prosody 100% am_adam'
        >>> explorer.Mix.from_weights({"af_heart": 2, "am_adam": -1}).describe()   # subtract a voice
        'mix 66.7% af_heart - 33.3% am_adam'
    """

    TYPE: ClassVar[str] = "mix"
    components: tuple[Component, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.components, (list, tuple)):
            raise RecipeError(f"Mix components must be a list, not {_type_name(self.components)}.")
        components = tuple(self.components)
        if not 1 <= len(components) <= MAX_COMPONENTS:
            raise RecipeError(f"A mix needs 1-{MAX_COMPONENTS} voices; it has {len(components)}.")
        if not all(isinstance(c, Component) for c in components):
            raise RecipeError("Mix components must be Component objects.")
        names = [c.voice for c in components]
        for name in names:
            if names.count(name) > 1:
                raise RecipeError(f"Voice '{name}' appears twice in the mix; give it one component.")
        for layer in HALVES:
            if not sum(abs(getattr(c, layer)) for c in components) > 0:
                raise RecipeError(f"Every {layer} weight of the mix is zero; give at least one voice a weight there.")
        _set(self, "components", components)

    @classmethod
    def from_weights(cls, decoder: Mapping[str, float], prosody: Mapping[str, float] | None = None) -> Mix:
        """Return a mix from ``{voice: weight}`` per half; ``prosody`` defaults to the decoder weights.

        Voices missing from one half get weight 0 there: ``from_weights({"A": 1}, {"B": 1})`` is the timbre of A with
        the prosody of B.
        """
        prosody = decoder if prosody is None else prosody
        names = list(dict.fromkeys([*decoder, *prosody]))
        return cls(tuple(Component(n, decoder.get(n, 0.0), prosody.get(n, 0.0)) for n in names))

    def weights(self, layer: str) -> dict[str, float]:
        """Return ``{voice: normalised weight}`` for ``layer`` ("decoder" or "prosody"), their sizes summing to 1."""
        layer = _choice(layer, "Mix layer", HALVES)
        raw = {c.voice: getattr(c, layer) for c in self.components}
        total = sum(abs(weight) for weight in raw.values())
        return {name: weight / total for name, weight in raw.items()}

    @property
    def voice_names(self) -> tuple[str, ...]:
        """The voices this base reads."""
        return tuple(c.voice for c in self.components)

    def build(self, voices: VoiceSet) -> np.ndarray:
        """Return the mixed float64 ``[510, 256]`` pack; each half is the weighted sum of the voices' halves."""
        pack = np.zeros((PACK_ROWS, STYLE_DIM))
        for layer, (start, stop) in HALVES.items():
            for name, weight in self.weights(layer).items():
                if weight:
                    pack[:, start:stop] += weight * voices[name].pack[:, start:stop]
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``mix 70% af_heart + 30% bf_emma`` or ``voice af_heart``."""

        def listing(layer: str) -> str:
            terms = [(w, f"{_percent(abs(w))} {n}") for n, w in self.weights(layer).items() if w]
            text = ("-" if terms[0][0] < 0 else "") + terms[0][1]
            return text + "".join(f" {'-' if w < 0 else '+'} {term}" for w, term in terms[1:])

        decoder, prosody = self.weights("decoder"), self.weights("prosody")
        if all(math.isclose(decoder[n], prosody[n], abs_tol=1e-9) for n in decoder):
            if [w for w in decoder.values() if w] == [1.0]:
                return f"voice {next(n for n, w in decoder.items() if w)}"
            return f"mix {listing('decoder')}"
        return f"timbre (decoder) {listing('decoder')}; prosody {listing('prosody')}"


@dataclass(frozen=True)
class Interpolation:
    """A base between two voices: ``t`` = 0 is ``a``, 1 is ``b``, beyond extrapolates (``t`` in [-2, 3]).

    ``linear`` is ``(1 - t) a + t b`` on every value. ``slerp`` works per row and per half (decoder, prosody): the
    direction turns from ``a``'s toward ``b``'s along the great circle, at angle ``t`` times the angle between them,
    while the norm moves linearly from ``|a|`` to ``|b|`` (clamped at 0 when extrapolating). Where the two are
    (anti)parallel or either is zero the direction is undefined and that row-half falls back to linear.

    Example:
        >>> import explorer
        >>> halfway = explorer.Recipe(explorer.Interpolation("af_heart", "am_adam", 0.5, "slerp"))
        >>> explorer.describe(halfway)
        'slerp af_heart -> am_adam at t=0.5'
        >>> explorer.apply_recipe(halfway, explorer.load_voices()).shape
        (510, 256)
    """

    TYPE: ClassVar[str] = "interpolate"
    a: str
    b: str
    t: float
    method: str = "linear"

    def __post_init__(self) -> None:
        _set(self, "a", _voice(self.a, "Interpolation voice a"))
        _set(self, "b", _voice(self.b, "Interpolation voice b"))
        _set(self, "t", _number(self.t, "Interpolation t", *T_RANGE))
        _set(self, "method", _choice(self.method, "Interpolation method", METHODS))

    @property
    def voice_names(self) -> tuple[str, ...]:
        """The voices this base reads."""
        return (self.a,) if self.a == self.b else (self.a, self.b)

    def build(self, voices: VoiceSet) -> np.ndarray:
        """Return the interpolated float64 ``[510, 256]`` pack."""
        a = voices[self.a].pack.astype(np.float64)
        b = voices[self.b].pack.astype(np.float64)
        if self.method == "linear":
            return (1 - self.t) * a + self.t * b
        pack = np.empty_like(a)
        for start, stop in HALVES.values():
            pack[:, start:stop] = _slerp(a[:, start:stop], b[:, start:stop], self.t)
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``slerp af_heart -> am_adam at t=0.5``."""
        return f"{self.method} {self.a} -> {self.b} at t={self.t:g}"


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Return the row-wise spherical interpolation of ``a`` and ``b`` ``[rows, dims]`` (see ``Interpolation``)."""
    norm_a = np.linalg.norm(a, axis=1, keepdims=True)
    norm_b = np.linalg.norm(b, axis=1, keepdims=True)
    unit_a = a / np.maximum(norm_a, 1e-300)
    unit_b = b / np.maximum(norm_b, 1e-300)
    cosine = np.clip(np.sum(unit_a * unit_b, axis=1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(cosine)
    sine = np.sin(omega)
    defined = (sine > _SLERP_EPSILON) & (norm_a > 1e-12) & (norm_b > 1e-12)
    safe_sine = np.where(defined, sine, 1.0)
    direction = (np.sin((1 - t) * omega) * unit_a + np.sin(t * omega) * unit_b) / safe_sine
    norm = np.maximum((1 - t) * norm_a + t * norm_b, 0.0)
    return np.where(defined, direction * norm, (1 - t) * a + t * b)


@dataclass(frozen=True)
class PCAStep:
    """Move along one PCA axis of a layer by ``amount`` standard deviations of that component.

    Every row gets ``amount * std * component`` added in the layer's dims, so the pack's mean vector moves by exactly
    ``amount * std`` along the component and not at all along the others. ``component`` is 0-based (0 is PC1).

    Example:
        >>> import explorer
        >>> step = explorer.PCAStep("decoder", 0, 1.5)
        >>> step.describe()
        'PCA decoder PC1 +1.5 std'
        >>> explorer.apply_recipe(explorer.Recipe.single("af_heart").with_edit(step), explorer.load_voices()).shape
        (510, 256)
    """

    TYPE: ClassVar[str] = "pca"
    layer: str
    component: int
    amount: float

    def __post_init__(self) -> None:
        _set(self, "layer", _choice(self.layer, "PCA layer", LAYERS))
        width = LAYERS[self.layer].stop - LAYERS[self.layer].start
        _set(self, "component", _integer(self.component, "PCA component", 0, width - 1))
        _set(self, "amount", _number(self.amount, "PCA amount", -MAX_PCA_AMOUNT, MAX_PCA_AMOUNT))

    def apply(self, pack: np.ndarray, context: RecipeContext) -> np.ndarray:
        """Return ``pack`` moved along the component (``pack`` is changed in place)."""
        result = context.pca[self.layer]
        count = len(result.components)
        if self.component >= count:
            raise RecipeError(
                f"PCA component {self.component} does not exist: {self.layer} PCA over {len(context.names)} reference "
                f"voices has components 0-{count - 1}."
            )
        step = self.amount * result.component_std[self.component] * result.components[self.component]
        pack[:, LAYERS[self.layer]] += step
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``PCA decoder PC1 +1.5 std``."""
        return f"PCA {self.layer} PC{self.component + 1} {self.amount:+g} std"


@dataclass(frozen=True)
class CentroidMove:
    """Move toward a centroid (a group, language or gender): ``pack + amount * (centroid - pack)``, row by row.

    ``amount`` 1 lands on the centroid pack (the row-wise mean of its members), negative moves away.

    Example:
        >>> import explorer
        >>> explorer.CentroidMove("language", "British English", 0.5).describe()
        "toward language 'British English' centroid x0.5"
        >>> explorer.CentroidMove("group", "am", -0.5).describe()
        "away from group 'am' centroid x0.5"
    """

    TYPE: ClassVar[str] = "centroid"
    kind: str
    key: str
    amount: float

    def __post_init__(self) -> None:
        _set(self, "kind", _choice(self.kind, "Centroid kind", CENTROID_KINDS))
        _set(self, "key", _key(self.key, "Centroid"))
        _set(self, "amount", _number(self.amount, "Centroid amount", -MAX_CENTROID_AMOUNT, MAX_CENTROID_AMOUNT))

    def apply(self, pack: np.ndarray, context: RecipeContext) -> np.ndarray:
        """Return ``pack`` moved toward the centroid (``pack`` is changed in place)."""
        pack += self.amount * (context.centroid_pack(self.kind, self.key) - pack)
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``toward gender 'female' centroid x0.5``."""
        direction = "toward" if self.amount >= 0 else "away from"
        return f"{direction} {self.kind} '{self.key}' centroid x{abs(self.amount):g}"


@dataclass(frozen=True)
class CentroidAxis:
    """Move along the axis between two centroids: ``pack + amount * (centroid[to_key] - centroid[from_key])``.

    E.g. gender ``male`` -> ``female``, or language ``British English`` -> ``American English``.

    Example:
        >>> import explorer
        >>> axis = explorer.CentroidAxis("gender", "male", "female", 0.5)
        >>> axis.describe()
        "along gender axis 'male' -> 'female' x0.5"
        >>> voices = explorer.load_voices()
        >>> pack = explorer.apply_recipe(explorer.Recipe.single("am_adam").with_edit(axis), voices)
        >>> explorer.ood_report(pack, voices).out_of_distribution
        False
    """

    TYPE: ClassVar[str] = "axis"
    kind: str
    from_key: str
    to_key: str
    amount: float

    def __post_init__(self) -> None:
        _set(self, "kind", _choice(self.kind, "Centroid axis kind", CENTROID_KINDS))
        _set(self, "from_key", _key(self.from_key, "Axis start"))
        _set(self, "to_key", _key(self.to_key, "Axis end"))
        if self.from_key == self.to_key:
            raise RecipeError(f"A centroid axis needs two different ends; both are '{self.from_key}'.")
        _set(self, "amount", _number(self.amount, "Axis amount", -MAX_CENTROID_AMOUNT, MAX_CENTROID_AMOUNT))

    def apply(self, pack: np.ndarray, context: RecipeContext) -> np.ndarray:
        """Return ``pack`` moved along the axis (``pack`` is changed in place)."""
        start = context.centroid_pack(self.kind, self.from_key)
        pack += self.amount * (context.centroid_pack(self.kind, self.to_key) - start)
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``along gender axis 'male' -> 'female' x0.8``."""
        return f"along {self.kind} axis '{self.from_key}' -> '{self.to_key}' x{self.amount:g}"


@dataclass(frozen=True)
class AttributeEdit:
    """Move a voice along a named attribute (``explorer.attributes``) by ``amount`` in the attribute's unit: pitch
    and pitch range in semitones, pace and brightness in percent, energy in decibels.

    Every row gets the attribute's calibrated style change for this voice added (``AttributeAxis.offset``: the
    curve read at the amount over the voice's predicted gain); the amount must lie in the range the shipped axes
    offer, and so must the sum of a recipe's edits of one attribute.

    Example:
        >>> import explorer
        >>> explorer.AttributeEdit("pitch", 2.0).describe()
        'pitch +2 st'
        >>> explorer.Recipe.from_token(explorer.Recipe.single("af_heart").with_edit(
        ...     explorer.AttributeEdit("pace", -10)).to_token()).edits
        (AttributeEdit(attribute='pace', amount=-10.0),)
    """

    TYPE: ClassVar[str] = "attribute"
    attribute: str
    amount: float

    def __post_init__(self) -> None:
        _set(self, "attribute", _choice(self.attribute, "Attribute", ATTRIBUTES))
        axis = _attribute_axis(self.attribute)
        label = f"{ATTRIBUTES[self.attribute].label} amount ({axis.unit})"
        _set(self, "amount", _number(self.amount, label, round(axis.low, 6), round(axis.high, 6)))

    def apply(self, pack: np.ndarray, context: RecipeContext | None = None) -> np.ndarray:
        """Return ``pack`` moved along the attribute (``pack`` is changed in place)."""
        pack += _attribute_axis(self.attribute).offset(self.amount, pack)
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``pitch +2 st``."""
        return f"{self.attribute.replace('_', ' ')} {self.amount:+g} {ATTRIBUTES[self.attribute].unit}"


def _attribute_axis(attribute: str) -> AttributeAxis:
    """The shipped axis of ``attribute``; a missing or damaged axes file is a RecipeError naming the file."""
    try:
        return load_axes().axis(attribute)
    except AxesError as error:
        raise RecipeError(str(error)) from None


@dataclass(frozen=True)
class DimEdit:
    """Set, offset, scale or zero dims ``start`` to ``stop - 1`` in every row.

    ``value`` is the value set, the offset added or the scale factor; ``zero`` takes none (0).

    Example:
        >>> import explorer
        >>> explorer.DimEdit("offset", 10, 20, 0.5).describe()
        'offset dims 10-19 by +0.5'
        >>> explorer.DimEdit.half("scale", "decoder", 1.5).describe(), explorer.DimEdit.single("zero", 5).describe()
        ('scale decoder half (dims 0-127) x1.5', 'zero dim 5')
    """

    TYPE: ClassVar[str] = "dims"
    op: str
    start: int
    stop: int
    value: float = 0.0

    def __post_init__(self) -> None:
        _set(self, "op", _choice(self.op, "Dim edit operation", DIM_OPS))
        _set(self, "start", _integer(self.start, "Dim edit start", 0, STYLE_DIM - 1))
        _set(self, "stop", _integer(self.stop, "Dim edit stop", self.start + 1, STYLE_DIM))
        _set(self, "value", _number(self.value, f"Dim edit {self.op} value", -MAX_DIM_VALUE, MAX_DIM_VALUE))
        if self.op == "zero" and self.value != 0:
            raise RecipeError(f"A zero dim edit takes no value; got {self.value:g}.")

    @classmethod
    def single(cls, op: str, dim: int, value: float = 0.0) -> DimEdit:
        """Return an edit of one dim."""
        return cls(op, dim, _integer(dim, "Dim", 0, STYLE_DIM - 1) + 1, value)

    @classmethod
    def half(cls, op: str, layer: str, value: float = 0.0) -> DimEdit:
        """Return an edit of the whole ``decoder`` (0-127) or ``prosody`` (128-255) half."""
        return cls(op, *HALVES[_choice(layer, "Half", HALVES)], value)

    def apply(self, pack: np.ndarray, context: RecipeContext | None = None) -> np.ndarray:
        """Return ``pack`` with the dims edited (``pack`` is changed in place)."""
        dims = slice(self.start, self.stop)
        if self.op == "set":
            pack[:, dims] = self.value
        elif self.op == "offset":
            pack[:, dims] += self.value
        elif self.op == "scale":
            pack[:, dims] *= self.value
        else:
            pack[:, dims] = 0.0
        return pack

    def describe(self) -> str:
        """Return one line, e.g. ``scale decoder half (dims 0-127) x1.5``."""
        dims = _dims_text(self.start, self.stop)
        if self.op == "set":
            return f"set {dims} to {self.value:g}"
        if self.op == "offset":
            return f"offset {dims} by {self.value:+g}"
        if self.op == "scale":
            return f"scale {dims} x{self.value:g}"
        return f"zero {dims}"


Base = Union[Mix, Interpolation]
"""What a recipe starts from: a mix or an interpolation of stock voices."""
Edit = Union[PCAStep, CentroidMove, CentroidAxis, DimEdit, AttributeEdit]
"""One step a recipe applies to its base, in order."""
BASE_TYPES: dict[str, type] = {cls.TYPE: cls for cls in (Mix, Interpolation)}
EDIT_TYPES: dict[str, type] = {cls.TYPE: cls for cls in (PCAStep, CentroidMove, CentroidAxis, DimEdit, AttributeEdit)}


def _fields_dict(instance: object) -> dict:
    return {f.name: getattr(instance, f.name) for f in fields(instance)}


def _fields(cls: type, data: object, label: str, tagged: bool = False) -> dict:
    """Return ``data``'s values for ``cls``'s fields after checking it is an object with exactly those keys."""
    if not isinstance(data, dict):
        raise RecipeError(f"{label} must be a JSON object, not {_type_name(data)}.")
    known = {f.name for f in fields(cls)} | ({"type"} if tagged else set())
    required = {f.name for f in fields(cls) if f.default is MISSING}
    unknown = sorted(_shown(key) for key in data if key not in known)
    if unknown:
        raise RecipeError(f"{label} has unknown keys {', '.join(unknown[:5])}; allowed: {', '.join(sorted(known))}.")
    missing = sorted(required - set(data))
    if missing:
        raise RecipeError(f"{label} lacks {', '.join(missing)}.")
    return {key: value for key, value in data.items() if key != "type"}


def _to_dict(step: Base | Edit) -> dict:
    if isinstance(step, Mix):
        return {"type": Mix.TYPE, "components": [_fields_dict(c) for c in step.components]}
    return {"type": step.TYPE, **_fields_dict(step)}


def _from_dict(data: object, types: Mapping[str, type], label: str) -> Base | Edit:
    if not isinstance(data, dict):
        raise RecipeError(f"{label} must be a JSON object, not {_type_name(data)}.")
    tag = data.get("type")
    cls = types.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise RecipeError(f"{label} has type {_shown(tag)}; use one of {', '.join(types)}.")
    values = _fields(cls, data, f"{label} ({cls.TYPE})", tagged=True)
    if cls is Mix:
        values["components"] = _components(values["components"])
    return cls(**values)


def _components(items: object) -> tuple[Component, ...]:
    if not isinstance(items, list):
        raise RecipeError(f"Mix components must be a list, not {_type_name(items)}.")
    if not 1 <= len(items) <= MAX_COMPONENTS:
        raise RecipeError(f"A mix needs 1-{MAX_COMPONENTS} voices; it has {len(items)}.")
    components = []
    for index, item in enumerate(items, 1):
        try:
            components.append(Component(**_fields(Component, item, "The component")))
        except RecipeError as error:
            raise RecipeError(f"Mix component {index}: {error}") from None
    return tuple(components)


def _check_attribute_totals(edits: Iterable[Edit]) -> None:
    """Refuse attribute edits whose amounts for one attribute add up beyond the range its axis offers: the
    calibration says nothing of what lies past it."""
    totals: dict[str, float] = {}
    for edit in edits:
        if isinstance(edit, AttributeEdit):
            totals[edit.attribute] = totals.get(edit.attribute, 0.0) + edit.amount
    for attribute, total in totals.items():
        axis = _attribute_axis(attribute)
        if not axis.low - 1e-6 <= total <= axis.high + 1e-6:
            raise RecipeError(
                f"The {attribute.replace('_', ' ')} edits add up to {total:+g} {axis.unit}; together they must lie "
                f"between {axis.low:+g} and {axis.high:+g} {axis.unit}, the calibrated range."
            )


@dataclass(frozen=True)
class Recipe:
    """A validated, immutable description of an edited voice: a base (mix or interpolation) and up to 32 edits.

    Responsibilities: validate on construction (``RecipeError``), serialise (dict, JSON, share string, and the voice
    strings of Kokoro-FastAPI and hexgrad/kokoro where one describes it), and give functional updates for the Lab
    (``with_edit``, ``replace_edit``...). ``apply_recipe`` turns it into a pack.

    Example:
        >>> import explorer
        >>> recipe = explorer.Recipe.single("af_heart").with_edit(explorer.PCAStep("decoder", 0, 1.5))
        >>> recipe.voice_names, len(recipe.edits)
        (('af_heart',), 1)
        >>> explorer.Recipe.from_token(recipe.to_token()) == recipe    # the share string the app puts in its URL
        True
        >>> explorer.Recipe.from_json(recipe.to_json()) == recipe
        True
        >>> blend = explorer.Recipe.from_voice_string("af_bella(2)+af_sky(1)")    # Kokoro-FastAPI's weighted blend
        >>> explorer.describe(blend), blend.to_voice_string("kokoro")
        ('mix 66.7% af_bella + 33.3% af_sky', 'af_bella,af_bella,af_sky')
        >>> explorer.Recipe.from_voice_string("af_bella - af_sky").to_voice_string()
        'af_bella-af_sky'
    """

    base: Base
    edits: tuple[Edit, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.base, (Mix, Interpolation)):
            raise RecipeError(f"A recipe's base must be a mix or an interpolation, not {type(self.base).__name__}.")
        if not isinstance(self.edits, (list, tuple)):
            raise RecipeError(f"A recipe's edits must be a list, not {_type_name(self.edits)}.")
        edits = tuple(self.edits)
        if len(edits) > MAX_EDITS:
            raise RecipeError(f"A recipe may hold at most {MAX_EDITS} edits; this one has {len(edits)}.")
        for edit in edits:
            if not isinstance(edit, tuple(EDIT_TYPES.values())):
                raise RecipeError(f"{type(edit).__name__} is not a recipe edit.")
        _check_attribute_totals(edits)
        _set(self, "edits", edits)

    @classmethod
    def single(cls, voice: str) -> Recipe:
        """Return the recipe of one stock voice, unedited: the Lab's starting point."""
        return cls(Mix((Component(voice),)))

    @property
    def voice_names(self) -> tuple[str, ...]:
        """The voices the recipe reads."""
        return self.base.voice_names

    def with_base(self, base: Base) -> Recipe:
        """Return a copy with another base and the same edits."""
        return Recipe(base, self.edits)

    def with_edit(self, edit: Edit) -> Recipe:
        """Return a copy with ``edit`` appended."""
        return Recipe(self.base, (*self.edits, edit))

    def with_edits(self, edits: Iterable[Edit]) -> Recipe:
        """Return a copy whose edits are ``edits``."""
        return Recipe(self.base, tuple(edits))

    def replace_edit(self, index: int, edit: Edit) -> Recipe:
        """Return a copy with edit ``index`` (0-based) replaced by ``edit``."""
        self._check_index(index)
        return Recipe(self.base, (*self.edits[:index], edit, *self.edits[index + 1 :]))

    def remove_edit(self, index: int) -> Recipe:
        """Return a copy without edit ``index`` (0-based)."""
        self._check_index(index)
        return Recipe(self.base, self.edits[:index] + self.edits[index + 1 :])

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.edits):
            raise RecipeError(f"Edit {_shown(index)} does not exist; the recipe has {len(self.edits)} edits.")

    def to_dict(self) -> dict:
        """Return the JSON-ready form: ``{"version": 1, "base": {...}, "edits": [...]}``."""
        edits = [_to_dict(edit) for edit in self.edits]
        return {"version": SCHEMA_VERSION, "base": _to_dict(self.base), "edits": edits}

    @classmethod
    def from_dict(cls, data: object) -> Recipe:
        """Return the recipe ``data`` describes, refusing anything off the schema (unknown keys, wrong types).

        Raises:
            RecipeError: the first problem found, in one sentence.
        """
        if not isinstance(data, dict):
            raise RecipeError(f"A recipe must be a JSON object, not {_type_name(data)}.")
        unknown = sorted(_shown(key) for key in data if key not in ("version", "base", "edits"))
        if unknown:
            raise RecipeError(f"The recipe has unknown keys {', '.join(unknown[:5])}; allowed: base, edits, version.")
        if "version" not in data or "base" not in data:
            raise RecipeError("A recipe needs a 'version' and a 'base'.")
        version = data["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RecipeError(f"Recipe version {_shown(version)} is not a schema version.")
        if version != SCHEMA_VERSION:
            raise RecipeError(
                f"The recipe uses schema version {_shown(version)}; this explorer reads version {SCHEMA_VERSION}."
            )
        base = _from_dict(data["base"], BASE_TYPES, "The recipe's base")
        items = data.get("edits", [])
        if not isinstance(items, list):
            raise RecipeError(f"A recipe's edits must be a list, not {_type_name(items)}.")
        if len(items) > MAX_EDITS:
            raise RecipeError(f"A recipe may hold at most {MAX_EDITS} edits; this one has {len(items)}.")
        edits = []
        for index, item in enumerate(items, 1):
            try:
                edits.append(_from_dict(item, EDIT_TYPES, "The edit"))
            except RecipeError as error:
                raise RecipeError(f"Edit {index}: {error}") from None
        return cls(base, tuple(edits))

    def to_json(self, indent: int | None = 2) -> str:
        """Return the recipe as JSON text (what travels beside an exported pack)."""
        separators = (",", ":") if indent is None else None
        return json.dumps(self.to_dict(), indent=indent, separators=separators)

    @classmethod
    def from_json(cls, text: str | bytes) -> Recipe:
        """Return the recipe in JSON ``text`` (at most 16 KiB; NaN, Infinity and repeated keys are refused; a leading
        byte-order mark is skipped)."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                raise RecipeError("The recipe is not UTF-8 text.") from None
        if not isinstance(text, str):
            raise RecipeError(f"A recipe must be JSON text, not {_type_name(text)}.")
        text = text.removeprefix(_BOM)
        if len(text) > MAX_JSON_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_JSON_BYTES:
            raise RecipeError(f"The recipe is longer than {MAX_JSON_BYTES // 1024} KiB.")
        try:
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                              object_pairs_hook=_unique_keys)
        except RecursionError:
            raise RecipeError("The recipe is nested too deeply to be a recipe.") from None
        except ValueError as error:
            raise RecipeError(f"The recipe is not valid JSON ({str(error)[:120]}).") from None
        return cls.from_dict(data)

    def to_token(self) -> str:
        """Return the compact URL-safe share string: compact JSON, zlib, base64url without padding."""
        data = zlib.compress(self.to_json(indent=None).encode("utf-8"), 9)
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    @classmethod
    def from_token(cls, token: str | bytes) -> Recipe:
        """Return the recipe in a share string; any malformed input raises ``RecipeError`` and nothing else.

        The inflated text is limited to 16 KiB while inflating, so a compression bomb never expands in memory.
        """
        if isinstance(token, (bytes, bytearray)):
            token = bytes(token).decode("ascii", "replace")
        if not isinstance(token, str):
            raise RecipeError(f"A recipe string must be text, not {_type_name(token)}.")
        token = token.strip()
        if not token:
            raise RecipeError("The recipe string is empty.")
        if len(token) > MAX_TOKEN_CHARS:
            raise RecipeError(f"The recipe string is longer than {MAX_TOKEN_CHARS} characters.")
        if not _TOKEN_PATTERN.fullmatch(token) or len(token) % 4 == 1:
            raise RecipeError("The recipe string is not URL-safe base64 (letters, digits, '-' and '_').")
        try:
            compressed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise RecipeError("The recipe string is not URL-safe base64 (letters, digits, '-' and '_').") from None
        return cls.from_json(_inflate(compressed))

    @classmethod
    def from_voice_string(cls, text: str, style: str | None = None) -> Recipe:
        """Return the mix another Kokoro tool's voice string names, the same voice that tool would make.

        ``style`` "fastapi" reads Kokoro-FastAPI's ``af_bella(2)+af_sky(1)`` and ``af_bella-af_sky`` (each weight over
        the sum of all the weights, so ``a(2)-b(1)`` is ``2/3 a - 1/3 b``; spaces are ignored), "kokoro" reads
        hexgrad/kokoro's ``af_bella,af_sky`` (the mean; a name given twice counts twice); None reads a string with a
        comma as kokoro's and any other as Kokoro-FastAPI's (where ``-`` always subtracts: a voice whose name holds a
        ``-`` has no Kokoro-FastAPI string). A plain name is that voice. Unknown voices are found when the recipe is
        applied.

        Raises:
            RecipeError: an empty, oversize or malformed string, a bad weight, a voice both added and subtracted, all
                weights zero, or more than ``MAX_COMPONENTS`` voices; in one sentence.
        """
        if not isinstance(text, str):
            raise RecipeError(f"A voice string must be text, not {_type_name(text)}.")
        if len(text) > MAX_VOICE_STRING_CHARS:
            raise RecipeError(f"The voice string is longer than {MAX_VOICE_STRING_CHARS} characters.")
        if style is not None:
            style = _choice(style, "Voice string style", VOICE_STRING_STYLES)
        compact = "".join(text.split())
        foreign = next((char for char in compact if char not in _VOICE_STRING_CHARS), None)
        if foreign is not None:
            raise RecipeError(f"The voice string holds {shown(foreign)}, which no voice string has: use voice names, "
                              "numbers, '+', '-', '(', ')' and ','.")
        if not compact:
            raise RecipeError("The voice string is empty: name a voice, e.g. af_heart or af_bella(2)+af_sky(1).")
        if style == "kokoro" or (style is None and "," in compact):
            terms = [(name, 1.0) for name in _kokoro_names(compact, text)]
        else:
            terms = _fastapi_terms(compact, text)
        weights: dict[str, float] = {}
        for name, weight in terms:
            if name in weights and weights[name] * weight < 0:
                raise RecipeError(
                    f"Voice string {shown(text, 40)} both adds and subtracts {shown(name)}; give each voice one term."
                )
            weights[name] = weights.get(name, 0.0) + weight
        if len(weights) > MAX_COMPONENTS:
            raise RecipeError(f"Voice string {shown(text, 40)} names {len(weights)} voices; a mix takes at most "
                              f"{MAX_COMPONENTS}.")
        if not any(weights.values()):
            raise RecipeError(f"Every weight in voice string {shown(text, 40)} is zero; give at least one voice a "
                              "weight.")
        for name, weight in weights.items():
            if abs(weight) > MAX_WEIGHT:
                raise RecipeError(f"Voice string {shown(text, 40)} weighs {shown(name)} {abs(weight):g}, more than "
                                  f"{MAX_WEIGHT:g}; weights are relative, so scale them all down.")
        return cls(Mix(tuple(Component(name, weight, weight) for name, weight in weights.items())))

    def to_voice_string(self, style: str = "fastapi") -> str:
        """Return the voice string another Kokoro tool reads as this recipe's voice: ``style`` "fastapi" gives
        Kokoro-FastAPI's ``af_bella(2)+af_sky`` (a weight of 1 is left out), "kokoro" hexgrad/kokoro's
        ``af_bella,af_bella,af_sky`` (the mean, so a weight of 2 is the name twice).

        Raises:
            RecipeError: the recipe has no such string (edits, an interpolation other than linear with ``t`` in
                [0, 1], halves weighted differently, a voice named with ``-`` for Kokoro-FastAPI, negative or
                uneven weights for kokoro): the sentence says why and to export the ``.pt`` instead.
        """
        style = _choice(style, "Voice string style", VOICE_STRING_STYLES)
        tool = "Kokoro-FastAPI" if style == "fastapi" else "hexgrad/kokoro"
        export = PT_EXPORT_ADVICE
        if self.edits:
            count = len(self.edits)
            edits = "edit beyond the mix exists" if count == 1 else f"{count} edits beyond the mix exist"
            raise RecipeError(f"No {tool} voice string describes this recipe: its {edits} only here; {export}.")
        weights = self._whole_voice_weights(tool, export)
        if style == "kokoro":
            return ",".join(_kokoro_repeats(weights, export))
        for name in weights:
            if "-" in name:
                raise RecipeError(f"Kokoro-FastAPI reads the '-' in voice {shown(name)} as a subtraction; {export}.")
        names = list(weights)
        text = ""
        if all(weight < 0 for weight in weights.values()):  # a leading '-' is refused: add a voice 0 times first
            text = f"{names[0]}(0)"
        elif weights[names[0]] < 0:  # the first added voice goes first
            first = next(name for name in names if weights[name] > 0)
            names = [first, *(name for name in names if name != first)]
        for name in names:
            weight = weights[name]
            size = np.format_float_positional(abs(weight), trim="-")
            text += ("-" if weight < 0 else "+" if text else "") + name + ("" if size == "1" else f"({size})")
        return text

    def _whole_voice_weights(self, tool: str, export: str) -> dict[str, float]:
        """Return ``{voice: weight}`` of a base that weights each voice alike in both halves (zero weights left out)."""
        base = self.base
        if isinstance(base, Interpolation):
            if base.method != "linear" or not 0 <= base.t <= 1:
                what = "a slerp" if base.method != "linear" else f"an extrapolation (t={base.t:g})"
                raise RecipeError(f"No {tool} voice string describes {what} between two voices; {export}.")
            weights = {base.a: 1 - base.t}
            weights[base.b] = weights.get(base.b, 0.0) + base.t
            return {name: weight for name, weight in weights.items() if weight}
        decoder, prosody = base.weights("decoder"), base.weights("prosody")
        for name in decoder:
            if not math.isclose(decoder[name], prosody[name], rel_tol=_WEIGHT_TOLERANCE, abs_tol=_WEIGHT_TOLERANCE):
                raise RecipeError(f"{tool} weights a voice as a whole, and this mix weights {shown(name)} differently "
                                  f"in its timbre and prosody halves; {export}.")
        return {c.voice: c.decoder for c in base.components if decoder[c.voice]}


def _fastapi_terms(compact: str, text: str) -> list[tuple[str, float]]:
    """Return ``(voice, signed weight)`` per term of a Kokoro-FastAPI voice string without whitespace."""
    if compact[0] in "+-" or compact[-1] in "+-" or re.search(r"[+-]{2}", compact):
        raise RecipeError(f"Voice string {shown(text, 40)} has an empty term: put a voice between every '+' and '-'.")
    if re.search(r"\([+-]", compact):
        raise RecipeError(f"Voice string {shown(text, 40)} signs a weight; weights are sizes, and '-' before a voice "
                          "subtracts it, e.g. af_bella(2)-af_sky(1).")
    parts = re.split(r"([+-])", compact)
    terms = []
    for index in range(0, len(parts), 2):
        sign = -1.0 if index and parts[index - 1] == "-" else 1.0
        match = _FASTAPI_TERM.fullmatch(parts[index])
        if match is None or not match["name"]:
            raise RecipeError(f"Term {shown(parts[index], 40)} of voice string {shown(text, 40)} is not NAME or "
                              "NAME(WEIGHT), e.g. af_bella or af_bella(2).")
        name = _voice(match["name"], "Voice string")
        weight = 1.0
        if match["weight"] is not None:
            if not _FASTAPI_WEIGHT.fullmatch(match["weight"]):
                raise RecipeError(f"Weight {shown(match['weight'], 40)} of {shown(name)} in the voice string is not a "
                                  "number like 2 or 0.5.")
            weight = float(match["weight"])
        terms.append((name, sign * weight))
    return terms


def _kokoro_names(compact: str, text: str) -> list[str]:
    """Return the names of a hexgrad/kokoro voice string without whitespace, repeats kept."""
    names = compact.split(",")
    if "" in names:
        raise RecipeError(f"Voice string {shown(text, 40)} has an empty name: put a voice between every ','.")
    return [_voice(name, "Voice string") for name in names]


def _kokoro_repeats(weights: Mapping[str, float], export: str) -> list[str]:
    """Return the names whose mean is the mix ``weights``, each repeated in proportion to its weight."""
    if any(weight < 0 for weight in weights.values()):
        raise RecipeError(f"hexgrad/kokoro averages voices and cannot subtract one; use the Kokoro-FastAPI string or "
                          f"{export}.")
    total = sum(weights.values())
    for count in range(1, _KOKORO_MAX_NAMES + 1):
        repeats = {name: weight / total * count for name, weight in weights.items()}
        if all(abs(r - round(r)) <= _WEIGHT_TOLERANCE * count for r in repeats.values()):
            return [name for name, r in repeats.items() for _ in range(round(r))]
    raise RecipeError(f"hexgrad/kokoro averages voices, so its weights are counts of repeated names, and these are not "
                      f"multiples of 1/{_KOKORO_MAX_NAMES}; use the Kokoro-FastAPI string or {export}.")


def _refuse_constant(name: str) -> None:
    raise RecipeError(f"The recipe holds {name}; every number must be finite.")


def _finite_float(text: str) -> float:
    """Read a JSON number with a fraction or exponent; one too large for a float (``1e400``) is out of range, where
    Python's reader would make it infinity."""
    number = float(text)
    if math.isinf(number):
        raise RecipeError(f"The recipe holds the number {text[:40]}, beyond any amount a recipe allows.")
    return number


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise RecipeError("The recipe repeats a key inside one object.")
    return data


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_JSON_BYTES + 1)
    except zlib.error:
        raise RecipeError("The recipe string is damaged: its compressed data does not decompress.") from None
    if len(text) > MAX_JSON_BYTES or inflater.unconsumed_tail:
        raise RecipeError(f"The recipe string inflates to more than {MAX_JSON_BYTES // 1024} KiB.")
    if not inflater.eof or inflater.unused_data:
        raise RecipeError("The recipe string is damaged: its compressed data is truncated or has trailing bytes.")
    return text


def load_recipe(source: str | Path) -> Recipe:
    """Return a recipe from what a person typed: a path to a ``.json`` file, JSON text, or a share string.

    A ``Path``, or text ending in ``.json`` naming an existing file, is read (at most 16 KiB); text starting with
    ``{`` (after a byte-order mark, if any) is JSON; anything else is a share string. Pages should call
    ``Recipe.from_token`` for query strings, so a URL can never name a file.

    Raises:
        RecipeError: no such file, unreadable or oversize file, or a malformed recipe.

    Example:
        >>> import explorer
        >>> recipe = explorer.Recipe.single("bf_emma").with_edit(explorer.DimEdit.single("zero", 5))
        >>> explorer.load_recipe(recipe.to_token()) == recipe
        True
        >>> from pathlib import Path
        >>> _ = Path("emma.json").write_text(recipe.to_json())
        >>> explorer.load_recipe("emma.json") == recipe
        True
    """
    if not isinstance(source, (str, Path)):
        raise RecipeError(f"A recipe source must be a path or text, not {_type_name(source)}.")
    text = str(source).removeprefix(_BOM).strip()
    if isinstance(source, Path) or text.lower().endswith(".json"):
        path = Path(text)
        try:
            if not path.is_file():
                raise RecipeError(f"No recipe file at '{text[:200]}'.")
            if path.stat().st_size > MAX_JSON_BYTES:
                raise RecipeError(f"Recipe file '{path.name[:80]}' is larger than {MAX_JSON_BYTES // 1024} KiB.")
            return Recipe.from_json(path.read_bytes())
        except (OSError, ValueError) as error:
            raise RecipeError(f"Recipe file '{text[:200]}' cannot be read: {error}.") from None
    if text.startswith("{"):
        return Recipe.from_json(text)
    return Recipe.from_token(text)


def describe(recipe: Recipe) -> str:
    """Return the recipe in words, one line per step (base first), for the app, CLI and README.

    Example:
        >>> import explorer
        >>> recipe = explorer.Recipe(explorer.Mix.from_weights({"af_heart": 0.7, "bf_emma": 0.3}, {"am_adam": 1.0}))
        >>> print(explorer.describe(recipe.with_edit(explorer.PCAStep("decoder", 0, 1.5))))
        timbre (decoder) 70% af_heart + 30% bf_emma; prosody 100% am_adam
        PCA decoder PC1 +1.5 std
    """
    return "\n".join([recipe.base.describe(), *(edit.describe() for edit in recipe.edits)])


_CONTEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CONTEXTS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class RecipeContext:
    """What PCA steps, centroid moves and the out-of-distribution report measure against: a reference voice set.

    Holds the reference packs, their mean-over-rows vectors, the PCA of each layer on those vectors, which voices
    form each centroid, and the stock ranges. Build it once per voice set (``from_voices`` caches it per set object)
    or keep it in ``st.cache_resource``; it is never changed after construction.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> context = explorer.RecipeContext.from_voices(voices)
        >>> context.centroid_keys("gender"), context.centroid_pack("group", "bf").shape
        (['female', 'male'], (510, 256))
        >>> context is explorer.RecipeContext.from_voices(voices)
        True
    """

    names: tuple[str, ...]
    packs: np.ndarray = field(repr=False)
    vectors: np.ndarray = field(repr=False)
    pca: Mapping[str, PCAResult] = field(repr=False)
    members: Mapping[str, Mapping[str, tuple[int, ...]]] = field(repr=False)
    row_min: np.ndarray = field(repr=False)
    row_max: np.ndarray = field(repr=False)
    spacing: float

    @classmethod
    def from_voices(cls, voices: VoiceSet) -> RecipeContext:
        """Return the context of ``voices`` (at least 3); the same object again for the same set while it lives.

        Raises:
            RecipeError: fewer than 3 voices.
        """
        with _CONTEXTS_LOCK:
            cached = _CONTEXTS.get(voices)
        if cached is not None:
            return cached
        context = cls._build(voices)
        with _CONTEXTS_LOCK:
            _CONTEXTS[voices] = context
        return context

    @classmethod
    def _build(cls, voices: VoiceSet) -> RecipeContext:
        if len(voices) < MIN_VOICES:
            raise RecipeError(
                f"PCA steps, centroid moves and the OOD report need at least {MIN_VOICES} reference voices; "
                f"{len(voices)} were given."
            )
        packs = voices.packs()
        packs.setflags(write=False)
        vectors = summary_vectors(packs)
        table = voices.table()
        members = {
            kind: {str(key): tuple(map(int, rows)) for key, rows in table.groupby(kind, sort=True).indices.items()}
            for kind in CENTROID_KINDS
        }
        distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=-1)
        np.fill_diagonal(distances, np.inf)
        return cls(
            names=tuple(voices.names),
            packs=packs,
            vectors=vectors,
            pca={layer: pca(vectors, layer) for layer in LAYERS},
            members=members,
            row_min=packs.min(axis=0),
            row_max=packs.max(axis=0),
            spacing=float(distances.min(axis=1).max()),
        )

    def centroid_keys(self, kind: str) -> list[str]:
        """Return the centroid keys of ``kind`` ("group", "language" or "gender") among the reference voices."""
        return list(self.members[_choice(kind, "Centroid kind", CENTROID_KINDS)])

    def centroid_pack(self, kind: str, key: str) -> np.ndarray:
        """Return the float64 ``[510, 256]`` row-wise mean pack of the centroid's member voices.

        Raises:
            RecipeError: no such centroid among the reference voices.
        """
        index = self.members[_choice(kind, "Centroid kind", CENTROID_KINDS)].get(key)
        if index is None:
            known = ", ".join(self.members[kind])
            raise RecipeError(f"No {kind} centroid '{str(key)[:40]}' among the reference voices; known: {known}.")
        return self.packs[list(index)].astype(np.float64).mean(axis=0)


def apply_recipe(recipe: Recipe, voices: VoiceSet, context: RecipeContext | None = None) -> np.ndarray:
    """Return the read-only float32 ``[510, 256]`` pack ``recipe`` describes; every row is edited.

    The base and then each edit must keep every value within ±``MAX_PACK_VALUE``, what a voicepack may hold; the
    first step that does not is named. The bound is here, not in the out-of-distribution report, because every path
    to a voice (the Lab, the A/B page, ``mix`` and ``synth``) applies the recipe, while the report only advises:
    exploring beyond the stock voices is what the Lab is for.

    Args:
        recipe: the recipe.
        voices: where the recipe's voice names are looked up.
        context: the reference for PCA steps and centroids; built from ``voices`` (and cached) when needed and
            not given.

    Raises:
        RecipeError: an unknown voice, centroid or PCA component, or a step that takes values beyond
            ±``MAX_PACK_VALUE``.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> recipe = explorer.Recipe.single("af_heart").with_edit(explorer.CentroidMove("gender", "male", 0.3))
        >>> pack = explorer.apply_recipe(recipe, voices)
        >>> pack.shape, pack.dtype, pack.flags.writeable
        ((510, 256), dtype('float32'), False)
    """
    if not isinstance(recipe, Recipe):
        raise RecipeError(f"Expected a Recipe, not {type(recipe).__name__}.")
    for name in recipe.voice_names:
        if name not in voices:
            raise RecipeError(f"Unknown voice '{name}': it is not among the {len(voices)} loaded voices.")
    pack = recipe.base.build(voices)
    _check_bound(pack, f"The base ({recipe.base.describe()})")
    for index, edit in enumerate(recipe.edits, 1):
        if context is None and not isinstance(edit, (DimEdit, AttributeEdit)):
            context = RecipeContext.from_voices(voices)
        step = f"Edit {index} ({edit.describe()})"
        try:
            pack = edit.apply(pack, context)
        except RecipeError as error:
            raise RecipeError(f"{step}: {error}") from None
        _check_bound(pack, step)
    return as_pack(pack.astype(np.float32), "recipe")


def _check_bound(pack: np.ndarray, step: str) -> None:
    """Refuse ``step`` when it leaves a value beyond ±``MAX_PACK_VALUE``, saying how far it went."""
    largest = float(np.abs(pack).max())
    if not largest <= MAX_PACK_VALUE:
        raise RecipeError(
            f"{step} takes values to {largest:.3g}; a voice's values must lie within ±{MAX_PACK_VALUE:g} (the stock "
            "voices lie within about ±3.2): use smaller amounts."
        )


@dataclass(frozen=True)
class DimOutOfRange:
    """One dim of a pack's mean vector outside the stock voices' [low, high] for that dim (see ``OODReport``)."""

    dim: int
    value: float
    low: float
    high: float

    @property
    def excess(self) -> float:
        """How far outside the range the value lies (positive)."""
        return max(self.low - self.value, self.value - self.high, 0.0)

    @property
    def relative_excess(self) -> float:
        """``excess`` as a share of the stock range of the dim."""
        return self.excess / max(self.high - self.low, 1e-12)


@dataclass(frozen=True)
class OODReport:
    """How far a pack sits from the stock voices, on mean-over-rows vectors.

    ``out_of_distribution`` is true when the nearest stock voice is farther than ``distance_threshold`` (the stock
    spacing, see ``OOD_DISTANCE_FACTOR``), or a dim leaves the stock range by more than ``OOD_RANGE_MARGIN`` of it.
    Nearness is one measure throughout: the Euclidean distance of mean-over-rows vectors, as the Lab's table of
    nearest voices gives it too.
    ``dims_out_of_range`` lists every dim outside the range, largest excess first; ``cells_out_of_range`` counts the
    values of the whole pack outside the stock min/max of their row and dim, in ``rows_out_of_range`` rows.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> report = explorer.ood_report(voices["af_heart"].pack, voices)
        >>> report.nearest_voice, report.out_of_distribution, report.dims_out_of_range
        ('af_heart', False, ())
    """

    nearest_voice: str
    distance: float
    dims_out_of_range: tuple[DimOutOfRange, ...]
    cells_out_of_range: int
    rows_out_of_range: int
    distance_threshold: float
    out_of_distribution: bool

    @property
    def verdict(self) -> str:
        """"out of distribution"; "at the edge of the stock voices" where dims leave the stock range but by less than
        ``OOD_RANGE_MARGIN`` (the voice sits outside the stock cloud on some axes, as a map shows it); else "within the
        stock voices"."""
        if self.out_of_distribution:
            return "out of distribution"
        return "at the edge of the stock voices" if self.dims_out_of_range else "within the stock voices"

    def summary(self) -> str:
        """Return one sentence for the Lab's readout."""
        dims = len(self.dims_out_of_range)
        text = (
            f"{self.verdict[0].upper()}{self.verdict[1:]}: nearest stock voice {self.nearest_voice} at distance "
            f"{self.distance:.3f} (stock spacing {self.distance_threshold:.3f}); {dims} dim{'s' if dims != 1 else ''} "
            "outside the stock range"
        )
        if self.dims_out_of_range:
            worst = self.dims_out_of_range[0]
            text += f", most of all dim {worst.dim} by {worst.excess:.3f}"
        return text + "."

    def to_json(self) -> dict:
        """Return the JSON-ready figures."""
        return {
            "nearest_voice": self.nearest_voice,
            "distance": round(self.distance, 6),
            "verdict": self.verdict,
            "distance_threshold": round(self.distance_threshold, 6),
            "out_of_distribution": self.out_of_distribution,
            "cells_out_of_range": self.cells_out_of_range,
            "rows_out_of_range": self.rows_out_of_range,
            "dims_out_of_range": [
                {"dim": d.dim, "value": round(d.value, 6), "low": round(d.low, 6), "high": round(d.high, 6)}
                for d in self.dims_out_of_range
            ],
        }


def ood_report(pack: np.ndarray, voices: VoiceSet, context: RecipeContext | None = None) -> OODReport:
    """Return how far ``pack`` lies from the stock voices (``context``, by default built from ``voices``).

    Raises:
        VoiceError: ``pack`` is not a finite ``[510, 256]`` (or ``[510, 1, 256]``) array.
        RecipeError: fewer than 3 reference voices.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> extreme = explorer.Recipe.single("af_heart").with_edit(explorer.PCAStep("both", 0, 8.0))
        >>> report = explorer.ood_report(explorer.apply_recipe(extreme, voices), voices)
        >>> report.out_of_distribution, report.summary().startswith("Out of distribution")
        (True, True)
    """
    context = context or RecipeContext.from_voices(voices)
    pack = as_pack(pack, "pack")
    vector = summary_vectors(pack[None])[0]
    names = list(context.names)
    ((nearest, distance),) = nearest_voices(vector, context.vectors, names, k=1, metric="euclidean")
    low, high = context.vectors.min(axis=0), context.vectors.max(axis=0)
    outside = np.nonzero((vector < low - _RANGE_TOLERANCE) | (vector > high + _RANGE_TOLERANCE))[0]
    dims = [DimOutOfRange(int(d), float(vector[d]), float(low[d]), float(high[d])) for d in outside]
    dims.sort(key=lambda d: -d.excess)
    cells = (pack < context.row_min - _RANGE_TOLERANCE) | (pack > context.row_max + _RANGE_TOLERANCE)
    threshold = OOD_DISTANCE_FACTOR * context.spacing
    beyond_margin = any(d.relative_excess > OOD_RANGE_MARGIN for d in dims)
    return OODReport(
        nearest_voice=nearest,
        distance=distance,
        dims_out_of_range=tuple(dims),
        cells_out_of_range=int(cells.sum()),
        rows_out_of_range=int(cells.any(axis=1).sum()),
        distance_threshold=threshold,
        out_of_distribution=bool(distance > threshold or beyond_margin),
    )
