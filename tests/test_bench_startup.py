"""``bench startup``: from process start to an engine ready to render, by part, before (kokoro's modules) and after
(traced graphs), in fresh processes taking turns."""

from __future__ import annotations

import json
import time

import pytest

from explorer.bench import startup
from explorer.bench.startup import (
    StartupRun,
    format_startup_report,
    run_startup_benchmark,
    startup_worker,
)
from explorer.errors import ExplorerError


def test_a_worker_says_ready_when_its_engine_is_then_prints_its_parts_and_two_renders(capsys):
    startup_worker("onnx-int8", time.time() - 0.5)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "ready"
    figures = json.loads(lines[-1])
    assert "import torch" not in figures["parts"] and figures["parts"]["start"] >= 0.5
    assert figures["first_render_seconds"] > 0 and figures["second_render_seconds"] > 0
    assert 0 < figures["ready_peak_mb"] <= figures["peak_mb"]


def test_a_modules_configuration_builds_kokoros_modules_in_the_process(monkeypatch, capsys):
    built = []

    class Engine:
        load_seconds = {"weights": 0.1, "import kokoro": 2.0, "model": 0.5}

        def render(self, phonemes, pack):
            assert phonemes == startup.STARTUP_SENTENCE and pack.shape[-1] == 256

    monkeypatch.setattr(startup, "TorchEngine", lambda precision, traced: built.append((precision, traced)) or Engine())
    startup_worker("torch-bf16:modules", time.time())
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert built == [("bf16", False)]
    assert list(figures["parts"]) == ["start", "import torch", "weights", "import kokoro", "model"]


def test_every_configuration_runs_once_per_round_in_turn_after_each_engine_was_loaded_once(monkeypatch):
    order = []

    def fake_run(config):
        order.append(config)
        ready = {"torch-bf16:modules": 4.0, "torch-bf16": 1.3, "onnx-int8": 0.5}[config] + 0.01 * len(order)
        return StartupRun(config=config, ready_seconds=ready, parts={"start": 0.1},
                          first_render_seconds=0.6, second_render_seconds=0.4, ready_peak_mb=400, peak_mb=500)

    monkeypatch.setattr(startup, "_run_worker", fake_run)
    configs = ["torch-bf16:modules", "torch-bf16", "onnx-int8"]
    prepared = []
    report = run_startup_benchmark(configs, rounds=3, prepare=prepared.append)
    assert prepared == ["torch-bf16", "onnx-int8"]  # a first load traces the graphs if they are not cached: untimed
    assert order == [*configs, *configs[1:], configs[0], configs[2], *configs[:2]]
    assert len(report["runs"]) == 9 and set(report["medians"]) == set(configs)
    assert 1.3 < report["medians"]["torch-bf16"]["ready_seconds"] < 1.4  # the median of its three runs
    text = format_startup_report(report)
    assert all(config in text for config in configs) and "ready s" in text and "start s" in text


def test_a_failed_worker_says_which_configuration_and_why():
    with pytest.raises(ExplorerError, match="start-up worker for no-such-engine failed"):
        startup._run_worker("no-such-engine")
