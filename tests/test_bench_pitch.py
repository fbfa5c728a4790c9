"""The pitch-tracker benchmark: its tones carry the pitch they claim, and its report compares trackers on them."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.bench import pitch
from explorer.meters import pitch_track


def test_every_synthetic_tone_is_tracked_by_praat_within_a_few_cents_of_its_truth():
    for case in pitch.synthetic_cases():
        f0 = pitch_track(case.audio)
        found = f0[np.isfinite(f0)]
        assert abs(1200 * np.log2(np.median(found) / case.median_hz)) < 10, case.name
        assert abs(12 * np.log2(np.percentile(found, 90) / np.percentile(found, 10)) - case.spread_st) < 0.4, case.name


def test_the_report_has_one_row_per_tracker_and_case_family(monkeypatch):
    monkeypatch.setattr(pitch, "TRACKERS", {"praat": pitch_track, "octave low": lambda audio: pitch_track(audio) / 2})
    rows = pitch.run_pitch_benchmark()
    assert [(row["tracker"], row["cases"]) for row in rows] == [("praat", "synthetic (20)"),
                                                                 ("octave low", "synthetic (20)")]
    assert rows[1]["median F0 error, cents (median / worst)"].startswith("1200.0 / 120")
    assert "octave low" in pitch.format_pitch_report(rows)


def test_pyin_is_librosas_with_the_meters_range():
    pytest.importorskip("librosa")
    f0 = pitch.tracker_pyin(pitch.synthetic_cases()[5].audio)                 # voice-like 140 Hz
    assert np.nanmedian(f0) == pytest.approx(140, rel=0.01)
