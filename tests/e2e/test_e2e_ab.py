"""A/B listening in a real browser: both sides play, and the blind ABX, preference and rating tests run to their
results."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
import soundfile
from e2e_utils import (
    SHORT_TEXT,
    button,
    code_texts,
    expect_no_exception,
    open_app,
    press,
    rerun,
    screenshot,
    script_finished,
    set_sample_text,
    slider,
)
from playwright.sync_api import expect

from explorer.audio import integrated_lufs
from explorer.recipe import Recipe


def test_both_sides_play_and_blind_mode_records_a_choice(page, server):
    """A person compares af_heart with am_adam, then turns on blind mode, hears X and says it is A."""
    open_app(page, f"{server.url}/ab")
    expect(page.get_by_test_id("stCode")).to_have_text(["voice af_heart", "voice am_adam"])
    set_sample_text(page)
    rerun(page, lambda: button(page, "Synthesize A and B").click())
    players = page.get_by_test_id("stAudio")
    expect(players).to_have_count(2)
    sources = [players.nth(index).get_attribute("src") for index in range(2)]
    assert sources[0] != sources[1]  # two different renders, not one played twice
    screenshot(page, "ab-both-sides")

    rerun(page, lambda: page.get_by_text("blind ABX", exact=True).click())
    expect(players).to_have_count(3)
    expect(page.get_by_text("Trial 1 of 12: is X the voice of A or of B?")).to_be_visible()
    assert len(set(durations(page))) == 1                          # no player's length tells X from the others
    expect(page.get_by_text("The meters are hidden during a test")).to_be_visible()
    page.evaluate("() => { const x = [...document.querySelectorAll('audio')][2]; x.currentTime = 1.0; x.heard = 1; }")
    rerun(page, lambda: button(page, "X is A").click())
    expect(page.get_by_text("Trial 2 of 12: is X the voice of A or of B?")).to_be_visible()
    expect(page.get_by_text("1 of 12 answered; whether you were right is told when the test is over.")).to_be_visible()
    expect(page.get_by_test_id("stAlert")).to_have_count(0)       # nothing teaches the listener which is which
    expect(players).to_have_count(3)
    fresh_x = "() => { const x = [...document.querySelectorAll('audio')][2]; return x.currentTime === 0 && !x.heard; }"
    assert page.evaluate(fresh_x)                                  # a new X player, whichever side X is on
    screenshot(page, "ab-blind")

    rerun(page, lambda: page.get_by_text("after each trial").click())
    rerun(page, lambda: button(page, "X is B").click())
    verdict = page.get_by_test_id("stAlert").filter(has_text="Trial 2: you said X is B")
    expect(verdict).to_have_text(re.compile(r"X was [AB], so you were (right|wrong)\."))
    for _ in range(10):
        expect_equal_stimuli(page)  # every trial: A, B and X as long and as loud as each other
        rerun(page, lambda: button(page, "X is A").click())
    expect(page.get_by_text(re.compile(r"^The test is over: \d+ of 12 correct"))).to_be_visible()
    expect(players).to_have_count(0)                              # the results show; no trial is left to play
    download = page.get_by_test_id("stDownloadButton").filter(has_text="JSON")
    with page.expect_download() as saved:
        download.click()
    document = json.loads(Path(saved.value.path()).read_text())
    assert len(document["trials"]) == 12 and document["stimuli"]["text"] == SHORT_TEXT
    screenshot(page, "ab-blind-results")
    rerun(page, lambda: button(page, "Start a new test").click())
    expect(page.get_by_text("Trial 1 of 12: is X the voice of A or of B?")).to_be_visible()
    expect_no_exception(page)


def test_a_recording_uploaded_on_a_side_plays_as_it_is_against_a_voice(page, server, tmp_path):
    """A person uploads a stereo 44.1 kHz recording as side A and hears it against side B's voice, with the meters of
    both; a file that is not audio is refused on its side in one sentence."""
    seconds, rate = 3.0, 44_100
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    recording = tmp_path / "me.wav"
    soundfile.write(recording, np.stack([tone, tone], axis=1), rate)
    open_app(page, f"{server.url}/ab")
    set_sample_text(page)
    rerun(page, lambda: page.get_by_text("recording", exact=True).first.click())
    expect(page.get_by_text("Upload a recording, or give one on the Match a voice page.")).to_be_visible()
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput").first
    not_audio = tmp_path / "notes.wav"
    not_audio.write_bytes(b"shopping list\n" * 50)
    rerun(page, lambda: uploader.set_input_files(str(not_audio)))
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("not an audio file")
    rerun(page, lambda: uploader.set_input_files(str(recording)))
    expect(page.get_by_text(re.compile(r"'me\.wav':\u2060? 3\.0 s\. It plays as it is"))).to_be_visible()
    rerun(page, lambda: button(page, "Synthesize A and B").click())
    players = page.get_by_test_id("stAudio")
    expect(players).to_have_count(2)
    assert durations(page)[0] == pytest.approx(seconds, abs=0.05)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_text("A recording has no voicepack")).to_be_visible()
    screenshot(page, "ab-uploaded-recording")
    expect_no_exception(page)


def test_a_preference_test_and_a_rating_test_run_to_their_results(page, server):
    """A person scores B against A in a preference test, then rates B and a third recipe against A, its hidden copy
    and a low anchor; each test ends with its result in words and its answers to download."""
    open_app(page, f"{server.url}/ab")
    set_sample_text(page)
    rerun(page, lambda: page.get_by_text("preference (CMOS)", exact=True).click())
    rerun(page, lambda: button(page, "Synthesize A and B").click())
    players = page.get_by_test_id("stAudio")
    expect(players).to_have_count(2)
    assert len(set(durations(page))) == 1
    expect(page.get_by_text("Trial 1 of 6: how does the second sample sound against the first?")).to_be_visible()
    slider(page, "The second sample sounds").focus()
    press(page, "ArrowRight", 2)
    expect(page.get_by_test_id("stSlider").get_by_text("+2 better")).to_be_visible()
    screenshot(page, "ab-preference")
    for trial in range(6):
        rerun(page, lambda: button(page, "Submit").click())
    expect(page.get_by_text(re.compile(r"^The test is over: B against A:\u2060? CMOS [+-]\d\.\d \(95 % interval"))) \
        .to_be_visible()
    with page.expect_download() as saved:
        button(page, "JSON").click()
    document = json.loads(Path(saved.value.path()).read_text())
    assert len(document["trials"]) == 6 and document["trials"][0]["score of second"] == 2
    screenshot(page, "ab-preference-results")

    rerun(page, lambda: page.get_by_text("rating (MUSHRA)", exact=True).click())
    box = page.get_by_test_id("stTextArea").filter(has_text="More recipes to rate").locator("textarea")
    box.fill(Recipe.single("bf_emma").to_token())
    rerun(page, lambda: box.press("Control+Enter"))
    rerun(page, lambda: button(page, "Synthesize A and B").click())
    expect(players).to_have_count(5)                               # the open reference and four hidden samples
    assert len(set(durations(page))) == 1
    expect(page.get_by_text("Screen 1 of 2: rate each sample against the reference")).to_be_visible()
    slider(page, "Sample 1").focus()
    press(page, "End")
    screenshot(page, "ab-rating")
    rerun(page, lambda: button(page, "Submit ratings").click())
    expect(page.get_by_text("Screen 2 of 2: rate each sample against the reference")).to_be_visible()
    rerun(page, lambda: button(page, "Submit ratings").click())
    expect(page.get_by_text(re.compile(r"^The test is over: Median rating \(middle half\) over 2 screens:"))) \
        .to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1)
    screenshot(page, "ab-rating-results")
    expect_no_exception(page)


def test_two_listeners_take_a_shared_test_at_the_same_moment_and_both_are_in_the_results(new_page, server):
    """A person makes a blind test and shares its link; two listeners open it in their own browsers, answer every
    trial at the same moments, and each finds both of them in the results of every listener."""
    maker = new_page()
    open_app(maker, f"{server.url}/ab")
    set_sample_text(maker)
    rerun(maker, lambda: maker.get_by_text("blind ABX", exact=True).click())
    rerun(maker, lambda: button(maker, "Synthesize A and B").click())
    maker.get_by_text("Share this test with other listeners").click()
    link = next(text for text in code_texts(maker) if "test=abx" in text)
    expect(maker.get_by_text("Nobody has answered this test yet.")).to_be_visible()

    listeners = {"Ana": new_page(), "Ben": new_page()}
    for name, page in listeners.items():
        open_app(page, link)
        expect(page.get_by_text("A shared listening test: blind ABX")).to_be_visible()
        name_box = page.get_by_label("Your name, as the results will show it")
        name_box.fill(name)
        rerun(page, lambda: name_box.press("Enter"))
        rerun(page, lambda: button(page, "Start the test").click())
        expect(page.get_by_test_id("stAudio")).to_have_count(3)
    for trial in range(12):
        with contextlib.ExitStack() as answered:  # both listeners click before either answer is stored
            for page in listeners.values():
                answered.enter_context(script_finished(page))
                button(page, "X is A").click()
    for name, page in listeners.items():
        expect(page.get_by_text(re.compile(r"^The test is over: \d+ of 12 correct"))).to_be_visible()
    page = listeners["Ben"]
    rerun(page, lambda: button(page, "Refresh the results").click())
    expect(page.get_by_text(re.compile(r"^All listeners of this test:\s*2 listeners, all answers together:\u2060? "
                                       r"\d+ of 24 correct"))).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2)
    screenshot(page, "ab-shared-results")
    expect_no_exception(page)


def expect_equal_stimuli(page) -> None:
    """The three players of a blind trial hold WAVs of one length and one BS.1770 loudness (within 0.1 LU)."""
    players = page.get_by_test_id("stAudio")
    expect(players).to_have_count(3)
    clips = []
    for index in range(3):
        body = page.request.get(urljoin(page.url, players.nth(index).get_attribute("src"))).body()
        clips.append(soundfile.read(io.BytesIO(body), dtype="float32")[0])
    assert len({len(clip) for clip in clips}) == 1
    loudness = [integrated_lufs(clip) for clip in clips]
    assert max(loudness) - min(loudness) < 0.1, loudness


def durations(page) -> list[float]:
    """The length in seconds of every audio player on the page, once each has loaded its audio."""
    page.wait_for_function("() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1)")
    return page.evaluate("() => [...document.querySelectorAll('audio')].map(a => a.duration)")
