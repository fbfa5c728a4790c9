"""Files the explorer builds once and keeps in its cache (the offline ONNX model, its float rewrite, its weights
imported into torch): how each is written with a marker of what it holds and was made from, and how a later
process trusts it again in one ``stat``. Also the one progress-callback type that builds report through.

It sits below every module that builds such a file (``engines``, ``conversion``, ``onnx_weights``) and imports none
of them.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from explorer.paths import atomic_write_bytes

__all__ = ["Progress", "cached_file_ok", "file_sha256", "progress_bar", "record_cached_file", "recorded_sha256"]

Progress = Callable[[float, str], None]
"""Progress callback: ``(fraction done in [0, 1], what is happening)``."""


@contextmanager
def progress_bar(what: str) -> Iterator[Progress]:
    """A progress bar on stderr (tqdm), as a ``Progress`` callback: what the long commands show."""
    from tqdm import tqdm

    with tqdm(total=1000, desc=what, unit="‰", file=sys.stderr, dynamic_ncols=True,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}") as bar:
        def update(fraction: float, note: str) -> None:
            bar.update(round(fraction * 1000) - bar.n)
            bar.set_postfix_str(note, refresh=False)

        yield update


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _marker_text(target: Path, sha256: str, provenance: str) -> str:
    stat = target.stat()
    return " ".join(filter(None, (sha256, str(stat.st_size), str(stat.st_mtime_ns), provenance))) + "\n"


def record_cached_file(target: Path, data: bytes | bytearray, sha256: str | None = None, provenance: str = "") -> None:
    """Write ``data`` to ``target`` atomically, then its marker: SHA-256, size, time and ``provenance``.

    Args:
        target: the cached file.
        data: its whole content.
        sha256: the content's SHA-256 when already checked (computed otherwise).
        provenance: what the file was made from, in words without line breaks; :func:`cached_file_ok` requires
            the same text, so a file made from something else is rebuilt.

    Raises:
        OSError: the folder cannot be written.
    """
    digest = sha256 or hashlib.sha256(data).hexdigest()
    atomic_write_bytes(target, data)
    atomic_write_bytes(_marker(target), _marker_text(target, digest, provenance).encode())


def cached_file_ok(target: Path, sha256: str | None = None, *, size: int | None = None, provenance: str = "") -> bool:
    """True when ``target`` holds what :func:`record_cached_file` wrote there.

    The marker decides in one ``stat`` when the file's size and time are those it recorded; otherwise the file is
    hashed again and compared with ``sha256`` (or, when None, the hash the marker recorded), and a match renews the
    marker. Without a marker, a file can only be trusted when ``sha256`` is given.

    Args:
        target: the cached file.
        sha256: the hash the file must have, when known in advance (the offline model's is).
        size: the size the file must have, when known in advance.
        provenance: what the file must have been made from (see :func:`record_cached_file`).
    """
    if not target.is_file() or (size is not None and target.stat().st_size != size):
        return False
    marker = _marker(target)
    text = marker.read_text(encoding="utf-8", errors="replace") if marker.is_file() else ""
    fields = text.split()
    recorded = fields[0] if fields and " ".join(fields[3:]) == provenance else None
    if recorded and sha256 in (None, recorded) and text == _marker_text(target, recorded, provenance):
        return True
    expected = sha256 or recorded
    if expected is None or file_sha256(target) != expected:
        return False
    atomic_write_bytes(marker, _marker_text(target, expected, provenance).encode())
    return True


def recorded_sha256(target: Path) -> str | None:
    """Return the SHA-256 :func:`record_cached_file` recorded for ``target`` when the file is still the one it wrote
    (same size and time: one ``stat``), else None; the hash then names the file's content without reading it."""
    marker = _marker(target)
    if not target.is_file() or not marker.is_file():
        return None
    text = marker.read_text(encoding="utf-8", errors="replace")
    fields = text.split()
    if not fields or text != _marker_text(target, fields[0], " ".join(fields[3:])):
        return None
    return fields[0]
