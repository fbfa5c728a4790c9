"""Reports: ``write_analysis_reports`` writes the seed suite's file set plus analysis.json, all or nothing, and the
comparison with the seed's expected results is computed from the measurements."""

from __future__ import annotations

import json

import numpy as np
import pytest
from planted import AXIS_DIM, PAIR, planted_voices

from explorer import charts, reports
from explorer.analysis import analyze
from explorer.errors import AnalysisError
from explorer.reports import seed_expectations, write_analysis_reports
from explorer.voices import Voice, VoiceSet

REPORT_FILES = [
    "analysis.json",
    "analysis_report.txt",
    "centroids.npz",
    "centroid_stats.json",
    "top_variable_dimensions.json",
    "pca_variance.png",
    "pca_2d.png",
    "tsne_both.png",
    "interlayer_correlation.png",
    "embedding_distributions.png",
    "dimension_variance.png",
]
ARCHITECTURE_FILES = ["architecture_analysis.json", "architecture_report.txt"]


@pytest.fixture(scope="module")
def planted():
    voices = planted_voices({"af": 1, "am": 1, "bf": -1, "bm": -1}, per_group=3)
    return voices, analyze(voices, tsne_layers=("both",))


class FakeArchitecture:
    """Stands in for explorer.architecture.ArchitectureSummary: the reports only call these two methods."""

    def to_json(self) -> dict:
        return {"total_params": 81_810_022, "modules": {"decoder": 53_282_000}}

    def report_text(self) -> str:
        return "Total parameters: 81,810,022"


@pytest.fixture()
def fast_png(monkeypatch):
    """Replace PNG rendering (vl-convert, the slow step) with a stub; the end-to-end test renders for real."""
    monkeypatch.setattr(charts, "chart_bytes", lambda chart, fmt, scale=2.0: b"\x89PNG stub")


