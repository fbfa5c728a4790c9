"""Whole-process synthesis against a naive onnxruntime script: ``python -m explorer bench cli``.

What a person waits for when they type ``python -m explorer synth --text ... --out p.wav`` is the whole process:
interpreter start, imports, voice loading, text conversion, engine loading, rendering and writing the WAV. This
benchmark times exactly that, in fresh processes, against ``scripts/naive_onnx_synth.py``: the official int8 ONNX
model run the way kokoro-onnx's README shows, in about forty lines with nothing from ``explorer``.

Each round runs every explorer engine configuration asked for and the naive script once each, one after another, the
order rotated every round (A, B, then B, A) so neither always runs first on a warmer or a busier machine. Each run is
timed by the wall clock around the child process, and its peak memory is the child's own (``os.wait4``). The figures
are measured and reported, never asserted: the report says whether each configuration's median time is within
``RATIO_GOAL`` of the naive script's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import soundfile

from explorer.bench.runs import load_average_now, load_engine_once, machine_description, rotated, text_table
from explorer.engines import ENGINE_KINDS, offline_onnx_model
from explorer.errors import ExplorerError
from explorer.paths import CONFIG_PATH, VOICES_DIR

__all__ = [
    "DEFAULT_ROUNDS",
    "NAIVE",
    "NAIVE_SCRIPT",
    "PARAGRAPH",
    "RATIO_GOAL",
    "ChildRun",
    "CliReport",
    "ConfigFigures",
    "format_cli_report",
    "run_child",
    "run_cli_benchmark",
]

PARAGRAPH = (
    "Every evening at dusk, the old lighthouse keeper climbed the one hundred and twelve steps of the tower to light "
    "the great lamp. He had done this for nearly forty years, through summer calms and winter gales, and he knew "
    "every creak of the iron stairs. From the narrow gallery he watched the fishing boats come back to the harbor, "
    "one by one, their lanterns bobbing on the dark water. When the last boat was safely home, he wrote a short note "
    "in his logbook, poured a cup of strong tea, and sat by the open window, listening to the waves breaking on the "
    "black rocks far below."
)
"""The text spoken: 108 words, about 31 s of speech with af_heart (a paragraph, not a sentence, so rendering
outweighs start-up as it does when someone reads out a page)."""
RATIO_GOAL = 0.75
"""The goal: an explorer configuration's median whole-process time at most this share of the naive script's."""
DEFAULT_ROUNDS = 3
"""Rounds run by default; each runs every configuration once."""
NAIVE = "naive-onnx"
"""The naive script's name in the report."""
NAIVE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "naive_onnx_synth.py"
"""The baseline: the official int8 ONNX model run as kokoro-onnx's README shows, nothing from ``explorer``."""
_VOICE = "af_heart"
_NAIVE_ENGINE = "onnxruntime, official int8 model, espeak-ng en-us phonemes"


@dataclass(frozen=True)
class ChildRun:
    """What one fresh process measured.

    Attributes:
        wall_seconds: wall-clock time from starting the process to its exit.
        peak_rss_mb: the process's own peak resident memory.
        audio_seconds: the length of the WAV it wrote.
        engine: what the explorer said it rendered with (its ``engine:`` line), None when it said nothing.
    """

    wall_seconds: float
    peak_rss_mb: float
    audio_seconds: float
    engine: str | None = None


@dataclass(frozen=True)
class ConfigFigures:
    """One configuration's figures over the rounds.

    Attributes:
        config: the explorer's ``--engine`` value, or ``NAIVE``.
        engine: what the configuration rendered with (from the first round).
        wall_seconds: each round's whole-process time, in the order of the rounds.
        median_seconds: the median of ``wall_seconds``.
        best_seconds: the smallest of ``wall_seconds``.
        audio_seconds: the length of the speech written (the last round's).
        peak_rss_mb: the largest peak resident memory over the rounds.
        ratio: ``median_seconds`` over the naive script's median; None for the naive script itself.
        meets_goal: whether ``ratio`` is at most ``RATIO_GOAL``; None for the naive script.
    """

    config: str
    engine: str
    wall_seconds: tuple[float, ...]
    median_seconds: float
    best_seconds: float
    audio_seconds: float
    peak_rss_mb: float
    ratio: float | None
    meets_goal: bool | None


