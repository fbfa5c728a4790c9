"""Named attributes and the shipped voice axes: units, the calibration curve, and a damaged file refused in one
sentence that names it and says how to rebuild it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer import attributes
from explorer.attributes import (
    ATTRIBUTES,
    AXES_PATH,
    GAIN_LIMITS,
    AttributeAxis,
    VoiceAxes,
    VoiceGain,
    attribute_change,
    load_axes,
)
from explorer.errors import AxesError
from explorer.voices import HALF


def made_axes(**changes) -> dict:
    """Axes whose every direction is a unit vector and whose calibration doubles the step: amount a is step a/2."""
    steps = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    axes = {}
    for index, name in enumerate(ATTRIBUTES):
        direction = np.zeros(256)
        direction[index if name == "brightness" else HALF + index] = 1.0
        moved = {other: (2 * steps if other == name else 0.1 * steps) for other in ATTRIBUTES}
        axes[name] = AttributeAxis(name, direction, steps, moved, {other: 0.05 * np.abs(steps) for other in ATTRIBUTES},
                                   low=-3.0, high=4.0)
    made = VoiceAxes(axes, {"af_heart": {name: 1.0 + i for i, name in enumerate(ATTRIBUTES)}}, {"built": "today"})
    data = json.loads(made.to_json())
    data.update(changes)
    return data


def write(tmp_path, data) -> object:
    path = tmp_path / "axes.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


# ------------------------------------------------------------------------------------------------ units


def test_each_attribute_states_its_change_in_its_own_unit():
    assert attribute_change("pitch", 110.0, 220.0) == pytest.approx(12.0)     # one octave, in semitones
    assert attribute_change("pitch_range", 4.0, 6.5) == pytest.approx(2.5)    # semitones of spread
    assert attribute_change("pace", 10.0, 12.0) == pytest.approx(20.0)        # 20 % faster: 1/1.2 of the time
    assert attribute_change("energy", -24.0, -21.0) == pytest.approx(3.0)     # decibels
    assert attribute_change("brightness", 2000.0, 1800.0) == pytest.approx(-10.0)


def test_spaces_and_punctuation_do_not_count_as_phonemes():
    assert attributes.phoneme_count("həlˈO wˈɜːld, ðɪs.") == len("həlˈOwˈɜːldðɪs")


# ------------------------------------------------------------------------------------------------ the calibration


def test_an_amount_is_read_through_the_calibration_curve(tmp_path):
    axis = load_axes(write(tmp_path, made_axes())).axis("pitch")
    assert axis.step(3.0) == pytest.approx(1.5)
    assert np.allclose(axis.offset(3.0), 1.5 * axis.direction)
    expected = axis.expected(3.0)
    assert expected["pitch"] == pytest.approx((3.0, 0.075))
    assert expected["pace"] == pytest.approx((0.15, 0.075))                   # the build's measured cross-talk


def gain(log_gain: float, dim0: float = 0.0) -> dict:
    """A gain model: ``log_gain`` for every voice, plus ``dim0`` times the voice's mean dim 0."""
    weights = np.zeros(256)
    weights[0] = dim0
    return {"intercept": log_gain, "weights": list(weights)}


def voice_with_dim0(value: float) -> np.ndarray:
    pack = np.zeros((510, 256))
    pack[:, 0] = value
    return pack


def test_a_voice_is_moved_by_the_amount_over_its_gain(tmp_path):
    data = made_axes()
    data["axes"]["pitch"]["gains"]["raise"] = [gain(0.0, np.log(2.0))] * 2   # gain 2 where dim 0 is 1, else 1
    axis = load_axes(write(tmp_path, data)).axis("pitch")
    answers_twice, answers_once = voice_with_dim0(1.0), voice_with_dim0(0.0)
    assert axis.gains[1][0].of(answers_twice) == pytest.approx(2.0)
    assert axis.step(3.0, answers_twice) == pytest.approx(0.75, abs=1e-3)   # half the step: it moves twice as far
    assert axis.step(3.0, answers_once) == axis.step(3.0) == pytest.approx(1.5)
    assert axis.step(-3.0, answers_twice) == pytest.approx(-1.5)            # lowering has its own gains: 1
    assert np.allclose(axis.offset(3.0, answers_twice), axis.step(3.0, answers_twice) * axis.direction)


