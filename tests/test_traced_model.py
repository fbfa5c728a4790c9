"""The torch engine's traced graphs: the same audio as kokoro's modules, bit for bit, loaded by a new process from
the cache without kokoro or transformers, and traced again whenever what they were traced from changes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.cache import record_cached_file, recorded_sha256
from explorer.engines import TorchEngine, base, model_files, torch_engine, traced_model
from explorer.engines.kmodel_inference import EagerKModel
from explorer.engines.model_files import traced_graphs_path
from explorer.engines.traced_model import TracedKModel, load_cached_graphs

PHRASES = (
    "hˈI.",
    "ðə kwˈɪk bɹˈWn fˈɑks dʒˈʌmps ˌOvəɹ ðə lˈAzi dˈɔɡ.",
    "ɪn ðə bɪɡˈɪnɪŋ, ðə wˈɜːld wʌz kwˈaɪət; ðˈɛn ðə wˈɪnd kˈeɪm, ænd wɪð ɪt ðə sˈaʊnd əv wˈeɪvz ɔn ðə ʃˈɔːɹ, "
    "fˈɑːɹ əwˈeɪ fɹʌm ˈɛni tˈaʊn ɔːɹ ɹˈoʊd, wˈɛɹ nˈoʊ wˈʌn hæd ˈɛvəɹ lˈɪvd bɪfˈɔːɹ.",
)
"""Lengths from 4 to about 170 phonemes; the graphs are traced on a 5-phoneme warm-up phrase."""


@pytest.fixture(scope="module")
def tiny_files(tiny_kmodel, tiny_config, tmp_path_factory) -> tuple[Path, Path]:
    """``tiny_kmodel``'s weights in kokoro's format and its config, as files a fresh process can read."""
    folder = tmp_path_factory.mktemp("tiny-files")
    weights, config = folder / "kokoro-tiny.pth", folder / "config.json"
    torch.save({name: module.state_dict() for name, module in tiny_kmodel.named_children()}, weights)
    config.write_text(json.dumps(tiny_config), encoding="utf-8")
    return weights, config


@pytest.fixture
def private_cache(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(folder))
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # renders compare on the tests' thread count
    return folder


def renders(engine: TorchEngine) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every phrase at three speeds, seeded once (the vocoder draws noise): audio and durations. Each render must
    then also draw as many random numbers as kokoro does, or every later one differs."""
    found = []
    torch.manual_seed(0)
    for phrase in PHRASES:
        for speed in (1.0, 0.8, 1.7):
            rendered = engine.render(phrase, np.full(256, 0.05, dtype=np.float32), speed)
            found.append((rendered.audio, rendered.durations))
    return found


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_graphs_render_exactly_what_kokoros_modules_render(monkeypatch, private_cache, tiny_files, precision):
    """Every length and speed, twice over (a graph's later calls compute as its first), in both precisions."""
    monkeypatch.setattr(base, "native_bf16", lambda: True)  # bf16 runs on any CPU, only slowly without it
    weights, config = tiny_files
    modules = TorchEngine(weights, config=config, precision=precision, traced=False)
    graphs = TorchEngine(weights, config=config, precision=precision)
    assert isinstance(modules.runner, EagerKModel) and isinstance(graphs.runner, TracedKModel)
    # none were cached, so they were traced now
    assert set(graphs.load_seconds) == {"weights", "graphs", "import kokoro", "model", "trace"}
    expected = renders(modules)
    for _ in range(2):
        for (audio, durations), (wanted_audio, wanted_durations) in zip(renders(graphs), expected):
            np.testing.assert_array_equal(durations, wanted_durations)
            np.testing.assert_array_equal(audio, wanted_audio)
    assert graphs.weights == modules.weights  # the same audio, so the same description (replay caches key on it)


FRESH_PROCESS = """
import sys, numpy as np, torch
from explorer.engines import TorchEngine
engine = TorchEngine(sys.argv[1], config=sys.argv[2], precision="fp32")
torch.set_num_threads(int(sys.argv[5]))  # as the test process, so sums add up in the same order
torch.manual_seed(0)
audio = engine.render(sys.argv[3], np.full(256, 0.05, dtype=np.float32)).audio
np.save(sys.argv[4], audio)
print(type(engine.runner).__name__, sorted(engine.load_seconds), "kokoro" in sys.modules,
      "transformers" in sys.modules, "misaki" in sys.modules)
"""


