"""The command line: ``python -m explorer <command>``. Each command is a thin wrapper over the library.

Every failure a person can cause ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from explorer import axes_cli, bench_cli, check, match_cli, synth_cli
from explorer.analysis import analyze
from explorer.engines.choice import resolve_engine
from explorer.engines.model_files import HUB_REPO, TORCH_WEIGHTS, download_torch_weights
from explorer.errors import ExplorerError, HubError, printable
from explorer.paths import check_output
from explorer.voices import (
    DEFAULT_HUB_REPO,
    HUB_REPOS,
    load_bundled,
    load_hub,
    load_voices,
    save_pack,
)

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (plus the usage) and exits with 2."""
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


def _row(text: str) -> int:
    value = int(text)
    if not 0 <= value < 510:
        raise argparse.ArgumentTypeError(f"row must be 0-509, got {value}")
    return value


def _cmd_analyze(args: argparse.Namespace) -> None:
    from explorer.architecture import analyze_architecture
    from explorer.reports import write_analysis_reports

    out = check_output(args.out, folder=True)
    voices = load_voices(args.voices)
    print(printable(f"Loaded {len(voices)} voices from {args.voices or 'bundled'}."), file=sys.stderr)
    analysis = analyze(voices, row=args.row, tsne_perplexity=args.perplexity)
    architecture = analyze_architecture(args.weights)
    for path in write_analysis_reports(voices, analysis, out, architecture=architecture):
        print(printable(f"wrote {path}"))


def _cmd_architecture(args: argparse.Namespace) -> None:
    from explorer.architecture import analyze_architecture

    summary = analyze_architecture(args.weights)
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.report_text())


def _cmd_weights_download(args: argparse.Namespace) -> None:
    fetched = download_torch_weights()
    if fetched.replaced:
        print(printable(f"The cached copy was removed and fetched again: {fetched.replaced}"), file=sys.stderr)
    done = "was downloaded into" if fetched.downloaded else "is already in"
    print(printable(f"{TORCH_WEIGHTS} from {HUB_REPO} {done} the Hugging Face cache: {fetched.path}"))
    try:
        kind, path = resolve_engine("auto")
    except ExplorerError as error:  # EXPLORER_ENGINE names no engine
        auto = f"auto cannot choose here ({str(error).rstrip('.')})"
    else:
        auto = "and so does auto" if (kind, path) == ("torch", fetched.path) else f"but auto chooses {kind} here"
    print(printable(f"It reads as Kokoro's weights (loaded with weights_only=True); --engine torch uses it, {auto}."))


def _cmd_voices_list(args: argparse.Namespace) -> None:
    table = load_voices(args.source).table()
    print(table.to_string(index=False))
    print(f"{len(table)} voices", file=sys.stderr)


def _cmd_voices_download(args: argparse.Namespace) -> None:
    """With ``--or-bundled``, a Hub that cannot give ``hexgrad/Kokoro-82M``'s voices is a one-line note, and the
    bundled copies of the same v1.0 voices (checked against their manifest) are written instead."""

    out = check_output(args.out, folder=True)
    source = args.repo
    try:
        voices = load_hub(args.repo)
    except HubError as error:
        if not (args.or_bundled and args.repo == DEFAULT_HUB_REPO):
            raise
        voices, source = load_bundled(), "the bundled copies"
        print(printable(f"note: {str(error).rstrip('.')}; writing the {len(voices)} bundled copies of its voices "
                        "instead."), file=sys.stderr)
    out.mkdir(exist_ok=True)
    for voice in voices:
        save_pack(voice.pack, out / f"{voice.name}.pt")
    print(printable(f"wrote {len(voices)} voices from {source} to {out}"))


def _add_voices_parser(commands: argparse._SubParsersAction) -> None:
    voices = commands.add_parser("voices", help="list or download voicepacks")
    actions = voices.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = actions.add_parser("list", help="list voices with language, gender, group and source")
    listing.add_argument("--source", help="bundled (default), hf:<owner/repo>, a folder or a file")
    listing.set_defaults(handler=_cmd_voices_list)
    download = actions.add_parser("download", help="download a Hugging Face repo's voices/*.pt into a folder")
    download.add_argument("--repo", default=DEFAULT_HUB_REPO, help=f"one of {', '.join(HUB_REPOS)} or any repo")
    download.add_argument("--out", required=True, help="folder to write <name>.pt files into")
    download.add_argument("--or-bundled", action="store_true",
                          help=f"when the Hub cannot give {DEFAULT_HUB_REPO}'s voices, write the bundled copies of "
                               "them instead, saying so in one line")
    download.set_defaults(handler=_cmd_voices_download)


def _build_parser() -> argparse.ArgumentParser:
    """Return the parser for every command (each command module registers its own arguments)."""
    parser = _Parser(prog="python -m explorer", description="Kokoro Voice Explorer: analyse, mix and hear voices.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    analyze = commands.add_parser("analyze", help="write every analysis report and chart into a folder")
    analyze.add_argument("--voices", help="bundled (default), hf:<owner/repo>, a folder or a file")
    analyze.add_argument("--row", type=_row, help="analyse this row (0-509) instead of the mean over rows")
    analyze.add_argument("--perplexity", type=float, help="t-SNE perplexity, 1 to the number of voices - 1 "
                         "(default: (voices - 1) / 3 rounded, at most 30)")
    analyze.add_argument("--weights", help="a local kokoro-v1_0.pth for the architecture report's weight statistics")
    analyze.add_argument("--out", required=True, help="output folder (created; its parent must exist)")
    analyze.set_defaults(handler=_cmd_analyze)

    architecture = commands.add_parser("architecture", help="describe the Kokoro model built from the config")
    architecture.add_argument("--json", action="store_true", help="print JSON instead of the text report")
    architecture.add_argument("--weights", help="a local kokoro-v1_0.pth to load (default: random initialisation)")
    architecture.set_defaults(handler=_cmd_architecture)

    _add_voices_parser(commands)
    weights = commands.add_parser("weights", help="fetch the official model weights")
    weights_actions = weights.add_subparsers(dest="action", required=True, parser_class=_Parser)
    weights_download = weights_actions.add_parser(
        "download", help="fetch hexgrad/Kokoro-82M's kokoro-v1_0.pth into the Hugging Face cache and check it"
    )
    weights_download.set_defaults(handler=_cmd_weights_download)
    # Modules that register their own commands:
    for register in (synth_cli.register, bench_cli.register, check.register, axes_cli.register,
                     match_cli.register):
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status: 0, 1 for an error a person can fix (one line on stderr), 2 for
    a usage error.

    Args:
        argv: the arguments after ``python -m explorer``; None reads ``sys.argv``.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except ExplorerError as error:
        print(printable(f"error: {error}"), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    return 0
