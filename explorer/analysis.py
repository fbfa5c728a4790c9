"""Voice-embedding analysis: PCA per layer, centroids, inter-layer correlation, dimension variance, t-SNE,
value distributions and row trajectories.

Every analysis works on one summary vector per voice: by default the mean over a pack's 510 rows, or one chosen row
(Kokoro styles an utterance of ``n`` phonemes with row ``n - 1``). Results are deterministic: PCA component signs are
fixed so the largest loading is positive, and t-SNE is seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.errors import AnalysisError, shown
from explorer.voices import HALF, PACK_ROWS, STYLE_DIM, VoiceSet

__all__ = [
    "CENTROID_KINDS",
    "LAYERS",
    "LAYER_MEANING",
    "MIN_VOICES",
    "Centroid",
    "CentroidAnalysis",
    "DimensionVariance",
    "InterlayerCorrelation",
    "PCAResult",
    "RowTrajectory",
    "ValueDistribution",
    "VoiceAnalysis",
    "analyze",
    "centroids",
    "dimension_variance",
    "interlayer_correlation",
    "layer_slice",
    "nearest_voices",
    "pca",
    "row_trajectory",
    "summary_label",
    "summary_vectors",
    "tsne",
    "value_distributions",
]

LAYERS: dict[str, slice] = {
    "decoder": slice(0, HALF),
    "prosody": slice(HALF, STYLE_DIM),
    "both": slice(0, STYLE_DIM),
}
"""Dims 0-127 condition the decoder (timbre); dims 128-255 the prosody predictor (rhythm, pitch, duration).

Example:
    >>> import explorer
    >>> explorer.LAYERS["prosody"]
    slice(128, 256, None)
    >>> voices = explorer.load_voices()
    >>> voices["af_heart"].pack[:, explorer.LAYERS["decoder"]].shape
    (510, 128)
