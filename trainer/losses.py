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


def attention_loss(scores: torch.Tensor, erased: torch.Tensor) -> torch.Tensor:
    """The AAAI-2020 paper's attention loss, as its code computes it: ``L = (1/B) sum_b sum_t s_bt e_bt``, the
    frame scores ``s float[B,T]`` summed over a clip's randomly erased frames (``e_bt = 1``), averaged over
    the B clips. It teaches the temporal attention to score corrupted frames low.

    The paper's Eq. 1 writes ``(1/N) sum_i label(i) * score(i)`` over the N frames of a clip: the code's value
    divided by T, so a weight w here equals a weight w*T in Eq. 1's form. The code gives it the head's raw
    ReLU'd scores (before the softmax): pushing a score to 0 does not move the other frames' weights, where a
    loss on softmaxed weights can only shift attention between frames."""
    return (scores * erased.to(scores.dtype)).sum(1).mean()


def _hardest_over_time(
    queries: torch.Tensor, sequences: torch.Tensor, same: torch.Tensor, other: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query vector ``queries float[B,S,D]`` (sequence b, step s): the largest Euclidean distance to
    any time step of any positive sequence and the smallest to any time step of any negative sequence of
    ``sequences float[B,T,D]``. ``same`` / ``other`` ``bool[B,B]`` say which sequences are positives /
    negatives of sequence b. Returns ``(far_pos, near_neg)``, each ``float[B,S]`` (-inf / +inf where a
    sequence has no positive / no negative)."""
    b, s, d = queries.shape
    dist = pairwise_distance(queries.reshape(b * s, d), sequences.reshape(-1, d)).reshape(b, s, b, -1)
    far_pos = dist.masked_fill(~same[:, None, :, None], float("-inf")).amax(dim=(2, 3))
    near_neg = dist.masked_fill(~other[:, None, :, None], float("inf")).amin(dim=(2, 3))
    return far_pos, near_neg


def frame_rank_terms(intermediate: torch.Tensor, targets: torch.Tensor, detach_thresholds: bool = True) -> torch.Tensor:
    """The per-step rank losses ``L_t^rank`` (t = 1..T) of "All for One" (Navaneet et al. 2019, Eqs. 3a-4b),
    ``float[T]``; ``L_1^rank = 0``.

    ``intermediate float[B,T,D]`` holds the fused features ``f_t`` of B sequences (the GRU's hidden states).
    For anchor sequence j of identity i, positives are the other sequences of identity i in the batch, negatives
    every sequence of another identity; a sequence's features at *all* its time steps (r = 1..T) are candidates
    (Eq. 3: tau in 1..T). With ``P_t(j) = max_{l,r} d(f_{t,j}, f_{r,l})`` over positives (the hard-mined
    positive of f_t) and ``N_t(j) = min_{l,r} d(f_{t,j}, f_{r,l})`` over negatives (its hard-mined negative),
    d Euclidean as in Eq. 2:

        L_t^p = mean_j max(0, P_t(j) - d_{t,p}(j)),   d_{t,p}(j) = min_{tau<t} P_tau(j)      (3a, 4a)
        L_t^n = mean_j max(0, d_{t,n}(j) - N_t(j)),   d_{t,n}(j) = max_{tau<t} N_tau(j)      (3b, 4b)
        L_t^rank = L_t^p + L_t^n                                                           (3c)

    so step t costs nothing exactly when f_t is at least as good as every earlier fused feature: its hardest
    positive no farther and its hardest negative no nearer than the best earlier step achieved ("penalized if,
    upon the inclusion of a new frame, the fused representation is worse off than any of the previous").

    Readings taken where the extracted equations are ambiguous (docs/reproduction.md):
    - Eq. 4b, read literally, takes the maximum over every negative at every step: the farthest negative of
      the batch, a threshold no hard negative reaches, so ``L_t^n`` would never be zero and the loss would not
      rank steps at all. Eqs. 4a/4b are read as "the best value an earlier step reached" with the sample
      chosen by hard mining at each step, as the text says ("the minimum [maximum] distance between any of the
      previous fused features ... and the corresponding hard-mined positive [negative] sample").
    - Eq. 3 sums over anchors (i, j); here the sum is a mean over the B anchors, as the batch-hard triplet of
      Eq. 2 (Hermans et al.) averages, so lambda weighs the two terms alike at any batch size.
    - The anchor's own sequence is not a positive: Eq. 4a says l != j; Eq. 3a's l runs over all K^i and is
      read the same way (the anchor's own earlier steps set the thresholds; they are not a positive sample).
    - The paper does not say whether the thresholds carry gradient. With ``detach_thresholds`` (the default)
      they do not: otherwise the loss could be lowered by making the earlier features worse.
    """
    b, t, _ = intermediate.shape
    same = targets[:, None] == targets[None, :]
    positives = same & ~torch.eye(b, dtype=torch.bool, device=targets.device)
    far_pos, near_neg = _hardest_over_time(intermediate, intermediate, positives, ~same)  # [B,T] each
    has_pos, has_neg = torch.isfinite(far_pos), torch.isfinite(near_neg)
    zero = intermediate.new_zeros(())
    terms = [zero]
    for step in range(1, t):
        d_p = far_pos[:, :step].min(dim=1).values
        d_n = near_neg[:, :step].max(dim=1).values
        if detach_thresholds:
            d_p, d_n = d_p.detach(), d_n.detach()
        l_p = torch.where(has_pos[:, step], torch.relu(far_pos[:, step] - d_p), zero).sum() / b
        l_n = torch.where(has_neg[:, step], torch.relu(d_n - near_neg[:, step]), zero).sum() / b
        terms.append(l_p + l_n)
    return torch.stack(terms)


def frame_rank_loss(intermediate: torch.Tensor, targets: torch.Tensor, detach_thresholds: bool = True) -> torch.Tensor:
    """The rank term of "All for One", Eq. 5: ``sum_{t=1..T} gamma_t L_t^rank`` with ``gamma_t = t / T``
    (no normalisation by the sum of the weights; ``L_1^rank = 0``). The full loss of Eq. 5 is
    ``batch_hard_triplet(f_T) + lambda * frame_rank_loss(f_1..f_T)``; see ``frame_rank_terms``."""
    terms = frame_rank_terms(intermediate, targets, detach_thresholds)
    t = len(terms)
    gamma = torch.arange(1, t + 1, dtype=terms.dtype, device=terms.device) / t
    return (gamma * terms).sum()
