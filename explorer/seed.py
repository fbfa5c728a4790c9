"""The seed analysis suite's Python classes, so the "Custom Analysis" and "Architecture Exploration" examples of its
README run as printed once their import line finds them (``scripts/analyze_voices.py`` and
``scripts/analyze_architecture.py`` re-export them, as ``from scripts.analyze_voices import VoiceAnalyzer`` expects).

Both classes are adapters: every figure comes from :mod:`explorer.analysis` and :mod:`explorer.architecture`, every
plot from :mod:`explorer.charts`, so a seed user gets the same numbers and the same charts as ``python -m explorer
analyze`` and the app. Results are the explorer's own dataclasses, or dicts of them where the seed asked for a
module by name; plots are PNG files in ``voices/analysis/``, where the seed put them.

Where the seed's arguments ask for more than the voices allow (50 principal components of 10 voices, a t-SNE
perplexity above the voice count), the adapter uses the most the data allows and says so with a ``UserWarning``,
so the seed's examples run on any folder of at least three voices.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer import charts
from explorer.analysis import (
    LAYERS,
    CentroidAnalysis,
    InterlayerCorrelation,
    PCAResult,
    VoiceAnalysis,
    analyze,
    layer_slice,
    pca,
    perplexity_bounds,
)
from explorer.errors import VoiceError, shown
from explorer.paths import CONFIG_PATH
from explorer.voices import SUPPORTED_SUFFIXES, VoiceSet, load_voices

if TYPE_CHECKING:
    from kokoro import KModel

    from explorer.architecture import ArchitectureSummary, DataFlow

__all__ = ["DOWNLOAD_SCRIPT", "SEED_OUTPUT", "ArchitectureAnalyzer", "VoiceAnalyzer", "holds_voicepacks"]

SEED_OUTPUT = Path("voices") / "analysis"
"""Where the seed suite saved its analysis files and plots, relative to the repository root."""
DOWNLOAD_SCRIPT = "scripts/download_all_voices.py"
"""The seed command that fills ``voices/``: named in the error for a missing voice folder."""


def _is_folder_source(source: str) -> bool:
    """Whether ``source`` names a folder or file, rather than the bundled voices or a Hugging Face repo."""
    return source != "bundled" and source != "hf" and not source.startswith("hf:")


def holds_voicepacks(folder: Path | str) -> bool:
    """Whether ``folder`` is a folder with at least one voice file in it (a suffix of ``SUPPORTED_SUFFIXES``): the
    test that decides between the seed's ``voices/`` and the bundled voices.

    Example:
        >>> import explorer
        >>> from pathlib import Path
        >>> from explorer.seed import holds_voicepacks
        >>> Path("voices").mkdir()
        >>> holds_voicepacks("voices"), holds_voicepacks("no-such-folder")
        (False, False)
        >>> _ = explorer.save_pack(explorer.load_voices()["af_heart"].pack, "voices/af_heart.pt")
        >>> holds_voicepacks("voices")
        True
    """
    folder = Path(folder)
    return folder.is_dir() and any(
        path.suffix.lower() in SUPPORTED_SUFFIXES and path.is_file() for path in folder.iterdir()
    )


class VoiceAnalyzer:
    """The seed's voice analyzer: load a folder of voicepacks, analyse them, save the seed's plots.

    A VoiceAnalyzer has 2 responsibilities:

    1. Hold one voice set and its analysis (:func:`explorer.analysis.analyze` on the mean over each pack's rows),
       computed once on first use, so each seed method is a lookup or one extra computation.
    2. Save the seed's plots, drawn by :mod:`explorer.charts`, into ``output_dir`` (``voices/analysis`` by default).

    Args:
        voices_dir: a folder of voicepacks (``.pt``, ``.bin``, ``.npy``, ``.npz``), as the seed's ``'voices'``; also
            ``"bundled"`` for the 54 voices shipped with the explorer or ``"hf:<owner/repo>"`` for a Hub repo.
        output_dir: where plots go; ``<voices_dir>/analysis`` for a folder, else ``voices/analysis``.

    Example:
        >>> from explorer.seed import VoiceAnalyzer
        >>> analyzer = VoiceAnalyzer("bundled")
        >>> analyzer.load_voices()
        VoiceSet(54 voices)
        >>> pca_results = analyzer.pca_analysis(n_components=50)
        >>> sorted(pca_results), pca_results["decoder"].projections.shape
        (['both', 'decoder', 'prosody'], (54, 50))
        >>> analyzer.compute_centroids().get("group", "bf").members
        ('bf_alice', 'bf_emma', 'bf_isabella', 'bf_lily')
        >>> round(analyzer.inter_layer_correlation().max_abs, 2)
        0.76
        >>> analyzer.plot_pca_2d(pca_results).as_posix()
        'voices/analysis/pca_2d.png'
    """

    def __init__(self, voices_dir: str | Path = "voices", output_dir: str | Path | None = None):
        self.voices_dir = str(voices_dir)
        if output_dir is None:
            output_dir = Path(self.voices_dir) / "analysis" if _is_folder_source(self.voices_dir) else SEED_OUTPUT
        self.output_dir = Path(output_dir)
        self.voices: VoiceSet | None = None
        self._analysis: VoiceAnalysis | None = None

    def load_voices(self) -> VoiceSet:
        """Load the voices of ``voices_dir`` (every other method calls this first if it was not called).

        Raises:
            VoiceError: the folder is missing or holds no voicepacks (the message says to run the seed's download
                script), or a voicepack in it is unusable.
        """
        folder = Path(self.voices_dir)
        if _is_folder_source(self.voices_dir) and not folder.is_file() and not holds_voicepacks(folder):
            where = "does not exist" if not folder.exists() else "holds no voicepacks"
            raise VoiceError(
                f"The voice folder {shown(self.voices_dir, 200)} {where}: run python {DOWNLOAD_SCRIPT} first (offline "
                "it copies the bundled voices), or use VoiceAnalyzer('bundled')."
            )
        self.voices = load_voices(self.voices_dir)
        self._analysis = None
        return self.voices

    def _voices(self) -> VoiceSet:
        return self.voices if self.voices is not None else self.load_voices()

    def analysis(self) -> VoiceAnalysis:
        """Return the explorer's analysis of the voices (PCA of each layer, centroids, correlation, variance) on the
        mean over each pack's rows, computed once; t-SNE is left to :meth:`plot_tsne`."""
        if self._analysis is None:
            self._analysis = analyze(self._voices(), tsne_layers=())
        return self._analysis

    def compute_centroids(self) -> CentroidAnalysis:
        """Return the centroids overall and per group (``af``, ``bm``...), language and gender, with their distances
        from the overall centroid and between groups (:class:`explorer.analysis.CentroidAnalysis`)."""
        return self.analysis().centroids

    def pca_analysis(self, n_components: int | None = 50) -> dict[str, PCAResult]:
        """Return the PCA of each layer, ``{"decoder": ..., "prosody": ..., "both": ...}``, keeping ``n_components``.

        ``n_components`` above what the voices allow (as many components as voices, at most the layer's dims) is
        lowered to that, with a ``UserWarning`` saying so; None keeps them all.
        """
        voices = self._voices()
        vectors = self.analysis().vectors
        limits = {layer: min(len(voices), dims.stop - dims.start) for layer, dims in LAYERS.items()}
        lowered = {layer: limit for layer, limit in limits.items() if n_components is not None and n_components > limit}
        if lowered:
            kept = ", ".join(f"{limit} on {layer}" for layer, limit in lowered.items())
            warnings.warn(
                f"pca_analysis: n_components={n_components} is more than {len(voices)} voices allow; keeping {kept}.",
                UserWarning,
                stacklevel=2,
            )
        return {
            layer: pca(vectors, layer, None if n_components is None else min(n_components, limit))
            for layer, limit in limits.items()
        }

    def inter_layer_correlation(self) -> InterlayerCorrelation:
        """Return the Pearson correlation across voices of each decoder dim with each prosody dim, and its strongest
        pairs (:class:`explorer.analysis.InterlayerCorrelation`)."""
        return self.analysis().correlation

    def _save(self, chart: charts.AnyChart, name: str) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return charts.save_chart(chart, self.output_dir / name)

    def plot_pca_2d(self, pca_results: Mapping[str, PCAResult] | None = None) -> Path:
        """Save PC1 against PC2 of each layer, voices coloured by group, as ``pca_2d.png``; return its path.

        Args:
            pca_results: from :meth:`pca_analysis` (layers missing from it, or None, use the full PCA).
        """
        analysis = self.analysis()
        shown_pca = {**analysis.pca, **dict(pca_results or {})}
        chart = charts.pca_layers_chart(dataclasses.replace(analysis, pca=shown_pca), self._voices(), color_by="group")
        return self._save(chart, "pca_2d.png")

    def plot_tsne(self, layer: str = "both", perplexity: float | None = None) -> Path:
        """Save the seeded t-SNE map of ``layer`` as ``tsne_<layer>.png``; return its path.

        Args:
            layer: "decoder", "prosody" or "both".
            perplexity: passed to :func:`explorer.analysis.tsne`; None for its default. One beyond what the voices
                allow (1 to the number of voices - 1) is brought within that, with a ``UserWarning``.
        """
        layer_slice(layer)
        voices = self._voices()
        if isinstance(perplexity, (int, float)) and not isinstance(perplexity, bool):  # else analyze says what is wrong
            low, high = perplexity_bounds(len(voices))
            if not low <= perplexity <= high:
                chosen = min(max(perplexity, low), high)
                warnings.warn(
                    f"plot_tsne: perplexity={perplexity:g} is outside {low:g}-{high:g} for {len(voices)} voices; "
                    f"using {chosen:g}.",
                    UserWarning,
                    stacklevel=2,
                )
                perplexity = chosen
        chart = charts.tsne_chart(self.analysis().with_tsne(layer, perplexity), layer, "group", voices, select=False)
        return self._save(chart, f"tsne_{layer}.png")


def _module(summary: ArchitectureSummary, name: str) -> dict[str, Any]:
    """Return one top-level module as the architecture summary measured it: size, share, children, weights."""
    node = summary.node(name)
    share = next((module.share for module in summary.modules if module.name == name), 0.0)
    children = [summary.node(path) for path in node.children]
    stats = next((dataclasses.asdict(stats) for stats in summary.weight_stats if stats.name == name), None)
    return {
        "name": name,
        "module_type": node.module_type,
        "params": node.total_params,
        "share": share,
        "children": [
            {"name": child.path, "module_type": child.module_type, "params": child.total_params} for child in children
        ],
        "weight_stats": stats,
    }


def _style_half(summary: ArchitectureSummary, name: str) -> dict[str, Any]:
    """Return where one half of the style vector goes, as the traced pass observed it."""
    half = summary.half(name)
    return {
        "dims": f"{half.start}-{half.stop - 1}",
        "read_inside": list(half.top_level),
        "entry_points": list(half.entry_points),
        "readers": len(half.consumers),
        "reader_types": half.consumer_types(),
    }


class ArchitectureAnalyzer:
    """The seed's architecture analyzer: build Kokoro's ``KModel`` offline and report on its parts.

    An ArchitectureAnalyzer has 2 responsibilities:

    1. Build the model (:func:`explorer.engines.model.build_model`, never downloading) and measure it once
       (:func:`explorer.architecture.summarize`: parameter counts, the module tree, style routing, a traced pass).
    2. Answer the seed's questions from that measurement: one dict per module asked for, the data flow as
       :class:`explorer.architecture.DataFlow`.

    Args:
        weights: a local Kokoro ``.pth`` for the weight statistics; None for random initialisation, which gives the
            same counts, routing and data flow.
        config: the model config (the bundled ``config.json`` by default).

    Example (builds the model, about 5 s)::

        analyzer = ArchitectureAnalyzer()
        analyzer.load_model()
        analyzer.analyze_bert_encoder()["bert"]["hidden_size"]      # 768
        analyzer.analyze_decoder()["style"]["dims"]                  # '0-127'
        analyzer.analyze_data_flow().frame_ms                        # 25.0
    """

    def __init__(self, weights: str | Path | None = None, config: str | Path | Mapping[str, Any] = CONFIG_PATH):
        self.weights = weights
        self.config = config
        self.model: KModel | None = None
        self.summary: ArchitectureSummary | None = None

    def load_model(self) -> KModel:
        """Build the model and measure it; return the ``kokoro.KModel`` (the other methods call this if needed).

        Raises:
            ModelFilesError: the config or the weights cannot be used.
        """
        from explorer.architecture import summarize
        from explorer.engines.model import build_model, describe_weights

        self.model = build_model(self.config, self.weights)
        self.summary = summarize(self.model, describe_weights(self.weights))
        return self.model

    def _summary(self) -> ArchitectureSummary:
        if self.summary is None:
            self.load_model()
        return self.summary

    def analyze_bert_encoder(self) -> dict[str, Any]:
        """Return PL-BERT (``bert``, an ALBERT) and its projection into the text features (``bert_encoder``): sizes,
        shares, children and weight statistics, with BERT's figures (vocabulary, hidden size, layers, heads, shared
        layers; :class:`explorer.architecture.BertFigures`) under ``"bert"``."""
        summary = self._summary()
        bert, projection = _module(summary, "bert"), _module(summary, "bert_encoder")
        return {
            "modules": ["bert", "bert_encoder"],
            "params": bert["params"] + projection["params"],
            "share": bert["share"] + projection["share"],
            "bert": bert | summary.bert.to_json(),
            "bert_encoder": projection,
        }

    def analyze_decoder(self) -> dict[str, Any]:
        """Return the iSTFTNet decoder: size, share, children, weight statistics, and under ``"style"`` the half of
        the style vector it reads (dims 0-127) and the layers that read it."""
        summary = self._summary()
        return _module(summary, "decoder") | {"style": _style_half(summary, "decoder")}

    def analyze_data_flow(self) -> DataFlow:
        """Return the measured path from token ids to audio for one short input: each step's module, shapes and the
        style half it read (:class:`explorer.architecture.DataFlow`)."""
        return self._summary().data_flow
