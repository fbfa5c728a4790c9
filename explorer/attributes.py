"""Named attributes of a voice (pitch, pitch range, pace, energy, brightness) and the calibrated directions that move
a voice along each one by an amount in the attribute's own unit.

A listener thinks in "two semitones higher" or "20 % faster", not in PCA components. Each :class:`Attribute` says
what is measured in a render and in which unit a change is stated; :func:`attribute_change` turns two measurements
into that change. The directions themselves are measured by ``python -m explorer axes build`` (``explorer.axes``)
and shipped as ``assets/axes/voice-axes.json``; :func:`load_axes` reads and checks that file, so the app, the CLI
and recipes (``{"type": "attribute", ...}``) never have to build them.

An :class:`AttributeAxis` is a style direction (a 256-vector added to every row of a pack) with its calibration:
the median change of every attribute measured at a few steps along it, over voices and texts, with the spread. An
amount is mapped to a step through that curve, so amount 1 does what it says on average; the axis offers only the
range where the build found speech intact and the change monotonic.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.errors import AxesError, shown
from explorer.paths import ASSETS_DIR
from explorer.voices import STYLE_DIM

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ATTRIBUTES",
    "AXES_FORMAT",
    "AXES_PATH",
    "AXES_VERSION",
    "REBUILD_COMMAND",
    "Attribute",
    "AttributeAxis",
    "AttributeEffect",
    "VoiceAxes",
    "VoiceGain",
    "attribute_change",
    "load_axes",
    "phoneme_count",
]

AXES_PATH = ASSETS_DIR / "axes" / "voice-axes.json"
"""The shipped directions, calibration and attribute table of the stock voices."""
AXES_FORMAT = "kokoro-explorer voice axes"
"""What the file's ``format`` field says, so another JSON file is not mistaken for one."""
AXES_VERSION = 3
"""Bumped when the file's layout or the way attributes are measured changes; an older file is refused."""
GAIN_SIDES = ("lower", "raise")
"""The file's names for an axis's two sides, each with its gains at half its reach and at its reach."""
REBUILD_COMMAND = "python -m explorer axes build"
"""The command that measures the axes and writes ``AXES_PATH``."""
MAX_AXES_BYTES = 4 * 1024 * 1024
GAIN_GRID = 401
"""How finely ``AttributeAxis.step`` reads the curve when it solves for a voice's gain."""
GAIN_LIMITS = (0.5, 2.0)
"""The least and the most a voice's predicted gain may be: the stock voices' measured gains lie within them, and
further out the model would extrapolate beyond every voice it was fitted on."""


@dataclass(frozen=True)
class Attribute:
    """One thing a listener hears, how it is measured in a render, and the unit its changes are stated in.

    Attributes:
        name: the key recipes and the CLI use ("pitch").
        label: the name shown to a person ("Pitch").
        unit: the unit of a change ("st").
        unit_words: the unit in words ("semitones").
        value_label: what the attribute table shows for a voice ("median F0").
        value_unit: the unit of that value ("Hz").
        halves: the halves of the style the direction may move ("prosody", "decoder").
        help: one plain sentence for a newcomer.
    """

    name: str
    label: str
    unit: str
    unit_words: str
    value_label: str
    value_unit: str
    halves: tuple[str, ...]
    help: str


ATTRIBUTES: dict[str, Attribute] = {
    attribute.name: attribute
    for attribute in (
        Attribute("pitch", "Pitch", "st", "semitones", "median F0", "Hz", ("prosody",),
                  "How high the voice is: the median pitch, in semitones (12 make an octave)."),
        Attribute("pitch_range", "Pitch range", "st", "semitones", "F0 spread (10th-90th percentile)", "st",
                  ("prosody",), "How much the pitch moves over a sentence (intonation): flat to lively, in semitones."),
        Attribute("pace", "Pace", "%", "percent", "phonemes per second", "/s", ("prosody",),
                  "How fast the voice speaks: +20 % says the same text in 1/1.2 of the time. Independent of Speed."),
        Attribute("energy", "Energy", "dB", "decibels", "loudness", "LUFS", ("decoder", "prosody"),
                  "How loud and forceful the voice is: its integrated loudness, in decibels."),
        Attribute("brightness", "Brightness", "%", "percent", "spectral centroid", "Hz", ("decoder",),
                  "How bright or dark the timbre is: the centre of mass of its spectrum, in percent."),
    )
}
"""The named attributes, in the order pages list them."""

