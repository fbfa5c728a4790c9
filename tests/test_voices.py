"""Voices: every source and format loads the same numbers, and every bad input is refused with a clear message."""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import voices as voices_module
from explorer.errors import HubError, VoiceError
from explorer.paths import VOICES_DIR
from explorer.voices import (
    MAX_ARCHIVE_ENTRIES,
    MAX_FILE_BYTES,
    PACK_BYTES,
    Voice,
    VoiceSet,
    as_pack,
    load_bundled,
    load_bytes,
    load_file,
    load_folder,
    load_hub,
    load_voices,
    pack_bytes,
    parse_voice_name,
    save_pack,
    validate_voice_name,
)

OFFICIAL = Path(__file__).resolve().parent.parent.parent / "shared" / "kokoro-v1.0" / "voices"


def random_pack(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, (510, 256)).astype(np.float32)


def test_bundled_voices_are_the_54_official_packs(bundled_voices):
    assert len(bundled_voices) == 54
    heart = bundled_voices["af_heart"]
    assert heart.pack.shape == (510, 256) and heart.pack.dtype == np.float32
    assert heart.source == "bundled"
    assert (heart.language, heart.gender, heart.group) == ("American English", "female", "af")
    if OFFICIAL.is_dir():
        official = np.fromfile(OFFICIAL / "af_heart.bin", dtype="<f4").reshape(510, 256)
        np.testing.assert_array_equal(heart.pack, official)


def test_bundled_groups_follow_the_naming_scheme(bundled_voices):
    table = bundled_voices.table()
    assert set(table.language_code) == set("abefhijpz")
    assert table.groupby("group").size()["af"] == 11
    assert (table.gender != "unknown").all()


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_bundled_file_is_named_in_the_error(tmp_path, damage):
    folder = tmp_path / "voices"
    shutil.copytree(VOICES_DIR, folder)
    target = folder / "bf_emma.bin"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:1000])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[5000] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    with pytest.raises(VoiceError, match="bf_emma.bin"):
        load_bundled(folder)


def test_metadata_comes_from_the_name():
    assert parse_voice_name("bm_george").language == "British English"
    assert parse_voice_name("zf_xiaobei").gender == "female"
    custom = parse_voice_name("my_voice")
    assert (custom.language, custom.gender, custom.group) == ("custom", "unknown", "custom")
    assert parse_voice_name("xf_unknownlang").group == "custom"


@pytest.mark.parametrize("name", ["../etc", "a/b", "a\\b", "", ".hidden", "x" * 65, "a..b", "name\x00", "af_heart\n", "af_heart\r\n", 5])
def test_unsafe_names_are_refused(name):
    with pytest.raises(VoiceError, match="Invalid voice name"):
        validate_voice_name(name)


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".npy", ".npz"])
def test_every_format_round_trips(tmp_path, suffix):
    pack = random_pack(1)
    path = save_pack(pack, tmp_path / f"af_test{suffix}")
    (voice,) = load_file(path)
    assert voice.name == "af_test"
    np.testing.assert_array_equal(voice.pack, pack)


def test_pt_export_is_what_kokoro_pipeline_loads(tmp_path):
    from kokoro import KPipeline

    pack = random_pack(2)
    path = save_pack(pack, tmp_path / "custom.pt")
    loaded = KPipeline(lang_code="e", repo_id="hexgrad/Kokoro-82M", model=False).load_voice(str(path))
    assert tuple(loaded.shape) == (510, 1, 256) and loaded.dtype == torch.float32
    np.testing.assert_array_equal(loaded[:, 0, :].numpy(), pack)


def test_npz_export_is_a_kokoro_onnx_style_archive(tmp_path):
    path = save_pack(random_pack(3), tmp_path / "af_x.npz")
    with np.load(path) as archive:
        assert archive.files == ["af_x"] and archive["af_x"].shape == (510, 1, 256)


def test_npz_with_many_voices_loads_them_all():
    buffer = io.BytesIO()
    np.savez(buffer, af_one=random_pack(1), bm_two=random_pack(2)[:, None, :])
    loaded = load_bytes(buffer.getvalue(), "voices-v1.0.npz")
    assert [v.name for v in loaded] == ["af_one", "bm_two"]
    assert loaded[1].group == "bm"


