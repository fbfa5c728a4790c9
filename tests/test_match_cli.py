"""``python -m explorer match``: a recording in, the best recipe, its voicepack and a report out; every bad input one
line on stderr, with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.audio import wav_bytes
from explorer.match import MATCH_ENGINE, MATCH_SENTENCES, Scorer
from explorer.recipe import Recipe, apply_recipe
from explorer.voices import VoiceSet, load_file, save_pack
from tests.test_cli import assert_one_line_error, run

REFERENCE = ("am_adam", "am_onyx", "bm_lewis", "af_heart")


@pytest.fixture(scope="module")
def voices_folder(bundled_voices, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    for name in REFERENCE:
        save_pack(bundled_voices[name].pack, folder / f"{name}.pt")
    return folder


@pytest.fixture(scope="module")
def recording(bundled_voices, tmp_path_factory):
    """bm_george, whom the reference set lacks, speaking the search sentences, as a WAV file."""
    from explorer.engines import load_engine

    whole = Scorer(load_engine(MATCH_ENGINE), bundled_voices)
    clips = [whole.render(bundled_voices["bm_george"].pack, text, i)
             for i, text in enumerate(MATCH_SENTENCES["en"][0])]
    path = tmp_path_factory.mktemp("target") / "george.wav"
    path.write_bytes(wav_bytes(np.concatenate(clips)))
    return path


def test_match_writes_the_recipe_its_voicepack_and_a_report_judged_on_held_out_sentences(
        capsys, tmp_path, recording, voices_folder, bundled_voices):
    out = tmp_path / "george.json"
    code, stdout, _ = run(capsys, "match", "--target", str(recording), "--voices", str(voices_folder),
                          "--budget", "10", "--out", str(out))
    assert code == 0, stdout
    assert "s of speech found" in stdout and "held-out sentences" in stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["george.json", "george.pt", "george.report.json"]
    recipe = Recipe.from_json(out.read_text())
    assert set(recipe.voice_names) <= set(REFERENCE)
    reference = VoiceSet([bundled_voices[name] for name in REFERENCE])
    np.testing.assert_allclose(load_file(tmp_path / "george.pt")[0].pack, apply_recipe(recipe, reference),
                               atol=1e-6)   # the voice itself, whatever set a later command is given
    report = json.loads((tmp_path / "george.report.json").read_text())
    assert Recipe.from_token(report["share"]) == recipe
    assert report["evaluations"] == 10 and report["config"]["budget"] == 10
    assert report["found"]["held_out"]["wer"] is not None
    assert report["best_stock_voice"]["name"] in REFERENCE
    assert [name for name, _ in report["stock_ranking"]] and len(report["stock_ranking"]) == 4
    assert report["curve"][-1][0] == 10


@pytest.mark.parametrize("extra, fragment", [
    (["--budget", "5"], "budget must be a whole number of evaluations from 10"),
    (["--budget", "1000000"], "budget must be"),
    (["--minutes", "0"], "time limit must be"),
    (["--minutes", "nan"], "time limit must be"),
    (["--lang", "j"], "matcher speaks"),
    (["--transcript", " "], "transcript is empty"),
    (["--exclude", "zz_nobody"], "Cannot exclude 'zz_nobody'"),
    (["--device", "cuda:9"], "is not there"),
    (["--device", "tpu"], "Unknown device"),
    (["--workers", "0"], "Workers must be a whole number"),
    (["--ray", "nowhere"], "HOST:PORT"),
    (["--ray", "127.0.0.1:9"], "No Ray cluster answers"),
])
def test_bad_settings_are_one_line_and_write_nothing(capsys, tmp_path, recording, extra, fragment):
    code, _, err = run(capsys, "match", "--target", str(recording), *extra, "--out", str(tmp_path / "x.json"))
    assert_one_line_error(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, fragment", [
    (b"", "is empty"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 40, "not an audio file"),
    (b"just some text, not a recording\n" * 50, "not an audio file"),
    (wav_bytes(np.zeros(48000)), "is silent"),
    (wav_bytes(0.1 * np.sin(np.arange(24000) / 3)), "at least 2 s"),
])
def test_a_target_that_is_not_a_voice_is_one_line_and_writes_nothing(capsys, tmp_path, content, fragment):
    target = tmp_path / "target.wav"
    target.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(capsys, "match", "--target", str(target), "--out", str(out / "x.json"))
    assert_one_line_error(code, err, fragment)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("name, fragment", [("x.pt", "must end in .json"), ("x.report.json", "must end in .json"),
                                            ("missing/x.json", "does not exist")])
def test_an_output_that_cannot_be_written_is_refused_before_the_search(capsys, tmp_path, recording, name, fragment):
    code, _, err = run(capsys, "match", "--target", str(recording), "--out", str(tmp_path / name))
    assert_one_line_error(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_target_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "match", "--target", str(tmp_path / "nothing.wav"), "--out", str(tmp_path / "x.json"))
    assert_one_line_error(code, err, "nothing.wav")
    assert list(tmp_path.iterdir()) == []


def test_without_cma_the_command_says_what_to_install_and_writes_nothing(capsys, tmp_path, recording, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cma" else real(name, *a))
    code, _, err = run(capsys, "match", "--target", str(recording), "--out", str(tmp_path / "x.json"))
    assert_one_line_error(code, err, "needs cma")
    assert list(tmp_path.iterdir()) == []
