"""The ``match`` command: find the recipe that sounds like a recording, and write it with its voicepack and a report.
A thin wrapper over :mod:`explorer.match` (and :mod:`explorer.match_workers` for ``--workers`` and ``--ray``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from explorer.cache import progress_bar
from explorer.engines.torch_engine import torch_device
from explorer.errors import ExplorerError, printable, shown
from explorer.match import (
    BUDGET_LIMITS,
    MAX_TARGET_SECONDS,
    MINUTES_LIMITS,
    LocalEvaluator,
    MatchConfig,
    MatchError,
    ScorerSpec,
    Target,
    match_voice,
    matcher_unavailable,
    report_match,
)
from explorer.match_workers import RayEvaluator, check_ray_address, check_workers
from explorer.paths import atomic_write_bytes, check_output
from explorer.recipe import apply_recipe
from explorer.voices import save_pack

__all__ = ["REPORT_SUFFIX", "pack_path", "register", "report_path"]

REPORT_SUFFIX = ".report.json"
"""What the report's file name ends in, beside the recipe's."""


def report_path(out: Path) -> Path:
    """Return where the report of a result written to ``out`` goes: beside it, ``NAME.report.json``."""
    return out.with_name(out.name.removesuffix(".json") + REPORT_SUFFIX)


def pack_path(out: Path) -> Path:
    """Return where the voicepack of a result written to ``out`` goes: beside it, ``NAME.pt`` (kokoro loads it).

    The recipe's PCA steps are measured on the reference voices; the pack holds the voice itself, whatever set
    ``synth`` or ``mix`` is later given."""
    return out.with_suffix(".pt")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {shown(text)}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {shown(text)}") from None


def _cmd_match(args: argparse.Namespace) -> None:
    """Check every input and the three outputs before loading anything, search, write the recipe and its pack, then
    judge it."""
    missing = matcher_unavailable()
    if missing:
        raise MatchError(missing)

    out = Path(args.out)
    if out.suffix.lower() != ".json" or out.name.lower().endswith(REPORT_SUFFIX):
        raise ExplorerError(f"Output {shown(out.name)} must end in .json (the report goes beside it, "
                            f"NAME{REPORT_SUFFIX}).")
    out, pack_out, report_out = check_output(out), check_output(pack_path(out)), check_output(report_path(out))
    config = MatchConfig(budget=args.budget, minutes=args.minutes, seed=args.seed, lang=args.lang,
                         transcript=args.transcript)
    spec = ScorerSpec(voices=args.voices, exclude=tuple(args.exclude or ()), lang=args.lang, seed=args.seed,
                      device=args.device)
    torch_device(args.device)
    check_workers(args.workers)
    if args.ray:
        check_ray_address(args.ray)
    voices = spec.reference_voices()
    target = Target.from_file(args.target)
    print(printable(target.describe()))
    if args.workers > 1 or args.ray:
        evaluator = RayEvaluator(spec, args.workers, args.ray)
    else:
        evaluator = LocalEvaluator(spec.build())
    try:
        with progress_bar("match") as progress:
            result = match_voice(target, evaluator, voices.names, config, lambda state: progress(
                state.evaluations / state.budget, f"best similarity {state.similarity:.3f} ({state.stage})"))
        atomic_write_bytes(out, result.recipe.to_json().encode())
        save_pack(apply_recipe(result.recipe, voices), pack_out)
        print(printable(f"wrote {out} and its voicepack {pack_out.name}" + (
            " (the best found before the search was interrupted)" if result.stopped == "interrupted" else "")))
        report = report_match(result, evaluator, target)
    finally:
        close = getattr(evaluator, "close", None)
        if close is not None:
            close()
    atomic_write_bytes(report_out, (json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n").encode())
    for line in report.lines():
        print(printable(line))
    print(printable(f"wrote {report_out}"))


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``match`` to the command line."""
    match = commands.add_parser("match", help="find the recipe whose voice sounds like a recording")
    match.add_argument("--target", required=True, help="the recording (WAV, FLAC, OGG...: any rate, any channels; "
                       f"the first {MAX_TARGET_SECONDS:.0f} s are used)")
    match.add_argument("--transcript", help="what the recording says: the candidates speak it too")
    match.add_argument("--budget", type=_whole, default=300,
                       help=f"most evaluations, stock voices included ({BUDGET_LIMITS[0]}-{BUDGET_LIMITS[1]:,}; "
                            "default 300)")
    match.add_argument("--minutes", type=_number,
                       help=f"time limit ({MINUTES_LIMITS[0]:g}-{MINUTES_LIMITS[1]:g} minutes; default none)")
    match.add_argument("--seed", type=_whole, default=0, help="the search's seed (default 0)")
    match.add_argument("--lang", default="a", help="the language the candidates speak (a, b, e, f, i, p; default a)")
    match.add_argument("--voices", help="reference voices: bundled (default), hf:<owner/repo>, a folder or a file")
    match.add_argument("--exclude", nargs="+", metavar="NAME", help="reference voices to leave out")
    match.add_argument("--workers", type=_whole, default=1,
                       help="evaluate this many candidates at once, on Ray actors (default 1: in this process)")
    match.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster's HOST:PORT or ray://HOST:PORT to run the "
                       "workers on (each node needs `make setup` and the offline model)")
    match.add_argument("--device", default="cpu", help="where the torch engine computes: cpu (default), cuda or "
                       "cuda:N where torch sees a GPU")
    match.add_argument("--out", required=True, help=f"the recipe to write (NAME.json); its voicepack (NAME.pt) and "
                       f"the report (NAME{REPORT_SUFFIX}) go beside it")
    match.set_defaults(handler=_cmd_match)
