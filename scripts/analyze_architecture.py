"""``python scripts/analyze_architecture.py``: the seed suite's command, as ``python -m explorer architecture`` with
its JSON and its text report saved into ``voices/analysis/architecture_analysis.json`` and
``architecture_report.txt`` (the bytes ``python -m explorer analyze`` writes under those names).

The model is built offline with random weights unless ``--weights kokoro-v1_0.pth`` is given (the counts, style
routing and data flow are the same; only the weight statistics differ). Extra arguments go to the command.

``ArchitectureAnalyzer`` is re-exported for the seed's ``from scripts.analyze_architecture import
ArchitectureAnalyzer``; it lives in :mod:`explorer.seed`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, Python puts scripts/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

from explorer.cli import main
from explorer.errors import printable
from explorer.paths import atomic_write_files
from explorer.seed import ArchitectureAnalyzer

__all__ = ["ArchitectureAnalyzer"]


def _printed(argv: list[str]) -> tuple[int, str]:
    """Run one command and return its exit status and what it printed (its errors still reach stderr)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(argv)
    return status, printed.getvalue()


def _save(out: Path, extra: list[str]) -> int:
    """Write both files, or neither when either command fails. The second run reuses the loaded kokoro package, so
    it costs about 2 s of the first's 6."""
    status, report = _printed(["architecture", *extra])
    if status:
        return status
    status, data = _printed(["architecture", "--json", *extra])
    if status:
        return status
    out.mkdir(parents=True, exist_ok=True)
    files = {out / "architecture_analysis.json": data.encode(), out / "architecture_report.txt":
             report.rstrip("\n").encode() + b"\n"}
    for path in atomic_write_files(files):
        print(printable(f"wrote {path}"))
    return 0


if __name__ == "__main__":
    sys.exit(_save(Path(os.path.relpath(ROOT / "voices" / "analysis")), sys.argv[1:]))
