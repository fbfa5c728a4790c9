"""Analysis: checked against voice sets with planted structure (known answers), then on the bundled voices."""

from __future__ import annotations

import numpy as np
import pytest
from planted import AXIS_DIM, PAIR
from planted import planted_voices as make_planted

from explorer.analysis import (
    LAYERS,
    LOADING_COMPONENTS,
    LOADING_DIMS,
    LOW_VARIANCE_FRACTION,
    analyze,
    centroids,
    check_perplexity,
    default_perplexity,
    dimension_variance,
    interlayer_correlation,
    layer_slice,
    nearest_voices,
    pca,
    perplexity_bounds,
    row_trajectory,
    summary_label,
    summary_vectors,
    tsne,
    value_distributions,
)
from explorer.errors import AnalysisError
from explorer.voices import VoiceSet


def planted_voices(count_per_group: int = 10) -> VoiceSet:
    """Two groups (af_*, bm_*) split by +-3 along decoder dim AXIS_DIM; prosody dim 200 copies decoder dim 12."""
    return make_planted({"af": 1.0, "bm": -1.0}, per_group=count_per_group)


@pytest.fixture(scope="module")
def planted():
    voices = planted_voices()
    return voices, summary_vectors(voices.packs())


def test_layers_are_the_two_halves():
    assert layer_slice("decoder") == slice(0, 128)
    assert layer_slice("prosody") == slice(128, 256)
    assert layer_slice("both") == slice(0, 256)
    with pytest.raises(AnalysisError, match="Unknown layer"):
        layer_slice("timbre")


def test_summary_is_the_row_mean_or_one_row(planted):
    voices, _ = planted
    packs = voices.packs()
    np.testing.assert_allclose(summary_vectors(packs), packs.astype(np.float64).mean(axis=1))
    np.testing.assert_array_equal(summary_vectors(packs, 5), packs[:, 5, :])
    assert "mean over the 510 rows" in summary_label(None)
    assert "row 5" in summary_label(5)
    for bad in (-1, 510, 2.5):
        with pytest.raises(AnalysisError, match="out of range"):
            summary_vectors(packs, bad)


def test_pca_finds_the_planted_group_axis(planted):
    voices, vectors = planted
    result = pca(vectors, "decoder")
    assert np.argmax(np.abs(result.components[0])) == AXIS_DIM
    assert result.explained_variance_ratio[0] > 0.5
    groups = np.array([name[:2] for name in voices.names])
    pc1 = result.projections[:, 0]
    assert (np.sign(pc1[groups == "af"]) != np.sign(pc1[groups == "bm"][0])).all()
    assert result.components_needed[0.5] == 1
    np.testing.assert_allclose(result.cumulative[-1], 1.0, atol=1e-9)


def test_pca_agrees_with_scikit_learn(bundled_voices):
    """The numpy PCA gives scikit-learn's variance ratios, axes (up to sign) and projections."""
    from sklearn.decomposition import PCA

    vectors = summary_vectors(bundled_voices.packs())
    for layer in LAYERS:
        ours = pca(vectors, layer, n_components=10)
        reference = PCA(n_components=10, svd_solver="full").fit(vectors[:, layer_slice(layer)].astype(np.float64))
        np.testing.assert_allclose(ours.explained_variance_ratio, reference.explained_variance_ratio_, rtol=1e-9)
        signs = np.sign(np.sum(ours.components * reference.components_, axis=1))
        np.testing.assert_allclose(ours.components, reference.components_ * signs[:, None], atol=1e-9)
        np.testing.assert_allclose(ours.component_std, np.sqrt(reference.explained_variance_), rtol=1e-9)
        np.testing.assert_allclose(ours.projections, reference.transform(vectors[:, layer_slice(layer)]) * signs,
                                   atol=1e-9)


