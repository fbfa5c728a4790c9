"""Thin Streamlit glue shared by the pages: session state, cached loaders, the sidebar and speaking.

With ``explorer.app.timing`` (which drives pages through ``streamlit.testing``), the only Streamlit code of the
package. Every computation it triggers lives elsewhere in ``explorer`` and is tested there; this module decides what
is cached and for whom:

- ``st.cache_data`` (a copy per call) for voices and analysis results; the analysis, t-SNE and the recipe context
  are also kept on disk (Streamlit's ``persist="disk"``, keyed by the voices' fingerprint), so a restarted server
  opens every page without computing them again;
- ``st.cache_resource`` (one object shared by every session) for engines, the recipe context and the audio cache.
  Those objects are never mutated after creation, and engines serialise their model calls with a lock.
"""

from __future__ import annotations

import base64
import dataclasses
import faulthandler
import hashlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import streamlit as st

from explorer import analysis as analysis_module
from explorer import recipe as recipe_module
from explorer import voices as voices_module
from explorer.analysis import VoiceAnalysis, analyze, check_perplexity, summary_label, tsne
from explorer.app import state
from explorer.app.listen import SPEED_RANGE, SPEED_STEP, Render, SpeechRequest, synthesize_cached
from explorer.audio import AudioCache, wav_bytes
from explorer.engines import (
    ENGINE_KINDS,
    PRELOAD_VARIABLE,
    Engine,
    SharedEngines,
    auto_choice,
    available_engines,
)
from explorer.errors import ExplorerError, ModelFilesError
from explorer.g2p import g2p_description
from explorer.recipe import RecipeContext
from explorer.voices import LANGUAGES, PACK_ROWS, Voice, VoiceSet, load_bundled

if TYPE_CHECKING:  # torch is imported only when a page asks for the architecture
    from explorer.architecture import ArchitectureSummary
    from explorer.meters import Meters
    from explorer.synth import RenderedChunk

__all__ = [
    "add_uploaded_voices",
    "analysis_caption",
    "analysis_row",
    "architecture_summary",
    "audio_cache",
    "bundled_voices",
    "enable_stack_dumps",
    "engine",
    "escape_markdown",
    "init_state",
    "match_gate",
    "preload_engine",
    "recipe_context",
    "render_meters",
    "rendered_before",
    "session_voices",
    "share_column",
    "shared_widget",
    "speak",
    "speech_request",
    "speech_settings",
    "show_chart",
    "show_error",
    "sidebar",
    "sidebar_voice_sources",
    "stock_value_scale",
    "stream_chunk",
    "voice_analysis",
    "with_tsne",
]

AUDIO_CACHE_BYTES = 256 * 2**20
LANGUAGE_CHOICES = LANGUAGES


def enable_stack_dumps() -> None:
    """Let ``kill -USR1 <server pid>`` write every thread's Python stack to the server's stderr (its log).

    A server that stops answering its listeners while its CPU idles is waiting somewhere; the stacks say where, with
    nothing to install and no restart. Idempotent; a no-op where the platform has no ``SIGUSR1`` (Windows).
    """
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)


def init_state() -> None:
    """Put every key that must survive page changes into ``st.session_state``, once per session."""
    for key, value in state.STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, dict) else value


_CODE_STAMP = hashlib.sha256(b"".join(
    Path(module.__file__).read_bytes() for module in (analysis_module, recipe_module, voices_module)
)).hexdigest()[:16]
"""Part of every on-disk cache key: a result stored by other analysis code is never read back."""


@st.cache_data(show_spinner="Loading the bundled voices…")
def bundled_voices() -> VoiceSet:
    """The 54 bundled voices, verified against their manifest once per process."""
    return load_bundled()


@st.cache_data(show_spinner=False)
def stock_value_scale() -> float:
    """The largest magnitude of any value of any bundled voice: the one colour scale every voice's heatmap uses."""
    return float(max(np.abs(voice.pack).max() for voice in bundled_voices()))