"""
LAYER_MEANING = {
    "decoder": "dims 0-127, to the decoder (timbre)",
    "prosody": "dims 128-255, to the prosody predictor (rhythm, pitch, duration)",
    "both": "all 256 dims",
}
"""What each layer name means, in the words charts and reports use."""
VARIANCE_TARGETS = (0.5, 0.8, 0.9, 0.99)
MIN_VOICES = 3
"""Fewest voices PCA, correlation, variance and t-SNE can say anything about."""
CENTROID_KINDS = ("group", "language", "gender")
"""What voices are grouped by for centroids: the name prefix (``af``), the language, the gender."""


def layer_slice(layer: str) -> slice:
    """Return the dims of ``layer`` ("decoder", "prosody" or "both").

    Raises:
        AnalysisError: any other layer name.
    """
    try:
        return LAYERS[layer]
    except KeyError:
        raise AnalysisError(f"Unknown layer '{str(layer)[:40]}': use decoder, prosody or both.") from None


def summary_label(row: int | None) -> str:
    """Return the sentence every output uses to say which summary vector it was computed on."""
    if row is None:
        return f"mean over the {PACK_ROWS} rows of each voicepack"
    return f"row {row} of each voicepack (the style Kokoro uses for {row + 1} phonemes)"


def summary_vectors(packs: np.ndarray, row: int | None = None) -> np.ndarray:
    """Return one float64 256-vector per pack: the mean over rows, or row ``row``.

    Args:
        packs: ``[N, 510, 256]``.
        row: ``None`` for the mean over rows, else 0-509.

    Raises:
        AnalysisError: ``row`` is outside 0-509.

    Example:
        >>> import explorer
        >>> packs = explorer.load_voices().packs()
        >>> explorer.summary_vectors(packs).shape, explorer.summary_vectors(packs, row=20).dtype
        ((54, 256), dtype('float64'))
    """
    if row is None:
        return packs.astype(np.float64).mean(axis=1)
    if not isinstance(row, (int, np.integer)) or not 0 <= row < PACK_ROWS:
        raise AnalysisError(f"Row {row} is out of range: choose 0-{PACK_ROWS - 1}, or none for the mean over rows.")
    return packs[:, row, :].astype(np.float64)


def _require_voices(count: int) -> None:
    if count < MIN_VOICES:
        raise AnalysisError(f"The analysis needs at least {MIN_VOICES} voices; {count} were given.")


@dataclass(frozen=True)
class PCAResult:
    """PCA of one layer across voices.

    ``components_needed[p]`` is how many components explain at least ``p`` of the variance (None if all together
    do not). ``component_std`` is each component's standard deviation across voices, the unit of Lab steps.
    """

    layer: str
    explained_variance_ratio: np.ndarray
    cumulative: np.ndarray
    components_needed: dict[float, int | None]
    components: np.ndarray
    projections: np.ndarray
    mean: np.ndarray
    component_std: np.ndarray

    def project(self, vector: np.ndarray) -> np.ndarray:
        """Return the PCA coordinates of a 256-vector (or a vector already cut to this layer)."""
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape[-1] == STYLE_DIM and self.mean.shape[0] != STYLE_DIM:
            vector = vector[..., layer_slice(self.layer)]
        return (vector - self.mean) @ self.components.T

    def to_json(self) -> dict:
        """Return the JSON-ready figures (no per-voice projections)."""
        return {
            "layer": self.layer,
            "dims": LAYER_MEANING[self.layer],
            "explained_variance_ratio": self.explained_variance_ratio.round(6).tolist(),
            "cumulative": self.cumulative.round(6).tolist(),
            "components_needed": {f"{int(p * 100)}%": n for p, n in self.components_needed.items()},
            "pc1_share": round(float(self.explained_variance_ratio[0]), 6),
            "first10_share": round(float(self.cumulative[min(9, len(self.cumulative) - 1)]), 6),
        }


def pca(vectors: np.ndarray, layer: str = "both", n_components: int | None = None) -> PCAResult:
    """Return the PCA of ``layer`` over ``vectors`` ``[N, 256]``; all ``min(N, dims)`` components by default.

    Signs: each component points where its largest-magnitude loading is positive (an SVD may return either sign), so
    a saved "PCA ... PC1 +x std" step or share link keeps its meaning. On the bundled voices decoder PC1 loads +0.21
    on dim 127 and runs from bm_daniel to bm_fable; prosody PC1 loads +0.44 on style dim 202 and runs from
    jf_tebukuro to am_onyx, most male voices on its positive side (pinned by tests/test_analysis.py).

    Args:
        vectors: one summary vector per voice (see ``summary_vectors``), at least 3.
        layer: "decoder", "prosody" or "both".
        n_components: how many components to keep (1 to ``min(N, dims)``); all by default.

    Raises:
        AnalysisError: fewer than 3 voices, an unknown layer, or ``n_components`` out of range.

    Example:
        >>> import explorer
        >>> vectors = explorer.summary_vectors(explorer.load_voices().packs())
        >>> decoder = explorer.pca(vectors, "decoder")
        >>> round(float(decoder.explained_variance_ratio[0]), 2), decoder.components_needed[0.9]
        (0.16, 24)
        >>> explorer.pca(vectors, "prosody", n_components=5).projections.shape
        (54, 5)
    """
    _require_voices(len(vectors))
    data = np.asarray(vectors, dtype=np.float64)[:, layer_slice(layer)]
    limit = min(data.shape)
    count = limit if n_components is None else n_components
    if not 1 <= count <= limit:
        raise AnalysisError(f"n_components must be 1-{limit} for {len(data)} voices on layer {layer}; got {count}.")
    # The full SVD of the centred data, as scikit-learn's PCA(svd_solver="full") computes it, without the second
    # its first use costs (a cold start of the app pays for every import).
    mean = data.mean(axis=0)
    _, singular, rows = np.linalg.svd(data - mean, full_matrices=False)
    components = rows[:count].copy()
    signs = np.sign(components[np.arange(count), np.abs(components).argmax(axis=1)])
    components *= signs[:, None]
    variance = singular**2 / (len(data) - 1)
    total = variance.sum()  # 0 when the voices are identical on this layer: no component explains anything
    ratio = variance[:count] / total if total > 0 else np.zeros(count)
    cumulative = np.cumsum(ratio)
    needed = {}
    for target in VARIANCE_TARGETS:
        reached = np.nonzero(cumulative >= target - 1e-12)[0]
        needed[target] = int(reached[0]) + 1 if len(reached) else None
    return PCAResult(
        layer=layer,
        explained_variance_ratio=ratio,
        cumulative=cumulative,
        components_needed=needed,
        components=components,
        projections=(data - mean) @ components.T,
        mean=mean,
        component_std=np.sqrt(variance[:count]),
    )


@dataclass(frozen=True)
class Centroid:
    """The mean vector of a set of voices, with how far it sits from the overall centroid and how spread it is.

    ``within_variance`` is the mean over dims of the members' variance (0 for a single member).
    """

    kind: str
    key: str
    members: tuple[str, ...]
    vector: np.ndarray = field(repr=False)
    distance_from_overall: float
    decoder_distance: float
    prosody_distance: float
    within_variance: float


@dataclass(frozen=True)
class CentroidAnalysis:
    """Centroids overall and per group (name prefix), language and gender, plus the between-group distances."""

    overall: np.ndarray
    by_kind: dict[str, dict[str, Centroid]]
    group_keys: list[str]
    between_group_distance: np.ndarray

    def get(self, kind: str, key: str) -> Centroid:
        """Return one centroid, e.g. ``get("gender", "female")`` or ``get("group", "bf")``."""
        if kind not in self.by_kind:
            raise AnalysisError(f"Unknown centroid kind '{str(kind)[:40]}': use {', '.join(CENTROID_KINDS)}.")
        if key not in self.by_kind[kind]:
            known = ", ".join(self.by_kind[kind])
            raise AnalysisError(f"No {kind} centroid '{str(key)[:40]}' among these voices; known: {known}.")
        return self.by_kind[kind][key]

    def to_json(self) -> dict:
        """Return the JSON-ready statistics (vectors go to ``centroids.npz``)."""
        return {
            kind: {
                key: {
                    "members": list(c.members),
                    "distance_from_overall": round(c.distance_from_overall, 6),
                    "decoder_distance_from_overall": round(c.decoder_distance, 6),
                    "prosody_distance_from_overall": round(c.prosody_distance, 6),
                    "within_group_variance": round(c.within_variance, 6),
                }
                for key, c in centroids.items()
            }
            for kind, centroids in self.by_kind.items()
        } | {
            "between_group_distance": {
                "groups": self.group_keys,
                "matrix": self.between_group_distance.round(6).tolist(),
            }
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Return every centroid vector keyed ``overall`` or ``<kind>/<key>``, for ``centroids.npz``."""
        arrays = {"overall": self.overall.astype(np.float32)}
        for kind, centroids in self.by_kind.items():
            arrays.update({f"{kind}/{key}": c.vector.astype(np.float32) for key, c in centroids.items()})
        return arrays


