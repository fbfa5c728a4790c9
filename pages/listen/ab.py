"""A/B listening: two voices or recipes with the same text, engine and speed, heard side by side or in a listening
test: blind ABX, preference (CMOS) or a multi-stimulus rating (MUSHRA)."""

import secrets

import streamlit as st

from explorer.app import listen, rating, shared_tests, state, ui
from explorer.audio import SAMPLE_RATE, loudness_match, wav_bytes
from explorer.charts import pack_difference_heatmap
from explorer.errors import ExplorerError
from explorer.recipe import Recipe, apply_recipe, describe

st.title("A/B listening")
st.caption(
    "Compare two voices (stock voices, the Lab's current recipe, or any pasted recipe string) on the same text, "
    "engine and speed, or a voice against a recording of the voice you want. Loudness matching keeps the louder "
    "one from winning; the listening tests hide which is which: blind ABX (can you tell them apart?), preference "
    "(which is better, and by how much?) and rating (several recipes scored 0-100 against a hidden reference and a "
    "low anchor). A test's link lets several people take it."
)

voices = ui.session_voices()
context = ui.recipe_context()


def _defaults() -> None:
    """Side A starts on the default voice; side B on the Lab's recipe when there is one, else another voice."""
    st.session_state.setdefault(state.ab_side_key("A", "source"), "stock voice")
    st.session_state.setdefault(state.ab_side_key("B", "source"),
                                "Lab recipe" if st.session_state[state.RECIPE_TOKEN] else "stock voice")
    names = voices.names
    first = state.DEFAULT_VOICE if state.DEFAULT_VOICE in voices else names[0]
    st.session_state.setdefault(state.ab_side_key("A", "voice"), first)
    st.session_state.setdefault(state.ab_side_key("B", "voice"), "am_adam" if "am_adam" in voices else names[-1])
    st.session_state.setdefault(state.AB_SEED, secrets.randbits(32))


def _side(side: str) -> listen.ABSide | None:
    """Show one side's source picker; return what the side plays, or None after showing why it cannot play."""
    st.subheader(f"Side {side}")
    source = st.radio("Source", listen.AB_SOURCES, key=state.ab_side_key(side, "source"), horizontal=True,
                      persist_state="session")
    if source == "recording":
        return _recording_side(side)
    voice = token = None
    if source == "stock voice":
        voice_key = state.ab_side_key(side, "voice")
        if st.session_state.get(voice_key) not in voices:
            st.session_state[voice_key] = voices.names[0]
        voice = st.selectbox("Voice", voices.names, key=voice_key, persist_state="session")
    elif source == "recipe string":
        token = st.text_input("Recipe string or share link", key=state.ab_side_key(side, "token"),
                              persist_state="session", max_chars=listen.MAX_TOKEN_INPUT_CHARS)
    try:
        recipe = listen.side_recipe(source, voice=voice, token=token, lab_token=st.session_state[state.RECIPE_TOKEN])
        pack = apply_recipe(recipe, voices, context)
    except ExplorerError as error:
        ui.show_error(error)
        return None
    st.code(describe(recipe), language=None, wrap_lines=True)
    return listen.ABSide(recipe, pack)


def _recording_side(side: str) -> listen.ABSide | None:
    """A recording side: an upload, else the recording given to the Match page; None after showing why there is
    none."""
    upload = st.file_uploader("A recording (WAV, FLAC, OGG or MP3)", type=["wav", "flac", "ogg", "mp3"],
                              key=state.ab_side_key(side, "upload"))
    matched = st.session_state.get(state.MATCH_TARGET)
    if upload is None and matched is None:
        st.info("Upload a recording, or give one on the Match a voice page.", icon=":material/mic:")
        return None
    given = upload.file_id if upload is not None else matched[0]
    kept = st.session_state.get(state.ab_side_key(side, "recording"))
    if kept is not None and kept[0] == given:   # decoded and resampled once, not on every rerun
        recording = kept[1]
    else:
        try:
            if upload is not None:
                recording = listen.Recording.from_bytes(upload.getvalue(), upload.name or "upload")
            else:
                target = matched[1]
                recording = listen.Recording.from_samples(target.audio, target.sample_rate, target.name)
        except ExplorerError as error:
            ui.show_error(error)
            return None
        st.session_state[state.ab_side_key(side, "recording")] = (given, recording)
    whose = "" if upload is not None else "The recording given to Match a voice: "
    st.caption(whose + ui.escape_markdown(recording.describe()) + " It plays as it is, whatever the text below.")
    transcript = st.text_input("What it says (optional: its word error rate is measured against it)",
                               key=state.ab_side_key(side, "transcript"), max_chars=300, persist_state="session")
    return listen.ABSide(recording=recording, transcript=transcript.strip() or None)


