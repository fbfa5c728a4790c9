"""Voices: every loaded voice with filters, one voice's pack and row trajectory, "Hear it", uploads and the Hub."""

import streamlit as st

from explorer import charts
from explorer.app import state, ui
from explorer.analysis import row_trajectory
from explorer.attributes import load_axes
from explorer.audio import wav_bytes
from explorer.app.listen import SpeechRequest
from explorer.errors import ExplorerError
from explorer.g2p import SAMPLE_SENTENCES, pronunciation_label
from explorer.voices import HUB_REPOS, LANGUAGES, SUPPORTED_SUFFIXES, load_bytes, load_hub

st.title("Voices")
st.caption(
    "Every voice loaded in this session: the 54 bundled Kokoro v1.0 voices, plus any you upload or load from "
    "Hugging Face. A voicepack holds one 256-value style vector per utterance length (510 rows); dims 0-127 "
    "drive the decoder (timbre), dims 128-255 the prosody predictor (rhythm, pitch, duration)."
)

# --- adding voices ---------------------------------------------------------------------------------------------------
with st.expander("Add voices: upload packs or load a Hugging Face repo"):
    upload_column, hub_column = st.columns(2)
    with upload_column:
        files = st.file_uploader(
            "Upload voicepacks",
            type=[suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES],
            accept_multiple_files=True,
            key=state.VOICES_UPLOAD,
            help="A .pt or .npy of shape [510, 1, 256] or [510, 256], a raw float32 .bin, or an .npz of several "
            "packs. The file name (or the npz entry) becomes the voice's name; a stock name replaces that voice.",
        )
        # Each file is read once per session: its outcome is remembered by file id, so reruns neither re-parse
        # nor re-add it.
        outcomes = st.session_state.setdefault(state.VOICES_UPLOAD_OUTCOMES, {})
        for file in files or []:
            if file.file_id not in outcomes:
                try:
                    added = load_bytes(file.getvalue(), file.name)
                except ExplorerError as error:
                    outcomes[file.file_id] = error
                except Exception as error:  # an upload must never take the page down, whatever the library misses
                    outcomes[file.file_id] = ExplorerError(f"Voice file could not be read ({type(error).__name__}).")
                else:
                    ui.add_uploaded_voices(added)
                    outcomes[file.file_id] = tuple(voice.name for voice in added)
                    st.session_state[state.VOICES_VOICE] = added[0].name  # show what was just uploaded
            outcome = outcomes[file.file_id]
            if isinstance(outcome, ExplorerError):
                ui.show_error(outcome)
            else:
                st.success(f"Added from {ui.escape_markdown(file.name)}: {ui.escape_markdown(', '.join(outcome))}")
    with hub_column:
        repo = st.selectbox("Hugging Face repo", HUB_REPOS, key=state.VOICES_HUB_REPO)
        if st.button("Load from Hugging Face", key=state.VOICES_HUB_LOAD):
            try:
                with st.spinner(f"Fetching the voices of {repo}…"):
                    hub_voices = load_hub(repo)
            except ExplorerError as error:
                ui.show_error(error)
            else:
                ui.add_uploaded_voices(list(hub_voices))
                st.success(f"Loaded {len(hub_voices)} voices from {ui.escape_markdown(repo)}.")
        st.caption("Uses the local Hugging Face cache first; without network and cache it says so within seconds.")

# --- the table -------------------------------------------------------------------------------------------------------
voices = ui.session_voices()
table = voices.table()
filters = st.columns(4)
chosen = {
    column: filters[index].multiselect(
        column.capitalize(), sorted(table[column].unique()), key=state.voices_filter_key(column), placeholder="all",
        persist_state="session",
    )
    for index, column in enumerate(("language", "gender", "group", "source"))
}
shown = table
for column, values in chosen.items():
    if values:
        shown = shown[shown[column].isin(values)]
try:
    measured = load_axes().table_frame()
except ExplorerError as error:
    measured = None
    st.caption(f"Measured attributes are not shown: {ui.escape_markdown(error)}")
listed = shown.drop(columns=["language_code"])
if measured is not None:
    listed = listed.merge(measured, on="name", how="left")
picked = st.dataframe(
    listed,
    hide_index=True,
    key=state.VOICES_TABLE,
    on_select="rerun",
    selection_mode="single-row",
    column_config={"name": st.column_config.TextColumn("Voice", pinned=True),
                   **{column: st.column_config.NumberColumn(format="%.1f")
                      for column in (measured.columns[1:] if measured is not None else ())}},
    height=min(38 + 35 * max(len(shown), 1), 330),
)
st.caption(f"{len(shown)} of {len(table)} voices shown. Click a row to look at that voice, a column's header to sort "
           "by it: which voices are the highest, the fastest? The measured columns come from every stock voice "
           "speaking the same English sentences (`python -m explorer axes build`): median pitch and its 10th-90th "
           "percentile spread by Praat, phonemes per second of speaking time (from the predicted durations), BS.1770 "
           "loudness and spectral centroid. Uploaded voices have none.")