def centroids(voices: VoiceSet, vectors: np.ndarray) -> CentroidAnalysis:
    """Return the centroid analysis of ``vectors`` (one per voice of ``voices``, same order).

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> result = explorer.centroids(voices, explorer.summary_vectors(voices.packs()))
        >>> len(result.get("gender", "male").members), result.between_group_distance.shape
        (25, (17, 17))
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    overall = vectors.mean(axis=0)
    table = voices.table()
    by_kind: dict[str, dict[str, Centroid]] = {}
    for kind in CENTROID_KINDS:
        by_kind[kind] = {}
        for key, rows in table.groupby(kind, sort=True).groups.items():
            index = np.asarray(list(rows))
            members = vectors[index]
            vector = members.mean(axis=0)
            offset = vector - overall
            by_kind[kind][str(key)] = Centroid(
                kind=kind,
                key=str(key),
                members=tuple(table.name[index]),
                vector=vector,
                distance_from_overall=float(np.linalg.norm(offset)),
                decoder_distance=float(np.linalg.norm(offset[LAYERS["decoder"]])),
                prosody_distance=float(np.linalg.norm(offset[LAYERS["prosody"]])),
                within_variance=float(members.var(axis=0).mean()),
            )
    keys = list(by_kind["group"])
    stacked = np.stack([by_kind["group"][k].vector for k in keys])
    between = np.linalg.norm(stacked[:, None, :] - stacked[None, :, :], axis=-1)
    return CentroidAnalysis(overall, by_kind, keys, between)


def nearest_voices(
    vector: np.ndarray, vectors: np.ndarray, names: list[str], k: int = 5, metric: str = "cosine"
) -> list[tuple[str, float]]:
    """Return the ``k`` voices nearest ``vector``: ``(name, similarity)`` for cosine, ``(name, distance)`` for
    euclidean, best first.

    Raises:
        AnalysisError: a metric other than cosine or euclidean.

    Example:
        >>> import explorer
        >>> voices = explorer.load_voices()
        >>> vectors = explorer.summary_vectors(voices.packs())
        >>> heart = vectors[voices.names.index("af_heart")]
        >>> [name for name, _ in explorer.nearest_voices(heart, vectors, voices.names, k=3)]
        ['af_heart', 'af_bella', 'af_sarah']
    """
    vector = np.asarray(vector, dtype=np.float64)
    vectors = np.asarray(vectors, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(vectors, axis=1) * max(np.linalg.norm(vector), 1e-12)
        scores = vectors @ vector / np.maximum(norms, 1e-12)
        order = np.argsort(-scores, kind="stable")
    elif metric == "euclidean":
        scores = np.linalg.norm(vectors - vector, axis=1)
        order = np.argsort(scores, kind="stable")
    else:
        raise AnalysisError(f"Unknown metric '{str(metric)[:40]}': use cosine or euclidean.")
    return [(names[i], float(scores[i])) for i in order[:k]]


@dataclass(frozen=True)
class InterlayerCorrelation:
    """Pearson correlation across voices between each decoder dim (rows, 0-127) and each prosody dim (columns,
    128-255). Dims that do not vary across voices have no defined correlation and count as 0."""

    matrix: np.ndarray
    top_pairs: list[tuple[int, int, float]]
    mean_abs: float
    max_abs: float
    n_above_0_7: int

    def to_json(self) -> dict:
        """Return the JSON-ready figures."""
        return {
            "mean_abs": round(self.mean_abs, 6),
            "max_abs": round(self.max_abs, 6),
            "n_above_0_7": self.n_above_0_7,
            "top_pairs": [{"decoder_dim": d, "prosody_dim": p, "r": round(r, 6)} for d, p, r in self.top_pairs],
        }


def interlayer_correlation(vectors: np.ndarray, top: int = 20) -> InterlayerCorrelation:
    """Return the 128x128 decoder/prosody correlation of ``vectors`` ``[N, 256]`` and its strongest pairs.

    Example:
        >>> import explorer
        >>> result = explorer.interlayer_correlation(explorer.summary_vectors(explorer.load_voices().packs()))
        >>> result.matrix.shape, result.top_pairs[0][:2], round(result.max_abs, 2)
        ((128, 128), (48, 229), 0.76)
    """
    _require_voices(len(vectors))
    data = np.asarray(vectors, dtype=np.float64)
    centred = data - data.mean(axis=0)
    std = centred.std(axis=0)
    safe = np.where(std > 1e-12, std, np.inf)
    z = centred / safe
    matrix = z[:, LAYERS["decoder"]].T @ z[:, LAYERS["prosody"]] / len(data)
    magnitude = np.abs(matrix)
    order = np.argsort(-magnitude, axis=None, kind="stable")[:top]
    pairs = [(int(i // HALF), int(i % HALF) + HALF, float(matrix.flat[i])) for i in order]
    return InterlayerCorrelation(
        matrix=matrix,
        top_pairs=pairs,
        mean_abs=float(magnitude.mean()),
        max_abs=float(magnitude.max()),
        n_above_0_7=int((magnitude > 0.7).sum()),
    )


@dataclass(frozen=True)
class DimensionVariance:
    """Variance of each of the 256 dims across voices, the most variable dims, and how much of the total variance
    the top 10 and top 20 dims hold."""

    variance: np.ndarray
    top: list[tuple[int, str, float]]
    top10_share: float
    top20_share: float
    layer_share: dict[str, float]

    def to_json(self) -> dict:
        """Return the JSON-ready figures."""
        return {
            "per_dim": self.variance.round(8).tolist(),
            "top": [{"dim": d, "layer": layer, "variance": round(v, 8)} for d, layer, v in self.top],
            "top10_share": round(self.top10_share, 6),
            "top20_share": round(self.top20_share, 6),
            "layer_share": {k: round(v, 6) for k, v in self.layer_share.items()},
        }


def dimension_variance(vectors: np.ndarray, top: int = 20) -> DimensionVariance:
    """Return the per-dim variance of ``vectors`` ``[N, 256]`` across voices, and the ``top`` most variable dims.

    Example:
        >>> import explorer
        >>> result = explorer.dimension_variance(explorer.summary_vectors(explorer.load_voices().packs()), top=3)
        >>> result.top[0][:2], {layer: round(share, 2) for layer, share in result.layer_share.items()}
        ((202, 'prosody'), {'decoder': 0.55, 'prosody': 0.45})
    """
    _require_voices(len(vectors))
    variance = np.asarray(vectors, dtype=np.float64).var(axis=0)
    total = max(float(variance.sum()), 1e-30)
    order = np.argsort(-variance, kind="stable")
    return DimensionVariance(
        variance=variance,
        top=[(int(d), "decoder" if d < HALF else "prosody", float(variance[d])) for d in order[:top]],
        top10_share=float(variance[order[:10]].sum() / total),
        top20_share=float(variance[order[:20]].sum() / total),
        layer_share={name: float(variance[LAYERS[name]].sum() / total) for name in ("decoder", "prosody")},
    )


def tsne(vectors: np.ndarray, layer: str = "both", seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """Return seeded 2-D t-SNE coordinates ``[N, 2]`` of ``layer``.

    The perplexity defaults to ``min(30, (N - 1) / 3)`` and is always kept below the number of voices.

    The layer is shifted and scaled to span 0-1 before scikit-learn sees it. t-SNE does not depend on scale, but
    scikit-learn's Barnes-Hut code computes in float32: voices that differ by less than about 1e-19, or values near
    float32's limit, become NaN there and crash the whole process, not just the call. Voices identical on the layer
    have nothing to separate: they all sit at the origin.

    Raises:
        AnalysisError: fewer than 3 voices, an unknown layer, a perplexity that is not a number, or values that are
            not finite.

    Example:
        >>> import explorer
        >>> explorer.tsne(explorer.summary_vectors(explorer.load_voices().packs()), "decoder").shape
        (54, 2)
    """
    from sklearn.manifold import TSNE

    _require_voices(len(vectors))
    data = np.asarray(vectors, dtype=np.float64)[:, layer_slice(layer)]
    count = len(data)
    try:
        chosen = min(30.0, (count - 1) / 3) if perplexity is None else float(perplexity)
    except (TypeError, ValueError):
        chosen = math.nan
    if math.isnan(chosen):
        raise AnalysisError(f"Perplexity must be a number; got {shown(perplexity, 40)}.")
    chosen = min(max(chosen, 1.0), count - 1.0)
    if not np.isfinite(data).all():
        raise AnalysisError("t-SNE needs finite values; these vectors hold NaN or infinite ones.")
    low = data.min(axis=0)
    span = float((data.max(axis=0) - low).max())
    if span == 0:
        return np.zeros((count, 2), np.float32)
    model = TSNE(n_components=2, perplexity=chosen, random_state=seed, init="pca", learning_rate="auto")
    return model.fit_transform((data - low) / span)


@dataclass(frozen=True)
class ValueDistribution:
    """Histogram and percentiles of the values of one layer over all voices' summary vectors."""

    layer: str
    counts: np.ndarray
    edges: np.ndarray
    mean: float
    std: float
    minimum: float
    maximum: float
    percentiles: dict[int, float]

    def to_json(self) -> dict:
        """Return the JSON-ready figures."""
        return {
            "mean": round(self.mean, 6),
            "std": round(self.std, 6),
            "min": round(self.minimum, 6),
            "max": round(self.maximum, 6),
            "percentiles": {str(k): round(v, 6) for k, v in self.percentiles.items()},
            "histogram": {"counts": self.counts.tolist(), "edges": self.edges.round(6).tolist()},
        }


