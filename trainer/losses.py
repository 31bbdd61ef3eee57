"""Losses of the two papers, as pure functions of tensors (no state: centers and class vectors are
passed in). Each docstring states the equation it computes and where it comes from."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_distance(x: torch.Tensor, y: torch.Tensor | None = None, metric: str = "euclidean") -> torch.Tensor:
    """``float[N,M]`` distances between rows: Euclidean ``||x_i - y_j||`` or cosine ``1 - cos(x_i, y_j)``."""
    y = x if y is None else y
    if metric == "cosine":
        return 1.0 - F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    if metric != "euclidean":
        raise ValueError(f"unknown metric {metric!r}; use euclidean or cosine")
    sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return sq.clamp(min=1e-12).sqrt()  # the clamp keeps the gradient of sqrt finite at 0


def cross_entropy_label_smooth(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy with label smoothing (Szegedy et al. 2016; Luo et al. 2019, "bag of tricks").

    ``q_c = (1 - eps) [c = y] + eps / C``;  ``L = mean_i -sum_c q_c log p_c(x_i)``.
    """
    log_p = F.log_softmax(logits, dim=1)
    q = torch.full_like(log_p, epsilon / logits.shape[1])
    q.scatter_add_(1, targets[:, None], torch.full_like(log_p[:, :1], 1.0 - epsilon))
    return -(q * log_p).sum(1).mean()


def _hardest(dist: torch.Tensor, same: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the largest distance to a positive and the smallest to a negative."""
    far_pos = dist.masked_fill(~same, float("-inf")).max(1).values
    near_neg = dist.masked_fill(same, float("inf")).min(1).values
    return far_pos, near_neg


def batch_hard_triplet(
    features: torch.Tensor, targets: torch.Tensor, margin: float = 0.3, metric: str = "euclidean"
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss").

    ``L = mean_a max(0, m + max_{p: y_p = y_a} d(a, p) - min_{n: y_n != y_a} d(a, n))``; the anchor counts
    as its own positive (distance 0), so an identity seen once still has a defined term.
    """
    dist = pairwise_distance(features, metric=metric)
    far_pos, near_neg = _hardest(dist, targets[:, None] == targets[None, :])
    return F.relu(margin + far_pos - near_neg).mean()


def center_loss(features: torch.Tensor, targets: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Center loss (Wen et al. 2016) as used by the bag of tricks: ``L = (1/B) sum_i ||f_i - c_{y_i}||^2``.

    ``centers float[C,D]`` are learned with their own optimiser.
    """
    return ((features - centers[targets]) ** 2).sum(1).mean()


def class_aware_attention(features: torch.Tensor, targets: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
    """CAA (Wang et al. 2019, "Deep Metric Learning by Online Soft Mining and Class-Aware Attention").

    ``a_i = exp(x_i . w_{y_i}) / sum_c exp(x_i . w_c)`` with x and the class vectors ``w float[C,D]``
    L2-normalised: how well a sample fits its own class. With the center-loss centers as ``w`` this is
    the AAAI-2020 paper's "CL centers" variant; with the classifier's weights it is the original.
    """
    logits = F.normalize(features, dim=1) @ F.normalize(class_vectors, dim=1).T
    return logits.softmax(dim=1).gather(1, targets[:, None]).squeeze(1)


def osm_caa_loss(
    features: torch.Tensor,
    targets: torch.Tensor,
    class_vectors: torch.Tensor,
    sigma: float = 0.8,
    alpha: float = 1.2,
    l: float = 0.5,  # noqa: E741 - the paper's name
) -> torch.Tensor:
    """Online soft mining with class-aware attention (Wang et al. 2019), on L2-normalised features.

    Pair weights: positives ``s+_ij = exp(-d_ij^2 / sigma^2)`` (soft mining favours moderate
    positives), negatives ``s-_ij = max(0, alpha - d_ij)``; both times ``A_ij = min(a_i, a_j)`` (CAA).
    ``L_P = 1/2 sum_P w d^2 / sum_P w``, ``L_N = 1/2 sum_N w max(0, alpha - d)^2 / sum_N w`` over pairs
    i != j, and ``L = (1 - l) L_P + l L_N``.
    """
    x = F.normalize(features, dim=1)
    dist = pairwise_distance(x)
    n = len(x)
    same = targets[:, None] == targets[None, :]
    off_diag = ~torch.eye(n, dtype=torch.bool, device=x.device)
    hinge = F.relu(alpha - dist)
    a = class_aware_attention(x, targets, class_vectors)
    pair_attention = torch.minimum(a[:, None], a[None, :])
    w_pos = torch.exp(-dist.pow(2) / sigma**2) * pair_attention * (same & off_diag)
    w_neg = hinge * pair_attention * ~same
    eps = 1e-12
    loss_pos = 0.5 * (w_pos * dist.pow(2)).sum() / (w_pos.sum() + eps)
    loss_neg = 0.5 * (w_neg * hinge.pow(2)).sum() / (w_neg.sum() + eps)
    return (1 - l) * loss_pos + l * loss_neg


def attention_loss(attention: torch.Tensor, erased: torch.Tensor) -> torch.Tensor:
    """The AAAI-2020 paper's attention loss (Eq. 1): the attention mass a clip puts on its randomly
    erased frames, averaged over clips: ``L = (1/B) sum_b sum_t a_bt e_bt`` with ``e_bt = 1`` for an
    erased frame. It teaches the temporal attention to look away from corrupted frames."""
    return (attention * erased.to(attention.dtype)).sum(1).mean()


def frame_rank_loss(
    intermediate: torch.Tensor,
    final: torch.Tensor,
    targets: torch.Tensor,
    margin: float = 0.3,
    metric: str = "euclidean",
) -> torch.Tensor:
    """Frame-wise rank loss after "All for One" (Navaneet et al.): every intermediate fused feature
    ``f_i^t`` (t = 1..T) must already rank the batch correctly against the final features ``f_j^T``:
    ``l_i^t = max(0, m + max_{p: y_p = y_i} d(f_i^t, f_p^T) - min_{n: y_n != y_i} d(f_i^t, f_n^T))`` and
    ``L = (1/B) sum_i sum_t gamma_t l_i^t / sum_t gamma_t`` with ``gamma_t = t / T``, so later, better-informed
    steps weigh more. Used with batch-hard triplet on ``f^T``.

    Written from the description of Eqs. 3-5 in this project's issue; the paper's text was not available
    to the authors of this code, so the exact per-step form should be checked against it.
    """
    t = intermediate.shape[1]
    same = targets[:, None] == targets[None, :]
    gamma = torch.arange(1, t + 1, dtype=intermediate.dtype, device=intermediate.device) / t
    total = intermediate.new_zeros(())
    for step in range(t):
        far_pos, near_neg = _hardest(pairwise_distance(intermediate[:, step], final, metric), same)
        total = total + gamma[step] * F.relu(margin + far_pos - near_neg).mean()
    return total / gamma.sum()
