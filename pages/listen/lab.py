"""Voice Lab: mix voices, move them by named attributes (pitch, pace...), along PCA axes and centroids, slice dims;
hear, measure, export and share the result."""

import dataclasses
import math
import uuid
from typing import Any

import pandas as pd
import streamlit as st

from explorer import charts, sweep
from explorer.analysis import CENTROID_KINDS, LAYER_MEANING, LAYERS
from explorer.app import listen, state, ui
from explorer.attributes import ATTRIBUTES, load_axes
from explorer.audio import wav_bytes
from explorer.charts import Marker, pca_scatter_chart
from explorer.errors import ExplorerError
from explorer.g2p import pronunciation_label
from explorer.recipe import (
    DIM_OPS,
    MAX_CENTROID_AMOUNT,
    MAX_COMPONENTS,
    MAX_DIM_VALUE,
    MAX_PCA_AMOUNT,
    MAX_WEIGHT,
    METHODS,
    T_RANGE,
    Recipe,
    apply_recipe,
    describe,
)
from explorer.voices import STYLE_DIM

st.title("Voice Lab")
st.caption(
    "Start from stock voices, then edit: mix them (with separate weights for timbre and prosody), make them higher, "
    "livelier, faster, louder or brighter by a measured amount, step along the principal axes of the stock voices, "
    "move toward a centroid or along an axis between two, or slice single dims. "
    "The readouts follow every move; Synthesize to hear it, and share the link to let someone hear the same voice."
)

voices = ui.session_voices()
context = ui.recipe_context()


def _restore() -> None:
    """Set the Lab's widgets from a shared link, from the session's recipe, or from voices picked on the Map."""
    lab_voices = tuple(st.session_state[state.LAB_VOICES])
    query = st.query_params.get("recipe")
    restored = None
    if query and query != st.session_state[state.RECIPE_TOKEN]:
        restored = state.restore(query, voices, context, lab_voices)
    elif state.BASE_MODE not in st.session_state:
        restored = state.restore(st.session_state[state.RECIPE_TOKEN], voices, context, lab_voices)
    lab_state = restored.state if restored else None
    seen = st.session_state.get(state.LAB_VOICES_SEEN)
    if seen is not None and seen != lab_voices:
        try:
            lab_state = (lab_state or state.LabState.from_widgets(st.session_state)).with_voices(lab_voices, voices)
        except ExplorerError:
            lab_state = state.LabState.default(lab_voices, voices)
    st.session_state[state.LAB_VOICES_SEEN] = lab_voices
    if lab_state is not None:
        st.session_state.update(lab_state.widget_values())
    if restored is not None and restored.warning:
        st.warning(ui.escape_markdown(restored.warning), icon=":material/warning:")
    query = st.query_params.to_dict()
    if query != st.session_state.get(state.LAB_SHARED):
        speech, problems = listen.shared_speech(query)
        st.session_state.update({state.SPEECH_KEYS[name]: value for name, value in speech.items()})
        for what, problem in problems.items():
            st.warning(ui.escape_markdown(f"{problem}, so the {what} was kept."), icon=":material/warning:")


def _picked_voices() -> None:
    """The Lab's voice picker and the Map's selection are one list: keep ``lab_voices`` in step."""
    picked = tuple(st.session_state[state.MIX_VOICES])
    if picked:
        st.session_state[state.LAB_VOICES] = picked
        st.session_state[state.LAB_VOICES_SEEN] = picked


def _reset() -> None:
    st.session_state.update(state.LabState.default(st.session_state[state.LAB_VOICES], voices).widget_values())


def _add_dim_edit() -> None:
    values = st.session_state
    try:
        edit = state.dim_edit(values[state.LAB_DIM_OP], values[state.LAB_DIM_TARGET], dim=values[state.LAB_DIM_ONE],
                              dims=tuple(values[state.LAB_DIM_RANGE]), value=values[state.LAB_DIM_VALUE])
    except ExplorerError as error:
        values[state.LAB_DIM_ERROR] = error
        return
    values[state.LAB_DIM_ERROR] = None
    values[state.EXTRA_EDITS] = (*values.get(state.EXTRA_EDITS, ()), edit)


