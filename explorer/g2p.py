"""Text to phonemes, and phonemes to chunks that fit Kokoro's context.

Two responsibilities:

1. Grapheme-to-phoneme conversion per language, as ``kokoro.KPipeline`` does it: misaki for English when its spaCy
   model is installed (espeak-ng otherwise, with a note saying so), espeak-ng for Spanish, French, Hindi, Italian and
   Portuguese, misaki's extras for Japanese and Mandarin when they are installed.
2. Splitting long input into chunks whose phoneme strings fit the model: at sentence boundaries first, then at
   clause punctuation, then between words; a line break always ends a chunk, as KPipeline renders lines apart.
   Each piece is phonemized on its own, so a chunk's length is measured on the phonemes the model will see, never
   guessed from the text.

Nothing here downloads anything: misaki's English G2P is only built when ``en_core_web_sm`` is already installed,
because misaki would otherwise call ``spacy.cli.download``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from types import ModuleType

from explorer.errors import SynthesisError
from explorer.voices import LANGUAGES

__all__ = [
    "BOUNDARY_PAUSES",
    "MAX_PHONEMES",
    "MAX_TEXT_CHARS",
    "SAMPLE_SENTENCES",
    "TARGET_PHONEMES",
    "Chunk",
    "ChunkPlan",
    "G2PResult",
    "chunk_phonemes",
    "chunk_text",
    "dropped_symbols_note",
    "filter_phonemes",
    "g2p_description",
    "normalize_language",
    "phonemize",
    "pronunciation_label",
    "spacy_model_installed",
]

MAX_TEXT_CHARS = 20_000
"""Longest text (or phoneme string) accepted: about 20 minutes of speech; longer input is refused up front."""

MAX_PHONEMES = 508
"""Phonemes per chunk for Kokoro v1.0: a context of 510 tokens, less the two padding tokens."""

TARGET_PHONEMES = 250
"""Preferred chunk size: sentences longer than this are split at clause punctuation where they have some."""

# Mirrors kokoro.pipeline.ALIASES (kokoro 0.9.4) without importing torch; LANGUAGES mirrors LANG_CODES.
ALIASES: dict[str, str] = {
    "en-us": "a", "en-gb": "b", "es": "e", "fr-fr": "f", "hi": "h", "it": "i", "pt-br": "p", "ja": "j", "zh": "z",
}
ESPEAK_VOICES: dict[str, str] = {
    "a": "en-us", "b": "en-gb", "e": "es", "f": "fr-fr", "h": "hi", "i": "it", "p": "pt-br",
}
SPACY_MODEL = "en_core_web_sm"

SAMPLE_SENTENCES: dict[str, str] = {
    "a": "The quick brown fox jumps over the lazy dog. How does this voice sound to you?",
    "b": "The quick brown fox jumps over the lazy dog. How does this voice sound to you?",
    "e": "Hola, ¿cómo estás? Hoy hace un día precioso para dar un paseo por el parque.",
    "f": "Bonjour, comment allez-vous ? Il fait très beau aujourd'hui, allons nous promener au parc.",
    "h": "नमस्ते, आप कैसे हैं? आज मौसम बहुत सुहाना है, चलिए पार्क में टहलने चलते हैं।",
    "i": "Ciao, come stai? Oggi è una bellissima giornata per fare una passeggiata nel parco.",
    "j": "こんにちは、お元気ですか？今日はとても良い天気なので、公園を散歩しましょう。",
    "p": "Olá, como você está? Hoje está um dia lindo para passear no parque.",
    "z": "你好，你今天怎么样？今天天气很好，我们去公园散步吧。",
}
"""A greeting and a sentence about the weather in each language: what a voice says by default in its own."""

BOUNDARY_PAUSES: dict[str, float] = {
    "paragraph": 0.7, "line": 0.5, "sentence": 0.35, "clause": 0.2, "word": 0.0, "end": 0.0,
}
"""Silence between two chunks, by the boundary the first ends at (seconds; "end" is the end of the input).