_RELATIVE = {"pace", "brightness"}
_LOGARITHMIC = {"pitch"}
_PUNCTUATION = frozenset(" .,!?;:-—…\"'()«»“”¡¿")


def phoneme_count(phonemes: str) -> int:
    """Return how many sounding symbols ``phonemes`` holds: spaces and punctuation do not count toward pace."""
    return sum(1 for symbol in phonemes if symbol not in _PUNCTUATION)


def attribute_change(name: str, before: float, after: float) -> float:
    """Return the change from ``before`` to ``after`` (two values as the attribute table states them) in the
    attribute's unit: semitones for pitch, the difference for pitch range (semitones) and energy (dB), percent for
    pace and brightness.

    Example:
        >>> from explorer.attributes import attribute_change
        >>> round(attribute_change("pitch", 100.0, 200.0), 6), round(attribute_change("pace", 10.0, 12.0), 6)
        (12.0, 20.0)
    """
    if name in _LOGARITHMIC:
        return 12.0 * math.log2(after / before)
    if name in _RELATIVE:
        return 100.0 * (after / before - 1.0)
    return after - before


@dataclass(frozen=True, eq=False)
class VoiceGain:
    """How many times the calibration curve's change a voice gets from a step along a direction, predicted from where
    the voice sits in the style space: ``log(gain) = intercept + weights . v``, ``v`` the pack's mean over rows.

    Voices answer one step differently, by up to 2x (the voices far along the decoder's first principal component
    brighten more, the higher voices move fewer semitones), so the attribute edit reads the curve where the curve's
    change times the voice's gain is the amount asked. The default (zero weights and intercept) is a gain of 1.

    Attributes:
        intercept: the log gain where ``v`` is zero (with zero weights: every voice's log gain).
        weights: float64 ``[256]``.
    """

    intercept: float = 0.0
    weights: np.ndarray = field(default_factory=lambda: np.zeros(STYLE_DIM), repr=False)

    def of(self, pack: np.ndarray) -> float:
        """Return the gain of a voice pack (``[510, 256]`` or ``[510, 1, 256]``), within ``GAIN_LIMITS``."""
        vector = np.asarray(pack, dtype=np.float64).reshape(-1, STYLE_DIM).mean(axis=0)
        return float(np.exp(np.clip(self.intercept + self.weights @ vector, *np.log(GAIN_LIMITS))))


