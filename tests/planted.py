"""Voice sets with planted structure, so analyses can be checked against known answers."""

from __future__ import annotations

import numpy as np

from explorer.voices import Voice, VoiceSet

AXIS_DIM = 37
"""Decoder dim along which the planted groups split (+3 for the first sign, -3 for the second)."""
PAIR = (12, 200)
"""Planted correlated decoder/prosody pair: prosody dim 200 copies decoder dim 12."""


def planted_voices(groups: dict[str, float], per_group: int, seed: int = 0) -> VoiceSet:
    """Return ``per_group`` voices per group prefix (e.g. ``{"af": 1, "bm": -1}``), each group at ``3 * sign`` on
    decoder dim ``AXIS_DIM``, with the correlated pair ``PAIR`` and small row-to-row noise."""
    rng = np.random.default_rng(seed)
    voices = []
    for group, sign in groups.items():
        for i in range(per_group):
            base = rng.normal(0, 0.1, 256)
            base[AXIS_DIM] += 3.0 * sign
            shared = rng.normal(0, 1.0)
            base[PAIR[0]] += shared
            base[PAIR[1]] += shared
            rows = base + rng.normal(0, 0.01, (510, 256))
            voices.append(Voice.from_array(f"{group}_v{i}", rows.astype(np.float32), "planted"))
    return VoiceSet(voices)
