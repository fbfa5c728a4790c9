"""Where the project's files live, how a path a person names is checked before any work is done with it, and the one
way we write files, so a crash never leaves half of one."""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from explorer.errors import ExplorerError, ModelFilesError, shown

__all__ = [
    "CONFIG_PATH",
    "FAVICON_PATH",
    "VOICES_DIR",
    "atomic_write_bytes",
    "atomic_write_files",
    "cache_dir",
    "check_output",
    "load_config",
    "regular_file",
]

PROJECT_DIR = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_DIR / "assets"
VOICES_DIR = ASSETS_DIR / "voices"
"""The bundled Kokoro v1.0 voicepacks and their ``SHA256SUMS`` manifest."""
CONFIG_PATH = ASSETS_DIR / "config.json"
"""Kokoro-82M's model config (vocabulary and layer sizes), bundled so the model can be built offline."""
FAVICON_PATH = ASSETS_DIR / "favicon.png"
"""The app's tab icon, served by the app itself (a Material icon's favicon would come from a font server that an
offline machine cannot reach)."""


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


def _kind(mode: int) -> str:
    """Name what a path that is neither a file nor a folder is, for a message."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def regular_file(path: Path | str, what: str) -> Path:
    """Return ``path`` when it names a regular file (links followed), before anything reads it.

    A folder, a device such as ``/dev/zero`` (reading it never ends) or a named pipe (reading it waits for a writer
    forever) is refused with what it is, rather than reported missing or read.

    Args:
        path: the file a person named.
        what: what the file should be, starting a sentence, e.g. "The model weights file".

    Raises:
        ModelFilesError: ``path`` does not exist, cannot be looked at, or is not a regular file.

    Example:
        >>> from explorer.errors import ModelFilesError
        >>> from explorer.paths import regular_file
        >>> try:
        ...     regular_file("/dev/zero", "The model weights file")
        ... except ModelFilesError as error:
        ...     print(error)
        The model weights file '/dev/zero' is a device, not a file.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ModelFilesError(f"{what} {shown(path, 200)} was not found.") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise ModelFilesError(f"{what} {shown(path, 200)} cannot be used ({error}).") from None
    if stat.S_ISDIR(mode):
        raise ModelFilesError(f"{what} {shown(path, 200)} is a folder, not a file.")
    if not stat.S_ISREG(mode):
        raise ModelFilesError(f"{what} {shown(path, 200)} is {_kind(mode)}, not a file.")
    return path


def check_output(path: Path | str, *, folder: bool = False) -> Path:
    """Return ``path`` once it is clear that it can be written, so a command finds out before its work, not after.

    The folder that will hold it must exist and take a new file (one is created there and removed: permissions,
    read-only and pseudo file systems such as ``/proc`` all answer that way), and whatever ``path`` names already
    must be what will replace it: a regular file for a file output, a folder for a folder output.

    Args:
        path: the file (or, with ``folder``, the folder) to write.
        folder: ``path`` is an output folder, created if absent.

    Raises:
        ExplorerError: the folder is missing or takes no new file, or ``path`` is something else.

    Example:
        >>> from explorer.paths import check_output
        >>> check_output("voice.pt").name
        'voice.pt'
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise ExplorerError(f"Cannot write {shown(path, 200)}: the folder {shown(parent, 200)} does not exist.")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError) as error:
        raise ExplorerError(f"Cannot write {shown(path, 200)} ({error}).") from None
    if mode is not None and folder and not stat.S_ISDIR(mode):
        raise ExplorerError(f"Cannot write into {shown(path, 200)}: it is a file, not a folder.")
    if mode is not None and not folder and not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else _kind(mode)
        raise ExplorerError(f"Cannot write {shown(path, 200)}: it is {kind}, not a file.")
    try:
        probe, fd = _create_temporary(path)
        os.close(fd)
        probe.unlink()
    except OSError as error:
        raise ExplorerError(
            f"Cannot write {shown(path, 200)}: the folder {shown(parent, 200)} takes no new file "
            f"({error.strerror or error})."
        ) from None
    return path


def _create_temporary(path: Path) -> tuple[Path, int]:
    """Create a new, hidden, uniquely named file beside ``path`` and return it with its open descriptor.

    Created with mode 0666 less the process umask, as ``open`` and ordinary tools create files (``tempfile`` would
    make it 0600, and the rename would keep that), so what the explorer writes is readable like what it reads.
    """
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def atomic_write_files(files: Mapping[Path | str, bytes]) -> list[Path]:
    """Write several files as one: each goes to a temporary file beside it, and only when all are written are they
    renamed into place.

    A pack and the recipe beside it either both appear or neither does: a failure while writing (a full disk, a
    missing folder) removes every temporary file and leaves the targets as they were. (The renames come last, in
    the same folders; one fails only when a target turned into a folder since :func:`check_output` looked.)

    Returns:
        The paths written, in order.

    Example:
        >>> from explorer.paths import atomic_write_files
        >>> [path.read_bytes() for path in atomic_write_files({"a.txt": b"one", "b.txt": b"two"})]
        [b'one', b'two']
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in files.items():
            temporary, fd = _create_temporary(Path(target))
            staged.append((temporary, Path(target)))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        for temporary, target in staged:
            os.replace(temporary, target)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    return [target for _, target in staged]


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place.

    The file gets the permissions a new file gets from ``open`` (0666 less the umask: usually 0644).

    Returns:
        The path written. Readers see either the old file or the whole new one, never a partial write.

    Example:
        >>> from explorer.paths import atomic_write_bytes
        >>> atomic_write_bytes("note.txt", b"hello").read_bytes()
        b'hello'
    """
    return atomic_write_files({path: data})[0]


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