@dataclass(frozen=True, eq=False)
class AttributeAxis:
    """A calibrated direction for one attribute.

    Attributes:
        attribute: the attribute's name.
        direction: float64 ``[256]``: the style change of one step.
        steps: the calibration steps along ``direction``, ascending, 0 included.
        changes: per attribute name, the median change measured at each step (this attribute's own is ascending).
        spread: per attribute name, half the interquartile range of those changes over voices and texts.
        low: the most negative amount offered, in the attribute's unit: what three voices in four reach.
        high: the most positive amount offered.
        gains: per side (lowering, raising), the voices' gain where the curve reads half its reach and where it
            reads all of it; in between it is interpolated, below half it is the first.
        reach: the least and most change the curve is read at: where the calibration voices stayed within every
            goal. A voice that answers weakly is moved at most this far, never past a step the build found sound.
    """

    attribute: str
    direction: np.ndarray = field(repr=False)
    steps: np.ndarray = field(repr=False)
    changes: Mapping[str, np.ndarray] = field(repr=False)
    spread: Mapping[str, np.ndarray] = field(repr=False)
    low: float
    high: float
    gains: tuple[tuple[VoiceGain, VoiceGain], tuple[VoiceGain, VoiceGain]] = ((VoiceGain(), VoiceGain()),
                                                                             (VoiceGain(), VoiceGain()))
    reach: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.reach is None:
            object.__setattr__(self, "reach", (self.low, self.high))

    @property
    def unit(self) -> str:
        """The unit of an amount ("st", "%", "dB")."""
        return ATTRIBUTES[self.attribute].unit

    def check_amount(self, amount: float) -> float:
        """Return ``amount`` as a float if the axis offers it.

        Raises:
            AxesError: not a finite number, or outside ``low``..``high``.
        """
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
            raise AxesError(f"A {self.attribute} amount must be a finite number, not {shown(amount)}.")
        if not self.low - 1e-9 <= amount <= self.high + 1e-9:
            raise AxesError(
                f"{ATTRIBUTES[self.attribute].label} {amount:+g} {self.unit} is outside the calibrated range "
                f"{self.low:+g} to {self.high:+g} {self.unit}."
            )
        return float(amount)

    def reading(self, amount: float, pack: np.ndarray | None = None) -> tuple[float, float]:
        """Return where the calibration curve is read to move ``pack`` by ``amount`` (the curve's change there, in
        the attribute's unit) and the voice's predicted gain there. Without a pack: ``amount`` and 1 (the median
        calibration voice). With one: where the curve's change times the gain is ``amount``, but never past
        ``reach``, so a voice that answers weakly may fall short."""
        amount = self.check_amount(amount)
        if pack is None or amount == 0:
            return amount, 1.0
        side = 1 if amount > 0 else 0
        points = [gain.of(pack) for gain in self.gains[side]]
        read = np.linspace(0.0, self.reach[side], GAIN_GRID)
        gains = np.interp(read / self.reach[side], [0.5, 1.0], points)
        reached = np.abs(read * gains)
        past = np.flatnonzero(reached >= abs(amount))
        if not past.size:
            return self.reach[side], float(gains[-1])
        window = slice(past[0] - 1, past[0] + 1)
        at = float(np.interp(abs(amount), reached[window], read[window]))
        return at, float(np.interp(at / self.reach[side], [0.5, 1.0], points))

    def step(self, amount: float, pack: np.ndarray | None = None) -> float:
        """Return how far along ``direction`` moves ``pack`` by ``amount`` (see ``reading``)."""
        return float(np.interp(self.reading(amount, pack)[0], self.changes[self.attribute], self.steps))

    def offset(self, amount: float, pack: np.ndarray | None = None) -> np.ndarray:
        """Return the float64 ``[256]`` style change that moves ``pack`` (without one: the median calibration voice)
        by ``amount`` of the attribute."""
        return self.step(amount, pack) * self.direction

    def expected(self, amount: float, pack: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
        """Return what the build measured where ``pack`` (without one: the median calibration voice) is moved by
        ``amount``: per attribute, (median change, spread), interpolated between calibration steps. The attribute's
        own is the curve's times the voice's predicted gain (``amount`` unless the voice is held at the reach); the
        others are the cross-talk measured at that step."""
        read, gain = self.reading(amount, pack)
        step = float(np.interp(read, self.changes[self.attribute], self.steps))
        found = {name: (float(np.interp(step, self.steps, self.changes[name])),
                        float(np.interp(step, self.steps, self.spread[name]))) for name in self.changes}
        found[self.attribute] = (read * gain, found[self.attribute][1] * gain)
        return found


@dataclass(frozen=True)
class AttributeEffect:
    """What moving one voice by ``amount`` of ``attribute`` is expected to do: ``expected`` as
    ``AttributeAxis.expected`` gives it for the voice, where the calibration curve is ``read`` (its change there)
    and the voice's predicted ``gain`` there."""

    attribute: str
    amount: float
    expected: Mapping[str, tuple[float, float]]
    read: float
    gain: float

    @property
    def held(self) -> bool:
        """Whether the voice answers too weakly to reach the amount within the calibrated reach (it falls short)."""
        return abs(self.read * self.gain) < abs(self.amount) * 0.99


@dataclass(frozen=True, eq=False)
class VoiceAxes:
    """Everything ``axes build`` measured: one axis per attribute, the attribute values of every stock voice, and
    where it all came from.

    Attributes:
        axes: attribute name to its axis, in ``ATTRIBUTES`` order; an attribute the build could not offer is absent
            (``provenance["dropped"]`` says why).
        table: voice name to its measured values (attribute name to the value in ``value_unit``).
        provenance: what the directions were built from (voices' hash, corpus, code version, engine, date...).
        path: the file they were read from, if any.
    """

    axes: Mapping[str, AttributeAxis]
    table: Mapping[str, Mapping[str, float]]
    provenance: Mapping[str, object]
    path: Path | None = None

    def axis(self, name: object) -> AttributeAxis:
        """Return the axis of attribute ``name``.

        Raises:
            AxesError: no such attribute among the axes.
        """
        if not isinstance(name, str) or name not in self.axes:
            raise AxesError(f"Unknown attribute {shown(name)}; use one of {', '.join(self.axes)}.")
        return self.axes[name]

    def effects(self, pack: np.ndarray, amounts: Sequence[tuple[str, float]]) -> list[AttributeEffect]:
        """Return what each ``(attribute, amount)`` is expected to do to ``pack``, each moving the voice the ones
        before it moved, in order, as a recipe's attribute edits do.

        Raises:
            AxesError: an unknown attribute or an amount outside its range.
        """
        moved, found = np.asarray(pack, dtype=np.float64), []
        for name, amount in amounts:
            axis = self.axis(name)
            found.append(AttributeEffect(name, float(amount), axis.expected(amount, moved),
                                         *axis.reading(amount, moved)))
            moved = moved + axis.offset(amount, moved)
        return found

    def table_frame(self) -> pd.DataFrame:
        """Return the attribute table as a DataFrame: one row per voice ("name"), one column per attribute, headed
        by its label and value unit ("pitch (Hz)")."""
        import pandas as pd

        columns = {name: f"{attribute.label.lower()} ({attribute.value_unit})"
                   for name, attribute in ATTRIBUTES.items()}
        rows = [{"name": voice, **{columns[name]: values.get(name) for name in ATTRIBUTES}}
                for voice, values in self.table.items()]
        return pd.DataFrame(rows, columns=["name", *columns.values()])

    def to_json(self) -> str:
        """Return the file's text: JSON, floats rounded to 7 significant digits."""
        def numbers(values: np.ndarray) -> list[float]:
            return [float(f"{value:.7g}") for value in np.asarray(values, dtype=np.float64)]

        data = {
            "format": AXES_FORMAT,
            "version": AXES_VERSION,
            "provenance": dict(self.provenance),
            "axes": {
                name: {
                    "direction": numbers(axis.direction),
                    "steps": numbers(axis.steps),
                    "changes": {other: numbers(values) for other, values in axis.changes.items()},
                    "spread": {other: numbers(values) for other, values in axis.spread.items()},
                    "low": float(f"{axis.low:.7g}"),
                    "high": float(f"{axis.high:.7g}"),
                    "reach": numbers(axis.reach),
                    "gains": {side: [{"intercept": float(f"{gain.intercept:.7g}"), "weights": numbers(gain.weights)}
                                     for gain in gains] for side, gains in zip(GAIN_SIDES, axis.gains)},
                }
                for name, axis in self.axes.items()
            },
            "table": {voice: {name: float(f"{value:.7g}") for name, value in values.items()}
                      for voice, values in self.table.items()},
        }
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, path: Path | None = None) -> VoiceAxes:
        """Parse and check a voice axes file.

        Raises:
            AxesError: not JSON, another format or version, or any field missing, mistyped or not finite; the
                message names ``path`` and how to rebuild the file.
        """
        where = f"The voice axes file '{path}'" if path is not None else "The voice axes"
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != AXES_FORMAT:
                raise ValueError(f"it is not a {AXES_FORMAT} file")
            if data.get("version") != AXES_VERSION:
                raise ValueError(f"it has version {str(data.get('version'))[:20]}; this explorer reads {AXES_VERSION}")
            found = _object(data["axes"], "axes")
            unknown = sorted(set(found) - set(ATTRIBUTES))
            if unknown or not found:
                raise ValueError(f"its axes name {shown(unknown[0])}, not an attribute" if unknown
                                 else "it has no axes")
            axes = {name: _axis(name, found[name]) for name in ATTRIBUTES if name in found}
            table = {str(voice): _values(values, f"table row {shown(voice)}")
                     for voice, values in _object(data["table"], "table").items()}
            provenance = _object(data["provenance"], "provenance")
        except (ValueError, KeyError, TypeError) as error:
            reason = f"it lacks {error}" if isinstance(error, KeyError) else str(error)
            raise AxesError(f"{where} is damaged: {reason}. Rebuild it with `{REBUILD_COMMAND}`.") from None
        return cls(axes=axes, table=table, provenance=provenance, path=path)


