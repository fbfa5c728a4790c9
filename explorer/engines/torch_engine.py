"""The torch engine: the official ``kokoro.KModel`` in evaluation mode, in fp32 or bf16.

It imports torch and kokoro only when it is built, so an app running the ONNX engine never loads them. One that
builds its own model sets torch to one thread per physical core and renders a short phrase once before it is
returned, so the first request does not pay for torch's start-up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.cache import Progress
from explorer.engines.base import Engine, physical_cores, runnable_precision
from explorer.engines.model_files import OFFLINE_TORCH_LABEL, cached_torch_weights, offline_torch_weights
from explorer.engines.onnx_weights import imported_weights
from explorer.errors import SynthesisError
from explorer.paths import CONFIG_PATH
from explorer.voices import STYLE_DIM

if TYPE_CHECKING:
    import torch
    from kokoro import KModel

    from explorer.engines.kmodel_inference import Prosody

__all__ = ["DEFAULT_TORCH_PRECISION", "TORCH_PRECISIONS", "TorchEngine"]

TORCH_PRECISIONS = ("fp32", "bf16")
"""``fp32`` as kokoro computes, or ``bf16`` (autocast before the vocoder, a bf16 vocoder: see
:mod:`explorer.engines.kmodel_inference`), only where the CPU computes bf16 natively; elsewhere fp32, and
``TorchEngine.precision_note`` says why."""
DEFAULT_TORCH_PRECISION = "bf16"
"""What ``torch`` runs in where the CPU supports it: about half of fp32's time, the same WER and similarity."""
WARM_UP_PHONEMES = "həlˈO"
"""What a torch engine renders once when it is built, so torch's one-time costs are paid before the first request."""
PROSODIES_KEPT = 8
"""How many prosodies a torch engine keeps (see ``TorchEngine``): the last few texts, prosody styles and speeds."""