def session_voices() -> VoiceSet:
    """Bundled voices plus what this session uploaded (an upload with a stock name replaces that voice)."""
    return bundled_voices().with_voices(st.session_state.get(state.UPLOADED_VOICES, ()))


def add_uploaded_voices(voices: list[Voice]) -> None:
    """Add uploaded voices to this session (replacing same-named uploads)."""
    kept = [v for v in st.session_state.get(state.UPLOADED_VOICES, ()) if v.name not in {u.name for u in voices}]
    st.session_state[state.UPLOADED_VOICES] = tuple(kept + list(voices))


@st.cache_data(show_spinner="Analysing voices…", max_entries=8, persist="disk")
def _analysis(_voices: VoiceSet, fingerprint: str, row: int | None, code: str) -> VoiceAnalysis:
    return analyze(_voices, row=row, tsne_layers=())


def voice_analysis(voices: VoiceSet, row: int | None = None) -> VoiceAnalysis:
    """Every analysis of ``voices`` but t-SNE, the slow one (cached by the voices' content and the row)."""
    return _analysis(voices, voices.fingerprint(), row, _CODE_STAMP)


@st.cache_data(show_spinner="Embedding voices with t-SNE…", max_entries=16, persist="disk")
def _tsne(_vectors: object, fingerprint: str, row: int | None, layer: str, perplexity: float, code: str) -> object:
    return tsne(_vectors, layer, perplexity=perplexity)


def with_tsne(
    analysis: VoiceAnalysis, voices: VoiceSet, layer: str, perplexity: float | None = None
) -> VoiceAnalysis:
    """``analysis`` holding only the t-SNE of ``layer`` at ``perplexity`` (None: the default for these voices), with
    ``tsne_perplexity`` set to it; computed once per voices, row, layer and perplexity.

    Raises:
        AnalysisError: a perplexity outside ``explorer.analysis.perplexity_bounds`` for these voices.
    """
    used = check_perplexity(perplexity, len(analysis.names))
    coordinates = _tsne(analysis.vectors, voices.fingerprint(), analysis.row, layer, used, _CODE_STAMP)
    return dataclasses.replace(analysis, tsne={layer: coordinates}, tsne_perplexity=used)


WORD_JOINER = "\u2060"
"""An invisible character that joins without a break: put inside ``www.``, ``https://`` or ``a@b.c``, it keeps the
text as it looks while no automatic-link or shortcode pattern matches any more."""
_MARKUP = re.compile(r"([\\`*_{}\[\]#|<>~$&])")
"""Characters that make inline markup: emphasis, code, links and images, tags and entities, tables, maths."""
_BLOCK_MARKER = re.compile(r"^([ \t]*)(?:([-+=])|(\d+)([.)]))", re.MULTILINE)
"""What turns a line into a list item, a heading underline or a rule: ``-``, ``+``, ``=`` or ``1.`` at its start."""
_AUTOLINKED = re.compile(r"(?i:www)(?=\.)|[:@]")
"""Where Streamlit's Markdown (react-markdown with remark-gfm and remark-emoji) finds links and shortcodes in text
whose escapes it has already resolved, so a backslash cannot stop it: ``www.`` and ``http(s)://`` (the patterns of
mdast-util-gfm-autolink-literal, found in Streamlit 1.67's bundle), e-mail addresses (``x@y.z``), and ``:name:``
emoji, ``:material/name:`` icons and ``:color[...]`` directives."""


def escape_markdown(text: object) -> str:
    """Return ``text`` as Markdown that Streamlit shows as exactly that text: no link, format, maths or icon.

    Names and messages from uploads, URLs and files are shown in ``st.warning``, ``st.success``, ``st.caption``...,
    which read Markdown. Markup characters are escaped with a backslash, and so are the markers that would start a
    list or a heading at the start of a line. Automatic links cannot be escaped that way (remark-gfm finds them after
    the escapes are resolved), so a ``WORD_JOINER`` goes after every ``:`` and ``@`` and after a ``www`` before a
    dot: ``https://x`` and ``www.x.com`` read as before, but are no longer links.

    Example:
        >>> from explorer.app.ui import WORD_JOINER, escape_markdown
        >>> print(escape_markdown("[click](https://evil.example) **b** $x$").replace(WORD_JOINER, "+"))
        \\[click\\](https:+//evil.example) \\*\\*b\\*\\* \\$x\\$
    """
    escaped = _MARKUP.sub(r"\\\1", str(text))
    escaped = _BLOCK_MARKER.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}", escaped)
    return _AUTOLINKED.sub(lambda m: m[0] + WORD_JOINER, escaped)


