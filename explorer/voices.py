"""Voicepacks: load them from every source a person has, validate them, name them, and save them again.

A Kokoro voicepack holds one 256-dim style vector per phoneme count: row ``len(phonemes) - 1`` styles an utterance.
Dims 0-127 go to the decoder (timbre), dims 128-255 to the prosody predictor (rhythm, pitch, duration). Packs are
kept here as float32 ``[510, 256]``; the ``[510, 1, 256]`` layout of the official ``.pt`` files is accepted and
written back on export.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.errors import VoiceError
from explorer.paths import VOICES_DIR, atomic_write_bytes

__all__ = [
    "DEFAULT_HUB_REPO",
    "HALF",
    "HUB_REPOS",
    "LANGUAGES",
    "MAX_ARCHIVE_ENTRIES",
    "MAX_FILE_BYTES",
    "PACK_BYTES",
    "PACK_ROWS",
    "STYLE_DIM",
    "SUPPORTED_SUFFIXES",
    "Voice",
    "VoiceMetadata",
    "VoiceSet",
    "as_pack",
    "load_bundled",
    "load_bytes",
    "load_file",
    "load_folder",
    "load_hub",
    "load_voices",
    "pack_bytes",
    "parse_voice_name",
    "save_pack",
    "validate_voice_name",
]

PACK_ROWS = 510
"""Rows of a voicepack: one style vector per phoneme count, 1 to 510."""
STYLE_DIM = 256
"""Values in one style vector."""
HALF = 128
"""Where the prosody half of a style vector starts: dims 0-127 go to the decoder, 128-255 to the prosody predictor."""
PACK_BYTES = PACK_ROWS * STYLE_DIM * 4
"""Size of one float32 voicepack in bytes, and of a raw ``.bin`` voice file."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest voice file or upload read from a person (an npz of 100 packs is about 52 MB)."""
MAX_ARCHIVE_ENTRIES = 200
"""Most packs one ``.npz`` may hold (the largest official set, v1.1-zh, has 103)."""
MAX_ENTRY_BYTES = 2 * PACK_BYTES
"""Largest uncompressed member of an ``.npz``: guards against zip bombs before anything is inflated."""

SUPPORTED_SUFFIXES = (".pt", ".bin", ".npy", ".npz")
"""File formats voices load from and save to (see ``load_bytes`` and ``pack_bytes``)."""
MANIFEST_NAME = "SHA256SUMS"
DEFAULT_HUB_REPO = "hexgrad/Kokoro-82M"
"""The Hugging Face repo ``load_hub`` reads when none is named: the official Kokoro-82M v1.0 voices."""
HUB_REPOS = ("hexgrad/Kokoro-82M", "hexgrad/Kokoro-82M-v1.1-zh")
"""The official Kokoro repos offered by name in the app and the CLI (any other repo id works too)."""

LANGUAGES = {
    "a": "American English",
    "b": "British English",
    "e": "Spanish",
    "f": "French",
    "h": "Hindi",
    "i": "Italian",
    "j": "Japanese",
    "p": "Brazilian Portuguese",
    "z": "Mandarin Chinese",
}
"""Language of each first letter of a stock voice name (``a`` in ``af_heart``), as Kokoro's ``lang_code`` uses them.

Example:
    >>> import explorer
    >>> explorer.LANGUAGES["b"]
    'British English'
    >>> sorted(explorer.LANGUAGES)
    ['a', 'b', 'e', 'f', 'h', 'i', 'j', 'p', 'z']
"""
GENDERS = {"f": "female", "m": "male"}

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_STOCK_PATTERN = re.compile(r"^([a-z])([fm])_[A-Za-z0-9]")


