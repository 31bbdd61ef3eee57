"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), for query x gallery distances."""

from __future__ import annotations

import numpy as np


def _nearest(dist: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """int[N, k]: the k nearest indices of each row, nearest first (a row includes itself)."""
    n = dist.shape[0]
    k = min(k, n)
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, chunk):
        block = dist[s : s + chunk]
        part = np.argpartition(block, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
        out[s : s + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def k_reciprocal(i: int, forward: np.ndarray, k: int) -> np.ndarray:
    """R(i, k) = {j in N(i, k) : i in N(j, k)}, with N(., k) the k+1 nearest (self included)."""
    candidates = forward[i, : k + 1]
    return candidates[np.any(forward[candidates, : k + 1] == i, axis=1)]


def re_ranking(
    q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """Re-ranked distances ``float[Q,G]`` from the original query/gallery distances.

    The same function as torchreid's ``re_ranking`` (Zhong et al.'s code, which the AAAI-2020 code uses too),
    to float32 precision, conventions included, so results compare with published figures: the distances
    given are squared first, and each row of the squared matrix is scaled by its own maximum (torchreid
    divides by the column maxima and transposes: the same thing). Over all N = Q+G items:
    1. R*(i): the k1-reciprocal set R(i,k1), expanded by R(j, k1/2) for each j in it whose own set
       shares more than 2/3 of its members with R(i,k1) (Eq. 6).
    2. V_i: Gaussian-kernel weights exp(-d(i,j)) on R*(i), normalised to sum 1 (Eq. 7).
    3. Local query expansion: V_i <- mean of V_j over the k2 nearest neighbours j of i (Eq. 11).
    4. Jaccard distance d_J(i,j) = 1 - sum_k min(V_ik, V_jk) / sum_k max(V_ik, V_jk) (Eq. 10).
    5. d* = (1 - lambda) d_J + lambda d (Eq. 12), d the scaled squared distance.
    Memory is O(N^2) float32 for the full distance and V matrices (about 0.6 GB each for MARS).
    """
    num_q, num_g = q_g.shape
    dist = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32)
    np.square(dist, out=dist)
    dist = np.ascontiguousarray((dist / np.maximum(dist.max(axis=0, keepdims=True), 1e-12)).T)
    n = dist.shape[0]
    forward = _nearest(dist, k1 + 1)
    half = int(np.around(k1 / 2))
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r = k_reciprocal(i, forward, k1)
        expanded = [r]
        for j in r:
            rj = k_reciprocal(int(j), forward, half)
            if len(np.intersect1d(rj, r, assume_unique=True)) > 2 / 3 * len(rj):
                expanded.append(rj)
        members = np.unique(np.concatenate(expanded))
        weights = np.exp(-dist[i, members])
        v[i, members] = weights / weights.sum()
    if k2 > 1:
        neighbours = forward[:, :k2] if k2 <= forward.shape[1] else _nearest(dist, k2)
        v = np.stack([v[neighbours[i]].mean(axis=0) for i in range(n)])
    jaccard = np.empty((num_q, num_g), dtype=np.float32)
    gallery_v = v[num_q:]
    for i in range(num_q):
        support = np.flatnonzero(v[i])
        overlap = np.minimum(v[i, support][None, :], gallery_v[:, support]).sum(axis=1)
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)  # rows of V sum to 1: sum of max = 2 - sum of min
    return (1 - lambda_value) * jaccard + lambda_value * dist[:num_q, num_q:]
