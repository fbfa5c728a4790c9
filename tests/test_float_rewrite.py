"""Specification of explorer.engines.float_rewrite: an int8 ONNX export becomes float operations on its own
dequantised weights.

The rewrite is checked three ways: on a hand-built graph wired exactly as the official Kokoro int8 export is (integer
bias before the scale, one scale and zero point per output column), against numpy arithmetic; on a small
Conv + LSTM + MatMul model quantised by onnxruntime's own quantiser (the newer wiring); and on a tiny random-weight
Kokoro model, whose durations and audio must stay those of its int8 original. The cached file is checked for being
made once, atomically, and rebuilt when it no longer matches what was recorded.
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path

import numpy as np
import pytest

from explorer import cache
from explorer.engines import float_rewrite as rewriting
from explorer.engines.float_rewrite import FLOAT_SUFFIX, INTEGER_OPS, float_model, float_model_path, float_rewrite
from explorer.errors import ModelFilesError

QUANTISED_OPS = {*INTEGER_OPS, "DynamicQuantizeLinear"}


def ops(model) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


def relative_rms(difference: np.ndarray, signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(difference, dtype=np.float64)) / np.mean(np.square(signal, dtype=np.float64))))


def session(model_or_path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    source = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


# --- a graph wired like the official export ---------------------------------------------------------------------------

C_IN, C_OUT, KERNEL, STEPS, N_OUT = 6, 5, 3, 40, 4


def official_style_model():
    """x -> ConvInteger (uint8, int32 bias added before the scale) -> MatMulInteger (int8, per-column scales).

    Returns the model and the float weights it stands for: (conv weight, conv bias, matmul weight).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    conv_q = rng.integers(0, 256, (C_OUT, C_IN, KERNEL)).astype(np.uint8)
    conv_zero, conv_scale = np.uint8(131), np.float32(0.004)
    bias = rng.normal(0, 0.3, C_OUT).astype(np.float32)
    mat_q = rng.integers(-128, 128, (C_OUT, N_OUT)).astype(np.int8)
    mat_zero = rng.integers(-3, 4, N_OUT).astype(np.int8)
    mat_scale = rng.uniform(0.002, 0.01, N_OUT).astype(np.float32)
    constants = {
        "conv_q": conv_q, "conv_zero": np.array(conv_zero), "conv_scale": np.array(conv_scale), "bias": bias,
        "bias_shape": np.array([1, C_OUT, 1], np.int64), "perm_shape": np.array([0, 2, 1], np.int64),
        "mat_q": mat_q, "mat_zero": mat_zero, "mat_scale": mat_scale,
    }
    node = helper.make_node
    nodes = [
        node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="x_quantise"),
        node("ConvInteger", ["xq", "conv_q", "xz", "conv_zero"], ["conv_int"], name="/conv/Conv_quant",
             kernel_shape=[KERNEL], pads=[1, 1]),
        node("Mul", ["xs", "conv_scale"], ["conv_scales"], name="conv_scales"),
        node("Div", ["bias", "conv_scales"], ["bias_div"], name="bias_div"),
        node("Floor", ["bias_div"], ["bias_floor"], name="bias_floor"),
        node("Cast", ["bias_floor"], ["bias_int"], name="bias_cast", to=TensorProto.INT32),
        node("Reshape", ["bias_int", "bias_shape"], ["bias_r"], name="bias_reshape"),
        node("Add", ["conv_int", "bias_r"], ["conv_biased"], name="conv_bias_add"),
        node("Cast", ["conv_biased"], ["conv_float"], name="conv_cast", to=TensorProto.FLOAT),
        node("Mul", ["conv_float", "conv_scales"], ["conv_out"], name="conv_scale"),
        node("Transpose", ["conv_out"], ["h"], name="transpose", perm=[0, 2, 1]),
        node("DynamicQuantizeLinear", ["h"], ["hq", "hs", "hz"], name="h_quantise"),
        node("MatMulInteger", ["hq", "mat_q", "hz", "mat_zero"], ["mat_int"], name="/proj/MatMul_quant"),
        node("Cast", ["mat_int"], ["mat_float"], name="mat_cast", to=TensorProto.FLOAT),
        node("Mul", ["hs", "mat_scale"], ["mat_scales"], name="mat_scales"),
        node("Mul", ["mat_float", "mat_scales"], ["y"], name="mat_scale"),
    ]
    graph = helper.make_graph(
        nodes, "official-style",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C_IN, STEPS])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, STEPS, N_OUT])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    conv_w = (conv_q.astype(np.float32) - float(conv_zero)) * conv_scale
    mat_w = (mat_q.astype(np.float32) - mat_zero.astype(np.float32)) * mat_scale
    return model, (conv_w, bias, mat_w)


