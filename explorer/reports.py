"""The ``analyze`` output folder: a voice analysis as JSON, text, NumPy arrays and PNG charts, written all or nothing.

The file set is the seed analysis suite's (``analysis_report.txt``, ``centroids.npz``, ``centroid_stats.json``,
``top_variable_dimensions.json``, six charts, and the architecture report when a model summary is given) plus
``analysis.json`` with every figure. ``analysis.json`` and the text report also hold ``seed_expectations``: the seed
README's "Expected Results" for voices checked against what was measured here, each with the criterion used.

Example:
    >>> import explorer
    >>> voices = explorer.load_voices()
    >>> result = explorer.analyze(voices, tsne_layers=("both",))      # the report charts t-SNE of all dims
    >>> written = explorer.reports.write_analysis_reports(voices, result, "analysis")
    >>> len(written), written[0].name
    (11, 'analysis.json')
    >>> checks = explorer.reports.seed_expectations(voices, result)["checks"]
    >>> all({"claim", "criterion", "verdict"} <= set(check) for check in checks)
    True
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from explorer import charts
from explorer.analysis import (
    LAYER_MEANING,
    LAYERS,
    LOW_VARIANCE_FRACTION,
    PCAResult,
    VoiceAnalysis,
    default_perplexity,
    interlayer_correlation,
    perplexity_bounds,
)
from explorer.errors import AnalysisError
from explorer.voices import HALF, STYLE_DIM, VoiceSet

__all__ = ["ArchitectureReport", "seed_expectations", "write_analysis_reports"]

SEED_SOURCE = "the 'Expected Results' of the seed analysis suite's README (kokoro-experiments, 63 voices)"
CHANCE_PERMUTATIONS = 20
"""Shuffles of the prosody half across voices used to measure the correlations that arise by chance."""
CLEAR_CLUSTERING = 0.5
"""Silhouette above which clusters count as clear (Kaufman & Rousseeuw: 0.51-0.70 reasonable, above 0.70 strong)."""
LARGE_CORRELATION = 0.5
"""|r| from which a correlation is large (Cohen); "low to moderate" means a mean |r| below it."""
REPORT_LOADINGS = (3, 5)
"""The text report lists, per layer, the driving dims of this many components, this many dims each."""


class ArchitectureReport(Protocol):
    """What the reports need of a model summary (``explorer.architecture.ArchitectureSummary`` has it)."""

    def to_json(self) -> dict:
        """Return the JSON-ready summary."""

    def report_text(self) -> str:
        """Return the human-readable report."""


def _chance_correlations(vectors: np.ndarray, permutations: int, seed: int) -> dict[str, float]:
    """Return the 95th percentile of mean |r|, max |r| and the count above 0.7 when the prosody half is shuffled
    across voices, i.e. what the correlation figures look like for these many voices with no real coupling."""
    rng = np.random.default_rng(seed)
    figures = []
    for _ in range(permutations):
        shuffled = vectors.copy()
        shuffled[:, HALF:] = vectors[rng.permutation(len(vectors)), HALF:]
        result = interlayer_correlation(shuffled, top=1)
        figures.append((result.mean_abs, result.max_abs, result.n_above_0_7))
    table = np.asarray(figures, dtype=np.float64)
    return {
        "permutations": permutations,
        "mean_abs_p95": round(float(np.percentile(table[:, 0], 95)), 6),
        "max_abs_p95": round(float(np.percentile(table[:, 1], 95)), 6),
        "n_above_0_7_p95": round(float(np.percentile(table[:, 2], 95)), 2),
    }


def _silhouette(points: np.ndarray, labels: list[str]) -> float | None:
    from sklearn.metrics import silhouette_score

    if not 2 <= len(set(labels)) <= len(labels) - 1:
        return None
    return float(silhouette_score(points, labels))


@dataclass(frozen=True)
class _Finding:
    """One check's ``measured`` figures, ``verdict`` and ``holds``, as ``seed_expectations`` reports them."""

    measured: dict[str, Any]
    verdict: str
    holds: bool | None


