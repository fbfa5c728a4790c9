"""Specification of explorer.app.timing: the app's benchmark opens each page through app.py, times its first run and
its reruns after a widget move, and fills the on-disk caches before it measures; it never asserts a timing."""

from __future__ import annotations

import pytest

from explorer.app import timing
from explorer.errors import ExplorerError


def test_the_app_bench_fills_the_disk_caches_first_then_times_every_page(monkeypatch, capsys):
    """One unmeasured start writes t-SNE and the analysis to disk; each page is then timed in its own process."""
    started = []

    def time_page(page):
        started.append(page)
        return timing.AppRow(page, cold_start_seconds=2.5, first_run_seconds=1.0, rerun_ms=80.0, load_average=0.4)

    report = timing.run_app_benchmark(("voices", "lab"), time_page=time_page)
    assert started == ["map", "voices", "lab"]
    assert [row["page"] for row in report["app_rows"]] == ["voices", "lab"]
    header, *lines = timing.format_app_report(report).splitlines()[1:]
    assert header.split() == ["page", "cold", "start", "s", "first", "run", "s", "warm", "rerun", "ms", "load", "avg"]
    assert lines[1].split() == ["lab", "2.5", "1.0", "80.0", "0.4"]


def test_a_page_is_opened_in_the_real_app_and_rerun_after_a_widget_move(monkeypatch, tmp_path):
    """The Lab opens through app.py and reruns after a PCA slider move; Streamlit's disk cache lands in HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    times = timing.time_app_page("lab", reruns=2)
    assert times["first_run_seconds"] > 0 and times["rerun_ms"] > 0
    assert list((tmp_path / ".streamlit" / "cache").glob("*.memo"))  # the analysis caches persisted, as the server does


def test_an_unknown_page_is_refused_naming_the_pages():
    with pytest.raises(ExplorerError, match="voices, map, groups, dimensions, lab"):
        timing.time_app_page("settings")