def validate_voice_name(name: str) -> str:
    """Return ``name`` when it is a safe voice name, so it can never become a path outside its folder.

    Allowed: 1-64 characters of letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit, no ``..``.

    Raises:
        VoiceError: the name is empty, too long, or holds a path separator, ``..`` or another character.

    Example:
        >>> from explorer.voices import validate_voice_name
        >>> validate_voice_name("af_heart")
        'af_heart'
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name) or ".." in name:
        shown = repr(name)[:80]
        raise VoiceError(
            f"Invalid voice name {shown}: use 1-64 letters, digits, '_', '-' or '.', with no path separators or '..'."
        )
    return name


@dataclass(frozen=True)
class VoiceMetadata:
    """What a voice's name says about it under Kokoro's naming scheme (``af_heart``: American English, female).

    ``language_code`` is None and the rest ``custom``/``unknown`` for names off the scheme; ``group`` is the two-letter
    prefix (``af``) the centroids group by.
    """

    language_code: str | None
    language: str
    gender: str
    group: str


def parse_voice_name(name: str) -> VoiceMetadata:
    """Return the language, gender and group that ``name`` encodes; names off the scheme are ``custom``, not errors.

    Example:
        >>> import explorer
        >>> explorer.parse_voice_name("bm_george")
        VoiceMetadata(language_code='b', language='British English', gender='male', group='bm')
        >>> explorer.parse_voice_name("my_mix").language
        'custom'
    """
    match = _STOCK_PATTERN.match(name)
    if match and match.group(1) in LANGUAGES:
        code, gender = match.groups()
        return VoiceMetadata(code, LANGUAGES[code], GENDERS[gender], code + gender)
    return VoiceMetadata(None, "custom", "unknown", "custom")


def as_pack(array: object, name: str = "voice") -> np.ndarray:
    """Return ``array`` as a read-only float32 ``[510, 256]`` pack after checking it.

    Args:
        array: anything numpy (or torch) can turn into an array, shaped ``[510, 1, 256]`` or ``[510, 256]``.
        name: the voice's name, used in error messages.

    Raises:
        VoiceError: wrong shape, non-numeric, or any NaN/Inf value.

    Example:
        >>> import numpy as np
        >>> from explorer.voices import as_pack
        >>> as_pack(np.zeros((510, 1, 256))).shape
        (510, 256)
    """
    if hasattr(array, "detach"):
        array = array.detach().cpu().float().numpy()
    try:
        pack = np.asarray(array)
    except Exception as error:
        raise VoiceError(f"Voice '{name}' is not a numeric array: {error}") from error
    if pack.dtype.kind not in "fiu":
        raise VoiceError(f"Voice '{name}' is not numeric (dtype {pack.dtype}).")
    if pack.shape == (PACK_ROWS, 1, STYLE_DIM):
        pack = pack[:, 0, :]
    if pack.shape != (PACK_ROWS, STYLE_DIM):
        raise VoiceError(
            f"Voice '{name}' has shape {list(pack.shape)}; a voicepack must be [510, 1, 256] or [510, 256]."
        )
    pack = np.array(pack, dtype=np.float32)
    if not np.isfinite(pack).all():
        raise VoiceError(f"Voice '{name}' contains NaN or infinite values.")
    pack.setflags(write=False)
    return pack


@dataclass(frozen=True)
class Voice:
    """One voicepack with its name, where it came from, and what its name says about it.

    ``pack`` is the read-only float32 ``[510, 256]`` array; ``language``, ``gender`` and ``group`` come from the name
    (see ``parse_voice_name``).

    Example:
        >>> import explorer
        >>> heart = explorer.load_voices()["af_heart"]
        >>> heart.language, heart.gender, heart.group, heart.source
        ('American English', 'female', 'af', 'bundled')
        >>> heart.pack.shape, heart.style(explorer.Voice.row_for_phonemes("hˈɛloʊ")).shape
        ((510, 256), (256,))
    """

    name: str
    pack: np.ndarray = field(repr=False, compare=False)
    source: str
    language_code: str | None
    language: str
    gender: str
    group: str

    @classmethod
    def from_array(cls, name: str, array: object, source: str) -> Voice:
        """Return a validated Voice; metadata comes from the name (see ``parse_voice_name``)."""
        validate_voice_name(name)
        meta = parse_voice_name(name)
        return cls(name, as_pack(array, name), source, meta.language_code, meta.language, meta.gender, meta.group)

    def style(self, row: int) -> np.ndarray:
        """Return the 256-dim style vector of ``row`` (0-509)."""
        if not 0 <= row < PACK_ROWS:
            raise VoiceError(f"Row {row} is out of range: a voicepack has rows 0-{PACK_ROWS - 1}.")
        return self.pack[row]

    @staticmethod
    def row_for_phonemes(phonemes: str) -> int:
        """Return the row Kokoro uses for ``phonemes``: ``len(phonemes) - 1``, kept inside 0-509."""
        return min(max(len(phonemes) - 1, 0), PACK_ROWS - 1)


class VoiceSet:
    """An ordered, name-unique collection of voices: what every analysis, chart and page works on.

    Index it by name, iterate it in order, stack its packs, or get a table of its voices' metadata.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> voices
        VoiceSet(54 voices)
        >>> voices.packs().shape
        (54, 510, 256)
        >>> voices.table().groupby("gender").size().to_dict()
        {'female': 29, 'male': 25}
        >>> "af_heart" in voices, voices.names[:2]
        (True, ['af_alloy', 'af_aoede'])
    """

    def __init__(self, voices: Iterable[Voice] = ()):
        self._voices: dict[str, Voice] = {}
        self._fingerprint: str | None = None
        for voice in voices:
            self._voices[voice.name] = voice

    def __len__(self) -> int:
        return len(self._voices)

    def __iter__(self) -> Iterator[Voice]:
        return iter(self._voices.values())

    def __contains__(self, name: object) -> bool:
        return name in self._voices

    def __getitem__(self, name: str) -> Voice:
        try:
            return self._voices[name]
        except KeyError:
            raise VoiceError(f"Unknown voice '{str(name)[:80]}'.") from None

    def __repr__(self) -> str:
        return f"VoiceSet({len(self)} voices)"

    @property
    def names(self) -> list[str]:
        """Voice names in order."""
        return list(self._voices)

    def packs(self) -> np.ndarray:
        """Return all packs stacked as float32 ``[N, 510, 256]``."""
        if not self._voices:
            return np.zeros((0, PACK_ROWS, STYLE_DIM), np.float32)
        return np.stack([voice.pack for voice in self])

    def table(self) -> pd.DataFrame:
        """Return one row per voice: name, language, language_code, gender, group, source."""
        columns = ["name", "language", "language_code", "gender", "group", "source"]
        return pd.DataFrame([{c: getattr(v, c) for c in columns} for v in self], columns=columns)

    def fingerprint(self) -> str:
        """Return a SHA-256 over names, sources and pack values: equal for equal sets, the key for cached results."""
        if self._fingerprint is not None:
            return self._fingerprint
        digest = hashlib.sha256()
        for voice in self:
            digest.update(f"{voice.name}\0{voice.source}\0".encode())
            digest.update(voice.pack.tobytes())
        self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def with_voices(self, voices: Iterable[Voice]) -> VoiceSet:
        """Return a new set with ``voices`` added; a voice with an existing name replaces the old one in place."""
        return VoiceSet([*self, *voices])


def _check_size(size: int, label: str) -> None:
    if size == 0:
        raise VoiceError(f"{label} is empty.")
    if size > MAX_FILE_BYTES:
        raise VoiceError(f"{label} is {size / 2**20:.1f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB.")


def _zip_members(data: bytes, label: str, what: str) -> list[zipfile.ZipInfo]:
    """Return the members a zip archive declares; damaged archives make ``zipfile`` raise several error types."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.infolist()
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError) as error:
        raise VoiceError(f"{label} is not a readable {what}: {str(error)[:200]}") from error