def _remove_edit(index: int) -> None:
    edits = list(st.session_state.get(state.EXTRA_EDITS, ()))
    if 0 <= index < len(edits):
        del edits[index]
    st.session_state[state.EXTRA_EDITS] = tuple(edits)


def _base_controls() -> None:
    mode = st.radio("Start from", state.BASE_MODES, key=state.BASE_MODE, horizontal=True, persist_state="session",
                    format_func={"mix": "a mix of voices", "interpolate": "between two voices"}.get)
    names = voices.names
    if mode == "mix":
        current = list(st.session_state.get(state.MIX_VOICES, ()))
        if [n for n in current if n in voices] != current:
            st.session_state[state.MIX_VOICES] = [n for n in current if n in voices]
        picked = st.multiselect("Voices", names, key=state.MIX_VOICES, max_selections=MAX_COMPONENTS,
                                on_change=_picked_voices, persist_state="session",
                                help="Up to 8 voices. The Map's selection lands here too.")
        if picked:
            head = st.columns([2, 1, 1])
            head[1].caption("timbre (decoder) weight")
            head[2].caption("prosody weight")
        for name in picked:
            st.session_state.setdefault(state.decoder_key(name), 1.0)
            st.session_state.setdefault(state.prosody_key(name), 1.0)
            row = st.columns([2, 1, 1], vertical_alignment="center")
            row[0].text(name)
            row[1].number_input(f"Decoder weight of {name}", -MAX_WEIGHT, MAX_WEIGHT, step=0.1,
                                key=state.decoder_key(name), label_visibility="collapsed", persist_state="session")
            row[2].number_input(f"Prosody weight of {name}", -MAX_WEIGHT, MAX_WEIGHT, step=0.1,
                                key=state.prosody_key(name), label_visibility="collapsed", persist_state="session")
        st.caption("Each half's weights are divided by the sum of their sizes: timbre of one voice with the prosody of "
                   "another is a decoder weight on the first and a prosody weight on the second. A negative weight "
                   "subtracts the voice, as Kokoro-FastAPI's `af_bella(2)-af_sky(1)` does.")
    else:
        first = st.session_state.get(state.MIX_VOICES) or list(st.session_state[state.LAB_VOICES])
        st.session_state.setdefault(state.INTERP_A, first[0] if first and first[0] in voices else names[0])
        other = [n for n in (first[1:] if first else []) if n in voices] or [n for n in names if n != names[0]]
        st.session_state.setdefault(state.INTERP_B, other[0] if other else names[0])
        st.session_state.setdefault(state.INTERP_T, 0.5)
        left, right = st.columns(2)
        left.selectbox("Voice a (t = 0)", names, key=state.INTERP_A, persist_state="session")
        right.selectbox("Voice b (t = 1)", names, key=state.INTERP_B, persist_state="session")
        st.slider("t", float(T_RANGE[0]), float(T_RANGE[1]), step=0.05, key=state.INTERP_T, persist_state="session",
                  help="0 is voice a, 1 is voice b; below 0 or above 1 extrapolates past them.")
        st.radio("Method", METHODS, key=state.INTERP_METHOD, horizontal=True, persist_state="session",
                 help="linear blends every value; slerp turns each half's direction along the great circle.")


def _attribute_controls() -> dict[str, Any]:
    """Draw the named sliders; return, per attribute, the place under its slider where its effect is told."""
    try:
        axes = load_axes()
    except ExplorerError as error:
        ui.show_error(error)
        return {}
    st.caption("Move the voice by what a listener hears, in the units people think in. Each slider follows a "
               "direction measured on the stock voices' speech and calibrated so that its amount is what the build "
               "measured on average; the range is where speech stayed clear and the voice itself. A voice that "
               "answers a step more strongly than most (its gain, predicted from where it sits among the stock "
               "voices) takes a smaller step, so the amount is what this voice does.")
    effects = {}
    for name, axis in axes.axes.items():
        attribute = ATTRIBUTES[name]
        key = state.attribute_key(name)
        st.session_state.setdefault(key, 0.0)
        step = 1.0 if axis.unit == "%" else 0.1
        low, high = step * math.ceil(axis.low / step - 1e-9), step * math.floor(axis.high / step + 1e-9)
        if not low <= st.session_state[key] <= high:  # a restored amount between the grid and the calibrated end
            low, high = min(low, st.session_state[key]), max(high, st.session_state[key])
        amount = st.slider(f"{attribute.label} ({attribute.unit_words})", float(low), float(high), step=step,
                           key=key, format=f"%+.{0 if step == 1 else 1}f {axis.unit.replace('%', '%%')}",
                           persist_state="session",
                           help=attribute.help)
        effects[name] = st.empty()
        effects[name].caption(ui.escape_markdown(_attribute_effect(axis, amount)))
    built = axes.provenance
    st.caption(f"Measured by `python -m explorer axes build` on {len(axes.table)} voices speaking "
               f"{len(built.get('corpus', []))} English sentences ({ui.escape_markdown(built.get('built', '?'))}); "
               "`python -m explorer axes check` proves each direction on voices and sentences the build never used.")
    return effects