class TorchEngine(Engine):
    """The official ``kokoro.KModel`` in evaluation mode, run without autograd, in fp32 or bf16.

    It calls kokoro's modules through :mod:`explorer.engines.kmodel_inference`, computing the prosody (from the text, the
    prosody half of the style and the speed) apart from the decoder and keeping the last ``PROSODIES_KEPT``: an edit
    to the decoder half of a style then renders the decoder alone.

    Args:
        weights: a local ``kokoro-v1_0.pth``, or a Kokoro ONNX export whose weights are imported into KModel
            (:func:`explorer.engines.onnx_weights.imported_weights`, once, cached); None takes ``kokoro-v1_0.pth`` from the
            Hugging Face cache when it is there, else imports the offline int8 model's weights (no network either
            way). When ``model`` is given, ``weights`` only names what it holds.
        config: the model config; the bundled ``assets/config.json`` by default (never downloaded).
        model: an already built KModel to use as it is (e.g. one shared with the architecture page): torch's thread
            count is then left alone and there is no warm-up render.
        precision: "fp32" or "bf16" (see ``TORCH_PRECISIONS``); None is ``DEFAULT_TORCH_PRECISION``. bf16 on a CPU
            without native bf16 runs fp32, and ``precision_note`` says why.
        progress: told how assembling the offline model and importing its weights go, when that happens.

    Attributes:
        precision: the precision the engine runs in ("fp32" or "bf16").
        precision_note: why it runs fp32 when bf16 was asked for; empty otherwise.
        generator: the vocoder that renders: the model's own, or in bf16 a bf16 one (converted in place in the
            engine's own model, a copy for a shared model).

    Raises:
        ModelFilesError: the config or weights are missing, damaged, not a Kokoro export or do not fit.
        SynthesisError: unknown precision.
    """

    name = "torch"

    def __init__(
        self,
        weights: Path | str | None = None,
        config: Path | str | Mapping[str, Any] = CONFIG_PATH,
        model: KModel | None = None,
        precision: str | None = None,
        progress: Progress | None = None,
    ):
        from explorer.engines.kmodel_inference import bf16_autocast_weights, bf16_generator, fold_weight_norm

        precision = precision or DEFAULT_TORCH_PRECISION
        if precision not in TORCH_PRECISIONS:
            raise SynthesisError(
                f"Unknown torch precision {str(precision)[:40]!r}: choose one of {', '.join(TORCH_PRECISIONS)}."
            )
        self.precision = runnable_precision(precision)
        self.precision_note = "" if self.precision == precision else (
            "bf16 was asked for, but this CPU has no native bf16 (avx512_bf16 or amx_bf16), where it would be slower "
            "than fp32: running fp32.")
        built = model is None
        if model is None:
            model, label = _torch_model(weights, config, progress)
        else:
            from explorer.engines.model import describe_weights

            label = describe_weights(weights)
        # The precision is part of the description, so a replay cache keyed on it never mixes fp32 and bf16 audio.
        super().__init__(model.vocab, f"{label}, computed in {self.precision}")
        self.model = model.eval()
        if built:
            fold_weight_norm(self.model)
        self.generator = self.model.decoder.generator
        if self.precision == "bf16":  # converted in place in the engine's own model, copied from a shared one
            self.generator = bf16_generator(self.generator, in_place=built)
            if built:
                bf16_autocast_weights(self.model)
        self._prosodies: OrderedDict[tuple[bytes, bytes, float], Prosody] = OrderedDict()
        if built:
            import torch

            torch.set_num_threads(physical_cores())
            self._run(self.token_ids(WARM_UP_PHONEMES), np.zeros(STYLE_DIM, dtype=np.float32), 1.0)

    def _run(self, tokens: np.ndarray, style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        from explorer.engines.kmodel_inference import decode

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            style_row = torch.from_numpy(style).unsqueeze(0)
            prosody = self._prosody(tokens, style_row, speed)
            audio = decode(self.model, prosody, style_row, self.generator)
        return audio.float().numpy(), prosody.durations.reshape(-1).numpy()

    def clear_cache(self) -> None:
        """Forget the prosodies kept from earlier calls."""
        with self._lock:
            self._prosodies.clear()

    def _prosody(self, tokens: np.ndarray, style_row: torch.Tensor, speed: float) -> Prosody:
        """Return the prosody of ``tokens`` for this prosody style and speed, from the last few when it is there:
        moving a decoder-half slider then renders the decoder alone."""
        import torch

        from explorer.engines.kmodel_inference import predict_prosody

        key = (tokens.tobytes(), style_row[0, STYLE_DIM // 2:].numpy().tobytes(), speed)
        if key in self._prosodies:
            self._prosodies.move_to_end(key)
            return self._prosodies[key]
        prosody = predict_prosody(self.model, torch.from_numpy(tokens), style_row, speed)
        self._prosodies[key] = prosody
        if len(self._prosodies) > PROSODIES_KEPT:
            self._prosodies.popitem(last=False)
        return prosody


def _torch_model(
    weights: Path | str | None, config: Path | str | Mapping[str, Any], progress: Progress | None
) -> tuple[KModel, str]:
    """Build the KModel a TorchEngine runs (see its ``weights`` argument) and say which weights it holds."""
    from explorer.engines.model import build_model, describe_weights, load_weights

    if weights is None:
        weights = cached_torch_weights()
    if weights is not None and Path(weights).suffix.lower() != ".onnx":
        return build_model(config, weights), describe_weights(weights)
    model = build_model(config)
    if weights is None:
        path, label = offline_torch_weights(progress, config, template=model), OFFLINE_TORCH_LABEL
    else:
        path = imported_weights(weights, None, config, progress, template=model)
        label = f"{Path(weights).name} (local ONNX: {Path(weights).resolve()}) weights imported into kokoro.KModel"
    load_weights(model, path)
    return model, f"{label} (cached: {path})"
