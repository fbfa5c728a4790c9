"""The seed analysis suite's workflow, run as its README prints it, in a fresh copy of the repository: its four
commands and its two Python examples, offline, with nothing downloaded by hand.

The copy holds what ``git ls-files`` lists (tracked and new files, nothing ignored), so a file the workflow needs but
nobody added fails here. It runs with the Hub out of reach (``HF_HUB_OFFLINE``), an empty Hugging Face cache and a
private explorer cache. One copy serves every test: the commands run once, in the seed's order, in a module fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.errors import VoiceError
from explorer.seed import VoiceAnalyzer
from explorer.voices import load_bundled, load_file, save_pack

ROOT = Path(__file__).resolve().parents[1]
SEED_README = ROOT.parent / "shared" / "seed" / "000_66c78d0b973d17ee.txt"
"""The seed suite's README, where this checkout has it beside the repository (the stored copies below stand in)."""

CUSTOM_ANALYSIS = """\
from scripts.analyze_voices import VoiceAnalyzer

# Initialize analyzer
analyzer = VoiceAnalyzer('voices')

# Load voices
analyzer.load_voices()

# Run specific analyses
centroids = analyzer.compute_centroids()
pca_results = analyzer.pca_analysis(n_components=50)
corr_results = analyzer.inter_layer_correlation()

# Generate specific plots
analyzer.plot_pca_2d(pca_results)
analyzer.plot_tsne(layer='decoder', perplexity=30)
"""
"""The seed README's "Custom Analysis" example, verbatim."""

ARCHITECTURE_EXPLORATION = """\
from scripts.analyze_architecture import ArchitectureAnalyzer

analyzer = ArchitectureAnalyzer()
analyzer.load_model()

# Analyze specific modules
bert_analysis = analyzer.analyze_bert_encoder()
decoder_analysis = analyzer.analyze_decoder()
flow_analysis = analyzer.analyze_data_flow()
"""
"""The seed README's "Architecture Exploration" example, verbatim."""

COMMANDS = {
    "download": "python scripts/download_all_voices.py",
    "architecture": "python scripts/analyze_architecture.py",
    "voices": "python scripts/analyze_voices.py",
    "check": "python test_kokoro.py",
}
"""The seed README's commands, in the order it gives them."""

SEED_ANALYSIS_FILES = (
    "architecture_analysis.json", "architecture_report.txt", "analysis_report.txt", "centroids.npz",
    "centroid_stats.json", "top_variable_dimensions.json", "pca_variance.png", "pca_2d.png", "tsne_both.png",
    "interlayer_correlation.png", "embedding_distributions.png", "dimension_variance.png",
)
"""``voices/analysis/`` in the seed README's "Directory Structure"."""

PROBES = {
    "custom": "\nimport json\nprint('PROBE ' + json.dumps({'voices': len(analyzer.voices), "
              "'groups': len(centroids.by_kind['group']), "
              "'components': {layer: result.projections.shape[1] for layer, result in pca_results.items()}, "
              "'max_abs': round(corr_results.max_abs, 2)}))\n",
    "architecture": "\nimport json\nprint('PROBE ' + json.dumps({'bert_params': bert_analysis['params'], "
                    "'hidden_size': bert_analysis['bert']['hidden_size'], "
                    "'decoder_params': decoder_analysis['params'], "
                    "'decoder_dims': decoder_analysis['style']['dims'], 'frame_ms': flow_analysis.frame_ms, "
                    "'last_step': flow_analysis.steps[-1].name}))\n",
}
"""Printed after each example has run as printed: what a seed user reads back from its results."""


def seed_example(text: str, heading: str) -> str:
    """Return the Python block under ``### heading`` of the seed README."""
    match = re.search(rf"^### {re.escape(heading)}\n+```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, f"the seed README has no Python example under {heading!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """Copy the repository, then run the seed's commands and examples in it, in order: ``(copy, {name: result})``."""
    copy = tmp_path_factory.mktemp("seed") / "repo"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # a file deleted but not yet staged is listed too
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    hidden = {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "EXPLORER_ENGINE"}
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    private = copy.parent
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(private / "hf"), EXPLORER_CACHE_DIR=str(private / "cache"))

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *argv], check=False, cwd=copy, env=env, capture_output=True,
                              text=True, timeout=300)

    results = {}
    for name, command in COMMANDS.items():
        results[name] = run(*command.split()[1:])
        if name == "download":  # the scripts run the copy's explorer, not the one installed for development
            results["copy_imported"] = any((copy / "explorer" / "__pycache__").glob("cli.*.pyc"))
    results["custom"] = run("-c", CUSTOM_ANALYSIS + PROBES["custom"])
    results["architecture_example"] = run("-c", ARCHITECTURE_EXPLORATION + PROBES["architecture"])
    return copy, results


def probe(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("PROBE "))[6:])


def test_the_examples_and_commands_are_the_seed_readmes():
    if not SEED_README.is_file():
        pytest.skip(f"the seed README is not beside this checkout ({SEED_README}); the stored copies stand in")
    text = SEED_README.read_text(encoding="utf-8")
    assert seed_example(text, "Custom Analysis") == CUSTOM_ANALYSIS
    assert seed_example(text, "Architecture Exploration") == ARCHITECTURE_EXPLORATION
    assert all(f"```bash\n{command}\n```" in text for command in COMMANDS.values())
    listing = text[text.index("│   └── analysis/"):text.index("├── scripts/")]
    assert set(re.findall(r"[\w]+\.(?:json|txt|npz|png)", listing)) == set(SEED_ANALYSIS_FILES)


