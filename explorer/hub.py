"""Hugging Face Hub access that fails fast and clearly when the Hub cannot be reached.

huggingface_hub retries an unreachable host for about 25 s before giving up; a person waiting on a page deserves
an answer in about two. We probe the endpoint with one short TCP connection first, honour ``HF_HUB_OFFLINE``, and
always look in the normal Hugging Face cache before going online.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from explorer.errors import HubError

__all__ = ["cached_hub_file", "hub_download", "hub_reachable", "hub_snapshot", "remove_cached_hub_file"]

PROBE_TIMEOUT_S = 2.0


def _hub_offline() -> bool:
    """Return True when the user asked huggingface_hub to stay offline (``HF_HUB_OFFLINE=1``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_endpoint() -> str:
    """Return the Hub endpoint huggingface_hub would use (``HF_ENDPOINT`` or huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Return True when one TCP connection to the Hub endpoint succeeds within ``timeout`` seconds."""
    url = urlparse(_hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(repo_id: str, what: str) -> HubError:
    reason = "HF_HUB_OFFLINE is set" if _hub_offline() else f"{_hub_endpoint()} cannot be reached"
    return HubError(f"Cannot get {what} from Hugging Face repo '{repo_id}': {reason} and it is not in the local cache.")


def cached_hub_file(repo_id: str, filename: str) -> Path | None:
    """Return the path of ``filename`` from ``repo_id`` in the local Hugging Face cache, or None. Never goes online."""
    from huggingface_hub import constants

    if not (Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}").is_dir():
        return None  # nothing of the repo is cached: said without loading the download code (0.15 s per process)
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id=repo_id, filename=filename)
    return Path(found) if isinstance(found, str) else None


def remove_cached_hub_file(repo_id: str, filename: str) -> bool:
    """Remove ``filename`` of ``repo_id`` from the local Hugging Face cache: its snapshot entry and the blob behind it.

    Only paths inside that repo's cache folder are touched, so a cache entry pointing elsewhere is left alone (and
    nothing is removed). Never goes online.

    Returns:
        True when a cached copy was removed; False when there was none to remove.
    """
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    cached = cached_hub_file(repo_id, filename)
    if cached is None:
        return False
    folder = (Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")).resolve()
    entry = cached.parent.resolve() / cached.name  # the snapshot entry itself, not what it links to
    blob = cached.resolve()
    if not (entry.is_relative_to(folder) and blob.is_relative_to(folder)):
        return False
    entry.unlink(missing_ok=True)
    if blob != entry:
        blob.unlink(missing_ok=True)
    return True


def hub_download(repo_id: str, filename: str) -> Path:
    """Return a local path to ``filename`` of ``repo_id``, downloading it (with a progress bar) when needed.

    Raises:
        HubError: offline or unreachable and not cached, or the repo/file does not exist.
    """
    cached = cached_hub_file(repo_id, filename)
    if cached is not None:
        return cached
    if _hub_offline() or not hub_reachable():
        raise _unavailable(repo_id, f"'{filename}'")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, etag_timeout=PROBE_TIMEOUT_S * 2))
    except Exception as error:  # huggingface_hub raises many types; the person needs one sentence
        raise HubError(f"Could not download '{filename}' from Hugging Face repo '{repo_id}': {error}") from error


def hub_snapshot(repo_id: str, allow_patterns: list[str]) -> Path:
    """Return a local folder holding the files of ``repo_id`` matching ``allow_patterns``, downloading when needed.

    Offline, a snapshot already in the cache is used as it is.

    Raises:
        HubError: offline or unreachable with nothing cached, or the repo does not exist.
    """
    from huggingface_hub import snapshot_download

    online = not _hub_offline() and hub_reachable()
    try:
        return Path(
            snapshot_download(
                repo_id=repo_id,
                allow_patterns=allow_patterns,
                local_files_only=not online,
                etag_timeout=PROBE_TIMEOUT_S * 2,
            )
        )
    except Exception as error:
        if not online:
            raise _unavailable(repo_id, f"files matching {allow_patterns}") from error
        raise HubError(f"Could not download {allow_patterns} from Hugging Face repo '{repo_id}': {error}") from error