if shown.empty:
    st.info("No voice matches these filters.")
    st.stop()

# --- one voice -------------------------------------------------------------------------------------------------------
names = list(shown["name"])
# A row clicked in the table picks that voice, once; the picker below stays free to choose another afterwards.
rows = picked.selection.rows
clicked = names[rows[0]] if rows and rows[0] < len(names) else None
if clicked is not None and clicked != st.session_state.get(state.VOICES_CLICKED):
    st.session_state[state.VOICES_VOICE] = clicked
st.session_state[state.VOICES_CLICKED] = clicked
if st.session_state.get(state.VOICES_VOICE) not in names:
    st.session_state[state.VOICES_VOICE] = state.DEFAULT_VOICE if state.DEFAULT_VOICE in names else names[0]
name = st.selectbox("Voice", names, key=state.VOICES_VOICE)
voice = voices[name]
st.subheader(f"{ui.escape_markdown(name)}")
st.caption(f"{ui.escape_markdown(voice.language)} · {voice.gender} · group {ui.escape_markdown(voice.group)} · "
           f"source: {ui.escape_markdown(voice.source)}")

# Hear it: a voice speaks its own language by default, with a sample sentence of that language. English text is the
# sample text every listening page shares; each other language keeps its own for the session. The player shows only
# what was rendered for exactly the voice, text and settings now on screen.
OWN_LANGUAGE = "own"
language_column, text_column = st.columns([1, 2])
choice = language_column.selectbox(
    "Language", [OWN_LANGUAGE, *LANGUAGES], key=state.VOICES_LANG, persist_state="session",
    format_func=lambda code: "its own language" if code == OWN_LANGUAGE else LANGUAGES[code],
    help="Which language the voice speaks, and so how the text is turned into phonemes. Every voice can speak every "
         "language; each was trained on its own.")
lang = (voice.language_code or "a") if choice == OWN_LANGUAGE else choice
with text_column:
    if lang in "ab":
        st.text_area(f"Sample text ({LANGUAGES[lang]})", height=80,
                     **ui.shared_widget(state.SAMPLE_TEXT, state.VOICES_TEXT))
        text = st.session_state[state.SAMPLE_TEXT]
    else:
        st.session_state.setdefault(state.voices_text_key(lang), SAMPLE_SENTENCES[lang])
        text = st.text_area(f"Sample text ({LANGUAGES[lang]})", height=80, key=state.voices_text_key(lang),
                            persist_state="session")
pronunciation = pronunciation_label(lang)
if pronunciation.startswith("unavailable"):
    st.warning(f"{LANGUAGES[lang]} cannot be spoken here: {ui.escape_markdown(pronunciation[len('unavailable: '):])}",
               icon=":material/warning:")
request = SpeechRequest(text, lang, st.session_state[state.SPEED], st.session_state[state.ENGINE_KIND])
signature = request.signature(name)
if st.button("▶ Hear it", key=state.VOICES_HEAR, type="primary"):
    try:
        with st.spinner(f"Speaking with {name}…"):
            render = ui.speak(request, voice.pack)
        st.session_state[state.VOICES_HEARD] = (signature, wav_bytes(render.audio, render.synthesis.sample_rate),
                                                render.synthesis)
    except ExplorerError as error:
        ui.show_error(error)
heard = st.session_state.get(state.VOICES_HEARD)
if heard is not None and heard[0] == signature:
    _, wav, result = heard
    st.audio(wav, format="audio/wav")
    st.caption(
        f"{result.seconds:.1f} s of audio in {result.compute_seconds:.1f} s (real-time factor {result.rtf:.2f}) · "
        f"spoken by Kokoro v1.0 through the {result.engine} engine · pronunciation by "
        f"{ui.escape_markdown(pronunciation)}"
    )
    for note in result.notes:
        st.caption(f"Note: {ui.escape_markdown(note)}")

heatmap_tab, trajectory_tab = st.tabs(["Voicepack heatmap", "Row trajectory"])
with heatmap_tab:
    ui.show_chart(charts.pack_heatmap(voice.pack, title=name, scale=ui.stock_value_scale()))
    st.caption("Rows are utterance lengths (row n - 1 styles n phonemes), averaged over bins of "
               f"{charts.PACK_ROW_STEP} rows; columns are the 256 style dims. Hover a cell for its value. Every voice "
               "is drawn on one colour scale (the largest value of any stock voice), so voices compare by eye.")
with trajectory_tab:
    ui.show_chart(charts.row_trajectory_chart(row_trajectory(voice.pack), title=name))
    st.caption("How the style changes with utterance length: the norm of each half, and each row's cosine "
               "similarity to row 0.")

ui.preload_engine()  # after the page is drawn: its first synthesis then need not wait for the engine to load
