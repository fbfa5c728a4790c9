"""Match a voice: a recording in (uploaded or recorded here), the recipe whose voice sounds most like it out, judged on
sentences the search never heard."""

import hashlib

import streamlit as st

from explorer.app import state, ui
from explorer.audio import SAMPLE_RATE, integrated_lufs, loudness_match, wav_bytes
from explorer.charts import match_curve_chart
from explorer.errors import ExplorerError
from explorer.match import (
    MATCH_ENGINE,
    MATCH_LANGUAGES,
    LocalEvaluator,
    MatchConfig,
    MatchError,
    MatchProgress,
    Scorer,
    Target,
    match_voice,
    matcher_unavailable,
    report_match,
)
from explorer.recipe import Recipe, apply_recipe, describe
from explorer.voices import LANGUAGES, pack_bytes

st.title("Match a voice")
st.caption(
    "Upload a recording of a voice, or record one here, and the matcher searches the voice space for the recipe "
    "that sounds most like it: it ranks the stock voices by speaker similarity (resemblyzer), blends the best few "
    "with separate timbre and prosody weights, then moves along the PCA axes, keeping to where speech survives. "
    "The result is judged on sentences the search never rendered, beside the best stock voice. It renders with the "
    "torch engine in fp32; each evaluation takes about 2.5 s on two CPU cores, so 100 evaluations take about 4 "
    "minutes."
)

voices = ui.session_voices()
context = ui.recipe_context()
BUDGETS = (20, 30, 60, 100, 200, 300, 500, 1000)
START_FROM = ("every voice", "voices of the language")


def _recording() -> tuple[bytes, str] | None:
    """The recording the person gave: an upload or a browser recording, as bytes and a name."""
    source = st.radio("Recording", ("upload a file", "record here"), key=state.MATCH_SOURCE, horizontal=True,
                      persist_state="session")
    if source == "upload a file":
        upload = st.file_uploader("A recording of one speaker (WAV, FLAC, OGG or MP3; 2 s to a minute of speech)",
                                  type=["wav", "flac", "ogg", "mp3"], key=state.MATCH_UPLOAD)
    else:
        upload = st.audio_input("Record at least 5 seconds of speech", key=state.MATCH_RECORD)
    if upload is None:
        return None
    return upload.getvalue(), upload.name or "recording.wav"


def _analysed(data: bytes, name: str) -> tuple[str, Target] | None:
    """The recording's sha256 and the recording checked and analysed (once per recording), or None after saying why
    it cannot be matched."""
    digest = hashlib.sha256(data).hexdigest()
    kept = st.session_state.get(state.MATCH_TARGET)
    if kept is not None and kept[0] == digest:
        return kept
    try:
        with st.spinner("Listening to the recording…"):
            target = Target.from_bytes(data, name)
    except ExplorerError as error:
        ui.show_error(error)
        return None
    st.session_state[state.MATCH_TARGET] = (digest, target)
    st.session_state[state.MATCH_RESULT] = None
    return digest, target


def _settings() -> tuple[MatchConfig, tuple[str, ...]] | None:
    """The search's settings from the widgets, and the stock voices it starts from; None after saying what is
    wrong."""
    left, middle, right = st.columns(3)
    lang = left.selectbox("The candidates speak", MATCH_LANGUAGES, key=state.MATCH_LANG, persist_state="session",
                          format_func=lambda code: LANGUAGES[code],
                          help="Speak the recording's language: speaker similarity also hears the accent.")
    start_from = middle.radio("Start from", START_FROM, key=state.MATCH_START_FROM, persist_state="session",
                              help="The stock voices ranked first; fewer voices leave more of the budget for the "
                                   "search itself.")
    budget = right.select_slider("Evaluations", BUDGETS, value=100, key=state.MATCH_BUDGET, persist_state="session",
                                 help="Each renders a candidate speaking two sentences and scores it.")
    transcript = st.text_input("What the recording says (optional)", key=state.MATCH_TRANSCRIPT, max_chars=300,
                               persist_state="session",
                               help="The candidates then speak it too, so the same words are compared.")
    left, right, _ = st.columns([1, 1, 2])
    minutes = left.number_input("Time limit (minutes)", 1, 60, 15, key=state.MATCH_MINUTES, persist_state="session")
    seed = right.number_input("Seed", 0, 2**31 - 1, 0, key=state.MATCH_SEED, persist_state="session")
    names = voices.names if start_from == "every voice" else tuple(
        voice.name for voice in voices if (voice.language_code or "") in MATCH_LANGUAGES[lang])
    try:
        config = MatchConfig(budget=int(budget), minutes=float(minutes), seed=int(seed), lang=lang,
                             transcript=transcript.strip() or None)
        if not names:
            raise MatchError(f"No voice here speaks {LANGUAGES[lang]}: start from every voice.")
        if len(names) > config.budget:
            raise MatchError(f"{len(names)} stock voices need a budget of at least {len(names)} evaluations.")
    except ExplorerError as error:
        ui.show_error(error)
        return None
    return config, names


