"""Specification of explorer.hub's cache helpers, and a fake Hub for the tests that fetch files through it.

:class:`FakeHub` stands in for ``huggingface_hub.hf_hub_download``: it lays a file out in a private Hugging Face
cache the way huggingface_hub does (``refs/main``, ``blobs/<sha256>``, ``snapshots/<commit>/<name>`` linking to the
blob), so ``try_to_load_from_cache`` finds it afterwards. Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from explorer.hub import cached_hub_file, remove_cached_hub_file

COMMIT = "0" * 39 + "1"
"""The commit the fake Hub serves."""


class FakeHub:
    """A reachable Hub that serves ``files`` ({(repo, filename): bytes}) into the cache at ``cache``.

    ``calls`` lists every ``(repo_id, filename)`` asked for.
    """

    def __init__(self, cache: Path, files: dict[tuple[str, str], bytes]):
        self.cache = cache
        self.files = files
        self.calls: list[tuple[str, str]] = []

    def hf_hub_download(self, repo_id: str, filename: str, **kwargs) -> str:
        self.calls.append((repo_id, filename))
        return str(put_in_cache(self.cache, repo_id, filename, self.files[(repo_id, filename)]))


def put_in_cache(cache: Path, repo_id: str, filename: str, data: bytes) -> Path:
    """Lay ``data`` out in the Hugging Face cache ``cache`` as huggingface_hub does; return the snapshot path."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    entry = repo / "snapshots" / COMMIT / filename
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.unlink(missing_ok=True)
    entry.symlink_to(Path("..", "..", "blobs", blob.name))
    return entry


def private_hub_cache(monkeypatch: pytest.MonkeyPatch, cache: Path, *, reachable: bool) -> None:
    """Point huggingface_hub at an empty cache in ``cache`` and make the Hub (un)reachable without a probe."""
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: reachable)


def fake_hub(monkeypatch: pytest.MonkeyPatch, cache: Path, files: dict[tuple[str, str], bytes]) -> FakeHub:
    """A reachable fake Hub serving ``files`` into a private cache at ``cache``, patched where hub.py looks it up."""
    private_hub_cache(monkeypatch, cache, reachable=True)
    hub = FakeHub(cache, files)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", hub.hf_hub_download)
    return hub


def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any download fail the test."""

    def download(*args, **kwargs):
        raise AssertionError(f"tried to download {args} {kwargs}")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", download)


def kokoro_weights_bytes(modules: tuple[str, ...] = ("bert", "bert_encoder", "decoder", "predictor", "text_encoder"),
                         payload: object = None) -> bytes:
    """A small torch file laid out like Kokoro's weights: one state dict per module (``payload`` added to bert's)."""
    import torch

    state = {name: {"weight": torch.zeros(2)} for name in modules}
    if payload is not None:
        state["bert"]["payload"] = payload
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file() or path.is_symlink())


def test_a_cached_file_is_removed_with_its_blob(tmp_path, monkeypatch):
    private_hub_cache(monkeypatch, tmp_path, reachable=False)
    put_in_cache(tmp_path, "owner/repo", "model.pth", b"weights")
    put_in_cache(tmp_path, "owner/repo", "other.pth", b"other")
    assert cached_hub_file("owner/repo", "model.pth") is not None
    assert remove_cached_hub_file("owner/repo", "model.pth") is True
    assert cached_hub_file("owner/repo", "model.pth") is None
    assert cached_hub_file("owner/repo", "other.pth").read_bytes() == b"other"
    assert [path.name for path in files_under(tmp_path / "models--owner--repo" / "blobs")] == [
        hashlib.sha256(b"other").hexdigest()]


def test_removing_what_is_not_cached_does_nothing(tmp_path, monkeypatch):
    private_hub_cache(monkeypatch, tmp_path, reachable=False)
    assert remove_cached_hub_file("owner/repo", "model.pth") is False


def test_a_cache_entry_linking_outside_its_repo_folder_is_left_alone(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    private_hub_cache(monkeypatch, cache, reachable=False)
    entry = put_in_cache(cache, "owner/repo", "model.pth", b"weights")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    entry.unlink()
    entry.symlink_to(outside)
    assert remove_cached_hub_file("owner/repo", "model.pth") is False
    assert outside.read_text() == "keep me" and entry.is_symlink()
