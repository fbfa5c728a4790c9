"""The ``bench`` command: speed, memory and quality per engine configuration, the app's start-up, where a torch
render's time goes, the whole ``synth`` command against a naive onnxruntime script, and the pitch trackers. A thin
wrapper over :mod:`explorer.bench` and :mod:`explorer.app.timing`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from explorer.bench import startup
from explorer.cache import progress_bar
from explorer.engines.choice import load_engine
from explorer.voices import load_bundled

__all__ = ["register"]


def _cmd_bench(args: argparse.Namespace) -> None:
    if args.app_worker or args.what == "app":
        from explorer.app import timing  # Streamlit loads only for the app's benchmark

        if args.app_worker:
            print(json.dumps(timing.time_app_page(args.app_worker)))
        else:
            report = timing.run_app_benchmark()
            print(json.dumps(report, indent=2) if args.json else timing.format_app_report(report))
        return
    names = [name.strip() for name in args.configs.split(",") if name.strip()] if args.configs else None
    if args.what == "cli":
        from explorer.bench import (
            whole_process,  # soundfile and the engines' model files load only for this one
        )

        report = whole_process.run_cli_benchmark(names or ["auto"], args.rounds, args.text or whole_process.PARAGRAPH)
        print(json.dumps(asdict(report), indent=2) if args.json else whole_process.format_cli_report(report))
        return
    if args.what == "pitch":
        from explorer.bench import pitch  # librosa and the meters load only for this one

        rows = pitch.run_pitch_benchmark(load_engine("torch"), load_bundled())
        print(json.dumps(rows, indent=2) if args.json else pitch.format_pitch_report(rows))
        return
    if args.what == "match":
        from explorer.bench import match  # the matcher, its meters and Ray load only for this one
        from explorer.match import MATCH_ENGINE

        held_out = args.held_out.split(",") if args.held_out else match.BENCH_VOICES
        budgets = [int(budget) for budget in args.budgets.split(",")] if args.budgets else match.BENCH_BUDGETS
        with progress_bar("bench match") as progress:
            report = match.run_match_benchmark(load_engine(MATCH_ENGINE, device=args.device), None, held_out,
                                               budgets, args.workers, progress=progress, device=args.device)
        print(json.dumps(report, indent=2) if args.json else match.format_match_report(report))
        return
    if args.what == "startup":
        report = startup.run_startup_benchmark(names, args.rounds)
        print(json.dumps(report, indent=2) if args.json else startup.format_startup_report(report))
        return
    from explorer.bench import (  # torch, the engines and the meters load only for a benchmark
        render_profile,
        speed,
    )

    if args.worker:
        renders = Path(args.renders) if args.renders else None
        print(json.dumps(asdict(speed.run_worker(args.worker, renders, args.repeat))))
        return
    if args.compare:
        turns = speed.compare_speed(args.compare.split(","))
        print(json.dumps({name: asdict(config_turns) for name, config_turns in turns.items()}))
        return
    if args.what == "profile":
        profiles = [render_profile.profile_config(name) for name in names or [None]]
        print(json.dumps([asdict(profile) for profile in profiles], indent=2) if args.json
              else "\n\n".join(render_profile.format_profile(profile) for profile in profiles))
        return
    report = speed.run_benchmarks(quality=args.what in ("quality", "all"), names=names)
    print(json.dumps(report, indent=2) if args.json else speed.format_report(report))


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the command line."""
    parser = commands.add_parser("bench", help="benchmark speed, memory and quality of each engine configuration")
    parser.add_argument("what", nargs="?",
                        choices=("synth", "quality", "all", "app", "profile", "cli", "startup", "pitch", "match"),
                        default="all",
                       help="synth: speed and memory; quality: also WER and similarity (default: all); "
                       "app: the app's cold start and warm reruns per page; profile: where a torch configuration's "
                       "render time goes and the floor its convolutions set (default: torch-bf16 where the CPU "
                       "computes bf16, else torch-fp32); cli: the whole `synth` command speaking a 30 s paragraph "
                       "against a naive onnxruntime script (scripts/naive_onnx_synth.py), fresh processes taking "
                       "turns; startup: from process start to an engine ready to render, by part, before "
                       "(torch-bf16:modules) and after (torch-bf16, cached traced graphs); pitch: Praat's pitch "
                       "tracker (the meters') against librosa's pYIN on tones of known pitch and on renders, against "
                       "the F0 curve that drove the vocoder; match: the voice matcher leave-one-out against a random "
                       "walk, each benchmark voice held out of the reference voices and matched from its renders")
    parser.add_argument("--configs", help="comma-separated configurations to run (default: every available one; "
                       "cli: engine kinds, default auto; startup: engine kinds, a torch one with :modules for kokoro's "
                       "modules)")
    parser.add_argument("--rounds", type=int, default=3, help="cli and startup: rounds, each running every "
                       "configuration once (default 3)")
    parser.add_argument("--held-out", help="match: comma-separated voices to hold out (default: af_heart, "
                        "am_michael, bf_emma, bm_george, ef_dora)")
    parser.add_argument("--budgets", help="match: comma-separated budgets in evaluations (default 100,300,1000)")
    parser.add_argument("--workers", type=int, default=1, help="match: Ray workers for the matcher (default 1)")
    parser.add_argument("--device", help="match: where the torch engine computes (cpu, cuda, cuda:N; default cpu)")
    parser.add_argument("--text", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--renders", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compare", help=argparse.SUPPRESS)
    parser.add_argument("--app-worker", help=argparse.SUPPRESS)
    parser.set_defaults(handler=_cmd_bench)
