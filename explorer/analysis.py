"""Voice-embedding analysis: PCA per layer, centroids, inter-layer correlation, dimension variance, t-SNE,
value distributions and row trajectories.

Every analysis works on one summary vector per voice: by default the mean over a pack's 510 rows, or one chosen row
(Kokoro styles an utterance of ``n`` phonemes with row ``n - 1``). Results are deterministic: PCA component signs are
fixed so the largest loading is positive, and t-SNE is seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.errors import AnalysisError, shown
from explorer.voices import HALF, PACK_ROWS, STYLE_DIM, VoiceSet

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CENTROID_KINDS",
    "LAYERS",
    "LAYER_MEANING",
    "LOADING_COMPONENTS",
    "LOADING_DIMS",
    "LOW_VARIANCE_FRACTION",
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
    "check_perplexity",
    "default_perplexity",
    "dimension_variance",
    "interlayer_correlation",
    "layer_slice",
    "nearest_voices",
    "pca",
    "perplexity_bounds",
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
LOW_VARIANCE_FRACTION = 0.25
"""A dim has low variance when its variance across voices is below this fraction of the mean per-dim variance (the
one rule behind ``DimensionVariance.low_variance`` and the seed check "many dimensions have low variance")."""
LOADING_COMPONENTS = 5
"""How many components per layer ``analysis.json`` lists the driving dims of (``PCAResult.to_json``)."""
LOADING_DIMS = 10
"""How many dims per component ``analysis.json`` lists, largest absolute loading first."""
MAX_DEFAULT_PERPLEXITY = 30
"""The default t-SNE perplexity grows with the voice count up to this (scikit-learn's own default)."""



def _table(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """Return ``pandas.DataFrame(*args, **kwargs)``, importing pandas only when a table is asked for: 0.2 s that a
    command rendering one voice never needs (recipes build on this module)."""
    import pandas as pd

    return pd.DataFrame(*args, **kwargs)

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
    ``components[i]`` is component ``i + 1`` as a unit vector over the layer's dims: its weights are the loadings
    that ``top_loadings`` ranks ("which dims drive this component").

    Example:
        >>> import explorer
        >>> decoder = explorer.pca(explorer.summary_vectors(explorer.load_voices().packs()), "decoder")
        >>> [(dim, round(weight, 3)) for dim, weight in decoder.top_loadings(1, top=2)]
        [(127, 0.213), (8, -0.207)]
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

    @property
    def dims(self) -> np.ndarray:
        """The style dims (0-255) of this layer, in the order of the components' weights."""
        return np.arange(STYLE_DIM)[layer_slice(self.layer)]

    def top_loadings(self, component: int, top: int = LOADING_DIMS) -> list[tuple[int, float]]:
        """Return the dims that drive ``component`` (1 = PC1): ``(style dim, loading)``, largest ``|loading|`` first.

        A loading is the component's weight on a dim (the component is a unit vector, so the squared loadings of all
        the layer's dims sum to 1). A positive loading means voices with more of that dim sit on the component's
        positive side. Dims are numbered 0-255 on every layer (prosody dims are 128-255), as the Lab's dim edits
        number them. Ties keep dim order.

        Args:
            component: 1 to the number of components kept.
            top: how many dims to return (at most the layer's dims).

        Raises:
            AnalysisError: a component that does not exist, or ``top`` below 1.
        """
        count = len(self.components)
        whole = (int, np.integer)
        if isinstance(component, bool) or not isinstance(component, whole) or not 1 <= component <= count:
            named = component if isinstance(component, whole) else shown(component, 20)
            raise AnalysisError(f"Component {named} does not exist: the {self.layer} PCA has 1-{count}.")
        if isinstance(top, bool) or not isinstance(top, whole) or top < 1:
            named = top if isinstance(top, whole) else shown(top, 20)
            raise AnalysisError(f"The number of dims to list must be a whole number from 1; got {named}.")
        weights = self.components[component - 1]
        order = np.argsort(-np.abs(weights), kind="stable")[:top]
        dims = self.dims
        return [(int(dims[i]), float(weights[i])) for i in order]

    def to_json(self) -> dict:
        """Return the JSON-ready figures (no per-voice projections).

        ``top_loadings`` maps ``PC1``... (the first ``LOADING_COMPONENTS`` components, fewer when fewer were kept) to
        their ``LOADING_DIMS`` driving dims: ``{"dim": style dim 0-255, "loading": weight}``, largest ``|loading|``
        first.
        """
        return {
            "layer": self.layer,
            "dims": LAYER_MEANING[self.layer],
            "explained_variance_ratio": self.explained_variance_ratio.round(6).tolist(),
            "cumulative": self.cumulative.round(6).tolist(),
            "components_needed": {f"{int(p * 100)}%": n for p, n in self.components_needed.items()},
            "pc1_share": round(float(self.explained_variance_ratio[0]), 6),
            "first10_share": round(float(self.cumulative[min(9, len(self.cumulative) - 1)]), 6),
            "top_loadings": {
                f"PC{component}": [
                    {"dim": dim, "loading": round(weight, 6)} for dim, weight in self.top_loadings(component)
                ]
                for component in range(1, min(LOADING_COMPONENTS, len(self.components)) + 1)
            },
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
    """Variance of each of the 256 dims across voices, the most variable dims, how much of the total variance the
    top 10 and top 20 dims hold, and the low-variance dims.

    ``low_variance`` lists, in dim order, the dims whose variance is below ``low_variance_threshold``:
    ``LOW_VARIANCE_FRACTION`` of the mean per-dim variance (none when the voices are identical).
    """

    variance: np.ndarray
    top: list[tuple[int, str, float]]
    top10_share: float
    top20_share: float
    layer_share: dict[str, float]
    low_variance_threshold: float
    low_variance: list[int]

    def to_json(self) -> dict:
        """Return the JSON-ready figures; ``low_variance`` holds the rule (``fraction`` of the mean per-dim variance,
        ``threshold``), ``n_dims``, the count ``by_layer`` and the ``dims`` themselves."""
        low = np.asarray(self.low_variance, dtype=int)
        return {
            "per_dim": self.variance.round(8).tolist(),
            "top": [{"dim": d, "layer": layer, "variance": round(v, 8)} for d, layer, v in self.top],
            "top10_share": round(self.top10_share, 6),
            "top20_share": round(self.top20_share, 6),
            "layer_share": {k: round(v, 6) for k, v in self.layer_share.items()},
            "low_variance": {
                "fraction": LOW_VARIANCE_FRACTION,
                "threshold": round(self.low_variance_threshold, 10),
                "n_dims": len(self.low_variance),
                "by_layer": {"decoder": int((low < HALF).sum()), "prosody": int((low >= HALF).sum())},
                "dims": list(self.low_variance),
            },
        }


def dimension_variance(vectors: np.ndarray, top: int = 20) -> DimensionVariance:
    """Return the per-dim variance of ``vectors`` ``[N, 256]`` across voices, the ``top`` most variable dims, and the
    low-variance dims (below ``LOW_VARIANCE_FRACTION`` of the mean per-dim variance).

    On the bundled voices no dim is that flat: the least variable, dim 135, still has 0.27 of the mean per-dim
    variance (pinned by tests/test_analysis.py).

    Example:
        >>> import explorer
        >>> result = explorer.dimension_variance(explorer.summary_vectors(explorer.load_voices().packs()), top=3)
        >>> result.top[0][:2], {layer: round(share, 2) for layer, share in result.layer_share.items()}
        ((202, 'prosody'), {'decoder': 0.55, 'prosody': 0.45})
        >>> result.low_variance, round(float(result.low_variance_threshold / result.variance.mean()), 2)
        ([], 0.25)
    """
    _require_voices(len(vectors))
    variance = np.asarray(vectors, dtype=np.float64).var(axis=0)
    total = max(float(variance.sum()), 1e-30)
    order = np.argsort(-variance, kind="stable")
    threshold = LOW_VARIANCE_FRACTION * float(variance.mean())
    return DimensionVariance(
        variance=variance,
        top=[(int(d), "decoder" if d < HALF else "prosody", float(variance[d])) for d in order[:top]],
        top10_share=float(variance[order[:10]].sum() / total),
        top20_share=float(variance[order[:20]].sum() / total),
        layer_share={name: float(variance[LAYERS[name]].sum() / total) for name in ("decoder", "prosody")},
        low_variance_threshold=threshold,
        low_variance=[int(d) for d in np.nonzero(variance < threshold)[0]],
    )


def default_perplexity(count: int) -> float:
    """Return the t-SNE perplexity used for ``count`` voices when none is chosen: ``(count - 1) / 3`` rounded to a
    whole number, kept within 1-30.

    Example:
        >>> from explorer.analysis import default_perplexity
        >>> default_perplexity(54), default_perplexity(20), default_perplexity(3)
        (18.0, 6.0, 1.0)
    """
    return float(min(MAX_DEFAULT_PERPLEXITY, max(1, math.floor((count - 1) / 3 + 0.5))))


def perplexity_bounds(count: int) -> tuple[float, float]:
    """Return the lowest and highest t-SNE perplexity allowed for ``count`` voices: 1 and ``count - 1``.

    Perplexity is roughly how many neighbours each voice keeps close; scikit-learn needs it below the number of
    voices, and below 1 a voice has no neighbour at all. The CLI, the API and the Map page all check against these.

    Example:
        >>> from explorer.analysis import perplexity_bounds
        >>> perplexity_bounds(54)
        (1.0, 53.0)
    """
    return 1.0, float(max(count - 1, 1))


def check_perplexity(perplexity: float | None, count: int) -> float:
    """Return the t-SNE perplexity to use for ``count`` voices: ``default_perplexity(count)`` for None, else
    ``perplexity`` as a float once it is known to lie within ``perplexity_bounds(count)``.

    Raises:
        AnalysisError: a perplexity that is not a number, or one outside the bounds.

    Example:
        >>> from explorer.analysis import check_perplexity
        >>> check_perplexity(None, 54), check_perplexity(5, 54)
        (18.0, 5.0)
        >>> check_perplexity(60, 54)
        Traceback (most recent call last):
        ...
        explorer.errors.AnalysisError: Perplexity must be between 1 and 53 for 54 voices; got 60.
    """
    if perplexity is None:
        return default_perplexity(count)
    try:
        value = math.nan if isinstance(perplexity, bool) else float(perplexity)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        raise AnalysisError(f"Perplexity must be a number; got {shown(perplexity, 40)}.")
    low, high = perplexity_bounds(count)
    if not low <= value <= high:
        raise AnalysisError(f"Perplexity must be between {low:g} and {high:g} for {count} voices; got {value:g}.")
    return value


def tsne(vectors: np.ndarray, layer: str = "both", seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """Return seeded 2-D t-SNE coordinates ``[N, 2]`` of ``layer``.

    The perplexity defaults to ``default_perplexity(N)`` (18 for the 54 bundled voices); a chosen one must lie within
    ``perplexity_bounds(N)``, 1 to ``N - 1``. Low values keep only each voice's nearest neighbours together (many
    small clusters); high values weigh the overall layout more.

    The layer is shifted and scaled to span 0-1 before scikit-learn sees it. t-SNE does not depend on scale, but
    scikit-learn's Barnes-Hut code computes in float32: voices that differ by less than about 1e-19, or values near
    float32's limit, become NaN there and crash the whole process, not just the call. Voices identical on the layer
    have nothing to separate: they all sit at the origin.

    Raises:
        AnalysisError: fewer than 3 voices, an unknown layer, a perplexity that is not a number or is outside
            ``perplexity_bounds``, or values that are not finite.

    Example:
        >>> import explorer
        >>> vectors = explorer.summary_vectors(explorer.load_voices().packs())
        >>> explorer.tsne(vectors, "decoder").shape, explorer.tsne(vectors, "prosody", perplexity=5).shape
        ((54, 2), (54, 2))
    """
    from sklearn.manifold import TSNE

    _require_voices(len(vectors))
    data = np.asarray(vectors, dtype=np.float64)[:, layer_slice(layer)]
    count = len(data)
    chosen = check_perplexity(perplexity, count)
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
    through ``explained_variance``, ``loadings``, ``centroid_distances``, ``top_pairs``, ``top_dimensions`` and
    ``low_variance_dimensions``. ``tsne_perplexity`` is the perplexity the t-SNE maps were (or would be) made with.

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
        >>> result.loadings("decoder", 1, top=3).dim.tolist()
        [127, 8, 80]
        >>> len(result.low_variance_dimensions()), result.tsne_perplexity
        (0, 18.0)
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
    tsne_perplexity: float

    @property
    def summary(self) -> str:
        """Which summary vector these results were computed on."""
        return summary_label(self.row)

    def explained_variance(self) -> pd.DataFrame:
        """Return one row per layer and component: ``layer, component`` (from 1), ``ratio``, ``cumulative``."""
        return _table(
            [
                {"layer": layer, "component": i + 1, "ratio": float(r), "cumulative": float(c)}
                for layer, result in self.pca.items()
                for i, (r, c) in enumerate(zip(result.explained_variance_ratio, result.cumulative))
            ]
        )

    def loadings(self, layer: str, component: int, top: int = LOADING_DIMS) -> pd.DataFrame:
        """Return the dims that drive ``component`` (1 = PC1) of ``layer``'s PCA, largest ``|loading|`` first:
        ``dim`` (0-255), ``layer`` (the half it belongs to), ``loading`` (see ``PCAResult.top_loadings``)."""
        layer_slice(layer)  # an unknown layer is an AnalysisError, not a KeyError
        rows = self.pca[layer].top_loadings(component, top)
        return _table(
            [{"dim": d, "layer": "decoder" if d < HALF else "prosody", "loading": w} for d, w in rows],
            columns=["dim", "layer", "loading"],
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
        return _table(rows).sort_values("distance_from_overall", ascending=False, ignore_index=True)

    def top_pairs(self) -> pd.DataFrame:
        """Return the most correlated decoder/prosody dim pairs: ``decoder_dim, prosody_dim, r``."""
        return _table(self.correlation.top_pairs, columns=["decoder_dim", "prosody_dim", "r"])

    def top_dimensions(self) -> pd.DataFrame:
        """Return the most variable dims across voices: ``dim, layer, variance``."""
        return _table(self.variance.top, columns=["dim", "layer", "variance"])

    def with_tsne(self, layer: str, perplexity: float | None = None) -> VoiceAnalysis:
        """Return this analysis holding only the t-SNE of ``layer`` at ``perplexity`` (None: ``default_perplexity``),
        with ``tsne_perplexity`` set to it: one embedding, nothing else computed again.

        Raises:
            AnalysisError: an unknown layer, or a perplexity outside ``perplexity_bounds`` for these voices.
        """
        used = check_perplexity(perplexity, len(self.names))
        return replace(self, tsne={layer: tsne(self.vectors, layer, perplexity=used)}, tsne_perplexity=used)

    def low_variance_dimensions(self) -> pd.DataFrame:
        """Return the low-variance dims (``DimensionVariance.low_variance``) in dim order: ``dim, layer, variance``."""
        variance = self.variance.variance
        return _table(
            [(d, "decoder" if d < HALF else "prosody", float(variance[d])) for d in self.variance.low_variance],
            columns=["dim", "layer", "variance"],
        )

    def to_json(self) -> dict:
        """Return ``analysis.json``'s content (keys documented in the README)."""
        return {
            "n_voices": len(self.names),
            "summary": self.summary,
            "row": self.row,
            "voices": self.names,
            "tsne_perplexity": self.tsne_perplexity,
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


def analyze(
    voices: VoiceSet,
    row: int | None = None,
    tsne_layers: tuple[str, ...] = tuple(LAYERS),
    tsne_perplexity: float | None = None,
) -> VoiceAnalysis:
    """Return every analysis of ``voices`` on the mean over rows (``row=None``) or on one row.

    Args:
        voices: at least three voices.
        row: ``None`` for the mean over each pack's rows, else the row 0-509 to analyse.
        tsne_layers: layers to embed with t-SNE (the slowest step; pass ``()`` to skip it).
        tsne_perplexity: the t-SNE perplexity, 1 to the number of voices - 1 (``perplexity_bounds``); ``None`` for
            ``default_perplexity``. Checked even when no layer is embedded; the value used is ``tsne_perplexity``
            of the result.

    Raises:
        AnalysisError: fewer than three voices, ``row`` outside 0-509, or a perplexity that is not a number within
            the bounds.

    Example:
        >>> import explorer
        >>> result = explorer.analyze(explorer.load_voices(), row=20, tsne_layers=("decoder",))
        >>> result.summary
        'row 20 of each voicepack (the style Kokoro uses for 21 phonemes)'
        >>> sorted(result.pca), result.tsne["decoder"].shape, result.top_pairs().shape
        (['both', 'decoder', 'prosody'], (54, 2), (20, 3))
    """
    _require_voices(len(voices))
    perplexity = check_perplexity(tsne_perplexity, len(voices))
    vectors = summary_vectors(voices.packs(), row)
    return VoiceAnalysis(
        names=voices.names,
        row=row,
        vectors=vectors,
        pca={layer: pca(vectors, layer) for layer in LAYERS},
        centroids=centroids(voices, vectors),
        correlation=interlayer_correlation(vectors),
        variance=dimension_variance(vectors),
        tsne={layer: tsne(vectors, layer, perplexity=perplexity) for layer in tsne_layers},
        distributions=value_distributions(vectors),
        tsne_perplexity=perplexity,
    )
