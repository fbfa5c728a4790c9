"""Specification of explorer.bench.render_profile: which parts of a torch render it times, how it counts convolution
operations, and that profiling leaves the engine as it found it.

The profile reports figures and never asserts them; these tests check its behaviour on the tiny random-weight torch
engine (conftest) with a one-sentence corpus, never a timing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from explorer.bench import render_profile
from explorer.audio import SAMPLE_RATE
from explorer.cli import main
from explorer.engines import TorchEngine
from explorer.errors import SynthesisError
from explorer.bench.render_profile import (
    REST,
    RenderProfile,
    RenderTimer,
    conv_flops,
    default_profile_config,
    format_profile,
    profile_config,
    profile_renders,
)
from explorer.synth import prepare
from tests.conftest import one_torch_thread

PHONEMES = "həlˈO wˈɜːld"
STYLE = np.random.default_rng(0).normal(0, 0.3, 256).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def torch_on_one_thread():
    """Torch on one thread, as in test_engines: these tests must not depend on the machine's load."""
    with one_torch_thread():
        yield


def hook_counts(engine: TorchEngine) -> list[tuple[int, int]]:
    roots = (engine.runner.model, engine.runner.generator)
    modules = {id(module): module for root in roots for module in root.modules()}
    return [(len(module._forward_pre_hooks), len(module._forward_hooks)) for module in modules.values()]


def seeded_audio(engine: TorchEngine) -> np.ndarray:
    torch.manual_seed(1234)  # the vocoder draws noise
    return engine.render(PHONEMES, STYLE).audio


@pytest.mark.parametrize("conv, shape", [
    (torch.nn.Conv1d(4, 6, kernel_size=3, padding=1, groups=2), (2, 4, 10)),
    (torch.nn.Conv1d(3, 5, kernel_size=7, stride=3, dilation=2), (1, 3, 50)),
    (torch.nn.ConvTranspose1d(4, 6, kernel_size=4, stride=2, padding=1, groups=2), (1, 4, 10)),
    (torch.nn.ConvTranspose1d(8, 8, kernel_size=3, stride=2, padding=1, output_padding=1, groups=8), (1, 8, 10)),
])
def test_convolution_operations_are_two_per_multiply_add_as_torchs_flop_counter_counts_them(conv, shape):
    x = torch.randn(shape)
    with FlopCounterMode(display=False) as counter:
        y = conv(x)
    assert conv_flops(conv, x, y) == counter.get_total_flops() > 0