def _search(target: Target, digest: str, config: MatchConfig, names: tuple[str, ...]) -> None:
    """Run the search here, drawing its progress; keep the best so far in the session, so Stop loses nothing."""
    gate = ui.match_gate()
    if not gate.acquire(blocking=False):
        st.warning("Another search is running on this server; try again in a few minutes.", icon=":material/hourglass:")
        return
    try:
        scorer = Scorer(ui.engine(MATCH_ENGINE), voices, config.lang, config.seed, context)
        bar, chart_box = st.progress(0.0, text="Ranking the stock voices…"), st.empty()
        st.session_state[state.MATCH_PROGRESS] = None
        stock_best: list[float] = []

        def show(progress: MatchProgress) -> None:
            st.session_state[state.MATCH_PROGRESS] = (digest, progress)
            if progress.stage != "stock voices" and not stock_best:
                stock_best.append(progress.curve[-1][1] if len(progress.curve) == 1 else
                                  max(value for count, value in progress.curve if count <= len(names)))
            bar.progress(min(1.0, progress.evaluations / progress.budget),
                         text=f"{progress.stage}: {progress.evaluations} of {progress.budget} evaluations, best "
                              f"similarity {progress.similarity:.3f} ({progress.seconds:.0f} s)")
            with chart_box:
                ui.show_chart(match_curve_chart(progress.curve, stock_best[0] if stock_best else None))

        evaluator = LocalEvaluator(scorer)
        result = match_voice(target, evaluator, names, config, show)
        bar.progress(1.0, text="Judging the result on held-out sentences…")
        report = report_match(result, evaluator, target)
        st.session_state[state.MATCH_RESULT] = {"digest": digest, "report": report.to_dict()}
        st.session_state[state.MATCH_PROGRESS] = None
        st.rerun()
    except ExplorerError as error:
        ui.show_error(error)
    finally:
        gate.release()


def _stopped(digest: str) -> None:
    """What a search stopped part-way left: its best recipe so far, to open in the Lab."""
    kept = st.session_state.get(state.MATCH_PROGRESS)
    if kept is None or kept[0] != digest:
        return
    progress: MatchProgress = kept[1]
    st.info(f"The search stopped after {progress.evaluations} of {progress.budget} evaluations; the best so far "
            f"has similarity {progress.similarity:.3f} on the search sentences (not judged on held-out ones).",
            icon=":material/stop_circle:")
    ui.show_chart(match_curve_chart(progress.curve))
    _open_buttons(progress.best, None)


def _open_buttons(recipe: Recipe, stock: str | None) -> None:
    token = recipe.to_token()
    lab, ab_recording, ab_stock, recipe_file, pack_file = st.columns(5)
    if lab.button("Open in the Voice Lab", key=state.MATCH_OPEN_LAB, type="primary"):
        st.switch_page("pages/listen/lab.py", query_params={"recipe": token})
    if ab_recording.button("A/B against the recording", key=state.MATCH_OPEN_AB_RECORDING):
        _open_ab(token, None)
    if stock is not None and ab_stock.button("A/B against the best stock voice", key=state.MATCH_OPEN_AB):
        _open_ab(token, stock)
    recipe_file.download_button("⬇ Recipe (JSON)", recipe.to_json(), file_name="matched.json", on_click="ignore",
                                key=state.MATCH_DOWNLOAD_RECIPE)
    pack_file.download_button("⬇ Voicepack (.pt)", pack_bytes(apply_recipe(recipe, voices, context), ".pt", "matched"),
                              file_name="matched.pt", on_click="ignore", key=state.MATCH_DOWNLOAD_PACK)


def _open_ab(token: str, stock: str | None) -> None:
    """Open the A/B page with the found voice as B, speaking the search's language, against the best stock voice or
    (``stock`` None) the recording itself, which then says the transcript when one was given."""
    transcript = (st.session_state.get(state.MATCH_TRANSCRIPT) or "").strip()
    updates = {state.ab_side_key("B", "source"): "recipe string", state.ab_side_key("B", "token"): token,
               state.ab_side_key("A", "source"): "stock voice" if stock else "recording"}
    if state.MATCH_LANG in st.session_state:
        updates[state.LANG] = st.session_state[state.MATCH_LANG]
    if stock:
        updates[state.ab_side_key("A", "voice")] = stock
    else:
        updates[state.ab_side_key("A", "transcript")] = transcript
    if transcript:
        updates[state.SAMPLE_TEXT] = transcript
    st.session_state.update(updates)
    st.switch_page("pages/listen/ab.py")


