"""Named attributes and the shipped voice axes: units, the calibration curve, and a damaged file refused in one
sentence that names it and says how to rebuild it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer import attributes
from explorer.attributes import ATTRIBUTES, AXES_PATH, AttributeAxis, VoiceAxes, attribute_change, load_axes
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
        (made_axes(version=99), "version 99; this explorer reads 2"),
        (made_axes(version=1), "version 1; this explorer reads 2"),  # pace was timed from the audio's edges
        (made_axes(table=[1, 2]), "table is not an object"),
        (made_axes(axes={}), "no axes"),
        (made_axes(axes={"loudness": {}}), "'loudness', not an attribute"),
    ],
    ids=["not-json", "other-format", "newer-version", "older-version", "bad-table", "no-axes", "unknown-axis"],
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
        (lambda axis: axis.pop("low"), "lacks 'low'"),
        (lambda axis: axis["spread"].update(pace=[1e999] * 5), "spread of pace holds a value that is not finite"),
    ],
    ids=["short", "not-numbers", "descending", "flat", "range", "missing", "infinite"],
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
