"""kokoro.KModel's forward pass for CPU inference: kokoro's own computation, split where the style splits, cheaper.

``KModel.forward_with_tokens`` runs text to prosody (PL-BERT, durations, pitch F0 and energy N, conditioned on
``style[128:]``) and prosody to audio (the decoder, conditioned on ``style[:128]``) in one call. The torch engine
runs the same modules in the same order through two functions instead:

- :func:`predict_prosody`: everything before the decoder.
- :func:`decode`: kokoro's decoder on a prosody with a timbre. Its iSTFTNet generator, most of the model's time,
  may run on bf16 weights (:func:`bf16_generator`), its activations staying bf16 from one convolution to the next.

Split this way, an edit to the decoder half of a style alone reuses the prosody (``TorchEngine`` keeps the last
few). With the model's own generator the audio is exactly ``forward_with_tokens``'s (``tests/test_kmodel_inference.py``
holds it to that), so a kokoro upgrade that changes its forward shows there.

Where the time goes in bf16 on a 2-core AVX512-BF16 CPU (``python -m explorer bench profile``): convolutions take
about 70 % of it at some 360 GFLOP/s, 86 % of a dense bf16 matrix product's rate on the same cores. Measured and
left out:

- capping the leading pad's 13-15 frames of silence (cut later by :func:`explorer.synth.speech_span`): saves
  little and changes the first phoneme's onset (0.06-0.2 s less sound);
- cutting the trailing silence before decoding (the last phoneme's frames past the speech's end, 16 % of the
  model's audio with the leading silence): the decoder's instance norms see the whole utterance, so the kept
  audio changes too (correlation 0.93-0.95) and the last word loses 10-100 ms of its release;
- ``torch.compile`` of the generator's residual blocks: the decoder 8 % faster, for a 33 s compile in every new
  process (and a C++ compiler wherever the app runs);
- AdaIN and Snake rewritten into fewer tensor operations (AdaIN and the Snake's scale folded into
  ``instance_norm``'s affine, its ``1/alpha`` into the next convolution's weights): faster alone, no faster over
  a whole render; in-place variants were slower;
- channels-last convolutions (``conv2d`` on ``[1, C, 1, L]``): faster alone, no faster over a residual block,
  whose element-wise operations then slow down;
- int8 convolutions through oneDNN (VNNI, activations quantised at each call): from 3 % slower to 23 % faster
  than bf16 per convolution, quantising included, with about 1 % relative error from the int8 activations;
- keeping freed memory in the heap (glibc ``mallopt``): 50 000 page faults fewer per corpus, 0.1 s less system
  time, no change in wall time.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.nn.utils import remove_weight_norm
from torch.nn.utils.weight_norm import WeightNorm

if TYPE_CHECKING:
    from kokoro import KModel
    from kokoro.istftnet import Decoder, Generator

__all__ = [
    "EagerKModel",
    "Prosody",
    "bf16_autocast_weights",
    "bf16_generator",
    "decode",
    "decoder_body",
    "fold_weight_norm",
    "generate",
    "generate_with_unused_noise",
    "precision_autocast",
    "predict_prosody",
]

AUTOCAST_BF16_MODULES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.LSTM)
"""Modules whose operation CPU bf16 autocast runs in bfloat16, casting their float32 weights first."""


@dataclass(frozen=True)
class Prosody:
    """What the decoder takes from the text and the prosody half of a style, per 25 ms frame.

    Attributes:
        durations: frames per token, the two pads included: int64 ``[tokens]``.
        aligned_text: the text encoder's features repeated over each token's frames, ``[1, 512, frames]``.
        f0: the predicted pitch curve in Hz, ``[1, 2 * frames]``.
        energy: the predicted energy curve (kokoro's ``N``), ``[1, 2 * frames]``.
    """

    durations: torch.Tensor = field(repr=False)
    aligned_text: torch.Tensor = field(repr=False)
    f0: torch.Tensor = field(repr=False)
    energy: torch.Tensor = field(repr=False)

    @property
    def frames(self) -> int:
        """Number of duration frames (600 audio samples each)."""
        return int(self.durations.sum())


class EagerKModel:
    """kokoro's modules run in Python, as the torch engine runs them: :func:`predict_prosody`, then :func:`decode`,
    under bf16 autocast in bf16 (the generator computing in its own weights' dtype).

    :class:`explorer.engines.traced_model.TracedKModel` runs the same computation from traced graphs, with the same
    two methods; the engine takes either.

    Attributes:
        model: the KModel whose modules run.
        generator: the vocoder that renders (the model's own, or a :func:`bf16_generator`).
        precision: "fp32" or "bf16".
    """

    def __init__(self, model: KModel, generator: Generator, precision: str):
        self.model = model
        self.generator = generator
        self.precision = precision

    @property
    def device(self) -> torch.device:
        """Where the model's weights are, and so where it computes (its inputs must be there too)."""
        return next(self.model.parameters()).device

    def predict_prosody(self, tokens: torch.Tensor, style: torch.Tensor, speed: float) -> Prosody:
        """Return :func:`predict_prosody` of the model in the engine's precision."""
        with precision_autocast(self.precision, self.device.type):
            return predict_prosody(self.model, tokens, style, speed)

    def decode(self, prosody: Prosody, style: torch.Tensor) -> torch.Tensor:
        """Return :func:`decode`'s float32 audio, rendered by ``generator`` in the engine's precision."""
        with precision_autocast(self.precision, self.device.type):
            return decode(self.model, prosody, style, self.generator)


def precision_autocast(precision: str, device_type: str = "cpu") -> torch.autocast:
    """Return the autocast context a torch engine in ``precision`` runs its text side and decoder body under on
    ``device_type`` ("cpu" or "cuda"): bf16 autocast for "bf16", none for "fp32"."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def predict_prosody(model: KModel, tokens: torch.Tensor, style: torch.Tensor, speed: float) -> Prosody:
    """Predict durations, pitch and energy for ``tokens`` as ``KModel.forward_with_tokens`` does.

    Args:
        model: a kokoro ``KModel`` in evaluation mode.
        tokens: int64 ``[1, T]``, vocab ids with a 0 pad at each end, on the model's device.
        style: ``[1, 256]`` on the model's device; only ``style[:, 128:]`` is read.
        speed: pace multiplier (durations are divided by it before rounding).

    Returns:
        The decoder's inputs besides the timbre, on the model's device.
    """
    device = tokens.device
    lengths = torch.full((1,), tokens.shape[-1], dtype=torch.long, device=device)
    text_mask = torch.zeros(tokens.shape, dtype=torch.bool, device=device)  # one unpadded sequence: nothing masked
    bert = model.bert(tokens, attention_mask=(~text_mask).int())
    encoded = model.bert_encoder(bert).transpose(-1, -2)
    prosody_style = style[:, 128:]
    text_features = model.predictor.text_encoder(encoded, prosody_style, lengths, text_mask)
    lstm_out, _ = model.predictor.lstm(text_features)
    duration = torch.sigmoid(model.predictor.duration_proj(lstm_out)).sum(axis=-1) / speed
    durations = torch.round(duration).clamp(min=1).long().squeeze()
    token_of_frame = torch.repeat_interleave(torch.arange(tokens.shape[1], device=device), durations)
    alignment = torch.zeros((tokens.shape[1], token_of_frame.shape[0]), device=device)
    alignment[token_of_frame, torch.arange(token_of_frame.shape[0], device=device)] = 1
    alignment = alignment.unsqueeze(0)
    f0, energy = model.predictor.F0Ntrain(text_features.transpose(-1, -2) @ alignment, prosody_style)
    aligned_text = model.text_encoder(tokens, lengths, text_mask) @ alignment
    return Prosody(durations, aligned_text, f0, energy)


def decode(model: KModel, prosody: Prosody, style: torch.Tensor, generator: Generator | None = None) -> torch.Tensor:
    """Render ``prosody`` with the timbre ``style[:, :128]`` through kokoro's decoder; return float32 audio
    ``[samples]``.

    Args:
        model: the ``KModel`` whose decoder runs.
        prosody: from :func:`predict_prosody` on the same model.
        style: ``[1, 256]``; only ``style[:, :128]`` is read.
        generator: the decoder's generator to use, e.g. a :func:`bf16_generator` copy; None uses the model's own.
    """
    timbre = style[:, :128]
    features = decoder_body(model.decoder, prosody.aligned_text, prosody.f0, prosody.energy, timbre)
    return generate(generator if generator is not None else model.decoder.generator, features, timbre, prosody.f0)


def decoder_body(
    decoder: Decoder, aligned_text: torch.Tensor, f0: torch.Tensor, energy: torch.Tensor, timbre: torch.Tensor
) -> torch.Tensor:
    """Run kokoro's decoder up to its generator: the features the generator turns into audio, ``[1, C, frames']``.

    Args:
        decoder: kokoro's ``Decoder`` (or any module holding its ``F0_conv``, ``N_conv``, ``encode``, ``asr_res`` and
            ``decode``).
        aligned_text, f0, energy: a :class:`Prosody`'s tensors.
        timbre: ``[1, 128]``, the decoder half of the style.
    """
    f0 = decoder.F0_conv(f0.unsqueeze(1))
    energy = decoder.N_conv(energy.unsqueeze(1))
    x = decoder.encode(torch.cat([aligned_text, f0, energy], axis=1), timbre)
    text_residual = decoder.asr_res(aligned_text)
    with_residual = True
    for block in decoder.decode:
        if with_residual:
            x = torch.cat([x, text_residual, f0, energy], axis=1)
        x = block(x, timbre)
        if block.upsample_type != "none":
            with_residual = False
    return x


def generate(generator: Generator, x: torch.Tensor, timbre: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
    """kokoro's ``Generator.forward``, computing in the dtype of the generator's weights; return float32 audio
    ``[samples]`` from :func:`decoder_body`'s features, the timbre and the prosody's F0.

    The harmonic source (phases summed over thousands of samples) and the inverse STFT stay float32 whatever that
    dtype; autocast is off inside, so a bf16 generator's activations are never cast back and forth.
    """
    return generate_with_unused_noise(generator, x, timbre, f0)[0]


def generate_with_unused_noise(
    generator: Generator, x: torch.Tensor, timbre: torch.Tensor, f0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`generate`'s audio, and the noise kokoro's harmonic source draws (``SourceModuleHnNSF``) that its
    generator never uses.

    Returned so that a graph traced from this function keeps the draw: a trace drops computation whose result is
    unused, and without it each render would take fewer numbers from torch's generator than kokoro does, so every
    later render of a seeded sequence would differ from kokoro's.
    """
    dtype = generator.conv_post.weight.dtype
    with torch.autocast(x.device.type, enabled=False):
        with torch.no_grad():
            upsampled_f0 = generator.f0_upsamp(f0[:, None].float()).transpose(1, 2)
            harmonic, unused_noise, _ = generator.m_source(upsampled_f0)
            magnitude, phase = generator.stft.transform(harmonic.transpose(1, 2).squeeze(1))
            source = torch.cat([magnitude, phase], dim=1).to(dtype)
        x, timbre = x.to(dtype), timbre.to(dtype)
        kernels = generator.num_kernels
        for stage in range(generator.num_upsamples):
            x = F.leaky_relu(x, negative_slope=0.1)
            x_source = generator.noise_res[stage](generator.noise_convs[stage](source), timbre)
            x = generator.ups[stage](x)
            if stage == generator.num_upsamples - 1:
                x = generator.reflection_pad(x)
            x = x + x_source
            summed = generator.resblocks[stage * kernels](x, timbre)
            for block in generator.resblocks[stage * kernels + 1:(stage + 1) * kernels]:
                summed += block(x, timbre)
            x = summed / kernels
        x = generator.conv_post(F.leaky_relu(x)).float()
    bins = generator.post_n_fft // 2 + 1
    return generator.stft.inverse(torch.exp(x[:, :bins, :]), torch.sin(x[:, bins:, :])).squeeze(), unused_noise


def bf16_generator(generator: Generator, in_place: bool = False) -> Generator:
    """Return ``generator`` with bf16 weights for :func:`decode`: a copy, leaving ``generator`` as it is, or with
    ``in_place`` the same module converted (for a model nothing else runs, which then holds no float32 duplicate).

    Its weight norm is folded and its harmonic source stays float32. Measured on a 2-core AVX512-BF16 CPU: the whole
    model's time per sentence drops by about a fifth against bf16 autocast over float32 weights, with the same audio
    to a correlation of 0.995.
    """
    if not in_place:
        # A weight-normalised layer holds its weight as a computed tensor, which cannot be deep-copied: the copy
        # gets none and computes it from the copied direction and norm as it folds them.
        computed = {id(module.weight): None for module in _weight_normalised(generator)}
        generator = copy.deepcopy(generator, computed)
    fold_weight_norm(generator)
    generator.to(torch.bfloat16).m_source.float()
    return generator


def bf16_autocast_weights(model: KModel) -> int:
    """Store in bf16 the weights that bf16 autocast would cast on every call, outside the generator; return how many
    modules were converted.

    Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` the text side, the prosody predictor and the decoder's
    first blocks (``AUTOCAST_BF16_MODULES``) compute in bf16 from weights cast anew at each call. Stored in bf16, the
    same rounded values are used, so the output is bit-identical (``tests/test_kmodel_inference.py``), without the
    casts: about 4 % less time per sentence, and the full model's 62 M such parameters take half the memory (RSS
    after load 870 MB instead of about 950 MB). Embeddings and norms stay float32, as does the generator
    (:func:`bf16_generator` converts it), and so do weight-normalised layers, which would compute their weight from
    bf16 parts (:func:`fold_weight_norm` first). Only for a model that always runs under bf16 autocast, such as a bf16
    engine's own.
    """
    left_alone = set(model.decoder.generator.modules()) | set(_weight_normalised(model))
    modules = [module for module in model.modules()
               if isinstance(module, AUTOCAST_BF16_MODULES) and module not in left_alone]
    for module in modules:
        module.to(torch.bfloat16)
    return len(modules)


def fold_weight_norm(model: torch.nn.Module) -> int:
    """Fold every weight-normalised layer of ``model`` into a plain weight, for inference; return how many.

    kokoro's decoder keeps each convolution as a direction and a norm and computes the weight from them before every
    call, holding both and the result: folding once gives the same weights (up to float rounding) and frees about
    340 MB during a long render (peak 1.74 GB before, 1.40 GB after, measured on the full model in bf16). Training
    or reading ``weight_g``/``weight_v`` afterwards is no longer possible, so only an engine's own model is folded.
    """
    modules = list(_weight_normalised(model))
    for module in modules:
        remove_weight_norm(module)
    return len(modules)


def _weight_normalised(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Yield the modules of ``model`` whose ``weight`` is weight-normalised (kokoro normalises only ``weight``)."""
    return (module for module in model.modules()
            if any(isinstance(hook, WeightNorm) for hook in module._forward_pre_hooks.values()))


