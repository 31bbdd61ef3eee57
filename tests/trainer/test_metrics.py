"""CMC / mAP under the MARS protocol, on hand-built distance matrices."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.metrics import average_precision, evaluate_rank


@pytest.mark.parametrize(
    "hits,expected",
    [
        ([True], 1.0),
        ([False, True], 0.5),
        ([True, False, True], (1 + 2 / 3) / 2),
        ([False, False, True, True], (1 / 3 + 2 / 4) / 2),
        ([False, False], 0.0),
    ],
)
def test_average_precision(hits, expected):
    assert average_precision(np.array(hits)) == pytest.approx(expected)


def test_mars_protocol_by_hand():
    """Query 0 (pid 1, cam 1) ranks: g0 same id same cam (junk), g3 pid -1 (junk), g1 wrong id,
    g4 distractor pid 0 (a wrong match, kept), g2 and g5 correct. After junk removal the list is
    [F, F, T, T]: first hit at rank 3, AP = (1/3 + 2/4) / 2. Query 1 (pid 2) finds g1 first: AP 1.
    Query 2 (pid 3) has no match in the gallery and is skipped."""
    g_pids = np.array([1, 2, 1, -1, 0, 1])
    g_cams = np.array([1, 2, 2, 3, 2, 3])
    q_pids, q_cams = np.array([1, 2, 3]), np.array([1, 1, 1])
    distmat = np.array(
        [
            [0.1, 0.3, 0.5, 0.2, 0.4, 0.6],
            [0.9, 0.05, 0.5, 0.2, 0.4, 0.6],
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        ]
    )
    result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    assert result.valid_queries == 2
    np.testing.assert_allclose(result.cmc, [0.5, 0.5, 1.0, 1.0])
    assert result.mAP == pytest.approx(((1 / 3 + 2 / 4) / 2 + 1.0) / 2)
    assert result.cmc_at(1, 3, 20) == {"1": 0.5, "3": 1.0}


def test_same_camera_match_does_not_count():
    """The only same-id entry is in the query's camera: junk, so the query is not valid."""
    result = evaluate_rank(np.array([[0.0, 1.0]]), np.array([5]), np.array([5, 6]), np.array([2]), np.array([2, 3]))
    assert result.valid_queries == 0 and result.mAP == 0.0


def test_perfect_and_reversed_rankings():
    q_pids = np.arange(4)
    g_pids = np.concatenate([np.arange(4), np.arange(4) + 10])
    q_cams, g_cams = np.zeros(4), np.ones(8)
    good = np.where(q_pids[:, None] == g_pids[None, :], 0.0, 1.0)
    assert evaluate_rank(good, q_pids, g_pids, q_cams, g_cams).mAP == 1.0
    bad = 1.0 - good  # the correct match comes last of 8
    result = evaluate_rank(bad, q_pids, g_pids, q_cams, g_cams, max_rank=8)
    assert result.mAP == pytest.approx(1 / 8)
    np.testing.assert_allclose(result.cmc, [0] * 7 + [1])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        evaluate_rank(np.zeros((2, 3)), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
