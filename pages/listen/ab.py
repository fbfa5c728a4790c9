"""A/B listening: two voices or recipes with the same text, engine and speed; a blind ABX mode with a session tally."""

import secrets

import streamlit as st

from explorer import lab, ui
from explorer.audio import loudness_match, wav_bytes
from explorer.charts import pack_difference_heatmap
from explorer.errors import ExplorerError
from explorer.recipe import apply_recipe, describe

ENGLISH = ("a", "b")

st.title("A/B listening")
st.caption(
    "Compare two voices (stock voices, the Lab's current recipe, or any pasted recipe string) on the same text, "
    "engine and speed. Loudness matching keeps the louder one from winning; blind mode hides which is which."
)

voices = ui.session_voices()
context = ui.recipe_context()


def _defaults() -> None:
    """Side A starts on the default voice; side B on the Lab's recipe when there is one, else another voice."""
    st.session_state.setdefault("ab_A_source", "stock voice")
    st.session_state.setdefault("ab_B_source", "Lab recipe" if st.session_state["recipe_token"] else "stock voice")
    names = voices.names
    first = ui.DEFAULT_VOICE if ui.DEFAULT_VOICE in voices else names[0]
    st.session_state.setdefault("ab_A_voice", first)
    st.session_state.setdefault("ab_B_voice", "am_adam" if "am_adam" in voices else names[-1])
    st.session_state.setdefault("ab_seed", secrets.randbits(32))


def _side(side: str):
    """Show one side's source picker; return ``(recipe, pack)``, or None after showing why it cannot play."""
    st.subheader(f"Side {side}")
    source = st.radio("Source", lab.AB_SOURCES, key=f"ab_{side}_source", horizontal=True, persist_state="session")
    voice = token = None
    if source == "stock voice":
        if st.session_state.get(f"ab_{side}_voice") not in voices:
            st.session_state[f"ab_{side}_voice"] = voices.names[0]
        voice = st.selectbox("Voice", voices.names, key=f"ab_{side}_voice", persist_state="session")
    elif source == "recipe string":
        token = st.text_input("Recipe string or share link", key=f"ab_{side}_token", persist_state="session",
                              max_chars=lab.MAX_TOKEN_INPUT_CHARS)
    try:
        recipe = lab.side_recipe(source, voice=voice, token=token, lab_token=st.session_state["recipe_token"])
        pack = apply_recipe(recipe, voices, context)
    except ExplorerError as error:
        ui.show_error(error)
        return None
    st.code(describe(recipe), language=None)
    return recipe, pack


def _choose(choice: str) -> None:
    """Record the listener's answer for the current trial (a callback, so the next trial is drawn at once)."""
    tally = lab.BlindTally.from_dict(st.session_state["blind_tally"])
    trial = lab.draw_trial(st.session_state["ab_seed"], tally.trials)
    st.session_state["blind_tally"] = tally.record(trial, choice).to_dict()
    st.session_state["ab_feedback"] = (trial.index, choice, trial.x_is)


def _blind(audio_a, audio_b) -> None:
    tally = lab.BlindTally.from_dict(st.session_state["blind_tally"])
    trial = lab.draw_trial(st.session_state["ab_seed"], tally.trials)
    hidden = audio_a if trial.x_is == "A" else audio_b
    columns = st.columns(3)
    for column, label, audio in zip(columns, ("A", "B", "X"), (audio_a, audio_b, lab.blind_x_audio(hidden))):
        with column:
            st.markdown(f"**{label}**")
            st.audio(wav_bytes(audio), format="audio/wav")
    st.markdown(f"**Trial {trial.index + 1}: is X the voice of A or of B?**")
    left, right, _ = st.columns([1, 1, 4])
    left.button("X is A", key="ab_choose_A", on_click=_choose, args=("A",), type="primary")
    right.button("X is B", key="ab_choose_B", on_click=_choose, args=("B",), type="primary")
    feedback = st.session_state.get("ab_feedback")
    if feedback is not None:
        index, choice, truth = feedback
        verdict = "right" if choice == truth else "wrong"
        (st.success if choice == truth else st.error)(f"Trial {index + 1}: you said X is {choice}; X was {truth}, "
                                                       f"so you were {verdict}.")
    st.caption(f"Session tally: {lab.BlindTally.from_dict(st.session_state['blind_tally']).summary()}")