Chunks are joined with their silent edges trimmed (``explorer.synth``), so these are the whole pause. Sentence and
clause match what Kokoro itself leaves inside one chunk: measured on af_heart, am_adam and bf_emma with the offline
model, 0.35-0.38 s at a sentence end and 0.1-0.3 s at a comma; a line and a paragraph pause longer."""
# A chunk never runs across these, as KPipeline renders each line on its own.
_HARD_BOUNDARIES = frozenset({"paragraph", "line"})

_TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "fig"})
_CLOSERS = re.escape("\"'”’)]」』）")
_SENTENCE_END = re.compile(rf"[.!?…]+[{_CLOSERS}]*\s+|[。！？]+[{_CLOSERS}]*\s*")
_CLAUSE_END = re.compile(rf"[,;:][{_CLOSERS}]*\s+|—\s*|\s[–-]\s+|[、，；：]\s*")
# Pictographs, dingbats, skin tones, variation selectors, tag characters and the zero-width joiner of emoji sequences.
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0xFE00, 0xFE0F), (0xE0000, 0xE007F), (0x200D, 0x200D),
)


@dataclass(frozen=True)
class G2PResult:
    """Phonemes for a whole text.

    Attributes:
        phonemes: the phoneme string (chunks joined by spaces).
        g2p: which converter produced it, e.g. "misaki en-us" or "espeak en-us (fallback: ...)".
        notes: things a person should know (fallback in use, characters removed).
    """

    phonemes: str
    g2p: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    """One model call's worth of input.

    Attributes:
        text: the text it came from ("" in raw-phoneme mode), whitespace collapsed.
        phonemes: what the model reads; never empty, at most the chunker's ``max_phonemes``.
        boundary: what follows it: "paragraph" (blank line), "line" (line break), "sentence", "clause", "word", or
            "end" for the last chunk.
    """

    text: str
    phonemes: str
    boundary: str

    @property
    def pause_seconds(self) -> float:
        """Silence to put after this chunk when chunks are joined (see ``BOUNDARY_PAUSES``)."""
        return BOUNDARY_PAUSES[self.boundary]


@dataclass(frozen=True)
class ChunkPlan:
    """Input split into chunks, with how it was converted.

    Attributes:
        chunks: in reading order; at least one.
        g2p: the converter used ("raw phonemes" when phonemes were given).
        notes: fallbacks, removed characters and dropped phoneme symbols, one sentence each.
    """

    chunks: tuple[Chunk, ...]
    g2p: str
    notes: tuple[str, ...]

    @property
    def phonemes(self) -> str:
        """All chunks' phonemes joined by spaces."""
        return " ".join(chunk.phonemes for chunk in self.chunks)


@dataclass(frozen=True)
class _Backend:
    name: str
    convert: Callable[[str], str]
    notes: tuple[str, ...]


_BACKENDS: dict[str, _Backend] = {}
_BACKENDS_LOCK = threading.Lock()
# espeak-ng and spaCy keep global state: one conversion at a time.
_CONVERT_LOCK = threading.Lock()


def normalize_language(lang: str) -> str:
    """Return Kokoro's one-letter language code for ``lang`` (a code or an alias such as "en-gb").

    Raises:
        SynthesisError: the language is not one Kokoro speaks.
    """
    code = ALIASES.get(str(lang).strip().lower(), str(lang).strip().lower())
    if code not in LANGUAGES:
        known = ", ".join(f"{key} ({name})" for key, name in LANGUAGES.items())
        raise SynthesisError(f"Unknown language code {lang!r}; use one of {known}.")
    return code


def g2p_description(lang: str = "a") -> str:
    """Name the converter ``lang`` uses on this machine, for status lines; never raises.

    Returns:
        e.g. "espeak en-us (fallback: spaCy model en_core_web_sm missing)", or "unavailable: <why>" for an unknown
        language or one whose misaki extra is not installed.
    """
    try:
        return _backend(normalize_language(lang)).name
    except SynthesisError as error:
        return f"unavailable: {error}"


def pronunciation_label(lang: str = "a") -> str:
    """Say in plain words what turns ``lang``'s text into phonemes on this machine, e.g. "espeak-ng's Spanish
    rules" or "misaki's Mandarin Chinese dictionary"; for a language that cannot be spoken here, what is missing."""
    try:
        code = normalize_language(lang)
        name = _backend(code).name
    except SynthesisError as error:
        return f"unavailable: {error}"
    if name.startswith("espeak"):
        return f"espeak-ng's {LANGUAGES[code]} rules"
    return f"misaki's {LANGUAGES[code]} dictionary"


