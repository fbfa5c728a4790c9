"""The app's own benchmark: ``python -m explorer bench app`` times each page's cold start and warm reruns.

Pages run through ``streamlit.testing``'s ``AppTest`` (the app's own script, without a browser): for each page, a
cold start in a new Python process, and warm reruns after a widget move.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter

from streamlit.runtime.caching.storage.local_disk_cache_storage import LocalDiskCacheStorageManager
from streamlit.testing.v1 import AppTest, app_test

from explorer.app.state import DIMENSIONS_ROW, GROUPS_ROW, MAP_ROW, pca_key
from explorer.bench.runs import last_json_line, load_average_now, machine_description, table_cell, text_table
from explorer.engines import PRELOAD_VARIABLE
from explorer.errors import ExplorerError

__all__ = ["APP_PAGES", "AppRow", "format_app_report", "run_app_benchmark", "time_app_page"]

APP_FILE = Path(__file__).resolve().parents[2] / "app.py"
APP_PAGES = {
    "voices": "pages/explore/voices.py",
    "map": "pages/explore/map.py",
    "groups": "pages/explore/groups.py",
    "dimensions": "pages/explore/dimensions.py",
    "lab": "pages/listen/lab.py",
}
"""The pages whose start the app benchmark times: the four that show all voices and their analysis, and the Lab."""
APP_RERUNS = 7
_ROW_KEYS = {"map": MAP_ROW, "groups": GROUPS_ROW, "dimensions": DIMENSIONS_ROW}


@dataclass(frozen=True)
class AppRow:
    """How fast one page of the app opens and reacts.

    Attributes:
        page: the page's name (``APP_PAGES``).
        cold_start_seconds: from starting a new Python process to the end of the page's first script run (imports,
            voices, analysis; caches on disk, such as t-SNE's, already written by an earlier run).
        first_run_seconds: the first script run alone, imports excluded.
        rerun_ms: median time of a warm script run after a widget move, no synthesis (the Lab: a PCA slider; the
            analysis pages: the summary-vector choice set to what it was; Voices: a plain rerun).
        load_average: the machine's 1-minute load average when the page's process started.
    """

    page: str
    cold_start_seconds: float
    first_run_seconds: float
    rerun_ms: float
    load_average: float


def time_app_page(page: str, reruns: int = APP_RERUNS) -> dict[str, float]:
    """Open ``app.py`` on ``page`` in ``AppTest`` in this process, then move a widget ``reruns`` times.

    AppTest keeps ``st.cache_data`` in memory only; for these runs it reads and writes the ``persist="disk"`` caches
    the way the server does, so a cold start finds what an earlier run stored.

    Returns:
        ``{"first_run_seconds": ..., "rerun_ms": ...}``.

    Raises:
        ExplorerError: unknown page, or the page raised an exception.
    """
    if page not in APP_PAGES:
        raise ExplorerError(f"Unknown page '{page}'; pages: {', '.join(APP_PAGES)}.")
    memory_storage = app_test.MemoryCacheStorageManager
    app_test.MemoryCacheStorageManager = LocalDiskCacheStorageManager
    try:
        app = AppTest.from_file(str(APP_FILE), default_timeout=600)
        app.switch_page(APP_PAGES[page])
        started = perf_counter()
        app.run()
        first = perf_counter() - started
        if app.exception:
            raise ExplorerError(f"The {page} page failed: {app.exception[0].message}")
        times = []
        for move in range(reruns):
            if page == "lab":
                app.slider(key=pca_key("decoder", 0)).set_value(round(0.1 * (move + 1), 1))
            elif page != "voices":  # the Voices page has no such widget: a plain rerun
                app.selectbox(key=_ROW_KEYS[page]).set_value("mean")
            started = perf_counter()
            app.run()
            times.append(perf_counter() - started)
    finally:
        app_test.MemoryCacheStorageManager = memory_storage
    return {"first_run_seconds": round(first, 3), "rerun_ms": round(statistics.median(times) * 1000, 1)}


def _time_page_in_subprocess(page: str) -> AppRow:
    load = load_average_now()
    started = perf_counter()
    # Steady state: no engine loading behind the reruns (a page that speaks would start one, see ui.preload_engine).
    times = last_json_line([sys.executable, "-m", "explorer", "bench", "--app-worker", page], f"The {page} page",
                            {PRELOAD_VARIABLE: "0"})
    return AppRow(page=page, cold_start_seconds=round(perf_counter() - started, 3), load_average=load, **times)


def run_app_benchmark(pages: Sequence[str] = tuple(APP_PAGES),
                      time_page: Callable[[str], AppRow] = _time_page_in_subprocess) -> dict:
    """Time every page's cold start and warm reruns, each page in a new process, after one run that fills the
    on-disk caches (its figures are dropped: a person's first ever visit computes t-SNE once).

    Returns:
        The report: machine and one row per page.
    """
    print("filling the on-disk caches with one unmeasured start…", file=sys.stderr)
    time_page("map")
    rows = []
    for page in pages:
        print(f"timing the {page} page… (load average {load_average_now()})", file=sys.stderr)
        rows.append(time_page(page))
    return {"machine": machine_description(), "app_rows": [asdict(row) for row in rows]}


def format_app_report(report: dict) -> str:
    """Return the app report as a table, one line per page."""
    headers = ["page", "cold start s", "first run s", "warm rerun ms", "load avg"]
    columns = ("cold_start_seconds", "first_run_seconds", "rerun_ms", "load_average")
    cells = [[row["page"], *(table_cell(row[column]) for column in columns)] for row in report["app_rows"]]
    return f"machine: {report['machine']}\n" + text_table(headers, cells)
