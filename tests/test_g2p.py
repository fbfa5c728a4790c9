"""Text to phonemes and chunking: what the synthesiser is promised about its input."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import threading
import time
import types
from pathlib import Path

import misaki
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import g2p
from explorer.errors import SynthesisError
from explorer.paths import CONFIG_PATH

HELLO = "Hello world, this is a test."
# misaki's EspeakG2P output seen on this machine (see /work/shared/FACTS.md).
HELLO_EN_US = "həlˈO wˈɜːld, ðɪs ɪz ɐ tˈɛst."
HELLO_EN_GB = "həlˈQ wˈɜːld, ðɪs ɪz ɐ tˈɛst."


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    return json.loads(CONFIG_PATH.read_text())["vocab"]


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty G2P cache for this test, so patched constructors are really called."""
    monkeypatch.setattr(g2p, "_BACKENDS", {})


@pytest.fixture
def no_spacy_model(monkeypatch, fresh_cache):
    """English as on a machine without en_core_web_sm; misaki's English G2P must then never be built."""

    class RefusingG2P:
        def __init__(self, *args, **kwargs):
            raise AssertionError("misaki.en.G2P was built without its spaCy model: it would try to download it")

    fake_en = types.ModuleType("misaki.en")
    fake_en.G2P = RefusingG2P
    monkeypatch.setitem(sys.modules, "misaki.en", fake_en)
    monkeypatch.setattr(misaki, "en", fake_en, raising=False)
    monkeypatch.setattr(g2p, "spacy_model_installed", lambda: False)


def test_english_without_spacy_model_uses_espeak_and_says_so(no_spacy_model):
    result = g2p.phonemize(HELLO, "a")
    assert result.phonemes == HELLO_EN_US
    assert result.g2p.startswith("espeak en-us (fallback")
    assert any("en_core_web_sm" in note and "espeak" in note for note in result.notes)


def test_british_english_fallback_uses_the_en_gb_voice(no_spacy_model):
    result = g2p.phonemize(HELLO, "b")
    assert result.phonemes == HELLO_EN_GB
    assert result.g2p.startswith("espeak en-gb (fallback")


@pytest.mark.skipif(g2p.spacy_model_installed(), reason="this machine has the spaCy model")
def test_this_machine_has_no_spacy_model_so_the_fallback_note_is_shown():
    result = g2p.phonemize(HELLO, "a")
    assert result.phonemes == HELLO_EN_US
    assert "fallback" in result.g2p and result.notes


