"""Specification of ``bench cli`` (explorer.bench.whole_process) and its baseline, scripts/naive_onnx_synth.py.

The baseline must speak, or the comparison means nothing: it runs on the real offline model. The benchmark's
bookkeeping (turn order, medians, ratios, verdicts) runs with a stand-in runner that starts no process; one short real
round runs through the command line. Timings are never asserted.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from explorer.bench.whole_process import (
    NAIVE,
    NAIVE_SCRIPT,
    RATIO_GOAL,
    ChildRun,
    format_cli_report,
    run_child,
    run_cli_benchmark,
)
from explorer.cli import main
from explorer.engines import load_engine, offline_onnx_model
from explorer.errors import ExplorerError
from explorer.paths import CONFIG_PATH, VOICES_DIR
from explorer.synth import synthesize
from explorer.voices import load_bundled

SHORT_TEXT = "The lighthouse keeper lit the lamp at dusk."


def naive_command(text: str, out: Path) -> list[str]:
    return [sys.executable, str(NAIVE_SCRIPT), "--model", str(offline_onnx_model()), "--config", str(CONFIG_PATH),
            "--voice", str(VOICES_DIR / "af_heart.bin"), "--text", text, "--out", str(out)]


class FakeRunner:
    """Stands in for ``run_child``: records each command's configuration and returns the next planted time."""

    def __init__(self, seconds: dict[str, list[float]]):
        self.seconds = {name: list(times) for name, times in seconds.items()}
        self.calls: list[str] = []

    def __call__(self, command: list[str], out: Path) -> ChildRun:
        name = command[command.index("--engine") + 1] if "--engine" in command else NAIVE
        self.calls.append(name)
        return ChildRun(self.seconds[name].pop(0), 100.0 + len(self.calls), 2.5, f"{name} engine")


def test_the_naive_script_imports_nothing_from_the_explorer():
    tree = ast.parse(NAIVE_SCRIPT.read_text(encoding="utf-8"))
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {module for module in modules if module.split(".")[0] in {"explorer", "scripts"}}
    assert len(NAIVE_SCRIPT.read_text(encoding="utf-8").splitlines()) <= 60


