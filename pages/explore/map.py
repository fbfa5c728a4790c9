"""Map: the voices on PCA or t-SNE axes (with the t-SNE perplexity); pick voices for the Lab, see where the Lab's voice
sits, which dims drive the chosen components, and the scree plot."""

import pandas as pd
import streamlit as st

from explorer import charts
from explorer.app import state, ui
from explorer.analysis import LAYER_MEANING, LAYERS, default_perplexity, perplexity_bounds, summary_vectors
from explorer.attributes import ATTRIBUTES, load_axes
from explorer.errors import ExplorerError
from explorer.recipe import apply_recipe

st.title("Voice map")
row = ui.analysis_row(state.MAP_ROW)
voices = ui.session_voices()
analysis = ui.voice_analysis(voices, row)
ui.analysis_caption(row)

method_column, layer_column, x_column, y_column, color_column = st.columns([1.2, 1.4, 1, 1, 1])
method = method_column.radio("Projection", ("PCA", "t-SNE"), key=state.MAP_METHOD, horizontal=True)
layer = layer_column.selectbox(
    "Layer", tuple(LAYERS), key=state.MAP_LAYER,
    format_func=lambda name: f"{name} ({LAYER_MEANING[name].split(',')[0]})",
    help="decoder: dims 0-127 (timbre); prosody: dims 128-255 (rhythm, pitch, duration); both: all 256.",
)
color_by = color_column.selectbox(
    "Colour by", (*charts.COLOR_FIELDS, *ATTRIBUTES), key=state.MAP_COLOR,
    format_func=lambda field: ATTRIBUTES[field].label.lower() if field in ATTRIBUTES else field,
    help="Voice metadata, or an attribute measured in each voice's speech (pitch, pitch range, pace, energy, "
         "brightness: the Voices page's attribute table).",
)
if color_by in ATTRIBUTES:
    try:
        load_axes()
    except ExplorerError as error:
        ui.show_error(error)
        color_by = charts.COLOR_FIELDS[0]

if method == "PCA":
    ratio = analysis.pca[layer].explained_variance_ratio
    components = list(range(1, len(ratio) + 1))

    def label(component: int) -> str:
        return f"PC{component} ({ratio[component - 1]:.1%})"

    x_component = x_column.selectbox("x axis", components, index=0, key=state.MAP_X, format_func=label)
    y_component = y_column.selectbox("y axis", components, index=1, key=state.MAP_Y, format_func=label)

    # The Lab's current voice, projected into the same space as its own marker.
    markers = []
    try:
        to_come = state.lab_recipe_to_come(st.session_state.get(state.RECIPE_TOKEN), st.session_state[state.LAB_VOICES],
                                           st.session_state.get(state.LAB_VOICES_SEEN), voices, ui.recipe_context())
        if to_come.warning:
            st.warning(f"The Lab's voice is drawn from its defaults: {ui.escape_markdown(to_come.warning)}")
        pack = apply_recipe(to_come.recipe, voices, context=ui.recipe_context())
        markers.append(charts.Marker("Lab voice", summary_vectors(pack[None], row)[0]))
    except ExplorerError as error:
        st.warning(f"The Lab's voice cannot be drawn: {ui.escape_markdown(error)}")
    chart = charts.pca_scatter_chart(
        analysis, voices, layer=layer, x_component=x_component, y_component=y_component, color_by=color_by,
        markers=markers,
    )
else:
    low, high = (int(bound) for bound in perplexity_bounds(len(voices)))
    if not low <= st.session_state.get(state.MAP_PERPLEXITY, low) <= high:  # kept from a larger voice set
        del st.session_state[state.MAP_PERPLEXITY]
    perplexity = x_column.slider(
        "Perplexity", low, high, int(default_perplexity(len(voices))), step=1, key=state.MAP_PERPLEXITY,
        help=f"Roughly how many neighbours each voice keeps close: low values make many small clusters, high values "
             f"weigh the overall layout. {low}-{high} for these {len(voices)} voices; the default is "
             f"{default_perplexity(len(voices)):g}, as in `python -m explorer analyze`.",
    )
    chart = charts.tsne_chart(ui.with_tsne(analysis, voices, layer, perplexity), layer, color_by, voices)

map_column, side_column = st.columns([3, 1])
with map_column:
    event = ui.show_chart(chart, on_select="rerun", key=state.MAP_CHART)
picked = charts.selected_voice_names(event, chart)
if picked and tuple(picked) != tuple(st.session_state[state.LAB_VOICES]):
    st.session_state[state.LAB_VOICES] = tuple(picked)
    st.rerun()  # the cross moves to the voice the Lab will now start from
with side_column:
    in_lab = st.session_state.get(state.LAB_VOICES, ())
    st.markdown("**Picked for the Lab**" if picked else "**In the Lab**")
    st.markdown(ui.escape_markdown(", ".join(in_lab)) or "none")
    if st.button("Open in Voice Lab", key=state.MAP_OPEN_LAB, type="primary", disabled=not in_lab):
        st.switch_page("pages/listen/lab.py")
    if method == "PCA":
        st.caption("Hover a voice for its name. Click a voice (shift-click for more) or drag a box to pick voices "
                   "for the Voice Lab; double-click clears the box. The cross is the Lab's current voice.")
    else:
        st.caption("Hover a voice for its name; click or drag a box to pick voices for the Voice Lab. t-SNE keeps "
                   "neighbours together, but its axes and distances mean nothing and it cannot place the Lab's "
                   "voice: switch to PCA to see it.")

if method == "PCA":
    shown_components = tuple(dict.fromkeys((x_component, y_component)))
    ui.show_chart(charts.pca_loadings_chart(analysis, layer, shown_components))
    st.caption("Each bar is a style dim's weight (loading) in the component; the squared weights of all the layer's "
               "dims sum to 1. A voice with more of a positive-weight dim sits further to the component's + side. "
               "Dims are numbered 0-255 as in the Voice Lab's dim edits.")

st.divider()
st.subheader("How many components matter")
scree_column, needed_column = st.columns([3, 2])
with scree_column:
    ui.show_chart(charts.pca_variance_chart(analysis, layer, max_components=20))
needed = pd.DataFrame(
    [
        {"layer": name, **{f"{int(p * 100)} %": n for p, n in result.components_needed.items()}}
        for name, result in analysis.pca.items()
    ]
)
with needed_column:
    st.markdown("**Components needed to explain a share of the variance across voices**")
    st.dataframe(needed, hide_index=True)
    st.caption(f"The chart shows the first 20 of {len(analysis.pca[layer].explained_variance_ratio)} components "
               f"of the {layer} layer; change the layer above.")
