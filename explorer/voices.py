"""Voicepacks: load them from every source a person has, validate them, name them, and save them again.

A Kokoro voicepack holds one 256-dim style vector per phoneme count: row ``len(phonemes) - 1`` styles an utterance.
Dims 0-127 go to the decoder (timbre), dims 128-255 to the prosody predictor (rhythm, pitch, duration). Packs are
kept here as float32 ``[510, 256]``; the ``[510, 1, 256]`` layout of the official ``.pt`` files is accepted and
written back on export.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import pickletools
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.errors import VoiceError, shown
from explorer.hub import hub_snapshot
from explorer.paths import VOICES_DIR, atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_HUB_REPO",
    "HALF",
    "HUB_REPOS",
    "LANGUAGES",
    "MAX_ARCHIVE_ENTRIES",
    "MAX_FILE_BYTES",
    "MAX_LOADED_BYTES",
    "MAX_PACK_VALUE",
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
MAX_ENTRY_BYTES = 4 * PACK_BYTES + 4096
"""Largest uncompressed member of an ``.npz``: a pack of the widest accepted type (numpy's float128, 16 bytes a value)
and its ``.npy`` header. Guards against zip bombs before anything is inflated."""
MAX_LOADED_BYTES = 2 * MAX_FILE_BYTES
"""Most memory one ``.pt`` file may take once loaded: its tensor data plus the float32 packs made from it.

Checked from the file's pickle before any tensor exists. A few kilobytes of pickle can name one tensor 5,000 times
or expand one stored value to a billion; a real voice file never needs more than twice the file cap.
"""
MAX_PACK_VALUE = 32.0
"""Largest magnitude a voicepack value may have: ten times the stock voices' ±3.2, so edited voices load, while values
that crashed scikit-learn's t-SNE are refused. A safety bound, not a speech bound (stock voices scaled x2 are no
longer understood; nothing near ±32 renders speech)."""
_MAX_ZIP_RECORDS = 1000
"""Most records a ``.npz`` or ``.pt`` archive may list: 200 voices need about 210."""
_MAX_PICKLE_BYTES = 2**20
"""Largest object table (``data.pkl``) of a ``.pt`` file: 200 named tensors take about 30 KB. Unpickling costs a few
times the table's size in memory even when it only repeats references, so it is capped before it is read."""
_REAL_TYPES = re.compile(r"u?int(8|16|32|64)|float(16|32|64|128)|bfloat16")
"""Value types a voicepack may hold, by their numpy or torch name: real integers and floating-point numbers.

The same rule for every format. Bool, complex, text, objects, quantised and 8-bit float tensors are refused: none is
a style, and reading True as 1 or dropping an imaginary part would hide a mistake in the file.
"""

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

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
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
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name) or ".." in name:
        raise VoiceError(
            f"Invalid voice name {shown(name)}: use 1-64 letters, digits, '_', '-' or '.', with no path separators "
            "or '..'."
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


def _check_type(type_name: str, name: str) -> None:
    """Refuse values that are not real numbers, in the same words whatever the format (see ``_REAL_TYPES``)."""
    if not _REAL_TYPES.fullmatch(type_name):
        raise VoiceError(
            f"Voice {shown(name)} holds {type_name} values; a voicepack holds real numbers (an integer or "
            "floating-point type)."
        )


def _check_shape(shape: tuple[int, ...], name: str) -> None:
    """Refuse any shape but a voicepack's, from the shape alone: nothing of the array is read or converted."""
    if tuple(shape) not in ((PACK_ROWS, 1, STYLE_DIM), (PACK_ROWS, STYLE_DIM)):
        dims = ", ".join(str(size) for size in shape[:4]) + (", ..." if len(shape) > 4 else "")
        raise VoiceError(f"Voice {shown(name)} has shape [{dims}]; a voicepack must be [510, 1, 256] or [510, 256].")


def as_pack(array: object, name: str = "voice") -> np.ndarray:
    """Return ``array`` as a read-only float32 ``[510, 256]`` pack after checking it.

    The value type and shape are judged before a single value is converted, so a tensor that expands one stored
    value to a billion is refused without taking the memory. Values must be real numbers (integer or floating-point
    types; bool and complex are refused), finite in float32, and within ``MAX_PACK_VALUE`` in magnitude.

    Args:
        array: anything numpy (or torch) can turn into an array, shaped ``[510, 1, 256]`` or ``[510, 256]``.
        name: the voice's name, used in error messages.

    Raises:
        VoiceError: wrong shape, values that are not real numbers, any NaN/Inf value (a float64 value too large for
            float32 counts as infinite), or a value beyond ``MAX_PACK_VALUE``.

    Example:
        >>> import numpy as np
        >>> from explorer.voices import as_pack
        >>> as_pack(np.zeros((510, 1, 256))).shape
        (510, 256)
        >>> from explorer.errors import VoiceError
        >>> try:
        ...     as_pack(np.full((510, 256), 1e38), "loud")
        ... except VoiceError as error:
        ...     print(error)
        Voice 'loud' has values as large as 1e+38; a voicepack's values must lie within ±32 ...
    """
    if hasattr(array, "detach"):  # a torch tensor: judged by its dtype and shape before anything is converted
        _check_type(str(array.dtype).removeprefix("torch."), name)
        _check_shape(tuple(array.shape), name)
        array = array.detach().cpu().float().numpy()
    try:
        pack = np.asarray(array)
    except Exception as error:
        raise VoiceError(f"Voice {shown(name)} is not a numeric array: {shown(error, 200)}") from error
    _check_type(pack.dtype.name, name)
    _check_shape(pack.shape, name)
    with np.errstate(over="ignore"):  # float64 values past float32's range become inf here and are refused below
        pack = np.array(pack.reshape(PACK_ROWS, STYLE_DIM), dtype=np.float32)
    if not np.isfinite(pack).all():
        raise VoiceError(f"Voice {shown(name)} contains NaN or infinite values.")
    largest = np.abs(pack).max()  # a float32, shown as the shortest text that is exactly it (32.00004, not 32)
    if largest > MAX_PACK_VALUE:
        raise VoiceError(
            f"Voice {shown(name)} has values as large as {largest!s}; a voicepack's values must lie within "
            f"±{MAX_PACK_VALUE:g} (the stock voices stay within about ±3.2)."
        )
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
            raise VoiceError(f"Unknown voice {shown(name)}.") from None

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
        import pandas as pd  # 0.2 s that a command rendering one voice never needs

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
        raise VoiceError(
            f"{label} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES / 2**20:g} MiB)."
        )


def _zip_members(data: bytes, label: str, what: str) -> list[zipfile.ZipInfo]:
    """Return the members a zip archive declares; damaged archives make ``zipfile`` raise several error types."""
    # zipfile makes a Python object of about 600 bytes for every central-directory record before anything can be
    # checked, and a 64 MiB archive holds over a million records: count their signatures first (each record starts
    # with one, so this bounds what zipfile will make).
    records = data.count(b"PK\x01\x02")
    if records > _MAX_ZIP_RECORDS:
        raise VoiceError(f"{label} holds {records:,} archive records; the limit is {_MAX_ZIP_RECORDS:,}.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.infolist()
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError) as error:
        raise VoiceError(f"{label} is not a readable {what}: {shown(error, 200)}") from error


@dataclass(frozen=True, slots=True)
class _StorageType:
    """A storage class a ``.pt`` pickle names (``torch.FloatStorage``), reduced to the size of its elements."""

    itemsize: int


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """What a ``.pt`` pickle says about one storage: its record in the archive and its size in bytes."""

    key: str
    nbytes: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """What a ``.pt`` pickle says about one tensor, without any of its values: its storage and its shape."""

    storage: _StorageRef
    shape: tuple[int, ...]


def _rebuild_tensor(storage: object, offset: object, size: object, *rest: object) -> _TensorRef:
    """Stands in for torch's ``_rebuild_tensor_v2`` and ``_rebuild_tensor_v3``: their first three arguments are the
    storage, the offset into it and the shape; the rest (strides, hooks, a dtype) do not change the size."""
    if not (
        isinstance(storage, _StorageRef)
        and type(offset) is int
        and isinstance(size, tuple)
        and all(type(length) is int and length >= 0 for length in size)
    ):
        raise pickle.UnpicklingError("a tensor is described by values of the wrong kind")
    return _TensorRef(storage, size)


class _PtPlan(pickle.Unpickler):
    """Reads a ``.pt`` pickle into descriptions of its tensors and storages, so its size is known before torch.load.

    Only what ``torch.save`` writes for tensors is understood (tensor rebuilders, storage classes, dtypes, the
    ordered dict of hooks); every other global is refused, nothing is imported and no value is copied. The
    storages it names are collected as they are met, used by a tensor or not, because torch.load loads each one.
    """

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.data = data
        self.storages: dict[str, int] = {}

    def load(self) -> object:
        # The C unpickler allocates what these opcodes claim (up to 2**64 bytes) before reading it, and mishandles a
        # short read of BYTEARRAY8 (CPython reports a freed buffer still in use); no voice file needs them, so they
        # are refused from a pure-Python walk of the opcodes first.
        for opcode, _, _ in pickletools.genops(self.data):
            if opcode.name in ("BINBYTES8", "BINUNICODE8", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"):
                raise pickle.UnpicklingError(f"opcode {opcode.name} is not part of a tensor file")
        return super().load()

    def find_class(self, module: str, name: str) -> object:
        import torch

        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if (module, name) == ("torch.storage", "UntypedStorage"):
            return _StorageType(1)
        if module == "torch" and name.endswith("Storage"):
            try:  # the map torch.load itself reads legacy storage names with (FloatStorage: float32)
                return _StorageType(torch.storage._get_dtype_from_pickle_storage_type(name).itemsize)
            except KeyError:
                pass
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a tensor")

    def persistent_load(self, pid: object) -> _StorageRef:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and type(pid[4]) is int
            and pid[4] >= 0
        ):
            raise pickle.UnpicklingError("a storage is described by values of the wrong kind")
        storage = _StorageRef(pid[2], pid[4] * pid[1].itemsize)
        self.storages[storage.key] = max(self.storages.get(storage.key, 0), storage.nbytes)
        return storage


def _described(value: object) -> str:
    """Name what a ``.pt`` pickle holds in place of a tensor, in a person's words."""
    return "a bare storage" if isinstance(value, _StorageRef) else f"a {type(value).__name__}"


@contextlib.contextmanager
def _unpickling(label: str) -> Iterator[None]:
    """Turn what unpickling a ``.pt`` file raises into one sentence: a pickle asking for more than tensors is refused,
    anything else is an unreadable file (its error's first line)."""
    try:
        yield
    except pickle.UnpicklingError as error:
        raise VoiceError(
            f"{label} was refused: it is not a plain tensor file (it asks to unpickle other objects)."
        ) from error
    except Exception as error:
        raise VoiceError(f"{label} is not a readable .pt file: {shown(str(error).splitlines()[0], 200)}") from error


def _check_pt(data: bytes, stem: str, label: str) -> None:
    """Refuse a ``.pt`` file from its archive and its pickle alone, before torch.load makes a single tensor.

    An archive Python's ``zipfile`` cannot read is refused before torch's C++ reader parses it. The checks then run
    on the records that reader sees, as torch.load will (zip readers disagree on damaged archives): the total they
    inflate to, the size of the pickle, what the pickle holds (a tensor, or a dict of names to tensors), the number
    of entries (``MAX_ARCHIVE_ENTRIES``, as for ``.npz``), each tensor's shape, and the memory the loaded file would
    take (``MAX_LOADED_BYTES``): its storages plus one float32 pack per entry.
    """
    import torch

    _zip_members(data, label, ".pt file")
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        sizes = {record: reader.get_record_size(record) for record in reader.get_all_records()}
    except Exception:
        raise VoiceError(f"{label} is not a readable .pt file: it is not a torch.save archive.") from None
    # torch allocates every record at the size the archive declares before checking it: refuse a zip bomb unread.
    inflated = sum(sizes.values())
    if inflated > MAX_FILE_BYTES:
        raise VoiceError(f"{label} inflates to {inflated:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes.")
    if "data.pkl" not in sizes:
        raise VoiceError(f"{label} is not a readable .pt file: it has no data.pkl record.")
    if sizes["data.pkl"] > _MAX_PICKLE_BYTES:
        raise VoiceError(
            f"{label} has a {sizes['data.pkl']:,}-byte object table (data.pkl); a voice file needs far less, and "
            f"the limit is {_MAX_PICKLE_BYTES:,} bytes."
        )
    with _unpickling(label):
        plan = _PtPlan(reader.get_record("data.pkl"))
        loaded = plan.load()
    entries = list(loaded.items()) if isinstance(loaded, dict) else [(stem, loaded)]
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise VoiceError(f"{label} holds {len(entries):,} entries; the limit is {MAX_ARCHIVE_ENTRIES}.")
    for name, tensor in entries:
        if not isinstance(name, str) or not isinstance(tensor, _TensorRef):
            what = f"a key of type {type(name).__name__}" if not isinstance(name, str) else _described(tensor)
            raise VoiceError(
                f"{label} was refused: it holds {what} where a voice file holds a tensor, or a dict of names to "
                "tensors."
            )
        try:
            _check_shape(tensor.shape, name)
        except VoiceError as error:
            raise VoiceError(f"{label}: {error}") from None
    expanded = sum(plan.storages.values()) + len(entries) * PACK_BYTES
    if expanded > MAX_LOADED_BYTES:
        raise VoiceError(
            f"{label} would take {expanded:,} bytes once loaded (its tensor data and one float32 pack per entry); "
            f"the limit is {MAX_LOADED_BYTES:,} bytes."
        )


def _read_pt(data: bytes, stem: str, label: str) -> Iterator[tuple[str, object]]:
    import torch

    _check_pt(data, stem, label)
    with _unpickling(label):
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    yield from loaded.items() if isinstance(loaded, dict) else [(stem, loaded)]


def _read_npz(data: bytes, label: str) -> Iterator[tuple[str, object]]:
    members = _zip_members(data, label, ".npz archive")
    if not members:
        raise VoiceError(f"{label} holds no voices.")
    if len(members) > MAX_ARCHIVE_ENTRIES:
        raise VoiceError(f"{label} holds {len(members):,} entries; the limit is {MAX_ARCHIVE_ENTRIES}.")
    for member in members:
        if member.file_size > MAX_ENTRY_BYTES:
            raise VoiceError(
                f"{label}: entry {shown(member.filename)} inflates to {member.file_size:,} bytes, "
                f"more than a voicepack of any accepted type can be ({MAX_ENTRY_BYTES:,} bytes)."
            )
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as error:
        raise VoiceError(f"{label} is not a readable .npz archive: {shown(error, 200)}") from error
    with npz:
        for key in npz.files:  # one member at a time: each is made a pack before the next is inflated
            try:
                array = npz[key]
            except Exception as error:
                raise VoiceError(f"{label} is not a readable .npz archive: {shown(error, 200)}") from error
            yield key, array


def _read_arrays(data: bytes, filename: str, label: str) -> Iterator[tuple[str, object]]:
    """Yield ``(name, array)`` for each voice in ``data``, one at a time, so each becomes a pack (and its raw array
    is dropped) before the next is read."""
    suffix = Path(filename).suffix.lower()
    stem = Path(filename).stem
    if suffix == ".pt":
        yield from _read_pt(data, stem, label)
    elif suffix == ".npz":
        yield from _read_npz(data, label)
    elif suffix == ".npy":
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as error:
            raise VoiceError(f"{label} is not a readable .npy file: {shown(error, 200)}") from error
        yield stem, array
    elif suffix == ".bin":
        if len(data) != PACK_BYTES:
            raise VoiceError(
                f"{label} has {len(data):,} bytes; a raw float32 voicepack has exactly {PACK_BYTES:,} "
                "(510 x 256 x 4)."
            )
        yield stem, np.frombuffer(data, dtype="<f4").reshape(PACK_ROWS, STYLE_DIM)
    else:
        raise VoiceError(f"{label} has an unsupported format; use one of {', '.join(SUPPORTED_SUFFIXES)}.")


def load_bytes(data: bytes, filename: str, source: str = "upload") -> list[Voice]:
    """Return the voices held in ``data``, whose format and name come from ``filename``.

    ``.pt`` (``torch.load(weights_only=True)``: a tensor, or a dict of name to tensor), raw ``.bin`` float32,
    ``.npy``, and ``.npz`` archives of name to pack (kokoro-onnx's ``voices-v1.0.bin`` is one, saved as ``.npz``).
    Every format follows the same rules: the shapes, value types and values ``as_pack`` accepts, at most
    ``MAX_ARCHIVE_ENTRIES`` voices, and sizes checked before anything is inflated or copied.

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
        raise VoiceError(f"Invalid file name {shown(filename)}: path separators are not allowed.")
    label = f"Voice file {shown(filename)}"
    _check_size(len(data), label)
    voices = []
    for name, array in _read_arrays(data, filename, label):
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
        raise VoiceError(f"No voice file at {shown(path, 200)}.")
    _check_size(path.stat().st_size, f"Voice file {shown(path.name)}")
    with path.open("rb") as handle:  # one byte past the limit at most: the file may have grown since its stat
        data = handle.read(MAX_FILE_BYTES + 1)
    return load_bytes(data, path.name, source or str(path))


def _load_voice_files(folder: Path, source: str, follow_links: bool) -> VoiceSet:
    """Return every voice in the files of ``folder`` named like voice files, sorted by name; links are refused
    unless ``follow_links`` (see :func:`load_folder`)."""
    if not folder.is_dir():
        raise VoiceError(f"No voice folder at {shown(folder, 200)}.")
    files = sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in SUPPORTED_SUFFIXES and (path.is_symlink() or path.is_file())
    )
    if not files:
        raise VoiceError(f"Folder {shown(folder, 200)} holds no voice files ({', '.join(SUPPORTED_SUFFIXES)}).")
    for path in files:
        if path.is_symlink() and not follow_links:
            raise VoiceError(
                f"Voice file {shown(path.name)} in {shown(folder, 200)} is a symbolic link; links in a voice folder "
                "are not followed: copy the file into the folder instead."
            )
    return VoiceSet(voice for path in files for voice in load_file(path, source))


def load_folder(folder: Path | str, source: str | None = None) -> VoiceSet:
    """Return every voice in ``folder`` (files with a supported suffix, sorted by name; subfolders ignored).

    Symbolic links are refused, not followed: a folder someone else prepared could otherwise make the explorer read
    any file the user can, and its errors would describe that file.

    Raises:
        VoiceError: the folder is missing or has no voice files, a voice file in it is a link, or any file in it is
            broken (named in the message).

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
    return _load_voice_files(Path(folder), source or str(folder), follow_links=False)


def _read_manifest(folder: Path) -> dict[str, str]:
    """Return ``{file name: sha256}`` from ``folder/SHA256SUMS`` (``sha256sum`` format)."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise VoiceError(f"The bundled voices have no manifest at {shown(manifest, 200)}.")
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
            raise VoiceError(f"Bundled voice file {shown(filename)} is missing from {shown(folder, 200)}.")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise VoiceError(
                f"Bundled voice file {shown(filename)} is corrupt: its SHA-256 does not match the manifest."
            )
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
    snapshot = hub_snapshot(repo_id, ["voices/*.pt"])
    # huggingface_hub links each snapshot file to its blob in the same cache: links a voice folder refuses, made by
    # the cache itself, so they are followed here.
    return _load_voice_files(snapshot / "voices", f"hf:{repo_id}", follow_links=True)


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
    raise VoiceError(f"Unknown voice source {shown(text, 200)}: use 'bundled', 'hf:<owner/repo>', a folder or a file.")


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
        raise VoiceError(f"Cannot save a voicepack as {shown(suffix)}; use one of {', '.join(SUPPORTED_SUFFIXES)}.")
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
        raise VoiceError(f"Cannot write {shown(path, 200)}: the folder {shown(path.parent, 200)} does not exist.")
    return atomic_write_bytes(path, pack_bytes(pack, path.suffix, name or path.stem))