def test_pca_signs_are_pinned_so_a_saved_pca_step_means_tomorrow_what_it_means_today(bundled_voices):
    """A person saves "PCA decoder PC1 +1 std" or shares it as a link; whoever opens it later moves the voice the same
    way, because each component points where its largest loading is positive (an SVD alone may return either sign).

    On the bundled voices (measured): decoder PC1 loads +0.213 on dim 127 and -0.207 on dim 8, and runs from
    bm_daniel (-1.75) to bm_fable (+0.61); prosody PC1 loads +0.437 on its dim 74 (style dim 202) and runs from
    jf_tebukuro (-1.91) to am_onyx (+1.30), with 23 of the 25 male voices on its positive side.
    """
    vectors = summary_vectors(bundled_voices.packs())
    names = np.array(bundled_voices.names)
    results = {layer: pca(vectors, layer) for layer in LAYERS}
    for layer, result in results.items():
        largest = np.abs(result.components).argmax(axis=1)
        assert (result.components[np.arange(len(largest)), largest] > 0).all(), layer

    decoder, prosody, both = (results[layer] for layer in ("decoder", "prosody", "both"))
    assert decoder.components[0, 127] == pytest.approx(0.2129, abs=1e-3)
    assert decoder.components[0, 8] == pytest.approx(-0.2067, abs=1e-3)
    assert names[decoder.projections[:, 0].argmax()] == "bm_fable"
    assert names[decoder.projections[:, 0].argmin()] == "bm_daniel"
    assert prosody.components[0, 74] == pytest.approx(0.4365, abs=1e-3)
    assert names[prosody.projections[:, 0].argmax()] == "am_onyx"
    assert names[prosody.projections[:, 0].argmin()] == "jf_tebukuro"
    male = np.array([bundled_voices[name].gender == "male" for name in names])
    assert (prosody.projections[male, 0] > 0).sum() == 23 and (prosody.projections[~male, 0] > 0).sum() == 8
    assert both.components[0, 202] == pytest.approx(0.3226, abs=1e-3)  # "both" PC1 is the prosody one, + is male
    assert names[both.projections[:, 0].argmax()] == "am_onyx"
    assert [d for d, _ in decoder.top_loadings(1, top=3)] == [127, 8, 80]
    assert [d for d, _ in prosody.top_loadings(1, top=3)] == [202, 133, 253]


def test_no_bundled_dim_is_low_variance(bundled_voices):
    """Measured: on the mean over rows no dim falls below a quarter of the mean per-dim variance; the least variable,
    dim 135, has 0.27 of it. So the seed's "many dimensions have low variance" does not hold for these 54 voices."""
    result = dimension_variance(summary_vectors(bundled_voices.packs()))
    assert result.low_variance == []
    ratio = result.variance / result.variance.mean()
    assert int(ratio.argmin()) == 135 and ratio.min() == pytest.approx(0.27, abs=0.005)


def test_pca_is_deterministic_and_projects_new_vectors(planted):
    _, vectors = planted
    first, second = pca(vectors, "both"), pca(vectors, "both")
    np.testing.assert_array_equal(first.components, second.components)
    np.testing.assert_allclose(first.project(vectors), first.projections, atol=1e-9)
    np.testing.assert_allclose(first.projections.std(axis=0, ddof=1), first.component_std, rtol=1e-6, atol=1e-9)
    prosody = pca(vectors, "prosody", n_components=3)
    assert prosody.components.shape == (3, 128)
    assert prosody.project(vectors[0]).shape == (3,)
    with pytest.raises(AnalysisError, match="n_components"):
        pca(vectors, "both", n_components=500)


def test_the_planted_dims_drive_their_components(planted):
    """The planted group axis drives decoder PC1 and both-layer PC1; the planted pair drives prosody PC1, named by its
    style dim (200, not 72 within the prosody half); the both-layer PC2 is the pair, each dim at about 1/sqrt(2)."""
    _, vectors = planted
    decoder, prosody, both = (pca(vectors, layer) for layer in ("decoder", "prosody", "both"))
    dim, weight = decoder.top_loadings(1, top=1)[0]
    assert dim == AXIS_DIM and weight > 0.99  # the sign is pinned: the largest loading is positive
    assert prosody.top_loadings(1)[0][0] == PAIR[1] and abs(prosody.top_loadings(1)[0][1]) > 0.9
    assert both.top_loadings(1)[0][0] == AXIS_DIM
    pair = both.top_loadings(2, top=2)
    assert {d for d, _ in pair} == set(PAIR) and all(abs(abs(w) - 2**-0.5) < 0.1 for _, w in pair)
    assert pair[0][1] * pair[1][1] > 0  # the pair moves together: same sign
    ranked = decoder.top_loadings(3, top=128)
    assert sorted(d for d, _ in ranked) == list(range(128))
    assert [abs(w) for _, w in ranked] == sorted((abs(w) for _, w in ranked), reverse=True)
    np.testing.assert_allclose(sum(w * w for _, w in ranked), 1.0)  # a unit vector over the layer's dims
    assert len(decoder.top_loadings(1)) == LOADING_DIMS
    for bad in (0, 21, 1.5):
        with pytest.raises(AnalysisError, match="does not exist: the decoder PCA has 1-20"):
            decoder.top_loadings(bad)
    with pytest.raises(AnalysisError, match="number of dims to list"):
        decoder.top_loadings(1, top=0)