def value_distributions(vectors: np.ndarray, bins: int = 60) -> dict[str, ValueDistribution]:
    """Return the value distribution of the decoder and prosody halves of ``vectors``.

    Example:
        >>> import explorer
        >>> result = explorer.value_distributions(explorer.summary_vectors(explorer.load_voices().packs()), bins=40)
        >>> sorted(result), int(result["decoder"].counts.sum()), len(result["prosody"].edges)
        (['decoder', 'prosody'], 6912, 41)
    """
    result = {}
    for layer in ("decoder", "prosody"):
        values = np.asarray(vectors, dtype=np.float64)[:, LAYERS[layer]].ravel()
        counts, edges = np.histogram(values, bins=bins)
        result[layer] = ValueDistribution(
            layer=layer,
            counts=counts,
            edges=edges,
            mean=float(values.mean()),
            std=float(values.std()),
            minimum=float(values.min()),
            maximum=float(values.max()),
            percentiles={p: float(np.percentile(values, p)) for p in (1, 5, 25, 50, 75, 95, 99)},
        )
    return result


@dataclass(frozen=True)
class RowTrajectory:
    """How one voicepack changes with phoneme count: per row, the norm of each half and the cosine to row 0."""

    decoder_norm: np.ndarray
    prosody_norm: np.ndarray
    cosine_to_row0: np.ndarray
    decoder_cosine_to_row0: np.ndarray
    prosody_cosine_to_row0: np.ndarray


