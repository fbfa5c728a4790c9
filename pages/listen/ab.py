"""A/B listening: two voices or recipes with the same text, engine and speed; a blind ABX mode with a session tally."""

import secrets

import streamlit as st

from explorer.app import listen, state, ui
from explorer.audio import loudness_match, wav_bytes
from explorer.charts import pack_difference_heatmap
from explorer.errors import ExplorerError
from explorer.recipe import apply_recipe, describe

st.title("A/B listening")
st.caption(
    "Compare two voices (stock voices, the Lab's current recipe, or any pasted recipe string) on the same text, "
    "engine and speed. Loudness matching keeps the louder one from winning; blind mode hides which is which."
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


def _side(side: str):
    """Show one side's source picker; return ``(recipe, pack)``, or None after showing why it cannot play."""
    st.subheader(f"Side {side}")
    source = st.radio("Source", listen.AB_SOURCES, key=state.ab_side_key(side, "source"), horizontal=True,
                      persist_state="session")
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
    st.code(describe(recipe), language=None)
    return recipe, pack


def _choose(choice: str) -> None:
    """Record the listener's answer for the current trial (a callback, so the next trial is drawn at once)."""
    tally = listen.BlindTally.from_dict(st.session_state[state.BLIND_TALLY])
    trial = listen.draw_trial(st.session_state[state.AB_SEED], tally.trials)
    st.session_state[state.BLIND_TALLY] = tally.record(trial, choice).to_dict()
    st.session_state[state.AB_FEEDBACK] = (trial.index, choice, trial.x_is)


def _new_test() -> None:
    """Start the blind test again: no answers, and a new random order of X."""
    st.session_state[state.BLIND_TALLY] = listen.BlindTally().to_dict()
    st.session_state[state.AB_FEEDBACK] = None
    st.session_state[state.AB_SEED] = secrets.randbits(32)


def _blind(audio_a, audio_b, stimuli: dict[str, object]) -> None:
    st.session_state.setdefault(state.AB_TEST_LENGTH, listen.DEFAULT_BLIND_TRIALS)
    length_column, feedback_column = st.columns(2)
    length = length_column.selectbox("Trials in the test", listen.BLIND_TEST_LENGTHS, key=state.AB_TEST_LENGTH,
                                     persist_state="session")
    feedback = feedback_column.radio("Say whether I was right", listen.FEEDBACK_MODES, key=state.AB_FEEDBACK_MODE,
                                     horizontal=True, persist_state="session",
                                     help="At the end, the test cannot teach you which is which as it runs.")
    tally = listen.BlindTally.from_dict(st.session_state[state.BLIND_TALLY])
    if tally.trials >= length:
        st.markdown(f"**The test is over: {ui.escape_markdown(tally.summary())}**")
        st.dataframe(tally.table(), hide_index=True, key=state.AB_RESULTS)
        st.caption(f"X's sides were drawn at random with seed {st.session_state[state.AB_SEED]}.")
        columns = st.columns([1, 1, 1, 3])
        for column, (filename, data) in zip(columns, tally.export(stimuli).items()):
            column.download_button(f"⬇ {filename.rsplit('.', 1)[-1].upper()}", data, file_name=filename,
                                   key=state.ab_download_key(filename), on_click="ignore")
        columns[2].button("Start a new test", key=state.AB_NEW_TEST, on_click=_new_test, type="primary")
        return
    trial = listen.draw_trial(st.session_state[state.AB_SEED], tally.trials)
    columns = st.columns(3)
    for column, label, audio in zip(columns, ("A", "B", "X"), listen.blind_stimuli(audio_a, audio_b, trial)):
        with column.container(key=state.ab_blind_player_key(label, trial.index)):
            st.markdown(f"**{label}**")
            st.audio(wav_bytes(audio), format="audio/wav")
    st.markdown(f"**Trial {trial.index + 1} of {length}: is X the voice of A or of B?**")
    left, right, _ = st.columns([1, 1, 4])
    left.button("X is A", key=state.ab_choice_key("A"), on_click=_choose, args=("A",), type="primary")
    right.button("X is B", key=state.ab_choice_key("B"), on_click=_choose, args=("B",), type="primary")
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


def _meters(renders, request) -> None:
    """The meters of both sides, after the audio: each side's similarity is to the other side's render."""
    try:
        measured = {
            "A": ui.render_meters(renders["A"], request.recognisable_text, {"B": renders["B"]}),
            "B": ui.render_meters(renders["B"], request.recognisable_text, {"A": renders["A"]}),
        }
    except ExplorerError as error:
        ui.show_error(error)
    else:
        st.markdown("**Meters** (measured on the renders before loudness matching)")
        st.dataframe(listen.meters_table(measured), key=state.AB_METERS)


@st.fragment
def _panel() -> None:
    _defaults()
    left, right = st.columns(2, gap="large")
    with left:
        side_a = _side("A")
    with right:
        side_b = _side("B")
    st.divider()
    request = ui.speech_settings()
    options = st.columns(3)
    match = options[0].checkbox("Match loudness", value=True, key=state.AB_MATCH, persist_state="session",
                                help="Scale B to A's RMS level (both turned down together if B would clip).")
    blind = options[1].toggle("Blind mode (ABX)", key=state.AB_BLIND, persist_state="session",
                              help="A hidden X plays either A or B; say which, for a test of several trials.")
    if side_a is None or side_b is None:
        return
    (recipe_a, pack_a), (recipe_b, pack_b) = side_a, side_b
    clicked = options[2].button("Synthesize A and B", key=state.AB_SYNTHESIZE, type="primary")
    signature = request.signature(recipe_a.to_token(), recipe_b.to_token())
    if clicked or ui.rendered_before(state.AB_RENDERED, signature):
        try:
            engine = ui.engine()
            with st.spinner("Speaking A and B…"):
                renders = {side: ui.speak(request, pack, engine=engine)
                           for side, pack in (("A", pack_a), ("B", pack_b))}
        except ExplorerError as error:
            ui.show_error(error)
            renders = None
        if renders is not None:
            st.session_state[state.AB_RENDERED] = signature
            audio_a, audio_b = renders["A"].audio, renders["B"].audio
            if match:
                audio_a, audio_b = loudness_match(audio_a, audio_b)
            if blind:
                _blind(audio_a, audio_b, {
                    "A": recipe_a.to_token(), "B": recipe_b.to_token(), "text": request.text, "lang": request.lang,
                    "speed": request.speed, "engine": engine.name, "loudness matched": match,
                    "seed": st.session_state[state.AB_SEED]})
            else:
                columns = st.columns(2)
                for column, label, audio in zip(columns, ("A", "B"), (audio_a, audio_b)):
                    with column:
                        st.markdown(f"**{label}**")
                        st.audio(wav_bytes(audio), format="audio/wav")
            if blind:
                st.caption("The meters are hidden in blind mode: durations and pitch would tell A from B.")
            else:
                _meters(renders, request)
    else:
        st.caption("Press Synthesize to hear both sides; renders heard before replay without rendering again.")
    st.divider()
    st.markdown("**Where the two packs differ**")
    ui.show_chart(pack_difference_heatmap(pack_a, pack_b, labels=("A", "B")), key=state.AB_DIFFERENCE)
    st.caption("B minus A for every row (utterance length) and dim; red and blue are opposite signs. "
               "Dims 0-127 shape the timbre, 128-255 the prosody.")


_panel()

ui.preload_engine()  # after the page is drawn: its first synthesis then need not wait for the engine to load