def test_loadings_in_analysis_json_and_as_a_table(planted):
    voices, _ = planted
    result = analyze(voices, tsne_layers=())
    data = result.to_json()["pca"]
    for layer in LAYERS:
        assert list(data[layer]["top_loadings"]) == [f"PC{i}" for i in range(1, LOADING_COMPONENTS + 1)]
        assert all(len(dims) == LOADING_DIMS for dims in data[layer]["top_loadings"].values())
    assert data["decoder"]["top_loadings"]["PC1"][0]["dim"] == AXIS_DIM
    assert data["prosody"]["top_loadings"]["PC1"][0]["dim"] == PAIR[1]
    table = result.loadings("prosody", 1, top=3)
    assert list(table.columns) == ["dim", "layer", "loading"] and table.iloc[0].tolist()[:2] == [PAIR[1], "prosody"]
    three = make_planted({"af": 1.0, "bm": -1.0, "am": 1.0}, per_group=1)
    assert list(analyze(three, tsne_layers=()).to_json()["pca"]["both"]["top_loadings"]) == ["PC1", "PC2", "PC3"]
    with pytest.raises(AnalysisError, match="Unknown layer"):
        result.loadings("timbre", 1)


def test_low_variance_dims_are_those_below_the_stated_fraction_of_the_mean():
    rng = np.random.default_rng(5)
    vectors = rng.normal(0, 1, (40, 256))
    vectors[:, 99] = 0.5  # constant across voices
    vectors[:, 150] *= 0.3  # variance about 0.09 of the others': low
    vectors[:, 151] *= 0.7  # about 0.49: not low
    result = dimension_variance(vectors)
    assert result.low_variance_threshold == pytest.approx(LOW_VARIANCE_FRACTION * vectors.var(axis=0).mean())
    assert result.low_variance == [99, 150]
    low = result.to_json()["low_variance"]
    assert low == {"fraction": LOW_VARIANCE_FRACTION, "threshold": pytest.approx(result.low_variance_threshold),
                   "n_dims": 2, "by_layer": {"decoder": 1, "prosody": 1}, "dims": [99, 150]}


def test_planted_constant_dims_are_low_variance_and_planted_axes_are_not(planted):
    voices, vectors = planted
    flat = vectors.copy()
    flat[:, [3, 140]] = 0.25
    result = dimension_variance(flat)
    assert {3, 140} <= set(result.low_variance)
    assert not {AXIS_DIM, *PAIR} & set(result.low_variance)
    table = analyze(voices, tsne_layers=()).low_variance_dimensions()
    assert list(table.columns) == ["dim", "layer", "variance"] and table.dim.is_monotonic_increasing
    assert AXIS_DIM not in set(table.dim) and (table.variance < 0.25 * vectors.var(axis=0).mean()).all()


def test_identical_voices_have_no_low_variance_dims(planted):
    _, vectors = planted
    result = dimension_variance(np.tile(vectors[0], (4, 1)))
    assert result.low_variance == [] and result.low_variance_threshold == 0


def test_planted_correlated_pair_comes_out_on_top(planted):
    _, vectors = planted
    result = interlayer_correlation(vectors)
    assert result.matrix.shape == (128, 128)
    decoder_dim, prosody_dim, r = result.top_pairs[0]
    assert (decoder_dim, prosody_dim) == PAIR and r > 0.95
    assert result.max_abs == pytest.approx(abs(r))
    assert result.n_above_0_7 >= 1
    assert 0 < result.mean_abs < 0.5


