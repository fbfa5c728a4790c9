"""The README's Python examples run as written, in order, so the documentation cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 4


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    assert {"pca_decoder.png", "tsne_prosody.html", "heart_emma_adam.pt", "hello.wav"} <= {
        p.name for p in tmp_path.iterdir()
    }
    from explorer.voices import load_file

    (voice,) = load_file(tmp_path / "heart_emma_adam.pt")
    np.testing.assert_array_equal(voice.pack, namespace["pack"])
    assert namespace["speech"].seconds > 0.5
