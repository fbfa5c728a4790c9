"""Architecture: Kokoro's modules and parameter counts, where each style half goes, and the path from text to audio.

Everything is measured on the real ``kokoro.KModel`` (built once, shared by every session), not described from memory.
"""

import pandas as pd
import streamlit as st

from explorer import charts
from explorer.app import state, ui
from explorer.engines import (
    HUB_REPO,
    TORCH_MEMORY,
    TORCH_WEIGHTS,
    available_engines,
    offline_torch_weights,
    usable_memory,
)
from explorer.errors import ExplorerError
from explorer.hub import cached_hub_file

st.title("Model architecture")

# --- which weights ---------------------------------------------------------------------------------------------------
# Only weights this server already has are offered: a path typed by a visitor would let anyone make the server open
# (and report on) its own files. Local users point the CLI at any file: python -m explorer architecture --weights.
RANDOM, OFFLINE, HUB = "random", "offline", "hub"
sources = {RANDOM: "random initialisation (counts, routing and data flow only)"}
if any(kind.startswith("torch") for kind, _ in available_engines()):
    sources[OFFLINE] = "official v1.0 weights, from the offline int8 ONNX model"
cached = cached_hub_file(HUB_REPO, TORCH_WEIGHTS)
if cached is not None:
    sources[HUB] = f"{TORCH_WEIGHTS} from your Hugging Face cache"
# The page opens on the real weights where the server has them and the memory to import them (about 1.4 GB at the
# peak, the first time); on a small host (Community Cloud gives about 2.7 GB, shared with the engine) on random ones.
memory = usable_memory()
roomy = memory is None or memory >= TORCH_MEMORY
real = [choice for choice in (HUB, OFFLINE) if choice in sources]
st.session_state.setdefault(state.ARCH_WEIGHTS_SOURCE, real[0] if real and roomy else RANDOM)
source = st.selectbox("Weights", list(sources), format_func=sources.get, key=state.ARCH_WEIGHTS_SOURCE,
                      help="Parameter counts, the module tree, the style routing and the data flow are the same for "
                      "any weights; weight statistics and the predicted durations are the trained model's only with "
                      "real weights. The offline weights are imported once (a few seconds) and cached.")
if real and not roomy:
    st.caption(f"This server may use {memory / 1024**3:.1f} GiB of memory, less than the {TORCH_MEMORY / 1024**3:.0f} "
               "GiB it needs to import real weights beside its engine, so the page opened on random weights; choose "
               "the real ones above to import them anyway.")
if cached is None:
    st.caption(f"The official {TORCH_WEIGHTS} is not in this server's Hugging Face cache. Whoever runs the server can "
               "fetch it with `python -m explorer weights download`; it is then offered here, and the `torch` engines "
               "use it.")
try:
    if source == OFFLINE:
        with st.spinner("Importing the offline model's weights into kokoro's KModel (once)…"):
            weights = offline_torch_weights()
    else:
        weights = {RANDOM: None, HUB: cached}[source]
    summary = ui.architecture_summary(weights)
except ExplorerError as error:
    ui.show_error(error)
    st.caption("Showing the model with random weights instead.")
    weights = None
    summary = ui.architecture_summary(None)

if weights is None:
    st.info(
        "Weights: **random initialisation**. Parameter counts, the module tree, the style routing and the data flow "
        "do not depend on the weights; weight statistics below describe the random initialisation, not the trained "
        "model."
    )
else:
    st.success(f"Weights: {ui.escape_markdown(sources[source])}")

metrics = st.columns(4)
metrics[0].metric("Parameters", f"{summary.total_params:,}")
metrics[1].metric("Top-level modules", len(summary.modules))
metrics[2].metric("Style vector", f"{2 * summary.style_dim} values", help="per voicepack row: two halves of "
                  f"{summary.style_dim}")
metrics[3].metric("kokoro", summary.kokoro_version)

# --- parameters per module -------------------------------------------------------------------------------------------
st.subheader("Parameters per top-level module")
ui.show_chart(
    charts.parameter_share_chart((m.name, m.params, m.share) for m in summary.modules)
)
st.markdown("**Against the seed suite's expectations**")
st.dataframe(
    pd.DataFrame(
        [
            {"part": check.label, "modules": " + ".join(check.modules), "measured": 100 * check.measured,
             "expected": f"{check.expected_low:.0%}-{check.expected_high:.0%}", "verdict": check.verdict}
            for check in summary.expectation_checks()
        ]
    ),
    hide_index=True,
    column_config={"measured": ui.share_column()},
)
st.caption("The seed analysis suite's assumed shares, set against the counts measured on this model.")

# --- PL-BERT ---------------------------------------------------------------------------------------------------------
bert = summary.bert
st.subheader("PL-BERT, the text encoder")
st.markdown(
    f"`bert` is a `{bert.module_type}` (an ALBERT): {bert.params:,} parameters. ALBERT shares parameters between "
    f"layers: **{bert.layers} layers run** on every pass ({bert.layer_calls} counted in the traced pass), but only "
    f"**{bert.distinct_layers} distinct layer{'s' if bert.distinct_layers != 1 else ''}** "
    f"({bert.shared_layer_params:,} parameters) hold{'s' if bert.distinct_layers == 1 else ''} parameters: "
    + (f"all {bert.layers} reuse it." if bert.distinct_layers == 1 else
       f"each is reused by {bert.layers_per_shared_set} of the {bert.layers}.")
)
figures = st.columns(4)
figures[0].metric("Vocabulary", f"{bert.vocab_size} ids", help=f"{bert.vocab_symbols} of them are assigned to "
                  f"phoneme symbols; each id is embedded in {bert.embedding_size} values")
