"""Learning-rate schedule: linear warm-up, then step decay (Luo et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence


def learning_rate(epoch: float, base: float, warmup: int, milestones: Sequence[int], gamma: float) -> float:
    """``base * (0.1 + 0.9 * epoch / warmup)`` during warm-up, then ``base * gamma^(milestones passed)``."""
    if warmup and epoch < warmup:
        return base * (0.1 + 0.9 * epoch / warmup)
    return base * gamma ** sum(epoch >= m for m in milestones)
