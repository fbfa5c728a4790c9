"""Listening tests that grade rather than tell apart, free of Streamlit so they can be tested on their own: a
preference test (A against B on the comparison mean opinion score, CMOS) and a multi-stimulus rating test (several
recipes rated 0-100 against a hidden reference and a low anchor, the MUSHRA layout of ITU-R BS.1534 that webMUSHRA
and BeaqleJS run in the browser). The blind ABX test (``explorer.app.listen.BlindTally``) shares the files they
export (``results_files``).

Each test keeps what the listener said as plain lists in session state (``to_dict``/``from_dict``; anything damaged
reads as a fresh test), draws its order from a seed that is recorded, and states its result in words and numbers.

Example:
    >>> from explorer.app import rating
    >>> tally = rating.PreferenceTally()
    >>> for index, score in enumerate([2, -1, 3, -2]):  # the second sample against the first
    ...     tally = tally.record(rating.preference_order(7, index), score)
    >>> tally.orders, [int(score) for score in tally.b_over_a]
    (('BA', 'BA', 'AB', 'BA'), [-2, 1, 3, 2])
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer.errors import ExplorerError

__all__ = [
    "CMOS_SCALE",
    "CMOS_TEST_LENGTHS",
    "DEFAULT_CMOS_TRIALS",
    "DEFAULT_RATING_SCREENS",
    "HIDDEN_REFERENCE",
    "LOW_ANCHOR",
    "LOW_ANCHOR_HZ",
    "MAX_RATED_RECIPES",
    "cmos_label",
    "RATING_SCREENS",
    "PreferenceTally",
    "RatingSheet",
    "answer_times",
    "low_anchor",
    "preference_order",
    "rating_order",
    "results_files",
    "utc_now",
]

CMOS_SCALE = {-3: "much worse", -2: "worse", -1: "slightly worse", 0: "about the same", 1: "slightly better",
              2: "better", 3: "much better"}
"""The comparison scale of ITU-T P.800's CMOS: how the second sample sounds against the first."""
def cmos_label(score: int) -> str:
    """Return how a CMOS score reads on the scale: "+2 better", "about the same", "-3 much worse"."""
    return f"{score:+d} {CMOS_SCALE[score]}" if score else CMOS_SCALE[0]


CMOS_TEST_LENGTHS = (4, 6, 8, 12)
"""How many trials a preference test may have."""
DEFAULT_CMOS_TRIALS = 6
"""A preference test's length unless the listener picks another: each order three times."""
RATING_SCREENS = (1, 2, 3, 4)
"""How many screens a rating test may have (each plays every stimulus again, in a new order)."""
DEFAULT_RATING_SCREENS = 2
"""A rating test's length unless the listener picks another: two screens show whether the ratings hold."""
HIDDEN_REFERENCE = "hidden reference"
"""The reference played again among the rated stimuli: a listener who hears it should rate it near 100."""
LOW_ANCHOR = "low anchor"
"""The reference low-passed at ``LOW_ANCHOR_HZ``: a known bad stimulus that fixes the bottom of the scale."""
LOW_ANCHOR_HZ = 3500.0
"""The low anchor's cut-off, as BS.1534 prescribes."""
MAX_RATED_RECIPES = 4
"""The most recipes a rating test adds to A and B (a screen then plays 7 stimuli: more tires a listener)."""
MAX_ANSWERS = 1000
"""The most answers a test keeps (session state is the listener's own, but it is read back as data)."""
_CONFIDENCE = 0.95


