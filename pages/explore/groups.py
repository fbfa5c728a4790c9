"""Groups: centroids by group, language and gender, how far apart they sit, and any voice's nearest neighbours."""

import pandas as pd
import streamlit as st

from explorer import charts
from explorer.app import state, ui
from explorer.analysis import CENTROID_KINDS, LAYER_MEANING, LAYERS, layer_slice, nearest_voices

st.title("Groups and neighbours")
row = ui.analysis_row(state.GROUPS_ROW)
voices = ui.session_voices()
analysis = ui.voice_analysis(voices, row)
ui.analysis_caption(row)

# --- centroids -------------------------------------------------------------------------------------------------------
st.subheader("Centroids")
kind = st.radio(
    "Group voices by", CENTROID_KINDS, key=state.GROUPS_KIND, horizontal=True,
    format_func=lambda k: {"group": "group (name prefix, e.g. bf)", "language": "language", "gender": "gender"}[k],
)
ui.show_chart(charts.centroid_distance_chart(analysis, kind))
centroids = pd.DataFrame(
    [
        {
            kind: key,
            "voices": len(c.members),
            "distance": c.distance_from_overall,
            "decoder": c.decoder_distance,
            "prosody": c.prosody_distance,
            "within variance": c.within_variance,
            "members": ", ".join(c.members),
        }
        for key, c in analysis.centroids.by_kind[kind].items()
    ]
)
st.dataframe(
    centroids, hide_index=True,
    column_config={
        column: st.column_config.NumberColumn(format="%.4f")
        for column in ("distance", "decoder", "prosody", "within variance")
    },
)
st.caption("Distance of each centroid from the centroid of all voices (on all dims and per half), and the "
           "mean per-dim variance of its members (0 for a single voice).")

st.subheader("Distance between group centroids")
ui.show_chart(charts.group_distance_heatmap(analysis))

# --- nearest neighbours ----------------------------------------------------------------------------------------------
st.subheader("Nearest neighbours")
voice_column, layer_column, k_column = st.columns([2, 2, 1])
names = analysis.names
default = names.index(state.DEFAULT_VOICE) if state.DEFAULT_VOICE in names else 0
name = voice_column.selectbox("Voice", names, index=default, key=state.GROUPS_VOICE)
layer = layer_column.selectbox(
    "Dims", tuple(LAYERS), key=state.GROUPS_LAYER, format_func=lambda n: f"{n} ({LAYER_MEANING[n]})"
)
k = k_column.number_input("How many", min_value=1, max_value=len(names) - 1, value=min(5, len(names) - 1),
                          key=state.GROUPS_K)
vectors = analysis.vectors[:, layer_slice(layer)]
target = vectors[names.index(name)]
others = [n for n in names if n != name]
other_vectors = vectors[[names.index(n) for n in others]]
cosine_column, euclidean_column = st.columns(2)
for column, metric, score in ((cosine_column, "cosine", "similarity"), (euclidean_column, "euclidean", "distance")):
    nearest = nearest_voices(target, other_vectors, others, k=int(k), metric=metric)
    column.markdown(f"**{metric.capitalize()}** ({'higher' if metric == 'cosine' else 'lower'} is closer)")
    column.dataframe(
        pd.DataFrame(nearest, columns=["voice", score]), hide_index=True,
        column_config={score: st.column_config.NumberColumn(format="%.4f")},
    )