def phonemize(text: str, lang: str = "a") -> G2PResult:
    """Convert text to phonemes the way the synthesiser will (sentence by sentence, no vocab filtering).

    Returns:
        The phonemes of every chunk joined by spaces, the converter's name and its notes.

    Args:
        text: what to convert, in language ``lang``.
        lang: a Kokoro language code (a b e f h i j p z, see ``explorer.LANGUAGES``) or an alias such as "en-gb".

    Raises:
        SynthesisError: empty, overlong or unpronounceable text, an unknown language, or a missing language extra.

    Example:
        >>> import explorer
        >>> explorer.phonemize("Bonjour tout le monde.", lang="f")
        G2PResult(phonemes='bɔ̃ʒˈuʁ tulmˈɔ̃d.', g2p='espeak fr-fr', notes=())
        >>> english = explorer.phonemize("Hello there. How are you?")
        >>> english.g2p.split()[0] in {"misaki", "espeak"}, english.phonemes.endswith("?")
        (True, True)
    """
    plan = chunk_text(text, lang)
    return G2PResult(phonemes=plan.phonemes, g2p=plan.g2p, notes=plan.notes)


def chunk_text(
    text: str,
    lang: str = "a",
    *,
    vocab: Mapping[str, int] | None = None,
    max_phonemes: int = MAX_PHONEMES,
    target_phonemes: int = TARGET_PHONEMES,
    first_chunk_phonemes: int | None = None,
) -> ChunkPlan:
    """Split text into chunks whose phonemes fit the model, converting each piece separately.

    Sentences are kept whole up to ``target_phonemes``, split at clause punctuation beyond it, and split between
    words (or, for a single giant word, between characters) only when a piece would exceed ``max_phonemes``.
    Neighbouring pieces on the same line are then packed together up to ``target_phonemes``. A
    ``first_chunk_phonemes`` smaller than the target makes the first chunk short, so audio can start sooner.

    Args:
        text: the text to speak.
        lang: Kokoro language code ("a", "b", "e", "f", "h", "i", "p", "j", "z") or alias.
        vocab: the model's phoneme vocabulary; when given, symbols outside it are dropped (and listed in a note)
            before lengths are measured.
        max_phonemes: hard limit per chunk (the model's context less its two pads).
        target_phonemes: preferred chunk size.
        first_chunk_phonemes: optional smaller size for the first chunk.

    Returns:
        The chunks in reading order, the converter's name and notes.

    Raises:
        SynthesisError: empty, overlong or unpronounceable text, an unknown language, or a missing language extra.
    """
    code = normalize_language(lang)
    cleaned, notes = _clean(text, what="text")
    backend = _backend(code)
    dropped: list[str] = []

    def convert(piece: str) -> str:
        with _CONVERT_LOCK:
            phonemes = backend.convert(piece)
        return _filter_into(phonemes, vocab, dropped)

    chunks = _chunk(cleaned, convert, True, max_phonemes, target_phonemes, first_chunk_phonemes, notes)
    if not chunks:
        raise SynthesisError("The text produced no phonemes the model can say.")
    notes[:0] = backend.notes
    if dropped:
        notes.append(dropped_symbols_note(dropped))
    return ChunkPlan(chunks=chunks, g2p=backend.name, notes=tuple(notes))


