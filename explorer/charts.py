"""Altair charts of voice analyses, shared by the command line, the app and the Python API.

Every builder is a pure function from analysis results to an altair chart: nothing is drawn or saved here except by
``save_chart``. The voice maps (``pca_scatter_chart``, ``tsne_chart``) carry two selection parameters, a click
selection named ``voices`` and a box (interval) selection named ``voices_brush``, so a Streamlit page can pass them to
``st.altair_chart(chart, on_select="rerun")`` and turn what comes back into voice names with
``selected_voice_names``.

Example:
    >>> import explorer
    >>> from explorer import charts
    >>> voices = explorer.load_voices()
    >>> result = explorer.analyze(voices, tsne_layers=("prosody",))
    >>> chart = charts.pca_scatter_chart(result, voices, layer="decoder", color_by="gender")
    >>> explorer.save_chart(chart, "pca_decoder.svg").name     # or .png, .html, .json; in Jupyter it just displays
    'pca_decoder.svg'
    >>> explorer.save_chart(charts.tsne_chart(result, layer="prosody"), "tsne_prosody.html").stat().st_size > 0
    True
    >>> type(charts.dimension_variance_chart(result)).__name__
    'LayerChart'

Large matrices and altair's row limit: altair refuses to inline a DataFrame of more than 5,000 rows (its default
``max_rows`` data transformer), and a 128x128 correlation matrix has 16,384 cells. Heatmaps therefore pass their data
as a plain ``{"values": records}`` dict of one flat record per cell: dict data bypasses altair's data transformers, so
no global setting is changed. The records hold scalars only: Streamlit converts chart data to Arrow, and cells packed
into list columns (expanded by a Vega-Lite ``flatten``) arrive empty in the browser. Voicepacks (510x256 = 130,560
cells) are averaged over bins of ``PACK_ROW_STEP`` rows, which keeps the cell count, and the drawing time, down.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from explorer.analysis import (
    LAYER_MEANING,
    LAYERS,
    LOADING_DIMS,
    LOW_VARIANCE_FRACTION,
    CentroidAnalysis,
    DimensionVariance,
    InterlayerCorrelation,
    PCAResult,
    RowTrajectory,
    ValueDistribution,
    VoiceAnalysis,
    layer_slice,
)
from explorer.attributes import ATTRIBUTES, load_axes
from explorer.errors import AnalysisError, AxesError
from explorer.paths import atomic_write_bytes
from explorer.voices import HALF, LANGUAGES, PACK_ROWS, STYLE_DIM, VoiceSet, as_pack, parse_voice_name

__all__ = [
    "COLOR_FIELDS",
    "INTERVAL_SELECTION",
    "PACK_ROW_STEP",
    "POINT_SELECTION",
    "AnyChart",
    "Marker",
    "centroid_distance_chart",
    "chart_bytes",
    "dimension_variance_chart",
    "embedding_distributions_chart",
    "group_distance_heatmap",
    "interlayer_correlation_heatmap",
    "match_curve_chart",
    "pack_difference_heatmap",
    "pack_heatmap",
    "parameter_share_chart",
    "pca_layers_chart",
    "pca_loadings_chart",
    "pca_scatter_chart",
    "pca_variance_chart",
    "row_trajectory_chart",
    "save_chart",
    "selected_voice_names",
    "sweep_chart",
    "tsne_chart",
]

POINT_SELECTION = "voices"
"""Name of the click selection on the voice maps (shift-click adds voices)."""
INTERVAL_SELECTION = "voices_brush"
"""Name of the box selection on the voice maps (drag to select, double-click to clear)."""
COLOR_FIELDS = ("language", "gender", "group")
"""Voice metadata the maps can colour points by (``color_by``)."""
PACK_ROW_STEP = 5
"""Rows averaged into one heatmap row of a voicepack: 510 rows become 102 bins of 5 rows (26,112 cells)."""
SAVE_FORMATS = (".png", ".svg", ".html", ".json")
SWEEP_MEASURES = {"wer": "word error rate", "similarity_to_start": "similarity to start",
                  "similarity_to_end": "similarity to end"}
"""The sweep chart's measures: column of a sweep's table -> legend label."""

_GENDERS = ("female", "male", "unknown")
_GENDER_COLORS = ("#d6604d", "#4393c3", "#999999")
_LANGUAGE_COLORS = ("#4c78a8", "#72b7b2", "#f58518", "#e45756", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
                    "#9d755d")
"""One colour per language, in ``LANGUAGES`` order, far apart on both themes (Japanese pink-purple, Mandarin
brown: tableau10 by order of appearance had given them near shades)."""
_COLOR_SCALES = {
    "group": {"scheme": "category20"},  # light/dark pairs: the two genders of a language share a hue
}
_SHAPES = ["circle", "triangle-up", "diamond"]
HALF_COLORS = {"decoder": "#4c78a8", "prosody": "#f58518", "both": "#54a24b", "all dims": "#54a24b"}
"""The colour of each half of the style (and of all its dims) in every chart that tells them apart."""
_DIVERGING = "redblue"
_HIGHLIGHT = "#ff2d95"  # markers readable on the app's dark theme and on the white PNGs alike
_MAP_SIZE = {"width": 420, "height": 360}

AnyChart = alt.TopLevelMixin
"""Any top-level altair chart (single, layered, faceted or concatenated)."""


@dataclass(frozen=True)
class Marker:
    """An extra point on a PCA map drawn with its own symbol and label, e.g. the Lab's current voice.

    ``vector`` is a 256-dim summary vector made the same way as the analysis' vectors (the mean over rows, or the
    same row), or a vector already cut to the map's layer.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> result = explorer.analyze(voices, tsne_layers=())
        >>> recipe = explorer.Recipe.single("af_heart").with_edit(explorer.PCAStep("decoder", 0, 2.0))
        >>> pack = explorer.apply_recipe(recipe, voices)
        >>> mine = explorer.Marker("heart +2 PC1", explorer.summary_vectors(pack[None])[0])
        >>> chart = explorer.charts.pca_scatter_chart(result, voices, layer="decoder", markers=[mine])
        >>> len(chart.layer) > 1
        True
    """

    label: str
    vector: np.ndarray


def _title(text: str, analysis: VoiceAnalysis | None = None) -> alt.TitleParams:
    if analysis is None:
        return alt.TitleParams(text)
    return alt.TitleParams(text, subtitle=f"Summary vector: {analysis.summary}")


def _layer_words(layer: str) -> str:
    """Return e.g. "the decoder layer (dims 0-127, to the decoder (timbre))" for titles."""
    return "both layers (all 256 dims)" if layer == "both" else f"the {layer} layer ({LAYER_MEANING[layer]})"


def _check_color_by(color_by: str) -> None:
    if color_by not in COLOR_FIELDS and color_by not in ATTRIBUTES:
        raise AnalysisError(f"Cannot colour by '{str(color_by)[:40]}': use {', '.join((*COLOR_FIELDS, *ATTRIBUTES))}.")


def _with_attribute(frame: pd.DataFrame, color_by: str) -> pd.DataFrame:
    """Add the measured attribute ``color_by`` (from the shipped axes' table) as a column, when colouring by one;
    a voice the table does not list (an uploaded one) gets no value and is drawn grey."""
    if color_by in ATTRIBUTES:
        try:
            table = load_axes().table
        except AxesError as error:
            raise AnalysisError(f"Cannot colour by {color_by}: {error}") from None
        frame[color_by] = [table.get(name, {}).get(color_by) for name in frame["name"]]
    return frame


def _voice_frame(names: Sequence[str], voices: VoiceSet | pd.DataFrame | None) -> pd.DataFrame:
    """Return name, language, gender, group (and source when known) for ``names``, in that order."""
    if voices is None:
        rows = []
        for name in names:
            meta = parse_voice_name(name)
            rows.append({"name": name, "language": meta.language, "gender": meta.gender, "group": meta.group})
        return pd.DataFrame(rows, columns=["name", "language", "gender", "group"])
    table = voices.table() if isinstance(voices, VoiceSet) else pd.DataFrame(voices)
    if "name" not in table.columns:
        raise AnalysisError("The voice table has no 'name' column.")
    known = set(table["name"])
    missing = [name for name in names if name not in known]
    if missing:
        raise AnalysisError(f"The voice table lacks {len(missing)} analysed voices, e.g. '{missing[0][:40]}'.")
    columns = [c for c in ("name", "language", "gender", "group", "source") if c in table.columns]
    frame = table.drop_duplicates("name").set_index("name").loc[list(names)].reset_index()[columns]
    for column in ("language", "gender", "group"):
        if column not in frame.columns:
            frame[column] = [getattr(parse_voice_name(name), column) for name in frame["name"]]
    return frame


def _present_scale(domain: Sequence[str], values: Sequence[object], present: Iterable[object]) -> alt.Scale:
    """Return a scale of ``domain`` -> ``values`` kept to the categories ``present`` (in the domain's order), so a
    legend lists no category that no voice has, and each keeps its own colour or shape in every chart."""
    found = set(present)
    kept = [(key, value) for key, value in zip(domain, values) if key in found]
    return alt.Scale(domain=[key for key, _ in kept], range=[value for _, value in kept])


def _category_scale(color_by: str, frame: pd.DataFrame) -> alt.Scale:
    """Return the colour scale of a voice map coloured by language, gender or group."""
    if color_by == "language":
        return _present_scale(list(LANGUAGES.values()), _LANGUAGE_COLORS, frame["language"])
    if color_by == "gender":
        return _present_scale(_GENDERS, _GENDER_COLORS, frame["gender"])
    return alt.Scale(**_COLOR_SCALES[color_by])


def _half_color(field: str, present: Iterable[str], title: str | None = "Half", legend: bool = True) -> alt.Color:
    """Return the colour encoding of ``field`` whose values are halves of the style (``HALF_COLORS``)."""
    scale = _present_scale(list(HALF_COLORS), list(HALF_COLORS.values()), present)
    return alt.Color(f"{field}:N", scale=scale, title=title, legend=alt.Legend() if legend else None)


def _voice_map(
    frame: pd.DataFrame,
    x_title: str,
    y_title: str,
    color_by: str,
    select: bool,
    markers: pd.DataFrame | None = None,
    title: alt.TitleParams | None = None,
) -> alt.LayerChart:
    """Return a scatter of ``frame`` (columns name, x, y and metadata) with the voice selections and markers.

    The returned chart's ``.data`` is ``frame``, which ``selected_voice_names`` reads.
    """
    tooltip = [
        alt.Tooltip("name:N", title="Voice"),
        alt.Tooltip("language:N"),
        alt.Tooltip("gender:N"),
        alt.Tooltip("group:N"),
        alt.Tooltip("x:Q", title=x_title, format=".3f"),
        alt.Tooltip("y:Q", title=y_title, format=".3f"),
    ]
    if color_by in ATTRIBUTES:
        attribute = ATTRIBUTES[color_by]
        legend = f"{attribute.label} ({attribute.value_unit})"
        color = alt.Color(f"{color_by}:Q", scale=alt.Scale(scheme="viridis"), title=legend)
        tooltip.append(alt.Tooltip(f"{color_by}:Q", title=legend, format=".3~f"))
    else:
        color = alt.Color(f"{color_by}:N", scale=_category_scale(color_by, frame), title=color_by.capitalize())
    x = alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False))
    y = alt.Y("y:Q", title=y_title, scale=alt.Scale(zero=False))
    points = (
        alt.Chart()
        .mark_point(filled=True, size=90, stroke="white", strokeWidth=0.5)
        .encode(
            x=x,
            y=y,
            color=color,
            shape=alt.Shape("gender:N", scale=_present_scale(_GENDERS, _SHAPES, frame["gender"]), title="Gender"),
            tooltip=tooltip,
        )
    )
    if select:
        pick = alt.selection_point(name=POINT_SELECTION, fields=["name"], on="click")
        brush = alt.selection_interval(name=INTERVAL_SELECTION, encodings=["x", "y"])
        points = points.add_params(pick, brush).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.3)))
    layers: list[alt.Chart] = [points]
    if markers is not None and len(markers):
        marker_data = alt.Chart(markers)
        layers.append(
            marker_data.mark_point(shape="cross", size=320, filled=True, color=_HIGHLIGHT, opacity=1).encode(
                x=x, y=y, tooltip=[alt.Tooltip("label:N", title="Marker")]
            )
        )
        layers.append(
            marker_data.mark_text(align="left", dx=10, dy=-10, fontWeight="bold", color=_HIGHLIGHT).encode(x=x, y=y, text="label:N")
        )
    chart = alt.layer(*layers, data=frame).properties(**_MAP_SIZE)
    return chart.properties(title=title) if title is not None else chart


def pca_scatter_chart(
    source: VoiceAnalysis | PCAResult,
    voices: VoiceSet | pd.DataFrame | None = None,
    *,
    layer: str = "both",
    x_component: int = 1,
    y_component: int = 2,
    color_by: str = "language",
    markers: Iterable[Marker] = (),
    select: bool = True,
) -> alt.LayerChart:
    """Return the voices on two principal components of one layer, with optional extra markers.

    Hovering shows each voice's name and metadata; clicking (shift-click to add) or dragging a box selects voices
    (see ``selected_voice_names``).

    Args:
        source: the analysis (its PCA of ``layer`` is used) or one ``PCAResult``.
        voices: the voice table (or set) in the analysis' order; ``None`` derives metadata from the names, which an
            analysis knows (a bare ``PCAResult`` needs this table).
        layer: "decoder", "prosody" or "both" (ignored for a ``PCAResult``, which knows its layer).
        x_component: 1-based component on the x axis (1 = PC1).
        y_component: 1-based component on the y axis.
        color_by: "language", "gender" or "group", or a measured attribute (``explorer.attributes.ATTRIBUTES``:
            "pitch", "pace"...) on a continuous scale.
        markers: extra points projected into the same PCA space, drawn as labelled crosses.
        select: add the ``voices``/``voices_brush`` selections (charts combined side by side need ``False``).

    Returns:
        A layered chart whose ``.data`` is the voice frame (name, metadata, x, y); with markers, ``.layer[1].data``
        holds their label, x and y.

    Example:
        >>> chart = pca_scatter_chart(analysis, layer="prosody", x_component=1, y_component=3)  # doctest: +SKIP
    """
    _check_color_by(color_by)
    analysis = source if isinstance(source, VoiceAnalysis) else None
    if analysis is not None:
        layer_slice(layer)
        result = analysis.pca[layer]
        names: Sequence[str] = analysis.names
    else:
        result = source
        if voices is None:
            raise AnalysisError("A PCA result alone has no voice names: pass the voice table as well.")
        names = list(voices.names if isinstance(voices, VoiceSet) else pd.DataFrame(voices)["name"])
    count = result.projections.shape[1]
    for component in (x_component, y_component):
        if not isinstance(component, (int, np.integer)) or not 1 <= component <= count:
            raise AnalysisError(f"Component {component} does not exist: the {result.layer} PCA has 1-{count}.")
    if len(names) != len(result.projections):
        raise AnalysisError(f"{len(names)} voices were given for a PCA of {len(result.projections)} voices.")
    frame = _with_attribute(_voice_frame(names, voices), color_by)
    frame["x"] = result.projections[:, x_component - 1]
    frame["y"] = result.projections[:, y_component - 1]
    ratio = result.explained_variance_ratio
    x_title = f"PC{x_component} ({ratio[x_component - 1]:.1%})"
    y_title = f"PC{y_component} ({ratio[y_component - 1]:.1%})"
    marker_rows = []
    layer_dims = result.mean.shape[0]
    for marker in markers:
        vector = np.asarray(marker.vector, dtype=np.float64)
        if vector.shape not in {(STYLE_DIM,), (layer_dims,)} or not np.isfinite(vector).all():
            raise AnalysisError(
                f"Marker '{marker.label[:40]}' needs a finite vector of {STYLE_DIM} or {layer_dims} values."
            )
        coords = result.project(vector)
        marker_rows.append({"label": marker.label, "x": coords[x_component - 1], "y": coords[y_component - 1]})
    title = _title(f"PCA of {_layer_words(result.layer)}", analysis)
    markers_frame = pd.DataFrame(marker_rows, columns=["label", "x", "y"])
    return _voice_map(frame, x_title, y_title, color_by, select, markers_frame, title)


def pca_layers_chart(
    analysis: VoiceAnalysis, voices: VoiceSet | pd.DataFrame | None = None, *, color_by: str = "group"
) -> alt.HConcatChart:
    """Return the PC1/PC2 maps of the decoder, prosody and both layers side by side (the report's ``pca_2d.png``).

    Returns:
        Three ``pca_scatter_chart`` panels without selections.
    """
    panels = [
        pca_scatter_chart(analysis, voices, layer=layer, color_by=color_by, select=False).properties(
            width=300, height=280, title=f"{layer} ({LAYER_MEANING[layer]})"
        )
        for layer in LAYERS
    ]
    return alt.hconcat(*panels).properties(title=_title("PCA of voice embeddings, PC1 vs PC2", analysis))


def tsne_chart(
    analysis: VoiceAnalysis,
    layer: str = "both",
    color_by: str = "group",
    voices: VoiceSet | pd.DataFrame | None = None,
    *,
    select: bool = True,
) -> alt.LayerChart:
    """Return the seeded 2-D t-SNE map of one layer, with the same selections as ``pca_scatter_chart``.

    Returns:
        A layered chart whose ``.data`` is the voice frame (name, metadata, x, y).

    Raises:
        AnalysisError: the analysis has no t-SNE of ``layer`` (``analyze(..., tsne_layers=...)`` skipped it).
    """
    _check_color_by(color_by)
    layer_slice(layer)
    if layer not in analysis.tsne:
        raise AnalysisError(
            f"The analysis has no t-SNE of the {layer} layer; run analyze with tsne_layers including it."
        )
    frame = _with_attribute(_voice_frame(analysis.names, voices), color_by)
    coords = np.asarray(analysis.tsne[layer])
    frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
    title = alt.TitleParams(
        f"t-SNE of {_layer_words(layer)}",
        subtitle=[f"Summary vector: {analysis.summary}", f"Perplexity {analysis.tsne_perplexity:g}, seed 0"],
    )
    return _voice_map(frame, "t-SNE 1", "t-SNE 2", color_by, select, None, title)


def pca_loadings_chart(
    source: VoiceAnalysis | PCAResult,
    layer: str = "both",
    components: Sequence[int] = (1, 2),
    *,
    top: int = LOADING_DIMS,
) -> alt.HConcatChart:
    """Return which dims drive each of ``components``: one panel per component, a bar per dim for its ``top`` dims by
    absolute loading (largest at the top), coloured by sign.

    Args:
        source: the analysis (its PCA of ``layer`` is used) or one ``PCAResult``.
        layer: "decoder", "prosody" or "both" (ignored for a ``PCAResult``, which knows its layer).
        components: 1-based components (1 = PC1), e.g. a map's x and y components.
        top: dims per component.

    Returns:
        Side-by-side panels; the chart's ``.data`` has one row per bar: ``component`` ("PC1"...), ``rank``, ``dim``
        (0-255), ``half``, ``loading``, ``sign``.

    Raises:
        AnalysisError: an unknown layer, a component that does not exist, or ``top`` below 1.

    Example:
        >>> import explorer
        >>> from explorer import charts
        >>> result = explorer.analyze(explorer.load_voices(), tsne_layers=())
        >>> chart = charts.pca_loadings_chart(result, "decoder", components=(1, 3), top=5)
        >>> chart.data.query("component == 'PC1'").dim.tolist()
        [127, 8, 80, 31, 113]
    """
    if isinstance(source, VoiceAnalysis):
        layer_slice(layer)
        result = source.pca[layer]
    else:
        result = source
    rows = [
        {
            "component": f"PC{component}",
            "rank": rank,
            "dim": dim,
            "half": "decoder" if dim < HALF else "prosody",
            "loading": weight,
            "sign": "positive" if weight >= 0 else "negative",
        }
        for component in components
        for rank, (dim, weight) in enumerate(result.top_loadings(component, top), start=1)
    ]
    frame = pd.DataFrame(rows, columns=["component", "rank", "dim", "half", "loading", "sign"])
    panels = []
    for component in components:
        ratio = float(result.explained_variance_ratio[component - 1])
        panels.append(
            alt.Chart()
            .transform_filter(alt.datum.component == f"PC{component}")
            .mark_bar()
            .encode(
                x=alt.X("loading:Q", title="Loading (weight of the dim)"),
                y=alt.Y("dim:N", sort=alt.EncodingSortField("rank"), title="Style dim",
                        axis=alt.Axis(labelOverlap=False)),  # every bar named, whatever the theme's font size
                color=alt.Color(
                    "sign:N", scale=alt.Scale(domain=["positive", "negative"], range=["#4393c3", "#d6604d"]),
                    title="Sign",
                ),
                tooltip=[
                    alt.Tooltip("dim:Q", title="Dim"),
                    alt.Tooltip("half:N", title="Half"),
                    alt.Tooltip("loading:Q", title="Loading", format="+.3f"),
                    alt.Tooltip("rank:Q", title="Rank"),
                ],
            )
            .properties(width=220, height=max(120, 24 * min(top, len(result.mean))),
                        title=f"PC{component} ({ratio:.1%})")
        )
    title = alt.TitleParams(
        f"Which dims drive each component of {_layer_words(result.layer)}",
        subtitle="Top dims by absolute loading; + means voices with more of the dim sit on the component's + side",
    )
    return alt.hconcat(*panels, data=frame).properties(title=title)


def _points_frame(points: pd.DataFrame | AnyChart) -> pd.DataFrame:
    if isinstance(points, pd.DataFrame):
        frame = points
    elif isinstance(getattr(points, "data", None), pd.DataFrame):
        frame = points.data
    else:
        raise AnalysisError("Pass the voice map chart (or its data frame) the selection came from.")
    if "name" not in frame.columns:
        raise AnalysisError("The voice map data has no 'name' column.")
    return frame


def selected_voice_names(
    selection_state: Mapping[str, Any] | None,
    points: pd.DataFrame | AnyChart,
    *,
    point_param: str = POINT_SELECTION,
    interval_param: str = INTERVAL_SELECTION,
) -> list[str]:
    """Return the voices a person clicked or boxed on a voice map, in the map's order.

    Streamlit's ``st.altair_chart(chart, on_select="rerun")`` returns ``{"selection": {param: value}}``: a point
    selection's value is a list of the selected data fields (``[{"name": "af_heart"}, ...]``), an interval selection's
    value maps each field to its ``[min, max]`` range (``{"x": [-1.2, 0.4], "y": [0.0, 2.5]}``), and an empty
    selection is ``{}``. Both selections together give the union.

    Args:
        selection_state: what ``st.altair_chart`` returned (or its ``"selection"`` dict); ``None`` selects nothing.
        points: the chart the selection came from (``pca_scatter_chart``/``tsne_chart``) or its data frame.
        point_param: name of the click selection.
        interval_param: name of the box selection.

    Returns:
        Names of selected voices, each once; names not on the map (e.g. a marker) are dropped.

    Example:
        >>> event = st.altair_chart(chart, on_select="rerun")  # doctest: +SKIP
        >>> selected_voice_names(event, chart)  # doctest: +SKIP
        ['af_heart', 'bf_emma']
    """
    frame = _points_frame(points)
    if not selection_state:
        return []
    state = selection_state.get("selection", selection_state)
    if not isinstance(state, Mapping):
        return []
    chosen = np.zeros(len(frame), dtype=bool)
    picked = state.get(point_param)
    if isinstance(picked, Mapping):  # Vega's raw form {"name": [...]} (Streamlit gives the list of records)
        values = picked.get("name", [])
        picked = [{"name": value} for value in (values if isinstance(values, list) else [values])]
    if isinstance(picked, list):
        names = {item.get("name") for item in picked if isinstance(item, Mapping)}
        chosen |= frame["name"].isin(names).to_numpy()
    box = state.get(interval_param)
    if isinstance(box, Mapping):
        ranges = {field: bounds for field, bounds in box.items() if field in frame.columns and bounds}
        if ranges:
            inside = np.ones(len(frame), dtype=bool)
            for field, bounds in ranges.items():
                column = frame[field]
                if pd.api.types.is_numeric_dtype(column) and len(bounds) == 2:
                    low, high = sorted(float(b) for b in bounds)
                    inside &= column.between(low, high).to_numpy()
                else:
                    inside &= column.isin(list(bounds)).to_numpy()
            chosen |= inside
    return list(dict.fromkeys(frame["name"][chosen]))


def _pca_results(source: VoiceAnalysis | PCAResult | Mapping[str, PCAResult]) -> dict[str, PCAResult]:
    if isinstance(source, VoiceAnalysis):
        return dict(source.pca)
    if isinstance(source, PCAResult):
        return {source.layer: source}
    return dict(source)


def pca_variance_chart(
    source: VoiceAnalysis | PCAResult | Mapping[str, PCAResult],
    layers: str | Sequence[str] | None = None,
    *,
    max_components: int | None = None,
) -> AnyChart:
    """Return the scree plot: each component's share of variance as bars, the cumulative share as a line.

    Args:
        source: an analysis (all three layers), one ``PCAResult``, or ``{layer: PCAResult}``.
        layers: one layer or several to show (default: all in ``source``), one panel each.
        max_components: show only the first components (default: all).

    Returns:
        One layered chart, or a chart faceted by layer when there are several.
    """
    if max_components is not None and (not isinstance(max_components, (int, np.integer)) or max_components < 1):
        raise AnalysisError(f"max_components must be a positive whole number; got {max_components}.")
    results = _pca_results(source)
    chosen = list(results) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    for layer in chosen:
        layer_slice(layer)
        if layer not in results:
            raise AnalysisError(f"No PCA of the {layer} layer was given.")
    rows = []
    for layer in chosen:
        result = results[layer]
        count = len(result.explained_variance_ratio) if max_components is None else max_components
        for index in range(min(count, len(result.explained_variance_ratio))):
            rows.append(
                {
                    "layer": layer,
                    "component": index + 1,
                    "explained": float(result.explained_variance_ratio[index]),
                    "cumulative": float(result.cumulative[index]),
                }
            )
    frame = pd.DataFrame(rows, columns=["layer", "component", "explained", "cumulative"])
    tooltip = [
        alt.Tooltip("layer:N"),
        alt.Tooltip("component:O", title="Component"),
        alt.Tooltip("explained:Q", title="Explained", format=".1%"),
        alt.Tooltip("cumulative:Q", title="Cumulative", format=".1%"),
    ]
    share = alt.Axis(format="%", title="Share of variance")
    most = int(frame.groupby("layer").size().max()) if len(frame) else 1
    scale = alt.Scale(domain=[0.5, most + 0.5], nice=False)
    base = alt.Chart().encode(x=alt.X("component:Q", title="Principal component", scale=scale))
    bars = base.mark_bar(color="#4c78a8", size=max(2, min(24, 240 // most))).encode(
        y=alt.Y("explained:Q", axis=share, scale=alt.Scale(domain=[0, 1])), tooltip=tooltip
    )
    line = base.mark_line(color="#e45756", point=alt.OverlayMarkDef(color="#e45756", size=18)).encode(
        y=alt.Y("cumulative:Q", axis=share), tooltip=tooltip
    )
    chart = alt.layer(bars, line, data=frame).properties(width=300, height=240)
    analysis = source if isinstance(source, VoiceAnalysis) else None
    title = _title("Explained variance per principal component (bars) and cumulative (line)", analysis)
    if len(chosen) == 1:
        return chart.properties(title=title)
    return chart.facet(column=alt.Column("layer:N", sort=chosen, title=None)).properties(title=title)


def _cells(matrix: np.ndarray, row_field: str, column_field: str, value: str, row_keys: Sequence[int],
           column_keys: Sequence[int], decimals: int, extra: Mapping[str, Sequence[object]] | None = None) -> list[dict]:
    """Return one flat record per matrix cell: ``{row_field, column_field, value}`` plus per-row ``extra`` fields."""
    rounded = np.round(np.asarray(matrix, dtype=np.float64), decimals).tolist()
    extra = extra or {}
    return [
        {row_field: row_key, column_field: column_key, value: cell, **{k: v[i] for k, v in extra.items()}}
        for i, (row_key, cells) in enumerate(zip(row_keys, rounded))
        for column_key, cell in zip(column_keys, cells)
    ]


def _heatmap(
    records: list[dict],
    x: alt.X,
    y: alt.Y,
    value: str,
    domain: float,
    tooltip: list[alt.Tooltip],
    size: tuple[int, int],
) -> alt.Chart:
    """Return a rect heatmap of one record per cell, passed as dict data (see the module docstring for why)."""
    color = alt.Color(
        f"{value}:Q",
        scale=alt.Scale(scheme=_DIVERGING, reverse=True, domain=[-domain, domain], domainMid=0),
        title=value,
    )
    return (
        alt.Chart({"values": records})
        .mark_rect()
        .encode(x=x, y=y, color=color, tooltip=tooltip)
        .properties(width=size[0], height=size[1])
    )


def _ticks(start: int, stop: int, step: int) -> list[int]:
    return list(range(start, stop, step))


def interlayer_correlation_heatmap(source: VoiceAnalysis | InterlayerCorrelation) -> alt.Chart:
    """Return the 128x128 Pearson correlation between decoder dims (rows) and prosody dims (columns) across voices.

    Returns:
        A heatmap of all 16,384 pairs (red positive, blue negative), hover for the pair and its r.
    """
    correlation = source.correlation if isinstance(source, VoiceAnalysis) else source
    matrix = np.asarray(correlation.matrix, dtype=np.float64)
    if matrix.shape != (HALF, HALF):
        raise AnalysisError(f"An inter-layer correlation matrix is {HALF}x{HALF}; got {list(matrix.shape)}.")
    records = _cells(matrix, "decoder_dim", "prosody_dim", "r", range(HALF), range(HALF, STYLE_DIM), 3)
    chart = _heatmap(
        records,
        alt.X("prosody_dim:O", title="Prosody dim", axis=alt.Axis(values=_ticks(HALF, STYLE_DIM, 16), labelAngle=0)),
        alt.Y("decoder_dim:O", title="Decoder dim", axis=alt.Axis(values=_ticks(0, HALF, 16))),
        "r",
        1.0,
        [alt.Tooltip("decoder_dim:O", title="Decoder dim"), alt.Tooltip("prosody_dim:O", title="Prosody dim"),
         alt.Tooltip("r:Q", format=".3f")],
        (384, 384),
    )
    subtitle = (
        f"mean |r| {correlation.mean_abs:.3f}, max |r| {correlation.max_abs:.3f}, "
        f"{correlation.n_above_0_7} pairs with |r| > 0.7"
    )
    analysis = source if isinstance(source, VoiceAnalysis) else None
    subtitles = [subtitle] + ([f"Summary vector: {analysis.summary}"] if analysis else [])
    return chart.properties(title=alt.TitleParams("Decoder vs prosody correlation across voices", subtitle=subtitles))


def embedding_distributions_chart(source: VoiceAnalysis | Mapping[str, ValueDistribution]) -> AnyChart:
    """Return the histogram of embedding values of each layer (decoder and prosody halves), side by side.

    Returns:
        A chart faceted by layer; hover a bar for its range and count.
    """
    distributions = source.distributions if isinstance(source, VoiceAnalysis) else dict(source)
    rows = []
    for layer, dist in distributions.items():
        label = f"{layer} (mean {dist.mean:.3f}, std {dist.std:.3f})"
        for count, start, end in zip(dist.counts, dist.edges[:-1], dist.edges[1:]):
            rows.append({"layer": label, "half": layer, "start": float(start), "end": float(end),
                         "count": int(count)})
    frame = pd.DataFrame(rows, columns=["layer", "half", "start", "end", "count"])
    chart = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("start:Q", title="Value"),
            x2="end:Q",
            y=alt.Y("count:Q", title="Count"),
            y2=alt.datum(0),
            color=_half_color("half", frame["half"].unique(), legend=False),
            tooltip=[alt.Tooltip("start:Q", format=".3f"), alt.Tooltip("end:Q", format=".3f"), "count:Q"],
        )
        .properties(width=320, height=220)
    )
    analysis = source if isinstance(source, VoiceAnalysis) else None
    return chart.facet(column=alt.Column("layer:N", title=None)).properties(
        title=_title("Distribution of embedding values per layer", analysis)
    )


def dimension_variance_chart(source: VoiceAnalysis | DimensionVariance) -> alt.LayerChart:
    """Return each dim's variance across voices as bars coloured by half, the top dims marked with their rank and the
    low-variance threshold as a dashed line.

    Returns:
        A layered chart: 256 bars (``.data`` has ``dim, half, variance, rank, low``), a triangle above each top dim,
        and the threshold rule.
    """
    variance = source.variance if isinstance(source, VoiceAnalysis) else source
    ranks = {dim: rank for rank, (dim, _, _) in enumerate(variance.top, start=1)}
    low = set(variance.low_variance)
    frame = pd.DataFrame(
        {
            "dim": np.arange(STYLE_DIM),
            "half": ["decoder" if d < HALF else "prosody" for d in range(STYLE_DIM)],
            "variance": np.asarray(variance.variance, dtype=np.float64),
            "rank": [ranks.get(d) for d in range(STYLE_DIM)],
            "low": [d in low for d in range(STYLE_DIM)],
        }
    )
    tooltip = [alt.Tooltip("dim:Q", title="Dim"), "half:N", alt.Tooltip("variance:Q", format=".5f"), "rank:Q",
               alt.Tooltip("low:N", title="Low variance")]
    x = alt.X(
        "dim:Q", title="Dimension", scale=alt.Scale(domain=[0, STYLE_DIM]), axis=alt.Axis(values=_ticks(0, 257, 32))
    )
    bars = alt.Chart().mark_bar(size=2).encode(
        x=x,
        y=alt.Y("variance:Q", title="Variance across voices"),
        color=_half_color("half", ("decoder", "prosody")),
        tooltip=tooltip,
    )
    top = (
        alt.Chart()
        .transform_filter("isValid(datum.rank)")
        .mark_point(shape="triangle-down", filled=True, color=_HIGHLIGHT, size=40, yOffset=-6)
        .encode(x=x, y="variance:Q", tooltip=tooltip)
    )
    threshold = (
        alt.Chart(pd.DataFrame({"threshold": [variance.low_variance_threshold]}))
        .mark_rule(strokeDash=[4, 3], color="#888888")
        .encode(y="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="Low-variance threshold", format=".5f")])
    )
    analysis = source if isinstance(source, VoiceAnalysis) else None
    subtitles = [
        (f"Top {len(variance.top)} dims marked; top 10 hold {variance.top10_share:.1%} and top 20 hold "
         f"{variance.top20_share:.1%} of the total variance"),
        (f"Dashed line: {LOW_VARIANCE_FRACTION:g} of the mean per-dim variance; {len(variance.low_variance)} dims "
         "lie below it (low variance)"),
    ] + ([f"Summary vector: {analysis.summary}"] if analysis else [])
    return alt.layer(bars, top, threshold, data=frame).properties(
        width=640, height=260, title=alt.TitleParams("Variance of each dimension across voices", subtitle=subtitles)
    )


def _centroids(source: VoiceAnalysis | CentroidAnalysis) -> CentroidAnalysis:
    return source.centroids if isinstance(source, VoiceAnalysis) else source


def centroid_distance_chart(source: VoiceAnalysis | CentroidAnalysis, kind: str = "group") -> alt.Chart:
    """Return each centroid's distance from the overall centroid, on all dims and on each half.

    Args:
        source: an analysis or its centroids.
        kind: "group", "language" or "gender".

    Returns:
        Grouped bars per centroid; hover for members and within-group variance.
    """
    analysis = _centroids(source)
    if kind not in analysis.by_kind:
        raise AnalysisError(f"Unknown centroid kind '{str(kind)[:40]}': use {', '.join(analysis.by_kind)}.")
    rows = []
    for key, centroid in analysis.by_kind[kind].items():
        for measure, distance in (
            ("all dims", centroid.distance_from_overall),
            ("decoder", centroid.decoder_distance),
            ("prosody", centroid.prosody_distance),
        ):
            rows.append(
                {
                    kind: key,
                    "measure": measure,
                    "distance": distance,
                    "voices": len(centroid.members),
                    "within_variance": centroid.within_variance,
                }
            )
    frame = pd.DataFrame(rows, columns=[kind, "measure", "distance", "voices", "within_variance"])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{kind}:N", title=kind.capitalize(), axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("measure:N", sort=["all dims", "decoder", "prosody"]),
            y=alt.Y("distance:Q", title="Distance from overall centroid"),
            color=_half_color("measure", ("all dims", "decoder", "prosody"), title="Dims"),
            tooltip=[
                f"{kind}:N",
                "measure:N",
                alt.Tooltip("distance:Q", format=".4f"),
                "voices:Q",
                alt.Tooltip("within_variance:Q", title="Within-group variance", format=".5f"),
            ],
        )
        .properties(
            width=max(240, 36 * len(analysis.by_kind[kind])), height=260, title=f"{kind.capitalize()} centroids"
        )
    )


def group_distance_heatmap(source: VoiceAnalysis | CentroidAnalysis) -> alt.LayerChart:
    """Return the Euclidean distance between every pair of group centroids, values written in the cells.

    Returns:
        A square heatmap over the groups (name prefixes).
    """
    analysis = _centroids(source)
    keys = analysis.group_keys
    matrix = np.asarray(analysis.between_group_distance, dtype=np.float64)
    frame = pd.DataFrame(
        [{"a": a, "b": b, "distance": float(matrix[i, j])} for i, a in enumerate(keys) for j, b in enumerate(keys)]
    )
    # Keys are sorted already, the default order of a nominal axis. (An explicit sort list would break on a key
    # such as "if", Italian female: Vega-Lite turns the list into an expression where "if" is a keyword.)
    base = alt.Chart().encode(x=alt.X("b:N", title=None, axis=alt.Axis(labelAngle=0)), y=alt.Y("a:N", title=None))
    rects = base.mark_rect().encode(
        color=alt.Color("distance:Q", scale=alt.Scale(scheme="viridis"), title="Distance"),
        tooltip=["a:N", "b:N", alt.Tooltip("distance:Q", format=".4f")],
    )
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("distance:Q", format=".2f"),
        color=alt.condition(alt.datum.distance > float(matrix.max()) / 2, alt.value("black"), alt.value("white")),
    )
    side = max(200, 30 * len(keys))
    return alt.layer(rects, text, data=frame).properties(
        width=side, height=side, title="Distance between group centroids"
    )


def _pack_heatmap(matrix: np.ndarray, row_step: int, title: alt.TitleParams, value: str,
                  scale: float | None = None) -> alt.Chart:
    if not isinstance(row_step, (int, np.integer)) or not 1 <= row_step <= PACK_ROWS:
        raise AnalysisError(f"row_step must be 1-{PACK_ROWS}; got {row_step}.")
    starts = list(range(0, PACK_ROWS, row_step))
    ends = [min(start + row_step, PACK_ROWS) - 1 for start in starts]
    binned = np.stack([matrix[start : end + 1].mean(axis=0) for start, end in zip(starts, ends)])
    labels = [f"{start}" if start == end else f"{start}-{end}" for start, end in zip(starts, ends)]
    records = _cells(binned, "row", "dim", value, starts, range(STYLE_DIM), 4, {"rows": labels})
    domain = max(float(scale if scale is not None else np.abs(matrix).max()), 1e-9)
    bins = len(starts)
    row_title = "Row (phoneme count - 1)" if row_step == 1 else f"Row (phoneme count - 1), mean of {row_step} rows"
    chart = _heatmap(
        records,
        alt.X("dim:O", title="Dimension (0-127 decoder, 128-255 prosody)",
              axis=alt.Axis(values=_ticks(0, STYLE_DIM, 32), labelAngle=0)),
        alt.Y("row:O", title=row_title, axis=alt.Axis(values=_ticks(0, PACK_ROWS, 50))),
        value,
        domain,
        [
            alt.Tooltip("rows:N", title="Rows"),
            alt.Tooltip("dim:O", title="Dim"),
            alt.Tooltip(f"{value}:Q", format=".4f"),
        ],
        (512, max(150, min(3 * bins, 510))),
    )
    return chart.properties(title=title)


def pack_heatmap(pack: np.ndarray, *, row_step: int = PACK_ROW_STEP, title: str = "Voicepack",
                 scale: float | None = None) -> alt.Chart:
    """Return a 510x256 voicepack as a heatmap: rows (phoneme count - 1) down, dims across.

    Args:
        pack: ``[510, 256]`` or ``[510, 1, 256]``.
        row_step: rows averaged into one heatmap row (1 shows every row: 130,560 cells, slow to draw).
        title: chart title, e.g. the voice's name.
        scale: the value the colour scale ends at, either side of 0; give every voice the same one (e.g. the
            largest magnitude over the stock voices) and voices compare by eye. None: this pack's own largest.

    Returns:
        A heatmap of ``ceil(510 / row_step) * 256`` cells.
    """
    matrix = as_pack(pack, title).astype(np.float64)
    return _pack_heatmap(matrix, row_step, alt.TitleParams(title), "value", scale)


def pack_difference_heatmap(
    pack_a: np.ndarray,
    pack_b: np.ndarray,
    *,
    labels: tuple[str, str] = ("A", "B"),
    row_step: int = PACK_ROW_STEP,
) -> alt.Chart:
    """Return ``pack_b - pack_a`` per row and dim as a heatmap centred on zero (the A/B page's difference view).

    Returns:
        A heatmap like ``pack_heatmap``'s; the subtitle gives the largest difference and the norm per half.
    """
    a, b = as_pack(pack_a, labels[0]).astype(np.float64), as_pack(pack_b, labels[1]).astype(np.float64)
    difference = b - a
    decoder = float(np.linalg.norm(difference[:, LAYERS["decoder"]].mean(axis=0)))
    prosody = float(np.linalg.norm(difference[:, LAYERS["prosody"]].mean(axis=0)))
    title = alt.TitleParams(
        f"{labels[1]} minus {labels[0]}",
        subtitle=f"max |difference| {np.abs(difference).max():.4f}; norm of the mean difference: "
        f"decoder {decoder:.4f}, prosody {prosody:.4f}",
    )
    return _pack_heatmap(difference, row_step, title, "difference")


def row_trajectory_chart(trajectory: RowTrajectory, *, title: str = "Row trajectory") -> alt.VConcatChart:
    """Return how a voicepack changes with phoneme count: each half's norm, and each row's cosine to row 0.

    Returns:
        Two line charts stacked, both against the row index (phoneme count - 1).
    """
    rows = np.arange(len(trajectory.decoder_norm))

    def long(series: dict[str, np.ndarray], value: str) -> pd.DataFrame:
        return pd.concat(
            [
                pd.DataFrame({"row": rows, "series": name, value: np.asarray(data, dtype=np.float64)})
                for name, data in series.items()
            ],
            ignore_index=True,
        )

    norms = long({"decoder": trajectory.decoder_norm, "prosody": trajectory.prosody_norm}, "norm")
    cosines = long(
        {
            "all dims": trajectory.cosine_to_row0,
            "decoder": trajectory.decoder_cosine_to_row0,
            "prosody": trajectory.prosody_cosine_to_row0,
        },
        "cosine",
    )
    x = alt.X("row:Q", title="Row (phoneme count - 1)", scale=alt.Scale(domain=[0, PACK_ROWS - 1]))

    def lines(frame: pd.DataFrame, value: str, y_title: str) -> alt.Chart:
        return (
            alt.Chart(frame)
            .mark_line()
            .encode(
                x=x,
                y=alt.Y(f"{value}:Q", title=y_title, scale=alt.Scale(zero=False)),
                color=_half_color("series", ("all dims", "decoder", "prosody"), title=None),  # both panels alike
                tooltip=["row:Q", "series:N", alt.Tooltip(f"{value}:Q", format=".4f")],
            )
            .properties(width=520, height=180)
        )

    return alt.vconcat(
        lines(norms, "norm", "Norm of each half"), lines(cosines, "cosine", "Cosine to row 0")
    ).resolve_scale(color="independent").properties(title=title)


def parameter_share_chart(rows: Iterable[tuple[str, int, float]]) -> alt.LayerChart:
    """Return each module's share of the model's parameters as horizontal bars labelled with the count.

    Args:
        rows: ``(module, parameter count, share of the total 0-1)``, e.g. from the architecture summary.

    Returns:
        Bars sorted by size, each labelled "12.3 % (10.1 M)".
    """
    frame = pd.DataFrame(list(rows), columns=["module", "params", "share"])
    if frame.empty:
        raise AnalysisError("No modules were given to chart.")
    frame["label"] = [f"{share:.1%} ({params / 1e6:.1f} M)" for params, share in zip(frame.params, frame.share)]
    base = alt.Chart().encode(
        y=alt.Y("module:N", sort="-x", title=None),
        x=alt.X(
            "share:Q",
            axis=alt.Axis(format="%"),
            title="Share of parameters",
            scale=alt.Scale(domain=[0, min(1.0, float(frame.share.max()) * 1.3)], nice=False),
        ),
    )
    bars = base.mark_bar(color="#4c78a8").encode(
        tooltip=["module:N", alt.Tooltip("params:Q", format=","), alt.Tooltip("share:Q", format=".2%")]
    )
    text = base.mark_text(align="left", dx=4).encode(text="label:N")
    return alt.layer(bars, text, data=frame).properties(
        width=420, height=max(120, 28 * len(frame)), title="Parameters per module"
    )


def chart_bytes(chart: AnyChart, fmt: str, *, scale: float = 2.0) -> bytes:
    """Return ``chart`` rendered as ``png``, ``svg``, ``html`` (self-contained, works offline) or ``json``
    (the Vega-Lite spec), offline through vl-convert.

    PNG and SVG get a white background so they read on any viewer.
    """
    fmt = fmt.lower().lstrip(".")
    if f".{fmt}" not in SAVE_FORMATS:
        raise AnalysisError(f"Cannot save a chart as '{fmt[:20]}': use {', '.join(SAVE_FORMATS)}.")
    if fmt in {"png", "svg"} and getattr(chart, "background", alt.Undefined) is alt.Undefined:
        chart = chart.properties(background="white")
    if fmt == "png":
        buffer = io.BytesIO()
        chart.save(buffer, format="png", scale_factor=scale)
        return buffer.getvalue()
    text = io.StringIO()
    chart.save(text, format=fmt, inline=fmt == "html")
    return text.getvalue().encode("utf-8")


def save_chart(chart: AnyChart, path: Path | str, *, scale: float = 2.0) -> Path:
    """Write ``chart`` to ``path`` in the format its suffix names (.png, .svg, .html or .json), atomically.

    Args:
        chart: any altair chart.
        path: the file to write; its folder must exist.
        scale: pixel density of PNGs (2 = sharp on high-DPI screens).

    Returns:
        The path written.

    Example:
        >>> import explorer
        >>> result = explorer.analyze(explorer.load_voices(), tsne_layers=())
        >>> explorer.save_chart(explorer.charts.pca_variance_chart(result), "scree.png").read_bytes()[1:4]
        b'PNG'
    """
    path = Path(path)
    return atomic_write_bytes(path, chart_bytes(chart, path.suffix, scale=scale))


def sweep_chart(table: pd.DataFrame, axis: str) -> alt.Chart:
    """Return word error rate and similarity to the start and end voices against the amount (lines with points).

    Args:
        table: a sweep's table (``explorer.sweep.SweepResult.table``): amount, transcript and the measures.
        axis: what was swept, in words (the x axis title).

    Measures that could not run (None) are left out, so the chart is empty when no meter could run
    (``SweepResult.measured`` says so beforehand).
    """
    long = table.melt(id_vars=["amount", "transcript"], value_vars=list(SWEEP_MEASURES),
                      var_name="measure", value_name="value").dropna(subset=["value"])
    long["measure"] = long["measure"].map(SWEEP_MEASURES)
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("amount:Q", title=axis),
            y=alt.Y("value:Q", title="Word error rate / similarity"),
            color=alt.Color("measure:N", title="Measure", scale=alt.Scale(domain=list(SWEEP_MEASURES.values()))),
            tooltip=["amount:Q", "measure:N", alt.Tooltip("value:Q", format=".3f"), "transcript:N"],
        )
        .properties(height=280, title="Where the edit stops being speech")
    )


def match_curve_chart(curve: Sequence[tuple[int, float]], stock: float | None = None) -> alt.LayerChart:
    """Return the voice matcher's best similarity so far against evaluations (a step line), with the best stock
    voice's similarity as a dashed rule where it is known.

    Args:
        curve: ``(evaluations, best similarity)`` after each batch (``MatchProgress.curve``).
        stock: the best stock voice's similarity: the start a person would pick by ear.
    """
    frame = pd.DataFrame(list(curve), columns=["evaluations", "similarity"])
    line = alt.Chart(frame).mark_line(interpolate="step-after", point=True).encode(
        x=alt.X("evaluations:Q", title="Evaluations"),
        y=alt.Y("similarity:Q", title="Best similarity so far", scale=alt.Scale(zero=False)),
        tooltip=["evaluations:Q", alt.Tooltip("similarity:Q", format=".3f")],
    )
    layers = [line]
    if stock is not None:
        rule = pd.DataFrame({"similarity": [stock], "label": ["best stock voice"]})
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[4, 4], color=_HIGHLIGHT).encode(
            y="similarity:Q", tooltip=["label:N", alt.Tooltip("similarity:Q", format=".3f")]))
    return alt.layer(*layers).properties(height=260, title="The search: speaker similarity to the recording")