def _attribute_effect(axis, amount: float) -> str:
    """One line: what the build measured at ``amount`` along ``axis``, and its effect on the other attributes."""
    if amount == 0:
        return f"Calibrated range {axis.low:+.1f} to {axis.high:+.1f} {axis.unit}."
    expected = axis.expected(amount)
    own, spread = expected[axis.attribute]
    return (f"Measured {own:+.1f} ± {spread:.1f} {axis.unit} (median ± half the interquartile range); "
            + _crosstalk(expected, axis.attribute))


def _crosstalk(expected, attribute: str) -> str:
    """The other attributes' expected changes, in a line."""
    return "cross-talk: " + ", ".join(
        f"{ATTRIBUTES[name].label.lower()} {round(change, 1) + 0.0:+.1f} {ATTRIBUTES[name].unit}"
        for name, (change, _) in expected.items() if name != attribute) + "."


def _effects_for_this_voice(effects: dict[str, Any], lab_state: state.LabState) -> None:
    """Under each moved slider, say what it is expected to do to this voice: the base, moved by the sliders above."""
    moved = [(name, amount) for name, amount in lab_state.attributes if amount]
    if not moved:
        return
    pack = apply_recipe(Recipe(lab_state.base, ()), voices, context)
    for effect in load_axes().effects(pack, moved):
        if effect.attribute not in effects:
            continue
        own, spread = effect.expected[effect.attribute]
        unit = ATTRIBUTES[effect.attribute].unit
        held = " and is held at the end the build calibrated" if effect.held else ""
        effects[effect.attribute].caption(ui.escape_markdown(
            f"For this voice, expect {own:+.1f} ± {spread:.1f} {unit} (it answers {effect.gain:.2f}x as strongly as "
            f"the calibration's median voice{held}); " + _crosstalk(effect.expected, effect.attribute)))


def _pca_controls() -> None:
    layer = st.selectbox("Layer", tuple(LAYERS), key=state.PCA_LAYER, persist_state="session",
                         format_func=lambda name: f"{name}: {LAYER_MEANING[name]}")
    result = context.pca[layer]
    count = len(result.components)
    chosen = list(st.session_state.get(state.PCA_COMPONENTS, state.DEFAULT_PCA_COMPONENTS))
    if [c for c in chosen if 0 <= c < count] != chosen or state.PCA_COMPONENTS not in st.session_state:
        st.session_state[state.PCA_COMPONENTS] = [c for c in chosen if 0 <= c < count]
    components = st.multiselect(
        "Axes with a slider", list(range(count)), key=state.PCA_COMPONENTS, persist_state="session",
        format_func=lambda c: f"PC{c + 1} ({result.explained_variance_ratio[c]:.0%})",
        help="Principal components of the stock voices' mean vectors on this layer, with the share of variance "
        "each explains.",
    )
    for component in sorted(components):
        key = state.pca_key(layer, component)
        st.session_state.setdefault(key, 0.0)
        st.slider(f"PC{component + 1}", -state.PCA_SLIDER_LIMIT, state.PCA_SLIDER_LIMIT, step=0.1, key=key,
                  format="%+.1f std", persist_state="session")
    st.caption(f"One step is one standard deviation of the stock voices along that axis; they lie within about ±3. "
               f"Recipes may go to ±{MAX_PCA_AMOUNT:g}.")