def test_both_accepted_shapes_give_the_same_pack():
    pack = random_pack(4)
    np.testing.assert_array_equal(as_pack(pack), as_pack(pack[:, None, :]))
    assert not as_pack(pack).flags.writeable


@pytest.mark.parametrize("shape", [(510,), (256,), (509, 256), (510, 2, 256), (1, 510, 256)])
def test_wrong_shapes_are_refused_with_the_shape(shape):
    with pytest.raises(VoiceError, match=r"shape \["):
        as_pack(np.zeros(shape, np.float32), "bad")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(value):
    pack = random_pack(5)
    pack[7, 9] = value
    with pytest.raises(VoiceError, match="NaN or infinite"):
        as_pack(pack)


@pytest.mark.parametrize("value", [1e39, -1e39, np.finfo(np.float64).max])
def test_a_float64_value_beyond_float32_is_refused_not_stored_as_infinity(value):
    """A person loads a float64 pack (an .npy saved from numpy's default dtype) holding one value too large for
    float32: it is refused like an infinite value, since the stored float32 pack would hold infinity there."""
    pack = random_pack(6).astype(np.float64)
    pack[3, 200] = value
    assert np.isfinite(pack).all()  # finite as given; only the cast to float32 overflows
    with pytest.raises(VoiceError, match="NaN or infinite"):
        as_pack(pack, "huge")
    with pytest.raises(VoiceError, match="NaN or infinite"):
        as_pack(torch.from_numpy(pack), "huge")


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buffer = io.BytesIO()
    torch.save({"af_x": Exploit()}, buffer)
    with pytest.raises(VoiceError, match="refused"):
        load_bytes(buffer.getvalue(), "evil.pt")
    assert not marker.exists()


def test_plain_pickle_in_npy_is_refused():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(VoiceError, match="npy"):
        load_bytes(buffer.getvalue(), "af_obj.npy")


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "af_x.bin", "empty"),
        (b"\0" * (PACK_BYTES - 4), "af_x.bin", "exactly"),
        (b"not a zip", "af_x.npz", "npz"),
        (b"garbage" * 10, "af_x.pt", ".pt"),
        (b"\0" * 10, "af_x.wav", "unsupported format"),
        (b"\0" * 10, "../af_x.bin", "path separators"),
        (b"\0" * 10, "dir/af_x.bin", "path separators"),
    ],
)
def test_broken_files_are_refused_clearly(data, filename, message):
    with pytest.raises(VoiceError, match=message):
        load_bytes(data, filename)


def test_oversize_input_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(voices_module, "MAX_FILE_BYTES", 100)
    with pytest.raises(VoiceError, match="limit"):
        load_bytes(b"\0" * 101, "af_x.bin")
    assert MAX_FILE_BYTES >= 60 * 2**20


def test_zip_bomb_member_is_refused_before_inflating():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("af_bomb.npy", b"\0" * (50 * 2**20))
    assert len(buffer.getvalue()) < 2**20
    with pytest.raises(VoiceError, match="inflates"):
        load_bytes(buffer.getvalue(), "bomb.npz")


def test_npz_with_too_many_entries_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, **{f"v{i}": np.zeros(1, np.float32) for i in range(MAX_ARCHIVE_ENTRIES + 1)})
    with pytest.raises(VoiceError, match="entries"):
        load_bytes(buffer.getvalue(), "many.npz")


def test_npz_entry_with_a_hostile_name_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, **{"..": random_pack(1)})
    with pytest.raises(VoiceError, match="Invalid voice name"):
        load_bytes(buffer.getvalue(), "x.npz")


def test_folder_loads_every_supported_file_and_ignores_others(tmp_path):
    save_pack(random_pack(1), tmp_path / "af_a.bin")
    save_pack(random_pack(2), tmp_path / "custom_b.pt")
    (tmp_path / "notes.txt").write_text("ignore me")
    voices = load_folder(tmp_path)
    assert voices.names == ["af_a", "custom_b"]
    assert voices["custom_b"].language == "custom"


def test_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(VoiceError, match="holds no voice files"):
        load_folder(tmp_path)
    with pytest.raises(VoiceError, match="No voice folder"):
        load_folder(tmp_path / "missing")