def test_a_voices_gain_is_interpolated_between_half_its_reach_and_all_of_it(tmp_path):
    data = made_axes()                                   # reach 4 on the raising side; the curve: change 2 per step
    data["axes"]["pitch"]["gains"]["raise"] = [gain(np.log(1.5)), gain(0.0)]   # 1.5 at change 2, 1 at change 4
    axis = load_axes(write(tmp_path, data)).axis("pitch")
    voice = voice_with_dim0(0.0)
    assert axis.step(1.5, voice) == pytest.approx(0.5, abs=1e-3)            # read at 1, gain 1.5
    assert axis.step(3.0, voice) == pytest.approx(1.0, abs=1e-3)            # read at 2, gain 1.5
    assert axis.step(3.75, voice) == pytest.approx(1.5, abs=1e-3)           # read at 3, gain 1.25
    assert axis.step(4.0, voice) == pytest.approx(2.0, abs=1e-3)            # read at 4, gain 1


def test_a_weak_voice_is_moved_no_further_than_the_calibration_found_sound(tmp_path):
    data = made_axes()
    data["axes"]["pitch"]["gains"]["raise"] = [gain(float(np.log(0.5)))] * 2
    axis = load_axes(write(tmp_path, data)).axis("pitch")
    assert axis.reach == (-3.0, 4.0)
    assert axis.step(1.0, voice_with_dim0(0.0)) == pytest.approx(1.0, abs=1e-3)   # 1 over gain 0.5: the curve at 2
    assert axis.step(3.0, voice_with_dim0(0.0)) == pytest.approx(2.0)              # 6 is past the reach: held at 4


def test_what_a_voice_is_expected_to_do_is_the_amount_unless_it_is_held_at_the_reach(tmp_path):
    data = made_axes()
    data["axes"]["pitch"]["gains"]["raise"] = [gain(float(np.log(0.5)))] * 2
    axis = load_axes(write(tmp_path, data)).axis("pitch")
    weak = voice_with_dim0(0.0)
    assert axis.reading(1.0, weak) == pytest.approx((2.0, 0.5), abs=1e-3)
    assert axis.expected(1.0, weak)["pitch"] == pytest.approx((1.0, 0.025), abs=1e-3)   # the curve's spread, halved
    assert axis.expected(1.0, weak)["pace"] == pytest.approx(axis.expected(2.0)["pace"])  # cross-talk where it reads
    assert axis.reading(3.0, weak) == (4.0, 0.5)
    assert axis.expected(3.0, weak)["pitch"][0] == pytest.approx(2.0)                    # held: it falls short
    assert axis.reading(-2.0, weak) == axis.reading(-2.0) == (-2.0, 1.0)                # lowering: gain 1


def test_each_attribute_is_expected_to_move_the_voice_as_the_edits_before_it_left_it(tmp_path):
    data = made_axes()                                     # brightness moves dim 4; pitch answers twice where it is 1
    weights = np.zeros(256)
    weights[4] = np.log(2.0)
    data["axes"]["pitch"]["gains"]["raise"] = [{"intercept": 0.0, "weights": list(weights)}] * 2
    axes = load_axes(write(tmp_path, data))
    voice = np.zeros((510, 256))
    alone, = axes.effects(voice, [("pitch", 3.0)])
    brightened, after = axes.effects(voice, [("brightness", 2.0), ("pitch", 3.0)])
    assert (alone.gain, brightened.gain) == (1.0, 1.0)
    assert after.gain == pytest.approx(2.0) and after.expected["pitch"][0] == pytest.approx(3.0, abs=1e-3)
    assert not after.held and axes.effects(voice, [("pitch", -3.0)])[0].expected["pitch"][0] == -3.0
    data["axes"]["pitch"]["gains"]["raise"] = [gain(float(np.log(0.5)))] * 2
    weak, = load_axes(write(tmp_path, data)).effects(voice, [("pitch", 3.0)])
    assert weak.held and weak.expected["pitch"][0] == pytest.approx(2.0)


def test_a_predicted_gain_stays_within_the_voices_it_was_fitted_on():
    far = np.full((510, 256), 100.0)
    assert VoiceGain(0.0, np.full(256, 1.0)).of(far) == GAIN_LIMITS[1]
    assert VoiceGain(0.0, np.full(256, -1.0)).of(far) == GAIN_LIMITS[0]
    assert VoiceGain().of(far) == 1.0


@pytest.mark.parametrize("amount", [-3.5, 4.5, float("nan"), True, "2"])
def test_an_amount_outside_the_calibrated_range_is_refused(tmp_path, amount):
    axis = load_axes(write(tmp_path, made_axes())).axis("pace")
    with pytest.raises(AxesError, match="pace|Pace"):
        axis.check_amount(amount)


def test_an_unknown_attribute_names_the_known_ones(tmp_path):
    with pytest.raises(AxesError, match="Unknown attribute 'loudness'; use one of pitch, pitch_range"):
        load_axes(write(tmp_path, made_axes())).axis("loudness")