@dataclass(frozen=True)
class CliReport:
    """What :func:`run_cli_benchmark` measured.

    Attributes:
        machine: the CPU and core count (:func:`explorer.bench.runs.machine_description`).
        load_average: the machine's 1-minute load average at the start and at the end.
        words: the number of words in the text spoken.
        rounds: how many rounds ran.
        order: the order the configurations ran in, per round.
        goal: ``RATIO_GOAL``.
        rows: the explorer configurations in the order asked for, then the naive script.
    """

    machine: str
    load_average: tuple[float, float]
    words: int
    rounds: int
    order: tuple[tuple[str, ...], ...]
    goal: float
    rows: tuple[ConfigFigures, ...]


def _what(command: list[str]) -> str:
    """Name a command for a message: ``explorer synth`` for ``python -m explorer synth ...``, else the script's name."""
    return " ".join(command[2:4]) if command[1] == "-m" else Path(command[1]).name


def run_child(command: list[str], out: Path) -> ChildRun:
    """Run ``command`` (which writes the WAV ``out``) in a fresh process and return its wall time, its own peak
    memory and the length of the audio it wrote.

    The child is waited for with ``os.wait4``, which returns that child's resource usage alone:
    ``getrusage(RUSAGE_CHILDREN)`` keeps the largest peak of every child ever waited for, so it cannot tell one
    child's from another's.

    Raises:
        ExplorerError: the process failed; the message ends with its last error line.
    """
    with tempfile.TemporaryFile() as said, tempfile.TemporaryFile() as errors:
        started = perf_counter()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=said, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        wall_seconds = perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: Popen must not wait for it again
        said.seek(0)
        errors.seek(0)
        lines = said.read().decode(errors="replace").splitlines()
        if child.returncode != 0:
            last = errors.read().decode(errors="replace").strip().splitlines()[-1:]
            raise ExplorerError(f"{_what(command)} failed (exit status {child.returncode}): {last}")
    engine = next((line.removeprefix("engine: ") for line in lines if line.startswith("engine: ")), None)
    return ChildRun(wall_seconds, usage.ru_maxrss / 1024, soundfile.info(str(out)).duration, engine)


def _commands(configs: Sequence[str], text: str, folder: Path) -> dict[str, tuple[list[str], Path]]:
    """Return each configuration's command line and the WAV it writes into ``folder``, the naive script last."""
    commands = {}
    for config in configs:
        out = folder / f"{config}.wav"
        commands[config] = ([sys.executable, "-m", "explorer", "synth", "--text", text, "--voice", _VOICE,
                             "--engine", config, "--out", str(out)], out)
    out = folder / f"{NAIVE}.wav"
    commands[NAIVE] = ([sys.executable, str(NAIVE_SCRIPT), "--model", str(offline_onnx_model()), "--config",
                        str(CONFIG_PATH), "--voice", str(VOICES_DIR / f"{_VOICE}.bin"), "--text", text, "--out",
                        str(out)], out)
    return commands


def _figures(config: str, runs: list[ChildRun], naive_median: float | None) -> ConfigFigures:
    """Summarise one configuration's runs; ``naive_median`` is None for the naive script itself."""
    walls = tuple(run.wall_seconds for run in runs)
    median = statistics.median(walls)
    ratio = None if naive_median is None else median / naive_median
    return ConfigFigures(config=config, engine=runs[0].engine or _NAIVE_ENGINE, wall_seconds=walls,
                         median_seconds=median, best_seconds=min(walls), audio_seconds=runs[-1].audio_seconds,
                         peak_rss_mb=max(run.peak_rss_mb for run in runs), ratio=ratio,
                         meets_goal=None if ratio is None else ratio <= RATIO_GOAL)


