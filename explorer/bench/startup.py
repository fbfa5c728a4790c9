"""Start-up: from process start to an engine ready to render, by part, in fresh processes: ``python -m explorer bench
startup``.

Every fresh process pays it: a CLI call, a restarted app server, a Community Cloud app waking up, each worker of a
search. One worker process per configuration and round, the configurations taking turns (the order rotated every
round), each timed by its parent from the moment it is started until it says it is ready, so the interpreter's own
start counts. The worker also times its parts: its start (the interpreter and the explorer's engine code, up to its
first line), importing torch (the ONNX engine does not), the engine's own load parts
(:attr:`~explorer.engines.Engine.load_seconds`), and then two renders of the same sentence: the first pays the
runtime's one-time costs that :meth:`~explorer.engines.base.Engine.warm_up` moves off the path to the first sound,
the second does not.

``torch-bf16:modules`` is the engine as it was before it ran traced graphs: kokoro and transformers imported and
kokoro's modules built in every process (``TorchEngine(traced=False)``, the same audio).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from explorer.bench.runs import (
    load_average_now,
    load_engine_once,
    machine_description,
    peak_rss_mb,
    rotated,
    table_cell,
    text_table,
)
from explorer.engines import (
    DEFAULT_TORCH_PRECISION,
    TorchEngine,
    load_engine,
    runnable_precision,
    torch_precision,
)
from explorer.engines.model_files import offline_packages_installed
from explorer.errors import ExplorerError
from explorer.paths import VOICES_DIR
from explorer.voices import load_file

__all__ = [
    "STARTUP_SENTENCE",
    "StartupRun",
    "default_startup_configs",
    "format_startup_report",
    "run_startup_benchmark",
    "startup_worker",
]

STARTUP_SENTENCE = "ðə kwˈɪk bɹˈWn fˈɑks dʒˈʌmps ˌOvəɹ ðə lˈAzi dˈɔɡ."
"""What each worker renders twice, as phonemes: the first bench sentence, so no text converter loads."""
MODULES_SUFFIX = ":modules"
"""Appended to a torch configuration: kokoro's modules built in the process instead of the cached traced graphs."""


@dataclass(frozen=True)
class StartupRun:
    """One worker process's figures, in seconds (peak memory in MB).

    Attributes:
        config: the configuration, e.g. ``torch-bf16`` or ``torch-bf16:modules``.
        ready_seconds: from starting the process to the engine being ready to render, timed by the parent.
        parts: in order: ``start`` (the interpreter and the explorer's engine code imported, up to the worker's
            first line), ``import torch`` (torch configurations), then the engine's load parts.
        first_render_seconds: the first render of ``STARTUP_SENTENCE`` (one-time runtime costs included).
        second_render_seconds: the same render again.
        ready_peak_mb: the process's peak memory when it was ready.
        peak_mb: its peak memory after both renders.
    """

    config: str
    ready_seconds: float
    parts: dict[str, float] = field(default_factory=dict)
    first_render_seconds: float = 0.0
    second_render_seconds: float = 0.0
    ready_peak_mb: float = 0.0
    peak_mb: float = 0.0


def default_startup_configs() -> list[str]:
    """The configurations compared by default here: torch in its default precision, before and after, and the int8
    ONNX engine when the offline model's packages are installed."""
    torch_config = f"torch-{runnable_precision(DEFAULT_TORCH_PRECISION)}"
    return [f"{torch_config}{MODULES_SUFFIX}", torch_config, *(["onnx-int8"] if offline_packages_installed() else [])]


def startup_worker(config: str, spawned_at: float) -> None:
    """Measure one configuration in this fresh process, started at ``spawned_at`` (``time.time()`` in its parent):
    print ``ready`` the moment its engine is, then its parts as JSON on the last line (run by
    :func:`run_startup_benchmark`, not by hand)."""
    parts = {"start": time.time() - spawned_at}
    kind, _, variant = config.partition(":")
    if kind.startswith("torch"):
        mark = time.perf_counter()
        import torch  # noqa: F401  (timed: every torch process pays it)

        parts["import torch"] = time.perf_counter() - mark
    if variant == "modules":
        engine = TorchEngine(precision=torch_precision(kind), traced=False)
    else:
        engine = load_engine(kind)
    parts.update(engine.load_seconds)
    ready_peak = peak_rss_mb()
    print("ready", flush=True)
    pack = load_file(VOICES_DIR / "af_heart.bin")[0].pack
    renders = []
    for _ in range(2):
        mark = time.perf_counter()
        engine.render(STARTUP_SENTENCE, pack)
        renders.append(time.perf_counter() - mark)
    print(json.dumps({"parts": {name: round(seconds, 3) for name, seconds in parts.items()},
                      "first_render_seconds": round(renders[0], 3), "second_render_seconds": round(renders[1], 3),
                      "ready_peak_mb": round(ready_peak), "peak_mb": round(peak_rss_mb())}))


