"""Shared listening tests: a link defines the test, every listener gets the same stimuli in an order of their own,
answers land in SQLite (WAL) and the results view pools every listener; hostile links and answers are refused with
one sentence."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

import pytest

from explorer.app import shared_tests
from explorer.app.shared_tests import AnswerStore, SharedTest, SharedTestError
from explorer.recipe import Recipe

HEART, ADAM, EMMA = (Recipe.single(name).to_token() for name in ("af_heart", "am_adam", "bf_emma"))
ABX = SharedTest("blind ABX", (HEART, ADAM), "Hello there.", "a", 1.0, "auto", 8, 7)
PREFERENCE = replace(ABX, kind="preference (CMOS)", trials=4)
RATING = replace(ABX, kind="rating (MUSHRA)", recipes=(HEART, ADAM, EMMA), trials=2)
LISTENERS = ("a1b2c3d4e5f6a7b8", "0011223344556677")


@pytest.fixture
def store(tmp_path, monkeypatch) -> AnswerStore:
    monkeypatch.setenv(shared_tests.LISTENING_DB_VARIABLE, str(tmp_path / "answers" / "tests.sqlite3"))
    return AnswerStore()


@pytest.mark.parametrize("test", [ABX, PREFERENCE, RATING], ids=["abx", "preference", "rating"])
def test_a_test_link_carries_the_whole_definition(test):
    query = test.to_query()
    assert SharedTest.from_query(query) == test
    assert query["recipes"].count(".") == len(test.recipes) - 1 and query["test"] in ("abx", "preference", "rating")


def test_each_definition_has_its_own_id_and_each_listener_their_own_order():
    assert ABX.test_id == SharedTest.from_query(ABX.to_query()).test_id
    assert len({ABX.test_id, PREFERENCE.test_id, RATING.test_id, replace(ABX, seed=8).test_id}) == 4
    seeds = {ABX.listener_seed(listener) for listener in LISTENERS}
    assert len(seeds) == 2 and all(0 <= seed < 2**32 for seed in seeds)
    assert RATING.conditions == ("hidden reference", "B", "C", "low anchor")


@pytest.mark.parametrize(("change", "message"), [
    ({"seed": None}, "lacks seed"),
    ({"test": "<script>"}, "test '<script>' is not one of abx, preference, rating"),
    ({"recipes": HEART}, "compares 2 recipes; this link has 1"),
    ({"recipes": ".".join([HEART] * 3)}, "compares 2 recipes; this link has 3"),
    ({"recipes": f"{HEART}.<b>x</b>"}, "recipe B: The recipe string is not URL-safe base64"),
    ({"text": " "}, "This test link's text is empty."),
    ({"text": "x" * 1001}, "a link carries at most 1,000"),
    ({"lang": "zz"}, "language 'zz' is not one of"),
    ({"speed": "inf"}, "speed 'inf' is not one of 0.5 to 2"),
    ({"engine": "gpu"}, "engine 'gpu' is not one of auto"),
    ({"trials": "9"}, "has 8, 12, 16, 24 trials; this link asks for 9"),
    ({"trials": "1e400"}, "trials '1e400' is not a whole number"),
    ({"trials": "8.5"}, "trials '8.5' is not a whole number"),
    ({"seed": "-1"}, "seed must lie between 0 and 4294967295"),
    ({"seed": "99999999999"}, "seed must lie between 0 and 4294967295"),
    ({"match": "yes"}, "match must be 0 or 1"),
])
def test_a_hostile_or_broken_test_link_is_refused_with_one_sentence(change, message):
    query = {key: value for key, value in {**ABX.to_query(), **change}.items() if value is not None}
    with pytest.raises(SharedTestError, match=message.replace("(", r"\(").replace(".", r"\.")):
        SharedTest.from_query(query)


def test_a_rating_link_takes_up_to_four_more_recipes():
    six = SharedTest.from_query({**RATING.to_query(), "recipes": ".".join([HEART, ADAM, *[EMMA] * 4])})
    assert len(six.conditions) == 7
    with pytest.raises(SharedTestError, match="compares 2 to 6 recipes; this link has 7"):
        SharedTest.from_query({**RATING.to_query(), "recipes": ".".join([HEART, ADAM, *[EMMA] * 5])})


@pytest.mark.parametrize(("name", "expected"), [("  Ana ", "Ana"), ("", "anonymous"), ("Zoë Ø", "Zoë Ø")])
def test_a_listener_name_is_trimmed_and_none_is_anonymous(name, expected):
    assert shared_tests.listener_name(name) == expected


@pytest.mark.parametrize(("name", "message"), [("x" * 41, "at most 40"), ("a\nb", "control characters"),
                                               (None, "must be text")])
def test_a_listener_name_that_is_too_long_or_holds_control_characters_is_refused(name, message):
    with pytest.raises(SharedTestError, match=message):
        shared_tests.listener_name(name)


def test_the_store_is_created_on_first_use_where_the_variable_says_in_wal_mode(store, tmp_path):
    assert not store.path.exists()
    assert store.record(ABX, LISTENERS[0], "Ana", 0, "AB")
    assert store.path == tmp_path / "answers" / "tests.sqlite3" and store.path.is_file()
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_results_pool_every_listener_and_keep_each_ones_own_result(store):
    for trial, answer in enumerate(["AA", "BB", "AB", "BB"]):
        store.record(ABX, LISTENERS[0], "Ana", trial, answer)
    for trial, answer in enumerate(["AA", "BA"]):
        store.record(ABX, LISTENERS[1], "", trial, answer)
    results = store.results(ABX)
    assert results.listeners == 2 and sorted(results.pooled().answers) == ["AA", "AA", "AB", "BA", "BB", "BB"]
    assert results.summary() == "2 listeners, all answers together: 4 of 6 correct: not enough to say you can tell " \
                                "them apart (guessing does this well 34 times in 100 runs)."
    table = results.table().sort_values("listener")
    assert table.values.tolist() == [
        ["Ana", 4, results.tally(["AA", "BB", "AB", "BB"]).summary()],
        ["anonymous", 2, results.tally(["AA", "BA"]).summary()]]
    assert store.answered(ABX, LISTENERS[1]) == ("AA", "BA") and store.answered(PREFERENCE, LISTENERS[1]) == ()


def test_preference_and_rating_answers_pool_into_their_own_results(store):
    store.record(PREFERENCE, LISTENERS[0], "Ana", 0, {"order": "AB", "score": 2})
    store.record(PREFERENCE, LISTENERS[1], "Ben", 0, {"order": "BA", "score": -1})
    assert sorted(store.results(PREFERENCE).pooled().b_over_a.tolist()) == [1.0, 2.0]
    store.record(RATING, LISTENERS[0], "Ana", 0, [100, 60, 40, 10])
    store.record(RATING, LISTENERS[1], "Ben", 0, [90, 70, 30, 20])
    results = store.results(RATING).pooled().results()
    assert dict(zip(results["stimulus"], results["median"])) == {"hidden reference": 95, "B": 65, "C": 35,
                                                                 "low anchor": 15}


def test_an_answer_given_twice_counts_once_and_the_first_stands(store):
    assert store.record(ABX, LISTENERS[0], "Ana", 0, "AB")
    assert not store.record(ABX, LISTENERS[0], "Ana", 0, "AA")
    assert store.answered(ABX, LISTENERS[0]) == ("AB",)


@pytest.mark.parametrize(("test", "answer"), [
    (ABX, "AC"), (ABX, "ABA"), (ABX, 1), (PREFERENCE, {"order": "AB", "score": 5}), (PREFERENCE, {"order": "AB"}),
    (PREFERENCE, "AB"), (RATING, [100, 50, 50]), (RATING, [100, 50, 50, 101]), (RATING, "1234"),
])
def test_an_answer_the_test_does_not_take_is_refused_and_nothing_is_stored(store, test, answer):
    with pytest.raises(SharedTestError, match="This answer cannot be stored"):
        store.record(test, LISTENERS[0], "Ana", 0, answer)
    assert not store.path.exists() or store.results(test).listeners == 0


@pytest.mark.parametrize(("trial", "listener", "message"), [
    (8, LISTENERS[0], "numbered 0 to 7; an answer to trial '8' cannot"), (-1, LISTENERS[0], "trial '-1'"),
    (True, LISTENERS[0], "trial 'True'"), (0, "../other", "letters and digits"), (0, "short", "letters and digits")])
def test_a_trial_outside_the_test_or_a_forged_listener_id_is_refused(store, trial, listener, message):
    with pytest.raises(SharedTestError, match=message):
        store.record(ABX, listener, "Ana", trial, "AB")


def test_a_full_test_or_a_full_store_takes_no_more(store, monkeypatch):
    monkeypatch.setattr(shared_tests, "MAX_LISTENERS", 1)
    store.record(ABX, LISTENERS[0], "Ana", 0, "AB")
    store.record(ABX, LISTENERS[0], "Ana", 1, "AB")  # the same listener goes on
    with pytest.raises(SharedTestError, match="has 1 listeners already"):
        store.record(ABX, LISTENERS[1], "Ben", 0, "AB")
    monkeypatch.setattr(shared_tests, "MAX_TESTS", 1)
    with pytest.raises(SharedTestError, match="holds 1 tests already"):
        store.record(PREFERENCE, LISTENERS[0], "Ana", 0, {"order": "AB", "score": 0})


def test_listeners_answering_at_the_same_moment_all_land(store):
    listeners = [f"listener{index:08d}" for index in range(8)]
    barrier = threading.Barrier(len(listeners))
    failures = []

    def answer_all(listener: str) -> None:
        barrier.wait()
        try:
            for trial in range(ABX.trials):
                store.record(ABX, listener, listener, trial, "AB")
        except SharedTestError as error:  # pragma: no cover - the failure is what the test reports
            failures.append(error)

    threads = [threading.Thread(target=answer_all, args=(listener,)) for listener in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    results = store.results(ABX)
    assert results.listeners == 8 and results.pooled().trials == 8 * ABX.trials


def test_a_store_that_cannot_be_written_says_which_variable_to_set(tmp_path):
    (tmp_path / "folder.sqlite3").mkdir()
    with pytest.raises(SharedTestError, match="set EXPLORER_LISTENING_DB to a writable file"):
        AnswerStore(tmp_path / "folder.sqlite3").record(ABX, LISTENERS[0], "Ana", 0, "AB")
