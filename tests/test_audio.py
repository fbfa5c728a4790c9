"""WAV in and out, the audio cache, playback without a device, and loudness matching."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import types

import fake_sounddevice
import numpy as np
import pytest
import soundfile

from explorer import audio
from explorer.errors import SynthesisError

RATE = 24_000


def tone(seconds: float = 0.5, amplitude: float = 0.5, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_wav_round_trip_keeps_rate_length_and_values_within_one_16_bit_step():
    clip = tone()
    data = audio.wav_bytes(clip)
    info = soundfile.info(io.BytesIO(data))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", RATE, 1)

    back, rate = audio.read_wav(data)
    assert rate == RATE
    assert back.dtype == np.float32 and back.shape == clip.shape
    assert np.max(np.abs(back - clip)) <= 1 / 32768


def test_float_wav_is_lossless():
    clip = tone(amplitude=0.3)
    back, _ = audio.read_wav(audio.wav_bytes(clip, subtype="FLOAT"))
    np.testing.assert_array_equal(back, clip)


def test_samples_beyond_full_scale_are_clipped_not_wrapped():
    back, _ = audio.read_wav(audio.wav_bytes(np.array([2.0, -3.0, 0.5], dtype=np.float32), subtype="FLOAT"))
    np.testing.assert_array_equal(back, [1.0, -1.0, 0.5])


@pytest.mark.parametrize("bad", [np.array([0.1, np.nan]), np.array([np.inf]), np.zeros((2, 2, 2)), np.array([])])
def test_unusable_audio_is_refused(bad):
    with pytest.raises(SynthesisError):
        audio.wav_bytes(bad)


def test_bad_rate_subtype_and_bytes_are_refused():
    with pytest.raises(SynthesisError, match="sample rate"):
        audio.wav_bytes(tone(), sample_rate=0)
    with pytest.raises(SynthesisError, match="subtype"):
        audio.wav_bytes(tone(), subtype="MP3")
    with pytest.raises(SynthesisError, match="not a readable audio file"):
        audio.read_wav(b"definitely not a wav")


def test_cache_returns_what_was_stored_and_counts_hits_and_misses():
    cache = audio.AudioCache(max_bytes=10_000)
    clip = np.ones(100, dtype=np.float32)
    assert cache.get("k") is None
    assert cache.put("k", clip)
    np.testing.assert_array_equal(cache.get("k"), clip)
    assert cache.stats() == audio.CacheStats(hits=1, misses=1, bytes=400, items=1, max_bytes=10_000)


def test_cache_evicts_least_recently_used_entries_by_bytes():
    cache = audio.AudioCache(max_bytes=1000)
    for key in "abc":
        cache.put(key, np.zeros(75, dtype=np.float32))  # 300 bytes each: 900 held
    cache.get("a")  # "b" is now the least recently used
    cache.put("d", np.zeros(75, dtype=np.float32))
    assert "b" not in cache
    assert all(key in cache for key in "acd")
    assert cache.stats().bytes == 900


def test_cache_does_not_store_an_item_larger_than_its_bound():
    cache = audio.AudioCache(max_bytes=100)
    cache.put("small", b"x" * 50)
    assert not cache.put("huge", np.zeros(1000, dtype=np.float32))
    assert "huge" not in cache and "small" in cache


def test_cache_replaces_an_entry_under_the_same_key_without_double_counting():
    cache = audio.AudioCache(max_bytes=1000)
    cache.put("k", b"x" * 300)
    cache.put("k", b"y" * 200)
    assert cache.get("k") == b"y" * 200 and cache.stats().bytes == 200


def test_cached_arrays_cannot_be_changed_by_the_caller():
    cache = audio.AudioCache(max_bytes=1000)
    clip = np.zeros(10, dtype=np.float32)
    cache.put("k", clip)
    clip[:] = 1  # the caller's array is not the cached one
    assert not cache.get("k").any()
    with pytest.raises(ValueError):
        cache.get("k")[0] = 1


def test_cache_sizes_objects_holding_audio_and_asks_for_a_size_otherwise():
    cache = audio.AudioCache(max_bytes=1000)
    cache.put("synthesis", types.SimpleNamespace(audio=np.zeros(50, dtype=np.float32)))
    assert cache.stats().bytes == 200
    with pytest.raises(TypeError, match="size="):
        cache.put("other", object())
    assert cache.put("other", object(), size=10)


def test_cache_is_consistent_under_concurrent_use():
    cache = audio.AudioCache(max_bytes=40 * 400)
    errors = []

    def worker(offset: int) -> None:
        try:
            for index in range(300):
                key = (offset + index) % 60
                if cache.get(key) is None:
                    cache.put(key, np.full(100, key, dtype=np.float32))
        except Exception as error:  # collected: an assertion in a thread would not fail the test
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert not errors
    assert stats.bytes == stats.items * 400 <= 40 * 400
    assert stats.hits + stats.misses >= 8 * 300
    for key in range(60):
        value = cache.get(key)
        assert value is None or (value == key).all()


def test_cache_key_depends_on_everything_that_changes_the_audio():
    style = np.linspace(-1, 1, 256, dtype=np.float32)
    base = audio.audio_cache_key("onnx", "int8", "həlˈO", style, 1.0)
    assert base == audio.audio_cache_key("onnx", "int8", "həlˈO", style.copy(), 1.0)
    nudged = style.copy()
    nudged[7] += 1e-4
    changed = [
        audio.audio_cache_key("torch", "int8", "həlˈO", style, 1.0),
        audio.audio_cache_key("onnx", "fp32", "həlˈO", style, 1.0),
        audio.audio_cache_key("onnx", "int8", "həlˈQ", style, 1.0),
        audio.audio_cache_key("onnx", "int8", "həlˈO", nudged, 1.0),
        audio.audio_cache_key("onnx", "int8", "həlˈO", style, 1.1),
        audio.audio_cache_key("onnx", "int8", ["həl", "ˈO"], style, 1.0),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_style_hash_is_by_value_and_shape():
    pack = np.arange(510 * 256, dtype=np.float32).reshape(510, 256)
    assert audio.style_sha256(pack) == audio.style_sha256(pack.astype(np.float64))
    assert audio.style_sha256(pack) != audio.style_sha256(pack.reshape(510, 1, 256))


def test_importing_the_audio_module_does_not_import_sounddevice():
    """sounddevice (and PortAudio behind it) loads only when something is played: it may be missing or fail."""
    code = "import sys, explorer.audio, explorer.cli; print('sounddevice' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]


def test_play_reports_a_missing_portaudio_library_instead_of_raising(monkeypatch):
    fake_sounddevice.install(monkeypatch, None)
    result = audio.play(tone())
    assert not result.played and "PortAudio library is missing" in result.reason and result.device == ""


def test_play_reports_a_missing_sounddevice_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    result = audio.play(tone())
    assert not result.played and "sounddevice" in result.reason


def test_play_reports_no_output_device(monkeypatch):
    fake_sounddevice.install(monkeypatch, fake_sounddevice.fake_sounddevice(None))
    result = audio.play(tone())
    assert not result.played and "no usable audio output device (Error querying device -1)" in result.reason


def test_play_reports_a_device_that_refuses_the_stream(monkeypatch):
    module = fake_sounddevice.fake_sounddevice("Speakers", fail_on_play=True)
    fake_sounddevice.install(monkeypatch, module)
    result = audio.play(tone(), blocking=True)
    assert not result.played and "Invalid sample rate" in result.reason and module.plays == []


def test_play_hands_clipped_audio_to_the_default_device(monkeypatch):
    module = fake_sounddevice.fake_sounddevice("Speakers")
    fake_sounddevice.install(monkeypatch, module)
    assert audio.play(tone()) == audio.PlaybackResult(True, "Playing on Speakers.", "Speakers")
    result = audio.play(np.array([0.5, 3.0], dtype=np.float32), 22_050, blocking=True)
    assert result == audio.PlaybackResult(True, "Played on Speakers.", "Speakers")
    data, rate, blocking = module.plays[-1]
    np.testing.assert_array_equal(data, [0.5, 1.0])
    assert (rate, blocking) == (22_050, True)


def test_read_audio_file_gives_the_samples_and_rate_of_a_wav(tmp_path):
    clip = tone()
    (tmp_path / "clip.wav").write_bytes(audio.wav_bytes(clip, subtype="FLOAT"))
    back, rate = audio.read_audio_file(tmp_path / "clip.wav")
    assert rate == RATE and np.array_equal(back, clip)


def test_read_audio_file_refuses_missing_empty_foreign_and_huge_files_in_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("hello, not audio\n")
    (tmp_path / "header_only.wav").write_bytes(audio.wav_bytes(tone())[:44])
    (tmp_path / "long.wav").write_bytes(audio.wav_bytes(tone(2.0)))
    (tmp_path / "a\x1b[2Jname.wav").write_bytes(b"RIFF")
    cases = {
        tmp_path / "missing.wav": "No audio file at",
        tmp_path: "No audio file at",
        tmp_path / "empty.wav": "'empty.wav' is empty",
        tmp_path / "text.wav": "'text.wav' is not an audio file",
        tmp_path / "header_only.wav": "holds no audio (0 samples)",
        tmp_path / "a\x1b[2Jname.wav": "'a\\x1b[2Jname.wav' is not an audio file",
    }
    for path, fragment in cases.items():
        with pytest.raises(SynthesisError, match=re.escape(fragment)) as error:
            audio.read_audio_file(path)
        assert "\n" not in str(error.value) and "\x1b" not in str(error.value)
    monkeypatch.setattr(audio, "_MAX_AUDIO_SAMPLES", RATE)
    with pytest.raises(SynthesisError, match="holds 0 minutes of 1-channel audio; at most 0 Mi samples"):
        audio.read_audio_file(tmp_path / "long.wav")
    monkeypatch.setattr(audio, "_MAX_AUDIO_FILE_BYTES", 1000)
    with pytest.raises(SynthesisError, match="'long.wav' holds 0 MiB; at most 0 MiB"):
        audio.read_audio_file(tmp_path / "long.wav")


def test_read_audio_file_checks_the_header_before_decoding_a_small_file_of_much_audio(tmp_path, monkeypatch):
    """A FLAC of silence is tiny for its length: the sample count in its header is what is bounded."""
    silence = np.zeros(RATE * 60, dtype=np.float32)
    path = tmp_path / "silence.flac"
    soundfile.write(path, silence, RATE, format="FLAC")
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(audio, "_MAX_AUDIO_SAMPLES", RATE * 30)
    monkeypatch.setattr(audio, "read_wav", lambda data: pytest.fail("decoded a file its header already refused"))
    with pytest.raises(SynthesisError, match="holds 1 minutes"):
        audio.read_audio_file(path)


def test_play_on_this_machine_never_raises():
    result = audio.play(np.zeros(1200, dtype=np.float32))
    assert isinstance(result.played, bool) and result.reason


def test_rms_dbfs_of_a_full_scale_sine_and_of_silence():
    assert audio.rms_dbfs(tone(1.0, amplitude=1.0)) == pytest.approx(-3.0103, abs=1e-3)
    assert audio.rms_dbfs(np.zeros(10)) == float("-inf")


def test_integrated_lufs_of_a_full_scale_1khz_sine_is_its_bs1770_level():
    # BS.1770's K-weighting is 0 dB at 1 kHz, so a full-scale 1 kHz sine reads -3.01 LUFS; silence has no loudness.
    assert audio.integrated_lufs(tone(3.0, amplitude=1.0, hz=1000)) == pytest.approx(-3.01, abs=0.05)
    assert audio.integrated_lufs(np.zeros(RATE)) == float("-inf")


def test_integrated_lufs_weighs_low_frequencies_less_than_rms_does():
    low, mid = tone(2.0, amplitude=0.3, hz=60), tone(2.0, amplitude=0.3, hz=1000)
    assert audio.rms_dbfs(low) == pytest.approx(audio.rms_dbfs(mid), abs=0.01)
    assert audio.integrated_lufs(low) < audio.integrated_lufs(mid) - 0.5


def test_integrated_lufs_of_a_clip_shorter_than_one_gating_block():
    assert np.isfinite(audio.integrated_lufs(tone(0.2, amplitude=0.5, hz=1000)))


def test_loudness_match_brings_every_clip_to_the_loudness_of_the_first():
    quiet, loud, low = tone(amplitude=0.05), tone(amplitude=0.4, hz=330), tone(amplitude=0.3, hz=80)
    a, b, c = audio.loudness_match(quiet, loud, low)
    np.testing.assert_array_equal(a, quiet)
    for matched in (b, c):
        assert audio.integrated_lufs(matched) == pytest.approx(audio.integrated_lufs(quiet), abs=0.05)


def test_loudness_match_to_a_target_level():
    a, b = audio.loudness_match(tone(amplitude=0.05), tone(amplitude=0.4), target_lufs=-23)
    assert audio.integrated_lufs(a) == pytest.approx(-23, abs=0.05)
    assert audio.integrated_lufs(b) == pytest.approx(-23, abs=0.05)


def test_loudness_match_never_clips_and_keeps_the_clips_equal():
    spiky = np.zeros(RATE, dtype=np.float32)
    spiky[::1000] = 0.9  # low loudness, high peaks: matching it to a loud tone would need a gain far above 1
    a, b = audio.loudness_match(tone(amplitude=0.9), spiky)
    assert max(np.abs(a).max(), np.abs(b).max()) == pytest.approx(1.0)
    assert audio.integrated_lufs(a) == pytest.approx(audio.integrated_lufs(b), abs=0.05)


def test_loudness_match_leaves_silence_silent():
    a, b = audio.loudness_match(tone(), np.zeros(100, dtype=np.float32))
    np.testing.assert_array_equal(a, tone())
    assert not b.any()


def test_loudness_match_needs_a_clip():
    with pytest.raises(SynthesisError, match="at least one clip"):
        audio.loudness_match()
