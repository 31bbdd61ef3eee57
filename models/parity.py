"""Checking that two runtimes of one model agree, on random image-like clips."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.embedder import Embedder
from models.export import min_cosine, random_clips


def compare_embedders(
    reference: Embedder,
    candidate: Embedder,
    batches: tuple[int, ...] = (1, 3),
    frames: tuple[int, ...] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Embed the same clips with both runtimes, over several batch sizes and clip lengths.

    Returns ``min_cosine`` (smallest cosine similarity between the two features of a clip),
    ``max_attention_diff`` (largest absolute difference of attention weights) and ``clips``.
    """
    spec = reference.spec.input
    frames = frames or (spec.frames,)
    worst_cos, worst_att, n = 1.0, 0.0, 0
    for i, (b, t) in enumerate((b, t) for b in batches for t in frames):
        clips = random_clips(b, t, spec.height, spec.width, seed=seed + i)
        f_ref, a_ref = reference.embed(clips)
        f_new, a_new = candidate.embed(clips)
        worst_cos = min(worst_cos, min_cosine(f_ref, f_new))
        worst_att = max(worst_att, float(np.abs(a_ref - a_new).max()))
        n += b
    return {"min_cosine": worst_cos, "max_attention_diff": worst_att, "clips": n}
