"""Where the project's files live, and the one way we write files so a crash never leaves half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from explorer.errors import ModelFilesError

__all__ = ["CONFIG_PATH", "VOICES_DIR", "atomic_write_bytes", "cache_dir", "load_config"]

PROJECT_DIR = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_DIR / "assets"
VOICES_DIR = ASSETS_DIR / "voices"
"""The bundled Kokoro v1.0 voicepacks and their ``SHA256SUMS`` manifest."""
CONFIG_PATH = ASSETS_DIR / "config.json"
"""Kokoro-82M's model config (vocabulary and layer sizes), bundled so the model can be built offline."""


def cache_dir() -> Path:
    """Return the folder for assembled models and cached results, creating it.

    ``EXPLORER_CACHE_DIR`` overrides the default ``~/.cache/kokoro-explorer``.

    Example:
        >>> from explorer.paths import cache_dir
        >>> cache_dir().is_dir()
        True
    """
    folder = Path(os.environ.get("EXPLORER_CACHE_DIR") or Path.home() / ".cache" / "kokoro-explorer")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place.

    Returns:
        The path written. Readers see either the old file or the whole new one, never a partial write.

    Example:
        >>> from explorer.paths import atomic_write_bytes
        >>> atomic_write_bytes("note.txt", b"hello").read_bytes()
        b'hello'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_config(config: Path | str | Mapping[str, Any] = CONFIG_PATH) -> dict[str, Any]:
    """Return the model config as a dict, from a mapping or a JSON file.

    Raises:
        ModelFilesError: the file is missing or is not a JSON object.

    Example:
        >>> from explorer.paths import load_config
        >>> load_config()["n_token"]
        178
    """
    if isinstance(config, Mapping):
        return dict(config)
    path = Path(config)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFilesError(f"The model config {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFilesError(f"The model config {path} is not readable JSON ({exc}).") from None
    if not isinstance(loaded, dict):
        raise ModelFilesError(f"The model config {path} is not a JSON object.")
    return loaded