def numpy_reference(x: np.ndarray, conv_w: np.ndarray, bias: np.ndarray, mat_w: np.ndarray) -> np.ndarray:
    """The float arithmetic the rewrite must perform: conv (padding 1) plus bias, transpose, matmul."""
    padded = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1)))
    conv = sum(conv_w[:, :, k].astype(np.float64) @ padded[:, k:k + STEPS] for k in range(KERNEL)) + bias[:, None]
    return (conv.T @ mat_w.astype(np.float64))[None]


def test_official_wiring_becomes_float_conv_and_matmul_on_the_dequantised_weights():
    model, weights = official_style_model()
    x = np.random.default_rng(1).normal(0, 1, (1, C_IN, STEPS)).astype(np.float32)
    int8_out = session(model).run(None, {"x": x})[0]

    summary = float_rewrite(model)

    assert summary.replaced == {"ConvInteger": 1, "MatMulInteger": 1}
    assert not QUANTISED_OPS & set(ops(model)) and ops(model)["Conv"] == 1 and ops(model)["MatMul"] == 1
    assert {"bias_div", "bias_floor", "conv_scales", "mat_scales"}.isdisjoint(n.name for n in model.graph.node)
    assert {t.name for t in model.graph.initializer}.isdisjoint({"conv_q", "mat_q", "conv_zero", "mat_scale"})
    float_out = session(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(float_out, numpy_reference(x, *weights), rtol=1e-4, atol=1e-5)
    # the int8 original only adds its activation rounding (and a floored bias) on top of the same weights
    assert relative_rms(float_out - int8_out, float_out) < 0.1


def test_a_chain_wired_differently_is_refused_by_node_name_and_the_model_left_as_it_was():
    from onnx import TensorProto, helper

    model, _ = official_style_model()
    conv = next(node for node in model.graph.node if node.op_type == "ConvInteger")
    model.graph.input.append(helper.make_tensor_value_info("raw_q", TensorProto.UINT8, [1, C_IN, STEPS]))
    conv.input[0] = "raw_q"  # integer input that no DynamicQuantizeLinear made
    before = model.SerializeToString()
    with pytest.raises(ModelFilesError, match="cannot be rewritten to float.*'/conv/Conv_quant'.*DynamicQuantizeLinear"):
        float_rewrite(model)
    assert model.SerializeToString() == before


def test_a_model_without_integer_operations_is_refused():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "float",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(ModelFilesError, match="no integer convolutions"):
        float_rewrite(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


# --- onnxruntime's own quantiser: Conv, LSTM and MatMul ---------------------------------------------------------------


@pytest.fixture(scope="module")
def small_int8(tmp_path_factory) -> Path:
    """A Conv1d -> LSTM (bidirectional) -> Linear model exported from torch and quantised by quantize_dynamic."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(8, 16, 3, padding=1)
            self.lstm = torch.nn.LSTM(16, 8, batch_first=True, bidirectional=True)
            self.proj = torch.nn.Linear(16, 4)

        def forward(self, x):
            hidden, _ = self.lstm(torch.relu(self.conv(x)).transpose(1, 2))
            return self.proj(hidden)

    folder = tmp_path_factory.mktemp("small")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Small().eval(), (torch.randn(1, 8, 30),), str(folder / "small.onnx"), input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {2: "steps"}}, opset_version=17, dynamo=False)
    quantize_dynamic(folder / "small.onnx", folder / "small-int8.onnx", weight_type=QuantType.QUInt8)
    return folder / "small-int8.onnx"


def test_quantize_dynamic_output_with_an_lstm_is_rewritten_and_stays_close(small_int8):
    import onnx

    model = onnx.load(str(small_int8))
    assert {"ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM"} <= set(ops(model))
    x = np.random.default_rng(2).normal(0, 1, (1, 8, 30)).astype(np.float32)
    int8_out = session(model).run(None, {"x": x})[0]

    summary = float_rewrite(model)

    onnx.checker.check_model(model)
    assert summary.replaced == {"ConvInteger": 1, "DynamicQuantizeLSTM": 1, "MatMulInteger": 1}
    assert not QUANTISED_OPS & set(ops(model)) and ops(model)["LSTM"] == 1
    float_out = session(model).run(None, {"x": x})[0]
    assert float_out.shape == int8_out.shape
    assert relative_rms(float_out - int8_out, float_out) < 0.1


# --- a tiny Kokoro model ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_int8_path(tiny_onnx_path, tmp_path_factory) -> Path:
    """The tiny random-weight Kokoro export (conftest) quantised as the official export was: dynamically, to 8 bits."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = tmp_path_factory.mktemp("tiny-int8") / "tiny-kokoro-int8.onnx"
    quantize_dynamic(tiny_onnx_path, path, weight_type=QuantType.QUInt8)
    return path


def test_the_float_rewrite_of_a_kokoro_model_keeps_its_durations_length_and_loudness(tiny_int8_path, tiny_config):
    """Same tokens and style: durations equal or off by a frame, audio length and RMS within a few percent."""
    import onnx

    from explorer.engines import load_vocab

    model = onnx.load(str(tiny_int8_path))
    integer_ops = {op: count for op, count in ops(model).items() if op in INTEGER_OPS}
    summary = float_rewrite(model)
    onnx.checker.check_model(model)
    assert summary.replaced == integer_ops and not QUANTISED_OPS & set(ops(model))

    vocab = load_vocab(tiny_config)
    ids = np.array([[0, *(vocab[s] for s in "həlˈO wˈɜːld, ðɪs ɪz ɐ tˈɛst." if s in vocab), 0]], dtype=np.int64)
    style = np.random.default_rng(0).normal(0, 0.3, (1, 256)).astype(np.float32)
    feeds = {"input_ids": ids, "ref_s": style, "speed": np.array(1.0)}
    int8_audio, int8_durations = session(tiny_int8_path).run(None, feeds)
    float_audio, float_durations = session(model).run(None, feeds)
    assert np.abs(float_durations - int8_durations).sum() <= 2
    assert abs(len(float_audio) - len(int8_audio)) <= 2 * 600
    rms = [float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) for a in (int8_audio, float_audio)]
    assert 0.9 < rms[1] / rms[0] < 1.1


# --- the cached file ----------------------------------------------------------------------------------------------------


@pytest.fixture
def private_cache(monkeypatch, tmp_path) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(folder))
    return folder


