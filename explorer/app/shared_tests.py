"""Listening tests several people take, free of Streamlit so they can be tested on their own: a link carries the
test's definition (``SharedTest``: the kind, the recipes, text, language, speed, engine, trial count and seed), every
listener hears the same stimuli in an order of their own, and ``AnswerStore`` keeps every answer server-side in SQLite
(the standard library's ``sqlite3``, WAL mode) for a results view that pools all listeners of a test.

The store is bounded (``MAX_TESTS`` tests, ``MAX_LISTENERS`` listeners a test, one answer per trial and listener) and
offers no way to read a single listener's answers other than one's own, or to change an answer once given. Its file
is ``EXPLORER_LISTENING_DB`` where set, else ``listening-tests.sqlite3`` in the cache folder, created on first use.

Example:
    >>> from explorer.app.shared_tests import SharedTest
    >>> from explorer.recipe import Recipe
    >>> recipes = (Recipe.single("af_heart").to_token(), Recipe.single("am_adam").to_token())
    >>> test = SharedTest("blind ABX", recipes, "Hello there.", "a", 1.0, "auto", trials=8, seed=7)
    >>> SharedTest.from_query(test.to_query()) == test, len(test.test_id)
    (True, 16)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from explorer.app import listen, rating
from explorer.engines.choice import ENGINE_KINDS
from explorer.errors import ExplorerError, RecipeError, shown
from explorer.paths import cache_dir
from explorer.recipe import Recipe

__all__ = [
    "LISTENING_DB_VARIABLE",
    "MAX_LISTENERS",
    "MAX_NAME_CHARS",
    "MAX_TESTS",
    "TEST_KINDS",
    "AnswerStore",
    "SharedResults",
    "SharedTest",
    "SharedTestError",
    "listener_name",
]

TEST_KINDS = {"blind ABX": "abx", "preference (CMOS)": "preference", "rating (MUSHRA)": "rating"}
"""The tests a link can carry, with the short name its ``test`` parameter uses."""
TEST_LENGTHS = {"blind ABX": listen.BLIND_TEST_LENGTHS, "preference (CMOS)": rating.CMOS_TEST_LENGTHS,
                "rating (MUSHRA)": rating.RATING_SCREENS}
LISTENING_DB_VARIABLE = "EXPLORER_LISTENING_DB"
"""The environment variable that names the answers' SQLite file."""
MAX_TESTS = 10_000
"""The most tests the store keeps answers for: a server's disk is not filled by links made up by the thousand."""
MAX_LISTENERS = 500
"""The most listeners one test takes."""
MAX_NAME_CHARS = 40
"""The longest listener name."""
_SEED_LIMIT = 2**32
_SEPARATOR = "."  # never in a share string (URL-safe base64)


class SharedTestError(ExplorerError):
    """A test link or an answer that cannot be used; the message says which part and why."""


def listener_name(name: object) -> str:
    """Return the name a listener gave, trimmed; "anonymous" for none.

    Raises:
        SharedTestError: not text, longer than ``MAX_NAME_CHARS``, or holding control characters.
    """
    if not isinstance(name, str):
        raise SharedTestError("A listener's name must be text.")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise SharedTestError(f"A listener's name has at most {MAX_NAME_CHARS} characters; this one has {len(name)}.")
    if not name.isprintable():
        raise SharedTestError("A listener's name cannot hold line breaks or other control characters.")
    return name or "anonymous"


