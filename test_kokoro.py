"""``python test_kokoro.py``: the seed suite's sanity check, as ``python -m explorer check`` (see explorer/check.py).

Checks the installation and speaks one sentence: versions, the bundled voices against their manifest, which engine
``auto`` chooses and why, the engine (``onnx`` unless ``--engine`` says otherwise), the G2P converter, the speech,
and the optional meters, in a short table. Exit status 0 when speech works, 1 otherwise. Writes the sentence only
with ``--out FILE.wav``; other arguments go to the command too (``--help``).

Not a pytest module despite its name: pytest collects ``tests/`` only (``testpaths`` in pytest.ini), and this file
defines no test.
"""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
