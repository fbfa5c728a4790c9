"""Building and checking the named attribute directions with the real offline model: the shipped file is what the
build makes (a small rebuild agrees with it), and the check measures each direction on voices it never saw."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from explorer import cli
from explorer.attributes import ATTRIBUTES, AXES_VERSION, load_axes, phoneme_count
from explorer.axes import (
    BUILD_SENTENCES,
    CHECK_SENTENCES,
    CHECK_VOICES,
    FRAME_SECONDS,
    AxesBuildConfig,
    Renderer,
    attribute_table,
    build_axes,
    check_axes,
    voices_sha256,
)
from explorer.errors import AxesError

TABLE_TOLERANCE = {"pitch": 0.02, "pitch_range": 0.15, "pace": 0.02, "energy": 0.02, "brightness": 0.03}
"""Relative agreement of a fresh measurement with the shipped table: bf16 renders differ a little between CPUs."""


@pytest.fixture(scope="module")
def engine():
    """The real offline model in the torch engine, as ``axes build`` renders it."""
    from explorer.engines import load_engine

    return load_engine("torch")


@pytest.fixture(scope="module")
def small_build(engine, bundled_voices):
    return build_axes(bundled_voices, engine, AxesBuildConfig.small())


def test_a_render_is_seeded_so_a_voice_and_its_moved_copy_hear_the_same_noise(engine, bundled_voices):
    renderer = Renderer(engine, BUILD_SENTENCES[:1], seed=3)
    pack = bundled_voices["af_heart"].pack
    assert np.array_equal(renderer.take(pack, 0).speech, renderer.take(pack, 0).speech)


def test_pace_is_read_from_the_predicted_durations_which_set_the_audios_length(engine, bundled_voices):
    renderer = Renderer(engine, BUILD_SENTENCES[:1], seed=3)
    rendered = engine.render(renderer.phonemes[0], bundled_voices["af_heart"].pack)
    take = renderer.take(bundled_voices["af_heart"].pack, 0)
    pads = (rendered.durations[0] + rendered.durations[-1]) * FRAME_SECONDS
    assert take.seconds == pytest.approx(len(rendered.audio) / 24_000 - pads)
    assert renderer.values(take, 0)["pace"] == pytest.approx(phoneme_count(renderer.phonemes[0]) / take.seconds)


def test_the_shipped_axes_name_the_voices_corpus_and_code_they_come_from():
    provenance = load_axes().provenance
    assert provenance["voices_sha256"] == voices_sha256()
    assert provenance["axes_version"] == AXES_VERSION
    assert provenance["corpus"] == list(BUILD_SENTENCES)
    config = {key: list(value) if isinstance(value, tuple) else value
              for key, value in asdict(AxesBuildConfig()).items()}
    assert provenance["config"] == config
    for used in ("fit_voices", "calibration_voices", "gain_voices"):
        assert set(CHECK_VOICES).isdisjoint(config[used]), used
    assert set(config["calibration_voices"]).isdisjoint(config["fit_voices"])  # a gain measured as new voices see it
    assert set(CHECK_SENTENCES).isdisjoint(BUILD_SENTENCES)


def test_a_fresh_measurement_of_stock_voices_agrees_with_the_shipped_table(engine, bundled_voices):
    renderer = Renderer(engine, BUILD_SENTENCES, AxesBuildConfig().seed)
    fresh = attribute_table(bundled_voices, renderer, ["af_heart", "bm_george"])
    shipped = load_axes().table
    for voice, values in fresh.items():
        for name, value in values.items():
            assert value == pytest.approx(shipped[voice][name], rel=TABLE_TOLERANCE[name]), (voice, name)


def test_the_table_ranks_voices_as_a_listener_would(bundled_voices):
    table = load_axes().table
    female = np.median([table[name]["pitch"] for name in bundled_voices.names if name[1] == "f"])
    male = np.median([table[name]["pitch"] for name in bundled_voices.names if name[1] == "m"])
    assert female > 1.4 * male                                       # women's voices about half an octave higher


def test_a_small_rebuild_finds_the_directions_the_shipped_file_holds(small_build):
    shipped = load_axes()
    assert small_build.table == {}
    assert {"pitch", "brightness"} <= set(small_build.axes)              # a minute's build finds the strongest two
    for name, axis in small_build.axes.items():
        other = shipped.axis(name).direction
        cosine = axis.direction @ other / np.linalg.norm(axis.direction) / np.linalg.norm(other)
        assert cosine > 0.5, (name, cosine)
        assert axis.low < 0 < axis.high


def test_a_small_rebuild_calibrates_its_own_steps(small_build):
    for axis in small_build.axes.values():
        own = axis.changes[axis.attribute]
        assert own[list(axis.steps).index(0.0)] == 0.0 and np.all(np.diff(own) > 0)
        assert axis.expected(axis.high)[axis.attribute][0] == pytest.approx(axis.high)


def test_a_small_rebuild_predicts_a_voices_gain_only_where_that_beats_the_voices_mean(small_build):
    for name, axis in small_build.axes.items():
        for side, gains in zip(("lower", "raise"), axis.gains):
            for point, gain in zip(("half", "all"), gains):
                fit = small_build.provenance["gains"][name][side][point]
                assert fit["voices"] == len(AxesBuildConfig.small().gain_voices), (name, side, fit)
                errors = fit["leave-one-out rms"]
                if fit["kept"] == "model":
                    assert errors["model"] < errors["mean"] and np.any(gain.weights), (name, side, fit)
                else:
                    assert not np.any(gain.weights) and errors["model"] >= errors["mean"], (name, side, fit)


def test_a_small_rebuild_offers_what_three_voices_in_four_reach_and_reads_no_further_than_its_reach(small_build):
    for axis in small_build.axes.values():
        low, high = axis.reach
        assert axis.changes[axis.attribute][0] <= low <= axis.low < 0 < axis.high <= high
        moved = axis.step(axis.high, np.zeros((510, 256)) + axis.direction)
        assert moved <= float(np.interp(high, axis.changes[axis.attribute], axis.steps)) + 1e-9


def test_the_check_moves_a_held_out_voice_the_way_asked_and_pitch_by_about_the_amount(engine, bundled_voices):
    result = check_axes(bundled_voices, engine, check_voices=["af_kore"], sentences=CHECK_SENTENCES[:1],
                        fractions=(-1.0, 1.0))
    summary = result.summary()
    assert list(summary["attribute"]) == list(load_axes().axes)
    for row in result.rows:
        assert np.sign(row["measured"]) == np.sign(row["intended"]), row
        if row["attribute"] == "pitch":  # within 17 % on all six check voices (README)
            assert abs(row["measured"] - row["intended"]) <= 0.25 * abs(row["intended"]), row
    assert set(summary.columns) >= {"worst error %", "monotonic", "worst cross-talk %", "worst WER", "goals met"}


def test_the_check_says_how_each_voice_answered_against_its_predicted_gain(engine, bundled_voices):
    axes = load_axes()
    result = check_axes(bundled_voices, engine, check_voices=["af_kore"], sentences=CHECK_SENTENCES[:1],
                        fractions=(-1.0, 1.0))
    assert len(result.answers) == 2 * len(axes.axes)
    for answer, row in zip(result.answers, result.rows):        # one voice: its change is the median
        axis = axes.axis(answer["attribute"])
        amount = axis.high if answer["intended"] > 0 else axis.low                # fractions -1 and 1: the ends
        effect, = axes.effects(bundled_voices["af_kore"].pack, [(axis.attribute, amount)])
        assert answer["voice"] == "af_kore" and answer["measured"] == row["measured"]
        assert answer["predicted gain"] == round(effect.gain, 3) and answer["held"] == effect.held
        assert answer["measured gain"] == pytest.approx(answer["measured"] / effect.read, abs=2e-3)
    gains = result.gains()
    assert [(row.attribute, row.side) for row in gains.itertuples()] == [
        (name, side) for name in axes.axes for side in ("lower", "raise")]
    assert set(gains["held at the reach"]) <= {"0 of 1", "1 of 1"}


def test_the_check_measures_the_axes_it_is_given_not_the_shipped_ones(engine, bundled_voices, small_build):
    result = check_axes(bundled_voices, engine, small_build, check_voices=["af_kore"], sentences=CHECK_SENTENCES[:1],
                        fractions=(1.0,))
    assert [(row["attribute"], row["intended"]) for row in result.rows] == [
        (name, round(axis.high, 3)) for name, axis in small_build.axes.items()]


def test_a_build_or_check_naming_voices_that_are_not_loaded_is_refused(engine, bundled_voices):
    with pytest.raises(AxesError, match="needs voices that are not loaded: xx_nobody"):
        build_axes(bundled_voices, engine, AxesBuildConfig(fit_voices=("af_heart", "xx_nobody")))
    with pytest.raises(AxesError, match="needs voices that are not loaded: xx_nobody"):
        check_axes(bundled_voices, engine, check_voices=["xx_nobody"])


def test_the_cli_says_in_one_line_when_the_axes_file_is_missing_or_the_output_cannot_be_written(tmp_path, capsys):
    assert cli.main(["axes", "check", "--axes", str(tmp_path / "none.json")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: No voice axes file at '{tmp_path / 'none.json'}': build it with `python -m explorer axes build`."]
    assert cli.main(["axes", "build", "--small", "--out", str(tmp_path / "no" / "such" / "axes.json")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_each_attribute_has_words_for_a_newcomer():
    for attribute in ATTRIBUTES.values():
        assert attribute.help.endswith(".") and attribute.unit_words and attribute.label


def calibration(own: list[list[float]], other: float = 0.0, wer: float = 0.0, similarity: float = 0.95):
    """A pitch calibration over steps -2..2 of two voices and one sentence, with ``own[step][voice]`` pitch changes
    and the same ``other`` change of pace at every step."""
    from explorer.axes import _Calibration

    changes = np.zeros((5, 2, 1, len(ATTRIBUTES)))
    changes[:, :, 0, 0] = own
    changes[:, :, 0, 2] = other
    changes[2] = 0.0
    shape = (5, 2, 1)
    return _Calibration(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), changes, np.full(shape, wer), np.full(shape, similarity))


RANGES = {"pitch": 8.0, "pitch_range": 4.0, "pace": 30.0, "energy": 5.0, "brightness": 50.0}


def test_the_range_offered_ends_at_the_last_step_every_voice_reached_monotonically():
    from explorer.axes import _offered

    steady = calibration([[-4, -4.2], [-2, -1.9], [0, 0], [2, 2.2], [4, 3.8]])
    assert _offered(steady, "pitch", RANGES) == (pytest.approx(-4.1), pytest.approx(3.9))
    one_voice_turns = calibration([[-4, -4.2], [-2, -1.9], [0, 0], [2, 2.2], [4, 1.5]])
    assert _offered(one_voice_turns, "pitch", RANGES) == (pytest.approx(-4.1), pytest.approx(2.1))
    assert one_voice_turns.failures("pitch", RANGES)[4] == "not monotonic for every voice"


def test_cross_talk_and_lost_speech_end_the_range():
    from explorer.axes import _offered

    moves_pace = calibration([[-4, -4], [-2, -2], [0, 0], [2, 2], [4, 4]], other=2.7)  # the build holds 8 % of 30
    assert _offered(moves_pace, "pitch", RANGES) == (0.0, 0.0)
    assert moves_pace.failures("pitch", RANGES)[3] == "cross-talk on pace +2.7 %"
    assert not calibration([[-4, -4], [-2, -2], [0, 0], [2, 2], [4, 4]], other=2.3).failures("pitch", RANGES)[3]
    mumbles = calibration([[-4, -4], [-2, -2], [0, 0], [2, 2], [4, 4]], wer=0.2, similarity=0.7)
    assert mumbles.failures("pitch", RANGES)[1] == "word error rate 0.20; similarity 0.70"