def test_correlation_matches_numpy_corrcoef(planted):
    _, vectors = planted
    result = interlayer_correlation(vectors)
    reference = np.corrcoef(vectors.T)[:128, 128:]
    np.testing.assert_allclose(result.matrix, reference, atol=1e-9)


def test_constant_dims_count_as_uncorrelated(planted):
    _, vectors = planted
    flat = vectors.copy()
    flat[:, 5] = 1.0
    result = interlayer_correlation(flat)
    assert np.isfinite(result.matrix).all() and (result.matrix[5] == 0).all()


def test_dimension_variance_ranks_the_planted_axis_first(planted):
    _, vectors = planted
    result = dimension_variance(vectors)
    assert result.top[0][:2] == (AXIS_DIM, "decoder")
    assert result.top10_share <= result.top20_share <= 1
    np.testing.assert_allclose(result.variance, vectors.var(axis=0))
    assert sum(result.layer_share.values()) == pytest.approx(1.0)


def test_centroids_per_group_language_and_gender(planted):
    voices, vectors = planted
    result = centroids(voices, vectors)
    female = result.get("gender", "female")
    np.testing.assert_allclose(female.vector, vectors[:10].mean(axis=0))
    assert result.get("group", "af").members == tuple(f"af_v{i}" for i in range(10))
    assert result.get("language", "British English").members[0] == "bm_v0"
    assert result.get("group", "af").distance_from_overall == pytest.approx(3.0, rel=0.05)
    assert result.group_keys == ["af", "bm"]
    assert result.between_group_distance[0, 1] == pytest.approx(6.0, rel=0.05)
    assert result.between_group_distance[0, 0] == 0
    assert result.get("group", "af").within_variance < 0.1
    with pytest.raises(AnalysisError, match="No group centroid"):
        result.get("group", "zz")
    with pytest.raises(AnalysisError, match="Unknown centroid kind"):
        result.get("accent", "x")
    arrays = result.arrays()
    assert {"overall", "group/af", "gender/male", "language/American English"} <= set(arrays)


def test_nearest_voices_by_cosine_and_euclid(planted):
    voices, vectors = planted
    cosine = nearest_voices(vectors[3], vectors, voices.names, k=3)
    euclid = nearest_voices(vectors[3], vectors, voices.names, k=3, metric="euclidean")
    assert cosine[0] == ("af_v3", pytest.approx(1.0))
    assert euclid[0] == ("af_v3", 0.0)
    assert all(name.startswith("af") for name, _ in euclid)
    with pytest.raises(AnalysisError, match="metric"):
        nearest_voices(vectors[0], vectors, voices.names, metric="manhattan")


def test_tsne_is_seeded_and_separates_planted_groups(planted):
    _, vectors = planted
    first, second = tsne(vectors, "decoder"), tsne(vectors, "decoder")
    np.testing.assert_array_equal(first, second)
    af, bm = first[:10].mean(axis=0), first[10:].mean(axis=0)
    spread = max(first[:10].std(), first[10:].std())
    assert np.linalg.norm(af - bm) > 2 * spread


def test_perplexity_defaults_to_a_third_of_the_voices_within_1_to_30():
    assert [default_perplexity(n) for n in (3, 4, 8, 20, 54, 91, 200)] == [1.0, 1.0, 2.0, 6.0, 18.0, 30.0, 30.0]
    assert perplexity_bounds(20) == (1.0, 19.0)
    for count in (3, 4, 20, 54, 200):
        low, high = perplexity_bounds(count)
        assert low <= default_perplexity(count) <= high < count  # scikit-learn needs it below the count