def _centroid_controls() -> None:
    mode = st.radio("Centroid move", state.CENTROID_MODES, key=state.CENTROID_MODE, horizontal=True,
                    persist_state="session",
                    format_func={"none": "off", "toward": "toward a centroid", "axis": "along an axis"}.get)
    if mode == "none":
        st.caption("Move the voice toward (or away from) the mean of a group, language or gender, or along the "
                   "axis from one such mean to another (male → female, American → British English).")
        return
    st.session_state.setdefault(state.CENTROID_KIND, "gender")
    kind = st.selectbox("Centroids of", CENTROID_KINDS, key=state.CENTROID_KIND, persist_state="session")
    keys = context.centroid_keys(kind)
    if mode == "toward":
        if st.session_state.get(state.CENTROID_KEY) not in keys:
            st.session_state[state.CENTROID_KEY] = keys[0]
        st.selectbox("Centroid", keys, key=state.CENTROID_KEY, persist_state="session")
        help_text = "1 lands on the centroid, 0.5 goes halfway, negative moves away from it."
    else:
        start, end = state.DEFAULT_AXES.get(kind, (keys[0], keys[-1]))
        if st.session_state.get(state.AXIS_FROM) not in keys:
            st.session_state[state.AXIS_FROM] = start if start in keys else keys[0]
        if st.session_state.get(state.AXIS_TO) not in keys:
            st.session_state[state.AXIS_TO] = end if end in keys else keys[-1]
        left, right = st.columns(2)
        left.selectbox("From", keys, key=state.AXIS_FROM, persist_state="session")
        right.selectbox("To", keys, key=state.AXIS_TO, persist_state="session")
        help_text = "1 moves the voice by the whole difference between the two centroids; negative goes the other way."
    st.session_state.setdefault(state.CENTROID_AMOUNT, 0.0)
    st.slider("Amount", -MAX_CENTROID_AMOUNT, MAX_CENTROID_AMOUNT, step=0.05, key=state.CENTROID_AMOUNT,
              persist_state="session", help=help_text)


def _dims_controls() -> None:
    ops = st.columns([1, 2])
    op = ops[0].selectbox("Operation", DIM_OPS, key=state.LAB_DIM_OP, persist_state="session")
    target = ops[1].radio("Dims", state.DIM_TARGETS, key=state.LAB_DIM_TARGET, horizontal=True, persist_state="session")
    st.session_state.setdefault(state.LAB_DIM_ONE, 0)
    st.session_state.setdefault(state.LAB_DIM_RANGE, (0, 15))
    st.session_state.setdefault(state.LAB_DIM_VALUE, 0.0)
    where, amount = st.columns(2)
    if target == "one dim":
        where.number_input("Dim", 0, STYLE_DIM - 1, key=state.LAB_DIM_ONE, persist_state="session",
                           help="0-127 condition the decoder (timbre), 128-255 the prosody predictor.")
    elif target == "range":
        where.slider("Dims (both ends included)", 0, STYLE_DIM - 1, key=state.LAB_DIM_RANGE, persist_state="session")
    amount.number_input("Value" if op == "set" else "Offset" if op == "offset" else "Factor",
                        -MAX_DIM_VALUE, MAX_DIM_VALUE, step=0.1, key=state.LAB_DIM_VALUE, disabled=op == "zero",
                        persist_state="session")
    st.button("Add this edit", key=state.LAB_DIM_ADD, on_click=_add_dim_edit)
    error = st.session_state.get(state.LAB_DIM_ERROR)
    if error is not None:
        ui.show_error(error)
    edits = st.session_state.get(state.EXTRA_EDITS, ())
    if edits:
        st.caption("Applied after the sliders, in this order:")
    for index, edit in enumerate(edits):
        row = st.columns([3, 1], vertical_alignment="center")
        row[0].markdown(ui.escape_markdown(edit.describe()))
        row[1].button("Remove", key=state.edit_remove_key(index), on_click=_remove_edit, args=(index,))


