"""Browser tests: the real app served by ``streamlit run``, driven by Playwright in Debian's Chromium.

One server runs for the whole test session (the first visit to a page pays for its cached analysis or model); every
test opens its own browser context, so each is a fresh Streamlit session. The server runs with the normal caches
(the offline ONNX model is assembled once per machine) and ``HF_HUB_OFFLINE=1``, so nothing waits on a network.
Its log and the screenshots go to ``test-artifacts/``, which CI keeps.

Without ``/usr/bin/chromium`` (Debian: ``apt-get install chromium``; ``make test`` installs it) these tests are
skipped with that reason (Playwright's own browser download cannot work offline); under CI (``CI`` set) they fail
instead, so a run without a browser is never green. When a browser test fails, every live server's thread stacks,
its log and every open page's screenshot and console go to ``test-artifacts/diagnostics/<test>/`` (see
``diagnostics.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from diagnostics import LIVE_SERVERS, OPEN_PAGES, collect, watch_page
from e2e_utils import ARTIFACTS, COUNT_RUNS_SCRIPT, open_app, watch_session

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("EXPLORER_TEST_CHROMIUM", "/usr/bin/chromium"))
"""Debian's Chromium; the variable points elsewhere only to test the suite's own rules."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT_S = 90
VIEWPORT = {"width": 1400, "height": 1000}


@dataclass(frozen=True)
class Server:
    """The running app: its address and process id (for memory readings)."""

    url: str
    pid: int


CLOUD_ENVIRONMENT = {"EXPLORER_ENGINE": "onnx"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that failed (a timed-out wait included) leaves what is needed to diagnose it."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        folder = collect(item.name)
        report.sections.append(("diagnostics", f"server stacks, logs, screenshots and consoles: {folder}"))
    return report


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; elsewhere a skip saying how to get it, and under CI a failure."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"Browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium; make test does it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; under CI a missing browser fails the run.", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def serve(log_name: str, environment: dict[str, str] | None = None, script: str = "app.py") -> Iterator[Server]:
    """Run ``streamlit run <script>`` on a free port until the block ends; ready once ``/_stcore/health`` answers 200.

    ``environment`` adds variables to the server's (e.g. ``EXPLORER_ENGINE``); ``script`` is relative to the
    repository. The server is registered for the diagnostics of a failed test while it runs."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / log_name
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "EXPLORER_PRELOAD": "1",  # as deployed
           **(environment or {})}
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    LIVE_SERVERS[process.pid] = log_path
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer /_stcore/health in {SERVER_START_TIMEOUT_S} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(0.2)  # polling a process that is starting up, not waiting on the app
        yield Server(url, process.pid)
    finally:
        LIVE_SERVERS.pop(process.pid, None)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def server(browser, tmp_path_factory) -> Iterator[Server]:
    """The app for the whole session, first visited at its address (the entry page), as a person opening it does.
    Its shared listening tests keep their answers in a file of the session's own.

    A first visit straight to a page's own address on a fresh server is tested on its own server
    (``test_e2e_pages.py::test_a_link_to_a_page_works_as_the_first_visit_to_a_fresh_server``).
    """
    answers = tmp_path_factory.mktemp("listening") / "listening-tests.sqlite3"
    with serve("streamlit-server.log", {"EXPLORER_LISTENING_DB": str(answers)}) as running:
        _visit_first(browser, running.url)
        yield running


@pytest.fixture
def cloud_server(browser) -> Iterator[Server]:
    """An app server set up as the README tells Streamlit Community Cloud users to (``CLOUD_ENVIRONMENT``: the
    offline int8 ONNX engine, a third of torch's memory), visited once at its address."""
    with serve("streamlit-cloud-server.log", CLOUD_ENVIRONMENT) as running:
        _visit_first(browser, running.url)
        yield running


def _visit_first(browser, url: str) -> None:
    """Open the app at its address once, as a person does before following links into it."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(COUNT_RUNS_SCRIPT)
    try:
        open_app(context.new_page(), url)
    finally:
        context.close()


@pytest.fixture
def fresh_server(chromium) -> Iterator[Server]:
    """An app server of its own that no browser has visited yet."""
    with serve("streamlit-fresh-server.log") as running:
        yield running


@pytest.fixture(scope="session")
def browser(chromium):
    """One headless Chromium for the session; each test gets its own context (its own Streamlit session)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def new_page(browser):
    """Open pages in fresh browser contexts (fresh Streamlit sessions), all closed after the test."""
    contexts = []

    def open_page(**options):
        context = browser.new_context(viewport=options.pop("viewport", VIEWPORT), accept_downloads=True, **options)
        context.add_init_script(COUNT_RUNS_SCRIPT)
        contexts.append(context)
        page = context.new_page()
        watch_session(page)
        watch_page(page)
        page.set_default_timeout(120_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    OPEN_PAGES[:] = [record for record in OPEN_PAGES if not record.page.is_closed()]


@pytest.fixture
def page(new_page, server):
    """A page in a fresh browser context, for a test that needs one."""
    return new_page()
