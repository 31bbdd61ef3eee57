"""Retrieval metrics under the MARS protocol: CMC and mAP from a query x gallery distance matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JUNK_PID = -1  # MARS: detections labelled junk are ignored when they are retrieved
DISTRACTOR_PID = 0  # MARS: distractors stay in the gallery as wrong matches


@dataclass(frozen=True)
class RankResult:
    cmc: np.ndarray  # float[max_rank]: cmc[k-1] = fraction of valid queries matched within the top k
    mAP: float
    valid_queries: int  # queries with at least one correct gallery match in another camera

    def cmc_at(self, *ranks: int) -> dict[str, float]:
        return {str(r): float(self.cmc[r - 1]) for r in ranks if r <= len(self.cmc)}


def average_precision(hits: np.ndarray) -> float:
    """AP of one ranked list: the mean of precision@i over the ranks i of the correct matches.

    ``hits``: bool[N] in rank order, junk already removed. ``AP = (1/G) sum_{i: hit_i} (#hits in 1..i) / i``.
    """
    positions = np.flatnonzero(hits)
    if positions.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, positions.size + 1) / (positions + 1)))


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> RankResult:
    """CMC and mAP as in the MARS evaluation (Zheng et al. 2016), given ``distmat float[Q,G]``.

    For each query, the gallery is ranked by distance (stable, so ties keep gallery order). Removed
    ("junk") are gallery entries of the same identity in the same camera as the query, and entries
    with pid ``-1``; pid ``0`` (distractors) stay as wrong matches. Correct matches are the same
    identity in another camera. Queries without any correct match are skipped, as in the official
    code. CMC is averaged over valid queries; mAP is the mean AP (``average_precision``).
    """
    distmat = np.asarray(distmat)
    num_q, num_g = distmat.shape
    if len(q_pids) != num_q or len(q_camids) != num_q or len(g_pids) != num_g or len(g_camids) != num_g:
        raise ValueError(
            f"distmat {distmat.shape} does not match {len(q_pids)} queries and {len(g_pids)} gallery entries"
        )
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    cmc_sum = np.zeros(max_rank)
    aps = []
    for q in range(num_q):
        order = np.argsort(distmat[q], kind="stable")
        pids, cams = g_pids[order], g_camids[order]
        junk = ((pids == q_pids[q]) & (cams == q_camids[q])) | (pids == JUNK_PID)
        hits = (pids == q_pids[q])[~junk]
        if not hits.any():
            continue
        first = int(np.argmax(hits))
        if first < max_rank:
            cmc_sum[first:] += 1
        aps.append(average_precision(hits))
    valid = len(aps)
    if valid == 0:
        return RankResult(np.zeros(max_rank), 0.0, 0)
    return RankResult(cmc_sum / valid, float(np.mean(aps)), valid)
