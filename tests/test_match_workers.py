"""The matcher's workers: Ray actors on this machine score the same candidates in the same order as this process
does, a search on them gives the local search's result, and an address where no cluster answers fails at once."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

from explorer.bench.runs import MemoryPeaks
from explorer.match import MATCH_SENTENCES, LocalEvaluator, MatchConfig, MatchError, ScorerSpec, Target, match_voice
from explorer.match_workers import WORKER_PRIMITIVES_KEPT, RayEvaluator, check_ray_address
from explorer.recipe import Recipe
from explorer.voices import save_pack

REFERENCE = ("am_adam", "am_onyx", "bm_lewis", "af_heart")
SMALL = {"mix_voices": 2, "mix_evaluations": 4, "decoder_components": 2, "prosody_components": 0}


@pytest.fixture(scope="module")
def spec(bundled_voices, tmp_path_factory):
    """Four reference voices in a folder, as a cluster's nodes would load them."""
    folder = tmp_path_factory.mktemp("voices")
    for name in REFERENCE:
        save_pack(bundled_voices[name].pack, folder / f"{name}.pt")
    return ScorerSpec(voices=str(folder))


@pytest.fixture(scope="module")
def local(spec):
    return LocalEvaluator(spec.build())


@pytest.fixture(scope="module")
def workers(spec):
    with RayEvaluator(spec, 2) as evaluator:
        yield evaluator


@pytest.fixture(scope="module")
def target(local, bundled_voices):
    clips = [local.scorer.render(bundled_voices["bm_george"].pack, text, i)
             for i, text in enumerate(MATCH_SENTENCES["en"][0])]
    return Target.from_array(np.concatenate(clips), 24000, "george.wav")


def test_two_workers_start_as_two_processes(workers):
    assert workers.workers == 2 and len(set(workers.pids)) == 2
    peaks = MemoryPeaks({"workers": lambda: workers.pids})
    peaks.sample()
    assert peaks.rounded()["workers"]["pss_mb"] > 2 * 100   # each holds an engine


def test_workers_keep_fewer_compiled_kernels_than_onednns_default(workers):
    """Each worker's oneDNN keeps WORKER_PRIMITIVES_KEPT kernels, not 1024: about 270 MB less each over a search."""
    import ray

    def kept(worker: object) -> str | None:
        return os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")

    assert ray.get([actor.__ray_call__.remote(kept) for actor in workers._actors]) == [str(WORKER_PRIMITIVES_KEPT)] * 2


def test_workers_embed_candidates_in_order_as_this_process_does(workers, local, target):
    recipes = [Recipe.single(name) for name in REFERENCE]
    sentences = MATCH_SENTENCES["en"][0]
    remote = workers.embeddings(recipes, sentences)
    here = local.embeddings(recipes, sentences)
    assert [e.shape for e in remote] == [(len(sentences), 256)] * len(recipes)
    # Each of two workers computes on one of the two cores, where kernels may sum in another order than on two.
    assert np.stack(remote) == pytest.approx(np.stack(here), abs=0.01)
    assert workers.admitted(recipes) == [True] * 4


def test_a_search_on_workers_finds_what_a_local_search_finds(workers, local, target):
    config = MatchConfig(budget=10, **SMALL)
    remote = match_voice(target, workers, REFERENCE, config)
    here = match_voice(target, local, REFERENCE, config)
    assert remote.workers == 2 and remote.evaluations == here.evaluations == 10
    assert remote.best_stock[0] == here.best_stock[0]
    assert remote.similarity == pytest.approx(here.similarity, abs=0.05)
    again = match_voice(target, workers, REFERENCE, config)
    assert (again.recipe, again.similarity) == (remote.recipe, remote.similarity)   # one seed, one worker count


@pytest.mark.parametrize("address", ["nowhere", "host:port", "10.0.0.1:99999", "http://host:6379/x"])
def test_an_address_that_is_not_host_and_port_is_refused(address):
    with pytest.raises(MatchError, match="HOST:PORT"):
        check_ray_address(address)


def test_an_address_where_no_cluster_answers_fails_at_once_with_a_clear_error(spec):
    started = time.perf_counter()
    with pytest.raises(MatchError, match="No Ray cluster answers at '127.0.0.1:9'"):
        RayEvaluator(spec, 2, "127.0.0.1:9")
    assert time.perf_counter() - started < 30


def test_an_address_while_this_process_is_connected_to_ray_is_refused(spec, workers):
    with socket.create_server(("127.0.0.1", 0)) as listening:   # something answers there
        with pytest.raises(MatchError, match="already connected to Ray"):
            RayEvaluator(spec, 1, f"127.0.0.1:{listening.getsockname()[1]}")


def test_workers_ray_has_no_cpu_for_fail_after_a_while_instead_of_waiting_for_ever(spec, workers, monkeypatch):
    monkeypatch.setattr("explorer.match_workers.START_SECONDS", 2.0)
    with pytest.raises(MatchError, match="did not start within 2 s"):
        RayEvaluator(spec, 1)   # the two workers above hold this Ray's two CPUs


@pytest.mark.parametrize("count", [0, -1, 10**6, 1.5, True])
def test_a_worker_count_out_of_range_is_refused(spec, count):
    with pytest.raises(MatchError, match="Workers must be a whole number"):
        RayEvaluator(spec, count)
