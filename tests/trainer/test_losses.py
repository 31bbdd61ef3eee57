"""Losses on cases computed by hand (the arithmetic is in each test's docstring)."""

from __future__ import annotations

import math

import pytest
import torch

from trainer import losses


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_label_smoothing_cross_entropy():
    """Two classes, eps 0.1: q = (0.95, 0.05). Logits (ln 3, 0) give p = (0.75, 0.25)."""
    loss = losses.cross_entropy_label_smooth(t([[math.log(3), 0.0]]), torch.tensor([0]), epsilon=0.1)
    assert loss.item() == pytest.approx(-(0.95 * math.log(0.75) + 0.05 * math.log(0.25)), rel=1e-6)
    plain = losses.cross_entropy_label_smooth(t([[math.log(3), 0.0]]), torch.tensor([0]), epsilon=0.0)
    assert plain.item() == pytest.approx(-math.log(0.75), rel=1e-6)


def test_batch_hard_triplet_euclidean():
    """Points 0, 1 (id 0) and 1.5, 5 (id 1), margin 0.3. Per anchor: (pos, neg) = (1, 1.5) -> 0;
    (1, 0.5) -> 0.8; (3.5, 0.5) -> 3.3; (3.5, 4) -> 0. Mean 1.025."""
    x = t([[0.0], [1.0], [1.5], [5.0]])
    loss = losses.batch_hard_triplet(x, torch.tensor([0, 0, 1, 1]), margin=0.3)
    assert loss.item() == pytest.approx(1.025, rel=1e-5)


def test_batch_hard_triplet_cosine():
    """Unit vectors at 0 and 90 degrees (id 0) and 180 degrees (id 1); cosine distance 1 - cos.
    Anchor 0 deg: pos 1, neg 2 -> 0; 90 deg: pos 1, neg 1 -> m; 180 deg: pos 0 (itself), neg 1 -> 0."""
    x = t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    loss = losses.batch_hard_triplet(x, torch.tensor([0, 0, 1]), margin=0.1, metric="cosine")
    assert loss.item() == pytest.approx(0.1 / 3, abs=1e-6)


def test_center_loss():
    """||(1,0) - (0,0)||^2 = 1 and ||(0,1) - (0,2)||^2 = 1: mean 1."""
    loss = losses.center_loss(t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), t([[0.0, 0.0], [0.0, 2.0]]))
    assert loss.item() == pytest.approx(1.0)


def test_osm_caa_by_hand():
    """x1 = (1,0), x2 = (0,1) of id 0; x3 = (-1,0) of id 1; class vectors (1,0), (-1,0); sigma 1,
    alpha 2, l 0.5. Distances d12 = d23 = sqrt 2, d13 = 2. CAA: a1 = a3 = e/(e + 1/e), a2 = 1/2.
    Positives (1,2),(2,1): L_P = 1/2 * d12^2 = 1 (one distance, whatever the weights).
    Negatives: (1,3) has weight max(0, 2 - 2) = 0; (2,3),(3,2) have hinge 2 - sqrt 2, so
    L_N = 1/2 (2 - sqrt 2)^2. L = 0.5 + 0.25 (6 - 4 sqrt 2) = 2 - sqrt 2."""
    x = t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    loss = losses.osm_caa_loss(x, torch.tensor([0, 0, 1]), t([[1.0, 0.0], [-1.0, 0.0]]), sigma=1.0, alpha=2.0, l=0.5)
    assert loss.item() == pytest.approx(2 - math.sqrt(2), rel=1e-5)


def test_class_aware_attention():
    a = losses.class_aware_attention(t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]), t([[1.0, 0.0], [-1.0, 0.0]]))
    assert a.tolist() == pytest.approx([math.e / (math.e + 1 / math.e), 0.5], rel=1e-6)


def test_attention_loss():
    """Raw scores summed over each clip's erased frames, averaged over clips (the AAAI-2020 code):
    clip 1 scores its erased frames 2.0 and 0.5, clip 2 erased nothing: (2.5 + 0) / 2 = 1.25.
    Eq. 1's (1/N) form with N = 3 frames gives 1.25 / 3."""
    scores = t([[2.0, 0.5, 1.0], [0.2, 3.0, 0.5]])
    erased = torch.tensor([[True, True, False], [False, False, False]])
    assert losses.attention_loss(scores, erased).item() == pytest.approx(1.25)
    eq1 = sum(float(s) * float(e) for s, e in zip(scores[0], erased[0], strict=True)) / 3
    assert losses.attention_loss(scores, erased).item() / 3 == pytest.approx((eq1 + 0.0) / 2)