def _readouts(recipe: Recipe, pack, layer: str, components: list[int]) -> None:
    readout = listen.readout(pack, voices, context)
    st.markdown("**Recipe**")
    st.code(describe(recipe), language=None, wrap_lines=True)
    box = {"out of distribution": st.warning, "at the edge of the stock voices": st.info}.get(readout.ood.verdict,
                                                                                              st.success)
    box(ui.escape_markdown(readout.ood.summary()), icon=":material/warning:" if box is not st.success else None)
    st.markdown("**Nearest stock voices** (distance of mean vectors, as above)")
    st.dataframe(pd.DataFrame(readout.nearest, columns=["voice", "distance"]), hide_index=True,
                 column_config={"distance": st.column_config.NumberColumn(format="%.3f")}, key=state.LAB_NEAREST)
    shown = sorted(components)[:2] or [0]
    x, y = shown[0] + 1, (shown[1] + 1 if len(shown) > 1 else (2 if shown[0] != 1 else 1))
    chart = pca_scatter_chart(context.pca[layer], ui.bundled_voices(), x_component=x, y_component=y,
                              color_by="gender", markers=[Marker("Lab voice", readout.vector)], select=False)
    # Half the page wide: the legend goes below the plot, so that nothing runs off the column.
    ui.show_chart(chart.properties(width=340, height=300).configure_legend(orient="bottom", direction="horizontal"),
                  key=state.LAB_MAP)
    st.caption("The pink cross is the Lab's voice on the axes you are sliding (the first two with a slider).")


def _cached(heard: listen.HeardRender):
    """The audio of a render heard earlier, from the server's audio cache; None once the cache has let it go."""
    synthesis = ui.audio_cache().get(heard.key)
    return None if synthesis is None else synthesis.audio


def _history(history: list[listen.HeardRender]) -> None:
    """The listener's renders before the last one (which the page plays above), newest first: each replays from the
    cache, and each can go to the A/B page against the Lab's current voice."""
    earlier = history[:-1]
    if not earlier:
        return
    with st.expander(f"Your earlier renders ({len(earlier)})"):
        for index, heard in reversed(list(enumerate(earlier))):
            audio = _cached(heard)
            st.markdown(f"**{ui.escape_markdown(heard.description)}** · {heard.seconds:.1f} s · "
                        f"{ui.escape_markdown(_quoted(heard.text))}")
            if audio is None:
                st.caption("No longer in the audio cache: synthesize it again to hear it.")
                continue
            player, button = st.columns([3, 1], vertical_alignment="center")
            player.audio(wav_bytes(audio), format="audio/wav")
            button.button("A/B with now", key=state.lab_history_key(index), on_click=_to_ab, args=(heard,),
                          help="Open the A/B page with this render's recipe as A and the Lab's voice as B, saying "
                               "this render's text.")
    if st.session_state.pop(state.LAB_TO_AB, False):
        st.switch_page("pages/listen/ab.py")


def _to_ab(heard: listen.HeardRender) -> None:
    """Set the A/B page to compare ``heard``'s recipe (A) with the Lab's voice (B) on its text (a callback, so the
    text can change before its widget is drawn); the page then opens the A/B page."""
    st.session_state.update({
        state.ab_side_key("A", "source"): "recipe string", state.ab_side_key("A", "token"): heard.token,
        state.ab_side_key("B", "source"): "Lab recipe", state.AB_MODE: "side by side", state.LAB_TO_AB: True,
        **{state.SPEECH_KEYS[name]: value for name, value in
           (("text", heard.text), ("lang", heard.lang), ("speed", heard.speed))}})


def _quoted(text: str, limit: int = 60) -> str:
    """A render's text as a short quote."""
    return f"“{text if len(text) <= limit else text[:limit - 1] + '…'}”"


def _out_of_date(history: list[listen.HeardRender]) -> None:
    """Keep the last render on the page, marked out of date, after the controls have moved on."""
    audio = _cached(history[-1]) if history else None
    if audio is None:
        st.caption("Press Synthesize to hear this voice; what you have heard replays without rendering again.")
        return
    st.info(f"Out of date: your last render, of {ui.escape_markdown(history[-1].description)}. The voice or text has "
            "changed since; press Synthesize to hear it as it is now.", icon=":material/history:")
    st.audio(wav_bytes(audio), format="audio/wav")


def _compare(history: list[listen.HeardRender]) -> None:
    """Play the render before this one and this one back to back, at one loudness."""
    if len(history) < 2:
        return
    previous, current = (_cached(heard) for heard in history[-2:])
    if previous is None or current is None:
        return
    if st.button("Compare with the previous render", key=state.LAB_COMPARE,
                 help="Plays your previous render, a short pause, then this one, at the same loudness."):
        st.audio(wav_bytes(listen.back_to_back(previous, current)), format="audio/wav", autoplay=True)
        st.caption(f"First {ui.escape_markdown(history[-2].description)}, then "
                   f"{ui.escape_markdown(history[-1].description)}.")


