"""The "Match a voice" page under ``AppTest``: it opens asking for a recording, offering an upload or the microphone.

A search on it runs in a real browser (``tests/e2e/test_e2e_match.py``): ``AppTest`` cannot upload a file."""

from __future__ import annotations

import pytest
import streamlit as st

from explorer.app import state
from tests.test_app_lab import open_page


@pytest.fixture(autouse=True)
def fresh_caches():
    """Streamlit's caches cleared before and after, so no later test finds this app's entries in memory."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def test_the_match_page_opens_asking_for_a_recording():
    at = open_page("pages/listen/match.py")
    assert at.title[0].value == "Match a voice"
    assert "Give a recording to start" in at.info[0].value
    assert at.radio(key=state.MATCH_SOURCE).options == ["upload a file", "record here"]
    assert not at.error and not at.button


def test_without_the_speaker_encoder_the_page_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "resemblyzer" else real(name, *a))
    at = open_page("pages/listen/match.py")
    assert "needs resemblyzer" in at.error[0].value and "requirements-meters.txt" in at.error[0].value
    assert not at.radio