figures[1].metric("Hidden size", bert.hidden_size, help=f"token embeddings of {bert.embedding_size} values are "
                  f"projected to {bert.hidden_size}")
figures[2].metric("Layers run / distinct", f"{bert.layers} / {bert.distinct_layers}",
                  help=f"{bert.hidden_groups} hidden group(s) of {bert.layers_per_group} layer(s)")
figures[3].metric("Attention heads", bert.attention_heads, help=f"{bert.head_size} values each")
figures = st.columns(4)
figures[0].metric("Embedding size", bert.embedding_size)
figures[1].metric("Feed-forward size", bert.intermediate_size)
figures[2].metric("Max positions", bert.max_positions, help="the longest token sequence one pass takes")
figures[3].metric("Without sharing", f"{bert.unshared_params / 1e6:.1f} M", help=f"{bert.unshared_params:,} "
                  f"parameters, {bert.unshared_share:.1%} of a model that size")
st.dataframe(
    pd.DataFrame([{"figure": row["label"], "the seed says": row["seed"], "measured": row["measured"],
                   "verdict": row["verdict"]} for row in bert.seed_comparison()]),
    hide_index=True,
)
seed_bert = next((check for check in summary.expectation_checks() if check.modules == ("bert",)), None)
if seed_bert is not None:
    st.caption(
        f"The seed suite expected BERT to hold {seed_bert.expected_low:.0%}-{seed_bert.expected_high:.0%} of the "
        f"parameters; it holds {seed_bert.measured:.1%}. With a layer of its own for each of the {bert.layers} layers "
        f"it would hold {bert.unshared_share:.1%}. Its pooler ({bert.pooler_params:,} parameters) runs, but KModel "
        "reads only the per-token states."
    )

# --- style routing ---------------------------------------------------------------------------------------------------
st.subheader("Who reads which half of the style vector")
st.caption("Observed in one traced forward pass whose two style halves held different values.")
for column, half in zip(st.columns(len(summary.halves)), summary.halves):
    with column:
        st.markdown(f"**style[{half.start}:{half.stop}]: the {half.name} half**")
        st.markdown(f"Read only inside: `{'`, `'.join(half.top_level)}`")
        st.markdown(f"Enters at: `{'`, `'.join(half.entry_points)}`")
        st.dataframe(
            pd.DataFrame([{"layer type (how)": kind, "count": count} for kind, count in half.consumer_types().items()]),
            hide_index=True,
        )
        with st.expander(f"All {len(half.consumers)} layers that read it"):
            st.dataframe(
                pd.DataFrame([vars(consumer) for consumer in half.consumers]), hide_index=True,

            )

# --- data flow -------------------------------------------------------------------------------------------------------
flow = summary.data_flow
st.subheader("From text to audio")
st.markdown(
    "Text → phonemes (G2P, outside the model) → token ids → the steps below → audio. "
    f"Traced on the phonemes `{flow.phonemes}`: {flow.n_tokens} tokens including the two pads, {flow.n_frames} "
    f"duration frames, {flow.n_samples:,} samples at {flow.sample_rate:,} Hz "
    f"({flow.samples_per_frame:g} samples, {flow.frame_ms:g} ms, per frame)."
)
if weights is None:
    st.caption("With random weights the predicted durations (and so the frame and sample counts) are arbitrary; "
               "the shapes and the order of the steps are the model's own.")
detail = st.toggle("Show the sub-modules each step calls", key=state.ARCH_FLOW_DETAIL)
st.dataframe(
    pd.DataFrame(
        [
            {
                "step": step.order,
                "module": ("└ " if step.depth > 1 else "") + step.name,
                "type": step.module_type,
                "input": " ".join(str(list(shape)) for shape in step.inputs),
                "output": str(list(step.output)),
                "style half": step.style or "",
            }
            for step in flow.steps
            if detail or step.depth == 1
        ]
    ),
    hide_index=True,
    height=min(38 + 35 * sum(detail or step.depth == 1 for step in flow.steps), 720),
    column_config={"step": st.column_config.NumberColumn(width="small"),  # room for the decoder's five inputs
                   "input": st.column_config.TextColumn(width="large")},
)

# --- module tree -----------------------------------------------------------------------------------------------------
st.subheader("Module tree")
depth = st.slider("Depth to show", 1, max(node.depth for node in summary.nodes), 2, key=state.ARCH_DEPTH)
for module in summary.modules:
    with st.expander(f"{module.name} ({module.module_type}): {module.params:,} parameters, {module.share:.1%}"):
        st.dataframe(
            pd.DataFrame(
                [
                    {"module": node.path, "depth": node.depth, "type": node.module_type,
                     "parameters": node.total_params, "own": node.own_params,
                     "share of model": 100 * node.total_params / summary.total_params}
                    for node in summary.tree(depth)
                    if node.path == module.name or node.path.startswith(module.name + ".")
                ]
            ),
            hide_index=True,
            column_config={"share of model": ui.share_column()},
        )

# --- weights ---------------------------------------------------------------------------------------------------------
st.subheader("Weight statistics per module")
st.caption("Over every parameter value of each top-level module; weights: "
           f"{ui.escape_markdown(sources[source] if weights is not None else sources[RANDOM])}.")
st.dataframe(
    pd.DataFrame([vars(stats) for stats in summary.weight_stats]).rename(columns={"name": "module", "count": "values"}),
    hide_index=True,
    column_config={c: st.column_config.NumberColumn(format="%.4g") for c in ("mean", "std", "abs_max")},
)