def _object(value: object, label: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"its {label} is not an object")
    return value


def _vector(value: object, label: str, size: int | None = None) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"its {label} is not a list of numbers")
    array = np.array(value, dtype=np.float64)
    if size is not None and array.size != size:
        raise ValueError(f"its {label} has {array.size} values, not {size}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"its {label} holds a value that is not finite")
    return array


def _values(value: object, label: str) -> dict[str, float]:
    row = _object(value, label)
    return {name: float(_vector([row[name]], f"{label} {name}")[0]) for name in ATTRIBUTES if name in row}


def _axis(name: str, value: object) -> AttributeAxis:
    data = _object(value, f"{name} axis")
    steps = _vector(data["steps"], f"{name} steps")
    if steps.size < 3 or np.any(np.diff(steps) <= 0) or 0.0 not in steps:
        raise ValueError(f"its {name} steps are not ascending through 0")
    changes = {other: _vector(_object(data["changes"], f"{name} changes")[other], f"{name} changes of {other}",
                              steps.size) for other in ATTRIBUTES}
    spread = {other: _vector(_object(data["spread"], f"{name} spread")[other], f"{name} spread of {other}",
                             steps.size) for other in ATTRIBUTES}
    if np.any(np.diff(changes[name]) <= 0):
        raise ValueError(f"its {name} calibration is not ascending")
    low, high = (float(_vector([data[end]], f"{name} {end}")[0]) for end in ("low", "high"))
    reach_low, reach_high = _vector(data["reach"], f"{name} reach", 2)
    if not changes[name][0] - 1e-9 <= reach_low <= low < 0 < high <= reach_high <= changes[name][-1] + 1e-9:
        raise ValueError(f"its {name} range {low:g} to {high:g} is not inside its calibration")
    gains = _object(data["gains"], f"{name} gains")
    return AttributeAxis(name, _vector(data["direction"], f"{name} direction", STYLE_DIM), steps, changes, spread,
                         low, high, tuple(_gains(gains[side], f"{name} gains to {side}") for side in GAIN_SIDES),
                         (float(reach_low), float(reach_high)))


def _gains(value: object, label: str) -> tuple[VoiceGain, VoiceGain]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"its {label} are not a pair")
    return tuple(VoiceGain(float(_vector([_object(data, label)["intercept"]], f"{label} intercept")[0]),
                           _vector(data["weights"], f"{label} weights", STYLE_DIM)) for data in value)


