"""explorer.engines.kmodel_inference: kokoro's forward pass split at the style's two halves, with an optional bf16 generator.

The split must compute exactly what ``KModel.forward_with_tokens`` computes (the vocoder's noise seeded alike), so
that the torch engine is still kokoro; the bf16 generator must be a copy and render the same speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import one_torch_thread

torch = pytest.importorskip("torch")

from explorer.engines.kmodel_inference import (  # noqa: E402
    Prosody,
    bf16_autocast_weights,
    bf16_generator,
    decode,
    fold_weight_norm,
    predict_prosody,
)

TOKENS = torch.tensor([[0, 50, 83, 54, 156, 57, 135, 0]])


@pytest.fixture(scope="module")
def style():
    return torch.rand(1, 256, generator=torch.Generator().manual_seed(1))


def kokoro_forward(model, style, speed=1.0):
    torch.manual_seed(0)
    with torch.inference_mode(), one_torch_thread():
        return model.forward_with_tokens(TOKENS, style, speed)


def split_forward(model, style, speed=1.0, generator=None) -> tuple[torch.Tensor, Prosody]:
    torch.manual_seed(0)
    with torch.inference_mode(), one_torch_thread():
        prosody = predict_prosody(model, TOKENS, style, speed)
        return decode(model, prosody, style, generator), prosody


@pytest.mark.parametrize("speed", [1.0, 1.7])
def test_the_split_forward_is_kokoro_s_forward(tiny_kmodel, style, speed):
    audio, durations = kokoro_forward(tiny_kmodel, style, speed)
    split_audio, prosody = split_forward(tiny_kmodel, style, speed)
    assert torch.equal(prosody.durations, durations)
    assert torch.equal(split_audio, audio)
    assert len(split_audio) == prosody.frames * 600


def test_prosody_reads_only_the_prosody_half_of_the_style_and_decode_only_the_decoder_half(tiny_kmodel, style):
    timbre_only = torch.cat([style[:, :128], torch.zeros(1, 128)], dim=1)
    prosody_only = torch.cat([torch.zeros(1, 128), style[:, 128:]], dim=1)
    audio, prosody = split_forward(tiny_kmodel, style)
    _, same_prosody = split_forward(tiny_kmodel, prosody_only)
    for name in ("durations", "aligned_text", "f0", "energy"):
        assert torch.equal(getattr(same_prosody, name), getattr(prosody, name)), name
    torch.manual_seed(0)
    with torch.inference_mode(), one_torch_thread():
        assert torch.equal(decode(tiny_kmodel, prosody, timbre_only), audio)
        assert not torch.equal(decode(tiny_kmodel, prosody, prosody_only), audio)


def test_the_bf16_generator_is_a_bf16_copy_with_a_float32_source(tiny_kmodel):
    original = tiny_kmodel.decoder.generator
    weights_before = {name: tensor.clone() for name, tensor in original.state_dict().items()}
    copy = bf16_generator(original)
    assert copy is not original
    assert copy.conv_post.weight.dtype == torch.bfloat16 and copy.resblocks[0].alpha1[0].dtype == torch.bfloat16
    assert all(parameter.dtype == torch.float32 for parameter in copy.m_source.parameters())
    after = original.state_dict()
    assert all(after[name].dtype == torch.float32 and torch.equal(after[name], weights_before[name])
               for name in weights_before)  # the shared model is left as it was


def test_in_place_the_generator_itself_becomes_bf16(tiny_config):
    from explorer.engines.model import build_model

    own = build_model(tiny_config)  # an engine's own model: nothing else runs it
    generator = own.decoder.generator
    assert bf16_generator(generator, in_place=True) is generator
    assert generator.conv_post.weight.dtype == torch.bfloat16 and generator.m_source.l_linear.weight.dtype == torch.float32


def test_the_bf16_generator_renders_the_same_speech(tiny_kmodel, style):
    audio, prosody = split_forward(tiny_kmodel, style)
    bf16_audio, bf16_prosody = split_forward(tiny_kmodel, style, generator=bf16_generator(tiny_kmodel.decoder.generator))
    assert torch.equal(bf16_prosody.durations, prosody.durations)
    assert bf16_audio.dtype == torch.float32 and bf16_audio.shape == audio.shape
    assert torch.isfinite(bf16_audio).all()
    correlation = np.corrcoef(audio.numpy(), bf16_audio.numpy())[0, 1]
    assert correlation > 0.9, correlation


def test_weights_stored_in_bf16_give_bf16_autocast_s_audio_bit_for_bit(tiny_kmodel, tiny_config, style):
    """The casts autocast makes at every call, made once: the same rounded weights, so the same prosody and audio;
    the generator, embeddings and norms are left alone."""
    from explorer.engines.model import build_model

    converted = build_model(tiny_config)
    converted.load_state_dict(tiny_kmodel.state_dict())
    weight_normalised = converted.decoder.encode.conv1
    assert bf16_autocast_weights(converted) > 0
    assert converted.bert_encoder.weight.dtype == torch.bfloat16
    assert converted.predictor.lstm.weight_ih_l0.dtype == torch.bfloat16
    assert weight_normalised.weight_v.dtype == torch.float32  # its weight is computed from these at each call
    assert converted.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    assert all(parameter.dtype == torch.float32 for parameter in converted.decoder.generator.parameters())
    folded = build_model(tiny_config)
    folded.load_state_dict(tiny_kmodel.state_dict())
    fold_weight_norm(folded)
    folded_and_converted = build_model(tiny_config)
    folded_and_converted.load_state_dict(tiny_kmodel.state_dict())
    fold_weight_norm(folded_and_converted)
    bf16_autocast_weights(folded_and_converted)
    assert folded_and_converted.decoder.encode.conv1.weight.dtype == torch.bfloat16
    outputs = []
    for model in (tiny_kmodel, converted, folded, folded_and_converted):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs.append(split_forward(model, style))
    for (audio, prosody), (converted_audio, converted_prosody) in (outputs[:2], outputs[2:]):
        for name in ("durations", "aligned_text", "f0", "energy"):
            assert torch.equal(getattr(converted_prosody, name), getattr(prosody, name)), name
        assert torch.equal(converted_audio, audio)


def test_folding_weight_norm_keeps_the_model_s_output_and_leaves_no_norm_to_recompute(tiny_kmodel, tiny_config):
    """An engine's own model computes each decoder weight once instead of on every call: same durations, same audio
    (the vocoder's noise seeded alike), no weight-norm hook left."""
    from torch.nn.utils.weight_norm import WeightNorm

    from explorer.engines.model import build_model

    folded = build_model(tiny_config)  # a twin of the shared fixture (weight-normalised modules cannot be deep-copied)
    folded.load_state_dict(tiny_kmodel.state_dict())
    assert fold_weight_norm(folded) > 0
    assert not any(isinstance(hook, WeightNorm) for module in folded.modules()
                   for hook in module._forward_pre_hooks.values())
    tokens, style = torch.tensor([[0, 50, 83, 54, 156, 0]]), torch.rand(1, 256, generator=torch.Generator().manual_seed(1))
    outputs = []
    for model in (tiny_kmodel, folded):
        torch.manual_seed(0)
        with torch.inference_mode():
            outputs.append(model.forward_with_tokens(tokens, style, 1.0))
    (audio, durations), (folded_audio, folded_durations) = outputs
    assert torch.equal(durations, folded_durations)
    torch.testing.assert_close(folded_audio, audio, atol=1e-4, rtol=1e-3)
    assert fold_weight_norm(folded) == 0  # nothing left to fold
