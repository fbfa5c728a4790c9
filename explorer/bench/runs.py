"""What every benchmark shares: a worker run in a fresh process, the machine it ran on, and plain-text tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from explorer.errors import ExplorerError

__all__ = [
    "MemoryPeaks",
    "last_json_line",
    "load_average_now",
    "load_engine_once",
    "machine_description",
    "peak_rss_mb",
    "rotated",
    "table_cell",
    "text_table",
]


def peak_rss_mb() -> float:
    """Return this process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryPeaks:
    """Samples the memory of groups of processes in a thread while a benchmark runs, keeping each group's peak and
    the peak of their sum: what the machine had to give at the worst moment, not at the end.

    Memory is the proportional set size (PSS): each shared page (torch's libraries, mapped by every worker) counted
    once in all, split between the processes sharing it, so the sum is what they take together; the resident set
    (RSS) of each is kept too, as ``top`` shows it. Linux only (PSS needs /proc); elsewhere nothing is sampled.

    Args:
        groups: each group's name and a function returning its process ids now (processes come and go).
        interval: seconds between samples.
    """

    def __init__(self, groups: dict[str, Callable[[], Sequence[int]]], interval: float = 1.0):
        self.groups, self.interval = groups, interval
        self.peaks: dict[str, dict[str, float]] = {name: {"pss_mb": 0.0, "rss_mb": 0.0} for name in [*groups, "total"]}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory peaks", daemon=True)

    def sample(self) -> None:
        """Measure every group once and keep any new peak."""
        import psutil

        totals = {"pss_mb": 0.0, "rss_mb": 0.0}
        for name, pids in self.groups.items():
            now = {"pss_mb": 0.0, "rss_mb": 0.0}
            for pid in pids():
                try:
                    info = psutil.Process(pid).memory_full_info()
                except (psutil.Error, OSError):   # gone, or not ours to read
                    continue
                now["pss_mb"] += getattr(info, "pss", info.rss) / 2**20
                now["rss_mb"] += info.rss / 2**20
            for kind, value in now.items():
                self.peaks[name][kind] = max(self.peaks[name][kind], value)
                totals[kind] += value
        for kind, value in totals.items():
            self.peaks["total"][kind] = max(self.peaks["total"][kind], value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemoryPeaks:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def rounded(self) -> dict[str, dict[str, int]]:
        """Return the peaks in whole MB, per group and in ``total``."""
        return {name: {kind: round(value) for kind, value in peaks.items()} for name, peaks in self.peaks.items()}


def load_average_now() -> float:
    """Return the machine's 1-minute load average (0 where the OS has none): other work slows every timing."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else 0.0


def last_json_line(command: list[str], what: str, environment: dict[str, str] | None = None) -> dict:
    """Run ``command`` (a benchmark worker in a fresh process, so its memory and start-up are its own) and return
    the JSON on the last line it printed.

    Raises:
        ExplorerError: the worker failed; the message ends with its last error line.
    """
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(environment or {})})
    if done.returncode != 0:
        raise ExplorerError(f"{what} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_engine_once(kind: str) -> None:
    """Load the engine ``kind`` once in a fresh process, unmeasured, so that everything it builds once per machine
    (the offline model assembled, its weights imported, a torch engine's traced graphs) is cached before a benchmark
    times its loads.

    Raises:
        ExplorerError: the load failed; the message ends with its last error line.
    """
    command = [sys.executable, "-c", f"from explorer.engines import load_engine; load_engine({kind!r}); print('{{}}')"]
    last_json_line(command, f"Loading {kind} once")


def rotated(names: Sequence[str], turn: int) -> list[str]:
    """Return ``names`` in the order of turn ``turn`` when configurations take turns: each turn starts one later, so
    none always runs first on a warmer or busier machine.

    Example:
        >>> from explorer.bench.runs import rotated
        >>> rotated(["a", "b", "c"], 1), rotated(["a", "b", "c"], 3)
        (['b', 'c', 'a'], ['a', 'b', 'c'])
    """
    shift = turn % len(names)
    return [*names[shift:], *names[:shift]]


def machine_description() -> str:
    """Return the CPU model, its vector extensions that matter here, and the core count."""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    vector = [name for name in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
              if name in flags]
    extensions = f" ({', '.join(vector)})" if vector else ""
    return f"{model}{extensions}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def table_cell(value: object) -> str:
    """Return how a table shows ``value``: ``-`` for None, ``a/b`` for a tuple."""
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "/".join(table_cell(item) for item in value)
    return str(value)


def text_table(headers: list[str], cells: list[list[str]]) -> str:
    """Return ``cells`` under ``headers`` as plain-text columns padded to their widest entry."""
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)
