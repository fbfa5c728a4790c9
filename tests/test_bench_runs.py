"""explorer.bench.runs: what every benchmark shares: the sampler of peak memory that ``bench match`` reports, and
plain-text tables."""

from __future__ import annotations

import subprocess
import sys
import time

from explorer.bench.runs import MemoryPeaks, text_table

HOLDS_200_MB = "import sys, time; block = bytearray(200 * 2**20); print('ready', flush=True); sys.stdin.readline()"
"""A child that takes 200 MB (bytearray writes zeros into every page, so they are resident) until told to end."""


def child_holding_memory() -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDS_200_MB], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def test_the_peak_is_kept_after_the_memory_is_given_back_and_a_gone_process_counts_nothing():
    child = child_holding_memory()
    pids = [child.pid]
    with MemoryPeaks({"child": lambda: pids, "nobody": lambda: [2**22 + 7]}, interval=0.05) as peaks:
        time.sleep(0.2)
        child.communicate("\n")   # the child ends: its pages are gone, its peak stays
        time.sleep(0.2)
    peak = peaks.rounded()
    assert 200 <= peak["child"]["pss_mb"] <= peak["child"]["rss_mb"] < 400
    assert peak["nobody"] == {"pss_mb": 0, "rss_mb": 0}
    assert peak["total"] == peak["child"]


def test_the_total_is_the_peak_of_the_sum_of_every_group_at_one_moment():
    first, second = child_holding_memory(), child_holding_memory()
    try:
        peaks = MemoryPeaks({"first": lambda: [first.pid], "second": lambda: [second.pid]})
        peaks.sample()
        peak = peaks.rounded()
        assert abs(peak["total"]["pss_mb"] - peak["first"]["pss_mb"] - peak["second"]["pss_mb"]) <= 1
        assert peak["total"]["pss_mb"] >= 400
    finally:
        first.communicate("\n")
        second.communicate("\n")


def test_a_table_without_rows_is_its_header_line():
    assert text_table(["voice", "minutes"], []) == "voice  minutes"
    assert text_table(["a", "b"], [["long", "x"]]) == "a     b\nlong  x"