def _result(target: Target, result: dict) -> None:
    """The finished search: the recipe, its figures beside the best stock voice's, the curve, and the voices heard
    beside the recording."""
    report = result["report"]
    recipe = Recipe.from_dict(report["recipe"])
    stock = report["best_stock_voice"]
    found = report["found"]
    st.subheader("The voice found")
    st.code(describe(recipe), language=None, wrap_lines=True)
    columns = st.columns(4)
    columns[0].metric("Similarity, search sentences", f"{found['search']['similarity']:.3f}",
                      f"{found['search']['similarity'] - stock['search']['similarity']:+.3f} vs {stock['name']}")
    columns[1].metric("Similarity, held-out sentences", f"{found['held_out']['similarity']:.3f}",
                      f"{found['held_out']['similarity'] - stock['held_out']['similarity']:+.3f} vs {stock['name']}")
    wer = found["held_out"]["wer"]
    columns[2].metric("Word error rate, held out", "not measured" if wer is None else f"{wer:.3f}",
                      help=report["wer_note"] or "The recogniser's transcript of each held-out render against its "
                                                 "text: the found voice still has to speak clearly.")
    columns[3].metric("Evaluations", report["evaluations"])
    st.caption(f"{report['evaluations']} evaluations in {report['seconds']:.0f} s, stopped by {report['stopped']} "
               f"(renders heard before are remembered). Best stock voice {stock['name']}: "
               f"{stock['search']['similarity']:.3f} on the search sentences, "
               f"{stock['held_out']['similarity']:.3f} on the held-out sentences. Similarity is the cosine of "
               "speaker embeddings: a voice's own renders of other sentences score about 0.95 against it.")
    ui.show_chart(match_curve_chart([tuple(point) for point in report["curve"]], stock["search"]["similarity"]),
                  key=state.MATCH_CHART)
    _open_buttons(recipe, stock["name"])
    if st.button("Hear them beside the recording", key=state.MATCH_HEAR):
        _beside(target, recipe, stock["name"], report["held_out_sentences"][0])


def _beside(target: Target, recipe: Recipe, stock: str, sentence: str) -> None:
    """The recording, the found voice and the best stock voice, the two renders at the recording's loudness."""
    lang = st.session_state[state.MATCH_LANG]
    scorer = Scorer(ui.engine(MATCH_ENGINE), voices, lang, 0, context)
    try:
        with st.spinner("Rendering…"):
            found = scorer.render(scorer.pack(recipe), sentence, 0)
            stock_audio = scorer.render(scorer.pack(Recipe.single(stock)), sentence, 0)
            loudness = integrated_lufs(target.audio, target.sample_rate)
            found, stock_audio = loudness_match(found, stock_audio,
                                                target_lufs=loudness if loudness > -70 else None)
    except ExplorerError as error:
        ui.show_error(error)
        return
    clips = (("The recording", target.audio, target.sample_rate), ("The voice found", found, SAMPLE_RATE),
             (f"Best stock voice ({stock})", stock_audio, SAMPLE_RATE))
    for column, (label, audio, rate) in zip(st.columns(3), clips):
        column.markdown(f"**{ui.escape_markdown(label)}**")
        column.audio(wav_bytes(audio, rate), format="audio/wav")
    st.caption(f"The voices say a held-out sentence: {ui.escape_markdown(sentence)}")


missing = matcher_unavailable()
if missing:
    st.error(ui.escape_markdown(missing), icon=":material/warning:")
    st.stop()
given = _recording()
if given is not None:
    data, name = given
    analysed = _analysed(data, name)
    if analysed is not None:
        digest, target = analysed
        columns = st.columns(4)
        columns[0].metric("Length", f"{target.seconds:.1f} s")
        columns[1].metric("Speech found", f"{target.speech_seconds:.1f} s")
        columns[2].metric("Pitch", "none voiced" if target.pitch_hz is None else f"{target.pitch_hz:.0f} Hz")
        columns[3].metric("Sample rate", f"{target.sample_rate} Hz")
        if target.cut:
            st.caption(ui.escape_markdown(target.describe()))
        chosen = _settings()
        result = st.session_state.get(state.MATCH_RESULT)
        start, stop, _ = st.columns([1, 1, 3])
        clicked = start.button("Find the voice", key=state.MATCH_START, type="primary", disabled=chosen is None)
        stop.button("Stop", key=state.MATCH_STOP, help="Stops the search and keeps the best voice found so far.")
        if clicked and chosen is not None:
            _search(target, digest, *chosen)
        elif result is not None and result["digest"] == digest:
            _result(target, result)
        else:
            _stopped(digest)
else:
    st.info("Give a recording to start: a few seconds to a minute of one person speaking, without music.",
            icon=":material/mic:")