def show_error(error: ExplorerError, about: str = "") -> None:
    """Show a library error to the person as the one sentence it is, after ``about`` (what it concerns, e.g.
    "Recipe C: ") where several inputs could have caused it."""
    st.error(escape_markdown(f"{about}{error}"), icon=":material/warning:")


@st.cache_resource
def _shared_engines() -> SharedEngines:
    """The server's engines, one per kind, shared by every session."""
    return SharedEngines()


def _engine(kind: str) -> Engine:
    shared = _shared_engines()
    if shared.loaded(kind):
        return shared.get(kind)
    with st.spinner("Loading the speech engine…"):
        bar = st.empty()
        try:
            return shared.get(kind, progress=lambda done, what: bar.progress(done, text=what))
        finally:
            bar.empty()


def engine(kind: str | None = None) -> Engine:
    """The shared engine for ``kind`` (the session's choice by default); assembling the offline model shows a bar."""
    return _engine(kind or st.session_state[state.ENGINE_KIND])


def preload_engine() -> None:
    """Start loading the session's engine in the background, for a page that speaks, so that its first synthesis
    does not wait for the load and warm-up (about 2 s for torch from its traced graphs); ``EXPLORER_PRELOAD=0`` turns
    this off."""
    if os.environ.get(PRELOAD_VARIABLE, "").strip() != "0":
        _shared_engines().preload(st.session_state[state.ENGINE_KIND])


@st.cache_resource
def match_gate() -> threading.Lock:
    """One voice search at a time on this server: a search keeps every core busy for minutes, and two would each
    take twice as long while every other visitor's renders wait."""
    return threading.Lock()


@st.cache_resource
def audio_cache() -> AudioCache:
    """One byte-bounded audio cache for the whole server, so replaying anything already heard costs no synthesis."""
    return AudioCache(AUDIO_CACHE_BYTES)


def speech_request() -> SpeechRequest:
    """What the session asks the listening pages to say: its sample text, language, speed and engine kind."""
    return SpeechRequest(st.session_state[state.SAMPLE_TEXT], st.session_state[state.LANG],
                         st.session_state[state.SPEED], st.session_state[state.ENGINE_KIND])


def speech_settings() -> SpeechRequest:
    """Show the sample text, language and speed (the same widgets on the Lab and A/B pages, kept for the session)
    and return the request they describe."""
    st.text_area("Sample text", key=state.SAMPLE_TEXT, persist_state="session", height=80)
    language_column, speed_column = st.columns(2)  # below the text, so a half-page column shows them whole
    language_column.selectbox("Language", list(LANGUAGE_CHOICES), key=state.LANG, persist_state="session",
                              format_func=LANGUAGE_CHOICES.get)
    speed_column.slider("Speed", *SPEED_RANGE, step=SPEED_STEP, key=state.SPEED, persist_state="session")
    return speech_request()


def speak(request: SpeechRequest, style: np.ndarray, on_chunk: Callable[[RenderedChunk], None] | None = None,
          engine: Engine | None = None) -> Render:
    """Say ``request`` with ``style`` through the server's audio cache: what was heard before replays at once.

    Args:
        request: the text, language, speed and engine kind.
        style: a voicepack or a 256-vector.
        on_chunk: called with each chunk as it is rendered (see ``stream_chunk``); never on a cache hit.
        engine: the engine, when the page already holds it for several renders; else the request's kind (loaded
            with a spinner when it is not yet).

    Raises:
        ExplorerError: the engine could not be loaded, or refused the text, style or speed.
    """
    return synthesize_cached(request.text, style=style, engine=engine or _engine(request.engine_kind),
                             cache=audio_cache(), lang=request.lang, speed=request.speed, on_chunk=on_chunk)


