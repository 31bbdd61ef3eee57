"""Learning-rate schedules, as functions of the (fractional) epoch: linear warm-up, then step decay (Luo et al.
2019, the AAAI-2020 code) or constant-then-exponential decay (Hermans et al. 2017, which All for One follows)."""

from __future__ import annotations

from collections.abc import Sequence

from trainer.recipe import OptimRecipe


def warmup_scale(epoch: float, warmup: int, factor: float = 0.1) -> float:
    """``factor + (1 - factor) * epoch / warmup`` during the first ``warmup`` epochs, then 1 (the AAAI-2020 code's
    ``WarmupMultiStepLR`` with ``warmup_factor`` 0.01, stepped per epoch; here per iteration)."""
    if warmup and epoch < warmup:
        return factor + (1.0 - factor) * epoch / warmup
    return 1.0


def learning_rate(
    epoch: float, base: float, warmup: int, milestones: Sequence[int], gamma: float, warmup_factor: float = 0.1
) -> float:
    """Step schedule: ``base * gamma^(milestones passed)``, after a linear warm-up from ``warmup_factor * base``."""
    if warmup and epoch < warmup:
        return base * warmup_scale(epoch, warmup, warmup_factor)
    return base * gamma ** sum(epoch >= m for m in milestones)


def exponential_rate(epoch: float, base: float, decay_start: float, end: float, factor: float = 0.001) -> float:
    """Hermans et al. 2017, Sec. 4.5 (their code: ``tf.train.exponential_decay`` from ``decay_start_iteration``):
    ``eps(t) = eps_0`` for ``t <= t_0`` and ``eps_0 * factor^((t - t_0) / (t_1 - t_0))`` for ``t_0 < t <= t_1``,
    with ``t_0`` = ``decay_start`` and ``t_1`` = ``end`` (the last epoch); ``factor`` 0.001 in the paper."""
    if epoch <= decay_start or end <= decay_start:
        return base
    return base * factor ** (min(epoch - decay_start, end - decay_start) / (end - decay_start))


def scheduled_rate(epoch: float, optim: OptimRecipe) -> float:
    """The recipe's learning rate at ``epoch`` (fractional: epoch + iteration / iterations per epoch)."""
    if optim.schedule == "exponential":
        base = exponential_rate(epoch, optim.lr, optim.decay_start, optim.epochs, optim.decay_factor)
        return base * warmup_scale(epoch, optim.warmup_epochs, optim.warmup_factor)
    return learning_rate(epoch, optim.lr, optim.warmup_epochs, optim.milestones, optim.gamma, optim.warmup_factor)