TALLY_KEYS = {"blind ABX": state.BLIND_TALLY, "preference (CMOS)": state.PREFERENCE_TALLY,
              "rating (MUSHRA)": state.RATING_SHEET}


def _keep(key: str, tally, trial: int, answer: object, shared: shared_tests.SharedTest | None) -> None:
    """Keep ``tally`` (with ``answer`` to ``trial`` recorded) in the session; in a shared test the server's store
    takes the answer first, and an answer it refuses is not counted, so the two never disagree."""
    if shared is not None:
        try:
            shared_tests.AnswerStore().record(shared, st.session_state[state.AB_LISTENER],
                                              st.session_state.get(state.AB_LISTENER_NAME) or "", trial, answer)
        except ExplorerError as error:
            st.session_state[state.AB_STORE_ERROR] = str(error)
            return
    st.session_state[key] = tally.to_dict()


def _choose(choice: str, shared: shared_tests.SharedTest | None) -> None:
    """Record the listener's answer for the current blind trial (a callback, so the next trial is drawn at once)."""
    tally = listen.BlindTally.from_dict(st.session_state[state.BLIND_TALLY])
    trial = listen.draw_trial(st.session_state[state.AB_SEED], tally.trials)
    _keep(state.BLIND_TALLY, tally.record(trial, choice), trial.index, trial.x_is + choice, shared)
    st.session_state[state.AB_FEEDBACK] = (trial.index, choice, trial.x_is)


def _new_test(key: str) -> None:
    """Start the listening test kept under ``key`` again: no answers, and a new random order."""
    st.session_state[key] = state.STATE_DEFAULTS[key]
    st.session_state[state.AB_FEEDBACK] = None
    st.session_state[state.AB_SEED] = secrets.randbits(32)


def _finished(summary: str, table, files: dict[str, bytes], key: str, shared: shared_tests.SharedTest | None) -> None:
    """Show a finished test: its result in words, every answer, the seed, the downloads and a new start; in a shared
    test, the results of every listener so far instead of a new start."""
    st.markdown(f"**The test is over: {ui.escape_markdown(summary)}**")
    st.dataframe(table, hide_index=True, key=state.AB_RESULTS)
    st.caption(f"The order was drawn at random with seed {st.session_state[state.AB_SEED]}.")
    columns = st.columns([1, 1, 1, 3])
    for column, (filename, data) in zip(columns, files.items()):
        column.download_button(f"⬇ {filename.rsplit('.', 1)[-1].upper()}", data, file_name=filename,
                               key=state.ab_download_key(filename), on_click="ignore")
    if shared is None:
        columns[2].button("Start a new test", key=state.AB_NEW_TEST, on_click=_new_test, args=(key,),
                          type="primary")
    else:
        _everyone(shared)


def _everyone(test: shared_tests.SharedTest) -> None:
    """The results of every listener of a shared test so far: pooled in words, then one row per listener."""
    try:
        results = shared_tests.AnswerStore().results(test)
    except ExplorerError as error:
        ui.show_error(error)
        return
    st.markdown(f"**All listeners of this test:** {ui.escape_markdown(results.summary())}")
    if results.listeners:
        st.dataframe(results.table(), hide_index=True, key=state.AB_EVERYONE)
    st.button("Refresh the results", key=state.AB_REFRESH, help="Read the answers given since this page was drawn.")


def _players(test: str, trial: int, clips: dict[str, object]) -> None:
    """Play ``clips`` side by side, each in a container keyed by the trial, so every trial starts new players."""
    for column, (label, audio) in zip(st.columns(len(clips)), clips.items()):
        with column.container(key=state.ab_player_key(test, trial, label)):
            st.markdown(f"**{label}**")
            st.audio(wav_bytes(audio), format="audio/wav")


TEST_LENGTHS = {
    "blind ABX": ("Trials in the test", listen.BLIND_TEST_LENGTHS, listen.DEFAULT_BLIND_TRIALS, state.AB_TEST_LENGTH),
    "preference (CMOS)": ("Trials in the test", rating.CMOS_TEST_LENGTHS, rating.DEFAULT_CMOS_TRIALS,
                          state.AB_PREFERENCE_LENGTH),
    "rating (MUSHRA)": ("Screens in the test", rating.RATING_SCREENS, rating.DEFAULT_RATING_SCREENS,
                        state.AB_RATING_SCREENS),
}
"""Per test: the label of its length, the lengths offered, the default and the session key of the choice."""