_LOADED: dict[tuple[str, int, int], VoiceAxes] = {}
_LOADED_LOCK = threading.Lock()


def load_axes(path: Path | str | None = None) -> VoiceAxes:
    """Return the voice axes in ``path`` (the shipped ``AXES_PATH`` by default), read once per file version.

    Raises:
        AxesError: the file is missing, too large, unreadable or damaged; the message says how to rebuild it.

    Example:
        >>> import explorer
        >>> axes = explorer.load_axes()
        >>> list(axes.axes)
        ['pitch', 'pitch_range', 'pace', 'energy', 'brightness']
        >>> axes.axis("pitch").offset(2.0).shape
        (256,)
    """
    file = Path(AXES_PATH if path is None else path)
    try:
        status = file.stat()
    except OSError:
        raise AxesError(f"No voice axes file at '{file}': build it with `{REBUILD_COMMAND}`.") from None
    if status.st_size > MAX_AXES_BYTES:
        raise AxesError(f"The voice axes file '{file}' is {status.st_size} bytes, more than such a file holds; "
                        f"rebuild it with `{REBUILD_COMMAND}`.")
    key = (str(file.resolve()), status.st_mtime_ns, status.st_size)
    with _LOADED_LOCK:
        if key in _LOADED:
            return _LOADED[key]
    try:
        text = file.read_bytes()
    except OSError as error:
        raise AxesError(f"The voice axes file '{file}' cannot be read ({error.strerror}): rebuild it with "
                        f"`{REBUILD_COMMAND}`.") from None
    axes = VoiceAxes.from_json(text, file)
    with _LOADED_LOCK:
        _LOADED[key] = axes
    return axes