def _cosine_rows(rows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(reference)), 1e-12)
    return rows @ reference / np.maximum(norms, 1e-12)


def row_trajectory(pack: np.ndarray) -> RowTrajectory:
    """Return the row trajectory of one ``[510, 256]`` pack: how its style changes with utterance length.

    Example:
        >>> import explorer
        >>> trajectory = explorer.row_trajectory(explorer.load_voices()["af_heart"].pack)
        >>> trajectory.decoder_norm.shape, round(float(trajectory.cosine_to_row0[0]), 3)
        ((510,), 1.0)
    """
    rows = np.asarray(pack, dtype=np.float64)
    decoder, prosody = rows[:, LAYERS["decoder"]], rows[:, LAYERS["prosody"]]
    return RowTrajectory(
        decoder_norm=np.linalg.norm(decoder, axis=1),
        prosody_norm=np.linalg.norm(prosody, axis=1),
        cosine_to_row0=_cosine_rows(rows, rows[0]),
        decoder_cosine_to_row0=_cosine_rows(decoder, decoder[0]),
        prosody_cosine_to_row0=_cosine_rows(prosody, prosody[0]),
    )


@dataclass(frozen=True)
class VoiceAnalysis:
    """Every analysis of a voice set on one kind of summary vector: what ``analyze`` writes and the app shows.

    The results are kept as typed objects (``pca``, ``centroids``, ``correlation``...) and read as DataFrames
    through ``explained_variance``, ``centroid_distances``, ``top_pairs`` and ``top_dimensions``.

    Example:
        >>> import explorer
        >>> result = explorer.analyze(explorer.load_voices(), tsne_layers=())
        >>> result.summary
        'mean over the 510 rows of each voicepack'
        >>> result.explained_variance().query("layer == 'decoder'").ratio.head(2).round(2).tolist()
        [0.16, 0.12]
        >>> result.centroid_distances("gender")[["key", "members"]].to_dict("records")
        [{'key': 'male', 'members': 25}, {'key': 'female', 'members': 29}]
        >>> result.top_dimensions().head(2)[["dim", "layer"]].values.tolist()
        [[202, 'prosody'], [180, 'prosody']]
    """

    names: list[str]
    row: int | None
    vectors: np.ndarray = field(repr=False)
    pca: dict[str, PCAResult] = field(repr=False)
    centroids: CentroidAnalysis = field(repr=False)
    correlation: InterlayerCorrelation = field(repr=False)
    variance: DimensionVariance = field(repr=False)
    tsne: dict[str, np.ndarray] = field(repr=False)
    distributions: dict[str, ValueDistribution] = field(repr=False)

    @property
    def summary(self) -> str:
        """Which summary vector these results were computed on."""
        return summary_label(self.row)

    def explained_variance(self) -> pd.DataFrame:
        """Return one row per layer and component: ``layer, component`` (from 1), ``ratio``, ``cumulative``."""
        return pd.DataFrame(
            [
                {"layer": layer, "component": i + 1, "ratio": float(r), "cumulative": float(c)}
                for layer, result in self.pca.items()
                for i, (r, c) in enumerate(zip(result.explained_variance_ratio, result.cumulative))
            ]
        )

    def centroid_distances(self, kind: str = "group") -> pd.DataFrame:
        """Return one row per centroid of ``kind``: members, distance from the overall centroid (all dims,
        decoder, prosody) and within-group variance, farthest first."""
        if kind not in self.centroids.by_kind:
            raise AnalysisError(f"Unknown centroid kind '{str(kind)[:40]}': use {', '.join(CENTROID_KINDS)}.")
        rows = [
            {
                "key": c.key,
                "members": len(c.members),
                "distance_from_overall": c.distance_from_overall,
                "decoder_distance": c.decoder_distance,
                "prosody_distance": c.prosody_distance,
                "within_variance": c.within_variance,
            }
            for c in self.centroids.by_kind[kind].values()
        ]
        return pd.DataFrame(rows).sort_values("distance_from_overall", ascending=False, ignore_index=True)

    def top_pairs(self) -> pd.DataFrame:
        """Return the most correlated decoder/prosody dim pairs: ``decoder_dim, prosody_dim, r``."""
        return pd.DataFrame(self.correlation.top_pairs, columns=["decoder_dim", "prosody_dim", "r"])

    def top_dimensions(self) -> pd.DataFrame:
        """Return the most variable dims across voices: ``dim, layer, variance``."""
        return pd.DataFrame(self.variance.top, columns=["dim", "layer", "variance"])

    def to_json(self) -> dict:
        """Return ``analysis.json``'s content (keys documented in the README)."""
        return {
            "n_voices": len(self.names),
            "summary": self.summary,
            "row": self.row,
            "voices": self.names,
            "pca": {layer: result.to_json() for layer, result in self.pca.items()},
            "interlayer_correlation": self.correlation.to_json(),
            "dimension_variance": self.variance.to_json(),
            "centroids": self.centroids.to_json(),
            "tsne": {
                layer: {name: [round(float(x), 4), round(float(y), 4)] for name, (x, y) in zip(self.names, coords)}
                for layer, coords in self.tsne.items()
            },
            "distributions": {layer: d.to_json() for layer, d in self.distributions.items()},
        }


