"""Specification of explorer.bench.speed's machinery: what a worker measures, how rows become a report and a table.

Benchmarks report figures and never assert them; these tests check the structure on the tiny ONNX engine (conftest)
with a one-sentence corpus, and the quality columns with stand-in meters, never a timing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from explorer.bench import speed
from explorer.bench.speed import (
    BenchRow,
    Turns,
    compare_speed,
    format_first_audio,
    format_report,
    format_table,
    run_benchmarks,
    run_worker,
)
from explorer.cli import main
from explorer.errors import ExplorerError


@pytest.fixture
def small_bench(monkeypatch):
    """One sentence, one voice, two first-chunk sizes, one repeat each: the same code paths, a few renders."""
    monkeypatch.setattr(speed, "CORPUS", ("Hello there.",))
    monkeypatch.setattr(speed, "BENCH_VOICES", ("af_heart",))
    monkeypatch.setattr(speed, "FIRST_CHUNK_SWEEP", (0,))
    monkeypatch.setattr(speed, "SWEEP_REPEATS", 1)


def a_row(config: str, **changes) -> BenchRow:
    row = BenchRow(config=config, engine="onnx", weights=f"{config} weights", default=False, load_seconds=0.5,
                   cpu_rtf=0.7, replay_ms=1.5, peak_rss_mb=512.0, load_average=(0.3, 0.3))
    return replace(row, **changes)


def turns(rtf: float = 0.4, ratio: float | None = 1.0) -> Turns:
    return Turns(rtf=rtf, edit_rtf=rtf, time_vs_reference=ratio, first_audio_seconds=0.45,
                 first_audio_by_chunk={"20": 0.45, "0": 1.2}, load_average=0.5)


def test_a_worker_measures_its_engine_alone_and_keeps_each_render(small_bench, tiny_onnx_engine, tmp_path):
    row = run_worker("tiny", tmp_path, repeat=True, configs={"tiny": lambda: tiny_onnx_engine})

    assert (row.config, row.engine, row.weights, row.default) == ("tiny", "onnx", tiny_onnx_engine.weights, False)
    assert row.cpu_rtf > 0 and row.load_seconds >= 0 and row.replay_ms >= 0 and row.peak_rss_mb > 0
    assert row.rtf is None and row.first_audio_seconds is None  # the comparison phase's figures
    assert row.wer is None and row.similarity_to_reference is None
    names = sorted(path.name for path in tmp_path.glob("*.npy"))
    assert names == [f"{voice}-0.npy" for voice in speed.BENCH_VOICES]
    assert sorted(path.name for path in (tmp_path / speed.REPEAT_FOLDER).glob("*.npy")) == names
    assert np.load(tmp_path / names[0]).dtype == np.float32
    assert BenchRow.from_json(json.loads(json.dumps(asdict(row)))) == row


def test_taking_turns_times_every_configuration_against_the_reference(small_bench, tiny_onnx_engine,
                                                                      tiny_torch_engine):
    configs = {"onnx-int8": lambda: tiny_onnx_engine, "tiny-torch": lambda: tiny_torch_engine}
    figures = compare_speed(["tiny-torch", "onnx-int8"], configs, rounds=1)

    assert set(figures) == {"tiny-torch", "onnx-int8"}
    assert figures["onnx-int8"].time_vs_reference == 1.0  # the reference against itself
    for measured in figures.values():
        assert measured.rtf > 0 and measured.time_vs_reference > 0 and measured.first_audio_seconds > 0
        assert measured.edit_rtf > 0
        assert set(measured.first_audio_by_chunk) == {str(speed.FIRST_CHUNK_PHONEMES), "0"}
    assert compare_speed(["tiny-torch"], configs, rounds=1)["tiny-torch"].time_vs_reference is None


def test_an_unknown_configuration_is_refused_naming_the_available_ones():
    with pytest.raises(ExplorerError, match="'nope' is not available here; available: tiny"):
        run_worker("nope", configs={"tiny": lambda: None})


def fake_run(folder_rows: dict[str, BenchRow]):
    """A stand-in for the subprocess: saves silent 'renders' and returns the given row."""
    calls = []

    def run(name: str, renders: Path, repeat: bool) -> BenchRow:
        calls.append((name, repeat))
        folders = [renders, renders / speed.REPEAT_FOLDER] if repeat else [renders]
        for folder in folders:
            folder.mkdir(exist_ok=True)
            for voice in speed.BENCH_VOICES:
                for index in range(len(speed.CORPUS)):
                    np.save(folder / f"{voice}-{index}.npy", np.zeros(2400, np.float32))
        return folder_rows[name]

    return run, calls


@pytest.fixture
def three_configs(monkeypatch):
    monkeypatch.setattr(speed, "engine_configs", lambda: dict.fromkeys(("onnx-int8", "onnx-float", "torch-fp32")))
    monkeypatch.setattr(speed, "default_config", lambda: "onnx-int8")


def test_a_speed_report_lists_each_configuration_asked_for_in_order(three_configs):
    rows = {name: a_row(name) for name in ("onnx-int8", "onnx-float", "torch-fp32")}
    run, calls = fake_run(rows)
    compared, prepared = [], []
    report = run_benchmarks(quality=False, names=["torch-fp32", "onnx-float"], run=run,
                            compare=lambda names: compared.append(names) or {n: turns(0.3, None) for n in names},
                            prepare=prepared.append)

    assert prepared == ["torch-fp32", "onnx-float"]  # loaded once first: graphs traced then are not timed as a load
    assert calls == [("torch-fp32", False), ("onnx-float", False)] and compared == [["torch-fp32", "onnx-float"]]
    assert [row["config"] for row in report["rows"]] == ["torch-fp32", "onnx-float"]
    for row in report["rows"]:  # alone, then taking turns: both phases' figures in one row
        assert (row["cpu_rtf"], row["rtf"], row["first_audio_seconds"]) == (0.7, 0.3, 0.45)
        assert row["load_average"] == (0.3, 0.5)
    assert report["reference"] is None and report["default"] == "onnx-int8"
    assert report["corpus_sentences"] == len(speed.CORPUS) and report["voices"] == list(speed.BENCH_VOICES)
    assert report["first_chunk_phonemes"] == speed.FIRST_CHUNK_PHONEMES and "cores" in report["machine"]
    json.dumps(report)  # all of it is plain JSON


def test_quality_runs_the_reference_first_and_fills_wer_and_similarity(three_configs, monkeypatch):
    import explorer.meters

    rows = {name: a_row(name) for name in ("onnx-int8", "onnx-float", "torch-fp32")}
    run, calls = fake_run(rows)
    heard = iter(["hello world"] * 100)
    monkeypatch.setattr(explorer.meters, "transcribe", lambda audio: next(heard))
    monkeypatch.setattr(explorer.meters, "word_error_rate", lambda said, heard: 0.25)
    compared = []
    monkeypatch.setattr(explorer.meters, "speaker_similarity",
                        lambda a, b: compared.append((a.shape, b.shape)) or 0.9)

    report = run_benchmarks(quality=True, names=["onnx-float"], run=run,
                            compare=lambda names: {name: turns() for name in names}, prepare=lambda kind: None)

    assert calls == [("onnx-int8", True), ("onnx-float", False)]  # the reference renders twice: its noise floor
    assert report["reference"] == "onnx-int8"
    for row in report["rows"]:
        assert row["wer"] == 0.25 and row["similarity_to_reference"] == 0.9
    assert len(compared) == 2 * len(speed.BENCH_VOICES) * len(speed.CORPUS)


def test_unknown_configurations_are_refused_before_anything_runs(three_configs):
    run, calls = fake_run({})
    with pytest.raises(ExplorerError, match="Unknown configuration onnx-fp16; available: onnx-int8, onnx-float"):
        run_benchmarks(quality=False, names=["onnx-fp16"], run=run, prepare=lambda kind: pytest.fail("prepared"))
    assert calls == []


def test_the_table_has_a_header_and_one_aligned_line_per_row_marking_the_default():
    rows = [a_row("onnx-int8", default=True, wer=0.0, similarity_to_reference=0.97, rtf=0.4, load_average=(0.3, 0.5)),
            a_row("onnx-float-with-a-long-name", rtf=0.45, time_vs_reference=1.12)]
    lines = format_table(rows).splitlines()

    assert len(lines) == 3
    assert lines[0].split("  ")[0].strip() == "config"
    assert lines[1].startswith("onnx-int8 *") and not lines[2].startswith("onnx-int8 *")
    headers = ("RTF", "edit RTF", "time vs ref", "CPU RTF", "first audio s", "replay ms", "peak MB", "load s", "WER",
               "sim. to ref", "load avg")
    assert [lines[0].index(header) for header in headers] == sorted(lines[0].index(header) for header in headers)
    for header in headers:
        column = lines[0].index(header)
        assert all(line[column - 2:column] == "  " for line in lines[1:])  # every cell starts under its header
    assert "0.3/0.5" in lines[1] and "1.12" in lines[2]
    assert lines[2].split()[-3:] == ["-", "-", "0.3/0.3"]  # no quality measured: dashes


def test_the_first_audio_table_has_a_column_per_first_chunk_size():
    lines = format_first_audio([a_row("onnx-int8", first_audio_by_chunk={"20": 0.45, "0": 1.2}),
                                a_row("onnx-float", first_audio_by_chunk={"20": 0.5})])
    header, first, second = lines.splitlines()
    assert header.split() == ["config", "first", "20", "whole", "sentence"]
    assert first.split() == ["onnx-int8", "0.45", "1.2"] and second.split() == ["onnx-float", "0.5", "-"]


def test_the_command_prints_the_report_or_its_json(three_configs, monkeypatch, capsys):
    report = {"machine": "test machine, 2 logical cores", "corpus_sentences": 5, "voices": ["af_heart"],
              "first_chunk_phonemes": 20, "reference": "onnx-int8", "default": "onnx-int8",
              "rows": [asdict(a_row("onnx-int8", default=True, **(asdict(turns()) | {"load_average": (0.3, 0.5)})))]}
    asked = []
    monkeypatch.setattr(speed, "run_benchmarks", lambda quality, names: asked.append((quality, names)) or report)

    assert main(["bench", "synth", "--configs", "onnx-int8, onnx-float", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(report))
    assert main(["bench"]) == 0
    assert capsys.readouterr().out.strip() == format_report(report)
    assert asked == [(False, ["onnx-int8", "onnx-float"]), (True, None)]
    assert format_report(report).startswith("machine: test machine")
