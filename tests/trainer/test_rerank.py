"""k-reciprocal re-ranking: a case small enough to follow by hand, and equality with torchreid's ``re_ranking``
(the reference implementation that published re-ranked figures come from)."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest

from tests.support.torchreid import torchreid_module
from trainer.evaluate import squared_distances
from trainer.metrics import evaluate_rank
from trainer.rerank import re_ranking


def _split(positions: np.ndarray, num_q: int):
    d = np.abs(positions[:, None] - positions[None, :])
    return d[:num_q, num_q:], d[:num_q, :num_q], d[num_q:, num_q:]


def torchreid_rerank() -> ModuleType:
    """torchreid's ``rerank.py``."""
    return torchreid_module("reid/utils/rerank.py")


def test_hand_checked_four_points():
    """Query q at 0; gallery a at 0.1, b at 1.0, c at 1.1; the distances |x - y| are squared, then each row
    is scaled by its maximum: row q (0, 0.01, 1, 1.21) / 1.21, row a (0.01, 0, 0.81, 1) / 1.
    With k1 = k2 = 1 the nearest two of each item (itself first) are q: {q,a}, a: {a,q}, b: {b,c}, c: {c,b},
    so R(q) = R(a) = {q,a}; expansion by R(j, 0) = {j} adds nothing.
    V_q = (1, e^-(0.01/1.21)) / sum on (q, a); V_a = (e^-0.01, 1) / sum.
    Jaccard(q,a) = 1 - m / (2 - m), m the sum of element-wise minima; Jaccard(q,b) = Jaccard(q,c) = 1.
    Final = 0.7 * Jaccard + 0.3 * scaled distance: (q,b) = 0.7 + 0.3 / 1.21, (q,c) = 1.
    """
    q_g, q_q, g_g = _split(np.array([0.0, 0.1, 1.0, 1.1]), num_q=1)
    out = re_ranking(q_g, q_q, g_g, k1=1, k2=1, lambda_value=0.3)
    e1, e2 = math.exp(-0.01 / 1.21), math.exp(-0.01)
    v_q = (1 / (1 + e1), e1 / (1 + e1))
    v_a = (e2 / (1 + e2), 1 / (1 + e2))
    m = min(v_q[0], v_a[0]) + min(v_q[1], v_a[1])
    expected_a = 0.7 * (1 - m / (2 - m)) + 0.3 * 0.01 / 1.21
    np.testing.assert_allclose(out, [[expected_a, 0.7 + 0.3 / 1.21, 1.0]], rtol=0, atol=1e-6)


def test_lambda_one_returns_the_row_scaled_squared_distance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    q_g, q_q, g_g = d[:3, 3:], d[:3, :3], d[3:, 3:]
    out = re_ranking(q_g, q_q, g_g, k1=4, k2=2, lambda_value=1.0)
    np.testing.assert_allclose(out, q_g**2 / (d[:3] ** 2).max(axis=1, keepdims=True), rtol=1e-5)


def _random_protocol(seed: int, ids: int = 25, per: int = 5, dim: int = 16):
    """L2-normalised features of Gaussian identity clusters, one query per identity from camera 0, a gallery
    with same-camera entries of the query's identity (ignored by the protocol), junk (pid -1) and distractors."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    feats = np.repeat(centres, per, 0) + rng.normal(scale=1.0, size=(ids * per, dim))
    pids = np.repeat(np.arange(ids), per)
    cams = rng.integers(0, 3, size=ids * per)
    query = np.arange(0, ids * per, per)
    cams[query] = 0
    gallery = np.setdiff1d(np.arange(ids * per), query)
    junk = rng.normal(size=(8, dim))
    feats = np.concatenate([feats, junk])
    pids = np.concatenate([pids, np.full(8, -1)])
    cams = np.concatenate([cams, rng.integers(0, 3, size=8)])
    gallery = np.concatenate([gallery, np.arange(ids * per, ids * per + 8)])
    feats = (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float32)
    q, g = feats[query], feats[gallery]
    return q, g, pids[query], pids[gallery], cams[query], cams[gallery]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("k1", "k2", "lam"), [(20, 6, 0.3), (6, 3, 0.3), (4, 1, 0.5)])
def test_equals_torchreid_re_ranking(seed, k1, k2, lam):
    """On the same distance matrices (squared Euclidean of unit features, as evaluation passes them),
    crosscam's re-ranked distances equal torchreid's to 1e-6, and so does the re-ranked mAP."""
    reference = torchreid_rerank().re_ranking
    q, g, q_pids, g_pids, q_cams, g_cams = _random_protocol(seed)
    q_g, q_q, g_g = squared_distances(q, g), squared_distances(q, q), squared_distances(g, g)
    ours = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    theirs = reference(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    ours_map = evaluate_rank(ours, q_pids, g_pids, q_cams, g_cams).mAP
    theirs_map = evaluate_rank(theirs.astype(np.float32), q_pids, g_pids, q_cams, g_cams).mAP
    assert ours_map == pytest.approx(theirs_map, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_rerank_raises_map_when_identities_have_several_views(seed):
    """Gaussian identity clusters with six samples each (one query, five gallery): the k-reciprocal
    neighbourhoods agree within identities, so re-ranking (the paper's k1 20, k2 6) lifts mAP, by 0.06-0.15
    on seeds 0-7."""
    rng = np.random.default_rng(seed)
    ids, per = 30, 6
    feats = np.repeat(rng.normal(size=(ids, 16)), per, 0) + rng.normal(scale=0.9, size=(ids * per, 16))
    pids, cams = np.repeat(np.arange(ids), per), np.tile(np.arange(per), ids)
    qi = np.arange(0, ids * per, per)
    gi = np.setdiff1d(np.arange(ids * per), qi)
    d = np.sqrt(((feats[:, None] - feats[None]) ** 2).sum(-1))  # Euclidean: re-ranking squares it
    q_g = d[np.ix_(qi, gi)]
    before = evaluate_rank(q_g, pids[qi], pids[gi], cams[qi], cams[gi]).mAP
    reranked = re_ranking(q_g, d[np.ix_(qi, qi)], d[np.ix_(gi, gi)])
    after = evaluate_rank(reranked, pids[qi], pids[gi], cams[qi], cams[gi]).mAP
    assert after > before + 0.05
