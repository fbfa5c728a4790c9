"""The preference (CMOS) and rating (MUSHRA) tests: orders drawn from a seed, results in words and numbers, exports,
and damaged session values read as a fresh test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import welch

from explorer.app import rating
from explorer.errors import ExplorerError

RATE = 24_000


def tally_of(scores_b_over_a: list[int], seed: int = 3) -> rating.PreferenceTally:
    """A preference tally whose answers, turned into B against A, are ``scores_b_over_a``."""
    tally = rating.PreferenceTally()
    for index, score in enumerate(scores_b_over_a):
        order = rating.preference_order(seed, index)
        tally = tally.record(order, score if order == "AB" else -score)
    return tally


def test_a_preference_test_plays_both_orders_and_repeats_them_for_its_seed():
    orders = [rating.preference_order(11, index) for index in range(40)]
    assert set(orders) == {"AB", "BA"} and 10 <= orders.count("AB") <= 30
    assert orders == [rating.preference_order(11, index) for index in range(40)]
    assert orders != [rating.preference_order(12, index) for index in range(40)]


def test_a_score_for_the_second_sample_counts_for_b_or_against_it_by_the_order_played():
    tally = rating.PreferenceTally().record("AB", 2).record("BA", 2)
    np.testing.assert_array_equal(tally.b_over_a, [2.0, -2.0])
    assert tally.table()[["first", "second", "score of second", "B against A"]].values.tolist() == [
        ["A", "B", 2, 2], ["B", "A", 2, -2]]


def test_a_clear_preference_is_stated_with_its_95_percent_interval():
    tally = tally_of([2, 1, 2, 3, 1, 2])
    low, high = tally.interval
    assert tally.mean == pytest.approx(11 / 6)
    assert low == pytest.approx(11 / 6 - 2.5706 * np.std([2, 1, 2, 3, 1, 2], ddof=1) / np.sqrt(6), abs=1e-3)
    assert high == pytest.approx(2 * tally.mean - low)
    assert tally.summary() == f"B against A: CMOS +1.8 (95 % interval {low:+.1f} to {high:+.1f}) over 6 trials: " \
                              "you prefer B."
    assert tally_of([-1, -2, -1, -1]).summary().endswith("you prefer A.")


def test_scores_either_side_of_zero_are_no_clear_preference():
    assert tally_of([2, -2, 1, -1, 0, 1]).summary().endswith(": no clear preference.")
    assert tally_of([1]).summary() == "B against A: CMOS +1.0 over 1 trial: too few to say."
    assert rating.PreferenceTally().summary() == "No preference trials yet."


@pytest.mark.parametrize(("order", "score"), [("BB", 1), ("AB", 4), ("AB", 1.5), ("AB", True), ("AB", "2")])
def test_a_preference_answer_off_the_scale_is_refused(order, score):
    with pytest.raises(ExplorerError, match="AB or BA|whole number from -3 to 3"):
        rating.PreferenceTally().record(order, score)


@pytest.mark.parametrize("damaged", [
    None, "scores", {"orders": ["AB"], "scores": [1, 2]}, {"orders": ["XY"], "scores": [1]},
    {"orders": ["AB"], "scores": [9]}, {"orders": ["AB"], "scores": [True]}, {"orders": ["AB"] * 1001,
                                                                           "scores": [0] * 1001}])
def test_a_damaged_preference_tally_starts_afresh(damaged):
    assert rating.PreferenceTally.from_dict(damaged) == rating.PreferenceTally()


def test_a_preference_tally_round_trips_through_session_state():
    tally = tally_of([1, 2, -1])
    assert rating.PreferenceTally.from_dict(json.loads(json.dumps(tally.to_dict()))) == tally
    assert all(time.endswith("+00:00") for time in tally.times)


def test_a_preference_test_exports_every_trial_and_its_result():
    tally = tally_of([2, 1, 2, 3])
    files = tally.export({"A": "tokenA", "B": "tokenB", "seed": 3})
    assert set(files) == {"preference-test.csv", "preference-test.json"}
    document = json.loads(files["preference-test.json"])
    assert document["stimuli"]["B"] == "tokenB" and len(document["trials"]) == 4
    assert document["result"]["cmos_b_against_a"] == pytest.approx(2.0)
    assert document["result"]["summary"] == tally.summary() and len(document["result"]["interval_95"]) == 2
    assert files["preference-test.csv"].decode().splitlines()[0] == \
        "trial,first,second,score of second,B against A,answered at"


def test_the_low_anchor_keeps_the_band_below_3_5_khz_and_removes_what_is_above():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(2 * RATE).astype(np.float32) * 0.1
    anchor = rating.low_anchor(noise, RATE)
    frequencies, before = welch(noise, RATE, nperseg=1024)
    _, after = welch(anchor, RATE, nperseg=1024)
    kept = (frequencies > 200) & (frequencies < 2500)
    removed = frequencies > 5000
    assert np.median(after[kept] / before[kept]) == pytest.approx(1.0, abs=0.1)
    assert np.max(after[removed] / before[removed]) < 1e-3
    assert anchor.dtype == np.float32 and len(anchor) == len(noise)


def test_every_rating_screen_plays_all_stimuli_in_a_new_order():
    orders = [rating.rating_order(5, screen, 5) for screen in range(4)]
    assert all(sorted(order) == [0, 1, 2, 3, 4] for order in orders)
    assert len(set(orders)) > 1 and orders == [rating.rating_order(5, screen, 5) for screen in range(4)]


CONDITIONS = (rating.HIDDEN_REFERENCE, "B", "C", rating.LOW_ANCHOR)


def sheet_of(*screens: tuple[int, int, int, int]) -> rating.RatingSheet:
    sheet = rating.RatingSheet(CONDITIONS)
    for screen in screens:
        sheet = sheet.record(dict(zip(CONDITIONS, screen)))
    return sheet


def test_ratings_give_each_stimulus_its_median_and_middle_half_best_first():
    sheet = sheet_of((100, 60, 80, 10), (95, 70, 75, 20), (100, 65, 90, 15))
    results = sheet.results()
    assert results["stimulus"].tolist() == [rating.HIDDEN_REFERENCE, "C", "B", rating.LOW_ANCHOR]
    assert results["median"].tolist() == [100, 80, 65, 15]
    assert results.loc[results["stimulus"] == "B", ["25th percentile", "75th percentile"]].values.tolist() == [
        [62.5, 67.5]]
    assert sheet.summary() == ("Median rating (middle half) over 3 screens: hidden reference 100 (98-100); "
                               "C 80 (78-85); B 65 (62-68); low anchor 15 (12-18).")


def test_a_listener_who_rates_the_hidden_reference_low_is_told_bs1534_would_leave_them_out():
    sheet = sheet_of((70, 60, 80, 10), (100, 70, 75, 20))
    assert "hidden reference was rated below 90 on 1 of 2 screens" in sheet.summary()


@pytest.mark.parametrize("ratings", [
    {"B": 50}, {**dict.fromkeys(CONDITIONS, 50), "D": 50}, {**dict.fromkeys(CONDITIONS, 50), "B": 101},
    {**dict.fromkeys(CONDITIONS, 50), "B": 50.5}, {**dict.fromkeys(CONDITIONS, 50), "B": True}])
def test_a_rating_screen_that_misses_a_stimulus_or_leaves_0_to_100_is_refused(ratings):
    with pytest.raises(ExplorerError, match="every stimulus once|whole number from 0 to 100"):
        rating.RatingSheet(CONDITIONS).record(ratings)


def test_a_rating_sheet_of_other_stimuli_or_damaged_starts_afresh():
    sheet = sheet_of((100, 60, 80, 10))
    assert rating.RatingSheet.from_dict(sheet.to_dict(), CONDITIONS) == sheet
    assert rating.RatingSheet.from_dict(sheet.to_dict(), CONDITIONS[:3]).screens == 0
    damaged = {**sheet.to_dict(), "ratings": [[100, 60, 80, 200]]}
    assert rating.RatingSheet.from_dict(damaged, CONDITIONS).screens == 0
    assert rating.RatingSheet.from_dict("ratings", CONDITIONS).screens == 0


def test_a_rating_test_exports_every_rating_and_the_per_stimulus_result():
    sheet = sheet_of((100, 60, 80, 10), (95, 70, 75, 20))
    files = sheet.export({"reference": "tokenA", "seed": 5})
    document = json.loads(files["rating-test.json"])
    first_position = rating.rating_order(5, 0, 4).index(0) + 1
    assert len(document["trials"]) == 8 and document["trials"][0] == {
        "screen": 1, "stimulus": rating.HIDDEN_REFERENCE, "played as sample": first_position, "rating": 100,
        "answered at": sheet.times[0]}
    assert [row["stimulus"] for row in document["result"]["per_stimulus"]][0] == rating.HIDDEN_REFERENCE
    assert files["rating-test.csv"].decode().splitlines()[0] == "screen,stimulus,played as sample,rating,answered at"
    assert sheet.table().columns.tolist() == ["screen", "stimulus", "rating", "answered at"]  # no seed: no position