def test_the_table_lists_each_voice_with_labelled_columns(tmp_path):
    frame = load_axes(write(tmp_path, made_axes())).table_frame()
    assert list(frame.columns) == ["name", "pitch (Hz)", "pitch range (st)", "pace (/s)", "energy (LUFS)",
                                   "brightness (Hz)"]
    assert frame.iloc[0].tolist() == ["af_heart", 1.0, 2.0, 3.0, 4.0, 5.0]


# ------------------------------------------------------------------------------------------------ the shipped file


def test_the_shipped_axes_offer_every_attribute_both_ways_for_every_stock_voice(bundled_voices):
    axes = load_axes()
    assert axes.path == AXES_PATH
    assert list(axes.axes) == list(ATTRIBUTES), axes.provenance.get("dropped")
    for axis in axes.axes.values():
        assert axis.low < 0 < axis.high
        assert np.all(np.diff(axis.changes[axis.attribute]) > 0)
    assert set(axes.table) == set(bundled_voices.names)


def test_each_direction_moves_only_the_halves_that_carry_its_attribute():
    for name, axis in load_axes().axes.items():
        halves = ATTRIBUTES[name].halves
        if "decoder" not in halves:
            assert not np.any(axis.direction[:HALF]), name
        if "prosody" not in halves:
            assert not np.any(axis.direction[HALF:]), name


def test_the_file_is_read_once_per_version(tmp_path):
    path = write(tmp_path, made_axes())
    assert load_axes(path) is load_axes(path)


# ------------------------------------------------------------------------------------------------ damage


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not json", "damaged"),
        ({"format": "something else"}, "not a kokoro-explorer voice axes file"),
        (made_axes(version=99), "version 99; this explorer reads 3"),
        (made_axes(version=1), "version 1; this explorer reads 3"),  # pace was timed from the audio's edges
        (made_axes(version=2), "version 2; this explorer reads 3"),  # one gain for every voice
        (made_axes(table=[1, 2]), "table is not an object"),
        (made_axes(axes={}), "no axes"),
        (made_axes(axes={"loudness": {}}), "'loudness', not an attribute"),
    ],
    ids=["not-json", "other-format", "newer-version", "older-version", "no-gains-version", "bad-table", "no-axes",
         "unknown-axis"],
)
def test_a_damaged_file_is_refused_naming_it_and_the_rebuild_command(tmp_path, data, reason):
    path = write(tmp_path, data)
    with pytest.raises(AxesError, match="Rebuild it with `python -m explorer axes build`") as caught:
        load_axes(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda axis: axis.update(direction=axis["direction"][:10]), "direction has 10 values, not 256"),
        (lambda axis: axis.update(direction=[None] * 256), "direction is not a list of numbers"),
        (lambda axis: axis.update(steps=[2.0, 1.0, 0.0, -1.0, -2.0]), "steps are not ascending through 0"),
        (lambda axis: axis["changes"].update(pitch=[0.0] * 5), "calibration is not ascending"),
        (lambda axis: axis.update(high=99.0), "range -3 to 99 is not inside its calibration"),
        (lambda axis: axis.update(reach=[-1.0, 4.0]), "range -3 to 4 is not inside its calibration"),
        (lambda axis: axis.pop("low"), "lacks 'low'"),
        (lambda axis: axis["spread"].update(pace=[1e999] * 5), "spread of pace holds a value that is not finite"),
        (lambda axis: axis["gains"].pop("raise"), "lacks 'raise'"),
        (lambda axis: axis["gains"].update(lower=[gain(0.0)]), "gains to lower are not a pair"),
        (lambda axis: axis["gains"]["lower"][1].update(weights=[0.0] * 3),
         "gains to lower weights has 3 values, not 256"),
    ],
    ids=["short", "not-numbers", "descending", "flat", "range", "reach", "missing", "infinite", "no-gain",
         "one-gain", "short-gain"],
)
def test_a_damaged_axis_is_refused_with_what_is_wrong(tmp_path, damage, reason):
    data = made_axes()
    damage(data["axes"]["pitch"])
    with pytest.raises(AxesError, match="Rebuild it with") as caught:
        load_axes(write(tmp_path, data))
    assert reason in str(caught.value)


def test_a_missing_file_says_how_to_build_it(tmp_path):
    with pytest.raises(AxesError, match=r"No voice axes file at '.*nothing.json': build it with `python -m explorer"):
        load_axes(tmp_path / "nothing.json")


def test_a_huge_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(attributes, "MAX_AXES_BYTES", 100)
    with pytest.raises(AxesError, match="more than such a file holds"):
        load_axes(write(tmp_path, made_axes()))