def _chosen_length(mode: str) -> int:
    """How long the listener chose test ``mode`` to be (its default until they choose)."""
    _, _, default, key = TEST_LENGTHS[mode]
    return st.session_state.setdefault(key, default)


def _length(mode: str, shared: shared_tests.SharedTest | None, **options: object) -> int:
    """How many trials (or screens) test ``mode`` has: the listener's choice, or the shared test's."""
    label, lengths, _, key = TEST_LENGTHS[mode]
    if shared is not None:
        st.caption(f"{label}: {shared.trials}, as the test's link sets it.")
        return shared.trials
    _chosen_length(mode)
    return st.selectbox(label, lengths, key=key, persist_state="session", **options)


def _blind(audio_a, audio_b, stimuli: dict[str, object], shared: shared_tests.SharedTest | None) -> None:
    length_column, feedback_column = st.columns(2)
    with length_column:
        length = _length("blind ABX", shared)
    feedback = feedback_column.radio("Say whether I was right", listen.FEEDBACK_MODES, key=state.AB_FEEDBACK_MODE,
                                     horizontal=True, persist_state="session",
                                     help="At the end, the test cannot teach you which is which as it runs.")
    tally = listen.BlindTally.from_dict(st.session_state[state.BLIND_TALLY])
    if tally.trials >= length:
        _finished(tally.summary(), tally.table(), tally.export(stimuli), state.BLIND_TALLY, shared)
        return
    trial = listen.draw_trial(st.session_state[state.AB_SEED], tally.trials)
    _players("blind", trial.index, dict(zip(("A", "B", "X"), listen.blind_stimuli(audio_a, audio_b, trial))))
    st.markdown(f"**Trial {trial.index + 1} of {length}: is X the voice of A or of B?**")
    st.caption("X is a copy of its side's render (0.05 dB quieter, so that its file differs), not a fresh render: the "
               "torch engine's vocoder adds noise of its own to every render, which you could hear as a difference "
               "the voices do not make.")
    left, right, _ = st.columns([1, 1, 4])
    for column, side in ((left, "A"), (right, "B")):
        column.button(f"X is {side}", key=state.ab_choice_key(side), on_click=_choose, args=(side, shared),
                      type="primary")
    last = st.session_state.get(state.AB_FEEDBACK)
    if feedback == "after each trial":
        if last is not None:
            index, choice, truth = last
            verdict = "right" if choice == truth else "wrong"
            (st.success if choice == truth else st.error)(f"Trial {index + 1}: you said X is {choice}; X was "
                                                           f"{truth}, so you were {verdict}.")
        st.caption(f"So far: {tally.summary()}")
    else:
        st.caption(f"{tally.trials} of {length} answered; whether you were right is told when the test is over.")


def _prefer(order: str, trial: int, shared: shared_tests.SharedTest | None) -> None:
    """Record the score given to the second sample of a preference trial played in ``order`` (a callback)."""
    tally = rating.PreferenceTally.from_dict(st.session_state[state.PREFERENCE_TALLY])
    score = st.session_state[state.ab_score_key("preference", trial)]
    _keep(state.PREFERENCE_TALLY, tally.record(order, score), trial, {"order": order, "score": score}, shared)


def _preference(audio_a, audio_b, stimuli: dict[str, object], shared: shared_tests.SharedTest | None) -> None:
    length = _length("preference (CMOS)", shared)
    tally = rating.PreferenceTally.from_dict(st.session_state[state.PREFERENCE_TALLY])
    if tally.trials >= length:
        _finished(tally.summary(), tally.table(), tally.export(stimuli), state.PREFERENCE_TALLY, shared)
        return
    order = rating.preference_order(st.session_state[state.AB_SEED], tally.trials)
    first, second = listen.equal_lengths(*((audio_a, audio_b) if order == "AB" else (audio_b, audio_a)))
    _players("preference", tally.trials, {"First": first, "Second": second})
    st.markdown(f"**Trial {tally.trials + 1} of {length}: how does the second sample sound against the first?**")
    st.select_slider("The second sample sounds", list(rating.CMOS_SCALE), value=0, format_func=rating.cmos_label,
                     key=state.ab_score_key("preference", tally.trials))
    st.button("Submit", key=state.AB_SUBMIT, on_click=_prefer, args=(order, tally.trials, shared), type="primary")
    st.caption(f"{tally.trials} of {length} answered. A and B play in a random order; the result is told when the "
               "test is over.")


