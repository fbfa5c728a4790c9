"""The seed analysis suite's commands (``python scripts/<name>.py``), each a thin entry point over ``python -m
explorer``; a package so that the seed's ``from scripts.analyze_voices import VoiceAnalyzer`` works from the
repository root."""
