"""The torch engine's model as TorchScript graphs, traced once from kokoro's own modules and cached, so that a new
process renders without importing kokoro and transformers or building the model.

Why: a torch engine built from ``kokoro.KModel`` spends about 3 s importing kokoro (its pipeline and misaki) and
transformers (whose ALBERT is PL-BERT; importing it loads scipy, sympy and most of transformers), and 0.5 s building
82 M randomly initialised parameters before the weights overwrite them. The graphs hold only the computation and
the final weights (weight norm folded, bf16 where the engine runs bf16): loading them is one archive read after
``import torch``.

What is traced, with its weights, from :mod:`explorer.engines.kmodel_inference`:

- ``prosody(tokens, style, speed)`` -> durations, aligned text, F0, energy (:func:`predict_prosody`);
- ``decoder_body(aligned_text, f0, energy, timbre)`` -> the generator's input (:func:`decoder_body`);
- ``generate(features, timbre, f0)`` -> audio (:func:`generate`), and the noise kokoro draws and never uses
  (:func:`generate_with_unused_noise`: a trace would drop an unused draw, and renders seeded once would then differ).

Sizes stay symbolic in the traces (token and frame counts vary from call to call) and the one input-dependent
branch on the way, ALBERT's handling of an all-ones attention mask, is the only one the engine ever takes. The
tracer records each operation before autocast casts its inputs, so :class:`TracedKModel` enters the same autocast
as :class:`~explorer.engines.kmodel_inference.EagerKModel` around ``prosody`` and ``decoder_body`` and none around
``generate``, and runs the graphs operation for operation as traced: frozen, each method one graph holding its
weights (called submodule by submodule, the interpreter's pattern of allocations fragmented glibc's heap: a 32 s
paragraph peaked at 2.9 GB instead of 0.9; frozen, the archive also loads in half the time), and the JIT's
optimisation passes off (with them the audio was no longer bit-identical, and
the first calls of each new shape paid for profiling). The audio is then bit-identical to the modules'
(``tests/test_traced_model.py``).

The archive is cached as :func:`~explorer.engines.model_files.traced_graphs_path` with a marker recording what it
was traced from (:func:`~explorer.engines.model_files.traced_graphs_provenance`); anything else traces it again.
Only these cache files are loaded with ``torch.jit.load``: a TorchScript archive carries TorchScript code (not
Python), and is still never read from a file a person names.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from explorer.cache import record_cached_file
from explorer.engines.kmodel_inference import (
    EagerKModel,
    Prosody,
    decoder_body,
    generate_with_unused_noise,
    precision_autocast,
    predict_prosody,
)
from explorer.engines.model_files import traced_graphs_cached, traced_graphs_path, traced_graphs_provenance
from explorer.errors import ModelFilesError

if TYPE_CHECKING:
    from kokoro import KModel
    from kokoro.istftnet import Generator

__all__ = ["TracedKModel", "load_cached_graphs", "trace_graphs"]

_PROSODY_MODULES = ("bert", "bert_encoder", "predictor", "text_encoder")
_DECODER_BODY_MODULES = ("F0_conv", "N_conv", "encode", "asr_res", "decode")


class _KModelParts(torch.nn.Module):
    """The modules the three traced functions read, gathered under one root so the archive holds each weight once
    (it has the attributes :func:`predict_prosody` and :func:`decoder_body` look up)."""

    def __init__(self, model: KModel, generator: Generator):
        super().__init__()
        for name in _PROSODY_MODULES:
            setattr(self, name, getattr(model, name))
        for name in _DECODER_BODY_MODULES:
            setattr(self, name, getattr(model.decoder, name))
        self.generator = generator

    def prosody(self, tokens: torch.Tensor, style: torch.Tensor, speed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        found = predict_prosody(self, tokens, style, speed)
        return found.durations, found.aligned_text, found.f0, found.energy

    def decoder_body(
        self, aligned_text: torch.Tensor, f0: torch.Tensor, energy: torch.Tensor, timbre: torch.Tensor
    ) -> torch.Tensor:
        return decoder_body(self, aligned_text, f0, energy, timbre)

    def generate(
        self, features: torch.Tensor, timbre: torch.Tensor, f0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return generate_with_unused_noise(self.generator, features, timbre, f0)


class TracedKModel:
    """kokoro's computation run from traced graphs: the methods of
    :class:`~explorer.engines.kmodel_inference.EagerKModel`, with the same results.

    Attributes:
        graphs: the TorchScript module with ``prosody``, ``decoder_body`` and ``generate``.
        precision: "fp32" or "bf16", the precision it was traced in.
    """

    def __init__(self, graphs: torch.jit.ScriptModule, precision: str):
        self.graphs = graphs
        self.precision = precision

    def predict_prosody(self, tokens: torch.Tensor, style: torch.Tensor, speed: float) -> Prosody:
        """Return the prosody of ``tokens`` for the prosody half of ``style`` at ``speed``."""
        with torch.jit.optimized_execution(False), precision_autocast(self.precision):
            return Prosody(*self.graphs.prosody(tokens, style, torch.tensor(float(speed))))

    def decode(self, prosody: Prosody, style: torch.Tensor) -> torch.Tensor:
        """Return float32 audio ``[samples]`` of ``prosody`` in the timbre ``style[:, :128]``."""
        timbre = style[:, :128]
        with torch.jit.optimized_execution(False):
            with precision_autocast(self.precision):
                features = self.graphs.decoder_body(prosody.aligned_text, prosody.f0, prosody.energy, timbre)
            return self.graphs.generate(features, timbre, prosody.f0)[0]


def load_cached_graphs(
    weights: Path | str, config: Path | str | Mapping[str, Any], precision: str
) -> TracedKModel | None:
    """Return the graphs traced from ``weights`` with ``config`` in ``precision`` when they are cached and current
    (one ``stat`` and one archive read); None when they must be traced (:func:`trace_graphs`), or when ``weights``
    is not a file (building the model from it then says what is wrong)."""
    if not traced_graphs_cached(weights, config, precision):
        return None
    path = traced_graphs_path(weights, precision)
    try:
        return TracedKModel(torch.jit.load(str(path), map_location="cpu"), precision)
    except RuntimeError:  # damaged in a way its marker did not catch: traced again
        return None


def trace_graphs(
    eager: EagerKModel, example_tokens: torch.Tensor, weights: Path | str, config: Path | str | Mapping[str, Any]
) -> TracedKModel:
    """Trace ``eager``'s computation on one example, cache the graphs for ``weights`` and return them.

    Args:
        eager: the modules to trace, as the engine runs them (folded, in their precision).
        example_tokens: int64 ``[1, T]`` to trace with (any phonemes: the graphs take every length).
        weights: the weights file ``eager`` holds, which names and keys the cache entry.
        config: the config ``eager`` was built from.

    Raises:
        ModelFilesError: the cache folder cannot be written.
    """
    parts = _KModelParts(eager.model, eager.generator).eval()
    style = torch.zeros((1, 256))
    speed = torch.tensor(1.0)
    with torch.no_grad():
        with precision_autocast(eager.precision):
            prosody = parts.prosody(example_tokens, style, speed)
            features = parts.decoder_body(*prosody[1:], style[:, :128])
        examples = {
            "prosody": (example_tokens, style, speed),
            "decoder_body": (*prosody[1:], style[:, :128]),
            "generate": (features, style[:, :128], prosody[2]),
        }
        with precision_autocast(eager.precision), warnings.catch_warnings():
            # The tracer warns where a value becomes a constant: a norm's check that its input is longer than one
            # frame (always so here) and the constant sqrt(2) of a residual block; neither changes with the input.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            graphs = torch.jit.trace_module(parts, examples, check_trace=False)
    # Frozen: each method one graph holding its weights, with no call per submodule (the interpreter's allocations
    # then follow eager's, where called submodule by submodule they fragmented glibc's heap: a 9 s render took
    # 1.1 GB more) and no submodule code to parse at load (0.18 s instead of 0.39). Without numerical rewrites.
    graphs = torch.jit.freeze(graphs.eval(), preserved_attrs=list(examples), optimize_numerics=False)
    buffer = io.BytesIO()
    torch.jit.save(graphs, buffer)
    path = traced_graphs_path(weights, eager.precision)
    try:
        record_cached_file(path, buffer.getbuffer(), provenance=traced_graphs_provenance(weights, config,
                                                                                         eager.precision))
    except OSError as exc:
        raise ModelFilesError(f"Cannot write the traced model into {path.parent}: {exc}") from None
    return TracedKModel(graphs, eager.precision)