def test_a_new_process_renders_from_the_cached_graphs_without_importing_kokoro_or_transformers(
        private_cache, tiny_files, tmp_path):
    weights, config = tiny_files
    engine = TorchEngine(weights, config=config, precision="fp32")
    torch.manual_seed(0)
    with_graphs_traced_here = engine.render(PHRASES[1], np.full(256, 0.05, dtype=np.float32)).audio
    saved = tmp_path / "audio.npy"
    command = [sys.executable, "-c", FRESH_PROCESS, str(weights), str(config), PHRASES[1], str(saved),
               str(torch.get_num_threads())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = done.stdout.strip().splitlines()[-1].split()
    assert said == ["TracedKModel", "['graphs',", "'weights']", "False", "False", "False"], (done.stdout, done.stderr)
    np.testing.assert_array_equal(np.load(saved), with_graphs_traced_here)


def test_graphs_are_traced_again_for_other_weights_another_precision_or_another_version(
        monkeypatch, private_cache, tiny_files, tmp_path):
    weights, config = tiny_files
    TorchEngine(weights, config=config, precision="fp32")
    assert load_cached_graphs(weights, config, "fp32") is not None
    assert load_cached_graphs(weights, config, "bf16") is None
    monkeypatch.setattr(model_files, "GRAPHS_VERSION", model_files.GRAPHS_VERSION + 1)
    assert load_cached_graphs(weights, config, "fp32") is None
    monkeypatch.undo()
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(private_cache))
    other = tmp_path / weights.name  # the same name, another file: its own size and time
    other.write_bytes(weights.read_bytes() + b"\0")
    assert load_cached_graphs(other, config, "fp32") is None
    changed = json.loads(config.read_text(encoding="utf-8"))
    changed["max_dur"] = changed.get("max_dur", 50) + 1
    assert load_cached_graphs(weights, changed, "fp32") is None


def test_damaged_cached_graphs_are_traced_again_not_loaded(private_cache, tiny_files, monkeypatch):
    weights, config = tiny_files
    TorchEngine(weights, config=config, precision="fp32")
    path = traced_graphs_path(weights, "fp32")
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    assert load_cached_graphs(weights, config, "fp32") is None
    engine = TorchEngine(weights, config=config, precision="fp32")
    assert "trace" in engine.load_seconds and load_cached_graphs(weights, config, "fp32") is not None


def test_graphs_are_keyed_by_the_hash_recorded_for_weights_the_explorer_wrote(tmp_path):
    """The offline weights' import records their SHA-256, so graphs name their source without hashing 330 MB."""
    written = tmp_path / "imported.pth"
    record_cached_file(written, b"weights", provenance="from:test")
    assert recorded_sha256(written) == hashlib.sha256(b"weights").hexdigest()
    written.write_bytes(b"changed")  # no longer the file the marker describes
    assert recorded_sha256(written) is None
    assert recorded_sha256(tmp_path / "absent.pth") is None


def test_an_engine_on_the_offline_weights_says_how_long_each_part_of_its_load_took(monkeypatch, private_cache,
                                                                                    tiny_files):
    weights, config = tiny_files
    monkeypatch.setattr(torch_engine, "cached_torch_weights", lambda: weights)
    engine = TorchEngine(config=config, precision="fp32")
    again = TorchEngine(config=config, precision="fp32")
    assert set(engine.load_seconds) == {"weights", "graphs", "import kokoro", "model", "trace"}
    assert set(again.load_seconds) == {"weights", "graphs"}
    assert all(seconds >= 0 for seconds in again.load_seconds.values())


def test_modules_that_cannot_be_traced_and_cached_still_speak_and_say_why(monkeypatch, private_cache, tiny_files):
    """A read-only cache, or a tracer that fails on some model: the engine runs kokoro's modules, and warns."""
    from explorer.errors import ModelFilesError

    def unwritable(*args):
        raise ModelFilesError("Cannot write the traced model into /read-only: [Errno 30] Read-only file system")

    monkeypatch.setattr(traced_model, "trace_graphs", unwritable)
    weights, config = tiny_files
    with pytest.warns(UserWarning, match="Running kokoro's modules in Python.*Read-only file system"):
        engine = TorchEngine(weights, config=config, precision="fp32")
    assert isinstance(engine.runner, EagerKModel) and "trace" not in engine.load_seconds
    assert engine.render(PHRASES[1], np.full(256, 0.05, dtype=np.float32)).audio.size > 0