@dataclass(frozen=True)
class SharedTest:
    """What a test link defines: every listener of it hears the same stimuli.

    Attributes:
        kind: one of ``TEST_KINDS``.
        recipes: share strings: A and B; for a rating test, up to ``rating.MAX_RATED_RECIPES`` more (C, D, ...).
        text, lang, speed: what is said and how (the share link's limits).
        engine: the engine kind that renders.
        trials: trials (screens, for a rating test), one of the kind's offered lengths.
        seed: the test's seed; each listener's order comes from it and their own id (``listener_seed``).
        match: whether the stimuli are loudness matched.
    """

    kind: str
    recipes: tuple[str, ...]
    text: str
    lang: str
    speed: float
    engine: str
    trials: int
    seed: int
    match: bool = True

    def to_query(self) -> dict[str, str]:
        """Return the query parameters of the test's link."""
        return {"test": TEST_KINDS[self.kind], "recipes": _SEPARATOR.join(self.recipes), "text": self.text,
                "lang": self.lang, "speed": f"{self.speed:g}", "engine": self.engine, "trials": str(self.trials),
                "seed": str(self.seed), "match": "1" if self.match else "0"}

    @property
    def test_id(self) -> str:
        """The test's identity: a hash of its definition (16 hex digits)."""
        canonical = json.dumps(self.to_query(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def conditions(self) -> tuple[str, ...]:
        """What a rating test rates, in the order its answers list them: the hidden reference, B, C... and the low
        anchor."""
        return (rating.HIDDEN_REFERENCE, *"BCDEFG"[:len(self.recipes) - 1], rating.LOW_ANCHOR)

    def listener_seed(self, listener: str) -> int:
        """Return the seed of ``listener``'s order: the same stimuli as every other listener, in an order of their
        own."""
        digest = hashlib.sha256(f"{self.seed}:{listener}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> SharedTest:
        """Return the test a link's query defines.

        Raises:
            SharedTestError: a parameter missing or unusable; the message names it.
        """
        missing = [name for name in ("test", "recipes", "text", "lang", "speed", "engine", "trials", "seed")
                   if name not in query]
        if missing:
            raise SharedTestError("This test link lacks " + ", ".join(missing) + ".")
        kinds = {short: kind for kind, short in TEST_KINDS.items()}
        kind = kinds.get(query["test"])
        if kind is None:
            raise SharedTestError(f"This test link's test {shown(query['test'])} is not one of "
                                  f"{', '.join(kinds)}.")
        recipes = tuple(str(query["recipes"]).split(_SEPARATOR))
        most = 2 + rating.MAX_RATED_RECIPES if kind == "rating (MUSHRA)" else 2
        if not 2 <= len(recipes) <= most:
            raise SharedTestError(f"A {kind} test compares {'2' if most == 2 else f'2 to {most}'} recipes; this link "
                                  f"has {len(recipes)}.")
        for label, token in zip("ABCDEFG", recipes):
            try:
                Recipe.from_token(token)
            except RecipeError as error:
                raise SharedTestError(f"This test link's recipe {label}: {error}") from None
        speech, problems = listen.shared_speech({name: str(query[name]) for name in ("text", "lang", "speed")},
                                                whose="This test link's")
        if problems:
            raise SharedTestError(next(iter(problems.values())) + ".")
        if query["engine"] not in ENGINE_KINDS:
            raise SharedTestError(f"This test link's engine {shown(query['engine'])} is not one of "
                                  f"{', '.join(ENGINE_KINDS)}.")
        trials = _integer(query["trials"], "trials")
        if trials not in TEST_LENGTHS[kind]:
            raise SharedTestError(f"A {kind} test has {', '.join(map(str, TEST_LENGTHS[kind]))} "
                                  f"{'screens' if kind == 'rating (MUSHRA)' else 'trials'}; this link asks for "
                                  f"{trials}.")
        seed = _integer(query["seed"], "seed")
        if not 0 <= seed < _SEED_LIMIT:
            raise SharedTestError(f"This test link's seed must lie between 0 and {_SEED_LIMIT - 1}.")
        if query.get("match", "1") not in ("0", "1"):
            raise SharedTestError("This test link's match must be 0 or 1.")
        return cls(kind, recipes, speech["text"], speech["lang"], speech["speed"], query["engine"], trials, seed,
                   query.get("match", "1") == "1")

    def check_answer(self, answer: object) -> object:
        """Return ``answer`` if it is one this test takes: "AB" (X was A, said B) for blind ABX,
        ``{"order": "AB", "score": 2}`` for a preference, a rating 0-100 per condition for a rating test.

        Raises:
            SharedTestError: anything else.
        """
        try:
            if self.kind == "blind ABX":
                if not isinstance(answer, str) or answer not in listen.BLIND_ANSWERS:
                    raise ExplorerError("A blind answer is the side X played and the side said, e.g. AB.")
            elif self.kind == "preference (CMOS)":
                if not isinstance(answer, Mapping) or set(answer) != {"order", "score"}:
                    raise ExplorerError("A preference answer holds an order and a score.")
                rating.PreferenceTally().record(answer["order"], answer["score"])
            else:
                if not isinstance(answer, Sequence) or isinstance(answer, str) or \
                        len(answer) != len(self.conditions):
                    raise ExplorerError(f"A rating answer rates all {len(self.conditions)} stimuli.")
                rating.RatingSheet(self.conditions).record(dict(zip(self.conditions, answer)))
        except ExplorerError as error:
            raise SharedTestError(f"This answer cannot be stored: {error}") from None
        return answer


def _integer(text: str, name: str) -> int:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value != int(value) or len(str(text)) > 20:
        raise SharedTestError(f"This test link's {name} {shown(text)} is not a whole number.")
    return int(value)


@dataclass(frozen=True)
class SharedResults:
    """Every listener's answers to one test, pooled and by listener.

    Attributes:
        test: the test.
        answers: per listener id, their name and their answers in trial order.
    """

    test: SharedTest
    answers: Mapping[str, tuple[str, tuple[object, ...]]]

    @property
    def listeners(self) -> int:
        """How many listeners answered at least one trial."""
        return len(self.answers)

    def tally(self, answers: Sequence[object]) -> listen.BlindTally | rating.PreferenceTally | rating.RatingSheet:
        """Return ``answers`` (one listener's, or everyone's) as the test's own tally."""
        if self.test.kind == "blind ABX":
            return listen.BlindTally(tuple(answers))
        if self.test.kind == "preference (CMOS)":
            return rating.PreferenceTally(tuple(answer["order"] for answer in answers),
                                          tuple(answer["score"] for answer in answers))
        return rating.RatingSheet(self.test.conditions, tuple(tuple(answer) for answer in answers))

    def pooled(self) -> listen.BlindTally | rating.PreferenceTally | rating.RatingSheet:
        """Return every listener's answers as one tally."""
        return self.tally([answer for _, answers in self.answers.values() for answer in answers])

    def summary(self) -> str:
        """Return the pooled result in words, e.g. "2 listeners, 24 trials: 20 of 24 correct: ..."."""
        if not self.answers:
            return "Nobody has answered this test yet."
        pooled = self.pooled()
        count = f"{self.listeners} listener{'s' if self.listeners != 1 else ''}"
        return f"{count}, all answers together: {pooled.summary()}"

    def table(self) -> pd.DataFrame:
        """Return one row per listener: their name, how many trials they answered and their own result."""
        return pd.DataFrame([{"listener": name, "answered": len(answers), "result": self.tally(answers).summary()}
                             for name, answers in self.answers.values()], columns=["listener", "answered", "result"])


def _default_path() -> Path:
    return Path(os.environ.get(LISTENING_DB_VARIABLE) or cache_dir() / "listening-tests.sqlite3")


class AnswerStore:
    """The answers of shared tests in one SQLite file. Every call opens its own connection (Streamlit runs each
    session in a thread of its own); writes are short immediate transactions in WAL mode with a busy timeout, so two
    listeners answering at the same moment both land."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else _default_path()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("CREATE TABLE IF NOT EXISTS tests (test_id TEXT PRIMARY KEY, definition TEXT NOT NULL,"
                               " created TEXT NOT NULL)")
            connection.execute("CREATE TABLE IF NOT EXISTS answers (test_id TEXT NOT NULL, listener TEXT NOT NULL, "
                               "name TEXT NOT NULL, trial INTEGER NOT NULL, answer TEXT NOT NULL, answered_at TEXT "
                               "NOT NULL, PRIMARY KEY (test_id, listener, trial))")
        except (sqlite3.Error, OSError) as error:
            raise SharedTestError(f"The answers store {self.path.name} cannot be opened ({error}); set "
                                  f"{LISTENING_DB_VARIABLE} to a writable file.") from None
        return connection

    def record(self, test: SharedTest, listener: str, name: str, trial: int, answer: object) -> bool:
        """Store ``listener``'s answer to ``trial``; return False where they had answered it already (the first
        answer stands: a double click does not count twice).

        Raises:
            SharedTestError: a trial outside the test, an answer the test does not take, a bad name, or a store
                that is full or cannot be written.
        """
        answer = test.check_answer(answer)
        name = listener_name(name)
        if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial < test.trials:
            raise SharedTestError(f"This test's trials are numbered 0 to {test.trials - 1}; an answer to trial "
                                  f"{shown(trial)} cannot be stored.")
        if not isinstance(listener, str) or not 8 <= len(listener) <= 64 or not listener.isalnum():
            raise SharedTestError("A listener id is 8 to 64 letters and digits.")
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            known = connection.execute("SELECT 1 FROM tests WHERE test_id = ?", (test.test_id,)).fetchone()
            if known is None:
                if connection.execute("SELECT COUNT(*) FROM tests").fetchone()[0] >= MAX_TESTS:
                    raise SharedTestError(f"The answers store holds {MAX_TESTS:,} tests already; no new test can "
                                          "be answered here.")
                connection.execute("INSERT INTO tests VALUES (?, ?, ?)", (test.test_id, json.dumps(test.to_query()),
                                                                          rating.utc_now()))
            listeners = connection.execute("SELECT COUNT(DISTINCT listener) FROM answers WHERE test_id = ? AND "
                                           "listener != ?", (test.test_id, listener)).fetchone()[0]
            if listeners >= MAX_LISTENERS:
                raise SharedTestError(f"This test has {MAX_LISTENERS} listeners already; it takes no more.")
            cursor = connection.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                                        (test.test_id, listener, name, trial, json.dumps(answer), rating.utc_now()))
            connection.execute("COMMIT")
            return cursor.rowcount == 1
        except sqlite3.Error as error:
            raise SharedTestError(f"The answer could not be stored ({error}).") from None
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            connection.close()

    def answered(self, test: SharedTest, listener: str) -> tuple[object, ...]:
        """Return ``listener``'s own answers to ``test``, in trial order."""
        return self._answers(test, listener).get(listener, ("", ()))[1]

    def results(self, test: SharedTest) -> SharedResults:
        """Return every listener's answers to ``test`` (the aggregate view).

        Raises:
            SharedTestError: the store cannot be read.
        """
        return SharedResults(test, self._answers(test))

    def _answers(self, test: SharedTest, listener: str | None = None) -> dict[str, tuple[str, tuple[object, ...]]]:
        """Return per listener (only ``listener``, when given) their name and answers to ``test`` in trial order."""
        query = "SELECT listener, name, answer FROM answers WHERE test_id = ?"
        parameters: tuple[str, ...] = (test.test_id,)
        if listener is not None:
            query, parameters = query + " AND listener = ?", (*parameters, listener)
        connection = self._connect()
        try:
            rows = connection.execute(query + " ORDER BY listener, trial", parameters).fetchall()
        except sqlite3.Error as error:
            raise SharedTestError(f"The answers could not be read ({error}).") from None
        finally:
            connection.close()
        answers: dict[str, tuple[str, tuple[object, ...]]] = {}
        for found, name, answer in rows:
            previous = answers.get(found, (name, ()))
            answers[found] = (name, (*previous[1], json.loads(answer)))
        return answers
