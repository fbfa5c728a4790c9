"""Every page in a real browser: it loads without a traceback and is screenshotted; on the Map a voice is picked."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from e2e_utils import (
    CHARTLESS_PAGES,
    PAGES,
    button,
    expect_charts_drawn,
    expect_no_exception,
    open_app,
    rerun,
    screenshot,
)
from playwright.sync_api import expect


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_loads_without_an_exception(page, server, name):
    """A person opens each page from its address: its title, the engine in the sidebar, drawn charts, no traceback."""
    path, title = PAGES[name]
    open_app(page, f"{server.url}/{path}")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Engine:")).to_be_visible()
    expect(sidebar.get_by_text(re.compile(r"Voices: 54 bundled"))).to_be_visible()
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    if name not in CHARTLESS_PAGES:
        expect_charts_drawn(page)
    screenshot(page, f"page-{name}")
    expect_no_exception(page)


VOICE_POINTS = """(chart) => [...chart.querySelectorAll('path[role="graphics-symbol"][aria-label*="Voice: "]')]
  .map((point) => {
    const box = point.getBoundingClientRect();
    return {name: point.getAttribute('aria-label').match(/Voice: ([^;]+)/)[1],
            x: box.x + box.width / 2, y: box.y + box.height / 2};
  })"""
"""Every voice drawn on a map (Vega draws SVG here and labels each point for screen readers), with its centre."""


def test_clicking_a_voice_on_the_map_picks_it_for_the_lab(page, server):
    """A person clicks a voice on the PCA map: it is picked, and "Open in Voice Lab" starts the Lab from it."""
    open_app(page, f"{server.url}/map")
    chart = page.get_by_test_id("stVegaLiteChart").first
    expect(chart.locator('path[aria-label*="Voice: "]')).to_have_count(54)
    points = chart.evaluate(VOICE_POINTS)

    def room(point: dict) -> float:  # the distance to the nearest other point: click the most isolated voice
        return min(((point["x"] - o["x"]) ** 2 + (point["y"] - o["y"]) ** 2) ** 0.5 for o in points if o is not point)

    name = max(points, key=room)["name"]
    expect(page.get_by_test_id("stMarkdown").filter(has_text="Picked for the Lab")).to_have_count(0)
    rerun(page, lambda: chart.locator(f'path[aria-label*="Voice: {name};"]').click())
    expect(page.get_by_test_id("stMarkdown").filter(has_text="Picked for the Lab")).to_have_count(1)
    expect(page.get_by_test_id("stMarkdown").get_by_text(name, exact=True)).to_be_visible()
    screenshot(page, "map-voice-picked")
    rerun(page, lambda: button(page, "Open in Voice Lab").click())
    page.wait_for_url(re.compile(r"/lab\?recipe="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Voice Lab")
    expect(page.get_by_test_id("stMultiSelect").filter(has_text="Voices").get_by_text(name, exact=True)).to_be_visible()
    expect(page.get_by_test_id("stCode").first).to_have_text(f"voice {name}")
    expect_no_exception(page)


def test_a_link_to_a_page_works_as_the_first_visit_to_a_fresh_server(new_page, fresh_server):
    """The first person after a (re)start opens a shared Lab link: the Lab with its sidebar, not a traceback."""
    page = new_page()
    open_app(page, f"{fresh_server.url}/lab")
    expect(page.get_by_role("heading", level=1)).to_have_text("Voice Lab")
    expect(page.get_by_test_id("stSidebar").get_by_text("Engine:")).to_be_visible()


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_fetches_nothing_from_another_host(page, server, name):
    """An offline machine reaches only the app: the tab icon and everything else a page loads come from it."""
    elsewhere = []
    page.on("request", lambda request: elsewhere.append(request.url)
            if urlsplit(request.url).scheme in ("http", "https")
            and urlsplit(request.url).netloc != urlsplit(server.url).netloc else None)
    open_app(page, f"{server.url}/{PAGES[name][0]}")
    if name not in CHARTLESS_PAGES:
        expect_charts_drawn(page)
    icon = page.evaluate("() => document.querySelector('link[rel~=\"icon\"]').href")
    assert urlsplit(icon).netloc == urlsplit(server.url).netloc, icon
    assert elsewhere == []
