"""A/B listening in a real browser: both sides play, and blind mode keeps the listener's tally."""

from __future__ import annotations

import json
import re
from pathlib import Path

from e2e_utils import SHORT_TEXT, button, expect_no_exception, open_app, rerun, screenshot, set_sample_text
from playwright.sync_api import expect


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

    rerun(page, lambda: page.get_by_text("Blind mode (ABX)").click())
    expect(players).to_have_count(3)
    expect(page.get_by_text("Trial 1 of 12: is X the voice of A or of B?")).to_be_visible()
    assert len(set(durations(page))) == 1                          # no player's length tells X from the others
    expect(page.get_by_text("The meters are hidden in blind mode")).to_be_visible()
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


def durations(page) -> list[float]:
    """The length in seconds of every audio player on the page, once each has loaded its audio."""
    page.wait_for_function("() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1)")
    return page.evaluate("() => [...document.querySelectorAll('audio')].map(a => a.duration)")
