"""The engines' benchmark, not a test: ``python -m explorer bench [synth|quality|all] [--configs A,B] [--json]``.

The machine these figures come from is usually shared, so the bench has two phases:

1. Each engine configuration runs alone in its own process, so its peak memory is its own: it loads the engine,
   renders a fixed corpus with two stock voices (kept for the quality meters, and timed in CPU seconds per second of
   audio, which other work disturbs less than wall time), and times a replay from the audio cache.
2. One process loads every configuration and takes turns between them, sentence by sentence: real-time factor
   (engine seconds per second of audio), the median time of each render relative to the reference's render of the
   same sentence moments before or after, and time to first audio for a two-sentence text (first chunk kept short,
   rendered while the rest waits) at several first-chunk sizes. Taking turns makes the comparison fair when the
   load changes during the run; the load average is reported with each row.

``quality`` then measures every configuration's renders with the meters: word error rate against the corpus text,
and speaker similarity to the same sentence rendered by the reference configuration (the official int8 model as it
is); the reference's own figure is its similarity to a second render of itself (1.0 when the model is
deterministic, as the official ONNX export is; below 1 for torch, whose vocoder draws random noise).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter, process_time

import numpy as np

from explorer.audio import AudioCache, audio_cache_key, wav_bytes
from explorer.bench.runs import (
    last_json_line,
    load_average_now,
    load_engine_once,
    machine_description,
    peak_rss_mb,
    rotated,
    table_cell,
    text_table,
)
from explorer.engines import (
    DEFAULT_ONNX_VARIANT,
    DEFAULT_TORCH_PRECISION,
    TORCH_PRECISIONS,
    Engine,
    OnnxEngine,
    auto_kind,
    available_engines,
    load_engine,
    onnx_variant,
    runnable_precision,
    torch_precision,
)
from explorer.errors import ExplorerError
from explorer.synth import FIRST_CHUNK_PHONEMES, prepare, synthesize, synthesize_stream
from explorer.voices import load_bundled

__all__ = [
    "BenchRow",
    "Turns",
    "compare_speed",
    "default_config",
    "engine_configs",
    "format_first_audio",
    "format_report",
    "format_table",
    "run_benchmarks",
    "run_worker",
    "timbre_edit",
]

CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells seashells by the seashore, and the shells she sells are surely seashells.",
    "Kokoro is an open-weight text to speech model with eighty two million parameters.",
    "On a cold winter morning, the old train station was quiet except for the ticking clock.",
    "Please remember to water the plants on Tuesday, before the guests arrive for dinner.",
)
TWO_SENTENCES = "Hello there, and welcome to the voice explorer. Move a slider and listen to what changes."
BENCH_VOICES = ("af_heart", "am_adam")
FIRST_CHUNK_SWEEP = (20, 60, 0)
"""First-chunk sizes timed (in phonemes): 20 makes the two-sentence text start with its first clause ("Hello
there,"), 60 with its first sentence, 0 (no short first chunk) renders both sentences as one chunk."""
SWEEP_REPEATS = 3
COMPARE_ROUNDS = 2
"""Times the comparison phase renders the corpus with every configuration, taking turns."""
REFERENCE_CONFIG = "onnx-int8"
"""Quality is measured against this configuration: the official int8 model run as it is."""
REPEAT_FOLDER = "repeat"


@dataclass(frozen=True)
class BenchRow:
    """One configuration's figures (quality columns are None until :func:`add_quality` fills them).

    Attributes:
        config: configuration name, e.g. "onnx-int8".
        engine: the engine's name ("torch" or "onnx").
        weights: the engine's weights description (says which variant ran).
        default: True for the configuration ``load_engine("auto")`` builds on this machine.
        load_seconds: time to build the engine alone, what a first load builds once per machine (the offline model
            assembled, its weights imported, a torch engine's traced graphs) already built.
        cpu_rtf: CPU seconds of the worker process per second of corpus audio (all threads), alone.
        replay_ms: the slowest replay of a rendered sentence from the audio cache as WAV bytes, alone.
        peak_rss_mb: the worker's peak resident memory, alone.
        rtf: engine seconds per second of audio over the corpus, taking turns with the other configurations.
        edit_rtf: the same for a render right after the same sentence's with the decoder half of the style changed
            (:func:`timbre_edit`: a timbre slider moved), once over the corpus; the torch engine reuses the
            prosody then.
        time_vs_reference: median over the corpus of this configuration's render time divided by the reference's
            for the same sentence in the same turn (below 1: faster); None without a reference in the run.
        first_audio_seconds: median time to the first chunk of ``TWO_SENTENCES``, text conversion included, with
            ``FIRST_CHUNK_PHONEMES``, taking turns.
        first_audio_by_chunk: the same per first-chunk size (``FIRST_CHUNK_SWEEP``; "0": no short first chunk).
        load_average: the machine's 1-minute load average when this configuration's worker started and when the
            comparison phase ended.
        wer: mean word error rate over the corpus renders.
        similarity_to_reference: mean speaker similarity to the reference configuration's renders (the
            reference: to a second render of itself).
    """

    config: str
    engine: str
    weights: str
    default: bool
    load_seconds: float
    cpu_rtf: float
    replay_ms: float
    peak_rss_mb: float
    rtf: float | None = None
    edit_rtf: float | None = None
    time_vs_reference: float | None = None
    first_audio_seconds: float | None = None
    first_audio_by_chunk: dict[str, float] = field(default_factory=dict)
    load_average: tuple[float, float] = (0.0, 0.0)
    wer: float | None = None
    similarity_to_reference: float | None = None

    @classmethod
    def from_json(cls, data: dict) -> BenchRow:
        """Rebuild a row from its ``asdict`` JSON form."""
        return cls(**{**data, "load_average": tuple(data.get("load_average", (0.0, 0.0)))})


@dataclass(frozen=True)
class Turns:
    """What the comparison phase measured for one configuration (see :func:`compare_speed`)."""

    rtf: float
    edit_rtf: float
    time_vs_reference: float | None
    first_audio_seconds: float
    first_audio_by_chunk: dict[str, float]
    load_average: float


def engine_configs() -> dict[str, Callable[[], Engine]]:
    """Return the engine configurations that can run here, by name, each as a function building the engine.

    ``onnx-int8`` (the official int8 model as it is, the quality reference), ``onnx-int8-spinning`` (the same with
    onnxruntime's spinning worker threads, its default), ``onnx-float`` (the float rewrite of the same weights) and
    ``torch-fp32`` and ``torch-bf16`` (where the CPU computes bf16 natively) when torch has weights here: the Hub's
    ``kokoro-v1_0.pth`` from the Hugging Face cache, else the offline int8 model's weights imported into KModel.
    """
    kinds = {kind for kind, _ in available_engines()}
    configs: dict[str, Callable[[], Engine]] = {}
    if "onnx-int8" in kinds:
        configs["onnx-int8"] = lambda: load_engine("onnx-int8")
        configs["onnx-int8-spinning"] = lambda: OnnxEngine(
            variant="int8", session_config={"session.intra_op.allow_spinning": "1"}
        )
    if "onnx-float" in kinds:
        configs["onnx-float"] = lambda: load_engine("onnx-float")
    for precision in TORCH_PRECISIONS:
        if f"torch-{precision}" in kinds:
            configs[f"torch-{precision}"] = lambda kind=f"torch-{precision}": load_engine(kind)
    return configs


def default_config() -> str:
    """Name of the configuration ``load_engine("auto")`` builds here."""
    kind = auto_kind()
    if kind.startswith("onnx"):
        return f"onnx-{onnx_variant(kind) or DEFAULT_ONNX_VARIANT}"
    return f"torch-{runnable_precision(torch_precision(kind) or DEFAULT_TORCH_PRECISION)}"


def _first_audio_seconds(engine: Engine, style: np.ndarray, first_chunk_phonemes: int | None) -> float:
    """Time from asking for ``TWO_SENTENCES`` to holding its first chunk's audio (text conversion included)."""
    engine.clear_cache()
    started = perf_counter()
    next(iter(synthesize_stream(TWO_SENTENCES, style=style, engine=engine,
                                first_chunk_phonemes=first_chunk_phonemes or None)))
    return perf_counter() - started


def run_worker(
    config: str,
    renders: Path | None = None,
    repeat: bool = False,
    configs: dict[str, Callable[[], Engine]] | None = None,
) -> BenchRow:
    """Measure one configuration alone in this process: load time, CPU time, replay time and peak memory.

    Args:
        config: the configuration's name.
        renders: when given, each corpus render is saved there as ``<voice>-<index>.npy``.
        repeat: render the corpus a second time into ``renders/repeat`` (the reference's noise floor).
        configs: the configurations to choose from; :func:`engine_configs` by default.

    Returns:
        The row, without the comparison phase's figures (``rtf`` and the first-audio times are None).

    Raises:
        ExplorerError: the configuration is not available here.
    """
    configs = engine_configs() if configs is None else configs
    if config not in configs:
        raise ExplorerError(f"Configuration '{config}' is not available here; available: {', '.join(configs)}.")
    load_start = load_average_now()
    voices = load_bundled()
    started = perf_counter()
    engine = configs[config]()
    load_seconds = perf_counter() - started
    synthesize(CORPUS[0], style=voices[BENCH_VOICES[0]].pack, engine=engine)  # warm-up, off the clock
    audio_seconds = 0.0
    cache = AudioCache()
    keys = []
    cpu_started = process_time()
    for voice in BENCH_VOICES:
        for index, sentence in enumerate(CORPUS):
            engine.clear_cache()
            result = synthesize(sentence, style=voices[voice].pack, engine=engine)
            audio_seconds += result.seconds
            keys.append(audio_cache_key(engine.name, engine.weights, result.phonemes, voices[voice].pack, 1.0))
            cache.put(keys[-1], result.audio)
            if renders is not None:
                np.save(renders / f"{voice}-{index}.npy", result.audio)
    cpu_seconds = process_time() - cpu_started
    if repeat and renders is not None:
        (renders / REPEAT_FOLDER).mkdir(exist_ok=True)
        for voice in BENCH_VOICES:
            for index, sentence in enumerate(CORPUS):
                audio = synthesize(sentence, style=voices[voice].pack, engine=engine).audio
                np.save(renders / REPEAT_FOLDER / f"{voice}-{index}.npy", audio)
    replays = []
    for key in keys:
        started = perf_counter()
        wav_bytes(cache.get(key))
        replays.append(perf_counter() - started)
    return BenchRow(
        config=config,
        engine=engine.name,
        weights=engine.weights,
        default=config == default_config(),
        load_seconds=round(load_seconds, 3),
        cpu_rtf=round(cpu_seconds / audio_seconds, 4),
        replay_ms=round(max(replays) * 1000, 2),
        peak_rss_mb=round(peak_rss_mb(), 1),
        load_average=(load_start, load_start),
    )


def compare_speed(
    names: Sequence[str],
    configs: dict[str, Callable[[], Engine]] | None = None,
    rounds: int = COMPARE_ROUNDS,
) -> dict[str, Turns]:
    """Load every configuration in this process and time them taking turns, sentence by sentence.

    The order of the turn is rotated every sentence, so no configuration always follows the same one.

    Args:
        names: configurations to compare; the reference's renders are the yardstick when it is among them.
        configs: the configurations to build them from; :func:`engine_configs` by default.
        rounds: how many times the corpus is rendered by each configuration.

    Returns:
        The figures by configuration name.
    """
    configs = engine_configs() if configs is None else configs
    voices = load_bundled()
    built = {name: configs[name]() for name in names}
    style = voices[BENCH_VOICES[0]].pack
    for engine in built.values():
        prepare("Warm up the text converter.", engine=engine)
        synthesize(CORPUS[0], style=style, engine=engine)  # warm-up, off the clock
    compute = dict.fromkeys(names, 0.0)
    audio = dict.fromkeys(names, 0.0)
    edit_compute = dict.fromkeys(names, 0.0)
    edit_audio = dict.fromkeys(names, 0.0)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    turn = 0
    for round_index in range(rounds):
        for voice in BENCH_VOICES:
            for sentence in CORPUS:
                seconds = {}
                for name in rotated(names, turn):
                    built[name].clear_cache()
                    result = synthesize(sentence, style=voices[voice].pack, engine=built[name])
                    compute[name] += result.compute_seconds
                    audio[name] += result.seconds
                    seconds[name] = result.compute_seconds
                    if round_index == 0:
                        edited = synthesize(sentence, style=timbre_edit(voices[voice].pack), engine=built[name])
                        edit_compute[name] += edited.compute_seconds
                        edit_audio[name] += edited.seconds
                turn += 1
                if REFERENCE_CONFIG in seconds:
                    for name in names:
                        ratios[name].append(seconds[name] / seconds[REFERENCE_CONFIG])
    sizes = tuple(dict.fromkeys((FIRST_CHUNK_PHONEMES, *FIRST_CHUNK_SWEEP)))
    first: dict[str, dict[int, list[float]]] = {name: {size: [] for size in sizes} for name in names}
    for size in sizes:
        for _ in range(SWEEP_REPEATS):
            for name in rotated(names, turn):
                first[name][size].append(_first_audio_seconds(built[name], style, size))
            turn += 1
    load_end = load_average_now()
    return {
        name: Turns(
            rtf=round(compute[name] / audio[name], 4),
            edit_rtf=round(edit_compute[name] / edit_audio[name], 4),
            time_vs_reference=round(statistics.median(ratios[name]), 3) if ratios[name] else None,
            first_audio_seconds=round(statistics.median(first[name][FIRST_CHUNK_PHONEMES]), 3),
            first_audio_by_chunk={str(size): round(statistics.median(times), 3) for size, times in first[name].items()},
            load_average=load_end,
        )
        for name in names
    }


def timbre_edit(pack: np.ndarray) -> np.ndarray:
    """Return ``pack`` with the decoder half of every row moved 10 % toward zero, as a timbre slider would.

    Example:
        >>> import numpy as np
        >>> from explorer.bench.speed import timbre_edit
        >>> pack = np.ones((510, 1, 256), dtype=np.float32)
        >>> edited = timbre_edit(pack)
        >>> bool(np.allclose(edited[..., :128], 0.9)), bool((edited[..., 128:] == pack[..., 128:]).all())
        (True, True)
    """
    edited = np.array(pack, dtype=np.float32)
    edited[..., : edited.shape[-1] // 2] *= 0.9
    return edited


def _run_in_subprocess(config: str, renders: Path, repeat: bool) -> BenchRow:
    command = [sys.executable, "-m", "explorer", "bench", "--worker", config, "--renders", str(renders)]
    if repeat:
        command.append("--repeat")
    return BenchRow.from_json(last_json_line(command, f"Benchmark of '{config}'"))


def _compare_in_subprocess(names: Sequence[str]) -> dict[str, Turns]:
    command = [sys.executable, "-m", "explorer", "bench", "--compare", ",".join(names)]
    return {name: Turns(**turns) for name, turns in last_json_line(command, "The comparison").items()}


def _add_quality(rows: list[BenchRow], folders: dict[str, Path], reference: str = REFERENCE_CONFIG) -> list[BenchRow]:
    """Return ``rows`` with word error rate and similarity to the reference configuration's renders filled in.

    The reference row's similarity is to its second render (``repeat``) when one was made, else left None.
    """
    from explorer.meters import speaker_similarity, transcribe, word_error_rate

    def load(folder: Path, voice: str, index: int) -> np.ndarray:
        return np.load(folder / f"{voice}-{index}.npy")

    result = []
    for row in rows:
        compare_to = folders[reference] / REPEAT_FOLDER if row.config == reference else folders.get(reference)
        errors, similarities = [], []
        for voice in BENCH_VOICES:
            for index, sentence in enumerate(CORPUS):
                audio = load(folders[row.config], voice, index)
                errors.append(word_error_rate(sentence, transcribe(audio)))
                if compare_to is not None and compare_to.is_dir():
                    similarities.append(speaker_similarity(audio, load(compare_to, voice, index)))
        result.append(BenchRow(**(asdict(row) | {
            "load_average": row.load_average,
            "wer": round(float(np.mean(errors)), 4),
            "similarity_to_reference": round(float(np.mean(similarities)), 4) if similarities else None,
        })))
    return result


def format_table(rows: Sequence[BenchRow]) -> str:
    """Return the rows as a fixed-width text table; ``*`` marks the configuration ``auto`` uses here."""
    columns = [
        ("config", lambda r: r.config + (" *" if r.default else "")),
        ("RTF", lambda r: r.rtf),
        ("edit RTF", lambda r: r.edit_rtf),
        ("time vs ref", lambda r: r.time_vs_reference),
        ("CPU RTF", lambda r: r.cpu_rtf),
        ("first audio s", lambda r: r.first_audio_seconds),
        ("replay ms", lambda r: r.replay_ms),
        ("peak MB", lambda r: r.peak_rss_mb),
        ("load s", lambda r: r.load_seconds),
        ("WER", lambda r: r.wer),
        ("sim. to ref", lambda r: r.similarity_to_reference),
        ("load avg", lambda r: r.load_average),
    ]
    return text_table([name for name, _ in columns], [[table_cell(get(row)) for _, get in columns] for row in rows])


def format_first_audio(rows: Sequence[BenchRow]) -> str:
    """Return time to first audio per first-chunk size, one row per configuration (0: no short first chunk)."""
    sizes = list(dict.fromkeys(size for row in rows for size in row.first_audio_by_chunk))
    headers = ["config", *(f"first {size}" if size != "0" else "whole sentence" for size in sizes)]
    return text_table(headers, [[row.config, *(table_cell(row.first_audio_by_chunk.get(size)) for size in sizes)]
                            for row in rows])


def run_benchmarks(
    quality: bool,
    names: Sequence[str] | None = None,
    run: Callable[[str, Path, bool], BenchRow] = _run_in_subprocess,
    compare: Callable[[Sequence[str]], dict[str, Turns]] = _compare_in_subprocess,
    prepare: Callable[[str], None] = load_engine_once,
) -> dict:
    """Run each configuration alone in its own process, then all of them taking turns in one; with ``quality``,
    add the meters' columns.

    Args:
        quality: also measure word error rate and similarity to the reference (which is then always run, first).
        names: configurations to run; all available ones by default.
        run: measures one configuration alone (``(name, renders folder, repeat)``); a subprocess by default.
        compare: times the configurations taking turns; a subprocess by default.
        prepare: loads an engine kind once, unmeasured, before anything is timed, so that what a first load builds
            once per machine (a torch engine's traced graphs) is not timed as a load.

    Returns:
        The report: machine, corpus, reference, the default configuration and one row per configuration.

    Raises:
        ExplorerError: no engine is available, or an unknown configuration was asked for.
    """
    available = list(engine_configs())
    if not available:
        raise ExplorerError("No speech engine is available here: install requirements.txt (make run).")
    chosen = list(dict.fromkeys(names or available))
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ExplorerError(f"Unknown configuration {', '.join(unknown)}; available: {', '.join(available)}.")
    if quality and REFERENCE_CONFIG in available:
        chosen = [REFERENCE_CONFIG, *(name for name in chosen if name != REFERENCE_CONFIG)]
    for kind in dict.fromkeys(name.removesuffix("-spinning") for name in chosen):
        prepare(kind)
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as scratch:
        folders = {name: Path(scratch) / name for name in chosen}
        rows = []
        for name in chosen:
            folders[name].mkdir()
            print(f"benchmarking {name} alone… (load average {load_average_now()})", file=sys.stderr)
            rows.append(run(name, folders[name], quality and name == REFERENCE_CONFIG))
        print(f"timing {', '.join(chosen)} taking turns… (load average {load_average_now()})", file=sys.stderr)
        turns = compare(chosen)
        rows = [BenchRow(**(asdict(row) | asdict(turns[row.config]) | {
            "load_average": (row.load_average[0], turns[row.config].load_average)})) for row in rows]
        if quality:
            print("measuring quality (whisper, resemblyzer)…", file=sys.stderr)
            rows = _add_quality(rows, folders)
    return {
        "machine": machine_description(),
        "corpus_sentences": len(CORPUS),
        "voices": list(BENCH_VOICES),
        "first_chunk_phonemes": FIRST_CHUNK_PHONEMES,
        "reference": REFERENCE_CONFIG if quality or REFERENCE_CONFIG in chosen else None,
        "default": default_config(),
        "rows": [asdict(row) for row in rows],
    }


def format_report(report: dict) -> str:
    """Return the report as people read it: the setting, the main table and the first-audio table."""
    rows = [BenchRow.from_json(row) for row in report["rows"]]
    return "\n".join([
        f"machine: {report['machine']}",
        f"corpus: {report['corpus_sentences']} sentences x voices {', '.join(report['voices'])}; "
        f"reference for 'time vs ref' and 'sim. to ref': {report['reference'] or '-'}; "
        f"* = what auto uses here ({report['default']})",
        format_table(rows),
        "",
        f"time to first audio (s) of a two-sentence text by first-chunk size in phonemes "
        f"(the table above uses {report['first_chunk_phonemes']}):",
        format_first_audio(rows),
    ])


