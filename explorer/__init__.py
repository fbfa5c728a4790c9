"""Kokoro Voice Explorer: understand and shape the voices of the Kokoro-82M text-to-speech model.

The same library drives the Streamlit app, the command line (``python -m explorer``) and notebooks::

    import explorer

    voices = explorer.load_voices()                 # the 54 bundled Kokoro v1.0 voices
    result = explorer.analyze(voices)               # PCA, centroids, correlation, variance, t-SNE
    result.explained_variance().head()              # pandas DataFrames where tables fit
    chart = explorer.charts.pca_scatter_chart(result, voices, layer="decoder")
    recipe = explorer.Recipe.single("af_heart").with_edit(explorer.PCAStep("decoder", 0, 1.5))
    pack = explorer.apply_recipe(recipe, voices)    # a full [510, 256] voicepack
    speech = explorer.synthesize("Hello there.", style=pack)   # plays in Jupyter
    explorer.save_pack(pack, "heart_pc1.pt")        # loads in kokoro.KPipeline

Names are imported on first use, so ``import explorer`` stays fast and loads torch only when a model is needed.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Torch's OpenMP threads spin for GOMP's default 300,000 iterations before they sleep. On a 2-core machine with any
# other work running (the app's own server, a second listener) that stalls each render up to 3x; 10,000 spins keep
# the idle speed and halve the loss (``python -m explorer bench``, README "Benchmarks"). Read when torch is first
# imported, which in this package happens after this line; a value set by the user wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

_PUBLIC = {
    "explorer.voices": [
        "Voice", "VoiceSet", "load_voices", "load_bundled", "load_hub", "load_folder", "load_file", "load_bytes",
        "save_pack", "pack_bytes", "parse_voice_name", "LANGUAGES",
    ],
    "explorer.analysis": [
        "analyze", "VoiceAnalysis", "summary_vectors", "pca", "centroids", "nearest_voices",
        "interlayer_correlation", "dimension_variance", "tsne", "value_distributions", "row_trajectory", "LAYERS",
    ],
    "explorer.charts": ["save_chart", "Marker"],
    "explorer.recipe": [
        "Recipe", "Mix", "Component", "Interpolation", "PCAStep", "CentroidMove", "CentroidAxis", "DimEdit",
        "AttributeEdit",
        "RecipeContext", "apply_recipe", "load_recipe", "describe", "ood_report",
    ],
    "explorer.attributes": ["load_axes"],
    "explorer.engines.choice": ["load_engine", "available_engines"],
    "explorer.engines.base": ["Engine"],
    "explorer.synth": ["synthesize", "synthesize_stream", "Synthesis"],
    "explorer.match": ["Target", "MatchConfig", "match_voice"],
    "explorer.g2p": ["phonemize"],
    "explorer.architecture": ["analyze_architecture", "ArchitectureSummary"],
    "explorer.engines.model": ["build_model"],
    "explorer.meters": ["measure", "acoustics", "intelligibility", "speaker_similarity", "word_error_rate"],
    "explorer.errors": [
        "ExplorerError", "VoiceError", "HubError", "AnalysisError", "RecipeError", "SynthesisError",
        "ModelFilesError", "MeterUnavailable", "NoSoundError", "AxesError",
    ],
}
_SUBMODULES = ["charts", "reports", "audio"]
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted([*_WHERE, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"explorer.{name}")
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
