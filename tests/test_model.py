"""Specification of explorer.engines.model: the real kokoro.KModel built without a network, and weights files read
without running code in them and loaded all or nothing."""

from __future__ import annotations

import os

import pytest
import torch

from explorer.engines import model as model_building
from explorer.engines.model import build_model, load_weights
from explorer.errors import ModelFilesError
from tests.conftest import one_frame_per_token, small_config

TOP_LEVEL = ["bert", "bert_encoder", "predictor", "text_encoder", "decoder"]
"""KModel's top-level modules, each a separate state dict in a weights file."""


@pytest.fixture(scope="module")
def small_model(offline):
    model = build_model(small_config())
    one_frame_per_token(model)
    return model


# --- building -------------------------------------------------------------------------------------------------------


def test_build_gives_a_kokoro_model_in_eval_mode_without_network(small_model):
    """The real KModel class, no module left in training mode (the fixture fails on any download)."""
    from kokoro import KModel

    assert isinstance(small_model, KModel)
    assert not any(module.training for module in small_model.modules())


def test_missing_config_is_a_model_files_error(offline, tmp_path):
    with pytest.raises(ModelFilesError, match="does not exist"):
        build_model(tmp_path / "config.json")


def test_config_without_a_setting_is_a_model_files_error(offline):
    config = small_config()
    del config["vocab"]
    with pytest.raises(ModelFilesError, match="'vocab'"):
        build_model(config)


def test_tampered_placeholder_weights_file_is_rewritten(offline):
    """The empty state dict KModel gets in place of a download is checked, so it can never smuggle weights in."""
    path = model_building._empty_state_path()
    path.write_bytes(b"not a state dict")
    assert torch.load(model_building._empty_state_path(), weights_only=True) == {}


# --- weights files --------------------------------------------------------------------------------------------------


def test_weights_saved_in_kokoro_format_load_back_exactly(offline, small_model, tmp_path):
    """Kokoro's format is {module: state_dict}; the official file prefixes keys with 'module.', accepted too."""
    state = {name: module.state_dict() for name, module in small_model.named_children()}
    for name in ("bert", "decoder"):
        state[name] = {f"module.{key}": value for key, value in state[name].items()}
    path = tmp_path / "kokoro-small.pth"
    torch.save(state, path)
    loaded = build_model(small_config(), weights=path)
    original = dict(small_model.named_parameters())
    assert all(torch.equal(param, original[name]) for name, param in loaded.named_parameters())
    assert not any(module.training for module in loaded.modules())


def test_weights_without_instance_norm_scales_load_with_identity_norms(small_model, tmp_path):
    """Kokoro's AdaIN norms carry scale and shift only for ONNX export; a file without them (StyleTTS2's layout)
    loads, and those norms become identity instead of keeping earlier values."""
    state = {name: module.state_dict() for name, module in small_model.named_children()}
    norms = [path for path, module in small_model.named_modules() if isinstance(module, torch.nn.InstanceNorm1d)]
    first = small_model.get_submodule(norms[0])
    original = first.weight.detach().clone()
    with torch.no_grad():
        first.weight.fill_(5.0)
    for path in norms:
        branch, rest = path.split(".", 1)
        del state[branch][f"{rest}.weight"], state[branch][f"{rest}.bias"]
    path = tmp_path / "styletts2-layout.pth"
    torch.save(state, path)
    load_weights(small_model, path)
    assert norms and torch.equal(first.weight, torch.ones_like(first.weight))
    assert torch.equal(first.weight, original)  # what random initialisation gave too


def test_missing_weights_file_is_a_model_files_error(offline, tmp_path):
    with pytest.raises(ModelFilesError, match="not found"):
        build_model(small_config(), weights=tmp_path / "absent.pth")


@pytest.mark.parametrize(
    "content",
    [b"", os.urandom(4096), b"hello", "truncated"],
    ids=["empty", "random bytes", "text", "truncated zip"],
)
def test_damaged_weights_file_is_a_model_files_error(offline, tmp_path, content):
    path = tmp_path / "weights.pth"
    if content == "truncated":
        torch.save({"bert": {"weight": torch.zeros(1000)}}, path)
        content = path.read_bytes()[:-200]
    path.write_bytes(content)
    with pytest.raises(ModelFilesError, match="weights.pth"):
        build_model(small_config(), weights=path)


def test_weights_file_that_would_run_code_is_refused(offline, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"bert": Payload()}, path)
    with pytest.raises(ModelFilesError, match="run code"):
        build_model(small_config(), weights=path)
    assert not marker.exists()


def test_weights_that_do_not_fit_are_refused_and_change_nothing(small_model, tmp_path):
    """Every module is checked before any is copied: a fitting bert_encoder next to a bad module is not loaded."""
    before = {name: param.clone() for name, param in small_model.named_parameters()}
    fitting = {key: value + 1 for key, value in small_model.bert_encoder.state_dict().items()}
    empty = {name: {} for name in TOP_LEVEL}
    others = {name: {} for name in TOP_LEVEL if name != "bert_encoder"}
    cases = {
        "missing modules": {"bert_encoder": fitting},
        "unknown modules": {**empty, "vocoder": {}},
        "lacks 2 tensors of bert_encoder": {**empty, "bert": small_model.bert.state_dict()},
        "the model needs": {"bert_encoder": {**fitting, "weight": torch.zeros(3, 3)}, **others},
        "lacks 25 tensors of bert": {"bert_encoder": fitting, **others},
    }
    for message, bad in cases.items():
        path = tmp_path / "other.pth"
        torch.save(bad, path)
        with pytest.raises(ModelFilesError, match=message):
            load_weights(small_model, path)
    assert all(torch.equal(param, before[name]) for name, param in small_model.named_parameters())


def test_a_file_that_is_not_a_dict_of_state_dicts_is_refused(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ModelFilesError, match="per-module state dicts"):
        model_building.read_weights(path)
