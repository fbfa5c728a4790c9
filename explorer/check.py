"""The ``check`` command: can this installation speak? The seed analysis suite's ``python test_kokoro.py`` sanity
check, answered with a short table and an exit status a script can test.

It looks at what a person would otherwise find out one failure at a time: the installed versions, the bundled voices
against their manifest, which engine ``auto`` chooses here and on what facts, the engine asked for (loaded), the G2P
converter, one sentence spoken, and the optional meters. Each row is printed as soon as it is known, so a slow step
shows where it is. The exit status is 0 when every required row passed and the sentence was spoken, 1 otherwise (with
one ``error:`` line naming the first failure); the meters are optional, so their absence is reported, not failed.

A check reports what broke instead of raising it: a missing package (``ImportError``) or a broken model file is the
very thing it exists to find, so every step's exception becomes its row's detail.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from explorer.engines import ENGINE_KINDS, auto_choice, load_engine
from explorer.errors import ExplorerError, printable, shown
from explorer.paths import VOICES_DIR, check_output
from explorer.voices import MANIFEST_NAME, load_bundled

__all__ = ["register"]

DEFAULT_TEXT = "Hello, this is Kokoro speaking."
DEFAULT_VOICE = "af_heart"
DEFAULT_ENGINE = "onnx"
"""The engine the check speaks with unless told: the offline int8 ONNX model loads in about half a second, where
torch takes over a second from its traced graphs (and several the first time, while it traces them); ``--engine
auto`` checks the engine the app would use."""
PACKAGES = ("kokoro", "misaki", "onnxruntime", "torch", "numpy")
"""Packages whose versions the first row lists (read from their metadata: nothing is imported)."""
HEARD_WER = 0.5
"""Word error rate above which the recogniser's reading of the sentence is flagged: a render this garbled is not
speech a listener follows, though the meters being optional, it is a warning and not a failure."""

_OK, _FAIL, _ABSENT, _SKIPPED, _WARN, _INFO = "ok", "FAIL", "absent", "skipped", "warn", "info"


@dataclass(frozen=True)
class _Row:
    """One line of the table: ``required`` rows fail the check when their status is ``FAIL``."""
    name: str
    status: str
    detail: str
    required: bool = True

    @property
    def failed(self) -> bool:
        """Whether this row makes the check fail."""
        return self.required and self.status == _FAIL


def _line(row: _Row) -> str:
    return printable(f"  {row.name:<8}{row.status:<8}{row.detail}")


def _failure(error: BaseException) -> str:
    """Return what went wrong in a step, in one line: our errors as they are worded, anything else with its type."""
    if isinstance(error, ExplorerError):
        return str(error)
    return f"{type(error).__name__}: {shown(error, 200)}"


def _attempt(name: str, step: Callable[[], tuple[str, Any]]) -> tuple[_Row, Any]:
    """Run one required step; return its row and its value (None when it failed)."""
    try:
        detail, value = step()
    except Exception as error:  # noqa: BLE001 - a check reports what broke (see the module docstring)
        return _Row(name, _FAIL, _failure(error)), None
    return _Row(name, _OK, detail), value


def _versions() -> str:
    found = []
    for package in PACKAGES:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    return f"Python {platform.python_version()}; " + ", ".join(found)


def _voices() -> tuple[str, Any]:
    voices = load_bundled()
    manifest = VOICES_DIR.relative_to(VOICES_DIR.parents[1]) / MANIFEST_NAME
    return f"{len(voices)} bundled voices match their SHA-256 in {manifest}", voices


def _auto() -> tuple[str, str]:
    """Return auto's choice and why (which step of :func:`explorer.engines.auto_kind`'s rule decided)."""
    kind, reason = auto_choice()
    return f"auto chooses {kind}: {reason}", kind


def _engine(kind: str) -> tuple[str, Any]:
    started = time.perf_counter()
    engine = load_engine(kind)
    name = kind if kind == engine.name else f"{kind} ({engine.name})"
    return f"{name}: {engine.weights}; loaded in {time.perf_counter() - started:.1f} s", engine


def _g2p(text: str, lang: str, engine: Any) -> tuple[str, Any]:
    from explorer.synth import prepare

    plan = prepare(text, engine=engine, lang=lang)
    return f"{plan.g2p}: {shown(text)} -> {plan.phonemes}", plan


def _speech(plan: Any, voice: Any, engine: Any) -> tuple[str, Any]:
    from explorer.audio import rms_dbfs
    from explorer.synth import synthesize_plan

    speech = synthesize_plan(plan, style=voice.pack, engine=engine)
    detail = (f"{voice.name}: {speech.seconds:.2f} s of audio at {rms_dbfs(speech.audio):.0f} dBFS RMS, rendered in "
              f"{speech.compute_seconds:.2f} s (real-time factor {speech.rtf:.2f})")
    return detail, speech


def _meters(lang: str) -> tuple[_Row, bool]:
    """Return the meters' row, and whether the recogniser can listen to a sentence in ``lang``."""
    from explorer.meters import RECOGNISED_LANGUAGES, meter_status

    status = meter_status()
    parts = [f"{name} {'present' if reason is None else 'absent (' + reason.rstrip('.') + ')'}"
             for name, reason in status.items()]
    every = all(reason is None for reason in status.values())
    can_listen = status.get("intelligibility", "unknown") is None and lang in RECOGNISED_LANGUAGES
    return _Row("meters", _OK if every else _ABSENT, "; ".join(parts), required=False), can_listen