def _listen(recipe: Recipe, pack, token: str) -> None:
    st.subheader("Listen")
    request = ui.speech_settings()
    clicked = st.button("Synthesize", key=state.LAB_SYNTHESIZE, type="primary")
    signature = request.signature(token)
    history = listen.heard_renders(st.session_state.get(state.LAB_HISTORY))
    if not clicked and not ui.rendered_before(state.LAB_RENDERED, signature):
        _out_of_date(history)
        _history(history)
        return
    player, stream_box = st.empty(), st.empty().container()
    stream_id = uuid.uuid4().hex

    def play(chunk) -> None:
        if chunk.count > 1:  # a single chunk is the whole audio: the player below autoplays it
            ui.stream_chunk(stream_box, stream_id, chunk)

    try:
        engine = ui.engine()
        with st.spinner("Speaking…"):
            render = ui.speak(request, pack, on_chunk=play if clicked else None, engine=engine)
    except ExplorerError as error:
        ui.show_error(error)
        return
    st.session_state[state.LAB_RENDERED] = signature
    result = render.synthesis
    heard = listen.HeardRender(render.key, token, request.text, request.lang, request.speed, request.engine_kind,
                               describe(recipe).replace("\n", "; "), result.seconds)
    st.session_state[state.LAB_HISTORY] = listen.remember(st.session_state.get(state.LAB_HISTORY), heard)
    history = listen.heard_renders(st.session_state[state.LAB_HISTORY])
    streamed = clicked and not render.cached and len(result.chunks) > 1
    player.audio(wav_bytes(result.audio, result.sample_rate), format="audio/wav", autoplay=clicked and not streamed)
    timing = ("from the cache" if render.cached
              else f"rendered in {result.compute_seconds:.1f} s (real-time factor {result.rtf:.2f})")
    st.caption(f"{result.seconds:.1f} s of audio · {timing} · spoken by Kokoro v1.0 through the {result.engine} "
               f"engine · pronunciation by {ui.escape_markdown(pronunciation_label(request.lang))}")
    for note in result.notes:
        st.caption(f"Note: {ui.escape_markdown(note)}")
    _compare(history)
    _history(history)
    # Meters come after the audio, so they never delay hearing it.
    with st.expander("Meters of this render", expanded=True):
        try:
            with st.spinner("Rendering the base voices to compare with…"):
                references = {
                    name: ui.speak(request, voices[name].pack, engine=engine) for name in recipe.voice_names
                }
            measured = ui.render_meters(render, request.recognisable_text, references)
        except ExplorerError as error:
            ui.show_error(error)
            return
        st.dataframe(listen.meters_table({"this voice": measured}), key=state.LAB_METERS)
        if request.recognisable_text is None:
            st.caption("The word error rate needs English text: the bundled recogniser knows English only.")
        st.caption("\"Sounds like\" compares this render with renders of the base voices (resemblyzer similarity, "
                   "1 = the same voice).")


def _export(recipe: Recipe, pack, token: str) -> None:
    st.subheader("Export and share")
    st.session_state.setdefault(state.LAB_EXPORT_NAME, "lab_voice")
    name = st.text_input("Voice name", key=state.LAB_EXPORT_NAME, persist_state="session", max_chars=64)
    try:
        files = listen.export_files(pack, recipe, name)
    except ExplorerError as error:
        ui.show_error(error)
    else:
        columns = st.columns([1, 1, 1.5, 3])
        for column, (filename, build) in zip(columns, files.items()):
            suffix = filename.rsplit(".", 1)[-1]
            column.download_button(
                f"⬇ {suffix.upper()}" if suffix != "json" else "⬇ recipe JSON", build, file_name=filename,
                mime="application/json" if suffix == "json" else "application/octet-stream",
                key=state.download_key(suffix), on_click="ignore",
            )
        st.caption(".pt and .npz hold a [510, 1, 256] float32 pack, as kokoro's KPipeline and kokoro-onnx load "
                   "them; the JSON is the recipe that rebuilds it from the stock voices.")
    shared = listen.share_params(token, ui.speech_request())
    st.markdown("**Share link** (the recipe, text, language and speed are in the URL; anyone with these voices hears "
                "what you hear)" if "text" in shared else
                f"**Share link** (the recipe, language and speed; the text is over {listen.SHARED_TEXT_CHARS:,} "
                "characters, too long for a link)")
    st.code(listen.share_url(st.context.url or "", shared), language=None, wrap_lines=True)


