"""``bench match``: leave-one-out on a small voice set, every method at every budget judged on held-out sentences
against the held-out voice's own renders, and a report table that says it."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.bench.match import format_match_report, match_command_memory, random_walk, run_match_benchmark
from explorer.match import MATCH_ENGINE, MATCH_SENTENCES, MatchConfig, MatchError, Scorer, Target
from explorer.voices import VoiceSet, save_pack

VOICES = ("am_adam", "am_onyx", "bm_lewis", "bm_george", "af_heart")
SMALL = MatchConfig(mix_voices=2, mix_evaluations=3, decoder_components=2, prosody_components=0)


@pytest.fixture(scope="module")
def engine():
    from explorer.engines import load_engine

    return load_engine(MATCH_ENGINE)


@pytest.fixture(scope="module")
def folder(bundled_voices, tmp_path_factory):
    place = tmp_path_factory.mktemp("voices")
    for name in VOICES:
        save_pack(bundled_voices[name].pack, place / f"{name}.pt")
    return str(place)


@pytest.fixture(scope="module")
def report(engine, folder):
    return run_match_benchmark(engine, folder, held_out=("bm_george",), budgets=(8, 10), config=SMALL)


def test_every_method_is_reported_at_every_budget_for_each_held_out_voice(report):
    rows = report["rows"]
    assert [(row["method"], row["budget"]) for row in rows] == [
        ("best stock voice", 4), ("matcher", 8), ("matcher", 10), ("random walk", 8), ("random walk", 10)]
    assert all(row["voice"] == "bm_george" and row["lang"] == "b" for row in rows)
    assert all(-1 <= row["search"] <= 1 and -1 <= row["held_out"] <= 1 for row in rows)
    assert all(row["wer"] is not None and row["minutes"] >= 0 for row in rows)
    by = {(row["method"], row["budget"]): row for row in rows}
    for method in ("matcher", "random walk"):   # more budget never finds a worse voice on the search sentences
        assert by[(method, 10)]["search"] >= by[(method, 8)]["search"] >= by[("best stock voice", 4)]["search"]


def test_the_report_reads_as_tables_with_a_mean_per_method_and_budget(report):
    text = format_match_report(report)
    assert "mean held-out" in text and "random walk" in text and "best stock voice" in text
    assert report["budgets"] == [8, 10] and report["workers"] == 1 and report["device"] == "cpu"


def test_the_random_walk_keeps_only_steps_that_score_better(engine, bundled_voices):
    reference = VoiceSet([bundled_voices[name] for name in VOICES if name != "bm_george"])
    scorer = Scorer(engine, reference)
    sentences = MATCH_SENTENCES["en"][0][:1]
    target = scorer.embeddings(bundled_voices["bm_george"].pack, sentences)[0]
    told = []
    trail, times = random_walk(scorer, reference["bm_lewis"].pack, sentences, target, 4,
                               observer=lambda steps, best: told.append((steps, best)))
    scores = [score for _, score in trail]
    assert len(trail) == len(times) == 4 and scores == sorted(scores)
    assert told == list(zip(range(1, 5), scores))


def test_a_held_out_voice_that_is_not_there_or_a_budget_below_the_voices_is_refused(engine, folder):
    with pytest.raises(MatchError, match="Cannot hold out 'zz_nobody'"):
        run_match_benchmark(engine, folder, held_out=("zz_nobody",), budgets=(10,))
    with pytest.raises(MatchError, match="must cover the 4 reference voices"):
        run_match_benchmark(engine, folder, held_out=("bm_george",), budgets=(3,))


def test_the_match_command_with_workers_is_run_as_a_person_would_and_its_peak_memory_measured(engine, folder,
                                                                                              bundled_voices):
    """What the memory goal is about: the command, Ray's processes and both workers together, at their peak."""
    scorer = Scorer(engine, bundled_voices, "b")
    target = Target.from_array(np.concatenate([scorer.render(bundled_voices["bm_george"].pack, text, index)
                                               for index, text in enumerate(MATCH_SENTENCES["en"][0])]), 24000)
    entry = match_command_memory(target, "bm_george", 10, 2, folder, "b")
    assert (entry["voice"], entry["budget"], entry["workers"]) == ("bm_george", 10, 2) and entry["minutes"] > 0
    assert entry["command"]["pss_mb"] > 100 and entry["Ray and workers"]["pss_mb"] > 2 * 300   # two engines
    assert entry["total"]["pss_mb"] <= entry["command"]["pss_mb"] + entry["Ray and workers"]["pss_mb"] + 1
    text = format_match_report({"machine": "m", "workers": 2, "random_walk_step": 0.1, "rows": [], "memory": [entry]})
    assert f"`match --workers 2 --budget 10` on bm_george's renders: peak memory {entry['total']['pss_mb']} MB" in text
    with pytest.raises(MatchError, match="The match command failed: .*Cannot exclude 'zz_nobody'"):
        match_command_memory(target, "zz_nobody", 10, 2, folder, "b")
