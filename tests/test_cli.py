"""The command line: each command does its job, and every bad input is one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fake_sounddevice
import numpy as np
import pytest

from explorer.audio import read_wav, wav_bytes
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


def test_analyze_perplexity_is_used_and_recorded(capsys, tmp_path, bundled_voices, monkeypatch):
    """Seven voices, perplexity 3: analysis.json and the text report hold it (the model and the PNGs are stubbed: the
    full run is tested above)."""
    from explorer import charts
    from explorer.voices import save_pack

    monkeypatch.setattr("explorer.architecture.analyze_architecture", lambda weights: None)
    monkeypatch.setattr(charts, "chart_bytes", lambda chart, fmt, scale=2.0: b"\x89PNG stub")
    folder = tmp_path / "voices"
    folder.mkdir()
    for name in ("af_heart", "af_bella", "am_adam", "bf_emma", "bm_george", "jf_alpha", "zm_yunxi"):
        save_pack(bundled_voices[name].pack, folder / f"{name}.pt")
    out = tmp_path / "analysis"
    code, _, _ = run(capsys, "analyze", "--voices", str(folder), "--perplexity", "3", "--out", str(out))
    assert code == 0
    data = json.loads((out / "analysis.json").read_text())
    assert data["tsne_perplexity"] == 3.0 and set(data["tsne"]["both"]) == set(data["voices"])
    assert "t-SNE: perplexity 3 (chosen; the default is 2 for 7 voices, allowed 1-6)" in (
        out / "analysis_report.txt").read_text()


@pytest.mark.parametrize("value", ["60", "0.5", "inf", "nan"])
def test_analyze_perplexity_outside_the_bounds_is_one_line_and_writes_nothing(capsys, tmp_path, value):
    out = tmp_path / "out"
    code, _, err = run(capsys, "analyze", "--perplexity", value, "--out", str(out))
    fragment = "Perplexity must be a number" if value == "nan" else "Perplexity must be between 1 and 53 for 54 voices"
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


def test_analyze_perplexity_that_is_not_a_number_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--perplexity", "many", "--out", "x"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--perplexity" in err and "'many'" in err and "Traceback" not in err


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


def test_mix_takes_named_attribute_edits_from_recipe_json(capsys, tmp_path, bundled_voices):
    from explorer.attributes import load_axes

    text = json.dumps({"version": 1, "base": {"type": "mix", "components": [{"voice": "am_adam"}]},
                       "edits": [{"type": "attribute", "attribute": "pitch", "amount": 2.0},
                                 {"type": "attribute", "attribute": "pace", "amount": -10}]})
    code, stdout, _ = run(capsys, "mix", "--recipe", text, "--out", str(tmp_path / "adam.pt"))
    assert code == 0 and "pitch +2 st" in stdout and "pace -10 %" in stdout
    axes = load_axes()
    pitched = bundled_voices["am_adam"].pack + axes.axis("pitch").offset(2.0, bundled_voices["am_adam"].pack)
    expected = pitched + axes.axis("pace").offset(-10, pitched)            # each edit for the voice it is given
    np.testing.assert_allclose(load_file(tmp_path / "adam.pt")[0].pack, expected, atol=1e-5)
    code, _, err = run(capsys, "mix", "--recipe", text.replace("2.0", "50"), "--out", str(tmp_path / "x.pt"))
    assert_one_line_error(code, err, "Pitch amount (st) is 50")


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


def test_synth_on_auto_says_which_engine_it_chose_for_this_job_and_why(capsys, tmp_path, monkeypatch):
    """A command is a one-off job: a sentence goes to the engine that finishes it first (onnx, which loads fastest)."""
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    monkeypatch.setattr("explorer.engines.base.native_bf16", lambda: True)
    monkeypatch.setattr("explorer.engines.choice.usable_memory", lambda: 64 * 1024**3)
    out = tmp_path / "hello.wav"
    code, stdout, _ = run(capsys, "synth", "--text", "Hello world.", "--voice", "af_heart", "--out", str(out))
    assert code == 0 and "engine: onnx" in stdout
    assert "auto: onnx, as for about 1 s of speech in a new process onnx is expected to finish first" in stdout


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


# --- weights download (a fake Hub: tests/test_hub.py) ----------------------------------------------------------------

OFFICIAL_WEIGHTS = ("hexgrad/Kokoro-82M", "kokoro-v1_0.pth")


def test_weights_download_fetches_checks_and_says_where_and_who_uses_it(capsys, tmp_path, monkeypatch):
    from tests.test_hub import fake_hub, kokoro_weights_bytes

    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    hub = fake_hub(monkeypatch, tmp_path, {OFFICIAL_WEIGHTS: kokoro_weights_bytes()})
    code, out, _ = run(capsys, "weights", "download")
    path = tmp_path / "models--hexgrad--Kokoro-82M" / "snapshots" / ("0" * 39 + "1") / "kokoro-v1_0.pth"
    assert code == 0 and hub.calls == [OFFICIAL_WEIGHTS]
    assert f"kokoro-v1_0.pth from hexgrad/Kokoro-82M was downloaded into the Hugging Face cache: {path}" in out
    assert "loaded with weights_only=True); --engine torch uses it" in out
    code, out, _ = run(capsys, "weights", "download")
    assert code == 0 and "is already in the Hugging Face cache" in out and len(hub.calls) == 1


def test_weights_download_with_the_hub_unreachable_says_so_in_seconds_and_writes_nothing(capsys, tmp_path,
                                                                                          monkeypatch):
    """The real probe, against a closed local port: one line, exit 1, the cache left empty."""
    import time

    from tests.test_hub import no_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "explorer"))
    no_hub(monkeypatch)
    started = time.monotonic()
    code, out, err = run(capsys, "weights", "download")
    assert time.monotonic() - started < 5
    assert code == 1 and out == ""
    assert_one_line_error(code, err, "Cannot get 'kokoro-v1_0.pth' from Hugging Face repo 'hexgrad/Kokoro-82M': "
                                     "http://127.0.0.1:9 cannot be reached and it is not in the local cache.")
    assert list(tmp_path.iterdir()) == []


def test_weights_download_refuses_a_pickle_that_would_run_code(capsys, tmp_path, monkeypatch):
    from tests.test_hub import fake_hub, kokoro_weights_bytes

    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return (Path.touch, (marker,))

    fake_hub(monkeypatch, tmp_path / "hf", {OFFICIAL_WEIGHTS: kokoro_weights_bytes(payload=RunsCode())})
    code, out, err = run(capsys, "weights", "download")
    assert_one_line_error(code, err, "which would run code); it was removed from the Hugging Face cache")
    assert out == "" and not marker.exists()
    assert not list((tmp_path / "hf" / "models--hexgrad--Kokoro-82M" / "blobs").iterdir())


# ------------------------------------------------------------------------------- playback and other tools' voices

SPOKEN = ["--phonemes", "həlˈO wˈɜɹld", "--engine", "onnx"]


def test_synth_play_plays_exactly_the_wav_it_wrote_at_24_khz(capsys, tmp_path, monkeypatch):
    """A person adds --play: the WAV is written, then the same samples go to the output device, to their end."""
    device = fake_sounddevice.fake_sounddevice("Speakers")
    fake_sounddevice.install(monkeypatch, device)
    out = tmp_path / "hello.wav"
    code, stdout, err = run(capsys, "synth", *SPOKEN, "--voice", "af_heart", "--out", str(out), "--play")
    assert code == 0 and err == ""
    written, rate = read_wav(out.read_bytes())
    ((played, played_rate, blocking),) = device.plays
    assert played_rate == rate == 24000 and blocking
    np.testing.assert_array_equal(played, written)
    seconds = len(written) / rate
    assert stdout.splitlines()[-2:] == [f"wrote {out}", f"played {out} ({seconds:.2f} s at 24000 Hz) on Speakers"]


@pytest.mark.parametrize(
    ("device", "fragment"),
    [(None, "the PortAudio library is missing"),
     (fake_sounddevice.fake_sounddevice(None), "no usable audio output device")],
    ids=["no PortAudio", "no output device"],
)
def test_synth_play_without_a_device_keeps_the_wav_and_warns_in_one_line(capsys, tmp_path, monkeypatch, device,
                                                                         fragment):
    """No sound here: the WAV is still written and the command succeeds (the file is what it makes); one warning."""
    fake_sounddevice.install(monkeypatch, device)
    out = tmp_path / "hello.wav"
    code, stdout, err = run(capsys, "synth", *SPOKEN, "--voice", "af_heart", "--out", str(out), "--play")
    assert code == 0 and f"wrote {out}" in stdout and "played" not in stdout
    assert read_wav(out.read_bytes())[1] == 24000
    (line,) = err.splitlines()
    assert line.startswith("warning: No local playback: ") and fragment in line
    assert line.endswith(f"; {out} is written.")


def test_play_plays_a_wav_file_on_the_output_device(capsys, tmp_path, monkeypatch):
    device = fake_sounddevice.fake_sounddevice("Speakers")
    fake_sounddevice.install(monkeypatch, device)
    clip = (0.25 * np.sin(np.arange(12_000) / 10)).astype(np.float32)
    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(clip, 22_050))
    code, stdout, err = run(capsys, "play", str(path))
    assert code == 0 and err == ""
    assert stdout == f"played {path} (0.54 s at 22050 Hz) on Speakers\n"
    ((played, rate, blocking),) = device.plays
    np.testing.assert_array_equal(played, read_wav(path.read_bytes())[0])
    assert rate == 22_050 and blocking


@pytest.mark.parametrize(
    ("device", "fragment"),
    [(None, "error: No local playback: the PortAudio library is missing (on Debian or Ubuntu: apt install "
            "libportaudio2)."),
     (fake_sounddevice.fake_sounddevice(None), "error: No local playback: no usable audio output device (Error "
                                              "querying device -1).")],
    ids=["no PortAudio", "no output device"],
)
def test_play_without_a_device_is_one_error_line_and_exit_1(capsys, tmp_path, monkeypatch, device, fragment):
    fake_sounddevice.install(monkeypatch, device)
    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(np.zeros(2400)))
    code, stdout, err = run(capsys, "play", str(path))
    assert code == 1 and stdout == "" and err == fragment + "\n"


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [("missing.wav", None, "No audio file at"), ("empty.wav", b"", "'empty.wav' is empty"),
     ("notes.wav", b"hello, I am text\n", "'notes.wav' is not an audio file"),
     ("silent.wav", b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\xc0]\x00\x00\x80\xbb\x00\x00\x02\x00"
                    b"\x10\x00data\x00\x00\x00\x00", "holds no audio (0 samples)"),
     ("a\nerror: fine.wav", b"x", "'a\\nerror: fine.wav' is not an audio file")],
    ids=["missing", "empty", "text", "no samples", "newline in the name"],
)
def test_play_refuses_what_is_not_playable_before_asking_for_a_device(capsys, tmp_path, monkeypatch, name, content,
                                                                      fragment):
    device = fake_sounddevice.fake_sounddevice("Speakers")
    fake_sounddevice.install(monkeypatch, device)
    if content is not None:
        (tmp_path / name).write_bytes(content)
    code, _, err = run(capsys, "play", str(tmp_path / name))
    assert_one_line_error(code, err, fragment)
    assert code == 1 and device.plays == []


def test_play_refuses_a_huge_file_before_reading_it(capsys, tmp_path, monkeypatch):
    from explorer import audio

    monkeypatch.setattr(audio, "_MAX_AUDIO_FILE_BYTES", 1024)
    path = tmp_path / "long.wav"
    path.write_bytes(wav_bytes(np.zeros(24_000)))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file its size already refused"))
    code, _, err = run(capsys, "play", str(path))
    assert_one_line_error(code, err, "'long.wav' holds 0 MiB; at most 0 MiB are read")


def test_play_needs_a_file(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["play"])
    assert exit_info.value.code == 2 and "file" in capsys.readouterr().err


def test_mix_takes_a_kokoro_fastapi_voice_string_and_prints_the_strings_of_both_tools(capsys, tmp_path,
                                                                                        bundled_voices):
    out = tmp_path / "bella_sky.pt"
    code, stdout, _ = run(capsys, "mix", "--voice", "af_bella(2) + af_sky(1)", "--out", str(out))
    assert code == 0
    assert stdout.splitlines()[:3] == ["mix 66.7% af_bella + 33.3% af_sky", "Kokoro-FastAPI voice: af_bella(2)+af_sky",
                                       "kokoro voice: af_bella,af_bella,af_sky"]
    (voice,) = load_file(out)
    expected = (2 * bundled_voices["af_bella"].pack.astype(np.float64) + bundled_voices["af_sky"].pack) / 3
    np.testing.assert_allclose(voice.pack, expected, atol=1e-6)
    assert Recipe.from_json((tmp_path / "bella_sky.recipe.json").read_text()) == \
        Recipe.from_voice_string("af_bella(2)+af_sky(1)")


def test_mix_of_a_subtraction_and_of_a_kokoro_mean(capsys, tmp_path, bundled_voices):
    code, stdout, _ = run(capsys, "mix", "--voice", "af_bella-af_sky", "--out", str(tmp_path / "diff.npz"))
    assert code == 0 and "Kokoro-FastAPI voice: af_bella-af_sky" in stdout and "kokoro voice" not in stdout
    code, stdout, _ = run(capsys, "mix", "--voice", "af_bella,af_sky", "--out", str(tmp_path / "mean.pt"))
    assert code == 0 and "kokoro voice: af_bella,af_sky" in stdout
    mean = (bundled_voices["af_bella"].pack + bundled_voices["af_sky"].pack) / 2
    np.testing.assert_allclose(load_file(tmp_path / "mean.pt")[0].pack, mean, atol=1e-6)


def test_mix_of_a_recipe_with_edits_says_it_has_no_voice_string_and_writes_the_pt(capsys, tmp_path):
    recipe = Recipe.single("af_heart").with_edit(DimEdit.single("zero", 3))
    code, stdout, _ = run(capsys, "mix", "--recipe", recipe.to_token(), "--out", str(tmp_path / "x.pt"))
    assert code == 0 and (tmp_path / "x.pt").is_file()
    assert "note: No Kokoro-FastAPI voice string describes this recipe: its edit beyond the mix exists only here; " \
           "give those tools x.pt.\n" in stdout


def test_a_loaded_voice_named_with_a_dash_is_that_voice_not_a_subtraction(capsys, tmp_path, bundled_voices):
    from explorer.voices import save_pack

    folder = tmp_path / "voices"
    folder.mkdir()
    for name in ("my-voice", "my", "voice"):
        save_pack(bundled_voices["bf_emma"].pack, folder / f"{name}.npy")
    code, _, _ = run(capsys, "mix", "--voice", "my-voice", "--voices", str(folder), "--out", str(tmp_path / "x.pt"))
    assert code == 0 and Recipe.from_json((tmp_path / "x.recipe.json").read_text()) == Recipe.single("my-voice")


@pytest.mark.parametrize(
    ("voice", "fragment"),
    [("af_bella(2)+", "empty term"), ("af_bella((2))", "NAME(WEIGHT)"), ("af_bella(0)+af_sky(0)", "is zero"),
     ("af_bella+zz_nobody", "Unknown voice 'zz_nobody'"), ("af_bella(x)", "not a number")],
)
def test_mix_and_synth_refuse_a_bad_voice_string_in_one_line_without_writing(capsys, tmp_path, voice, fragment):
    code, _, err = run(capsys, "mix", "--voice", voice, "--out", str(tmp_path / "x.pt"))
    assert_one_line_error(code, err, fragment)
    code, _, err = run(capsys, "synth", *SPOKEN, "--voice", voice, "--out", str(tmp_path / "x.wav"))
    assert_one_line_error(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_synth_speaks_a_kokoro_fastapi_blend(capsys, tmp_path, monkeypatch):
    fake_sounddevice.install(monkeypatch, None)
    out = tmp_path / "blend.wav"
    code, _, _ = run(capsys, "synth", *SPOKEN, "--voice", "af_bella(2)+af_sky(1)", "--out", str(out))
    audio, rate = read_wav(out.read_bytes())
    assert code == 0 and rate == 24000 and np.sqrt(np.mean(audio**2)) > 0.01


def test_mix_takes_a_recipe_or_a_voice_not_both(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["mix", "--voice", "af_heart", "--recipe", Recipe.single("af_heart").to_token(), "--out", "x.pt"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