def _read_pt(data: bytes, stem: str, label: str) -> dict[str, object]:
    import torch

    try:
        members = _zip_members(data, label, ".pt file")
    except VoiceError:
        raise VoiceError(f"{label} is not a readable .pt file: it is not a torch.save archive.") from None
    # torch allocates every record at the size the archive declares before checking it: refuse a zip bomb unread.
    inflated = sum(member.file_size for member in members)
    if inflated > MAX_FILE_BYTES:
        raise VoiceError(
            f"{label} inflates to {inflated / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB."
        )
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise VoiceError(
            f"{label} was refused: it is not a plain tensor file (it asks to unpickle other objects)."
        ) from error
    except Exception as error:
        raise VoiceError(f"{label} is not a readable .pt file: {str(error).splitlines()[0][:200]}") from error
    if isinstance(loaded, dict):
        return {str(key): value for key, value in loaded.items()}
    return {stem: loaded}


def _read_npz(data: bytes, label: str) -> dict[str, object]:
    members = _zip_members(data, label, ".npz archive")
    if not members:
        raise VoiceError(f"{label} holds no voices.")
    if len(members) > MAX_ARCHIVE_ENTRIES:
        raise VoiceError(f"{label} holds {len(members)} entries; the limit is {MAX_ARCHIVE_ENTRIES}.")
    for member in members:
        if member.file_size > MAX_ENTRY_BYTES:
            raise VoiceError(
                f"{label}: entry '{member.filename[:80]}' inflates to {member.file_size} bytes, "
                f"more than a voicepack ({PACK_BYTES} bytes) can be."
            )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as error:
        raise VoiceError(f"{label} is not a readable .npz archive: {str(error)[:200]}") from error


