"""Dimensions: which of the 256 style dims vary across voices, how the two halves correlate, and their values."""

import pandas as pd
import streamlit as st

from explorer import charts
from explorer.app import state, ui

st.title("Dimensions")
row = ui.analysis_row(state.DIMENSIONS_ROW)
voices = ui.session_voices()
analysis = ui.voice_analysis(voices, row)
ui.analysis_caption(row)
variance = analysis.variance

# --- variance per dim ------------------------------------------------------------------------------------------------
st.subheader("Variance of each dim across voices")
shares = st.columns(4)
shares[0].metric("Decoder half's share", f"{variance.layer_share['decoder']:.1%}", help="dims 0-127 (timbre)")
shares[1].metric("Prosody half's share", f"{variance.layer_share['prosody']:.1%}",
                 help="dims 128-255 (rhythm, pitch, duration)")
shares[2].metric("Top 10 dims' share", f"{variance.top10_share:.1%}")
shares[3].metric("Top 20 dims' share", f"{variance.top20_share:.1%}")
ui.show_chart(charts.dimension_variance_chart(analysis))
total = float(variance.variance.sum())
top = pd.DataFrame(
    [{"rank": rank, "dim": dim, "half": half, "variance": value, "share": 100 * value / total}
     for rank, (dim, half, value) in enumerate(variance.top, start=1)]
)
st.markdown("**The most variable dims**")
st.dataframe(
    top, hide_index=True, height=300,
    column_config={"variance": st.column_config.NumberColumn(format="%.5f"),
                   "share": ui.share_column()},
)

# --- decoder vs prosody ----------------------------------------------------------------------------------------------
st.subheader("Do the halves move together?")
correlation = analysis.correlation
heatmap_column, pairs_column = st.columns([3, 2])
with heatmap_column:
    ui.show_chart(charts.interlayer_correlation_heatmap(analysis))
with pairs_column:
    st.markdown("**Strongest decoder/prosody pairs**")
    st.dataframe(
        pd.DataFrame(correlation.top_pairs, columns=["decoder dim", "prosody dim", "r"]),
        hide_index=True, height=390,
        column_config={"r": st.column_config.NumberColumn(format="%.3f")},
    )
    st.caption(f"Pearson r across {len(analysis.names)} voices; mean |r| {correlation.mean_abs:.3f}, "
               f"{correlation.n_above_0_7} of 16,384 pairs above |r| = 0.7. With few voices, large |r| arise by "
               "chance too.")

# --- value distributions ---------------------------------------------------------------------------------------------
st.subheader("Value distributions")
ui.show_chart(charts.embedding_distributions_chart(analysis))
st.dataframe(
    pd.DataFrame(
        [
            {"half": name, "mean": d.mean, "std": d.std, "min": d.minimum,
             **{f"p{p}": v for p, v in d.percentiles.items()}, "max": d.maximum}
            for name, d in analysis.distributions.items()
        ]
    ),
    hide_index=True,
    column_config={c: st.column_config.NumberColumn(format="%.4f")
                   for c in ("mean", "std", "min", "max", "p1", "p5", "p25", "p50", "p75", "p95", "p99")},
)