def rewrites_must_not_run(monkeypatch) -> None:
    def refuse(source, report):
        raise AssertionError("the float model was rewritten again")

    monkeypatch.setattr(rewriting, "_rewritten_bytes", refuse)


def test_the_float_model_is_made_once_beside_the_int8_one_and_reused(private_cache, small_int8, monkeypatch):
    progress: list[tuple[float, str]] = []
    path = float_model(small_int8, progress=lambda fraction, message: progress.append((fraction, message)))
    assert path == float_model_path(small_int8) == private_cache / f"small-int8{FLOAT_SUFFIX}"
    assert sorted(p.name for p in private_cache.iterdir()) == [path.name, path.name + ".sha256"]
    marker = (private_cache / (path.name + ".sha256")).read_text().split()
    assert marker[0] == cache.file_sha256(path) and marker[3] == f"from:{cache.file_sha256(small_int8)}"
    assert marker[4] == f"rewrite:v{rewriting.REWRITE_VERSION}"
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 4
    session(path)  # onnxruntime opens it

    rewrites_must_not_run(monkeypatch)
    modified = path.stat().st_mtime_ns
    assert float_model(small_int8) == path and path.stat().st_mtime_ns == modified


def test_a_corrupt_cached_rewrite_is_rebuilt(private_cache, small_int8):
    path = float_model(small_int8)
    good = path.read_bytes()
    with path.open("r+b") as handle:
        handle.seek(len(good) // 2)
        handle.write(bytes([good[len(good) // 2] ^ 0xFF]))
    assert float_model(small_int8) == path and path.read_bytes() == good


def test_a_rewrite_without_its_marker_or_from_another_source_or_version_is_rebuilt(private_cache, small_int8,
                                                                                    monkeypatch):
    path = float_model(small_int8)
    rebuilt = []
    real = rewriting._rewritten_bytes
    monkeypatch.setattr(rewriting, "_rewritten_bytes", lambda source, report: rebuilt.append(1) or real(source, report))

    (private_cache / (path.name + ".sha256")).unlink()
    float_model(small_int8)
    float_model(small_int8, source_sha256="0" * 64)  # another int8 file of the same name
    monkeypatch.setattr(rewriting, "REWRITE_VERSION", rewriting.REWRITE_VERSION + 1)
    float_model(small_int8, source_sha256="0" * 64)
    assert len(rebuilt) == 3
    float_model(small_int8, source_sha256="0" * 64)
    assert len(rebuilt) == 3


def test_a_failed_rewrite_leaves_nothing_behind(private_cache, tmp_path):
    garbage = tmp_path / "garbage-int8.onnx"
    garbage.write_bytes(b"not a protobuf at all" * 20)
    with pytest.raises(ModelFilesError, match="garbage-int8.onnx is not a readable ONNX model"):
        float_model(garbage)
    with pytest.raises(ModelFilesError, match="was not found"):
        float_model(tmp_path / "absent-int8.onnx")
    assert list(private_cache.iterdir()) == []


def test_a_cache_that_cannot_be_written_is_a_clear_error(private_cache, small_int8, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "atomic_write_bytes", full_disk)
    with pytest.raises(ModelFilesError, match="Cannot write the float ONNX model into .*No space left"):
        float_model(small_int8)
    assert list(private_cache.iterdir()) == []
