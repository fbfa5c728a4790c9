"""``python scripts/download_all_voices.py``: the seed suite's command, as ``python -m explorer voices download --out
voices --or-bundled``.

Fills ``voices/`` at the repository root with the official Kokoro-82M v1.0 voicepacks (``<name>.pt``) from the
Hugging Face Hub, or from its local cache. When the Hub cannot give them (offline, ``HF_HUB_OFFLINE``), it writes the
bundled copies of the same voices instead and says so in one line. Extra arguments go to the command (``--help``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, Python puts scripts/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

from explorer.cli import main

if __name__ == "__main__":
    voices = os.path.relpath(ROOT / "voices")
    sys.exit(main(["voices", "download", "--out", voices, "--or-bundled", *sys.argv[1:]]))
