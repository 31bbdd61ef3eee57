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
    """Clip 1 puts 0.25 on its erased frame, clip 2 erased nothing: mean 0.125."""
    att = t([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]])
    erased = torch.tensor([[False, True, False], [False, False, False]])
    assert losses.attention_loss(att, erased).item() == pytest.approx(0.125)


def test_frame_rank_loss_by_hand():
    """Two clips of two steps in 1-D; finals at 0 (id 0) and 1 (id 1), margin 0.5.
    Step 1: f = 0.8 (id 0): pos d = 0.8, neg d = 0.2 -> 1.1; f = 0.9 (id 1): pos 0.1, neg 0.9 -> 0.
    Step 2 (the finals themselves): 0 and 1 -> pos 0, neg 1 -> 0 for both.
    gamma = (1/2, 1): L = (0.5 * mean(1.1, 0) + 1 * 0) / 1.5 = 0.18333."""
    intermediate = t([[[0.8], [0.0]], [[0.9], [1.0]]])
    final = intermediate[:, -1]
    loss = losses.frame_rank_loss(intermediate, final, torch.tensor([0, 1]), margin=0.5)
    assert loss.item() == pytest.approx(0.5 * 0.55 / 1.5, rel=1e-5)


def test_losses_have_gradients():
    torch.manual_seed(0)
    x = torch.randn(8, 16, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    total = (
        losses.batch_hard_triplet(x, y)
        + losses.osm_caa_loss(x, y, torch.randn(4, 16))
        + losses.center_loss(x, y, torch.zeros(4, 16))
    )
    total.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
