"""Helpers for the browser tests, after Streamlit's own e2e_playwright habits: test ids, ``expect``, and waiting on
the app's own signals (the ``stApp`` element's connection and script-run state), never on sleeps."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, WebSocket, expect
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
APP_TIMEOUT_MS = 180_000
"""The first visit to the Map (t-SNE) or the Architecture page (building the model) takes up to a minute here."""

PAGES = {
    "voices": ("", "Voices"),
    "map": ("map", "Voice map"),
    "groups": ("groups", "Groups and neighbours"),
    "dimensions": ("dimensions", "Dimensions"),
    "lab": ("lab", "Voice Lab"),
    "ab": ("ab", "A/B listening"),
    "match": ("match", "Match a voice"),
    "architecture": ("architecture", "Model architecture"),
}
"""Every page: its address (st.navigation names pages after their files; the default page is the app's root) and
the title it shows."""
CHARTLESS_PAGES = {"match"}
"""Pages that open without a chart: "Match a voice" draws one once a search runs."""

COUNT_RUNS_SCRIPT = """
(() => {
  window.__stRuns = 0;
  // A ForwardMsg is a protobuf; its top-level field 6 (a varint) is "script_finished". Walk the top-level fields.
  const scriptFinished = (bytes) => {
    let i = 0;
    const varint = () => {
      let value = 0, scale = 1, byte;
      do { byte = bytes[i++]; value += (byte & 0x7f) * scale; scale *= 128; } while (byte & 0x80 && i < bytes.length);
      return value;
    };
    while (i < bytes.length) {
      const key = varint(), field = Math.floor(key / 8), wire = key % 8;
      if (wire === 0) { varint(); if (field === 6) return true; }
      else if (wire === 2) { const length = varint(); i += length; }  // not i += varint(): i is read first
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else return false;
    }
    return false;
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      if (String(args[0]).includes('_stcore/stream')) {
        this.addEventListener('message', (event) => {
          if (event.data instanceof ArrayBuffer && scriptFinished(new Uint8Array(event.data))) window.__stRuns += 1;
        });
      }
    }
  };
})();
"""
"""Counts the script runs (whole-page and fragment reruns) the server has finished for the page, from the
"script finished" messages on the app's websocket, so a wait can tell a finished rerun from the state before it.

It counts messages, not the ``stApp`` element's ``running`` state: React may batch a quick run's "running" and
"not running" into one render, so the element never shows "running". A count of those renders once stayed at 0 on
a busy first run, and the many-listeners test waited 7 minutes on a server that had long finished."""

_IDLE = """(runs) => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.dataset.testConnectionState === 'CONNECTED' && app.dataset.testScriptState === 'notRunning'
    && window.__stRuns > runs;
}"""


def runs(page: Page) -> int:
    """How many script runs the page has started so far (counted in the page, see ``COUNT_RUNS_SCRIPT``)."""
    return page.evaluate("window.__stRuns")


def wait_for_run(page: Page, after: int = 0, timeout: float = APP_TIMEOUT_MS) -> None:
    """Wait until a script run that started after ``after`` runs has finished and the app is connected."""
    page.wait_for_function(_IDLE, arg=after, timeout=timeout)


def watch_session(page: Page) -> None:
    """Keep track of the page's Streamlit websocket, so a test can wait for the messages the server sends on it."""
    page.on("websocket", lambda socket: _SOCKETS.__setitem__(page, socket) if "_stcore/stream" in socket.url else None)


_SOCKETS: dict[Page, WebSocket] = {}


def _script_finished(payload: str | bytes) -> bool:
    if isinstance(payload, str):
        return False
    return ForwardMsg.FromString(payload).WhichOneof("type") == "script_finished"


def script_finished(page: Page, timeout: float = APP_TIMEOUT_MS):
    """A context manager that waits, on leaving it, for the server's next "script finished" message to the page:
    the run (or fragment run) that what happened inside it triggered has ended."""
    return _SOCKETS[page].expect_event("framereceived", predicate=_script_finished, timeout=timeout)


def rerun(page: Page, action: Callable[[], object], timeout: float = APP_TIMEOUT_MS) -> None:
    """Do ``action`` (a click, a key press) and wait until the rerun it triggers has finished and the page shows it."""
    with script_finished(page, timeout):
        action()
    page.wait_for_function(_IDLE, arg=-1, timeout=timeout)


