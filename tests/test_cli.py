"""The command line: each command does its job, and every bad input is one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.audio import read_wav
from explorer.cli import main
from explorer.recipe import DimEdit, Mix, Recipe
from explorer.voices import load_file

PROJECT = Path(__file__).resolve().parent.parent
ANALYZE_FILES = {
    "analysis.json",
    "analysis_report.txt",
    "architecture_analysis.json",
    "architecture_report.txt",
    "centroids.npz",
    "centroid_stats.json",
    "top_variable_dimensions.json",
    "pca_variance.png",
    "pca_2d.png",
    "tsne_both.png",
    "interlayer_correlation.png",
    "embedding_distributions.png",
    "dimension_variance.png",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], err


def test_module_entry_point_runs_as_a_program():
    done = subprocess.run([sys.executable, "-m", "explorer", "voices", "list"], capture_output=True, text=True,
                          cwd=PROJECT)
    assert done.returncode == 0
    assert "af_heart" in done.stdout and "British English" in done.stdout


def test_voices_list_of_a_folder(capsys, tmp_path, bundled_voices):
    from explorer.voices import save_pack

    save_pack(bundled_voices["bf_emma"].pack, tmp_path / "bf_copy.npy")
    code, out, _ = run(capsys, "voices", "list", "--source", str(tmp_path))
    assert code == 0 and "bf_copy" in out and "af_heart" not in out


def test_voices_download_offline_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: False)
    code, _, err = run(capsys, "voices", "download", "--out", str(tmp_path / "voices"))
    assert_one_line_error(code, err, "cannot be reached")
    assert not (tmp_path / "voices").exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["analyze"], "--out"),
        (["analyze", "--row", "510", "--out", "x"], "row must be 0-509"),
        (["synth", "--text", "hi", "--out", "x.wav"], "--voice"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_usage(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and fragment in err and "Traceback" not in err


def test_analyze_writes_every_report_of_the_seed_suite(capsys, tmp_path):
    out = tmp_path / "analysis"
    code, stdout, _ = run(capsys, "analyze", "--out", str(out))
    assert code == 0
    assert {p.name for p in out.iterdir()} == ANALYZE_FILES
    assert all(f"wrote {out / name}" in stdout for name in ANALYZE_FILES)
    data = json.loads((out / "analysis.json").read_text())
    assert data["n_voices"] == 54 and "mean over" in data["summary"]
    assert (out / "pca_2d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    architecture = json.loads((out / "architecture_analysis.json").read_text())
    assert architecture["total_params"] > 80_000_000


def test_analyze_of_a_broken_folder_leaves_nothing_behind(capsys, tmp_path):
    broken = tmp_path / "voices"
    broken.mkdir()
    (broken / "af_bad.bin").write_bytes(b"\0" * 100)
    out = tmp_path / "out"
    code, _, err = run(capsys, "analyze", "--voices", str(broken), "--out", str(out))
    assert_one_line_error(code, err, "af_bad.bin")
    assert not out.exists()


def test_analyze_of_an_empty_folder(capsys, tmp_path):
    code, _, err = run(capsys, "analyze", "--voices", str(tmp_path), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "holds no voice files")


def test_architecture_json_counts_parameters(capsys):
    code, out, _ = run(capsys, "architecture", "--json")
    data = json.loads(out)
    assert code == 0
    assert sum(m["params"] for m in data["modules"]) == data["total_params"]


def test_architecture_with_missing_weights(capsys, tmp_path):
    code, _, err = run(capsys, "architecture", "--weights", str(tmp_path / "missing.pth"))
    assert_one_line_error(code, err, "missing.pth")


def test_mix_writes_a_pack_kokoro_loads_and_its_recipe(capsys, tmp_path, bundled_voices):
    recipe = Recipe(Mix.from_weights({"af_heart": 1}, {"am_adam": 1}), (DimEdit.single("zero", 3),))
    out = tmp_path / "timbre_heart.pt"
    code, stdout, _ = run(capsys, "mix", "--recipe", recipe.to_token(), "--out", str(out))
    assert code == 0 and "am_adam" in stdout
    (voice,) = load_file(out)
    np.testing.assert_array_equal(voice.pack[:, 4:128], bundled_voices["af_heart"].pack[:, 4:128])
    np.testing.assert_array_equal(voice.pack[:, 128:], bundled_voices["am_adam"].pack[:, 128:])
    assert (voice.pack[:, 3] == 0).all()
    assert Recipe.from_json((tmp_path / "timbre_heart.recipe.json").read_text()) == recipe


def test_mix_reads_a_recipe_file_and_writes_npz(capsys, tmp_path):
    recipe_file = tmp_path / "r.json"
    recipe_file.write_text(Recipe.single("bf_emma").to_json())
    code, _, _ = run(capsys, "mix", "--recipe", str(recipe_file), "--out", str(tmp_path / "emma.npz"))
    assert code == 0 and load_file(tmp_path / "emma.npz")[0].name == "emma"


@pytest.mark.parametrize(
    ("recipe", "fragment"),
    [("not a recipe!!", "recipe"), (Recipe.single("zz_nobody").to_token(), "zz_nobody")],
)
def test_mix_refuses_bad_recipes(capsys, tmp_path, recipe, fragment):
    code, _, err = run(capsys, "mix", "--recipe", recipe, "--out", str(tmp_path / "x.pt"))
    assert_one_line_error(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_mix_to_a_missing_folder_or_bad_suffix(capsys, tmp_path):
    token = Recipe.single("af_heart").to_token()
    code, _, err = run(capsys, "mix", "--recipe", token, "--out", str(tmp_path / "no" / "x.pt"))
    assert_one_line_error(code, err, "does not exist")
    code, _, err = run(capsys, "mix", "--recipe", token, "--out", str(tmp_path / "x.wav"))
    assert_one_line_error(code, err, ".pt or .npz")


def test_synth_speaks_real_speech_with_the_offline_model(capsys, tmp_path):
    out = tmp_path / "hello.wav"
    code, stdout, _ = run(capsys, "synth", "--text", "Hello world.", "--voice", "af_heart", "--engine", "onnx",
                          "--out", str(out))
    assert code == 0
    assert "engine: onnx" in stdout and "real-time factor" in stdout and "phonemes: " in stdout
    audio, rate = read_wav(out.read_bytes())
    assert rate == 24000 and 0.5 < len(audio) / rate < 3 and np.sqrt(np.mean(audio**2)) > 0.01


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--text", "   ", "--voice", "af_heart"], "text"),
        (["--text", "hi", "--voice", "zz_nobody"], "zz_nobody"),
        (["--text", "hi", "--voice", "af_heart", "--speed", "0"], "Speed"),
        (["--text", "hi", "--voice", "af_heart", "--speed", "nan"], "Speed"),
        (["--text", "hi", "--voice", "af_heart", "--lang", "q"], "q"),
        (["--phonemes", "123", "--voice", "af_heart"], "phoneme"),
    ],
)
def test_synth_refuses_bad_input_without_writing(capsys, tmp_path, extra, fragment):
    out = tmp_path / "x.wav"
    code, _, err = run(capsys, "synth", *extra, "--engine", "onnx", "--out", str(out))
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


def test_synth_to_a_missing_folder(capsys, tmp_path):
    code, _, err = run(capsys, "synth", "--text", "hi", "--voice", "af_heart",
                       "--out", str(tmp_path / "missing" / "x.wav"))
    assert_one_line_error(code, err, "does not exist")
