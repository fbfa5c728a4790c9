"""The "Match a voice" page in a real browser: a recording uploaded, analysed and matched, the result judged and
opened in the Lab; a file that is not audio refused; a search stopped part-way keeps its best, heard on the A/B page
against the recording."""

from __future__ import annotations

import re

import numpy as np
import pytest
from e2e_utils import button, expect_charts_drawn, expect_no_exception, open_app, rerun, screenshot
from playwright.sync_api import expect

from explorer.audio import wav_bytes

SEARCH_MS = 300_000
"""A 20-evaluation search and its held-out judgement take about a minute here; a busy machine, a few."""


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """em_santa speaking the Spanish held-out sentences: a recording the search never heard."""
    from explorer.engines import load_engine
    from explorer.match import MATCH_SENTENCES, Scorer
    from explorer.voices import load_bundled

    voices = load_bundled()
    scorer = Scorer(load_engine("torch"), voices, "e")
    clips = [scorer.render(voices["em_santa"].pack, text, i) for i, text in enumerate(MATCH_SENTENCES["e"][1])]
    path = tmp_path_factory.mktemp("recording") / "santa.wav"
    path.write_bytes(wav_bytes(np.concatenate(clips)))
    return path


def upload(page, path) -> None:
    rerun(page, lambda: page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path)))


def test_a_recording_is_matched_judged_on_held_out_sentences_and_opened_in_the_lab(page, server, recording):
    open_app(page, f"{server.url}/match")
    upload(page, recording)
    expect(page.get_by_test_id("stMetric").filter(has_text="Speech found")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Pitch")).to_contain_text("Hz")
    rerun(page, lambda: page.get_by_test_id("stSelectbox").filter(has_text="The candidates speak").click()
          or page.get_by_role("option", name="Spanish").click())
    rerun(page, lambda: page.get_by_text("voices of the language").click())
    slider = page.get_by_test_id("stSlider").filter(has_text="Evaluations").get_by_role("slider")
    for _ in range(3):   # 100 -> 60 -> 30 -> 20
        rerun(page, lambda: slider.press("ArrowLeft"))
    expect(slider).to_have_attribute("aria-valuetext", "20")
    rerun(page, lambda: button(page, "Find the voice").click(), timeout=SEARCH_MS)
    expect(page.get_by_role("heading", name="The voice found")).to_be_visible()
    held_out = page.get_by_test_id("stMetric").filter(has_text="Similarity, held-out sentences")
    expect(held_out).to_contain_text(re.compile(r"0\.\d{3}"))
    expect(page.get_by_test_id("stCode").first).to_contain_text("em_")
    expect_charts_drawn(page)
    expect_no_exception(page)
    screenshot(page, "match-result")
    rerun(page, lambda: button(page, "Open in the Voice Lab").click())
    page.wait_for_url(re.compile(r"/lab\?recipe="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Voice Lab")
    expect(page.get_by_test_id("stCode").first).to_contain_text("em_")
    expect_no_exception(page)


def test_a_file_that_is_not_audio_is_refused_in_one_sentence(page, server, tmp_path):
    fake = tmp_path / "speech.wav"
    fake.write_bytes(b"not a recording at all\n" * 100)
    open_app(page, f"{server.url}/match")
    upload(page, fake)
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("not an audio file")
    expect(button(page, "Find the voice")).to_have_count(0)
    expect_no_exception(page)


def test_stopping_a_search_keeps_the_best_voice_found_so_far_to_hear_against_the_recording(page, server, recording):
    open_app(page, f"{server.url}/match")
    upload(page, recording)
    button(page, "Find the voice").click()   # every voice, 100 evaluations: minutes, stopped long before
    expect(page.get_by_test_id("stProgress")).to_contain_text(re.compile(r"stock voices: [1-9]"), timeout=SEARCH_MS)
    rerun(page, lambda: button(page, "Stop").click())
    expect(page.get_by_test_id("stAlertContentInfo")).to_contain_text(re.compile(r"stopped after \d+ of 100"))
    expect(button(page, "Open in the Voice Lab")).to_be_visible()
    expect_no_exception(page)
    rerun(page, lambda: button(page, "A/B against the recording").click())   # the best so far against the recording
    page.wait_for_url(re.compile(r"/ab$"))
    expect(page.get_by_text(re.compile(r"The recording given to Match a voice: .santa\.wav"))).to_be_visible()
    rerun(page, lambda: button(page, "Synthesize A and B").click())
    players = page.get_by_test_id("stAudio")
    expect(players).to_have_count(2)
    assert players.nth(0).get_attribute("src") != players.nth(1).get_attribute("src")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()   # the meters of the recording and the voice
    screenshot(page, "ab-recording")
    expect_no_exception(page)