def rendered_before(state_key: str, signature: tuple[object, ...]) -> bool:
    """True when this page's last render (kept under ``state_key``) had ``signature``: it replays without a click."""
    return st.session_state.get(state_key) == signature


@st.cache_data(show_spinner="Measuring the render…", max_entries=64)
def _meters(audio_key: str, _audio: object, text: str | None, reference_keys: tuple[str, ...],
            _references: dict[str, object]) -> Meters:
    from explorer import meters

    return meters.measure(_audio, text=text, references=_references)


def render_meters(render: Render, text: str | None, references: Mapping[str, Render]) -> Meters:
    """Meters of a Lab or A/B render, measured once per render, text and references (keyed by audio-cache keys).

    Args:
        render: the render to measure.
        text: the words spoken, for the word error rate; None skips it (the recogniser only knows English).
        references: renders to compare the voice with, by label.
    """
    keys = tuple(f"{label}\0{ref.key}" for label, ref in references.items())
    return _meters(render.key, render.audio, text, keys, {label: ref.audio for label, ref in references.items()})


@st.cache_data(show_spinner="Preparing PCA axes and centroids…", max_entries=2, persist="disk")
def _recipe_context_on_disk(_voices: VoiceSet, fingerprint: str, code: str) -> RecipeContext:
    return RecipeContext.from_voices(_voices)


@st.cache_resource
def _recipe_context(_voices: VoiceSet, fingerprint: str) -> RecipeContext:
    # One object for every session (cache_data would copy it on every rerun), read from disk at a cold start.
    return _recipe_context_on_disk(_voices, fingerprint, _CODE_STAMP)


def recipe_context() -> RecipeContext:
    """PCA axes and centroids of the stock voices: the fixed reference every recipe is applied against."""
    voices = bundled_voices()
    return _recipe_context(voices, voices.fingerprint())


def sidebar() -> None:
    """Show, on every page, the engine and weights in use, the G2P in use and where the voices come from."""
    with st.sidebar:
        st.subheader("Session")
        st.selectbox("Engine", ENGINE_KINDS, key=state.ENGINE_KIND, help="The program that turns a voice and text "
                     "into sound. Every engine speaks with the same Kokoro v1.0 model. **torch** runs Kokoro's own "
                     "code, the fastest where the processor does half-precision (bf16) sums natively. **onnx** runs "
                     "a compact exported copy that needs a third of the memory. **auto** picks for this server: onnx "
                     "where it may use less than 4 GiB of memory, else torch (the EXPLORER_ENGINE environment "
                     "variable overrides). The endings choose the number precision: fp32 or bf16 for torch, int8 "
                     "(smaller, the default) or float for onnx. `python -m explorer bench` compares their speed.")
        chosen = st.session_state[state.ENGINE_KIND]
        kind, reason = chosen, ""
        try:
            if chosen == "auto":
                kind, why = auto_choice()
                reason = f" (auto: {why})"
        except ExplorerError as error:  # EXPLORER_ENGINE names no engine: say so here, and again at Synthesize
            show_error(error)
        described = dict(available_engines())
        if kind in described:
            st.caption(f"**Engine:** {kind}{escape_markdown(reason)} · **weights:** {escape_markdown(described[kind])}")
        else:
            st.caption(f"**Engine:** {kind} is not available here: install requirements.txt (make run).")
        st.caption(f"**G2P:** {escape_markdown(g2p_description(st.session_state[state.LANG]))}")


def sidebar_voice_sources() -> None:
    """Show where this session's voices come from; called after the page ran, so an upload counts at once."""
    sources = session_voices().table().source.value_counts()
    st.sidebar.caption("**Voices:** " + ", ".join(f"{n} {escape_markdown(s)}" for s, n in sources.items()))