def analyze(voices: VoiceSet, row: int | None = None, tsne_layers: tuple[str, ...] = tuple(LAYERS)) -> VoiceAnalysis:
    """Return every analysis of ``voices`` on the mean over rows (``row=None``) or on one row.

    Args:
        voices: at least three voices.
        row: ``None`` for the mean over each pack's rows, else the row 0-509 to analyse.
        tsne_layers: layers to embed with t-SNE (the slowest step; pass ``()`` to skip it).

    Raises:
        AnalysisError: fewer than three voices, or ``row`` outside 0-509.

    Example:
        >>> import explorer
        >>> result = explorer.analyze(explorer.load_voices(), row=20, tsne_layers=("decoder",))
        >>> result.summary
        'row 20 of each voicepack (the style Kokoro uses for 21 phonemes)'
        >>> sorted(result.pca), result.tsne["decoder"].shape, result.top_pairs().shape
        (['both', 'decoder', 'prosody'], (54, 2), (20, 3))
    """
    _require_voices(len(voices))
    vectors = summary_vectors(voices.packs(), row)
    return VoiceAnalysis(
        names=voices.names,
        row=row,
        vectors=vectors,
        pca={layer: pca(vectors, layer) for layer in LAYERS},
        centroids=centroids(voices, vectors),
        correlation=interlayer_correlation(vectors),
        variance=dimension_variance(vectors),
        tsne={layer: tsne(vectors, layer) for layer in tsne_layers},
        distributions=value_distributions(vectors),
    )