@st.fragment
def _panel() -> None:
    controls, readouts = st.columns([1, 1], gap="large")
    with controls:
        base_tab, attribute_tab, pca_tab, centroid_tab, dims_tab = st.tabs(
            ["Base voices", "Pitch, pace…", "PCA axes", "Centroids", "Dimensions"])
        with base_tab:
            _base_controls()
        with attribute_tab:
            effects = _attribute_controls()
        with pca_tab:
            _pca_controls()
        with centroid_tab:
            _centroid_controls()
        with dims_tab:
            _dims_controls()
        st.button("Reset the Lab", key=state.LAB_RESET, on_click=_reset,
                  help="Back to an equal mix of the picked voices, with no edits.")
    try:
        lab_state = state.LabState.from_widgets(st.session_state)
        recipe = lab_state.to_recipe()
        pack = apply_recipe(recipe, voices, context)
        _effects_for_this_voice(effects, lab_state)
    except ExplorerError as error:
        with readouts:
            ui.show_error(error)
        return
    token = recipe.to_token()
    st.session_state[state.RECIPE_TOKEN] = token
    shared = listen.share_params(token, ui.speech_request())
    if st.query_params.to_dict() != shared:
        st.query_params.from_dict(shared)
    st.session_state[state.LAB_SHARED] = shared
    with readouts:
        _listen(recipe, pack, token)
        _readouts(recipe, pack, lab_state.pca_layer, list(st.session_state.get(state.PCA_COMPONENTS, [])))
    st.divider()
    _export(recipe, pack, token)


def _sweep_controls(recipe: Recipe):
    axis = st.radio("Sweep along", sweep.SWEEP_AXES, key=state.LAB_SWEEP_AXIS, horizontal=True, persist_state="session")
    columns = st.columns(3)
    if axis == "PCA component":
        layer = columns[0].selectbox("Layer", tuple(LAYERS), key=state.LAB_SWEEP_LAYER, persist_state="session")
        count = len(context.pca[layer].components)
        component = columns[1].selectbox("Component", list(range(count)), key=state.LAB_SWEEP_COMPONENT,
                                         format_func=lambda c: f"PC{c + 1}", persist_state="session")
        bounds, default = (-MAX_PCA_AMOUNT, MAX_PCA_AMOUNT), (-3.0, 3.0)
    elif axis in ("Centroid move", "Centroid axis"):
        kind = columns[0].selectbox("Centroids of", CENTROID_KINDS, key=state.LAB_SWEEP_KIND, index=2,
                                    persist_state="session")
        keys = context.centroid_keys(kind)
        start, end = state.DEFAULT_AXES.get(kind, (keys[0], keys[-1]))
        if axis == "Centroid move":
            key = columns[1].selectbox("Centroid", keys, key=state.sweep_centroid_key("key", kind),
                                       index=keys.index(end) if end in keys else 0, persist_state="session")
            default = (0.0, 1.0)
        else:
            from_key = columns[1].selectbox("From", keys, key=state.sweep_centroid_key("from", kind),
                                            index=keys.index(start) if start in keys else 0, persist_state="session")
            to_key = columns[2].selectbox("To", keys, key=state.sweep_centroid_key("to", kind),
                                          index=keys.index(end) if end in keys else len(keys) - 1,
                                          persist_state="session")
            default = (-1.0, 1.0)
        bounds = (-MAX_CENTROID_AMOUNT, MAX_CENTROID_AMOUNT)
    else:
        names = voices.names
        base = list(recipe.voice_names)
        a = columns[0].selectbox("Voice a (t = 0)", names, key=state.LAB_SWEEP_A, persist_state="session",
                                 index=names.index(base[0]) if base and base[0] in names else 0)
        others = [n for n in names if n != a]
        b_default = next((n for n in base[1:] if n in others), others[0] if others else a)
        b = columns[1].selectbox("Voice b (t = 1)", names, key=state.LAB_SWEEP_B, persist_state="session",
                                 index=names.index(b_default))
        method = columns[2].radio("Method", METHODS, key=state.LAB_SWEEP_METHOD, horizontal=True,
                                  persist_state="session")
        bounds, default = T_RANGE, (0.0, 1.0)
    low, high = st.slider("Amounts from … to …", float(bounds[0]), float(bounds[1]), value=default, step=0.1,
                          key=state.sweep_range_key(axis), persist_state="session")
    steps = st.slider("Steps", sweep.MIN_SWEEP_STEPS, sweep.MAX_SWEEP_STEPS, value=5, key=state.LAB_SWEEP_STEPS,
                      persist_state="session")
    amounts = sweep.sweep_amounts(low, high, steps)
    if axis == "PCA component":
        return sweep.pca_sweep(recipe, layer, component, amounts)
    if axis == "Centroid move":
        return sweep.centroid_sweep(recipe, kind, key, amounts)
    if axis == "Centroid axis":
        return sweep.centroid_axis_sweep(recipe, kind, from_key, to_key, amounts)
    return sweep.interpolation_sweep(recipe, a, b, amounts, method)


