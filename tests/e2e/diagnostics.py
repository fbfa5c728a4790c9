"""What a failed browser test leaves behind, so a hang or a failure can be diagnosed from the artifacts alone.

Every app server the tests start and every page they open is registered here. When a test fails (a wait that timed
out included), :func:`collect` writes to ``test-artifacts/diagnostics/<test>/``:

- ``<server log name>``: the server's whole log, ending in every thread's Python stack: the server dumps them when
  it receives ``SIGUSR1`` (``explorer.app.ui.enable_stack_dumps``), which says where a hung server waits;
- ``page-<n>.png``, ``page-<n>.txt``: a screenshot of each open page, and its address, the app's connection and
  script-run state, the script runs counted, and everything the page wrote to its console.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STACK_DUMP_WAIT_S = 10.0
"""How long to wait for a server to finish writing its stacks (a few milliseconds when it is alive)."""


@dataclass
class PageRecord:
    """An open page and what its console said."""

    page: Page
    console: list[str] = field(default_factory=list)


LIVE_SERVERS: dict[int, Path] = {}
"""Running app servers: process id to log file."""
OPEN_PAGES: list[PageRecord] = []
"""Pages the tests opened, in order (closed ones are skipped when collecting)."""


def watch_page(page: Page) -> None:
    """Record everything ``page`` writes to its console, and its uncaught errors, for :func:`collect`."""
    record = PageRecord(page)
    page.on("console", lambda message: record.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: record.console.append(f"uncaught: {error}"))
    OPEN_PAGES.append(record)


def _folder_name(test: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", test)[:120].strip("-") or "test"


def _dump_stacks(pid: int, log: Path) -> None:
    """Ask the server for every thread's stack and wait until the dump is in its log."""
    before = log.stat().st_size if log.exists() else 0
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STACK_DUMP_WAIT_S
    size = before
    while time.monotonic() < deadline:
        time.sleep(0.2)  # polling a file another process appends to
        now = log.stat().st_size
        if now > before and now == size:  # grown, and quiet for one interval
            return
        size = now


def _describe(record: PageRecord, index: int, folder: Path) -> None:
    lines = [f"url: {record.page.url}"]
    try:
        record.page.screenshot(path=str(folder / f"page-{index}.png"), full_page=True, timeout=15_000)
        state = record.page.evaluate(
            """() => {
              const app = document.querySelector('[data-testid="stApp"]');
              return {connection: app && app.dataset.testConnectionState, script: app && app.dataset.testScriptState,
                      runs: window.__stRuns};
            }"""
        )
        lines.append(f"app: {state}")
    except Exception as error:  # a page that cannot answer is itself worth knowing
        lines.append(f"page did not answer: {str(error).splitlines()[0]}")
    lines.append("console:")
    lines.extend(f"  {line}" for line in record.console)
    (folder / f"page-{index}.txt").write_text("\n".join(lines) + "\n")


def collect(test: str) -> Path:
    """Write the diagnostics of every live server and open page for ``test``; return the folder written."""
    folder = ARTIFACTS / "diagnostics" / _folder_name(test)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for pid, log in list(LIVE_SERVERS.items()):
        _dump_stacks(pid, log)
        if log.exists():
            shutil.copy(log, folder / log.name)
    open_pages = [record for record in OPEN_PAGES if not record.page.is_closed()]
    for index, record in enumerate(open_pages, start=1):
        _describe(record, index, folder)
    return folder
