"""Hostile input through a real browser and server: a poisoned upload, a booby-trapped link, pasted markup.

The same cases, and many more, run against the library and ``AppTest`` in ``tests/test_hostile.py``; here the server
itself parses the upload (so the marker file proves no code ran in it) and Chromium renders what the page shows (so no
markup can sneak through as elements).
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import torch
from e2e_utils import expect_no_exception, open_app, rerun, screenshot
from playwright.sync_api import expect

from explorer.app.shared_tests import SharedTest
from explorer.recipe import Recipe

PAYLOAD = '<img src=x onerror="alert(1)"><b>![x](http://e.x/t.png)</b>'
"""HTML and a Markdown image: rendered as markup, it would load an image from elsewhere and run script."""


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def token_of(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode())).rstrip(b"=").decode()


def expect_text_only(alert) -> None:
    """The alert shows the payload as characters, and holds no element the payload could have made."""
    expect(alert.locator("img, b, a, script, iframe")).to_have_count(0)


def test_an_upload_that_would_run_code_on_the_server_is_refused(page, server, tmp_path):
    """A person uploads a .pt whose pickle would run code on the server: an error, no code ran, and their next
    (good) upload is added."""
    marker = tmp_path / "code-ran-on-the-server"
    evil = tmp_path / "af_evil.pt"
    torch.save({"af_evil": torch.zeros(510, 1, 256), "am_evil": [RunsCode(marker)]}, evil)
    good = tmp_path / "my_voice.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).normal(0, 0.2, (510, 1, 256)).astype(np.float32))
    good.write_bytes(buffer.getvalue())

    open_app(page, server.url)
    page.get_by_test_id("stExpander").get_by_text("Add voices").click()
    chooser = page.get_by_test_id("stFileUploaderDropzoneInput")
    rerun(page, lambda: chooser.set_input_files(str(evil)))
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_contain_text("af_evil.pt")
    assert not marker.exists()
    rerun(page, lambda: chooser.set_input_files(str(good)))
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("my_voice")
    expect(page.get_by_role("heading", name="my_voice")).to_be_visible()  # the page shows the new voice
    expect(page.get_by_text("55 of 55 voices shown")).to_be_visible()
    screenshot(page, "hostile-upload")
    assert not marker.exists()
    expect_no_exception(page)


def test_a_link_with_markup_in_its_recipe_shows_a_plain_text_warning(page, server):
    """A person opens a Lab link whose recipe holds HTML and a Markdown image: a warning shows them as text, and the
    Lab starts from the default voice."""
    recipe = {"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart"}]},
              "edits": [{"type": "centroid", "kind": "gender", "key": PAYLOAD[:32], "amount": 1}]}
    open_app(page, f"{server.url}/lab?recipe={token_of(json.dumps(recipe))}")
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="The recipe in the link was not loaded")
    expect(warning).to_contain_text(PAYLOAD[:32])
    expect_text_only(warning)
    expect(page.get_by_test_id("stCode").first).to_have_text("voice af_heart")
    screenshot(page, "hostile-link")
    expect_no_exception(page)


def test_markup_pasted_as_an_ab_recipe_string_is_shown_as_text(page, server):
    """A person pastes a recipe string whose keys hold HTML and Markdown into side A: the error shows them as text."""
    open_app(page, f"{server.url}/ab")
    side_a = page.get_by_test_id("stColumn").filter(has_text="Side A").first
    rerun(page, lambda: side_a.get_by_test_id("stRadio").get_by_text("recipe string").click())
    field = side_a.get_by_test_id("stTextInput").locator("input")
    field.fill(token_of(json.dumps({"version": 1, "base": {}, PAYLOAD[:36]: 1})))
    rerun(page, lambda: field.press("Enter"))
    error = page.get_by_test_id("stAlertContentError").filter(has_text="unknown keys")
    expect(error).to_contain_text(PAYLOAD[:36])
    expect_text_only(error)
    expect_no_exception(page)


def test_a_shared_test_link_with_markup_or_an_absurd_length_is_refused_in_one_sentence(page, server):
    """A person opens test links built to break the A/B page: markup as the test's kind, a million trials. Each says
    in one sentence what is wrong, as text, and the page opens as usual with nothing stored."""
    recipes = (Recipe.single("af_heart").to_token(), Recipe.single("am_adam").to_token())
    query = SharedTest("blind ABX", recipes, "Hello there.", "a", 1.0, "auto", 8, 1).to_query()
    for change, message in (({"test": PAYLOAD}, "is not one of abx, preference, rating"),
                            ({"trials": "1000000"}, "this link asks for 1000000")):
        open_app(page, f"{server.url}/ab?{urlencode({**query, **change})}")
        error = page.get_by_test_id("stAlertContentError").filter(has_text=message)
        expect(error).to_have_count(1)
        expect_text_only(error)
        expect(page.get_by_text("Side A", exact=True)).to_be_visible()       # the page as usual
        expect(page.get_by_text("A shared listening test")).to_have_count(0)
    expect_no_exception(page)