def test_a_grouped_convolution_counts_its_multiply_adds_by_hand():
    conv = torch.nn.Conv1d(4, 6, kernel_size=3, padding=1, groups=2)
    x = torch.zeros(2, 4, 10)
    assert conv_flops(conv, x, conv(x)) == 2 * 2 * 6 * (4 // 2) * 3 * 10  # 2 x batch x out x in/groups x kernel x L
    transposed = torch.nn.ConvTranspose1d(4, 6, kernel_size=4, stride=2, groups=2)
    assert conv_flops(transposed, x, transposed(x)) == 2 * 2 * 4 * (6 // 2) * 4 * 10  # over the input length


def test_every_convolution_of_a_render_is_counted(tiny_kmodel):
    """Every convolution torch runs in a render is counted once: the timer's total equals torch's flop counter's.

    fp32, whose LSTMs the flop counter can run (it cannot decompose a bf16 one)."""
    engine = TorchEngine(model=tiny_kmodel, precision="fp32")
    with RenderTimer(engine) as timer, FlopCounterMode(display=False) as counter:
        engine.render(PHONEMES, STYLE)
    counted = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    assert timer.conv_flops == counted["aten.convolution"] > 0


def test_a_timed_render_sounds_the_same_and_every_hook_is_removed_afterwards(tiny_torch_engine):
    before = hook_counts(tiny_torch_engine)
    plain = seeded_audio(tiny_torch_engine)
    with RenderTimer(tiny_torch_engine) as timer:
        assert sum(map(sum, hook_counts(tiny_torch_engine))) > sum(map(sum, before))
        timed = seeded_audio(tiny_torch_engine)
    np.testing.assert_array_equal(timed, plain)
    assert hook_counts(tiny_torch_engine) == before
    assert timer.conv_seconds > 0 and timer.conv_flops > 0


def test_hooks_are_removed_when_a_render_fails_inside(tiny_torch_engine):
    before = hook_counts(tiny_torch_engine)
    with pytest.raises(SynthesisError), RenderTimer(tiny_torch_engine):
        tiny_torch_engine.render(PHONEMES, STYLE, speed=9.0)
    assert hook_counts(tiny_torch_engine) == before


def test_parts_cover_the_render_once_each_with_their_convolutions_inside(tiny_torch_engine):
    """The vocoder the engine runs is timed even when it is a bf16 copy of the model's (a shared model in bf16)."""
    tiny_torch_engine.clear_cache()
    with RenderTimer(tiny_torch_engine) as timer:
        compute = tiny_torch_engine.render(PHONEMES, STYLE).compute_seconds
    parts = timer.parts(compute)
    stages = tiny_torch_engine.runner.generator.num_upsamples
    assert [part.name for part in parts] == [
        "bert", "bert_encoder", "predictor", "text_encoder", "decoder body", "harmonic source",
        *(f"{kind} {stage}" for stage in range(stages) for kind in ("noise", "upsample", "resblocks")),
        "conv_post", REST]
    assert {part.side for part in parts[:4]} == {"prosody"} and {part.side for part in parts[4:-1]} == {"decoder"}
    assert all(part.seconds > 0 for part in parts[:-1]) and parts[-1].seconds >= 0
    assert math.isclose(sum(part.seconds for part in parts), compute)
    assert math.isclose(sum(part.share for part in parts), 1.0)
    for part in parts:
        assert 0 <= part.conv_seconds <= part.seconds and part.conv_gflop >= 0
    assert parts[-1].conv_gflop == 0  # every convolution lies in a part
    assert math.isclose(sum(part.conv_gflop for part in parts), timer.conv_flops / 1e9)
    assert all(part.conv_gflop > 0 for part in parts if part.name.startswith(("noise", "upsample", "resblocks")))
    assert parts[0].conv_gflop == 0  # PL-BERT has no convolution


def test_a_profile_renders_the_corpus_and_its_figures_agree(tiny_torch_engine, bundled_voices):
    sentences = ("Hello there.", "Good night.")
    before = hook_counts(tiny_torch_engine)
    profile = profile_renders(tiny_torch_engine, "tiny-torch", sentences=sentences, voices=("af_heart",))

    assert hook_counts(tiny_torch_engine) == before
    assert (profile.config, profile.weights, profile.renders, profile.threads) == (
        "tiny-torch", tiny_torch_engine.weights, 2, 1)
    pack = bundled_voices["af_heart"].pack
    model_audio = [tiny_torch_engine.render(chunk.phonemes, pack).audio for sentence in sentences
                   for chunk in prepare(sentence, engine=tiny_torch_engine).chunks]
    assert math.isclose(profile.raw_audio_seconds, sum(map(len, model_audio)) / SAMPLE_RATE)
    assert profile.raw_audio_seconds >= profile.kept_audio_seconds > 0  # silent edges cut (random weights: none)
    assert math.isclose(profile.rtf, profile.compute_seconds / profile.kept_audio_seconds)
    assert math.isclose(sum(part.seconds for part in profile.parts), profile.compute_seconds)
    prosody = sum(part.seconds for part in profile.parts if part.side == "prosody")
    assert math.isclose(profile.prosody_rtf, prosody / profile.kept_audio_seconds)
    assert math.isclose(profile.conv_gflop, sum(part.conv_gflop for part in profile.parts))
    assert math.isclose(profile.conv_seconds, sum(part.conv_seconds for part in profile.parts))
    assert math.isclose(profile.conv_floor_rtf, profile.conv_seconds / profile.kept_audio_seconds)
    assert 0 < profile.conv_floor_rtf < profile.rtf
    assert math.isclose(profile.conv_gflops, profile.conv_gflop / profile.conv_seconds)
    assert math.isclose(profile.conv_gflop_per_audio_second, profile.conv_gflop / profile.kept_audio_seconds)
    assert profile.matmul_dtype == str(tiny_torch_engine.runner.generator.conv_post.weight.dtype).removeprefix("torch.")
    assert profile.matmul_gflops > 0
    assert RenderProfile(**json.loads(json.dumps(asdict(profile))) | {"parts": profile.parts}).parts == profile.parts

    text = format_profile(profile)
    assert text.startswith("machine: ") and "tiny-torch" in text and "convolution floor RTF" in text
    table = text.split("\n\n")[-1].splitlines()
    assert table[0].split()[:3] == ["part", "side", "s"]
    assert [line.split("  ")[0].strip() for line in table[1:]] == [part.name for part in profile.parts]


def test_only_a_torch_engine_can_be_profiled():
    with pytest.raises(SynthesisError, match="'onnx-int8' runs the onnx engine"):
        profile_renders(SimpleNamespace(name="onnx"), "onnx-int8")


@pytest.fixture
def stand_in_configs(monkeypatch):
    """Configurations and engines that build nothing: profiling one records the engine's precision and whether it
    runs traced graphs."""
    built = []
    configs = {name: (lambda: None) for name in ("onnx-int8", "torch-fp32", "torch-bf16")}
    monkeypatch.setattr(render_profile, "engine_configs", lambda: configs)
    monkeypatch.setattr(render_profile, "TorchEngine", lambda precision, traced: built.append((precision, traced)))
    monkeypatch.setattr(render_profile, "profile_renders", lambda engine, config: config)
    return built


def test_a_non_torch_configuration_is_refused_naming_the_torch_ones(stand_in_configs):
    with pytest.raises(SynthesisError, match="'onnx-int8' is not a torch configuration.*torch-fp32, torch-bf16"):
        profile_config("onnx-int8")
    assert stand_in_configs == []


def test_the_default_is_bf16_where_the_cpu_computes_it(stand_in_configs, monkeypatch):
    monkeypatch.setattr("explorer.engines.base.native_bf16", lambda: True)
    assert default_profile_config() == "torch-bf16" and profile_config() == "torch-bf16"
    monkeypatch.setattr("explorer.engines.base.native_bf16", lambda: False)
    assert default_profile_config() == "torch-fp32" and profile_config() == "torch-fp32"
    assert stand_in_configs == [("bf16", False), ("fp32", False)]  # kokoro's modules, which the profile hooks


def a_profile(config: str) -> RenderProfile:
    parts = [render_profile.PartTime("resblocks 0", "decoder", 0.75, 0.75, 0.5, 100.0),
             render_profile.PartTime(REST, "both", 0.25, 0.25, 0.0, 0.0)]
    return RenderProfile(config=config, weights="w", machine="test machine", threads=2, load_average=(0.5, 0.6),
                         renders=10, compute_seconds=1.0, raw_audio_seconds=5.0, kept_audio_seconds=4.0, rtf=0.25,
                         prosody_rtf=0.0, conv_seconds=0.5, conv_gflop=100.0, conv_gflop_per_audio_second=25.0,
                         conv_gflops=200.0, conv_floor_rtf=0.125, matmul_dtype="bfloat16", matmul_gflops=400.0,
                         parts=parts)


def test_the_command_profiles_each_configuration_asked_for_and_prints_tables_or_json(monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(render_profile, "profile_config", lambda name: asked.append(name) or a_profile(name or "d"))

    assert main(["bench", "profile"]) == 0
    assert capsys.readouterr().out.strip() == format_profile(a_profile("d"))
    assert main(["bench", "profile", "--configs", "torch-fp32, torch-bf16", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [profile["config"] for profile in printed] == ["torch-fp32", "torch-bf16"]
    assert printed[0] == json.loads(json.dumps(asdict(a_profile("torch-fp32"))))
    assert asked == [None, "torch-fp32", "torch-bf16"]


def test_the_command_refuses_a_non_torch_configuration_in_one_line(stand_in_configs, capsys):
    assert main(["bench", "profile", "--configs", "onnx-int8"]) == 1
    assert capsys.readouterr().err.startswith("error: The profile times the torch engine's modules")