@st.fragment
def _sweep() -> None:
    st.caption("Render one short sentence at several amounts along an axis, starting from the Lab's current voice, "
               "and plot the word error rate and the similarity to the start and end voices: where does the edit "
               "stop being speech, or stop being the voice?")
    token = st.session_state.get(state.RECIPE_TOKEN)
    try:
        recipe = Recipe.from_token(token) if token else state.LabState.default(st.session_state[state.LAB_VOICES],
                                                                               voices).to_recipe()
        plan = _sweep_controls(recipe)
    except ExplorerError as error:
        ui.show_error(error)
        return
    text = st.text_input("Sentence", value=sweep.SWEEP_TEXT, key=state.LAB_SWEEP_TEXT, persist_state="session")
    if st.button(f"Run the sweep ({len(plan.steps)} renders)", key=state.LAB_SWEEP_RUN):
        bar = st.progress(0.0, text="Rendering…")
        request = dataclasses.replace(ui.speech_request(), text=text)
        try:
            engine = ui.engine()

            def render(pack):
                return ui.speak(request, pack, engine=engine).audio

            with st.spinner("Measuring every step (speech recognition and voice similarity)…"):
                st.session_state[state.LAB_SWEEP_RESULT] = sweep.run_sweep(
                    plan, voices=voices, context=context, render=render, text=text,
                    progress=lambda done, what: bar.progress(done, text=what))
        except ExplorerError as error:
            ui.show_error(error)
        finally:
            bar.empty()
    result = st.session_state.get(state.LAB_SWEEP_RESULT)
    if result is None:
        return
    if result.measured:
        ui.show_chart(charts.sweep_chart(result.table(), result.plan.axis), key=state.LAB_SWEEP_CHART)
        st.caption("Word error rate: 0 means every word was heard. Similarity: 1 means the same voice as the start "
                   "(or end) of the sweep.")
    else:
        st.info("No meter could run here (the recogniser and the speaker encoder are optional packages): "
                "listen to each step below.")
    st.dataframe(result.table(), hide_index=True, key=state.LAB_SWEEP_TABLE, column_config={
        "wer": st.column_config.NumberColumn("WER", format="%.2f"),
        "similarity_to_start": st.column_config.NumberColumn("similarity to start", format="%.3f"),
        "similarity_to_end": st.column_config.NumberColumn("similarity to end", format="%.3f"),
        "f0_median_hz": st.column_config.NumberColumn("median F0", format="%.0f Hz"),
        "duration_s": st.column_config.NumberColumn("duration", format="%.2f s"),
    })
    st.markdown("**Each step**")
    columns = st.columns(min(4, len(result.audio)))
    for index, (step, audio) in enumerate(zip(result.plan.steps, result.audio)):
        with columns[index % len(columns)]:
            st.caption(f"{result.plan.axis} = {step.amount:g}")
            st.audio(wav_bytes(audio), format="audio/wav")


_restore()
_panel()
st.divider()
with st.expander("Sweep: where does an edit stop being speech?", expanded=False):
    _sweep()

ui.preload_engine()  # after the page is drawn: its first synthesis then need not wait for the engine to load
