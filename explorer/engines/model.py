"""Building the real ``kokoro.KModel`` offline: random initialisation from the config, or a local ``.pth`` read
safely (``weights_only=True``) and loaded all or nothing."""

from __future__ import annotations

import io
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from explorer.errors import ModelFilesError
from explorer.paths import CONFIG_PATH, atomic_write_bytes, cache_dir, load_config, regular_file

if TYPE_CHECKING:
    from kokoro import KModel

__all__ = ["build_model", "describe_weights", "identity_norms", "load_weights", "read_weights"]

REPO_ID = "hexgrad/Kokoro-82M"
"""Passed to ``KModel`` only to silence its default-repo warning: given a config and a file it never downloads."""
EMPTY_STATE_NAME = "kokoro-empty-state-dict.pth"
"""Placeholder weights file in ``cache_dir()``: KModel downloads the official weights unless it is given a file."""
_QUIET_WARNINGS = (
    "dropout option adds dropout after all but last recurrent layer",
    r"`torch.nn.utils.weight_norm` is deprecated",
)
"""Warnings kokoro's own constructor triggers on every build; they say nothing to a person using the explorer."""


def _empty_state_path() -> Path:
    """Return a weights file holding ``{}``, writing it into ``cache_dir()`` if it is absent or was changed."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    data = buffer.getvalue()
    path = cache_dir() / EMPTY_STATE_NAME
    if not path.is_file() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
    return path


def read_weights(path: Path | str) -> dict[str, Mapping[str, torch.Tensor]]:
    """Read a Kokoro weights file (``{"bert": state_dict, "decoder": ..., ...}``) without running any code in it.

    Returns:
        The per-module state dicts, as stored.

    Raises:
        ModelFilesError: the file is missing, truncated, not a PyTorch file, asks to run code (refused by
            ``weights_only=True``), or is not a dict of state dicts.
    """
    path = regular_file(path, "The model weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words this differently by what is asked for ("Unsupported global: GLOBAL x", "unsupported GLOBAL x
        # whose module is blocked", an opcode it does not run): every one is a pickle asking for more than tensors.
        unsafe = re.search(r"GLOBAL (\S+)", str(exc))
        asked = f": {unsafe.group(1)}, which would run code" if unsafe else ""
        raise ModelFilesError(
            f"{path.name} was refused: it is not a plain tensor file (it asks to unpickle other objects{asked})."
        ) from None
    except Exception as exc:  # torch.load reports a damaged file as EOFError, KeyError, RuntimeError and more
        raise ModelFilesError(
            f"{path.name} is truncated or is not a PyTorch weights file ({type(exc).__name__})."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(value, Mapping) for value in state.values()):
        raise ModelFilesError(f"{path.name} is not a Kokoro weights file: expected a dict of per-module state dicts.")
    return state


def identity_norms(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Return the identity values (scale 1, shift 0) of the affine instance norms inside ``module``, by state key.

    Kokoro builds AdaIN's instance norm with ``affine=True`` only so old ONNX exporters keep its channel count (see
    ``kokoro.istftnet.AdaIN1d``); StyleTTS2, whose layout the weights follow, has no such parameters, so a weights
    file may lack them. Identity is what they are initialised to and what kokoro's loader leaves in place.
    """
    values = {}
    for path, child in module.named_modules():
        if isinstance(child, torch.nn.InstanceNorm1d) and child.affine:
            prefix = f"{path}." if path else ""
            values[f"{prefix}weight"] = torch.ones_like(child.weight)
            values[f"{prefix}bias"] = torch.zeros_like(child.bias)
    return values


def _apply_weights(model: KModel, state: Mapping[str, Mapping[str, torch.Tensor]], label: str) -> None:
    """Load per-module state dicts into ``model``, all or nothing.

    Kokoro's own loader falls back to ``strict=False`` and so takes a file for another model in silence, leaving
    random values behind. This one accepts the ``module.`` key prefix of the official file, tensors the model has no
    place for, and missing instance-norm scales and shifts (set to identity, see :func:`identity_norms`); any other
    missing module or tensor, or a wrong shape, is refused before anything is copied.
    """
    modules = {name: module for name, module in model.named_children() if any(True for _ in module.parameters())}
    unknown = sorted(map(str, set(state) - set(modules)))
    missing = sorted(set(modules) - set(state))
    if unknown or missing:
        problems = [f"unknown modules {unknown}" if unknown else "", f"missing modules {missing}" if missing else ""]
        raise ModelFilesError(f"{label} does not fit this model: {'; '.join(p for p in problems if p)}.")
    checked = {}
    for name, module_state in state.items():
        keys = [str(key) for key in module_state]
        if keys and all(key.startswith("module.") for key in keys):
            module_state = {str(key)[len("module.") :]: value for key, value in module_state.items()}
        module_state = {**identity_norms(modules[name]), **module_state}
        expected = modules[name].state_dict()
        absent = [key for key in expected if key not in module_state]
        if absent:
            raise ModelFilesError(
                f"{label} lacks {len(absent)} tensors of {name} (e.g. {', '.join(absent[:3])}), "
                "so they would stay random."
            )
        for key, reference in expected.items():
            value = module_state[key]
            if not isinstance(value, torch.Tensor) or value.shape != reference.shape:
                found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ModelFilesError(
                    f"{label} does not fit this model: {name}.{key} is {found}, "
                    f"the model needs {tuple(reference.shape)}."
                )
        checked[name] = {key: module_state[key] for key in expected}
    for name, module_state in checked.items():
        modules[name].load_state_dict(module_state, strict=True)


def load_weights(model: KModel, weights: Path | str) -> None:
    """Replace every parameter of ``model`` with those in a local Kokoro ``.pth``.

    Raises:
        ModelFilesError: the file cannot be read safely or does not fit the model; the model is then unchanged.
    """
    _apply_weights(model, read_weights(weights), Path(weights).name)


def build_model(config: Path | str | Mapping[str, Any] = CONFIG_PATH, weights: Path | str | None = None) -> KModel:
    """Build the real ``kokoro.KModel`` without touching the network, in eval mode.

    Args:
        config: the model config (path to ``config.json`` or the dict itself).
        weights: a local Kokoro ``.pth``; None for random initialisation, which is enough for structure.

    Returns:
        The model. Without weights KModel would download the official ones, so it is given a file holding ``{}``.

    Raises:
        ModelFilesError: the config or the weights file is missing, damaged, unsafe or does not fit.

    Example:
        >>> import explorer
        >>> model = explorer.build_model()
        >>> type(model).__name__, model.training, sum(p.numel() for p in model.parameters())
        ('KModel', False, 81810022)
    """
    from kokoro import KModel

    settings = load_config(config)
    state = read_weights(weights) if weights is not None else None
    try:
        with warnings.catch_warnings():
            for message in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            model = KModel(repo_id=REPO_ID, config=settings, model=str(_empty_state_path()))
    except KeyError as exc:
        raise ModelFilesError(f"The model config lacks the setting {exc.args[0]!r}.") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFilesError(f"The model config does not describe a Kokoro model ({exc}).") from None
    if state is not None:
        _apply_weights(model, state, Path(weights).name)
    return model.eval()


def describe_weights(weights: Path | str | None) -> str:
    """Return how reports name the weights: the file and where it is, or random initialisation."""
    if weights is None:
        return "random initialisation"
    path = Path(weights)
    return f"{path.name} (local: {path.resolve()})"