def test_a_perplexity_outside_the_bounds_is_one_clear_sentence():
    assert check_perplexity(None, 20) == 6.0
    assert check_perplexity(1, 20) == 1.0 and check_perplexity(19, 20) == 19.0 and check_perplexity("7", 20) == 7.0
    for bad in (0.5, 0, -3, 19.5, 20, 50, float("inf")):
        with pytest.raises(AnalysisError, match=r"^Perplexity must be between 1 and 19 for 20 voices; got .+\.$"):
            check_perplexity(bad, 20)
    for bad in (float("nan"), "many", [5], True):
        with pytest.raises(AnalysisError, match=r"^Perplexity must be a number; got .+\.$"):
            check_perplexity(bad, 20)


def test_tsne_takes_the_chosen_perplexity_and_refuses_one_the_voices_cannot_have():
    small = summary_vectors(planted_voices(count_per_group=2).packs())
    assert tsne(small, "both", perplexity=3).shape == (4, 2)  # the highest 4 voices allow
    with pytest.raises(AnalysisError, match="between 1 and 3 for 4 voices; got 50"):
        tsne(small, "both", perplexity=50)


def test_perplexity_changes_the_map_and_analyze_records_the_value_used(planted):
    voices, vectors = planted
    local, default = tsne(vectors, "decoder", perplexity=2), tsne(vectors, "decoder")
    assert not np.allclose(local, default)
    np.testing.assert_array_equal(tsne(vectors, "decoder", perplexity=6), default)  # 6 is the default for 20
    chosen = analyze(voices, tsne_layers=("decoder",), tsne_perplexity=2)
    np.testing.assert_array_equal(chosen.tsne["decoder"], local)
    assert chosen.tsne_perplexity == 2.0 and chosen.to_json()["tsne_perplexity"] == 2.0
    assert analyze(voices, tsne_layers=()).tsne_perplexity == 6.0
    with pytest.raises(AnalysisError, match="between 1 and 19 for 20 voices"):
        analyze(voices, tsne_layers=(), tsne_perplexity=20)  # the same bounds even when no map is made


def test_too_few_voices_is_a_clear_error(planted):
    _, vectors = planted
    with pytest.raises(AnalysisError, match="at least 3 voices"):
        pca(vectors[:2])


def test_distributions_and_trajectory(planted):
    voices, vectors = planted
    distributions = value_distributions(vectors)
    assert set(distributions) == {"decoder", "prosody"}
    assert distributions["decoder"].counts.sum() == len(vectors) * 128
    trajectory = row_trajectory(voices.packs()[0])
    assert trajectory.decoder_norm.shape == (510,)
    assert trajectory.cosine_to_row0[0] == pytest.approx(1.0)
    assert trajectory.prosody_cosine_to_row0[0] == pytest.approx(1.0)


def test_analysis_json_has_the_documented_keys(planted):
    voices, _ = planted
    data = analyze(voices, row=None, tsne_layers=("both",)).to_json()
    assert data["n_voices"] == 20
    assert "mean over" in data["summary"]
    for layer in ("decoder", "prosody", "both"):
        assert len(data["pca"][layer]["explained_variance_ratio"]) == 20
    assert {"mean_abs", "max_abs", "n_above_0_7", "top_pairs"} <= set(data["interlayer_correlation"])
    assert {"top", "top10_share", "top20_share", "low_variance"} <= set(data["dimension_variance"])
    assert {"group", "language", "gender", "between_group_distance"} <= set(data["centroids"])
    assert set(data["tsne"]["both"]) == set(voices.names)
    assert data["tsne_perplexity"] == 6.0
    assert {"top_loadings"} <= set(data["pca"]["decoder"])


def test_row_analysis_differs_from_the_mean(bundled_voices):
    mean = analyze(bundled_voices, tsne_layers=())
    row = analyze(bundled_voices, row=20, tsne_layers=())
    assert row.to_json()["summary"] != mean.to_json()["summary"]
    assert not np.allclose(row.vectors, mean.vectors)


def test_bundled_voice_analysis_is_well_formed(bundled_voices):
    result = analyze(bundled_voices, tsne_layers=())
    for layer in ("decoder", "prosody", "both"):
        ratio = result.pca[layer].explained_variance_ratio
        assert len(ratio) == 54 and np.all(np.diff(ratio) <= 1e-12)
    assert 0 < result.correlation.max_abs <= 1
    groups = result.centroids.by_kind["group"]
    assert sum(len(c.members) for c in groups.values()) == 54