def run_cli_benchmark(
    configs: Sequence[str] = ("auto",),
    rounds: int = DEFAULT_ROUNDS,
    text: str = PARAGRAPH,
    runner: Callable[[list[str], Path], ChildRun] = run_child,
    prepare: Callable[[str], None] = load_engine_once,
) -> CliReport:
    """Time ``python -m explorer synth`` with each engine configuration against the naive script, taking turns.

    Args:
        configs: the explorer's ``--engine`` values to time (``auto``, ``torch-bf16``, ``onnx``...).
        rounds: how many times each runs; the order rotates every round.
        text: the text spoken (a paragraph by default; tests pass a short one).
        runner: runs one command that writes the given WAV and returns what it measured (``run_child``; tests pass
            a stand-in that starts no process).
        prepare: loads an engine kind once, untimed, before the first round, so what a first load builds once per
            machine (a torch engine's traced graphs) is not timed as part of a command.

    Returns:
        The report: every configuration's times, audio length, peak memory and ratio to the naive script.

    Raises:
        ExplorerError: an unknown or repeated configuration, fewer than one round, or a process failed.
    """
    unknown = [config for config in configs if config not in ENGINE_KINDS]
    if unknown or not configs or len(set(configs)) != len(configs):
        raise ExplorerError(f"Give distinct engine configurations from {', '.join(ENGINE_KINDS)}; got "
                            f"{', '.join(configs) or 'none'}.")
    if rounds < 1:
        raise ExplorerError(f"Run at least one round, not {rounds}.")
    for config in configs:
        prepare(config)
    start_load = load_average_now()
    names = [*configs, NAIVE]
    runs: dict[str, list[ChildRun]] = {name: [] for name in names}
    order = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        commands = _commands(configs, text, Path(folder))
        for round_index in range(rounds):
            turn = rotated(names, round_index)
            order.append(tuple(turn))
            for name in turn:
                runs[name].append(runner(*commands[name]))
    naive = _figures(NAIVE, runs[NAIVE], None)
    rows = (*(_figures(config, runs[config], naive.median_seconds) for config in configs), naive)
    return CliReport(machine=machine_description(), load_average=(start_load, load_average_now()),
                     words=len(text.split()), rounds=rounds, order=tuple(order), goal=RATIO_GOAL, rows=rows)


def format_cli_report(report: CliReport) -> str:
    """Return the report as a table, what each configuration rendered with, and a verdict per configuration.

    Example:
        >>> from explorer.bench.whole_process import CliReport, ConfigFigures, format_cli_report
        >>> rows = (ConfigFigures("onnx", "onnx (int8)", (6.0, 7.0), 6.5, 6.0, 31.0, 700.0, 0.52, True),
        ...         ConfigFigures("naive-onnx", "onnxruntime", (13.0, 12.0), 12.5, 12.0, 31.0, 650.0, None, None))
        >>> report = CliReport("a CPU, 2 logical cores", (0.5, 0.7), 108, 2, (("onnx", "naive-onnx"),
        ...                    ("naive-onnx", "onnx")), 0.75, rows)
        >>> print(format_cli_report(report))  # doctest: +ELLIPSIS
        Whole-process synth of 108 words, 2 rounds taking turns: a CPU, 2 logical cores; load average 0.5 -> 0.7
        config      median s  best s  audio s  peak MB  vs naive
        onnx        6.50      6.00    31.0     700      0.52
        naive-onnx  12.50     12.00   31.0     650      1
        onnx: onnx (int8)
        naive-onnx: onnxruntime
        onnx: 0.52 of the naive script's median time: meets the goal (at most 0.75).
    """
    start, end = report.load_average
    header = (f"Whole-process synth of {report.words} words, {report.rounds} round{'s' * (report.rounds != 1)} "
              f"taking turns: {report.machine}; load average {start} -> {end}")
    cells = [[row.config, f"{row.median_seconds:.2f}", f"{row.best_seconds:.2f}", f"{row.audio_seconds:.1f}",
              f"{row.peak_rss_mb:.0f}", "1" if row.ratio is None else f"{row.ratio:.2f}"] for row in report.rows]
    table = text_table(["config", "median s", "best s", "audio s", "peak MB", "vs naive"], cells)
    engines = [f"{row.config}: {row.engine}" for row in report.rows]
    verdicts = [f"{row.config}: {row.ratio:.2f} of the naive script's median time: "
                f"{'meets' if row.meets_goal else 'misses'} the goal (at most {report.goal})."
                for row in report.rows if row.ratio is not None]
    return "\n".join([header, table, *engines, *verdicts])