def chunk_phonemes(
    phonemes: str,
    *,
    vocab: Mapping[str, int] | None = None,
    max_phonemes: int = MAX_PHONEMES,
    target_phonemes: int = TARGET_PHONEMES,
    first_chunk_phonemes: int | None = None,
) -> ChunkPlan:
    """Split a raw phoneme string into chunks that fit the model (the raw-phoneme mode).

    Splits at sentence punctuation, then clause punctuation, then spaces, as :func:`chunk_text` does.

    Returns:
        The chunks (with empty ``text``), ``g2p`` "raw phonemes", and notes listing dropped symbols.

    Raises:
        SynthesisError: empty or overlong input, or nothing left after dropping symbols outside ``vocab``.
    """
    cleaned, notes = _clean(phonemes, what="phoneme string")
    dropped: list[str] = []
    chunks = _chunk(cleaned, lambda piece: _filter_into(piece, vocab, dropped), False,
                    max_phonemes, target_phonemes, first_chunk_phonemes, notes)
    if dropped:
        notes.append(dropped_symbols_note(dropped))
    if not chunks:
        raise SynthesisError("None of the phoneme symbols given are ones the model can say.")
    chunks = tuple(Chunk(text="", phonemes=chunk.phonemes, boundary=chunk.boundary) for chunk in chunks)
    return ChunkPlan(chunks=chunks, g2p="raw phonemes", notes=tuple(notes))


def filter_phonemes(phonemes: str, vocab: Mapping[str, int]) -> tuple[str, tuple[str, ...]]:
    """Drop symbols the model does not know, because Kokoro would silently skip them anyway.

    Runs of whitespace left behind are collapsed to one space.

    Returns:
        ``(kept, dropped)``: the filtered phonemes and the distinct dropped symbols in order of first appearance.
    """
    dropped: list[str] = []
    return _filter_into(phonemes, vocab, dropped), tuple(dropped)


def dropped_symbols_note(dropped: Iterable[str]) -> str:
    """Return the warning shown when phoneme symbols were dropped, listing them."""
    listed = " ".join(f"'{symbol}' (U+{ord(symbol):04X})" for symbol in dropped)
    return f"Dropped phoneme symbols the model does not know: {listed}."


def _filter_into(phonemes: str, vocab: Mapping[str, int] | None, dropped: list[str]) -> str:
    if vocab is not None:
        for symbol in phonemes:
            if symbol not in vocab and not symbol.isspace() and symbol not in dropped:
                dropped.append(symbol)
        phonemes = "".join(symbol for symbol in phonemes if symbol in vocab or symbol.isspace())
    return " ".join(phonemes.split())


def _clean(text: str, what: str) -> tuple[str, list[str]]:
    """Normalise input and strip what cannot be spoken, refusing input with nothing left to say."""
    if not isinstance(text, str):
        raise SynthesisError(f"The {what} must be a string, not {type(text).__name__}.")
    if len(text) > MAX_TEXT_CHARS:
        raise SynthesisError(
            f"The {what} has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}. Split it into parts."
        )
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    removed: list[str] = []
    controls = 0
    kept = []
    for char in text:
        if char == "\n":
            kept.append(char)
        elif char.isspace():
            kept.append(" ")
        elif _is_emoji(char):
            if char not in removed and unicodedata.category(char) == "So":
                removed.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            controls += 1
        else:
            kept.append(char)
    cleaned = "".join(kept).strip()
    notes = []
    if removed or controls:
        parts = [" ".join(removed)] if removed else []
        if controls:
            parts.append(f"{controls} control or formatting character{'s' if controls != 1 else ''}")
        notes.append(f"Removed characters that cannot be spoken: {', '.join(parts)}.")
    if not text.strip():
        raise SynthesisError(f"The {what} is empty; type something to say.")
    if not any(unicodedata.category(char)[0] in "LN" for char in cleaned):
        raise SynthesisError(f"The {what} has nothing to pronounce: no letters or digits.")
    return cleaned, notes


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _EMOJI_RANGES)


def _chunk(
    text: str,
    convert: Callable[[str], str],
    is_text: bool,
    max_phonemes: int,
    target_phonemes: int,
    first_chunk_phonemes: int | None,
    notes: list[str],
) -> tuple[Chunk, ...]:
    if max_phonemes < 1:
        raise ValueError("max_phonemes must be at least 1")
    target = min(target_phonemes, max_phonemes)
    first = min(first_chunk_phonemes, target) if first_chunk_phonemes else target
    pieces: list[Chunk] = []
    for sentence, boundary in _sentences(text, is_text):
        threshold = first if not pieces else target
        pieces.extend(_fit(sentence, boundary, convert, threshold, max_phonemes, 0, notes))
    return _pack(pieces, first, target)


