"""A browser test that times out leaves what is needed to diagnose it: the server's stacks, its log, and each open
page's screenshot, state and console (``diagnostics.py``)."""

from __future__ import annotations

import pytest
from conftest import serve
from diagnostics import collect
from e2e_utils import wait_for_run
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

HANG_WAIT_MS = 10_000


def test_a_hung_server_explains_itself_in_the_artifacts(new_page, chromium):
    """A server whose script hangs: the wait times out, and the artifacts name the function it hangs in."""
    with serve("streamlit-planted-hang.log", script="tests/e2e/apps/planted_hang.py") as server:
        page = new_page()
        page.goto(server.url)
        with pytest.raises(PlaywrightTimeoutError):
            wait_for_run(page, 0, HANG_WAIT_MS)
        folder = collect("planted-hang")

    log = (folder / "streamlit-planted-hang.log").read_text()
    stack = log[log.index("Thread 0x"):]
    assert "in planted_hang" in stack and "planted_hang.py" in stack, stack[-3000:]
    assert (folder / "page-1.png").stat().st_size > 1000
    state = (folder / "page-1.txt").read_text()
    assert f"url: {server.url}" in state and "'script': 'running'" in state, state