def _rate(conditions: tuple[str, ...], order: tuple[int, ...], screen: int,
          shared: shared_tests.SharedTest | None) -> None:
    """Record one rating screen: the slider at each position rated the condition played there (a callback)."""
    sheet = rating.RatingSheet.from_dict(st.session_state[state.RATING_SHEET], conditions)
    scores = {conditions[index]: st.session_state[state.ab_score_key("rating", screen, position)]
              for position, index in enumerate(order)}
    _keep(state.RATING_SHEET, sheet.record(scores), screen, [scores[condition] for condition in conditions], shared)


def _rating(clips: dict[str, object], stimuli: dict[str, object], shared: shared_tests.SharedTest | None) -> None:
    """A rating screen: the open reference, then every condition of ``clips`` (the hidden reference first) hidden
    behind a number, in a new order on every screen, each with a 0-100 slider."""
    screens = _length("rating (MUSHRA)", shared, help="Each screen plays every stimulus again, in a new order.")
    conditions = tuple(clips)
    sheet = rating.RatingSheet.from_dict(st.session_state[state.RATING_SHEET], conditions)
    if sheet.screens >= screens:
        _finished(sheet.summary(), sheet.results(), sheet.export(stimuli), state.RATING_SHEET, shared)
        return
    order = rating.rating_order(st.session_state[state.AB_SEED], sheet.screens, len(conditions))
    audio = listen.equal_lengths(*clips.values())
    _players("reference", sheet.screens, {"Reference (A)": audio[0]})
    st.markdown(f"**Screen {sheet.screens + 1} of {screens}: rate each sample against the reference** (100: "
                "cannot tell it from the reference; 0: very much worse). One of them is the reference itself.")
    for position, index in enumerate(order):
        player, slider = st.columns([2, 3], vertical_alignment="center")
        with player.container(key=state.ab_player_key("rating", sheet.screens, str(position))):
            st.audio(wav_bytes(audio[index]), format="audio/wav")
        slider.slider(f"Sample {position + 1}", 0, 100, 50, key=state.ab_score_key("rating", sheet.screens, position))
    st.button("Submit ratings", key=state.AB_SUBMIT, on_click=_rate, args=(conditions, order, sheet.screens, shared),
              type="primary")
    st.caption(f"{sheet.screens} of {screens} screens answered; the result is told when the test is over.")


def _meters(renders, request, sides: dict[str, listen.ABSide]) -> None:
    """The meters of both sides, after the audio: each side's similarity is to the other side's render; a
    recording's word error rate is against what the person said it says (English only, as the recogniser)."""
    def text(label: str) -> str | None:
        if request.recognisable_text is None:
            return None
        return request.recognisable_text if sides[label].recording is None else sides[label].transcript

    try:
        measured = {
            "A": ui.render_meters(renders["A"], text("A"), {"B": renders["B"]}),
            "B": ui.render_meters(renders["B"], text("B"), {"A": renders["A"]}),
        }
    except ExplorerError as error:
        ui.show_error(error)
    else:
        st.markdown("**Meters** (measured on the audio before loudness matching)")
        st.dataframe(listen.meters_table(measured), key=state.AB_METERS)


def _more_recipes() -> dict[str, listen.ABSide] | None:
    """The rating test's further recipes (C, D, ...), one share string per line; None after showing why one cannot
    play."""
    lines = [line.strip() for line in st.text_area(
        f"More recipes to rate (one recipe string or share link per line, up to {rating.MAX_RATED_RECIPES})",
        key=state.AB_MORE_RECIPES, persist_state="session", height=80,
        max_chars=rating.MAX_RATED_RECIPES * listen.MAX_TOKEN_INPUT_CHARS).splitlines() if line.strip()]
    if len(lines) > rating.MAX_RATED_RECIPES:
        st.error(f"A rating test takes at most {rating.MAX_RATED_RECIPES} more recipes; {len(lines)} were given.")
        return None
    found = {}
    for label, line in zip("CDEFGH", lines):
        try:
            recipe = listen.side_recipe("recipe string", token=line)
            found[label] = listen.ABSide(recipe, apply_recipe(recipe, voices, context))
        except ExplorerError as error:
            ui.show_error(error, about=f"Recipe {label}: ")
            return None
    return found