def test_a_broken_file_in_a_folder_is_named(tmp_path):
    save_pack(random_pack(1), tmp_path / "af_a.bin")
    (tmp_path / "af_broken.bin").write_bytes(b"\0" * 12)
    with pytest.raises(VoiceError, match="af_broken.bin"):
        load_folder(tmp_path)


def test_load_voices_understands_every_source(tmp_path, bundled_voices):
    assert load_voices().names == bundled_voices.names
    assert len(load_voices("bundled")) == 54
    save_pack(random_pack(1), tmp_path / "af_a.npy")
    assert load_voices(tmp_path).names == ["af_a"]
    assert load_voices(tmp_path / "af_a.npy").names == ["af_a"]
    with pytest.raises(VoiceError, match="Unknown voice source"):
        load_voices(tmp_path / "nothing-here")


def test_voiceset_lookup_replacement_and_rows():
    first = Voice.from_array("af_a", random_pack(1), "test")
    second = Voice.from_array("af_a", random_pack(2), "upload")
    voices = VoiceSet([first]).with_voices([second, Voice.from_array("bm_b", random_pack(3), "test")])
    assert voices.names == ["af_a", "bm_b"] and voices["af_a"].source == "upload"
    assert voices.packs().shape == (2, 510, 256)
    with pytest.raises(VoiceError, match="Unknown voice"):
        voices["zz_missing"]
    assert Voice.row_for_phonemes("abc") == 2 and Voice.row_for_phonemes("x" * 900) == 509
    with pytest.raises(VoiceError, match="out of range"):
        first.style(510)


def make_fake_hub_cache(cache: Path, repo_id: str, voices: dict[str, np.ndarray]) -> None:
    """Lay out a Hugging Face cache for ``repo_id`` the way huggingface_hub stores a snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit / "voices"
    snapshot.mkdir(parents=True)
    for name, pack in voices.items():
        data = pack_bytes(pack, ".pt", name)
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        (snapshot / f"{name}.pt").symlink_to(blob)


def test_hub_voices_come_from_the_local_cache_when_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: False)
    make_fake_hub_cache(tmp_path, "hexgrad/Kokoro-82M", {"af_heart": random_pack(1), "zm_yunxi": random_pack(2)})
    voices = load_voices("hf:hexgrad/Kokoro-82M")
    assert voices.names == ["af_heart", "zm_yunxi"]
    assert voices["af_heart"].source == "hf:hexgrad/Kokoro-82M"
    np.testing.assert_array_equal(voices["zm_yunxi"].pack, random_pack(2))


def test_unreachable_hub_without_cache_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: False)
    with pytest.raises(HubError, match="cannot be reached.*not in the local cache"):
        load_hub("hexgrad/Kokoro-82M-v1.1-zh")


def test_hf_hub_offline_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def never(timeout=2.0):
        raise AssertionError("must not probe the network when HF_HUB_OFFLINE is set")

    monkeypatch.setattr("explorer.hub.hub_reachable", never)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        load_hub()


def test_hub_download_is_used_when_online(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda timeout=2.0: True)
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns, local_files_only, **kwargs):
        calls.append((repo_id, allow_patterns, local_files_only))
        make_fake_hub_cache(tmp_path, repo_id, {"bf_new": random_pack(9)})
        return str(next((tmp_path / f"models--{repo_id.replace('/', '--')}" / "snapshots").iterdir()))

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    voices = load_hub("hexgrad/Kokoro-82M")
    assert calls == [("hexgrad/Kokoro-82M", ["voices/*.pt"], False)]
    assert voices.names == ["bf_new"]


def test_real_probe_of_an_unreachable_endpoint_answers_quickly(monkeypatch):
    from explorer.hub import hub_reachable

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert hub_reachable(timeout=1.0) is False


def test_pickled_voiceset_is_not_a_loader_format():
    """A plain pickle (no torch zip container) is refused like any unreadable .pt."""
    with pytest.raises(VoiceError):
        load_bytes(pickle.dumps({"af_x": random_pack(1)}), "af_x.pt")


def test_fingerprint_changes_with_content_and_not_with_identity(bundled_voices):
    again = VoiceSet(list(bundled_voices))
    assert again.fingerprint() == bundled_voices.fingerprint()
    edited = bundled_voices.with_voices([Voice.from_array("af_heart", random_pack(7), "upload")])
    assert edited.fingerprint() != bundled_voices.fingerprint()