@st.fragment
def _panel() -> None:
    _defaults()
    left, right = st.columns(2, gap="large")
    with left:
        side_a = _side("A")
    with right:
        side_b = _side("B")
    st.divider()
    text_column, settings_column = st.columns([3, 1])
    text = text_column.text_area("Sample text", key="sample_text", persist_state="session", height=80)
    lang = settings_column.selectbox("Language", list(ui.LANGUAGE_CHOICES), key="lang", persist_state="session",
                                     format_func=ui.LANGUAGE_CHOICES.get)
    speed = settings_column.slider("Speed", 0.5, 2.0, step=0.05, key="speed", persist_state="session")
    options = st.columns(3)
    match = options[0].checkbox("Match loudness", value=True, key="ab_match", persist_state="session",
                                help="Scale B to A's RMS level (both turned down together if B would clip).")
    blind = options[1].toggle("Blind mode (ABX)", key="ab_blind", persist_state="session",
                              help="A hidden X plays either A or B; say which. The tally is kept for the session.")
    if side_a is None or side_b is None:
        return
    (recipe_a, pack_a), (recipe_b, pack_b) = side_a, side_b
    clicked = options[2].button("Synthesize A and B", key="ab_synthesize", type="primary")
    signature = (recipe_a.to_token(), recipe_b.to_token(), text, lang, speed, st.session_state["engine_kind"])
    if clicked or st.session_state.get("ab_rendered") == signature:
        try:
            engine = ui.engine()
            with st.spinner("Speaking A and B…"):
                renders = {side: lab.synthesize_cached(text, style=pack, engine=engine, cache=ui.audio_cache(),
                                                       lang=lang, speed=speed)
                           for side, pack in (("A", pack_a), ("B", pack_b))}
        except ExplorerError as error:
            ui.show_error(error)
            renders = None
        if renders is not None:
            st.session_state["ab_rendered"] = signature
            audio_a, audio_b = renders["A"].audio, renders["B"].audio
            if match:
                audio_a, audio_b = loudness_match(audio_a, audio_b)
            if blind:
                _blind(audio_a, audio_b)
            else:
                columns = st.columns(2)
                for column, label, audio in zip(columns, ("A", "B"), (audio_a, audio_b)):
                    with column:
                        st.markdown(f"**{label}**")
                        st.audio(wav_bytes(audio), format="audio/wav")
            # Meters after the audio: each side's similarity is to the other side's render.
            try:
                measured = {
                    "A": ui.render_meters(renders["A"], text if lang in ENGLISH else None, {"B": renders["B"]}),
                    "B": ui.render_meters(renders["B"], text if lang in ENGLISH else None, {"A": renders["A"]}),
                }
            except ExplorerError as error:
                ui.show_error(error)
            else:
                st.markdown("**Meters** (measured on the renders before loudness matching)")
                st.dataframe(lab.meters_table(measured), key="ab_meters")
    else:
        st.caption("Press Synthesize to hear both sides; renders heard before replay without rendering again.")
    st.divider()
    st.markdown("**Where the two packs differ**")
    ui.show_chart(pack_difference_heatmap(pack_a, pack_b, labels=("A", "B")), key="ab_difference")
    st.caption("B minus A for every row (utterance length) and dim; red and blue are opposite signs. "
               "Dims 0-127 shape the timbre, 128-255 the prosody.")


_panel()

ui.preload_engine()  # after the page is drawn: its first synthesis then need not wait for the engine to load