def _sentences(text: str, is_text: bool) -> list[tuple[str, str]]:
    """Split at blank lines, line breaks and sentence ends; each piece with the boundary that follows it."""
    result: list[tuple[str, str]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        for line in paragraph.split("\n"):
            line = " ".join(line.split())
            ends = [match.end() for match in _SENTENCE_END.finditer(line)
                    if not (is_text and _is_abbreviation(line, match))]
            pieces = [line[begin:end].strip() for begin, end in pairwise([0, *ends, len(line)])]
            result.extend((piece, "sentence") for piece in pieces if piece)
            if result and result[-1][1] == "sentence":
                result[-1] = (result[-1][0], "line")
        if result and result[-1][1] == "line":
            result[-1] = (result[-1][0], "paragraph")
    if result:
        result[-1] = (result[-1][0], "end")
    return result


def _is_abbreviation(line: str, match: re.Match[str]) -> bool:
    """A period after a title or followed by a lower-case word does not end a sentence ("Dr. Smith", "e.g. this")."""
    if line[match.start()] != ".":
        return False
    following = line[match.end():match.end() + 1]
    if following.islower():
        return True
    word = line[:match.start()].rsplit(None, 1)[-1].lower() if line[:match.start()].strip() else ""
    return word in _TITLES


def _fit(
    text: str, boundary: str, convert: Callable[[str], str], target: int, limit: int, depth: int, notes: list[str]
) -> list[Chunk]:
    """Convert ``text``; when its phonemes are too long, split it one level finer and recurse."""
    phonemes = convert(text)
    if not any(symbol.isalpha() for symbol in phonemes):
        return []
    if len(phonemes) <= (target if depth == 0 else limit):
        return [Chunk(text, phonemes, boundary)]
    parts = _split_at(text, _CLAUSE_END, "clause") if depth == 0 else []
    if len(parts) < 2:
        if len(phonemes) <= limit:
            return [Chunk(text, phonemes, boundary)]
        parts = _split_words(text)
    if len(parts) < 2:
        notes.append(f"A piece too long for the model was cut to {limit} phonemes: {text[:40]!r}.")
        return [Chunk(text, phonemes[:limit].rstrip(), boundary)]
    pieces = []
    for index, (part, inner) in enumerate(parts):
        pieces.extend(_fit(part, boundary if index == len(parts) - 1 else inner, convert, target, limit, depth + 1,
                           notes))
    return pieces


def _split_at(text: str, pattern: re.Pattern[str], boundary: str) -> list[tuple[str, str]]:
    parts, start = [], 0
    for match in pattern.finditer(text):
        parts.append(text[start:match.end()])
        start = match.end()
    parts.append(text[start:])
    return [(part.strip(), boundary) for part in parts if part.strip()]


def _split_words(text: str) -> list[tuple[str, str]]:
    """Split in two at the space nearest the middle, or (no spaces) between characters at the middle."""
    middle = len(text) // 2
    spaces = [index for index, char in enumerate(text) if char == " "]
    if spaces:
        cut = min(spaces, key=lambda index: abs(index - middle))
        return [(part, "word") for part in (text[:cut].strip(), text[cut:].strip()) if part]
    while 0 < middle < len(text) and unicodedata.combining(text[middle]):
        middle += 1
    if not 0 < middle < len(text):
        return []
    return [(text[:middle], "word"), (text[middle:], "word")]


def _pack(pieces: list[Chunk], first: int, target: int) -> tuple[Chunk, ...]:
    """Join neighbouring pieces while the joined phonemes stay within the size for that chunk, never across lines.

    After a short first chunk the size doubles with each chunk up to ``target``: a chunk then renders while the one
    before it plays (the engine runs at under half real time), so streamed audio has no gaps."""
    chunks: list[Chunk] = []
    current: list[Chunk] = []
    for piece in pieces:
        size = min(target, first * 2 ** len(chunks))
        joined = sum(len(p.phonemes) + 1 for p in current) + len(piece.phonemes)
        if current and (joined > size or current[-1].boundary in _HARD_BOUNDARIES):
            chunks.append(_join(current))
            current = []
        current.append(piece)
    if current:
        chunks.append(_join(current))
    return tuple(chunks)


def _join(pieces: list[Chunk]) -> Chunk:
    return Chunk(
        text=" ".join(piece.text for piece in pieces),
        phonemes=" ".join(piece.phonemes for piece in pieces),
        boundary=pieces[-1].boundary,
    )


def _backend(code: str) -> _Backend:
    """Return the cached converter for a language code, building it once (thread-safe)."""
    with _BACKENDS_LOCK:
        if code not in _BACKENDS:
            _BACKENDS[code] = _build_backend(code)
        return _BACKENDS[code]


def spacy_model_installed() -> bool:
    """Whether misaki's English G2P can run without downloading its spaCy model.

    Both checks matter: misaki calls ``spacy.cli.download`` unless the model's distribution metadata is installed.
    """
    if importlib.util.find_spec(SPACY_MODEL) is None:
        return False
    try:
        importlib.metadata.distribution(SPACY_MODEL)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _build_backend(code: str) -> _Backend:
    if code in "ab":
        return _misaki_english(code) if spacy_model_installed() else _espeak(code, fallback=True)
    if code == "j":
        return _misaki_extra("ja", "Japanese", lambda ja: ja.JAG2P())
    if code == "z":
        # version=None is what KPipeline picks for hexgrad/Kokoro-82M (v1.0); "1.1" is for Kokoro-82M-v1.1-zh.
        return _misaki_extra("zh", "Mandarin Chinese", lambda zh: zh.ZHG2P(version=None))
    return _espeak(code, fallback=False)


def _wrap(name: str, g2p: Callable[[str], tuple[str, object]], notes: tuple[str, ...] = ()) -> _Backend:
    return _Backend(name=name, convert=lambda text: g2p(text)[0] or "", notes=notes)


def _espeak(code: str, fallback: bool) -> _Backend:
    voice = ESPEAK_VOICES[code]
    try:
        from misaki import espeak
        g2p = espeak.EspeakG2P(language=voice)
    except (ImportError, OSError, RuntimeError) as exc:
        raise SynthesisError(
            f"espeak-ng could not start for {LANGUAGES[code]} ({exc}); install the espeakng-loader package."
        ) from exc
    if not fallback:
        return _wrap(f"espeak {voice}", g2p)
    note = (
        f"{LANGUAGES[code]} is phonemized by espeak-ng ({voice}) because the spaCy model {SPACY_MODEL} that Kokoro's "
        f"own English G2P (misaki) needs is not installed; pronunciation may differ from Kokoro's."
    )
    return _wrap(f"espeak {voice} (fallback: spaCy model {SPACY_MODEL} missing)", g2p, (note,))


def _misaki_english(code: str) -> _Backend:
    from misaki import en, espeak

    notes: tuple[str, ...] = ()
    try:
        fallback = espeak.EspeakFallback(british=code == "b")
    except (OSError, RuntimeError) as exc:
        fallback = None
        notes = (f"espeak-ng is unavailable ({exc}), so words missing from misaki's lexicon are skipped.",)
    g2p = en.G2P(trf=False, british=code == "b", fallback=fallback, unk="")

    def convert(text: str) -> str:
        _, tokens = g2p(text)
        # As KPipeline.tokens_to_ps: each token's phonemes, one space where the text had whitespace.
        return "".join((token.phonemes or "") + (" " if token.whitespace else "") for token in tokens).strip()

    return _Backend(name=f"misaki {ESPEAK_VOICES[code]}", convert=convert, notes=notes)


def _misaki_extra(module: str, language: str, build: Callable[[ModuleType], Callable[[str], tuple]]) -> _Backend:
    """Build misaki's G2P for a language that needs an optional extra, or say how to install it."""
    try:
        g2p = build(importlib.import_module(f"misaki.{module}"))
    except ImportError as exc:
        raise SynthesisError(
            f"{language} needs misaki's {module} extra, which is not installed here "
            f"(missing {exc.name or exc}); install it with: pip install 'misaki[{module}]'."
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise SynthesisError(f"{language} G2P could not start ({exc}); reinstall 'misaki[{module}]'.") from exc
    return _wrap(f"misaki {module}", g2p)
