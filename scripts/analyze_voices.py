"""``python scripts/analyze_voices.py``: the seed suite's command, as ``python -m explorer analyze --voices voices
--out voices/analysis``.

Analyses the voicepacks in ``voices/`` (``scripts/download_all_voices.py`` fills it) or, when that folder holds none,
the bundled voices, saying so; writes every file the seed lists into ``voices/analysis/`` (the reports, centroids,
top variable dimensions and six charts), plus ``analysis.json`` with every figure and the architecture report. Extra
arguments go to the command (``--row``, ``--perplexity``, ``--help``...).

``VoiceAnalyzer`` is re-exported for the seed's ``from scripts.analyze_voices import VoiceAnalyzer``; it lives in
:mod:`explorer.seed`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, Python puts scripts/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

from explorer.cli import main
from explorer.seed import VoiceAnalyzer, holds_voicepacks

__all__ = ["VoiceAnalyzer"]


if __name__ == "__main__":
    voices = Path(os.path.relpath(ROOT / "voices"))
    source = []
    if holds_voicepacks(voices):
        source = ["--voices", str(voices)]
    else:
        print(f"{voices}/ holds no voicepacks (python scripts/download_all_voices.py fills it): analysing the bundled "
              "voices.", file=sys.stderr)
        voices.mkdir(exist_ok=True)
    sys.exit(main(["analyze", *source, "--out", str(voices / "analysis"), *sys.argv[1:]]))