def _judged(measured: dict[str, Any], holds: bool | None) -> _Finding:
    """Return the finding of a yes/no check; ``holds`` None means it could not be measured."""
    return _Finding(measured, "not measurable" if holds is None else "holds" if holds else "does not hold", holds)


def _in_range(measured: dict[str, Any], value: float, low: float, high: float) -> _Finding:
    """Return the finding of a range check: ``value`` below, within or above ``[low, high]``."""
    if value < low:
        return _Finding(measured, "below", False)
    if value > high:
        return _Finding(measured, "above", False)
    return _Finding(measured, "within", True)


@dataclass(frozen=True)
class _Evidence:
    """What the checks of the whole voice set measure, each shared figure computed once: the analysis, each voice's
    language (the clusters the seed expected), the chance-level correlations and each dim's variance across voices."""

    analysis: VoiceAnalysis
    languages: list[str]
    chance: dict[str, float]
    variance: np.ndarray


_Subject = TypeVar("_Subject")


@dataclass(frozen=True)
class _Check(Generic[_Subject]):
    """One expected result of the seed README: ``claim`` quotes it, ``criterion`` says how it is judged here (for a
    per-layer check, a template with ``{layer}`` and ``{meaning}``) and ``measure`` judges it on its subject: a layer's
    PCA, or the ``_Evidence`` of the whole voice set."""

    id: str
    claim: str
    criterion: str
    measure: Callable[[_Subject], _Finding]

    def report(self, subject: _Subject, layer: str | None = None) -> dict[str, Any]:
        """Return the check as ``seed_expectations`` lists it; with a ``layer``, the id ends in it, a "layer" key
        follows the id and the criterion names it."""
        if layer is None:
            head = {"id": self.id, "claim": self.claim, "criterion": self.criterion}
        else:
            criterion = self.criterion.format(layer=layer, meaning=LAYER_MEANING[layer])
            head = {"id": f"{self.id}_{layer}", "layer": layer, "claim": self.claim, "criterion": criterion}
        finding = self.measure(subject)
        return head | {"measured": finding.measured, "verdict": finding.verdict, "holds": finding.holds}


def _pc1_share(pca: PCAResult) -> _Finding:
    pc1 = float(pca.explained_variance_ratio[0])
    return _in_range({"pc1_share": round(pc1, 6)}, pc1, 0.15, 0.30)


def _first10_share(pca: PCAResult) -> _Finding:
    count = len(pca.cumulative)
    first10 = float(pca.cumulative[min(9, count - 1)])
    measured = {"first10_share": round(first10, 6), "n_components": count}
    return _judged(measured, None) if count <= 10 else _in_range(measured, first10, 0.70, 0.85)


def _language_clustering(evidence: _Evidence) -> _Finding:
    both = evidence.analysis.pca["both"].projections
    plane = _silhouette(both[:, :2], evidence.languages) if both.shape[1] >= 2 else None
    full = _silhouette(evidence.analysis.vectors, evidence.languages)
    measured = {
        "silhouette_pc1_pc2": None if plane is None else round(plane, 6),
        "silhouette_all_256_dims": None if full is None else round(full, 6),
        "n_languages": len(set(evidence.languages)),
    }
    return _judged(measured, None if plane is None else plane > CLEAR_CLUSTERING)


def _interlayer_mean(evidence: _Evidence) -> _Finding:
    correlation = evidence.analysis.correlation
    measured = {"mean_abs": round(correlation.mean_abs, 6), "chance": evidence.chance}
    return _judged(measured, correlation.mean_abs < LARGE_CORRELATION)


def _interlayer_high_pairs(evidence: _Evidence) -> _Finding:
    correlation = evidence.analysis.correlation
    measured = {
        "n_above_0_7": correlation.n_above_0_7,
        "max_abs": round(correlation.max_abs, 6),
        "beyond_chance": bool(correlation.max_abs > evidence.chance["max_abs_p95"]),
        "chance": evidence.chance,
    }
    return _judged(measured, correlation.n_above_0_7 > 0)