def _read_arrays(data: bytes, filename: str, label: str) -> dict[str, object]:
    suffix = Path(filename).suffix.lower()
    stem = Path(filename).stem
    if suffix == ".pt":
        return _read_pt(data, stem, label)
    if suffix == ".npz":
        return _read_npz(data, label)
    if suffix == ".npy":
        try:
            return {stem: np.load(io.BytesIO(data), allow_pickle=False)}
        except Exception as error:
            raise VoiceError(f"{label} is not a readable .npy file: {str(error)[:200]}") from error
    if suffix == ".bin":
        if len(data) != PACK_BYTES:
            raise VoiceError(
                f"{label} has {len(data)} bytes; a raw float32 voicepack has exactly {PACK_BYTES} (510 x 256 x 4)."
            )
        return {stem: np.frombuffer(data, dtype="<f4").reshape(PACK_ROWS, STYLE_DIM)}
    raise VoiceError(f"{label} has an unsupported format; use one of {', '.join(SUPPORTED_SUFFIXES)}.")


def load_bytes(data: bytes, filename: str, source: str = "upload") -> list[Voice]:
    """Return the voices held in ``data``, whose format and name come from ``filename``.

    ``.pt`` (``torch.load(weights_only=True)``: a tensor, or a dict of name to tensor), raw ``.bin`` float32,
    ``.npy``, and ``.npz`` archives of name to pack (kokoro-onnx's ``voices-v1.0.bin`` is one, saved as ``.npz``).

    Args:
        data: the file's bytes, e.g. from an upload.
        filename: the file's name: its suffix says the format, its stem names a single voice.
        source: where the voices came from, kept on each ``Voice``.

    Returns:
        The voices in the file, in the file's order.

    Raises:
        VoiceError: unsafe name, empty or oversize data, unknown format, unreadable file, bad shape or values.

    Example:
        >>> import explorer
        >>> pack = explorer.load_voices()["bf_emma"].pack
        >>> [voice.name for voice in explorer.load_bytes(explorer.pack_bytes(pack, ".npy"), "emma_copy.npy")]
        ['emma_copy']
    """
    if not isinstance(filename, str) or "/" in filename or "\\" in filename or "\x00" in filename:
        raise VoiceError(f"Invalid file name {str(filename)[:80]!r}: path separators are not allowed.")
    label = f"Voice file '{filename[:80]}'"
    _check_size(len(data), label)
    arrays = _read_arrays(data, filename, label)
    voices = []
    for name, array in arrays.items():
        validate_voice_name(name)
        try:
            voices.append(Voice.from_array(name, array, source))
        except VoiceError as error:
            raise VoiceError(f"{label}: {error}") from error
    return voices