def open_app(page: Page, url: str, timeout: float = APP_TIMEOUT_MS) -> Page:
    """Go to ``url`` and wait for the first script run; fail on a Python exception shown in the page."""
    page.goto(url)
    wait_for_run(page, 0, timeout)
    expect_rendered(page)
    expect_no_exception(page)
    return page


def expect_rendered(page: Page) -> None:
    """Every element the run produced is drawn: no placeholder is left waiting for its lazily loaded component
    (tables, sliders and code blocks arrive a moment after the script run ends)."""
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=30_000)


def expect_no_exception(page: Page) -> None:
    """No traceback box anywhere on the page."""
    expect(page.get_by_test_id("stException")).to_have_count(0)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole app (the main area scrolls inside the page) as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 12_000)})
    try:
        page.mouse.move(0, 0)  # no tooltip over the picture
        expect_rendered(page)
        expect_no_running_spinner(page)
        page.screenshot(path=str(path), full_page=True, animations="disabled")
    finally:
        page.set_viewport_size(size)
    return path


def expect_no_running_spinner(page: Page) -> None:
    """Charts and spinners have settled (vega renders after the script run ends)."""
    expect(page.get_by_test_id("stSpinner")).to_have_count(0)


_EMPTY_CHARTS = """() => {
  // Vega draws SVG (count the mark items, not the axes, legends and titles) or, for large data, a canvas (count the
  // colours in its middle, where the plot is: an empty plot there is background and grid lines only).
  const drawn = (chart) => {
    const canvas = chart.querySelector('canvas');
    if (canvas) {
      const [w, h] = [canvas.width, canvas.height];
      const pixels = canvas.getContext('2d').getImageData(Math.floor(w * 0.35), Math.floor(h * 0.35),
                                                          Math.floor(w * 0.3), Math.floor(h * 0.3)).data;
      const colours = new Set();
      for (let i = 0; i < pixels.length; i += 4) colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
      return colours.size > 8;
    }
    return [...chart.querySelectorAll('svg g.role-mark')]
      .filter((group) => !group.closest('.role-axis, .role-legend, .role-title'))
      .some((group) => group.children.length > 0);
  };
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  const empty = charts.map((chart, index) => [index, drawn(chart)]).filter(([, ok]) => !ok).map(([index]) => index);
  return charts.length > 0 && empty.length === 0 ? true : {charts: charts.length, empty};
}"""


def expect_charts_drawn(page: Page, timeout: float = 30_000) -> None:
    """Every chart on the page has drawn marks (points, bars, cells), not just its axes and legend."""
    try:
        page.wait_for_function(f"() => ({_EMPTY_CHARTS})() === true", timeout=timeout)
    except Exception as error:  # say which charts stayed empty
        raise AssertionError(f"charts without marks: {page.evaluate(_EMPTY_CHARTS)}") from error


def code_texts(page: Page) -> list[str]:
    """The text of every code block (``st.code``) on the page, in order."""
    return [text.strip() for text in page.get_by_test_id("stCode").all_inner_texts()]


def slider(page: Page, label: str):
    """The slider thumb of the ``st.slider`` labelled exactly ``label``."""
    widget = page.get_by_test_id("stSlider").filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(re.compile(rf"^{re.escape(label)}$"))
    )
    return widget.get_by_role("slider")


def button(page: Page, label: str):
    """The ``st.button`` (or download button) whose label contains ``label``."""
    return page.locator('[data-testid="stButton"], [data-testid="stDownloadButton"]').filter(has_text=label) \
        .get_by_role("button")


def press(page: Page, key: str, times: int = 1) -> None:
    """Press ``key`` on the focused widget ``times`` times, each press a rerun of its own."""
    for _ in range(times):
        rerun(page, lambda: page.keyboard.press(key))


def recipe_token(url: str) -> str:
    """The ``recipe`` query parameter of a page address."""
    from urllib.parse import parse_qs, urlsplit

    (token,) = parse_qs(urlsplit(url).query)["recipe"]
    return token


SHORT_TEXT = "Hello there, how are you today?"
"""A sentence of about two seconds: speech for the meters, short enough to keep eight renders quick."""


def set_sample_text(page: Page, text: str = SHORT_TEXT) -> None:
    """Type ``text`` into the page's "Sample text" box and commit it (Ctrl+Enter), as a person does."""
    box = page.get_by_test_id("stTextArea").filter(has_text="Sample text").locator("textarea")
    box.fill(text)
    rerun(page, lambda: box.press("Control+Enter"))
    expect(box).to_have_value(text)