def test_download_all_voices_fills_voices_from_the_bundled_copies_offline(seed):
    copy, results = seed
    result = results["download"]
    assert result.returncode == 0, result.stderr
    assert results["copy_imported"]
    note = result.stderr.strip().splitlines()
    assert len(note) == 1 and "HF_HUB_OFFLINE is set" in note[0] and "bundled copies" in note[0], result.stderr
    assert result.stdout == "wrote 54 voices from the bundled copies to voices\n"
    written = sorted(path.stem for path in (copy / "voices").glob("*.pt"))
    bundled = load_bundled()
    assert written == bundled.names
    [heart] = load_file(copy / "voices" / "af_heart.pt")
    assert np.array_equal(heart.pack, bundled["af_heart"].pack)


def test_analyze_architecture_writes_its_json_and_report(seed):
    copy, results = seed
    result = results["architecture"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("wrote voices/analysis/architecture_analysis.json\n"
                             "wrote voices/analysis/architecture_report.txt\n")
    data = json.loads((copy / "voices/analysis/architecture_analysis.json").read_text())
    report = (copy / "voices/analysis/architecture_report.txt").read_text()
    assert data["total_params"] == 81_810_022
    assert report.startswith("Kokoro architecture") and "Total parameters: 81,810,022" in report


def test_analyze_voices_writes_every_file_the_seed_lists_from_voices(seed):
    copy, results = seed
    result = results["voices"]
    assert result.returncode == 0, result.stderr
    assert "Loaded 54 voices from voices." in result.stderr
    assert {name for name in SEED_ANALYSIS_FILES if not (copy / "voices/analysis" / name).is_file()} == set()
    analysis = json.loads((copy / "voices/analysis/analysis.json").read_text())
    assert analysis["n_voices"] == 54 and {v["source"] for v in analysis["voice_metadata"]} == {"voices"}
    assert (copy / "voices/analysis/tsne_both.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_kokoro_checks_the_installation_and_speaks(seed):
    copy, results = seed
    result = results["check"]
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {name: rows[name] for name in ("voices", "auto", "engine", "g2p", "speech")} == dict.fromkeys(
        ("voices", "auto", "engine", "g2p", "speech"), "ok")
    assert rows["meters"] in {"ok", "absent"}
    assert result.stdout.splitlines()[-1] == "Speech works: every required check passed."
    assert list(copy.rglob("*.wav")) == []


def test_the_custom_analysis_example_runs_as_printed(seed):
    copy, results = seed
    found = probe(results["custom"])
    assert found == {"voices": 54, "groups": 17, "components": {"decoder": 50, "prosody": 50, "both": 50},
                     "max_abs": 0.76}
    for name in ("pca_2d.png", "tsne_decoder.png"):
        assert (copy / "voices/analysis" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_architecture_example_runs_as_printed(seed):
    _, results = seed
    found = probe(results["architecture_example"])
    assert found == {"bert_params": 6_686_208, "hidden_size": 768, "decoder_params": 53_313_586,
                     "decoder_dims": "0-127", "frame_ms": 25.0, "last_step": "audio"}


def test_load_voices_without_the_folder_says_to_run_the_download_script(tmp_path):
    with pytest.raises(VoiceError, match=r"does not exist: run python scripts/download_all_voices\.py first"):
        VoiceAnalyzer(tmp_path / "voices").load_voices()
    (tmp_path / "voices").mkdir()
    with pytest.raises(VoiceError, match="holds no voicepacks"):
        VoiceAnalyzer(tmp_path / "voices").load_voices()


@pytest.fixture
def five_voices(tmp_path, bundled_voices):
    folder = tmp_path / "voices"
    folder.mkdir()
    for name in ("af_heart", "am_adam", "bf_emma", "bm_george", "jf_alpha"):
        save_pack(bundled_voices[name].pack, folder / f"{name}.pt")
    return folder


def test_pca_analysis_keeps_what_the_voices_allow_and_says_so(five_voices):
    analyzer = VoiceAnalyzer(five_voices)
    expected = "n_components=50 is more than 5 voices allow; keeping 5 on decoder, 5 on prosody, 5 on both"
    with pytest.warns(UserWarning, match=expected):
        results = analyzer.pca_analysis(n_components=50)
    assert {layer: result.projections.shape for layer, result in results.items()} == dict.fromkeys(
        ("decoder", "prosody", "both"), (5, 5))


def test_plot_tsne_passes_the_perplexity_to_the_analysis(five_voices, monkeypatch):
    asked = []

    def tsne(vectors, layer="both", seed=0, perplexity=None):
        asked.append((layer, perplexity))
        return np.zeros((len(vectors), 2))

    monkeypatch.setattr("explorer.analysis.tsne", tsne)
    analyzer = VoiceAnalyzer(five_voices)
    assert analyzer.plot_tsne(layer="prosody", perplexity=3) == five_voices / "analysis" / "tsne_prosody.png"
    with pytest.warns(UserWarning, match="perplexity=30 is outside 1-4 for 5 voices; using 4"):
        analyzer.plot_tsne(layer="decoder", perplexity=30)
    assert asked == [("prosody", 3.0), ("decoder", 4.0)]
    assert (five_voices / "analysis" / "tsne_decoder.png").read_bytes()[:4] == b"\x89PNG"


def test_or_bundled_stands_in_only_for_the_repo_the_bundled_voices_come_from(capsys, tmp_path, monkeypatch):
    """The bundled voices are hexgrad/Kokoro-82M's: another repo out of reach stays an error, and nothing is written."""
    from explorer.cli import main

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: False)
    code = main(["voices", "download", "--repo", "hexgrad/Kokoro-82M-v1.1-zh", "--or-bundled",
                 "--out", str(tmp_path / "voices")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and "cannot be reached" in err
    assert not (tmp_path / "voices").exists()