def _copy_state(source: str, target: str) -> None:
    st.session_state[target] = st.session_state[source]


def shared_widget(state_key: str, widget_key: str, default: object = None) -> dict[str, object]:
    """Return the ``key``/``on_change`` arguments that make a page's widget show and edit a session-wide value.

    Streamlit drops a page's widget values when the person leaves the page; the value itself lives under
    ``state_key`` (``default`` until first set), and the widget (``widget_key``, with the page's prefix) is loaded
    from it on every run.

    Example:
        >>> st.text_area("Sample text", **shared_widget(state.SAMPLE_TEXT, state.VOICES_TEXT))  # doctest: +SKIP
    """
    st.session_state[widget_key] = st.session_state.setdefault(state_key, default)
    return {"key": widget_key, "on_change": _copy_state, "args": (widget_key, state_key)}


MEAN_ROW = "mean"
ROW_CHOICES: tuple[str | int, ...] = (MEAN_ROW, *range(PACK_ROWS))
"""What the analysis pages can summarise each voice by: the mean over rows, or one row 0-509."""


def analysis_row(widget_key: str) -> int | None:
    """Show the summary-vector choice every analysis page shares, and return it (None: the mean over rows).

    The choice is kept for the session under ``state.ANALYSIS_ROW`` (``"mean"`` or a row), so the Map, Groups and
    Dimensions pages always analyse the same vectors; ``widget_key`` is the page's own key for the widget.
    """
    choice = st.selectbox(
        "Summary vector",
        ROW_CHOICES,
        format_func=lambda row: f"mean over the {PACK_ROWS} rows" if row == MEAN_ROW else f"row {row} ({row + 1} "
        "phonemes)",
        help=f"A voicepack holds {PACK_ROWS} style vectors, one per utterance length: Kokoro styles an utterance of "
        "n phonemes (speech sounds) with row n - 1. To compare voices, each voice is summed up by one vector: the mean "
        f"over all {PACK_ROWS} rows (the default: the voice's overall character), or the one row that utterances of "
        "a given length use.",
        **shared_widget(state.ANALYSIS_ROW, widget_key, MEAN_ROW),
    )
    return None if choice == MEAN_ROW else int(choice)


def analysis_caption(row: int | None) -> None:
    """Say under a page's title which summary vector its figures come from."""
    st.caption(f"Every figure on this page uses the {summary_label(row)}.")


@st.cache_resource(show_spinner="Building Kokoro's model and tracing one forward pass (a few seconds)…")
def _architecture(weights: str | None, stamp: tuple[int, int] | None) -> ArchitectureSummary:
    # ``stamp`` (modification time, size) is only part of the cache key: a replaced file is measured again.
    from explorer import architecture

    return architecture.analyze_architecture(weights)


def architecture_summary(weights: Path | str | None = None) -> ArchitectureSummary:
    """The measured architecture of ``kokoro.KModel``, built once per weights file and shared by every session.

    Args:
        weights: a local Kokoro ``.pth``; None for random initialisation (counts and structure are the same).

    Raises:
        ModelFilesError: the weights file is missing, unreadable, unsafe or does not fit the model.
    """
    if weights is None:
        return _architecture(None, None)
    try:
        path = Path(weights).expanduser().resolve()
        stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    except (OSError, ValueError) as error:  # e.g. a NUL byte, or a folder that cannot be read
        raise ModelFilesError(f"The weights path {str(weights)[:200]!r} cannot be used ({error}).") from None
    return _architecture(str(path), stamp)


CHART_SUBTITLE_COLOR = "#9aa3b0"
"""Chart subtitles in a grey that reads on dark and light themes (Vega's default is near black)."""
CHART_TEXT_COLORS = {"dark": "#e6e9ef", "light": "#31333f"}
"""Text marks (bar labels) in the theme's text colour; Vega draws them black, unreadable on the dark theme.

(``st.context.theme.type`` said "light" on the first run of a dark app here, so the configured base is used.)"""