def utc_now() -> str:
    """Return the time an answer is given: ISO 8601, UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def answer_times(data: Mapping[str, object], count: int) -> tuple[str, ...]:
    """Return the answer times kept in ``data`` (a test's session-state form) for its ``count`` answers; unknown ("")
    where they are damaged or do not match ``count``."""
    times = data.get("times")
    if isinstance(times, (list, tuple)) and len(times) == count and \
            all(isinstance(time, str) and len(time) <= 32 for time in times):
        return tuple(times)
    return ("",) * count


def results_files(stem: str, table: pd.DataFrame, stimuli: Mapping[str, object], result: Mapping[str, object]) \
        -> dict[str, bytes]:
    """Return a finished test as files to download: ``<stem>.csv`` (``table``, one row per answer) and
    ``<stem>.json`` (``stimuli``: what was compared and how, e.g. the recipes' share strings, text, language, speed,
    engine and seed; then every answer and the ``result`` in words and numbers)."""
    document = {"stimuli": dict(stimuli), "trials": table.to_dict("records"), "result": dict(result)}
    return {f"{stem}.csv": table.to_csv(index=False).encode("utf-8"),
            f"{stem}.json": json.dumps(document, indent=2, default=str).encode("utf-8")}


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])


def preference_order(seed: int, index: int) -> str:
    """Return which side trial ``index`` of a preference test seeded with ``seed`` plays first: "AB" or "BA". The
    order is random so that a preference for whatever plays second does not count as one for B."""
    return ("AB", "BA")[int(_rng(seed, index).integers(2))]


@dataclass(frozen=True)
class PreferenceTally:
    """A preference test's answers: per trial, the order played ("AB": A first) and the score the listener gave the
    second sample against the first, -3 to 3 (``CMOS_SCALE``)."""

    orders: tuple[str, ...] = ()
    scores: tuple[int, ...] = ()
    times: tuple[str, ...] = ()
    """When each answer was given (``utc_now``); "" where unknown."""

    @property
    def trials(self) -> int:
        """How many trials were answered."""
        return len(self.scores)

    @property
    def b_over_a(self) -> np.ndarray:
        """Each trial's score as B against A, whichever played first (float, one per trial)."""
        return np.array([score if order == "AB" else -score for order, score in zip(self.orders, self.scores)],
                        dtype=float)

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> PreferenceTally:
        """Return the tally kept in session state; anything damaged is a fresh one."""
        if not isinstance(data, Mapping):
            return cls()
        orders, scores = data.get("orders"), data.get("scores")
        if not (isinstance(orders, (list, tuple)) and isinstance(scores, (list, tuple))
                and len(orders) == len(scores) <= MAX_ANSWERS
                and all(order in ("AB", "BA") for order in orders)
                and all(type(score) is int and score in CMOS_SCALE for score in scores)):
            return cls()
        return cls(tuple(orders), tuple(scores), answer_times(data, len(scores)))

    def to_dict(self) -> dict[str, list]:
        """Return the form kept in session state."""
        return {"orders": list(self.orders), "scores": list(self.scores), "times": list(self.times)}

    def record(self, order: str, score: int) -> PreferenceTally:
        """Return the tally after the listener gave ``score`` to the second sample of a trial played in ``order``.

        Raises:
            ExplorerError: an order other than "AB"/"BA", or a score off the CMOS scale.
        """
        if order not in ("AB", "BA"):
            raise ExplorerError(f"A preference trial plays AB or BA, not {str(order)[:10]!r}.")
        if isinstance(score, bool) or score not in CMOS_SCALE:
            raise ExplorerError(f"A CMOS score is a whole number from -3 to 3, not {str(score)[:10]!r}.")
        return PreferenceTally((*self.orders, order)[-MAX_ANSWERS:], (*self.scores, int(score))[-MAX_ANSWERS:],
                               (*self.times, utc_now())[-MAX_ANSWERS:])

    @property
    def mean(self) -> float | None:
        """The CMOS of B against A: the mean of ``b_over_a``; None before any trial."""
        return float(self.b_over_a.mean()) if self.trials else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % confidence interval of ``mean`` (Student's t over the trials); None before two trials."""
        if self.trials < 2:
            return None
        from scipy.stats import t

        scores = self.b_over_a
        half = float(t.ppf(0.5 + _CONFIDENCE / 2, self.trials - 1) * scores.std(ddof=1) / np.sqrt(self.trials))
        return float(scores.mean()) - half, float(scores.mean()) + half

    def summary(self) -> str:
        """Return the result in words and numbers, e.g. "B against A: CMOS +1.3 (95 % interval +0.8 to +1.8) over 6
        trials: you prefer B." A preference needs the interval to leave out 0."""
        if not self.trials:
            return "No preference trials yet."
        trials = f"{self.trials} trial{'s' if self.trials != 1 else ''}"
        if self.interval is None:
            return f"B against A: CMOS {self.mean:+.1f} over {trials}: too few to say."
        low, high = self.interval
        if low > 0 or high < 0:
            verdict = f"you prefer {'B' if low > 0 else 'A'}"
        else:
            verdict = "no clear preference"
        return f"B against A: CMOS {self.mean:+.1f} (95 % interval {low:+.1f} to {high:+.1f}) over {trials}: {verdict}."

    def table(self) -> pd.DataFrame:
        """Return one row per trial: its number, what played first and second, the score given to the second, that
        score as B against A, and when it was given."""
        columns = ["trial", "first", "second", "score of second", "B against A", "answered at"]
        return pd.DataFrame([{"trial": index + 1, "first": order[0], "second": order[1], "score of second": score,
                              "B against A": int(b_over_a), "answered at": time}
                             for index, (order, score, b_over_a, time)
                             in enumerate(zip(self.orders, self.scores, self.b_over_a, self.times))], columns=columns)

    def export(self, stimuli: Mapping[str, object]) -> dict[str, bytes]:
        """Return ``results_files`` of the test: ``preference-test.csv`` and ``.json``."""
        interval = self.interval
        return results_files("preference-test", self.table(), stimuli, {
            "trials": self.trials, "cmos_b_against_a": self.mean,
            "interval_95": list(interval) if interval else None, "summary": self.summary()})


def low_anchor(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Return ``audio`` low-passed at ``LOW_ANCHOR_HZ`` (an 8th-order Butterworth run forwards and backwards, so it
    neither shifts nor rings ahead of the speech): the rating test's low anchor."""
    from scipy.signal import butter, sosfiltfilt

    sections = butter(8, LOW_ANCHOR_HZ, btype="lowpass", fs=sample_rate, output="sos")
    return sosfiltfilt(sections, np.asarray(audio, dtype=np.float64)).astype(np.float32)


def rating_order(seed: int, screen: int, count: int) -> tuple[int, ...]:
    """Return the order screen ``screen`` of a rating test seeded with ``seed`` plays ``count`` stimuli in: a
    permutation of their indices, new on every screen."""
    return tuple(int(index) for index in _rng(seed, screen).permutation(count))


@dataclass(frozen=True)
class RatingSheet:
    """A rating test's answers: the stimuli rated (``conditions``, e.g. the hidden reference, B, C and the low
    anchor) and, per screen, the rating 0-100 of each, in ``conditions`` order."""

    conditions: tuple[str, ...]
    ratings: tuple[tuple[int, ...], ...] = ()
    times: tuple[str, ...] = ()
    """When each screen was answered (``utc_now``); "" where unknown."""

    @property
    def screens(self) -> int:
        """How many screens were answered."""
        return len(self.ratings)

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None, conditions: Sequence[str]) -> RatingSheet:
        """Return the sheet kept in session state for a test of ``conditions``; a fresh one where it is damaged or
        rated other stimuli (the listener changed the recipes)."""
        conditions = tuple(conditions)
        if not isinstance(data, Mapping) or tuple(data.get("conditions") or ()) != conditions:
            return cls(conditions)
        ratings = data.get("ratings")
        if not (isinstance(ratings, (list, tuple)) and len(ratings) <= MAX_ANSWERS
                and all(isinstance(screen, (list, tuple)) and len(screen) == len(conditions)
                        and all(type(value) is int and 0 <= value <= 100 for value in screen) for screen in ratings)):
            return cls(conditions)
        return cls(conditions, tuple(tuple(screen) for screen in ratings), answer_times(data, len(ratings)))

    def to_dict(self) -> dict[str, list]:
        """Return the form kept in session state."""
        return {"conditions": list(self.conditions), "ratings": [list(screen) for screen in self.ratings],
                "times": list(self.times)}

    def record(self, ratings: Mapping[str, int]) -> RatingSheet:
        """Return the sheet after a screen rated each condition ``ratings[condition]``.

        Raises:
            ExplorerError: a condition left out or unknown, or a rating that is not a whole number 0-100.
        """
        if set(ratings) != set(self.conditions):
            raise ExplorerError("A rating screen rates every stimulus once: " + ", ".join(self.conditions) + ".")
        for condition, value in ratings.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise ExplorerError(f"A rating is a whole number from 0 to 100, not {str(value)[:10]!r} "
                                    f"({condition}).")
        screen = tuple(int(ratings[condition]) for condition in self.conditions)
        return RatingSheet(self.conditions, (*self.ratings, screen)[-MAX_ANSWERS:],
                           (*self.times, utc_now())[-MAX_ANSWERS:])

    def results(self) -> pd.DataFrame:
        """Return each condition's median rating and the middle half of its ratings (25th to 75th percentile) over
        the screens, best median first."""
        values = np.array(self.ratings, dtype=float).reshape(self.screens, len(self.conditions))
        rows = [{"stimulus": condition, "median": float(np.median(values[:, index])),
                 "25th percentile": float(np.percentile(values[:, index], 25)),
                 "75th percentile": float(np.percentile(values[:, index], 75)), "screens": self.screens}
                for index, condition in enumerate(self.conditions)] if self.screens else []
        table = pd.DataFrame(rows, columns=["stimulus", "median", "25th percentile", "75th percentile", "screens"])
        return table.sort_values("median", ascending=False, kind="stable").reset_index(drop=True)

    def summary(self) -> str:
        """Return the result in words and numbers: each stimulus's median rating, and whether the listener heard
        the hidden reference (BS.1534 leaves out listeners who rate it below 90 on more than 15 % of screens)."""
        if not self.screens:
            return "No rating screens yet."
        medians = "; ".join(f"{row['stimulus']} {row['median']:.0f} ({row['25th percentile']:.0f}-"
                            f"{row['75th percentile']:.0f})" for row in self.results().to_dict("records"))
        text = f"Median rating (middle half) over {self.screens} screen{'s' if self.screens != 1 else ''}: {medians}."
        if HIDDEN_REFERENCE in self.conditions:
            index = self.conditions.index(HIDDEN_REFERENCE)
            missed = sum(screen[index] < 90 for screen in self.ratings)
            if missed > 0.15 * self.screens:
                text += (f" The hidden reference was rated below 90 on {missed} of {self.screens} screens, so a "
                         "BS.1534 analysis would leave these ratings out.")
        return text

    def table(self, seed: int | None = None) -> pd.DataFrame:
        """Return one row per rating: screen, stimulus, rating and when the screen was answered; with the test's
        ``seed``, also where on its screen the stimulus played ("sample 1" first, ``rating_order``)."""
        rows = []
        for number, (screen, time) in enumerate(zip(self.ratings, self.times)):
            order = rating_order(seed, number, len(self.conditions)) if seed is not None else ()
            for index, (condition, value) in enumerate(zip(self.conditions, screen)):
                row = {"screen": number + 1, "stimulus": condition, "rating": value, "answered at": time}
                if order:
                    row["played as sample"] = order.index(index) + 1
                rows.append(row)
        columns = ["screen", "stimulus", *(["played as sample"] if seed is not None else []), "rating", "answered at"]
        return pd.DataFrame(rows, columns=columns)

    def export(self, stimuli: Mapping[str, object]) -> dict[str, bytes]:
        """Return ``results_files`` of the test: ``rating-test.csv`` and ``.json`` (with where each stimulus played
        when ``stimuli`` holds the seed)."""
        seed = stimuli.get("seed")
        table = self.table(seed if isinstance(seed, int) and not isinstance(seed, bool) else None)
        return results_files("rating-test", table, stimuli, {
            "screens": self.screens, "per_stimulus": self.results().to_dict("records"), "summary": self.summary()})
