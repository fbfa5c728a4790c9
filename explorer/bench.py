"""Benchmarks, not tests: ``python -m explorer bench [synth|quality] [--json]``.

Each engine configuration runs in its own process, so its peak memory is its own. A worker renders a fixed
corpus with two stock voices and reports real-time factor (engine seconds per second of audio), time to first
audio for a two-sentence text (first chunk rendered while the rest waits), replay time from the audio cache, and
peak resident memory. ``quality`` then measures every configuration's renders with the meters: word error rate
against the corpus text, and speaker similarity to the same sentence rendered by the reference (first)
configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter

import numpy as np

from explorer.errors import ExplorerError

CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells seashells by the seashore, and the shells she sells are surely seashells.",
    "Kokoro is an open-weight text to speech model with eighty two million parameters.",
    "On a cold winter morning, the old train station was quiet except for the ticking clock.",
    "Please remember to water the plants on Tuesday, before the guests arrive for dinner.",
)
TWO_SENTENCES = "Hello there, and welcome to the voice explorer. Move a slider and listen to what changes."
BENCH_VOICES = ("af_heart", "am_adam")
FIRST_CHUNK_PHONEMES = 60


@dataclass(frozen=True)
class BenchRow:
    """One configuration's figures (quality columns are None until ``quality`` fills them)."""

    config: str
    engine: str
    weights: str
    load_seconds: float
    audio_seconds: float
    compute_seconds: float
    rtf: float
    first_audio_seconds: float
    replay_ms: float
    peak_rss_mb: float
    wer: float | None = None
    similarity_to_reference: float | None = None


def engine_configs() -> dict[str, Callable[[], object]]:
    """Return the engine configurations that can run here, by name, each as a function building the engine."""
    from explorer.engines import available_engines, load_engine

    configs: dict[str, Callable[[], object]] = {}
    for kind, _ in available_engines():
        if kind == "onnx":
            configs["onnx-int8"] = lambda: load_engine("onnx")
        elif kind == "torch":
            configs["torch-fp32"] = lambda: load_engine("torch")
    return configs


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(config: str, renders: Path | None) -> BenchRow:
    """Measure one configuration in this process; save each corpus render to ``renders`` when given."""
    from explorer.audio import AudioCache, audio_cache_key, wav_bytes
    from explorer.synth import synthesize, synthesize_stream
    from explorer.voices import load_bundled

    configs = engine_configs()
    if config not in configs:
        raise ExplorerError(f"Configuration '{config}' is not available here; available: {', '.join(configs)}.")
    voices = load_bundled()
    started = perf_counter()
    engine = configs[config]()
    load_seconds = perf_counter() - started
    synthesize(CORPUS[0], style=voices[BENCH_VOICES[0]].pack, engine=engine)  # warm-up, off the clock
    audio_seconds = compute_seconds = 0.0
    cache = AudioCache()
    for voice in BENCH_VOICES:
        for index, sentence in enumerate(CORPUS):
            result = synthesize(sentence, style=voices[voice].pack, engine=engine)
            audio_seconds += result.seconds
            compute_seconds += result.compute_seconds
            key = audio_cache_key(engine.name, engine.weights, result.phonemes, voices[voice].pack, 1.0)
            cache.put(key, result.audio)
            if renders is not None:
                np.save(renders / f"{voice}-{index}.npy", result.audio)
    started = perf_counter()
    next(iter(synthesize_stream(TWO_SENTENCES, style=voices[BENCH_VOICES[0]].pack, engine=engine,
                                first_chunk_phonemes=FIRST_CHUNK_PHONEMES)))
    first_audio = perf_counter() - started
    started = perf_counter()
    wav_bytes(cache.get(key))
    replay_ms = (perf_counter() - started) * 1000
    return BenchRow(
        config=config,
        engine=engine.name,
        weights=engine.weights,
        load_seconds=round(load_seconds, 3),
        audio_seconds=round(audio_seconds, 3),
        compute_seconds=round(compute_seconds, 3),
        rtf=round(compute_seconds / audio_seconds, 4),
        first_audio_seconds=round(first_audio, 3),
        replay_ms=round(replay_ms, 2),
        peak_rss_mb=round(_peak_rss_mb(), 1),
    )


