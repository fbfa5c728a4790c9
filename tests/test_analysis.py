"""Analysis: checked against voice sets with planted structure (known answers), then on the bundled voices."""

from __future__ import annotations

import numpy as np
import pytest
from planted import AXIS_DIM, PAIR
from planted import planted_voices as make_planted

from explorer.analysis import (
    LAYERS,
    analyze,
    centroids,
    dimension_variance,
    interlayer_correlation,
    layer_slice,
    nearest_voices,
    pca,
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


def test_tsne_keeps_perplexity_below_the_voice_count():
    small = summary_vectors(planted_voices(count_per_group=2).packs())
    assert tsne(small, "both", perplexity=50).shape == (4, 2)


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
    assert {"top", "top10_share", "top20_share"} <= set(data["dimension_variance"])
    assert {"group", "language", "gender", "between_group_distance"} <= set(data["centroids"])
    assert set(data["tsne"]["both"]) == set(voices.names)


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
