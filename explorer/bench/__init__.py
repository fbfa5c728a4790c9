"""Benchmarks, not tests: what ``python -m explorer bench`` measures, figures for the README.

- ``speed``: each engine configuration's speed, memory, time to first audio and quality (word error rate, speaker
  similarity), alone in its own process and then taking turns with the others.
- ``render_profile``: where a torch render's time goes, and the floor its convolutions set.
- ``pitch``: Praat's pitch tracker (the meters') against librosa's pYIN, on tones and on renders.
- ``runs``: what they share: a worker in a fresh process, the machine's description, plain-text tables.

Built on the engines, synthesis and the meters; never on the app (the app's own timing is ``explorer.app.timing``).
"""