def load_file(path: Path | str, source: str | None = None) -> list[Voice]:
    """Return the voices in one file (see ``load_bytes`` for formats); the source defaults to the file's path.

    Raises:
        VoiceError: no such file, or the file is oversize or unreadable (see ``load_bytes``).

    Example:
        >>> import explorer
        >>> path = explorer.save_pack(explorer.load_voices()["am_adam"].pack, "adam.npz")
        >>> [(voice.name, voice.gender) for voice in explorer.load_file(path)]
        [('adam', 'unknown')]
    """
    path = Path(path)
    if not path.is_file():
        raise VoiceError(f"No voice file at '{path}'.")
    _check_size(path.stat().st_size, f"Voice file '{path.name}'")
    return load_bytes(path.read_bytes(), path.name, source or str(path))


def load_folder(folder: Path | str, source: str | None = None) -> VoiceSet:
    """Return every voice in ``folder`` (files with a supported suffix, sorted by name; subfolders ignored).

    Raises:
        VoiceError: the folder is missing or has no voice files, or any file in it is broken (named in the message).

    Example:
        >>> import explorer
        >>> from pathlib import Path
        >>> Path("mine").mkdir()
        >>> voices = explorer.load_voices()
        >>> for name in ("af_heart", "am_adam"):
        ...     _ = explorer.save_pack(voices[name].pack, f"mine/{name}.pt")
        >>> explorer.load_folder("mine").names
        ['af_heart', 'am_adam']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VoiceError(f"No voice folder at '{folder}'.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise VoiceError(f"Folder '{folder}' holds no voice files ({', '.join(SUPPORTED_SUFFIXES)}).")
    voices: list[Voice] = []
    for path in files:
        voices.extend(load_file(path, source or str(folder)))
    return VoiceSet(voices)


def _read_manifest(folder: Path) -> dict[str, str]:
    """Return ``{file name: sha256}`` from ``folder/SHA256SUMS`` (``sha256sum`` format)."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise VoiceError(f"The bundled voices have no manifest at '{manifest}'.")
    entries = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, filename = line.split(maxsplit=1)
            entries[filename.lstrip("*")] = digest
    return entries


def load_bundled(folder: Path | str = VOICES_DIR) -> VoiceSet:
    """Return the 54 official Kokoro v1.0 voices shipped in ``assets/voices``, each checked against the manifest.

    Raises:
        VoiceError: a listed file is missing, or its SHA-256 differs from the manifest (named in the message).

    Example:
        >>> import explorer
        >>> voices = explorer.load_bundled()
        >>> len(voices), voices["af_heart"].source
        (54, 'bundled')
    """
    folder = Path(folder)
    voices: list[Voice] = []
    for filename, digest in _read_manifest(folder).items():
        path = folder / filename
        if not path.is_file():
            raise VoiceError(f"Bundled voice file '{filename}' is missing from '{folder}'.")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise VoiceError(f"Bundled voice file '{filename}' is corrupt: its SHA-256 does not match the manifest.")
        voices.extend(load_bytes(data, filename, "bundled"))
    return VoiceSet(voices)


def load_hub(repo_id: str = DEFAULT_HUB_REPO) -> VoiceSet:
    """Return the voices under ``voices/*.pt`` of a Hugging Face repo, from the HF cache or downloaded.

    Raises:
        HubError: the Hub is unreachable (or ``HF_HUB_OFFLINE``) and the voices are not cached, or there is no such
            repo.
        VoiceError: the repo has no voices.

    Example:
        ``explorer.load_hub()`` gives the official v1.0 voices (downloaded once, then from the cache); a repo that
        does not exist, or a Hub out of reach with nothing cached, is a ``HubError``:

        >>> import explorer
        >>> try:
        ...     explorer.load_hub("kokoro-voice-explorer/no-such-repo")
        ... except explorer.HubError:
        ...     print("not available")
        not available
    """
    from explorer.hub import hub_snapshot

    snapshot = hub_snapshot(repo_id, ["voices/*.pt"])
    return load_folder(snapshot / "voices", source=f"hf:{repo_id}")