def loud_frames(audio: np.ndarray) -> np.ndarray:
    """Whether each 20 ms frame of 24 kHz audio is louder than quiet room noise."""
    frames = audio[: len(audio) // 480 * 480].reshape(-1, 480)
    return np.sqrt((frames**2).mean(axis=1)) > 0.01


def spoken_seconds(audio: np.ndarray) -> float:
    """From the first loud frame to the last: the speech without the silence around it (which the explorer trims)."""
    loud = np.flatnonzero(loud_frames(audio))
    return (loud[-1] - loud[0] + 1) * 0.02


def test_the_naive_script_speaks_a_sentence_as_long_as_the_explorer_does(tmp_path):
    out = tmp_path / "naive.wav"
    subprocess.run(naive_command(SHORT_TEXT, out), check=True, capture_output=True, timeout=120)
    audio, rate = soundfile.read(out, dtype="float32")
    assert rate == 24000 and audio.ndim == 1 and np.abs(audio).max() < 1.0
    loud = loud_frames(audio)
    assert 0.4 < loud.mean() < 0.98  # speech: mostly voiced, with pauses; not silence, not a constant noise
    explorer = synthesize(SHORT_TEXT, style=load_bundled()["af_heart"].pack, engine=load_engine("onnx"))
    assert spoken_seconds(audio) == pytest.approx(spoken_seconds(explorer.audio), rel=0.15)  # same words and model


def test_run_child_measures_the_childs_own_time_memory_and_audio(tmp_path):
    out = tmp_path / "tone.wav"
    code = ("import sys, numpy, soundfile; big = numpy.ones(60_000_000 // 8); "
            "soundfile.write(sys.argv[1], numpy.zeros(12000, 'float32'), 24000); print('engine: a tone')")
    run = run_child([sys.executable, "-c", code, str(out)], out)
    assert run.audio_seconds == pytest.approx(0.5)
    assert run.peak_rss_mb > 60 and run.wall_seconds > 0 and run.engine == "a tone"


def test_run_child_names_what_failed_and_its_last_error_line(tmp_path):
    with pytest.raises(ExplorerError, match=r"naive_onnx_synth.py failed \(exit status 2\).*required"):
        run_child([sys.executable, str(NAIVE_SCRIPT)], tmp_path / "none.wav")


def test_each_round_rotates_the_order_so_no_configuration_always_runs_first():
    runner = FakeRunner({"auto": [1.0, 1.0, 1.0], "onnx": [1.0, 1.0, 1.0], NAIVE: [1.0, 1.0, 1.0]})
    report = run_cli_benchmark(["auto", "onnx"], rounds=3, text=SHORT_TEXT, runner=runner, prepare=lambda kind: None)
    assert report.order == (("auto", "onnx", NAIVE), ("onnx", NAIVE, "auto"), (NAIVE, "auto", "onnx"))
    assert runner.calls == [name for turn in report.order for name in turn]

    two = run_cli_benchmark(["auto"], rounds=2, text=SHORT_TEXT, runner=FakeRunner({"auto": [1, 1], NAIVE: [1, 1]}),
                            prepare=lambda kind: None)
    assert two.order == (("auto", NAIVE), (NAIVE, "auto"))


def test_medians_best_times_and_ratios_come_from_each_configurations_own_runs():
    runner = FakeRunner({"auto": [9.0, 6.0, 7.0], "onnx": [4.0, 5.0, 30.0], NAIVE: [10.0, 8.0, 12.0]})
    report = run_cli_benchmark(["auto", "onnx"], rounds=3, text="one two three", runner=runner,
                               prepare=lambda kind: None)
    auto, onnx, naive = report.rows
    assert [row.config for row in report.rows] == ["auto", "onnx", NAIVE]
    assert naive.wall_seconds == (10.0, 8.0, 12.0) and naive.median_seconds == 10.0 and naive.best_seconds == 8.0
    assert naive.ratio is None and naive.meets_goal is None
    assert (auto.median_seconds, auto.best_seconds, auto.ratio, auto.meets_goal) == (7.0, 6.0, 0.7, True)
    assert (onnx.median_seconds, onnx.ratio) == (5.0, 0.5)  # one slow round does not move a median
    assert auto.peak_rss_mb == 108  # the largest of its rounds' peaks (the stand-in's 1st, 6th and 8th runs)
    assert auto.audio_seconds == 2.5 and auto.engine == "auto engine" and report.words == 3 and report.rounds == 3
    assert report.goal == RATIO_GOAL and len(report.load_average) == 2 and "logical cores" in report.machine


def test_the_report_names_each_configuration_and_says_whether_it_meets_the_goal():
    runner = FakeRunner({"auto": [9.5], "onnx": [5.0], NAIVE: [10.0]})
    report = run_cli_benchmark(["auto", "onnx"], rounds=1, text=SHORT_TEXT, runner=runner, prepare=lambda kind: None)
    text = format_cli_report(report)
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["auto", "onnx", NAIVE]
    assert "auto: 0.95 of the naive script's median time: misses the goal (at most 0.75)." in lines
    assert "onnx: 0.50 of the naive script's median time: meets the goal (at most 0.75)." in lines
    assert "1 round taking turns" in lines[0]


@pytest.mark.parametrize("configs, rounds", [(["nope"], 1), (["auto", "auto"], 1), ([], 1), (["auto"], 0)])
def test_unknown_or_repeated_configurations_and_no_rounds_are_refused(configs, rounds):
    with pytest.raises(ExplorerError):
        run_cli_benchmark(configs, rounds=rounds, runner=FakeRunner({}), prepare=lambda kind: pytest.fail("prepared"))


def test_bench_cli_runs_one_real_round_through_the_command_line(capsys):
    assert main(["bench", "cli", "--rounds", "1", "--configs", "onnx", "--text", SHORT_TEXT, "--json"]) in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert [row["config"] for row in report["rows"]] == ["onnx", NAIVE]
    onnx, naive = report["rows"]
    assert onnx["audio_seconds"] > 1 and naive["audio_seconds"] > 1  # each wrote its sentence (what: the test above)
    assert onnx["engine"].startswith("onnx") and onnx["peak_rss_mb"] > 50 and naive["wall_seconds"][0] > 0
    assert report["order"] == [["onnx", NAIVE]]
