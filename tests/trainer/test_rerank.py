"""k-reciprocal re-ranking on a case small enough to follow by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.rerank import re_ranking


def _split(positions: np.ndarray, num_q: int):
    d = np.abs(positions[:, None] - positions[None, :])
    return d[:num_q, num_q:], d[:num_q, :num_q], d[num_q:, num_q:]


def test_hand_checked_four_points():
    """Query q at 0; gallery a at 0.1, b at 1.0, c at 1.1 (distances |x - y|), k1 = 1, k2 = 1.

    Scaled by column maxima (1.1, 1.0, 1.0, 1.1): d(q,a) = 0.1, d(a,q) = 0.1/1.1.
    Nearest two of each item (itself first): q: {q,a}, a: {a,q}, b: {b,c}, c: {c,b}; so the
    1-reciprocal sets are R(q) = R(a) = {q,a} and R(b) = R(c) = {b,c}; expansion with R(j, 0) = {j}
    adds nothing. V_q = (1, e^-0.1)/(1 + e^-0.1) on (q, a); V_a = (e^-(0.1/1.1), 1)/(1 + e^-(0.1/1.1)).
    Jaccard(q,a) = 1 - m/(2 - m) with m = sum of element-wise minima; Jaccard(q,b) = Jaccard(q,c) = 1.
    Final = 0.7 * Jaccard + 0.3 * scaled distance.
    """
    q_g, q_q, g_g = _split(np.array([0.0, 0.1, 1.0, 1.1]), num_q=1)
    out = re_ranking(q_g, q_q, g_g, k1=1, k2=1, lambda_value=0.3)
    e1, e2 = math.exp(-0.1), math.exp(-0.1 / 1.1)
    v_q = (1 / (1 + e1), e1 / (1 + e1))
    v_a = (e2 / (1 + e2), 1 / (1 + e2))
    m = min(v_q[0], v_a[0]) + min(v_q[1], v_a[1])
    expected_a = 0.7 * (1 - m / (2 - m)) + 0.3 * 0.1
    np.testing.assert_allclose(out, [[expected_a, 1.0, 1.0]], rtol=1e-5)
    assert expected_a == pytest.approx(0.093728, abs=1e-5)


def test_lambda_one_returns_the_scaled_original_distance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    q_g, q_q, g_g = d[:3, 3:], d[:3, :3], d[3:, 3:]
    out = re_ranking(q_g, q_q, g_g, k1=4, k2=2, lambda_value=1.0)
    np.testing.assert_allclose(out, q_g / d[:, 3:].max(axis=0, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rerank_raises_map_when_identities_have_several_views(seed):
    """Gaussian identity clusters with six samples each (one query, five gallery): the k-reciprocal
    neighbourhoods agree within identities, so re-ranking lifts mAP (by 0.06-0.14 on seeds 0-7)."""
    from trainer.metrics import evaluate_rank

    rng = np.random.default_rng(seed)
    ids, per = 30, 6
    feats = np.repeat(rng.normal(size=(ids, 16)), per, 0) + rng.normal(scale=0.9, size=(ids * per, 16))
    pids, cams = np.repeat(np.arange(ids), per), np.tile(np.arange(per), ids)
    qi = np.arange(0, ids * per, per)
    gi = np.setdiff1d(np.arange(ids * per), qi)
    d = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    q_g = d[np.ix_(qi, gi)]
    before = evaluate_rank(q_g, pids[qi], pids[gi], cams[qi], cams[gi]).mAP
    reranked = re_ranking(q_g, d[np.ix_(qi, qi)], d[np.ix_(gi, gi)], k1=6, k2=3)
    after = evaluate_rank(reranked, pids[qi], pids[gi], cams[qi], cams[gi]).mAP
    assert after > before + 0.05
