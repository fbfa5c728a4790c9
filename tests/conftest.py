"""Shared fixtures: built once per test session because they are slow (voices, models, engines)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def bundled_voices():
    """The 54 bundled Kokoro v1.0 voices."""
    from explorer.voices import load_bundled

    return load_bundled()