def _run_worker(config: str) -> StartupRun:
    """Start a worker for ``config`` and time it to its ``ready`` line; return its figures."""
    spawned_at = time.time()
    command = [sys.executable, "-c",
               f"from explorer.bench.startup import startup_worker; startup_worker({config!r}, {spawned_at!r})"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = None
    lines = []
    for line in process.stdout:
        if line.strip() == "ready" and ready is None:
            ready = time.perf_counter() - started
        lines.append(line)
    error = process.stderr.read()
    if process.wait() != 0 or ready is None:
        raise ExplorerError(f"The start-up worker for {config} failed: {error.strip().splitlines()[-1:]}")
    figures = json.loads(lines[-1])
    return StartupRun(config=config, ready_seconds=round(ready, 3), **figures)


def run_startup_benchmark(
    configs: Sequence[str] | None = None, rounds: int = 3, prepare: Callable[[str], None] = load_engine_once
) -> dict:
    """Time every configuration ``rounds`` times in fresh processes, taking turns; return the report
    (:func:`format_startup_report` prints it): each configuration's median figures and every run.

    Each engine kind is loaded once first by ``prepare``, unmeasured, so a torch engine's graphs are traced and
    cached if they were not (once per machine) and every measured run finds them, as every process after the first
    does.

    Raises:
        ExplorerError: a worker failed (its last error line is in the message).
    """
    configs = list(configs or default_startup_configs())
    load_before = load_average_now()
    for kind in dict.fromkeys(config.partition(":")[0] for config in configs):
        prepare(kind)
    runs: list[StartupRun] = []
    for turn in range(rounds):
        runs.extend(_run_worker(config) for config in rotated(configs, turn))
    medians = {}
    for config in configs:
        own = [run for run in runs if run.config == config]
        part_names = list(dict.fromkeys(name for run in own for name in run.parts))
        medians[config] = {
            "ready_seconds": statistics.median(run.ready_seconds for run in own),
            "parts": {name: statistics.median(run.parts.get(name, 0.0) for run in own) for name in part_names},
            "first_render_seconds": statistics.median(run.first_render_seconds for run in own),
            "second_render_seconds": statistics.median(run.second_render_seconds for run in own),
            "ready_peak_mb": statistics.median(run.ready_peak_mb for run in own),
            "peak_mb": statistics.median(run.peak_mb for run in own),
        }
    return {"machine": machine_description(), "rounds": rounds, "load_average": (load_before, load_average_now()),
            "sentence": STARTUP_SENTENCE, "medians": medians, "runs": [asdict(run) for run in runs]}


def format_startup_report(report: dict) -> str:
    """Return the report as people read it: one row per configuration (medians), its parts, and the setting."""
    medians = report["medians"]
    part_names = list(dict.fromkeys(name for figures in medians.values() for name in figures["parts"]))
    headers = ["config", "ready s", *(f"{name} s" for name in part_names), "1st render s", "2nd render s",
               "peak MB at ready", "peak MB"]
    rows = [[config, table_cell(figures["ready_seconds"]),
             *(table_cell(figures["parts"].get(name)) for name in part_names),
             table_cell(figures["first_render_seconds"]), table_cell(figures["second_render_seconds"]),
             table_cell(figures["ready_peak_mb"]), table_cell(figures["peak_mb"])]
            for config, figures in medians.items()]
    load = report["load_average"]
    return "\n".join([
        f"Start-up in fresh processes, medians of {report['rounds']} rounds taking turns: {report['machine']}; "
        f"load average {load[0]} -> {load[1]}",
        "ready: from starting the process to the engine ready to render (interpreter start and imports included); "
        "the renders speak one sentence (2.4 s of speech), the second after the first.",
        text_table(headers, rows),
    ])