SHARE_FORMAT = "%.1f%%"
"""How every table writes a share: one decimal, as the metrics do (``f"{share:.1%}"``); the column holds percent."""


def share_column(label: str | None = None) -> st.column_config.NumberColumn:
    """Return the column format of a share held in percent (``SHARE_FORMAT``), so every share reads alike."""
    return st.column_config.NumberColumn(label, format=SHARE_FORMAT)


def show_chart(chart: alt.TopLevelMixin, **kwargs: object) -> object:
    """Draw an ``explorer.charts`` chart at the size it was built for, readable on the app's theme.

    Left alone, Streamlit fits a chart's titles, axes and legends inside its width x height ("fit" autosize), which
    squeezes the plot to a sliver under a long title, and stretches simple charts to the container's width. "pad"
    keeps the plot area at the chart's own size, as in the saved PNGs, and "content" width keeps it from stretching.

    Args:
        chart: any altair chart.
        **kwargs: passed to ``st.altair_chart`` (``key``, ``on_select``...).

    Returns:
        What ``st.altair_chart`` returns: the selection state when ``on_select="rerun"``.
    """
    theme = "light" if st.get_option("theme.base") == "light" else "dark"  # .streamlit/config.toml sets dark
    padded = chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))
    styled = padded.configure_title(subtitleColor=CHART_SUBTITLE_COLOR).configure_text(
        color=CHART_TEXT_COLORS[theme], fill=CHART_TEXT_COLORS[theme]
    )
    return st.altair_chart(styled, width="content", **kwargs)


_STREAM_SCRIPT = """<script>
(() => {
  const stream = window.explorerStream ??= {context: null, id: null, next: 0, sources: [], played: [],
                                            chain: Promise.resolve()};
  const id = %(id)s, index = %(index)d, wav = %(wav)s;
  stream.chain = stream.chain.then(async () => {
    stream.context ??= new AudioContext();
    if (stream.id !== id) {
      stream.sources.forEach((source) => source.stop());
      Object.assign(stream, {id, next: 0, sources: [], played: []});
    }
    stream.context.resume();
    const bytes = Uint8Array.from(atob(wav), (char) => char.charCodeAt(0));
    const buffer = await stream.context.decodeAudioData(bytes.buffer);
    const source = stream.context.createBufferSource();
    source.buffer = buffer;
    source.connect(stream.context.destination);
    const start = Math.max(stream.context.currentTime + 0.02, stream.next);
    source.start(start);
    stream.next = start + buffer.duration;
    stream.sources.push(source);
    stream.played.push({index, start, duration: buffer.duration, state: stream.context.state, at: performance.now(),
                        lead: start - stream.context.currentTime});
  }).catch((error) => console.error("explorer stream:", error));
})();
</script>"""


def stream_chunk(box: st.delta_generator.DeltaGenerator, stream_id: str, chunk: RenderedChunk) -> None:
    """Queue ``chunk`` for gapless playback in the browser as soon as it is rendered.

    ``st.audio`` can only show whole files, so the first words would wait for the last chunk. Each chunk instead
    goes to the page as a WAV inside a small script that schedules it on one Web Audio clock right after the
    previous chunk (with its pause); a new ``stream_id`` stops what an earlier stream still had queued. The browser
    lets it play because the person just clicked (the same rule as ``st.audio(autoplay=True)``).
    ``window.explorerStream.played`` records what was scheduled, when (``at``, the page's clock) and how long after
    that it sounds (``lead``, seconds), for the browser tests and their first-sound figure.

    Args:
        box: where the script elements go (a container the caller empties when the stream is over).
        stream_id: the same for every chunk of one render.
        chunk: a chunk from ``explorer.synth``; its pause is played after it.
    """
    wav = base64.b64encode(wav_bytes(chunk.padded_audio, chunk.sample_rate)).decode()
    script = _STREAM_SCRIPT % {"id": json.dumps(stream_id), "index": chunk.index, "wav": json.dumps(wav)}
    box.html(script, unsafe_allow_javascript=True)