def _heard(speech: Any, text: str) -> _Row:
    from explorer.meters import intelligibility

    heard = intelligibility(speech.audio, text, speech.sample_rate)
    status = _OK if heard.wer <= HEARD_WER else _WARN
    return _Row("heard", status, f"{shown(heard.transcript)} (word error rate {heard.wer:.2f})", required=False)


def _optional(name: str, step: Callable[[], tuple[_Row, Any]]) -> tuple[_Row, Any]:
    """Run an optional step that makes its own row; a failure is reported in its row (value None) and fails
    nothing."""
    try:
        return step()
    except Exception as error:  # noqa: BLE001 - as in _attempt
        return _Row(name, _FAIL, _failure(error), required=False), None


@dataclass(frozen=True)
class _Report:
    """The rows in order, and the sentence when it was spoken."""
    rows: tuple[_Row, ...]
    speech: Any

    @property
    def failed(self) -> tuple[_Row, ...]:
        """The rows that fail the check."""
        return tuple(row for row in self.rows if row.failed)


def _run_check(args: argparse.Namespace) -> _Report:
    """Run every step in order, printing each row as soon as it is known."""
    rows: list[_Row] = []

    def add(row: _Row) -> None:
        rows.append(row)
        print(_line(row), flush=True)

    print(f"Kokoro Voice Explorer installation check (speaking with --engine {args.engine})")
    print(_line(_Row("check", "status", "detail")))
    add(_Row("python", _INFO, _versions(), required=False))
    row, voices = _attempt("voices", _voices)
    add(row)
    add(_attempt("auto", _auto)[0])
    row, engine = _attempt("engine", lambda: _engine(args.engine))
    add(row)
    row, plan = _attempt("g2p", lambda: _g2p(args.text, args.lang, engine))
    add(row)
    speech = None
    if voices is None or engine is None or plan is None:
        add(_Row("speech", _SKIPPED, "not tried: a row above failed"))
    elif args.voice not in voices:
        add(_Row("speech", _FAIL, f"There is no bundled voice {shown(args.voice)}; try {DEFAULT_VOICE}."))
    else:
        row, speech = _attempt("speech", lambda: _speech(plan, voices[args.voice], engine))
        add(row)
    if args.no_meters:
        add(_Row("meters", _SKIPPED, "not checked (--no-meters)", required=False))
        return _Report(tuple(rows), speech)
    row, can_listen = _optional("meters", lambda: _meters(args.lang))
    add(row)
    if speech is not None and can_listen:
        add(_optional("heard", lambda: (_heard(speech, args.text), None))[0])
    return _Report(tuple(rows), speech)


def _cmd_check(args: argparse.Namespace) -> None:
    """Check the output first, run the check, then write the WAV only when asked and everything required passed."""
    out = check_output(args.out) if args.out is not None else None
    if out is not None and out.suffix.lower() != ".wav":
        raise ExplorerError(f"Output {shown(out.name)} must end in .wav.")
    report = _run_check(args)
    if report.failed:
        first = report.failed[0]
        raise ExplorerError(f"The installation check failed at {first.name}: {first.detail.rstrip('.')}.")
    if out is not None:
        report.speech.save(out)
        print(printable(f"wrote {out}"))
    print("Speech works: every required check passed.")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``check`` to the command line: the installation check (``python test_kokoro.py`` runs it too)."""
    check = commands.add_parser("check", help="check the installation and speak one sentence (exit 0 if it works)")
    check.add_argument("--engine", choices=ENGINE_KINDS, default=DEFAULT_ENGINE,
                       help=f"engine to speak with (default {DEFAULT_ENGINE}: quick to load; auto: the app's choice)")
    check.add_argument("--voice", default=DEFAULT_VOICE, help=f"bundled voice to speak with (default {DEFAULT_VOICE})")
    check.add_argument("--text", default=DEFAULT_TEXT, help="the sentence to speak")
    check.add_argument("--lang", default="a", help="language code of --text: a b e f h i p j z (default a)")
    check.add_argument("--out", help="also write the sentence to this WAV file (nothing is written without it)")
    check.add_argument("--no-meters", action="store_true", help="skip the optional meters (they take seconds to load)")
    check.set_defaults(handler=_cmd_check)