def _speak(request: listen.SpeechRequest, sides: dict[str, listen.ABSide]) -> dict[str, object] | None:
    """Render every voice of ``sides`` for ``request``, in order with the recordings as they are; None after showing
    why one could not be."""
    spoken = [label for label, side in sides.items() if side.recording is None]
    renders = {}
    try:
        if spoken:
            engine = ui.engine(request.engine_kind)
            with st.spinner("Speaking " + ", ".join(spoken) + "…"):
                renders = {label: ui.speak(request, sides[label].pack, engine=engine) for label in spoken}
    except ExplorerError as error:
        ui.show_error(error)
        return None
    return {label: side.recording or renders[label] for label, side in sides.items()}


def _run_test(mode: str, renders: dict[str, object], match: bool, stimuli: dict[str, object],
              shared: shared_tests.SharedTest | None = None) -> None:
    """Run the listening test ``mode`` on ``renders`` (A, B, then any further recipes): the rating test adds the
    low anchor, every sample is padded with silence to one length, then loudness matched to A when ``match`` (the
    padded clips are what is played, and padding moves BS.1770's gating blocks)."""
    clips = {label: render.audio for label, render in renders.items()}
    if mode == "rating (MUSHRA)":
        clips[rating.LOW_ANCHOR] = rating.low_anchor(clips["A"], SAMPLE_RATE)
        stimuli = {**stimuli, rating.LOW_ANCHOR: f"A low-passed at {rating.LOW_ANCHOR_HZ:g} Hz"}
    clips = dict(zip(clips, listen.equal_lengths(*clips.values())))  # padded first: BS.1770 gates the padded clip
    if match:
        clips = dict(zip(clips, loudness_match(*clips.values())))
    if mode == "blind ABX":
        _blind(clips["A"], clips["B"], stimuli, shared)
    elif mode == "preference (CMOS)":
        _preference(clips["A"], clips["B"], stimuli, shared)
    else:
        _rating({rating.HIDDEN_REFERENCE: clips["A"], **{label: clips[label] for label in clips if label != "A"}},
                stimuli, shared)
    st.caption("The meters are hidden during a test: durations and pitch would tell the samples apart.")


def _stimuli(tokens: dict[str, str], request: listen.SpeechRequest, match: bool) -> dict[str, object]:
    """What a test compared and how, for its downloads (the engine as it rendered, e.g. "torch", not "auto")."""
    return {**tokens, "text": request.text, "lang": request.lang, "speed": request.speed,
            "engine": ui.engine(request.engine_kind).name, "loudness matched": match,
            "seed": st.session_state[state.AB_SEED]}


def _share(mode: str, sides: dict[str, listen.ABSide], request: listen.SpeechRequest, match: bool) -> None:
    """Offer the current test as a link for several listeners, with everyone's results so far."""
    if any(side.recording is not None for side in sides.values()):
        st.caption("A test with a recording cannot be shared: its link carries recipes, not audio. Download its "
                   "results when it is over.")
        return
    tokens = {label: side.token for label, side in sides.items()}
    try:
        test = shared_tests.SharedTest.from_query(shared_tests.SharedTest(
            mode, tuple(tokens.values()), request.text, request.lang, request.speed, request.engine_kind,
            _chosen_length(mode), st.session_state[state.AB_SEED], match).to_query())
    except ExplorerError as error:
        st.caption(f"This test cannot be shared: {ui.escape_markdown(error)}")
        return
    with st.expander("Share this test with other listeners"):
        st.caption("Everyone who opens this link hears the same samples, each in an order of their own; their "
                   "answers are kept on this server, and the results below pool every listener.")
        st.code(listen.share_url(st.context.url or "", test.to_query()), language=None, wrap_lines=True)
        _everyone(test)


