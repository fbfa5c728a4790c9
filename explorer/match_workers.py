"""Score the matcher's candidates in parallel on Ray actors: worker processes on this machine (``--workers N``) or
on a Ray cluster (``--ray ADDRESS``). Ray places the actors and carries the work; nothing here schedules.

Each actor builds its own :class:`explorer.match.Scorer` from a :class:`explorer.match.ScorerSpec` (the reference
voices, the offline model and the meters load on the node), and candidates are dealt out round-robin, their
results gathered in order, so a search gives the same result for a seed and worker count wherever it runs.

A node of a cluster needs what ``make setup`` installs (requirements.txt and requirements-meters.txt, the same
versions as the driver) and the offline model assembled once (``python -m explorer check`` does it).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

import numpy as np

from explorer.engines.base import physical_cores
from explorer.errors import shown
from explorer.match import MatchError, Scorer, ScorerSpec, SentenceScores
from explorer.recipe import Recipe

__all__ = ["CONNECT_SECONDS", "MAX_WORKERS", "START_SECONDS", "WORKER_PRIMITIVES_KEPT", "RayEvaluator",
           "check_ray_address", "check_workers"]

MAX_WORKERS = 256
"""The most actors a search starts."""
CONNECT_SECONDS = 5.0
"""How long a Ray address has to answer before the matcher says it cannot be reached (``ray.init`` alone would wait
far longer)."""
START_SECONDS = 600.0
"""How long the workers have to start (each loads the voices, the model and the meters: about 10 s on an idle
2-core node) before the matcher says so: Ray keeps an actor waiting for as long as no node has a CPU free for it."""
WORKER_PRIMITIVES_KEPT = 256
"""How many compiled oneDNN kernels (one per convolution and input shape) a worker keeps, unless
``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` is set: oneDNN's default of 1024 grew each worker by about 270 MB over a search,
as every utterance length compiles its own. Measured with `match --workers 2` (100 evaluations, 2 cores): the peak
of everything the command runs fell from 3.51 to 2.88-3.02 GB (PSS, four runs) for about 3.5 % more time and the
same result; 8 kept costs 65 % more time for timbre-only candidates, whose shapes repeat."""


def check_workers(workers: object) -> int:
    """Return ``workers`` once it is a whole number from 1 to ``MAX_WORKERS``.

    Raises:
        MatchError: it is not.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise MatchError(f"Workers must be a whole number from 1 to {MAX_WORKERS}, not {shown(workers)}.")
    return workers


def check_ray_address(address: str) -> tuple[str, int]:
    """Return the host and port of a Ray address (``HOST:PORT`` or ``ray://HOST:PORT``) once something there accepts
    a connection within ``CONNECT_SECONDS``.

    Raises:
        MatchError: not such an address, or nothing answers there.
    """
    text = str(address).strip()
    bare = text.removeprefix("ray://")
    host, _, port = bare.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in bare:
        raise MatchError(f"A Ray address is HOST:PORT or ray://HOST:PORT (e.g. 10.0.0.5:6379), not {shown(text)}.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as error:
        raise MatchError(f"No Ray cluster answers at {shown(text)} ({shown(error.strerror or error, 80)}): start one "
                         f"there with `ray start --head`, or leave --ray out to run on this machine.") from None
    return host, int(port)


class _Worker:
    """What one Ray actor holds: a scorer, built on the node."""

    def __init__(self, spec: ScorerSpec, threads: int):
        import torch

        self.scorer: Scorer = spec.build()
        if threads:
            torch.set_num_threads(threads)

    def ready(self) -> int:
        return os.getpid()

    def embeddings(self, recipe: Recipe, sentences: Sequence[str]) -> np.ndarray:
        return self.scorer.recipe_embeddings(recipe, sentences)

    def admits(self, recipe: Recipe) -> bool:
        return self.scorer.admits(recipe)

    def sentence_scores(self, recipe: Recipe, sentences: Sequence[str], target: np.ndarray,
                        recognise: bool) -> SentenceScores:
        return self.scorer.sentence_scores(recipe, sentences, target, recognise)


class RayEvaluator:
    """Scores candidates on ``workers`` Ray actors, in order. Use it as a context manager, or call :meth:`close`.

    Args:
        spec: how each actor builds its scorer.
        workers: how many actors (1 to ``MAX_WORKERS``).
        address: a Ray cluster's ``HOST:PORT`` or ``ray://HOST:PORT``; None starts Ray on this machine with
            ``workers`` CPUs, each actor computing on its share of the physical cores, or uses the Ray this process
            is already connected to.

    With ``spec.device`` a GPU, each actor asks Ray for a ``1 / workers`` share of one, so they share a GPU.

    Raises:
        MatchError: a worker count out of range, an address that does not answer or while this process is already
            connected to Ray, or workers that fail to start (the first one's error is given) or do not start within
            ``START_SECONDS``.
    """

    def __init__(self, spec: ScorerSpec, workers: int, address: str | None = None):
        check_workers(workers)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Ray lowers its workers' priority (nice 15) so its own services stay responsive; here the workers are the
        # search, and at nice 15 anything else on the machine (a Streamlit server, another job) starves them.
        os.environ.setdefault("RAY_worker_niceness", "0")
        import ray

        self.workers = workers
        if address is not None:
            check_ray_address(address)
            if ray.is_initialized():
                raise MatchError(f"This process is already connected to Ray, so it cannot connect to "
                                 f"{shown(address)}: leave the address out to use that connection.")
        self._started = not ray.is_initialized()
        kept = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(WORKER_PRIMITIVES_KEPT))
        environment = {"env_vars": {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": kept}}
        if self._started:   # the job's environment: Ray's prestarted workers have it, so the actors reuse them
            if address is not None:
                ray.init(address=address, log_to_driver=False, runtime_env=environment)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=environment)
        threads = 0 if address is not None else max(1, physical_cores() // workers)
        gpus = 1 / workers if spec.device and spec.device.startswith("cuda") else 0
        own = {} if self._started else {"runtime_env": environment}   # joining a Ray started elsewhere
        actor = ray.remote(num_cpus=1, num_gpus=gpus, **own)(_Worker)
        self._actors = [actor.remote(spec, threads) for _ in range(workers)]
        try:
            self.pids = ray.get([worker.ready.remote() for worker in self._actors], timeout=START_SECONDS)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise MatchError(f"The matcher's {workers} workers did not start within {START_SECONDS:.0f} s: Ray "
                             "starts each on a free CPU, and the cluster may have fewer free than that.") from None
        except Exception as error:  # a worker's own error, wrapped by Ray
            self.close()
            cause = getattr(error, "cause", None) or error
            raise MatchError(f"The matcher's workers could not start: {shown(cause, 300)}") from None

    def _map(self, method: str, items: Sequence[Any], *args: Any, spread: bool = True) -> list:
        """Call ``method`` of the actors on each item, round-robin (``spread``) or all on the first; return the
        results in order."""
        import ray

        actors = self._actors if spread else self._actors[:1]
        futures = [getattr(actors[i % len(actors)], method).remote(item, *args) for i, item in enumerate(items)]
        return ray.get(futures)

    def embeddings(self, recipes: Sequence[Recipe], sentences: Sequence[str]) -> list[np.ndarray]:
        return self._map("embeddings", recipes, tuple(sentences))

    def admitted(self, recipes: Sequence[Recipe]) -> list[bool]:
        return self._map("admits", recipes)

    def sentence_scores(self, recipes: Sequence[Recipe], sentences: Sequence[str], target: np.ndarray,
                        recognise: bool) -> list[SentenceScores]:
        # The recogniser is loaded where it first runs, so one worker judges what is transcribed: one copy in memory.
        return self._map("sentence_scores", recipes, tuple(sentences), target, recognise, spread=not recognise)

    def close(self) -> None:
        """Stop the actors, and Ray itself where this evaluator started it."""
        import ray

        for worker in getattr(self, "_actors", []):
            ray.kill(worker)
        self._actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