def _run_in_subprocess(config: str, renders: Path) -> BenchRow:
    command = [sys.executable, "-m", "explorer", "bench", "--worker", config, "--renders", str(renders)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise ExplorerError(f"Benchmark of '{config}' failed: {done.stderr.strip().splitlines()[-1:]}")
    return BenchRow(**json.loads(done.stdout.strip().splitlines()[-1]))


def add_quality(rows: list[BenchRow], folders: dict[str, Path]) -> list[BenchRow]:
    """Return ``rows`` with word error rate and similarity to the first configuration's renders filled in."""
    from explorer.meters import speaker_similarity, transcribe, word_error_rate

    reference = rows[0].config
    result = []
    for row in rows:
        errors, similarities = [], []
        for voice in BENCH_VOICES:
            for index, sentence in enumerate(CORPUS):
                audio = np.load(folders[row.config] / f"{voice}-{index}.npy")
                errors.append(word_error_rate(sentence, transcribe(audio)))
                reference_audio = np.load(folders[reference] / f"{voice}-{index}.npy")
                similarities.append(speaker_similarity(audio, reference_audio))
        result.append(
            BenchRow(**(asdict(row) | {
                "wer": round(float(np.mean(errors)), 4),
                "similarity_to_reference": round(float(np.mean(similarities)), 4),
            }))
        )
    return result


def machine_description() -> str:
    """Return the CPU model and core count the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def format_table(rows: list[BenchRow]) -> str:
    """Return the rows as a fixed-width text table."""
    columns = ["config", "rtf", "first_audio_seconds", "replay_ms", "peak_rss_mb", "load_seconds", "wer",
               "similarity_to_reference"]
    headers = ["config", "RTF", "first audio s", "replay ms", "peak MB", "load s", "WER", "sim. to ref"]
    cells = [[("-" if getattr(r, c) is None else str(getattr(r, c))) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run_benchmarks(quality: bool) -> dict:
    """Run every available configuration in its own process; with ``quality``, add the meters' columns."""
    configs = list(engine_configs())
    if not configs:
        raise ExplorerError("No speech engine is available here: install requirements.txt (make run).")
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as scratch:
        folders = {name: Path(scratch) / name for name in configs}
        rows = []
        for name in configs:
            folders[name].mkdir()
            print(f"benchmarking {name}…", file=sys.stderr)
            rows.append(_run_in_subprocess(name, folders[name]))
        if quality:
            print("measuring quality (whisper, resemblyzer)…", file=sys.stderr)
            rows = add_quality(rows, folders)
    return {
        "machine": machine_description(),
        "corpus_sentences": len(CORPUS),
        "voices": list(BENCH_VOICES),
        "reference": rows[0].config,
        "rows": [asdict(row) for row in rows],
    }


def cmd_bench(args: argparse.Namespace) -> None:
    if args.worker:
        renders = Path(args.renders) if args.renders else None
        print(json.dumps(asdict(run_worker(args.worker, renders))))
        return
    report = run_benchmarks(quality=args.what in ("quality", "all"))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {report['machine']}")
    print(f"corpus: {report['corpus_sentences']} sentences x voices {', '.join(report['voices'])}; "
          f"quality reference: {report['reference']}")
    print(format_table([BenchRow(**row) for row in report["rows"]]))


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the command line."""
    bench = commands.add_parser("bench", help="benchmark speed, memory and quality of each engine configuration")
    bench.add_argument("what", nargs="?", choices=("synth", "quality", "all"), default="all",
                       help="synth: speed and memory; quality: also WER and similarity (default: all)")
    bench.add_argument("--json", action="store_true", help="print JSON for machines")
    bench.add_argument("--worker", help=argparse.SUPPRESS)
    bench.add_argument("--renders", help=argparse.SUPPRESS)
    bench.set_defaults(handler=cmd_bench)
