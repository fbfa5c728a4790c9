"""Charts: every builder gives a valid Vega-Lite chart holding the analysis' figures; map selections become voice
names; charts save as real PNG, SVG, HTML and JSON files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explorer import charts
from explorer.analysis import analyze, row_trajectory
from explorer.charts import Marker, selected_voice_names
from explorer.errors import AnalysisError, VoiceError
from explorer.voices import Voice, VoiceSet

NAMES = ("af_a", "af_b", "am_c", "am_d", "bf_e", "bm_f", "ef_g", "zm_h")


def small_voices() -> VoiceSet:
    """Eight voices over five groups and four languages, random but seeded."""
    rng = np.random.default_rng(1)
    voices = []
    for name in NAMES:
        base = rng.normal(0, 0.2, 256)
        voices.append(Voice.from_array(name, (base + rng.normal(0, 0.02, (510, 256))).astype(np.float32), "test"))
    return VoiceSet(voices)


@pytest.fixture(scope="module")
def voices() -> VoiceSet:
    return small_voices()


@pytest.fixture(scope="module")
def analysis(voices):
    return analyze(voices, tsne_layers=("both",))


def spec(chart) -> dict:
    """Return the chart's Vega-Lite dict; altair validates it against the schema on the way."""
    result = chart.to_dict()
    assert result["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    return result


def inline_records(chart) -> list[dict]:
    """Return the compact records of a heatmap (one per matrix row)."""
    assert isinstance(chart.data, dict)
    return chart.data["values"]


def test_scree_has_one_bar_per_component_for_each_layer(analysis):
    chart = charts.pca_variance_chart(analysis)
    spec(chart)
    frame = chart.data
    assert frame.groupby("layer").size().to_dict() == {"both": 8, "decoder": 8, "prosody": 8}
    both = frame[frame.layer == "both"]
    np.testing.assert_allclose(both.explained, analysis.pca["both"].explained_variance_ratio)
    np.testing.assert_allclose(both.cumulative, analysis.pca["both"].cumulative)
    single = charts.pca_variance_chart(analysis.pca["prosody"], max_components=3)
    spec(single)
    assert list(single.data.component) == [1, 2, 3] and set(single.data.layer) == {"prosody"}
    with pytest.raises(AnalysisError, match="Unknown layer"):
        charts.pca_variance_chart(analysis, "timbre")


def test_pca_map_shows_every_voice_with_metadata_and_selections(analysis, voices):
    chart = charts.pca_scatter_chart(analysis, voices, layer="decoder", x_component=2, y_component=3, color_by="gender")
    result = spec(chart)
    frame = chart.data
    assert list(frame.name) == list(NAMES)
    assert list(frame.gender[:3]) == ["female", "female", "male"] and frame.language[6] == "Spanish"
    np.testing.assert_allclose(frame.x, analysis.pca["decoder"].projections[:, 1])
    np.testing.assert_allclose(frame.y, analysis.pca["decoder"].projections[:, 2])
    params = {param["name"]: param["select"] for param in result["params"]}
    assert params[charts.POINT_SELECTION]["type"] == "point" and params[charts.POINT_SELECTION]["fields"] == ["name"]
    assert params[charts.INTERVAL_SELECTION]["type"] == "interval"
    assert "name" in json.dumps(result["layer"][0]["encoding"]["tooltip"])


def test_pca_map_draws_markers_where_the_pca_projects_them(analysis):
    lab = analysis.vectors[0] + 0.5
    chart = charts.pca_scatter_chart(analysis, markers=[Marker("Lab voice", lab)])
    spec(chart)
    marker_frames = [layer.data for layer in chart.layer[1:]]
    assert len(marker_frames) == 2  # the cross and its label
    expected = analysis.pca["both"].project(lab)
    row = marker_frames[0].iloc[0]
    assert row.label == "Lab voice"
    assert (row.x, row.y) == pytest.approx((expected[0], expected[1]))
    assert "Lab voice" not in set(chart.data.name)
    with pytest.raises(AnalysisError, match="Marker 'bad'"):
        charts.pca_scatter_chart(analysis, markers=[Marker("bad", np.full(256, np.nan))])


def test_pca_map_refuses_bad_requests(analysis, voices):
    with pytest.raises(AnalysisError, match="Component 9 does not exist"):
        charts.pca_scatter_chart(analysis, x_component=9)
    with pytest.raises(AnalysisError, match="Cannot colour by"):
        charts.pca_scatter_chart(analysis, color_by="age")
    with pytest.raises(AnalysisError, match="pass the voice table"):
        charts.pca_scatter_chart(analysis.pca["both"])
    with pytest.raises(AnalysisError, match="lacks 1 analysed voices"):
        charts.pca_scatter_chart(analysis, voices.table().iloc[1:])
    bare = charts.pca_scatter_chart(analysis.pca["prosody"], voices)
    spec(bare)
    assert list(bare.data.name) == list(NAMES)


def test_side_by_side_maps_carry_no_selections(analysis):
    chart = charts.pca_layers_chart(analysis)
    result = spec(chart)
    assert len(chart.hconcat) == 3
    assert "params" not in result and "params" not in json.dumps(result["hconcat"])


def test_tsne_map_uses_the_analysis_coordinates(analysis):
    chart = charts.tsne_chart(analysis, "both", color_by="language")
    assert "Perplexity 2, seed 0" in spec(chart)["title"]["subtitle"]  # the default for 8 voices
    np.testing.assert_allclose(chart.data[["x", "y"]].to_numpy(), analysis.tsne["both"])
    with pytest.raises(AnalysisError, match="no t-SNE of the decoder layer"):
        charts.tsne_chart(analysis, "decoder")


def test_loadings_chart_shows_the_top_dims_of_each_chosen_component():
    """On planted voices the planted axis is decoder PC1's first bar; one panel per component, bars by |loading|."""
    from planted import AXIS_DIM, PAIR, planted_voices

    result = analyze(planted_voices({"af": 1, "bm": -1}, per_group=5), tsne_layers=())
    chart = charts.pca_loadings_chart(result, "decoder", (1, 3), top=6)
    spec(chart)
    assert len(chart.hconcat) == 2
    first, third = (chart.data[chart.data.component == pc].reset_index(drop=True) for pc in ("PC1", "PC3"))
    assert first.dim.iloc[0] == AXIS_DIM and first.sign.iloc[0] == "positive" and list(first["rank"]) == [1, 2, 3, 4,
                                                                                                        5, 6]
    assert len(third) == 6
    np.testing.assert_allclose(third.loading, [w for _, w in result.pca["decoder"].top_loadings(3, 6)])
    assert (np.diff(third.loading.abs()) <= 0).all()
    assert set(third.sign) <= {"positive", "negative"} and (third.sign == np.where(third.loading >= 0, "positive",
                                                                                   "negative")).all()
    prosody = charts.pca_loadings_chart(result.pca["prosody"], components=(1,))
    assert prosody.data.dim.iloc[0] == PAIR[1] and set(prosody.data.half) == {"prosody"}
    with pytest.raises(AnalysisError, match="Component 11 does not exist"):
        charts.pca_loadings_chart(result, "decoder", (1, 11))
    with pytest.raises(AnalysisError, match="Unknown layer"):
        charts.pca_loadings_chart(result, "timbre")


def all_scalar(records: list[dict]) -> bool:
    """Streamlit turns chart data into Arrow tables, where list-valued cells arrive empty in the browser."""
    return not any(isinstance(value, (list, tuple, dict)) for record in records for value in record.values())


def test_correlation_heatmap_holds_all_128_by_128_pairs(analysis):
    chart = charts.interlayer_correlation_heatmap(analysis)
    spec(chart)
    records = inline_records(chart)
    assert len(records) == 128 * 128 and all_scalar(records)
    cell = records[5 * 128 + 3]
    assert (cell["decoder_dim"], cell["prosody_dim"]) == (5, 131)
    assert cell["r"] == pytest.approx(analysis.correlation.matrix[5, 3], abs=5e-4)


def test_distributions_dimension_variance_and_centroid_charts(analysis):
    distributions = charts.embedding_distributions_chart(analysis)
    spec(distributions)
    assert len(distributions.data) == 2 * len(analysis.distributions["decoder"].counts)
    assert distributions.data["count"].sum() == 2 * 8 * 128

    variance = charts.dimension_variance_chart(analysis)
    spec(variance)
    frame = variance.data
    assert len(frame) == 256 and set(frame.half[:128]) == {"decoder"} and set(frame.half[128:]) == {"prosody"}
    top_dim = analysis.variance.top[0][0]
    assert frame["rank"][top_dim] == 1 and frame["rank"].notna().sum() == len(analysis.variance.top)
    assert list(frame.index[frame.low]) == analysis.variance.low_variance
    rule = variance.layer[2].data
    assert rule["threshold"].iloc[0] == pytest.approx(analysis.variance.low_variance_threshold)

    distances = charts.centroid_distance_chart(analysis, "group")
    spec(distances)
    assert len(distances.data) == 3 * 6
    af = distances.data[(distances.data.group == "af") & (distances.data.measure == "all dims")].iloc[0]
    assert af.distance == pytest.approx(analysis.centroids.get("group", "af").distance_from_overall)
    with pytest.raises(AnalysisError, match="Unknown centroid kind"):
        charts.centroid_distance_chart(analysis, "accent")

    between = charts.group_distance_heatmap(analysis)
    spec(between)
    assert len(between.data) == 6 * 6


def test_pack_heatmap_bins_rows_to_stay_small(voices):
    pack = voices["af_a"].pack
    chart = charts.pack_heatmap(pack, title="af_a")
    spec(chart)  # would raise MaxRowsError if the 26,112 cells were passed as a DataFrame
    records = inline_records(chart)
    assert len(records) == 102 * 256 and all_scalar(records)
    second_bin = [r for r in records if r["row"] == 5]
    assert {r["rows"] for r in second_bin} == {"5-9"}
    np.testing.assert_allclose([r["value"] for r in second_bin], pack[5:10].mean(axis=0), atol=1e-4)
    every_row = inline_records(charts.pack_heatmap(pack, row_step=1))
    assert len(every_row) == 510 * 256 and every_row[7 * 256]["rows"] == "7"
    with pytest.raises(AnalysisError, match="row_step"):
        charts.pack_heatmap(pack, row_step=0)
    with pytest.raises(VoiceError, match="shape"):
        charts.pack_heatmap(np.zeros((10, 256)))


def test_pack_difference_is_b_minus_a(voices):
    a, b = voices["af_a"].pack, voices["bm_f"].pack
    chart = charts.pack_difference_heatmap(a, b, labels=("af_a", "bm_f"))
    spec(chart)
    records = inline_records(chart)
    np.testing.assert_allclose([r["difference"] for r in records[:256]], (b[:5] - a[:5]).mean(axis=0), atol=1e-4)
    assert chart.title.text == "bm_f minus af_a"
    same = charts.pack_difference_heatmap(a, a)
    spec(same)
    assert not np.any([record["difference"] for record in inline_records(same)])


def test_row_trajectory_and_parameter_share_charts(voices):
    trajectory = charts.row_trajectory_chart(row_trajectory(voices["af_a"].pack), title="af_a")
    spec(trajectory)
    norms, cosines = (panel.data for panel in trajectory.vconcat)
    assert len(norms) == 2 * 510 and len(cosines) == 3 * 510
    assert cosines[cosines.series == "all dims"].cosine.iloc[0] == pytest.approx(1.0)

    shares = charts.parameter_share_chart([("decoder", 53_000_000, 0.65), ("bert", 6_300_000, 0.077)])
    spec(shares)
    assert list(shares.data.label) == ["65.0% (53.0 M)", "7.7% (6.3 M)"]
    with pytest.raises(AnalysisError, match="No modules"):
        charts.parameter_share_chart([])


@pytest.fixture()
def map_frame() -> pd.DataFrame:
    names = ["af_a", "am_c", "bf_e", "zm_h"]
    return pd.DataFrame({"name": names, "x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 1.0, -1.0, 5.0]})


def test_clicked_voices_come_back_in_map_order(map_frame):
    clicked = {"selection": {"voices": [{"name": "bf_e"}, {"name": "af_a"}], "voices_brush": {}}}
    assert selected_voice_names(clicked, map_frame) == ["af_a", "bf_e"]
    raw_vega = {"voices": {"name": ["am_c"], "vlPoint": {"or": [{"name": "am_c"}]}}}
    assert selected_voice_names(raw_vega, map_frame) == ["am_c"]
    marker = {"selection": {"voices": [{"name": "Lab voice"}]}}
    assert selected_voice_names(marker, map_frame) == []


def test_boxed_voices_are_those_inside_both_ranges(map_frame):
    boxed = {"selection": {"voices": {}, "voices_brush": {"x": [2.5, 0.5], "y": [-2, 1.5]}}}
    assert selected_voice_names(boxed, map_frame) == ["am_c", "bf_e"]
    both = {"selection": {"voices": [{"name": "zm_h"}], "voices_brush": {"x": [-1, 0.5], "y": [-1, 1]}}}
    assert selected_voice_names(both, map_frame) == ["af_a", "zm_h"]
    only_x = {"selection": {"voices_brush": {"x": [2.5, 9]}}}
    assert selected_voice_names(only_x, map_frame) == ["zm_h"]


def test_empty_selections_select_nothing(map_frame, analysis):
    for state in (None, {}, {"selection": {}}, {"selection": {"voices": {}, "voices_brush": {}}}):
        assert selected_voice_names(state, map_frame) == []
    chart = charts.tsne_chart(analysis)
    assert selected_voice_names({"selection": {"voices": [{"name": "ef_g"}]}}, chart) == ["ef_g"]
    with pytest.raises(AnalysisError, match="voice map"):
        selected_voice_names({}, charts.interlayer_correlation_heatmap(analysis))


def test_selection_as_streamlit_hands_it_back(map_frame):
    """The browser sends the selection as JSON; Streamlit returns it as a read-only VegaLiteState."""
    from streamlit.elements.vega_charts import VegaLiteStateSerde

    serde = VegaLiteStateSerde(selection_parameters=["voices", "voices_brush"])
    sent = {"selection": {"voices": [{"name": "zm_h"}], "voices_brush": {"x": [0.5, 2.5], "y": [1.5, -2.0]}}}
    state = serde.deserialize(json.dumps(sent))
    assert selected_voice_names(state, map_frame) == ["am_c", "bf_e", "zm_h"]
    assert selected_voice_names(serde.deserialize(None), map_frame) == []


def test_streamlit_accepts_the_map_and_returns_an_empty_selection():
    """st.altair_chart(on_select="rerun") finds both selections; before any click they select nothing."""
    from streamlit.testing.v1 import AppTest

    def page():
        import numpy as np
        import streamlit as st

        from explorer import charts
        from explorer.analysis import analyze
        from explorer.voices import Voice, VoiceSet

        rng = np.random.default_rng(0)
        names = ("af_a", "am_b", "bf_c", "bm_d")
        voices = VoiceSet(Voice.from_array(n, rng.normal(size=(510, 256)), "t") for n in names)
        chart = charts.pca_scatter_chart(analyze(voices, tsne_layers=()), voices)
        event = st.altair_chart(chart, on_select="rerun", key="map")
        st.session_state["keys"] = sorted(event["selection"])
        st.session_state["names"] = charts.selected_voice_names(event, chart)

    app = AppTest.from_function(page, default_timeout=60).run()
    assert not app.exception
    assert app.session_state["keys"] == ["voices", "voices_brush"]
    assert app.session_state["names"] == []


def test_save_chart_writes_real_files_by_suffix(tmp_path):
    chart = charts.parameter_share_chart([("decoder", 53_000_000, 0.65), ("bert", 6_300_000, 0.077)])
    png = charts.save_chart(chart, tmp_path / "shares.png")
    assert png == tmp_path / "shares.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = charts.save_chart(chart, tmp_path / "shares.svg").read_text()
    assert svg.startswith("<svg") and "decoder" in svg
    html = charts.save_chart(chart, tmp_path / "shares.html").read_text()
    assert "<html>" in html and "vegaEmbed" in html and "cdn.jsdelivr" not in html  # works offline
    spec_file = json.loads(charts.save_chart(chart, tmp_path / "shares.json").read_text())
    assert spec_file["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    with pytest.raises(AnalysisError, match="Cannot save a chart as 'jpg'"):
        charts.save_chart(chart, tmp_path / "shares.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shares.html", "shares.json", "shares.png", "shares.svg"]


def scales_of(chart_spec: object, field: str) -> list[dict]:
    """Every colour scale in a chart's spec that encodes ``field``."""
    found = []
    if isinstance(chart_spec, dict):
        color = chart_spec.get("encoding", {}).get("color", {})
        if color.get("field") == field:
            found.append(color.get("scale", {}))
        for value in chart_spec.values():
            found += scales_of(value, field)
    elif isinstance(chart_spec, list):
        for value in chart_spec:
            found += scales_of(value, field)
    return found


def half_colours(chart_spec: dict, field: str) -> dict[str, str]:
    """The colour of each half in a chart; every layer of it that colours ``field`` must agree."""
    scales = scales_of(chart_spec, field)
    assert scales and all(scale == scales[0] for scale in scales)
    return dict(zip(scales[0]["domain"], scales[0]["range"]))


def test_decoder_and_prosody_have_one_colour_each_in_every_chart(analysis, voices):
    """Walkthrough: one chart drew the decoder blue and another orange."""
    expected = {"decoder": charts.HALF_COLORS["decoder"], "prosody": charts.HALF_COLORS["prosody"]}
    seen = [
        half_colours(spec(charts.dimension_variance_chart(analysis)), "half"),
        half_colours(spec(charts.centroid_distance_chart(analysis, "gender")), "measure"),
        half_colours(spec(charts.row_trajectory_chart(row_trajectory(voices["af_a"].pack))), "series"),
        half_colours(spec(charts.embedding_distributions_chart(analysis)), "half"),
    ]
    for colours in seen:
        assert {half: colours[half] for half in ("decoder", "prosody") if half in colours} == \
            {half: expected[half] for half in ("decoder", "prosody") if half in colours}
    assert all("decoder" in colours for colours in seen)


def test_a_map_legend_lists_only_the_categories_its_voices_have(analysis, voices):
    """Walkthrough: the gender legend listed "unknown", which no stock voice is."""
    chart = spec(charts.pca_scatter_chart(analysis, voices, color_by="gender"))
    (colour,) = scales_of(chart, "gender")
    assert colour["domain"] == ["female", "male"]
    shapes = [layer["encoding"]["shape"]["scale"] for layer in chart["layer"] if "shape" in layer.get("encoding", {})]
    assert shapes == [{"domain": ["female", "male"], "range": ["circle", "triangle-up"]}]


def test_every_language_keeps_its_own_distinct_colour_whichever_voices_are_shown(analysis, voices):
    """Walkthrough: Japanese and Mandarin got near shades; and a language's colour moved with the voices shown."""
    (colour,) = scales_of(spec(charts.pca_scatter_chart(analysis, voices, color_by="language")), "language")
    mapping = dict(zip(colour["domain"], colour["range"]))
    assert set(mapping) == {"American English", "British English", "Spanish", "Mandarin Chinese"}
    assert len(set(charts._LANGUAGE_COLORS)) == len(charts._LANGUAGE_COLORS) == 9
    japanese, mandarin = (charts._LANGUAGE_COLORS[list(charts.LANGUAGES).index(code)] for code in "jz")
    assert mapping["Mandarin Chinese"] == mandarin != japanese