def _rank_loss_from_the_equations(f: list[list[list[float]]], ids: list[int]) -> float:
    """All for One, Eqs. 3a-5 with the readings of docs/reproduction.md, written as loops over plain lists:
    sum_t (t/T) * mean_j [max(0, P_t(j) - min_{tau<t} P_tau(j)) + max(0, max_{tau<t} N_tau(j) - N_t(j))],
    P / N the hard-mined positive / negative distance over every time step of the other sequences."""
    b, t = len(f), len(f[0])

    def dist(u, v):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(u, v, strict=True)))

    def p(j, step):
        return max(
            (dist(f[j][step], f[m][r]) for m in range(b) if m != j and ids[m] == ids[j] for r in range(t)), default=None
        )

    def n(j, step):
        return min((dist(f[j][step], f[m][r]) for m in range(b) if ids[m] != ids[j] for r in range(t)), default=None)

    total = 0.0
    for step in range(1, t):
        term = 0.0
        for j in range(b):
            if p(j, step) is not None:
                term += max(0.0, p(j, step) - min(p(j, tau) for tau in range(step)))
            if n(j, step) is not None:
                term += max(0.0, max(n(j, tau) for tau in range(step)) - n(j, step))
        total += (step + 1) / t * term / b
    return total


def test_frame_rank_loss_by_hand():
    """1-D, two steps. Identity 0: A = (1, 0.5), B = (0, 0); identity 1: C = (3, 2).
    A improves: P_1 = |1-0| = 1, N_1 = min(2, 1) = 1; P_2 = 0.5 <= 1 and N_2 = min(2.5, 1.5) = 1.5 >= 1: 0.
    B is unchanged: P = max(1, 0.5) = 1 and N = min(3, 2) = 2 at both steps: 0.
    C has no positive; N_1 = min|3 - {1, .5, 0, 0}| = 2, N_2 = min|2 - {...}| = 1: it moved toward the
    negatives, max(0, 2 - 1) = 1. L_2 = (0 + 0 + 1) / 3; gamma_2 = 1; L_1 = 0. Loss 1/3."""
    f = t([[[1.0], [0.5]], [[0.0], [0.0]], [[3.0], [2.0]]])
    ids = torch.tensor([0, 0, 1])
    assert losses.frame_rank_loss(f, ids).item() == pytest.approx(1 / 3, rel=1e-6)
    assert losses.frame_rank_terms(f, ids).tolist() == pytest.approx([0.0, 1 / 3], rel=1e-6)


def test_frame_rank_loss_charges_a_sequence_that_degrades():
    """As above with A reversed, (0.5, 1): its second feature is worse than its first.
    A: P_1 = 0.5, P_2 = 1 -> 0.5; N_1 = min(2.5, 1.5) = 1.5, N_2 = min(2, 1) = 1 -> 0.5.
    B: its positives are at 0.5 and 1 at every step: P = 1 at both steps; N = 2: 0. C: 1, as in the test above.
    L_2 = (1 + 0 + 1) / 3 = 2/3: the degradation costs 1/3."""
    f = t([[[0.5], [1.0]], [[0.0], [0.0]], [[3.0], [2.0]]])
    assert losses.frame_rank_loss(f, torch.tensor([0, 0, 1])).item() == pytest.approx(2 / 3, rel=1e-6)


def test_frame_rank_thresholds_come_from_earlier_steps():
    """Moving only f_1 of A, to 0.2, changes its step-2 thresholds: P_1 = 0.2, P_2 = 0.5 -> 0.3;
    N_1 = min(2.8, 1.8) = 1.8, N_2 = 1.5 -> 0.3. B: P = 0.5 at both steps: 0. C: N_1 = 2.5, N_2 = 1.5 -> 1.
    Loss (0.6 + 1) / 3, where the first feature at 1.0 gave 1/3."""
    improving = losses.frame_rank_loss(t([[[1.0], [0.5]], [[0.0], [0.0]], [[3.0], [2.0]]]), torch.tensor([0, 0, 1]))
    moved = losses.frame_rank_loss(t([[[0.2], [0.5]], [[0.0], [0.0]], [[3.0], [2.0]]]), torch.tensor([0, 0, 1]))
    assert improving.item() == pytest.approx(1 / 3, rel=1e-6)
    assert moved.item() == pytest.approx(1.6 / 3, rel=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_frame_rank_loss_equals_the_equations_on_random_batches(seed):
    """P x K = 3 x 2 sequences (one identity seen once) of T = 4 steps in 3-D, against the loop form."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(7, 4, 3, generator=g, dtype=torch.float64)
    ids = [0, 0, 1, 1, 2, 2, 3]
    expected = _rank_loss_from_the_equations(f.tolist(), ids)
    assert losses.frame_rank_loss(f, torch.tensor(ids)).item() == pytest.approx(expected, rel=1e-9)


def test_frame_rank_loss_gradient_is_finite_and_skips_the_thresholds():
    """Gradient reaches the later steps only (the thresholds from earlier steps are constants), and is finite
    for an identity with a single sequence (no positive)."""
    f = torch.tensor([[[0.5], [1.0]], [[0.0], [0.0]], [[3.0], [2.0]]], requires_grad=True)
    losses.frame_rank_loss(f, torch.tensor([0, 0, 1])).backward()
    assert torch.isfinite(f.grad).all()
    assert f.grad[0, 0].item() == 0.0 and f.grad[0, 1].item() != 0.0
