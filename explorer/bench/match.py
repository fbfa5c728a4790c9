"""How well the voice matcher finds a voice, leave-one-out: what ``python -m explorer bench match`` measures.

Nothing else here has a ground truth, so each benchmark voice is held out of the reference voices, its renders of
the search sentences are the target, and the found recipe is scored against the held-out voice's own renders of the
held-out sentences (which the search never renders). Per voice it reports the best stock voice (where the search
starts), the matcher at each budget, and a KVoiceWalk-style random walk at the same budgets: from the best stock
voice, Gaussian noise scaled by each cell's spread across the reference voices is added to the whole pack, and a
step is kept when it scores better (the baseline KVoiceWalk reports 0.917 after 10,000 steps).

The matcher's stages do not depend on its budget, so one search to the largest budget gives the exact result of
every smaller one (:meth:`explorer.match.MatchResult.best_within`); the random walk, likewise, is one walk. The
renders a search remembers are forgotten before each held-out voice, so every search is timed from scratch.
With Ray workers it also runs the ``match`` command itself on each held-out voice's renders at the smallest budget,
with as many workers, and reports the peak memory of everything it runs (the command, Ray's processes and the
workers: PSS, shared pages counted once, and RSS) and its minutes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from explorer.bench.runs import MemoryPeaks, machine_description, text_table
from explorer.audio import wav_bytes
from explorer.cache import Progress
from explorer.engines.base import Engine
from explorer.errors import shown
from explorer.match import (
    LocalEvaluator,
    MatchError,
    MatchConfig,
    Scorer,
    ScorerSpec,
    Target,
    forget_renders,
    match_voice,
)
from explorer.match_workers import RayEvaluator
from explorer.meters import RECOGNISED_LANGUAGES, speaker_embedding
from explorer.recipe import Recipe
from explorer.voices import load_voices

__all__ = ["BENCH_BUDGETS", "BENCH_VOICES", "RANDOM_WALK_STEP", "MatchBenchRow", "format_match_report",
           "match_command_memory", "random_walk", "run_match_benchmark"]

BENCH_VOICES = ("af_heart", "am_michael", "bf_emma", "bm_george", "ef_dora")
"""Held out one at a time: both genders, American and British English and Spanish."""
BENCH_BUDGETS = (100, 300, 1000)
"""The budgets reported, in evaluations: all from one search per voice (see the module's docstring)."""
RANDOM_WALK_STEP = 0.1
"""The random walk's step: this share of each cell's standard deviation across the reference voices."""
PAUSE_SECONDS = 0.3
"""Silence between the held-out voice's renders where they are joined into one target recording."""


@dataclass(frozen=True)
class MatchBenchRow:
    """One method at one budget on one held-out voice.

    Attributes:
        voice: the held-out voice; ``lang`` its language code.
        method: "best stock voice", "matcher" or "random walk".
        budget: evaluations allowed (the stock voices' count for the best stock voice).
        search: mean similarity to the target on the search sentences.
        held_out: mean similarity to the held-out voice's own renders of the held-out sentences.
        wer: mean word error rate on the held-out sentences (None where the recogniser does not know the language).
        minutes: time to reach this budget on this machine.
    """

    voice: str
    lang: str
    method: str
    budget: int
    search: float
    held_out: float
    wer: float | None
    minutes: float


def _joined(clips: Sequence[np.ndarray], rate: int) -> np.ndarray:
    pause = np.zeros(int(PAUSE_SECONDS * rate), dtype=np.float32)
    return np.concatenate([part for clip in clips for part in (clip, pause)])


def random_walk(
    scorer: Scorer, start: np.ndarray, sentences: Sequence[str], target: np.ndarray, steps: int, seed: int = 0,
    step: float = RANDOM_WALK_STEP, observer: Callable[[int, float], None] | None = None,
) -> tuple[list[tuple[np.ndarray, float]], list[float]]:
    """Walk from ``start``: add Gaussian noise scaled by ``step`` times each cell's spread across the reference
    voices, keep it when it scores better. ``observer`` is told the steps taken and the best similarity after each.

    Returns:
        After each step, the best pack so far and its similarity; and the seconds to each step.
    """
    rng = np.random.default_rng(seed)
    spread = scorer.voices.packs().std(axis=0)
    best = (np.asarray(start, dtype=np.float32), scorer.pack_similarity(start, sentences, target))
    trail, times, started = [], [], time.perf_counter()
    for _ in range(steps):
        candidate = (best[0] + step * spread * rng.standard_normal(spread.shape)).astype(np.float32)
        score = scorer.pack_similarity(candidate, sentences, target)
        if score > best[1]:
            best = (candidate, score)
        trail.append(best)
        times.append(time.perf_counter() - started)
        if observer is not None:
            observer(len(trail), best[1])
    return trail, times


def run_match_benchmark(
    engine: Engine,
    source: str | None = None,
    held_out: Sequence[str] = BENCH_VOICES,
    budgets: Sequence[int] = BENCH_BUDGETS,
    workers: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    config: MatchConfig | None = None,
    device: str | None = None,
) -> dict:
    """Run the leave-one-out benchmark (see the module's docstring) and return its report: the machine, the
    settings, one row per voice, method and budget, and with ``workers`` above 1 the memory of the driver and its
    Ray workers.

    Args:
        engine: renders in this process (the targets, the random walk, and the matcher when ``workers`` is 1).
        source: where the voices come from (``load_voices``' source; None for the bundled voices); each held-out
            voice is removed from them in turn, here and on every worker.
        held_out: the voices to hold out.
        budgets: the budgets to report, ascending; each must cover the reference voices.
        workers: above 1, the matcher evaluates on that many Ray actors.
        config: the matcher's settings (budget, language and seed are set here).
        device: where the Ray actors' torch engines compute (``engine`` is built by the caller).
    """
    budgets = sorted(budgets)
    voices = load_voices(source)
    unknown = [name for name in held_out if name not in voices]
    if unknown:
        raise MatchError(f"Cannot hold out {', '.join(shown(name) for name in unknown)}: not among the voices.")
    if budgets[0] < len(voices):
        raise MatchError(f"Every budget must cover the {len(voices) - 1} reference voices and go on from there; "
                         f"{budgets[0]} does not.")
    rows: list[MatchBenchRow] = []
    memory: list[dict] = []
    for number, name in enumerate(held_out):
        forget_renders()   # each search from scratch: the stock voices' renders of one would serve the next
        lang = voices[name].language_code or "a"
        spec = ScorerSpec(voices=source, exclude=(name,), lang=lang, seed=seed, device=device)
        scorer = spec.build(engine)
        whole = Scorer(engine, voices, lang, seed)
        settings = MatchConfig(**{**asdict(config or MatchConfig()), "budget": budgets[-1], "lang": lang,
                                  "seed": seed, "minutes": None})
        target = Target.from_array(_joined([whole.render(voices[name].pack, sentence, index) for index, sentence
                                            in enumerate(settings.search_sentences)], 24000), 24000, name)
        held_target = speaker_embedding(_joined([whole.render(voices[name].pack, sentence, index) for index, sentence
                                                 in enumerate(settings.held_out_sentences)], 24000))
        recognise = lang in RECOGNISED_LANGUAGES

        def tell(evaluations: int, similarity: float, method: str, name: str = name, number: int = number) -> None:
            if progress is not None:
                done = (number + evaluations / budgets[-1] / 2 + (method == "random walk") / 2) / len(held_out)
                progress(done, f"{name}: {method} {evaluations}/{budgets[-1]}, best {similarity:.3f}")

        if workers > 1:
            evaluator = RayEvaluator(spec, workers)
        else:
            evaluator = LocalEvaluator(scorer)
        try:
            result = match_voice(target, evaluator, scorer.voices.names, settings,
                                 lambda state: tell(state.evaluations, state.similarity, "matcher"))
        finally:
            close = getattr(evaluator, "close", None)
            if close is not None:
                close()
        stock_name, stock_search = result.best_stock
        stock_count = len(result.stock)
        stock_minutes = result.timeline[stock_count - 1] / 60

        def held(pack: np.ndarray) -> tuple[float, float | None]:
            scores = scorer.pack_sentence_scores(pack, settings.held_out_sentences, held_target, recognise)
            return scores.similarity, scores.wer

        rows.append(MatchBenchRow(name, lang, "best stock voice", stock_count, stock_search,
                                  *held(scorer.pack(Recipe.single(stock_name))), stock_minutes))
        for budget in budgets:
            recipe, search = result.best_within(budget)
            rows.append(MatchBenchRow(name, lang, "matcher", budget, search, *held(scorer.pack(recipe)),
                                      result.timeline[min(budget, result.evaluations) - 1] / 60))
        trail, times = random_walk(scorer, scorer.pack(Recipe.single(stock_name)), settings.search_sentences,
                                   target.embedding, budgets[-1] - stock_count, seed,
                                   observer=lambda steps, best: tell(stock_count + steps, best, "random walk"))
        for budget in budgets:
            pack, search = trail[budget - stock_count - 1]
            rows.append(MatchBenchRow(name, lang, "random walk", budget, search, *held(pack),
                                      stock_minutes + times[budget - stock_count - 1] / 60))
        if workers > 1:
            memory.append(match_command_memory(target, name, budgets[0], workers, source, lang, seed))
    return {
        "machine": machine_description(),
        "workers": workers,
        "device": str(getattr(engine, "device", "cpu")),
        "budgets": budgets,
        "random_walk_step": RANDOM_WALK_STEP,
        "rows": [asdict(row) for row in rows],
        "memory": memory,
    }


def match_command_memory(target: Target, exclude: str, budget: int, workers: int, source: str | None = None,
                         lang: str = "a", seed: int = 0) -> dict:
    """Run the ``match`` command on ``target`` (a held-out voice's renders, without it among the reference voices)
    with ``workers`` Ray workers in a child process, as a person would, and return the peak memory of everything it
    runs: the command itself, and Ray's processes and the workers it starts (PSS and RSS, in MB; see
    :class:`~explorer.bench.runs.MemoryPeaks`), with its minutes.

    Raises:
        MatchError: the command failed; the message ends with its last error line.
    """
    import psutil

    with tempfile.TemporaryDirectory(prefix="bench-match-") as folder:
        recording = Path(folder) / "target.wav"
        recording.write_bytes(wav_bytes(target.audio, target.sample_rate))
        command = [sys.executable, "-m", "explorer", "match", "--target", str(recording), "--budget", str(budget),
                   "--workers", str(workers), "--exclude", exclude, "--lang", lang, "--seed", str(seed),
                   "--out", str(Path(folder) / "found.json"), *(["--voices", source] if source else [])]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def started_by_it() -> list[int]:
            try:
                return [process.pid for process in psutil.Process(child.pid).children(recursive=True)]
            except psutil.Error:   # it has ended
                return []

        with MemoryPeaks({"command": lambda: [child.pid], "Ray and workers": started_by_it}) as peaks:
            _, errors = child.communicate()
    if child.returncode != 0:
        last = errors.strip().splitlines()[-1] if errors.strip() else f"exit status {child.returncode}"
        raise MatchError(f"The match command failed: {shown(last, 300)}")
    return {"voice": exclude, "budget": budget, "workers": workers,
            "minutes": round((time.perf_counter() - started) / 60, 2), **peaks.rounded()}


def format_match_report(report: dict) -> str:
    """Return the report as plain-text tables: every row, then the mean per method and budget."""
    rows = report["rows"]
    lines = [report["machine"], f"device: {report.get('device', 'cpu')}; workers: {report['workers']}; random walk "
             f"step {report['random_walk_step']}", ""]
    lines.append(text_table(["voice", "method", "budget", "search", "held-out", "WER", "minutes"],
                            [[r["voice"], r["method"], str(r["budget"]), f"{r['search']:.3f}", f"{r['held_out']:.3f}",
                              "-" if r["wer"] is None else f"{r['wer']:.3f}", f"{r['minutes']:.1f}"] for r in rows]))
    lines.append("")
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:   # the best stock voice has no budget of its own: its count is the reference voices'
        groups.setdefault((r["method"], "-" if r["method"] == "best stock voice" else str(r["budget"])), []).append(r)
    means = []
    for (method, budget), chosen in groups.items():
        wers = [r["wer"] for r in chosen if r["wer"] is not None]
        means.append([method, budget, str(len(chosen)), f"{np.mean([r['held_out'] for r in chosen]):.3f}",
                      f"{np.mean(wers):.3f}" if wers else "-", f"{np.mean([r['minutes'] for r in chosen]):.1f}"])
    lines.append(text_table(["method", "budget", "voices", "mean held-out", "mean WER", "mean minutes"], means))
    for entry in report.get("memory", []):
        lines.append(f"`match --workers {entry['workers']} --budget {entry['budget']}` on {entry['voice']}'s renders: "
                     f"peak memory {entry['total']['pss_mb']} MB in all (PSS; the command "
                     f"{entry['command']['pss_mb']} MB, Ray and its workers {entry['Ray and workers']['pss_mb']} MB), "
                     f"RSS {entry['total']['rss_mb']} MB; {entry['minutes']:.1f} minutes")
    return "\n".join(lines)