def _take(test: shared_tests.SharedTest) -> None:
    """Take a shared test: the link fixes the samples, text, engine and length; answers go to the server's store."""
    listener = st.session_state.setdefault(state.AB_LISTENER, secrets.token_hex(8))
    key = TALLY_KEYS[test.kind]
    if st.session_state.get(state.AB_SHARED_TEST) != test.test_id:  # a new test for this session: start it afresh
        st.session_state.update({state.AB_SHARED_TEST: test.test_id, key: state.STATE_DEFAULTS[key],
                                 state.AB_SEED: test.listener_seed(listener), state.AB_FEEDBACK: None})
    st.subheader(f"A shared listening test: {test.kind}")
    st.caption(f"Everyone who opens this link hears the same {len(test.recipes)} recipes saying the same text, each "
               "listener in an order of their own. Your answers are kept on this server with the name you give, and "
               "the results of every listener show when you finish.")
    st.text_input("Your name, as the results will show it", key=state.AB_LISTENER_NAME, placeholder="anonymous",
                  max_chars=shared_tests.MAX_NAME_CHARS)
    problem = st.session_state.pop(state.AB_STORE_ERROR, None)
    if problem:
        st.error(ui.escape_markdown(problem), icon=":material/warning:")
    st.markdown(f"**Text:** {ui.escape_markdown(test.text)}")
    request = listen.SpeechRequest(test.text, test.lang, test.speed, test.engine)
    try:
        sides = {label: listen.ABSide(recipe, apply_recipe(recipe, voices, context))
                 for label, recipe in zip("ABCDEFG", map(Recipe.from_token, test.recipes))}
    except ExplorerError as error:
        ui.show_error(error)
        return
    signature = request.signature(test.test_id)
    if st.button("Start the test", key=state.AB_SYNTHESIZE, type="primary") or \
            ui.rendered_before(state.AB_RENDERED, signature):
        renders = _speak(request, sides)
        if renders is not None:
            st.session_state[state.AB_RENDERED] = signature
            tokens = dict(zip("ABCDEFG", test.recipes))
            _run_test(test.kind, renders, test.match, _stimuli(tokens, request, test.match), test)


def _shared_test() -> shared_tests.SharedTest | None:
    """The test this page's link defines, if any; an unusable link is told and the page opens as usual."""
    query = st.query_params.to_dict()
    if "test" not in query:
        return None
    try:
        return shared_tests.SharedTest.from_query(query)
    except ExplorerError as error:
        ui.show_error(error)
        return None


@st.fragment
def _panel() -> None:
    shared = _shared_test()
    if shared is not None:
        _take(shared)
        return
    _defaults()
    left, right = st.columns(2, gap="large")
    with left:
        side_a = _side("A")
    with right:
        side_b = _side("B")
    st.divider()
    request = ui.speech_settings()
    mode = st.radio("Listen", listen.AB_MODES, key=state.AB_MODE, horizontal=True, persist_state="session",
                    help="Side by side plays A and B with their meters. Blind ABX: a hidden X plays A or B; say "
                         "which. Preference: A and B in a random order; score the second against the first. Rating: "
                         "A is the reference; score B, further recipes, A itself and a muffled copy of A, all hidden.")
    more = _more_recipes() if mode == "rating (MUSHRA)" else {}
    options = st.columns(2)
    match = options[0].checkbox("Match loudness", value=True, key=state.AB_MATCH, persist_state="session",
                                help="Bring every sample to A's BS.1770 integrated loudness (all turned down together "
                                     "if one would clip).")
    if side_a is None or side_b is None or more is None:
        return
    sides = {"A": side_a, "B": side_b, **more}
    clicked = options[1].button("Synthesize A and B", key=state.AB_SYNTHESIZE, type="primary")
    tokens = {label: side.token for label, side in sides.items()}
    signature = request.signature(*tokens.values())
    if clicked or ui.rendered_before(state.AB_RENDERED, signature):
        renders = _speak(request, sides)
        if renders is not None:
            st.session_state[state.AB_RENDERED] = signature
            if mode == "side by side":
                audio = (renders["A"].audio, renders["B"].audio)
                _players("open", 0, dict(zip("AB", loudness_match(*audio) if match else audio)))
                _meters(renders, request, sides)
            else:
                _run_test(mode, renders, match, _stimuli(tokens, request, match))
                _share(mode, sides, request, match)
    else:
        st.caption("Press Synthesize to hear both sides; renders heard before replay without rendering again.")
    st.divider()
    st.markdown("**Where the two packs differ**")
    if side_a.pack is None or side_b.pack is None:
        st.caption("A recording has no voicepack: the map of differences needs a voice on both sides.")
        return
    ui.show_chart(pack_difference_heatmap(side_a.pack, side_b.pack, labels=("A", "B")), key=state.AB_DIFFERENCE)
    st.caption("B minus A for every row (utterance length) and dim; red and blue are opposite signs. "
               "Dims 0-127 shape the timbre, 128-255 the prosody.")


_panel()

ui.preload_engine()  # after the page is drawn: its first synthesis then need not wait for the engine to load