def _top_dims_share(evidence: _Evidence) -> _Finding:
    variance = evidence.variance
    total = max(float(variance.sum()), 1e-30)
    ordered = np.sort(variance)[::-1]
    dims_for_half = int(np.searchsorted(np.cumsum(ordered) / total, 0.5 - 1e-12) + 1)
    within_layer = {}
    for layer in ("decoder", "prosody"):
        values = np.sort(variance[LAYERS[layer]])[::-1]
        within_layer[layer] = round(float(values[:20].sum() / max(values.sum(), 1e-30)), 6)
    shares = evidence.analysis.variance
    measured = {
        "top10_share": round(shares.top10_share, 6),
        "top20_share": round(shares.top20_share, 6),
        "dims_for_half_of_variance": dims_for_half,
        "top20_share_within_layer": within_layer,
    }
    return _judged(measured, shares.top20_share > 0.5)


def _low_variance_dims(evidence: _Evidence) -> _Finding:
    low = len(evidence.analysis.variance.low_variance)  # the one rule: analysis.dimension_variance
    return _judged({"n_low_variance_dims": low}, low >= STYLE_DIM // 4)


_PCA_CHECKS: tuple[_Check[PCAResult], ...] = (
    _Check(
        "pca_pc1_share",
        "First principal component typically explains 15-30% of variance",
        "PC1 share of {layer} ({meaning}) in [0.15, 0.30]",
        _pc1_share,
    ),
    _Check(
        "pca_first10_share",
        "First 10 components typically explain 70-85% of variance",
        "cumulative share of the first 10 components of {layer} in [0.70, 0.85] "
        "(needs more than 10 components, i.e. more than 10 voices)",
        _first10_share,
    ),
)
"""Checked for each layer, in the order of ``LAYERS``."""

_VOICE_SET_CHECKS: tuple[_Check[_Evidence], ...] = (
    _Check(
        "pca_language_clustering",
        "Clear clustering by language/accent in PCA space",
        f"silhouette of the language labels on PC1-PC2 of both layers above {CLEAR_CLUSTERING} "
        "(Kaufman & Rousseeuw: 0.25 or less is no substantial structure, 0.51-0.70 reasonable, above 0.70 strong)",
        _language_clustering,
    ),
    _Check(
        "interlayer_low_to_moderate",
        "Generally low to moderate correlation between layers",
        f"mean |r| over the 128x128 decoder/prosody pairs below {LARGE_CORRELATION} "
        "(Cohen: |r| of 0.5 or more is large)",
        _interlayer_mean,
    ),
    _Check(
        "interlayer_some_high_pairs",
        "Some dimension pairs show high correlation (>0.7)",
        "at least one decoder/prosody pair with |r| > 0.7; compare max |r| with the 95th "
        "percentile reached by chance (prosody half shuffled across voices)",
        _interlayer_high_pairs,
    ),
    _Check(
        "top_dims_capture_most_variation",
        "Top 10-20 dimensions capture most voice variation",
        "the 20 most variable of the 256 dims hold more than half of the total variance",
        _top_dims_share,
    ),
    _Check(
        "many_low_variance_dims",
        "Many dimensions have low variance",
        f"at least a quarter of the dims ({STYLE_DIM // 4}) have less than {LOW_VARIANCE_FRACTION} "
        "of the mean per-dim variance",
        _low_variance_dims,
    ),
)
"""Checked once on the whole voice set, after the per-layer checks."""


def seed_expectations(
    voices: VoiceSet, analysis: VoiceAnalysis, permutations: int = CHANCE_PERMUTATIONS, seed: int = 0
) -> dict[str, Any]:
    """Return the seed README's expected voice-analysis results compared with what ``analysis`` measured.

    Every check has, in this order: ``id``, ``layer`` (the per-layer PCA checks only), the seed's ``claim``, the
    ``criterion`` applied here, the ``measured`` figures, a ``verdict`` ("within"/"below"/"above" for ranges,
    "holds"/"does not hold", or "not measurable") and ``holds`` (None when not measurable).

    Args:
        voices: the analysed voices (their languages are the clusters the seed expected).
        analysis: the analysis of ``voices``.
        permutations: shuffles used to measure chance-level inter-layer correlation.
        seed: seed of those shuffles.

    Returns:
        ``{"source", "summary", "n_voices", "n_checks", "n_holding", "checks": [...]}``.
    """
    evidence = _Evidence(
        analysis=analysis,
        languages=list(voices.table()["language"]),
        chance=_chance_correlations(analysis.vectors, permutations, seed),
        variance=np.asarray(analysis.variance.variance, dtype=np.float64),
    )
    checks = [check.report(analysis.pca[layer], layer) for layer in LAYERS for check in _PCA_CHECKS]
    checks += [check.report(evidence) for check in _VOICE_SET_CHECKS]
    return {
        "source": SEED_SOURCE,
        "summary": analysis.summary,
        "n_voices": len(analysis.names),
        "n_checks": len(checks),
        "n_holding": sum(1 for check in checks if check["holds"]),
        "checks": checks,
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _figures(measured: dict[str, Any], prefix: str = "") -> list[str]:
    figures = []
    for key, value in measured.items():
        if isinstance(value, dict):
            figures += _figures(value, f"{prefix}{key}.")
        elif isinstance(value, float):
            figures.append(f"{prefix}{key} {value:.3f}")
        else:
            figures.append(f"{prefix}{key} {value}")
    return figures


def _check_line(check: dict[str, Any]) -> str:
    scope = f" ({check['layer']})" if "layer" in check else ""
    return (
        f"  [{check['verdict']}] {check['claim']}{scope}\n"
        f"      measured: {', '.join(_figures(check['measured']))}\n"
        f"      criterion: {check['criterion']}"
    )


def _loading_lines(analysis: VoiceAnalysis) -> list[str]:
    """Return the report's "which dims drive each component" lines: per layer, the first components' top dims."""
    components, dims = REPORT_LOADINGS
    lines = [f"  dims that drive each component (style dim and loading, the {dims} largest |loading| first):"]
    for layer, result in analysis.pca.items():
        for component in range(1, min(components, len(result.components)) + 1):
            top = ", ".join(f"{dim} {weight:+.3f}" for dim, weight in result.top_loadings(component, dims))
            lines.append(f"    {layer:<8} PC{component}: {top}")
    return lines


def _low_variance_lines(analysis: VoiceAnalysis) -> list[str]:
    """Return the report's low-variance lines: the rule, the count per half and the dims, wrapped."""
    variance = analysis.variance
    low = variance.low_variance
    decoder = sum(1 for dim in low if dim < HALF)
    lines = [
        (f"  low-variance dims (variance below {LOW_VARIANCE_FRACTION:g} of the mean per-dim variance, i.e. below "
         f"{variance.low_variance_threshold:.3g}): {len(low)} of {STYLE_DIM} (decoder {decoder}, prosody "
         f"{len(low) - decoder})")
    ]
    if low:
        lines += textwrap.wrap(", ".join(map(str, low)), width=112, initial_indent="    ", subsequent_indent="    ")
    else:
        least = int(np.argmin(variance.variance))
        mean = max(float(variance.variance.mean()), 1e-30)
        ratio = variance.variance[least] / mean
        lines.append(f"    none; the least variable is dim {least}, at {ratio:.2f} of the mean")
    return lines


def _tsne_line(analysis: VoiceAnalysis) -> str:
    """Return the report's t-SNE line: the perplexity used, whether it is the default, and the layers embedded."""
    count = len(analysis.names)
    default = default_perplexity(count)
    chosen = "the default" if analysis.tsne_perplexity == default else f"chosen; the default is {default:g}"
    low, high = perplexity_bounds(count)
    layers = ", ".join(analysis.tsne) or "none"
    return (f"t-SNE: perplexity {analysis.tsne_perplexity:g} ({chosen} for {count} voices, allowed {low:g}-{high:g}), "
            f"seed 0; layers embedded: {layers}")


def _analysis_report_text(voices: VoiceSet, analysis: VoiceAnalysis, expectations: dict[str, Any]) -> str:
    """Return ``analysis_report.txt``: the figures a person reads first, the summary vector, and the comparison with
    the seed's expected results."""
    table = voices.table()
    groups = ", ".join(f"{group} {count}" for group, count in table["group"].value_counts(sort=False).items())
    lines = [
        "Kokoro voice analysis",
        "=====================",
        f"Voices: {len(voices)} ({groups})",
        f"Summary vector: {analysis.summary}",
        "Layers: " + "; ".join(f"{layer} = {meaning}" for layer, meaning in LAYER_MEANING.items()),
        "",
        "PCA (share of variance)",
        f"  {'layer':<9}{'PC1':>8}{'first 10':>10}   components for 50% / 80% / 90% / 99%",
    ]
    for layer, result in analysis.pca.items():
        needed = " / ".join("-" if n is None else str(n) for n in result.components_needed.values())
        first10 = float(result.cumulative[min(9, len(result.cumulative) - 1)])
        lines.append(f"  {layer:<9}{_percent(result.explained_variance_ratio[0]):>8}{_percent(first10):>10}   {needed}")
    lines += _loading_lines(analysis)
    correlation = analysis.correlation
    lines += [
        "",
        "Inter-layer correlation (Pearson across voices, decoder dims 0-127 x prosody dims 128-255)",
        f"  mean |r| {correlation.mean_abs:.3f}, max |r| {correlation.max_abs:.3f}, "
        f"pairs with |r| > 0.7: {correlation.n_above_0_7}",
        "  strongest pairs:",
    ]
    lines += [f"    decoder {d:>3} ~ prosody {p:>3}: r = {r:+.3f}" for d, p, r in correlation.top_pairs[:10]]
    variance = analysis.variance
    lines += [
        "",
        "Dimension variance across voices",
        f"  top 10 dims hold {_percent(variance.top10_share)} of the total variance, top 20 hold "
        f"{_percent(variance.top20_share)}",
        "  share per half: "
        + ", ".join(f"{layer} {_percent(share)}" for layer, share in variance.layer_share.items()),
        "  most variable dims: " + ", ".join(f"{d} ({layer[0]})" for d, layer, _ in variance.top),
        *_low_variance_lines(analysis),
        "",
        _tsne_line(analysis),
        "",
        "Centroids (Euclidean distance from the overall centroid; within-group variance = mean per-dim variance)",
    ]
    for kind, centroids in analysis.centroids.by_kind.items():
        lines.append(f"  by {kind}:")
        for key, c in centroids.items():
            lines.append(
                f"    {key:<22}{len(c.members):>3} voice{'s' if len(c.members) != 1 else ' '}  "
                f"distance {c.distance_from_overall:.3f} "
                f"(decoder {c.decoder_distance:.3f}, prosody {c.prosody_distance:.3f})  within {c.within_variance:.5f}"
            )
    lines += [
        "",
        f"Compared with {expectations['source']}",
        f"  {expectations['n_holding']} of {expectations['n_checks']} expectations hold for these "
        f"{expectations['n_voices']} voices ({analysis.summary}).",
    ]
    lines += [_check_line(check) for check in expectations["checks"]]
    return "\n".join(lines) + "\n"


def _voice_records(voices: VoiceSet) -> list[dict[str, Any]]:
    """Return the voice table as JSON-ready records (pandas turns a missing language code into NaN: make it null)."""
    table = voices.table().astype(object)
    return table.where(table.notna(), None).to_dict("records")


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _report_files(
    voices: VoiceSet, analysis: VoiceAnalysis, architecture: ArchitectureReport | None
) -> list[tuple[str, Callable[[], bytes]]]:
    """Return ``(file name, producer of its bytes)`` in the order the files are written."""
    expectations = seed_expectations(voices, analysis)

    def analysis_json() -> bytes:
        data = analysis.to_json() | {
            "voice_metadata": _voice_records(voices),
            "seed_expectations": expectations,
        }
        return _json_bytes(data)

    def variance_json() -> bytes:
        values = np.asarray(analysis.variance.variance)
        by_layer = {}
        for layer in ("decoder", "prosody"):
            dims = np.arange(STYLE_DIM)[LAYERS[layer]]
            order = dims[np.argsort(-values[dims], kind="stable")][:20]
            by_layer[layer] = [{"dim": int(d), "variance": round(float(values[d]), 8)} for d in order]
        return _json_bytes({"summary": analysis.summary} | analysis.variance.to_json() | {"top_by_layer": by_layer})

    def png(build: Callable[[], charts.AnyChart]) -> Callable[[], bytes]:
        return lambda: charts.chart_bytes(build(), "png")

    files: list[tuple[str, Callable[[], bytes]]] = [
        ("analysis.json", analysis_json),
        ("analysis_report.txt", lambda: _analysis_report_text(voices, analysis, expectations).encode("utf-8")),
        ("centroids.npz", lambda: _npz_bytes(analysis.centroids.arrays())),
        ("centroid_stats.json", lambda: _json_bytes({"summary": analysis.summary} | analysis.centroids.to_json())),
        ("top_variable_dimensions.json", variance_json),
        ("pca_variance.png", png(lambda: charts.pca_variance_chart(analysis))),
        ("pca_2d.png", png(lambda: charts.pca_layers_chart(analysis, voices, color_by="group"))),
        ("tsne_both.png", png(lambda: charts.tsne_chart(analysis, "both", "group", voices, select=False))),
        ("interlayer_correlation.png", png(lambda: charts.interlayer_correlation_heatmap(analysis))),
        ("embedding_distributions.png", png(lambda: charts.embedding_distributions_chart(analysis))),
        ("dimension_variance.png", png(lambda: charts.dimension_variance_chart(analysis))),
    ]
    if architecture is not None:
        files += [
            ("architecture_analysis.json", lambda: _json_bytes(architecture.to_json())),
            ("architecture_report.txt", lambda: architecture.report_text().rstrip("\n").encode("utf-8") + b"\n"),
        ]
    return files


def write_analysis_reports(
    voices: VoiceSet,
    analysis: VoiceAnalysis,
    out_dir: Path | str,
    architecture: ArchitectureReport | None = None,
) -> list[Path]:
    """Write the ``analyze`` output folder: everything, or nothing new when anything fails.

    Files are built in a hidden folder beside ``out_dir`` (same filesystem) and renamed into ``out_dir`` only when
    all of them succeeded; on failure that folder is removed and the error raised again. Files of the same name
    already in ``out_dir`` are replaced; other files there are left alone.

    Args:
        voices: the analysed voices.
        analysis: ``analyze(voices, ...)``.
        out_dir: the folder to write; created if missing, but its parent must exist.
        architecture: a model summary (``explorer.architecture.summarize(model)``) to add
            ``architecture_analysis.json`` and ``architecture_report.txt``.

    Returns:
        The paths written, in order: analysis.json, analysis_report.txt, centroids.npz, centroid_stats.json,
        top_variable_dimensions.json, pca_variance.png, pca_2d.png, tsne_both.png, interlayer_correlation.png,
        embedding_distributions.png, dimension_variance.png, then the two architecture files when given.

    Raises:
        AnalysisError: the parent folder is missing, ``out_dir`` is a file, the analysis is of other voices, or a
            file cannot be written (disk full, no permission).

    The module's docstring has an example.
    """
    out_dir = Path(out_dir)
    target = Path(os.path.abspath(out_dir))  # normalised, so "." or "out/.." name a real folder and its parent
    parent = target.parent
    if not parent.is_dir():
        raise AnalysisError(f"Cannot write the reports to '{out_dir}': the folder '{parent}' does not exist.")
    if out_dir.exists() and not out_dir.is_dir():
        raise AnalysisError(f"Cannot write the reports to '{out_dir}': it is a file, not a folder.")
    if list(analysis.names) != voices.names:
        raise AnalysisError("The analysis was computed on other voices than the ones given; analyse these voices.")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    except OSError as error:
        raise AnalysisError(f"Cannot write the reports beside '{out_dir}': {error.strerror or error}.") from error
    try:
        names = []
        for name, produce in _report_files(voices, analysis, architecture):
            (staging / name).write_bytes(produce())
            names.append(name)
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in names:
            os.replace(staging / name, out_dir / name)
            written.append(out_dir / name)
        return written
    except OSError as error:
        raise AnalysisError(f"Cannot write the reports to '{out_dir}': {error.strerror or error}.") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