def test_spacy_model_counts_as_installed_only_with_its_package_metadata(tmp_path, monkeypatch):
    """misaki downloads the model unless spaCy sees its distribution, so a bare module is not enough."""
    (tmp_path / "en_core_web_sm").mkdir()
    (tmp_path / "en_core_web_sm" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not g2p.spacy_model_installed()

    info = tmp_path / "en_core_web_sm-3.8.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: en_core_web_sm\nVersion: 3.8.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert g2p.spacy_model_installed()


def test_english_with_spacy_model_goes_through_misaki_as_kpipeline_does(monkeypatch, fresh_cache):
    built = {}

    class FakeG2P:
        def __init__(self, **kwargs):
            built.update(kwargs)

        def __call__(self, text):
            tokens = [types.SimpleNamespace(phonemes="həlˈO", whitespace=" "),
                      types.SimpleNamespace(phonemes=None, whitespace=" "),
                      types.SimpleNamespace(phonemes="wˈɜɹld", whitespace="")]
            return "ignored", tokens

    fake_en = types.ModuleType("misaki.en")
    fake_en.G2P = FakeG2P
    monkeypatch.setitem(sys.modules, "misaki.en", fake_en)
    monkeypatch.setattr(misaki, "en", fake_en, raising=False)
    monkeypatch.setattr(g2p, "spacy_model_installed", lambda: True)

    result = g2p.phonemize("Hello world", "b")

    assert result.phonemes == "həlˈO wˈɜɹld"
    assert result.g2p == "misaki en-gb"
    assert result.notes == ()
    assert built["british"] is True and built["unk"] == "" and built["trf"] is False
    assert built["fallback"] is not None


def test_the_converter_in_use_can_be_named_for_a_status_line_without_errors(no_spacy_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "misaki.ja", None)
    monkeypatch.delattr(misaki, "ja", raising=False)
    assert g2p.g2p_description("a") == "espeak en-us (fallback: spaCy model en_core_web_sm missing)"
    assert g2p.g2p_description("e") == "espeak es"
    assert g2p.g2p_description("j").startswith("unavailable: Japanese needs")
    assert g2p.g2p_description("x").startswith("unavailable: Unknown language code")


def test_spanish_goes_through_espeak():
    result = g2p.phonemize("Hola mundo, ¿cómo estás?", "e")
    assert result.g2p == "espeak es"
    assert result.phonemes.startswith("ˈola mˈundo,")


@pytest.mark.parametrize(("alias", "code"), [("en-gb", "b"), ("ES", "e"), ("fr-fr", "f"), (" p ", "p")])
def test_language_aliases_are_accepted(alias, code):
    assert g2p.normalize_language(alias) == code


def test_unknown_language_code_is_a_clear_error():
    with pytest.raises(SynthesisError, match="Unknown language code 'x'"):
        g2p.phonemize("Hello", "x")


def test_language_tables_mirror_kokoro():
    """The codes and aliases are kokoro.pipeline's, read from its source so torch is not imported."""
    source = Path(importlib.util.find_spec("kokoro").origin).with_name("pipeline.py").read_text()
    tree = ast.parse(source)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "ALIASES":
                found[name] = ast.literal_eval(node.value)
            if name == "LANG_CODES":
                found[name] = {kw.arg: ast.literal_eval(kw.value) for kw in node.value.keywords}
    assert found["ALIASES"] == g2p.ALIASES
    assert set(found["LANG_CODES"]) == set(g2p.LANGUAGES)
    for code, voice in g2p.ESPEAK_VOICES.items():
        if code not in "ab":
            assert found["LANG_CODES"][code] == voice


@pytest.mark.parametrize(("code", "extra"), [("j", "ja"), ("z", "zh")])
def test_japanese_and_mandarin_without_their_extra_say_what_to_install(monkeypatch, fresh_cache, code, extra):
    monkeypatch.setitem(sys.modules, f"misaki.{extra}", None)  # makes the import fail as if not installed
    monkeypatch.delattr(misaki, extra, raising=False)
    with pytest.raises(SynthesisError, match=rf"pip install 'misaki\[{extra}\]'"):
        g2p.phonemize("テスト" if code == "j" else "你好", code)


@pytest.mark.parametrize(("code", "text"), [("j", "こんにちは。"), ("z", "你好。")])
def test_japanese_and_mandarin_work_or_fail_clearly_here(code, text):
    try:
        result = g2p.phonemize(text, code)
    except SynthesisError as error:
        assert "pip install 'misaki[" in str(error)
    else:
        assert result.phonemes and result.g2p.startswith("misaki")


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n"])
def test_empty_or_whitespace_text_is_refused(text):
    with pytest.raises(SynthesisError, match="empty"):
        g2p.phonemize(text)


@pytest.mark.parametrize("text", ["😀👍🏽", "\x00\x07\x1b", "...!?", "🎉\u200d\ufe0f"])
def test_text_with_nothing_to_pronounce_is_refused(text):
    with pytest.raises(SynthesisError, match="nothing to pronounce"):
        g2p.phonemize(text)


def test_control_characters_are_stripped_and_reported():
    result = g2p.phonemize("Hel\x00lo\x07 world, this is a test.")
    assert result.phonemes == HELLO_EN_US
    assert any("2 control" in note for note in result.notes)


def test_emoji_inside_text_are_removed_not_spelled_out():
    result = g2p.phonemize("Hello 😀 world, this is a test.")
    assert result.phonemes == HELLO_EN_US
    assert any("😀" in note for note in result.notes)


def test_overlong_text_is_refused_with_the_limit_in_the_message_before_any_phonemizing(monkeypatch):
    """A person pastes 100,000 characters: they are told the limit at once; not one piece reached the phonemizer
    (which would take minutes over that much text)."""
    converted = []
    phonemizer = g2p._Backend(name="recording", convert=lambda piece: converted.append(piece) or "ə", notes=())
    monkeypatch.setattr(g2p, "_backend", lambda code: phonemizer)
    assert g2p.phonemize("word " * 10).phonemes  # the stand-in phonemizer is the one in use
    converted.clear()
    with pytest.raises(SynthesisError, match=r"has 100,000 characters; the limit is 20,000\. Split it into parts"):
        g2p.phonemize("word " * 20_000)
    assert converted == []


def test_text_at_the_limit_is_accepted():
    plan = g2p.chunk_phonemes("ə " * (g2p.MAX_TEXT_CHARS // 2))
    assert sum(chunk.phonemes.count("ə") for chunk in plan.chunks) == g2p.MAX_TEXT_CHARS // 2
    with pytest.raises(SynthesisError):
        g2p.chunk_phonemes("ə" * (g2p.MAX_TEXT_CHARS + 1))


LONG_TEXT = (
    "The quick brown fox jumps over the lazy dog, while the cat watches from the window. "
    "Dr. Smith said we should go outside now! Why not? "
    "It was, after all, the first warm day of the year; everybody felt it.\n\n"
) * 15


def test_long_text_is_split_into_chunks_that_fit_and_cover_the_text_in_order(vocab):
    assert len(LONG_TEXT) > 3000
    plan = g2p.chunk_text(LONG_TEXT, "a", vocab=vocab)
    sizes = [len(chunk.phonemes) for chunk in plan.chunks]
    assert len(plan.chunks) > 5
    assert all(0 < size <= g2p.TARGET_PHONEMES for size in sizes), sizes  # short sentences: packed to the target
    assert " ".join(chunk.text for chunk in plan.chunks) == " ".join(LONG_TEXT.split())
    assert {chunk.boundary for chunk in plan.chunks[:-1]} <= {"sentence", "paragraph"}
    assert plan.chunks[-1].boundary == "end"
    assert all(symbol in vocab for chunk in plan.chunks for symbol in chunk.phonemes)


def test_line_breaks_always_end_a_chunk_as_kpipeline_renders_lines_separately():
    plan = g2p.chunk_text("Roses are red.\nViolets are blue.\n\nThe end.")
    assert [chunk.text for chunk in plan.chunks] == ["Roses are red.", "Violets are blue.", "The end."]
    assert [chunk.boundary for chunk in plan.chunks] == ["line", "paragraph", "end"]


def test_a_sentence_longer_than_the_target_is_split_at_its_commas():
    sentence = "This sentence goes on and on, with clause after clause, and it never seems to stop; " * 8 + "the end."
    plan = g2p.chunk_text(sentence, "a")
    assert len(plan.chunks) > 1
    assert all(len(chunk.phonemes) <= g2p.TARGET_PHONEMES for chunk in plan.chunks)
    assert all(chunk.text[-1] in ",;" and chunk.boundary == "clause" for chunk in plan.chunks[:-1])


@pytest.mark.parametrize("text", [
    "supercalifragilistic" * 250,  # one 5000-letter word
    "no punctuation anywhere just words " * 150,
    "一二三四五六七八九十" * 300,  # no spaces at all (read by espeak as English here)
])
def test_text_without_boundaries_is_still_cut_to_fit_never_failing(text, vocab):
    plan = g2p.chunk_text(text, "a", vocab=vocab)
    assert plan.chunks
    assert all(0 < len(chunk.phonemes) <= g2p.MAX_PHONEMES for chunk in plan.chunks)


def test_a_short_first_chunk_can_be_asked_for_so_audio_starts_sooner():
    plan = g2p.chunk_text(LONG_TEXT, "a", first_chunk_phonemes=60)
    assert len(plan.chunks[0].phonemes) <= 60
    assert len(plan.chunks[1].phonemes) > 60


def test_after_a_short_first_chunk_each_chunk_may_grow_to_twice_the_one_before(vocab):
    """Streaming stays gapless: every chunk renders (at under half real time) while the previous one plays."""
    text = "Hi there. " + " ".join(f"Sentence number {n} is short." for n in range(1, 40))
    plan = g2p.chunk_text(text, "a", vocab=vocab, first_chunk_phonemes=20)
    limits = [min(g2p.TARGET_PHONEMES, 20 * 2**index) for index in range(len(plan.chunks))]
    assert all(len(chunk.phonemes) <= limit for chunk, limit in zip(plan.chunks, limits))
    assert len(plan.chunks[1].phonemes) > 20 and len(plan.chunks[-2].phonemes) > 160  # they do grow
    assert len(g2p.chunk_text(text, "a", vocab=vocab).chunks) < len(plan.chunks)


def test_pauses_follow_the_boundary_a_chunk_ends_at():
    assert g2p.Chunk("a.", "ɐ.", "sentence").pause_seconds == g2p.BOUNDARY_PAUSES["sentence"] > 0
    assert g2p.Chunk("a", "ɐ", "word").pause_seconds == 0
    pauses = g2p.BOUNDARY_PAUSES
    assert pauses["paragraph"] > pauses["line"] > pauses["sentence"] > pauses["clause"] > pauses["word"] == 0


def test_filter_phonemes_drops_unknown_symbols_and_lists_them(vocab):
    kept, dropped = g2p.filter_phonemes("¿kˈomo ✓ estˈas?", vocab)
    assert kept == "kˈomo estˈas?"
    assert dropped == ("¿", "✓")
    note = g2p.dropped_symbols_note(dropped)
    assert "'¿'" in note and "'✓'" in note


def test_raw_phonemes_are_chunked_and_dropped_symbols_reported(vocab):
    plan = g2p.chunk_phonemes("həlˈO wˈɜːld, ðɪs ɪz ɐ tˈɛst. " * 40 + "¿ok", vocab=vocab)
    assert plan.g2p == "raw phonemes"
    assert all(len(chunk.phonemes) <= g2p.TARGET_PHONEMES for chunk in plan.chunks)
    assert all(chunk.text == "" for chunk in plan.chunks)
    assert any("'¿'" in note for note in plan.notes)


def test_raw_phonemes_with_no_known_symbol_are_refused(vocab):
    with pytest.raises(SynthesisError, match="None of the phoneme symbols"):
        g2p.chunk_phonemes("ʘǀǁ", vocab=vocab)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet="əbˈkOtæʃɪ  ,.;!?—\n", min_size=1, max_size=1500),
    max_phonemes=st.integers(min_value=8, max_value=120),
)
def test_any_phoneme_string_fits_the_context_and_keeps_every_letter_in_order(text, max_phonemes):
    try:
        plan = g2p.chunk_phonemes(text, max_phonemes=max_phonemes, target_phonemes=max_phonemes // 2)
    except SynthesisError:
        assert not any(symbol.isalpha() for symbol in text)
        return
    assert all(0 < len(chunk.phonemes) <= max_phonemes for chunk in plan.chunks)
    letters = "".join(symbol for chunk in plan.chunks for symbol in chunk.phonemes if symbol.isalpha())
    assert letters == "".join(symbol for symbol in text if symbol.isalpha())


def test_the_g2p_for_a_language_is_built_once_even_from_many_threads(monkeypatch, fresh_cache):
    from misaki import espeak

    built = []
    real = espeak.EspeakG2P

    def counting(*args, **kwargs):
        built.append(kwargs.get("language"))
        time.sleep(0.05)  # widen the window in which a second thread could build another
        return real(*args, **kwargs)

    monkeypatch.setattr(espeak, "EspeakG2P", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(g2p.phonemize("Hola mundo.", "e").phonemes))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == ["es"]
    assert len(results) == 8 and len(set(results)) == 1
