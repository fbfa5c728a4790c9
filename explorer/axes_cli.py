"""The ``axes`` command: ``axes build`` measures the named attribute directions and writes the shipped file;
``axes check`` proves them on voices and texts the build never used. A thin wrapper over :mod:`explorer.axes`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from explorer import axes as voice_axes
from explorer.attributes import AXES_PATH, load_axes
from explorer.cache import progress_bar
from explorer.engines.choice import ENGINE_KINDS, load_engine
from explorer.errors import printable
from explorer.paths import check_output
from explorer.voices import load_bundled

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]


def _cmd_build(args: argparse.Namespace) -> None:
    out = check_output(args.out)
    config = voice_axes.AxesBuildConfig.small() if args.small else voice_axes.AxesBuildConfig()
    engine = load_engine(args.engine)
    with progress_bar("axes build") as progress:
        built = voice_axes.build_axes(load_bundled(), engine, config, progress)
    voice_axes.write_axes(built, out)
    for name, axis in built.axes.items():
        print(printable(f"{name}: {axis.low:+.3g} to {axis.high:+.3g} {axis.unit}"))
    print(printable(f"wrote {out} ({built.provenance['minutes']} min)"))


def _markdown(table: pd.DataFrame) -> str:
    """Return ``table`` as a Markdown table (the README's)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _cmd_check(args: argparse.Namespace) -> None:
    axes = load_axes(args.axes)
    engine = load_engine(args.engine)
    voices = args.voices.split(",") if args.voices else voice_axes.CHECK_VOICES
    with progress_bar("axes check") as progress:
        result = voice_axes.check_axes(load_bundled(), engine, axes, check_voices=voices, progress=progress)
    summary, gains = result.summary(), result.gains()
    print(_markdown(summary) if args.markdown else summary.to_string(index=False))
    print(printable(result.verdict()))
    print("\nHow the voices answered (gain: a voice's change over the calibration curve's where its step reads it):")
    print(_markdown(gains) if args.markdown else gains.to_string(index=False))
    if args.steps:
        out = check_output(args.steps)
        result.steps().to_csv(out, index=False)
        print(printable(f"wrote {out}"), file=sys.stderr)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``axes build`` and ``axes check`` to the command line."""
    axes = commands.add_parser("axes", help="measure or check the named attribute directions (pitch, pace...)")
    actions = axes.add_subparsers(dest="action", required=True, parser_class=type(axes))
    build = actions.add_parser("build", help="measure, calibrate and write the directions (about an hour on 2 cores)")
    build.add_argument("--out", default=str(AXES_PATH), help=f"the file to write (default: {AXES_PATH})")
    build.add_argument("--small", action="store_true", help="the test suite's small build (about a minute)")
    build.add_argument("--engine", choices=[kind for kind in ENGINE_KINDS if kind.startswith("torch")],
                       default="torch", help="the torch engine that renders (its renders can be seeded)")
    build.set_defaults(handler=_cmd_build)
    check = actions.add_parser("check", help="render steps on held-out voices and texts and print what changed")
    check.add_argument("--axes", help=f"the axes file (default: {AXES_PATH})")
    check.add_argument("--voices", help=f"comma-separated voices (default: {','.join(voice_axes.CHECK_VOICES)})")
    check.add_argument("--engine", choices=[kind for kind in ENGINE_KINDS if kind.startswith("torch")],
                       default="torch")
    check.add_argument("--markdown", action="store_true", help="print the table as Markdown (as in the README)")
    check.add_argument("--steps", help="also write every step measured to this CSV file")
    check.set_defaults(handler=_cmd_check)