def load_voices(source: str | Path | None = None) -> VoiceSet:
    """Return voices from a source description, the one entry point the CLI and API share.

    Args:
        source: ``None`` or ``"bundled"`` for the bundled v1.0 voices; ``"hf"`` or ``"hf:<owner/repo>"`` for a
            Hugging Face repo; otherwise a folder or a single voice file.

    Raises:
        VoiceError: the source is none of those, or a voice in it is unusable.
        HubError: a Hugging Face repo cannot be reached and is not cached.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> len(voices), voices.names[0]
        (54, 'af_alloy')
        >>> _ = explorer.save_pack(voices["af_heart"].pack, "heart.pt")
        >>> explorer.load_voices("heart.pt").names
        ['heart']
    """
    if source is None or str(source) == "bundled":
        return load_bundled()
    text = str(source)
    if text == "hf" or text.startswith("hf:"):
        return load_hub(text[3:] or DEFAULT_HUB_REPO)
    path = Path(text)
    if path.is_dir():
        return load_folder(path)
    if path.is_file():
        return VoiceSet(load_file(path))
    raise VoiceError(f"Unknown voice source '{text[:200]}': use 'bundled', 'hf:<owner/repo>', a folder or a file.")


def pack_bytes(pack: np.ndarray, suffix: str, name: str = "voice") -> bytes:
    """Return ``pack`` encoded for ``suffix``: ``.pt`` (torch ``[510, 1, 256]`` float32, what
    ``kokoro.KPipeline.load_voice`` takes), ``.npz`` (``{name: [510, 1, 256]}``, what kokoro-onnx reads),
    ``.npy`` or raw ``.bin``.

    Raises:
        VoiceError: the suffix is none of those, or the pack (or, for ``.npz``, its name) is invalid.

    Example:
        >>> import explorer
        >>> pack = explorer.load_voices()["af_heart"].pack
        >>> len(explorer.pack_bytes(pack, ".bin"))
        522240
    """
    pack = as_pack(pack, name)
    suffix = suffix.lower()
    buffer = io.BytesIO()
    if suffix == ".pt":
        import torch

        torch.save(torch.from_numpy(pack.copy()).reshape(PACK_ROWS, 1, STYLE_DIM), buffer)
    elif suffix == ".npz":
        np.savez(buffer, **{validate_voice_name(name): pack.reshape(PACK_ROWS, 1, STYLE_DIM)})
    elif suffix == ".npy":
        np.save(buffer, pack.reshape(PACK_ROWS, 1, STYLE_DIM))
    elif suffix == ".bin":
        buffer.write(pack.astype("<f4").tobytes())
    else:
        raise VoiceError(f"Cannot save a voicepack as '{suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}.")
    return buffer.getvalue()


def save_pack(pack: np.ndarray, path: Path | str, name: str | None = None) -> Path:
    """Write ``pack`` to ``path`` in the format its suffix names (see ``pack_bytes``), atomically.

    Args:
        pack: a ``[510, 256]`` or ``[510, 1, 256]`` array.
        path: the file to write; its suffix picks the format and its stem names the voice unless ``name`` does.
        name: the voice's name inside an ``.npz``.

    Returns:
        The path written.

    Raises:
        VoiceError: the folder does not exist, or the suffix or pack is invalid.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> pack = explorer.apply_recipe(explorer.Recipe.single("af_heart"), voices)
        >>> explorer.save_pack(pack, "heart.pt").name    # kokoro.KPipeline(...).load_voice("heart.pt") reads it
        'heart.pt'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise VoiceError(f"Cannot write '{path}': the folder '{path.parent}' does not exist.")
    return atomic_write_bytes(path, pack_bytes(pack, path.suffix, name or path.stem))
