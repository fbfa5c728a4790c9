"""The ONNX engine: a Kokoro ONNX export run by onnxruntime on the CPU, as it is or rewritten to float."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.cache import Progress
from explorer.engines.base import Engine, load_vocab, physical_cores
from explorer.engines.float_rewrite import float_model
from explorer.engines.model_files import OFFLINE_LABEL, OFFLINE_MODEL_SHA256, offline_onnx_model
from explorer.errors import ModelFilesError, SynthesisError
from explorer.paths import CONFIG_PATH, regular_file

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["DEFAULT_ONNX_VARIANT", "FLOAT_LABEL", "ONNX_VARIANTS", "SESSION_CONFIG", "OnnxEngine"]

ONNX_VARIANTS = ("int8", "float")
"""How an ONNX engine runs an int8 export: ``int8`` as it is (integer convolutions on quantised activations),
``float`` rewritten by :mod:`explorer.engines.float_rewrite` to float operations on the same dequantised weights."""
DEFAULT_ONNX_VARIANT = "int8"
"""The variant ``onnx`` and ``auto`` use for the offline model: the faster one on a 2-core AVX2 CPU with quality held
(see ``python -m explorer bench``)."""
FLOAT_LABEL = "rewritten to float Conv/MatMul/LSTM on its dequantised int8 weights"
"""Added to an ONNX engine's ``weights`` when it runs the float rewrite, followed by where the rewrite is cached."""
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}
"""onnxruntime settings every ONNX engine starts from. Worker threads sleep instead of spinning between operations:
on a 2-core machine shared with other work (Streamlit, other users, the meters) spinning threads steal the cores the
model needs; ``python -m explorer bench`` compares both (config ``onnx-int8-spinning``)."""
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


@dataclass(frozen=True)
class _OnnxSignature:
    """How a Kokoro ONNX graph names and types its inputs and outputs (exports differ)."""

    tokens: str
    tokens_type: type
    style: str
    style_type: type
    speed: str
    speed_type: type
    speed_shape: tuple[int, ...]
    outputs: tuple[str, ...]

    @classmethod
    def inspect(cls, session: onnxruntime.InferenceSession, label: str) -> _OnnxSignature:
        """Find tokens (integer, 2-D), style (float, 2-D) and speed (float, 0-D or 1-D) among the graph inputs,
        and audio (the first float output) and durations (an integer output, when present) among its outputs.

        Raises:
            ModelFilesError: the graph does not look like a Kokoro export.
        """
        tokens = [i for i in session.get_inputs() if i.type in _INT_TYPES and len(i.shape) == 2]
        style = [i for i in session.get_inputs() if i.type in _FLOAT_TYPES and len(i.shape) == 2]
        speed = [i for i in session.get_inputs() if i.type in _FLOAT_TYPES and len(i.shape) <= 1]
        audio = [o.name for o in session.get_outputs() if o.type in _FLOAT_TYPES]
        durations = [o.name for o in session.get_outputs() if o.type in _INT_TYPES]
        if not (len(tokens) == len(style) == len(speed) == 1 and len(session.get_inputs()) == 3 and audio):
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in session.get_inputs())
            raise ModelFilesError(
                f"{label} is not a Kokoro ONNX export: it should take tokens (int64 [1, T]), a style (float [1, 256]) "
                f"and a speed, and output audio; its inputs are {found}."
            )
        return cls(
            tokens=tokens[0].name,
            tokens_type=_INT_TYPES[tokens[0].type],
            style=style[0].name,
            style_type=_FLOAT_TYPES[style[0].type],
            speed=speed[0].name,
            speed_type=_FLOAT_TYPES[speed[0].type],
            speed_shape=(1,) if len(speed[0].shape) == 1 else (),
            outputs=(audio[0], *durations[:1]),
        )


class OnnxEngine(Engine):
    """A Kokoro ONNX export run by onnxruntime on the CPU, one thread per physical core.

    Works with the official int8 export (inputs ``tokens``/``style``/``speed``, output ``audio`` only) and with
    ``torch.onnx.export(kokoro.model.KModelForONNX(model))`` exports (``input_ids``/``ref_s``/``speed`` as float64,
    outputs audio and durations): the graph's inputs are matched by type and rank, not by name.

    Args:
        model_path: a local ``.onnx`` file; None uses the offline int8 model (assembled on first use).
        config: the config whose vocab maps phonemes to the graph's token ids.
        progress: told how assembling the offline model (or rewriting to float) goes.
        variant: "int8" runs the file as it is; "float" runs its float rewrite (an int8 export only, rewritten
            once into the cache by :func:`explorer.engines.float_rewrite.float_model`); None is ``DEFAULT_ONNX_VARIANT`` for
            the offline model and the file as it is for a local one.
        session_config: onnxruntime session config entries that override ``SESSION_CONFIG`` (benchmarks compare
            settings this way).

    Raises:
        ModelFilesError: the file is missing, is not ONNX, or is not a Kokoro export; an offline part is missing
            or corrupt; the float rewrite cannot be made.
        SynthesisError: unknown variant.
    """

    name = "onnx"

    def __init__(
        self,
        model_path: Path | str | None = None,
        config: Path | str | Mapping[str, Any] = CONFIG_PATH,
        progress: Progress | None = None,
        variant: str | None = None,
        session_config: Mapping[str, str] | None = None,
    ):
        if variant is not None and variant not in ONNX_VARIANTS:
            raise SynthesisError(
                f"Unknown ONNX variant {str(variant)[:40]!r}: choose one of {', '.join(ONNX_VARIANTS)}."
            )
        if model_path is None:
            path, label, known_sha256 = offline_onnx_model(progress), OFFLINE_LABEL, OFFLINE_MODEL_SHA256
            variant = variant or DEFAULT_ONNX_VARIANT
        else:
            path = Path(model_path)
            label, known_sha256 = f"{path.name} (local ONNX: {path.resolve()})", None
        if variant == "float":
            path = float_model(path, known_sha256, progress)
            label = f"{label} {FLOAT_LABEL} (cached: {path})"
        super().__init__(load_vocab(config), label)
        self.variant = variant or "as given"
        self.session = _open_session(path, session_config)
        self._signature = _OnnxSignature.inspect(self.session, path.name)

    @property
    def gives_durations(self) -> bool:
        """True when the graph outputs predicted durations (``Rendered.durations`` is then not None)."""
        return len(self._signature.outputs) > 1

    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        signature = self._signature
        feeds = {
            signature.tokens: tokens.astype(signature.tokens_type),
            signature.style: style[None, :].astype(signature.style_type),
            signature.speed: np.full(signature.speed_shape, speed, dtype=signature.speed_type),
        }
        try:
            outputs = self.session.run(list(signature.outputs), feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise SynthesisError(f"The ONNX model failed on this input: {str(exc).splitlines()[0][:300]}") from None
        return outputs[0], outputs[1] if len(outputs) > 1 else None


def _open_session(path: Path, session_config: Mapping[str, str] | None = None) -> onnxruntime.InferenceSession:
    """Open ``path`` in onnxruntime: full graph optimisation, one intra-op thread per physical core, and
    ``SESSION_CONFIG`` updated with ``session_config``."""
    import onnxruntime

    regular_file(path, "The ONNX model file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = physical_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    for key, value in {**SESSION_CONFIG, **(session_config or {})}.items():
        options.add_session_config_entry(key, value)
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise ModelFilesError(f"{path.name} is not a readable ONNX model ({str(exc).splitlines()[0][:200]}).") from None