def leftovers(folder) -> list[str]:
    """Return hidden staging folders left beside the output folder."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_writes_the_seed_file_set_with_the_documented_keys(planted, tmp_path):
    voices, analysis = planted
    out = tmp_path / "analysis"
    paths = write_analysis_reports(voices, analysis, out, architecture=FakeArchitecture())
    assert [p.name for p in paths] == REPORT_FILES + ARCHITECTURE_FILES
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES + ARCHITECTURE_FILES)
    assert all(p.parent == out for p in paths) and leftovers(tmp_path) == []
    for path in paths:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name

    data = json.loads((out / "analysis.json").read_text())
    assert data["n_voices"] == 12 and data["summary"] == analysis.summary
    for layer in ("decoder", "prosody", "both"):
        assert len(data["pca"][layer]["explained_variance_ratio"]) == 12
    assert {"mean_abs", "max_abs", "n_above_0_7", "top_pairs"} <= set(data["interlayer_correlation"])
    assert {"top", "top10_share", "top20_share"} <= set(data["dimension_variance"])
    assert data["centroids"]["group"]["af"]["members"] == ["af_v0", "af_v1", "af_v2"]
    assert data["voice_metadata"][3] == {
        "name": "am_v0", "language": "American English", "language_code": "a", "gender": "male", "group": "am",
        "source": "planted",
    }
    assert data["seed_expectations"]["n_checks"] == len(data["seed_expectations"]["checks"])

    with np.load(out / "centroids.npz") as npz:
        assert set(npz.files) == set(analysis.centroids.arrays())
        np.testing.assert_allclose(npz["group/bf"], analysis.centroids.get("group", "bf").vector, rtol=1e-6)
    stats = json.loads((out / "centroid_stats.json").read_text())
    assert stats["summary"] == analysis.summary
    assert stats["between_group_distance"]["groups"] == ["af", "am", "bf", "bm"]
    top = json.loads((out / "top_variable_dimensions.json").read_text())
    assert top["top"][0]["dim"] == AXIS_DIM and len(top["top_by_layer"]["prosody"]) == 20

    text = (out / "analysis_report.txt").read_text()
    assert f"Summary vector: {analysis.summary}" in text
    assert "Compared with the 'Expected Results'" in text and "[above] First principal component" in text
    assert (out / "architecture_report.txt").read_text() == "Total parameters: 81,810,022\n"
    assert json.loads((out / "architecture_analysis.json").read_text())["total_params"] == 81_810_022


def test_architecture_files_only_when_a_summary_is_given(planted, tmp_path, fast_png):
    voices, analysis = planted
    paths = write_analysis_reports(voices, analysis, tmp_path / "out")
    assert [p.name for p in paths] == REPORT_FILES


def test_a_failure_midway_leaves_the_folder_as_it_was(planted, tmp_path, monkeypatch, fast_png):
    voices, analysis = planted
    out = tmp_path / "out"
    out.mkdir()
    (out / "analysis.json").write_text("old")
    (out / "notes.txt").write_text("mine")

    def broken(*args, **kwargs):
        raise RuntimeError("chart failed")

    monkeypatch.setattr(charts, "dimension_variance_chart", broken)  # the last chart: everything else was staged
    with pytest.raises(RuntimeError, match="chart failed"):
        write_analysis_reports(voices, analysis, out, architecture=FakeArchitecture())
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "notes.txt"]
    assert (out / "analysis.json").read_text() == "old"
    assert leftovers(tmp_path) == []

    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        write_analysis_reports(voices, analysis, fresh)
    assert not fresh.exists() and leftovers(tmp_path) == []


def test_existing_folder_gets_new_files_and_keeps_others(planted, tmp_path, fast_png):
    voices, analysis = planted
    out = tmp_path / "out"
    out.mkdir()
    (out / "analysis.json").write_text("old")
    (out / "notes.txt").write_text("mine")
    write_analysis_reports(voices, analysis, out)
    assert json.loads((out / "analysis.json").read_text())["n_voices"] == 12
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "pca_2d.png").read_bytes() == b"\x89PNG stub"


def test_refuses_a_missing_parent_a_file_and_another_analysis(planted, tmp_path):
    voices, analysis = planted
    with pytest.raises(AnalysisError, match="does not exist"):
        write_analysis_reports(voices, analysis, tmp_path / "missing" / "out")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").write_text("x")
    with pytest.raises(AnalysisError, match="it is a file"):
        write_analysis_reports(voices, analysis, tmp_path / "taken")
    fewer = VoiceSet(list(voices)[:6])
    with pytest.raises(AnalysisError, match="other voices"):
        write_analysis_reports(fewer, analysis, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_write_errors_become_analysis_errors(planted, tmp_path, monkeypatch, fast_png):
    voices, analysis = planted

    def full_disk(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports.Path, "write_bytes", full_disk)
    with pytest.raises(AnalysisError, match="No space left on device"):
        write_analysis_reports(voices, analysis, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def checks_by_id(expectations: dict) -> dict[str, dict]:
    return {check["id"]: check for check in expectations["checks"]}


def test_seed_expectations_are_measured_not_assumed(planted):
    voices, analysis = planted
    expectations = seed_expectations(voices, analysis)
    checks = checks_by_id(expectations)
    assert expectations["summary"] == analysis.summary and expectations["n_voices"] == 12
    # One planted axis dominates the decoder: PC1 holds far more than the seed's 15-30 %.
    pc1 = checks["pca_pc1_share_decoder"]
    assert pc1["measured"]["pc1_share"] == pytest.approx(analysis.pca["decoder"].explained_variance_ratio[0], abs=1e-6)
    assert pc1["verdict"] == "above" and pc1["holds"] is False
    # 12 voices give 12 components, so the 10-component share is informative.
    assert checks["pca_first10_share_both"]["measured"]["n_components"] == 12
    # American and British voices sit apart on PC1: clear clustering by language.
    clustering = checks["pca_language_clustering"]
    assert clustering["measured"]["silhouette_pc1_pc2"] > 0.5 and clustering["verdict"] == "holds"
    # The planted pair correlates far beyond what shuffled voices reach.
    high = checks["interlayer_some_high_pairs"]
    assert high["holds"] is True and high["measured"]["beyond_chance"] is True
    assert high["measured"]["chance"]["max_abs_p95"] < high["measured"]["max_abs"]
    # One dim carries most variance: the top 20 hold more than half.
    top = checks["top_dims_capture_most_variation"]
    assert top["measured"]["top20_share"] > 0.5 and top["verdict"] == "holds"
    assert top["measured"]["dims_for_half_of_variance"] == 1
    assert expectations["n_holding"] == sum(1 for check in expectations["checks"] if check["holds"])
    assert seed_expectations(voices, analysis) == expectations  # seeded: the same figures every time


def test_loadings_low_variance_dims_and_perplexity_reach_every_report_file(tmp_path, fast_png):
    """A chosen perplexity, the driving dims of each component and the low-variance dims (a planted constant dim among
    them) are in analysis.json, top_variable_dimensions.json and the text report, and the seed check counts the same
    low-variance dims."""
    voices = planted_voices({"af": 1, "am": 1, "bf": -1, "bm": -1}, per_group=3)
    packs = voices.packs()
    packs[:, :, 140] = 0.5  # a dim no voice varies on
    voices = VoiceSet(Voice.from_array(name, pack, "planted") for name, pack in zip(voices.names, packs))
    analysis = analyze(voices, tsne_layers=("both",), tsne_perplexity=2)
    out = tmp_path / "analysis"
    write_analysis_reports(voices, analysis, out)

    data = json.loads((out / "analysis.json").read_text())
    assert data["tsne_perplexity"] == 2.0
    assert data["pca"]["decoder"]["top_loadings"]["PC1"][0]["dim"] == AXIS_DIM
    low = data["dimension_variance"]["low_variance"]
    assert 140 in low["dims"] and AXIS_DIM not in low["dims"] and not set(PAIR) & set(low["dims"])
    assert low["dims"] == analysis.variance.low_variance and low["n_dims"] == len(low["dims"])
    assert low["fraction"] == reports.LOW_VARIANCE_FRACTION
    checks = checks_by_id(data["seed_expectations"])
    assert checks["many_low_variance_dims"]["measured"]["n_low_variance_dims"] == low["n_dims"]
    top = json.loads((out / "top_variable_dimensions.json").read_text())
    assert top["low_variance"] == low

    text = (out / "analysis_report.txt").read_text()
    assert "t-SNE: perplexity 2 (chosen; the default is 4 for 12 voices, allowed 1-11)" in text
    assert f"decoder  PC1: {AXIS_DIM} +" in text
    assert "low-variance dims (variance below 0.25 of the mean per-dim variance" in text
    assert f": {low['n_dims']} of 256 (decoder " in text and ", 140," in text.replace("\n    ", " ")


def test_the_report_names_the_least_variable_dim_when_none_is_low(planted):
    voices, _ = planted
    rng = np.random.default_rng(2)
    even = VoiceSet(Voice.from_array(name, rng.normal(0, 1, (510, 256)).astype(np.float32), "t")
                    for name in voices.names)
    analysis = analyze(even, tsne_layers=())
    text = reports._analysis_report_text(even, analysis, seed_expectations(even, analysis, permutations=2))
    assert analysis.variance.low_variance == []
    assert ": 0 of 256 (decoder 0, prosody 0)" in text and "none; the least variable is dim" in text
    assert "t-SNE: perplexity 4 (the default for 12 voices, allowed 1-11), seed 0; layers embedded: none" in text


def test_few_voices_make_the_ten_component_check_not_measurable():
    rng = np.random.default_rng(3)
    names = ("af_a", "af_b", "am_c", "bf_d", "bm_e", "zf_f")
    voices = VoiceSet(Voice.from_array(n, rng.normal(size=(510, 256)).astype(np.float32), "t") for n in names)
    checks = checks_by_id(seed_expectations(voices, analyze(voices, tsne_layers=())))
    first10 = checks["pca_first10_share_both"]
    assert first10["verdict"] == "not measurable" and first10["holds"] is None
    assert first10["measured"]["n_components"] == 6


def test_every_check_has_a_unique_id_and_the_documented_keys_in_order(planted):
    voices, analysis = planted
    checks = seed_expectations(voices, analysis)["checks"]
    ids = [check["id"] for check in checks]
    assert len(ids) == len(set(ids)) == 11
    per_layer = [check for check in checks if "layer" in check]
    assert [check["layer"] for check in per_layer] == ["decoder", "decoder", "prosody", "prosody", "both", "both"]
    assert all(check["id"].endswith(f"_{check['layer']}") for check in per_layer)
    assert checks[: len(per_layer)] == per_layer  # the per-layer PCA checks come first
    for check in checks:
        scope = ["layer"] if "layer" in check else []
        assert list(check) == ["id", *scope, "claim", "criterion", "measured", "verdict", "holds"], check["id"]
