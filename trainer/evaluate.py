"""Offline evaluation: dense tracklet features, distances, CMC / mAP, optional re-ranking."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.embedder import Embedder
from models.errors import ModelFileError
from models.spec import ModelSpec
from trainer.data.clips import BadFrames, read_clip
from trainer.data.index import DatasetIndex, Tracklet
from trainer.data.sampling import dense_clips
from trainer.metrics import evaluate_rank
from trainer.rerank import re_ranking

Progress = Callable[[int, int], None]


def embed_tracklets(
    embedder: Embedder,
    tracklets: Sequence[Tracklet],
    frames: int,
    batch_clips: int = 64,
    bad: BadFrames | None = None,
    progress: Progress | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """``float32[N,D]``: the mean of each tracklet's dense clip features, L2-normalised; with ``normalize``
    False, the plain mean of the raw clip features (the AAAI-2020 and Gao & Nevatia test code).

    Every non-overlapping ``frames``-frame clip of every tracklet is embedded, ``batch_clips`` clips at a
    time, and summed into its tracklet's row as it comes, so memory holds one batch of images and the
    ``N x D`` result, never all clips of a 12k-tracklet gallery. A tracklet with no readable frame gets
    a NaN row (``rank_distances`` then ranks it last) and its frames are counted in ``bad``.
    """
    bad = bad if bad is not None else BadFrames()
    spec = embedder.spec.input
    sums = np.zeros((len(tracklets), embedder.feature_dim), np.float64)
    counts = np.zeros(len(tracklets), np.int64)
    pending_clips: list[np.ndarray] = []
    pending_rows: list[int] = []

    def flush() -> None:
        if pending_clips:
            features, _ = embedder.embed(np.stack(pending_clips), normalize=normalize)
            np.add.at(sums, pending_rows, features)
            np.add.at(counts, pending_rows, 1)
            pending_clips.clear()
            pending_rows.clear()

    for row, tracklet in enumerate(tracklets):
        for idx in dense_clips(len(tracklet.paths), frames) if tracklet.paths else []:
            clip = read_clip(tracklet, idx, spec.height, spec.width, bad)
            if clip is None:
                break
            pending_clips.append(clip)
            pending_rows.append(row)
            if len(pending_clips) >= batch_clips:
                flush()
        if progress:
            progress(row + 1, len(tracklets))
    flush()
    if normalize:
        feats = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    else:
        feats = sums / np.maximum(counts, 1)[:, None]
    feats[counts == 0] = np.nan
    return feats.astype(np.float32)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``||a_i - b_j||^2``, for any rows (``2 - 2 a_i . b_j`` when they are L2-normalised)."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0).astype(np.float32)


def rank_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``squared_distances`` for ranking: a NaN row (a tracklet with no readable frame) is at +inf from
    everything, so such a gallery tracklet ranks last, and such a query's ranking carries no information."""
    d = squared_distances(np.nan_to_num(a), np.nan_to_num(b))
    d[np.isnan(a).any(axis=1)] = np.inf
    d[:, np.isnan(b).any(axis=1)] = np.inf
    return d


def _finite(d: np.ndarray) -> np.ndarray:
    """``d`` with +inf replaced by twice its largest finite value (re-ranking needs finite distances)."""
    finite = d[np.isfinite(d)]
    return np.where(np.isfinite(d), d, 2.0 * (finite.max() if finite.size else 1.0)).astype(np.float32)


DISTANCES = ("cosine", "euclidean")


def recipe_split(spec: ModelSpec) -> int:
    """The split the model's recipe trained on (``data.split``; PRID-2011, iLIDS-VID), 0 when it names none."""
    return int(spec.provenance.get("recipe", {}).get("data", {}).get("split", 0))


def distinct_tracklets(index: DatasetIndex) -> tuple[list[Tracklet], list[int], list[int]]:
    """Each tracklet of the query and gallery once (a protocol may put a query in the gallery too, as
    Market-1501 without a test set and MARS's own code do), and the rows of the queries and of the gallery."""
    rows = {t: i for i, t in enumerate(dict.fromkeys(index.query + index.gallery))}
    return list(rows), [rows[t] for t in index.query], [rows[t] for t in index.gallery]


def protocol_ids(index: DatasetIndex) -> dict[str, np.ndarray]:
    """The person and camera ids of the query and gallery, as ``evaluate_rank`` takes them."""
    return {
        "q_pids": np.array([t.pid for t in index.query]),
        "g_pids": np.array([t.pid for t in index.gallery]),
        "q_camids": np.array([t.camid for t in index.query]),
        "g_camids": np.array([t.camid for t in index.gallery]),
    }


def recipe_distance(spec: ModelSpec) -> str:
    """The distance the model's recipe evaluates with (``eval.distance``), ``cosine`` when it names none."""
    distance = spec.provenance.get("recipe", {}).get("eval", {}).get("distance", "cosine")
    if distance not in DISTANCES:
        raise ModelFileError(f"model {spec.model_id}: recipe eval.distance {distance!r} is not one of {DISTANCES}")
    return distance


def evaluate_index(
    embedder: Embedder,
    index: DatasetIndex,
    frames: int,
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    batch_clips: int = 64,
    progress: Progress | None = None,
    distance: str = "cosine",
) -> dict[str, Any]:
    """CMC-1/5/10/20 and mAP on ``index``'s query and gallery, plain and (optionally) re-ranked.

    ``distance``: ``cosine`` ranks by the cosine of L2-normalised mean features (how the live system
    matches); ``euclidean`` by the squared Euclidean distance of raw mean features (the AAAI-2020 and Gao &
    Nevatia test code). Both rank by the squared Euclidean distance of the tracklet features, normalised or
    not; re-ranking is given the Euclidean distance, which it squares, as Zhong et al.'s code does."""
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    bad = BadFrames()
    tracklets, q_rows, g_rows = distinct_tracklets(index)  # each embedded once
    feats = embed_tracklets(embedder, tracklets, frames, batch_clips, bad, progress, normalize=distance == "cosine")
    q, g = feats[q_rows], feats[g_rows]
    ids = protocol_ids(index)
    q_g = rank_distances(q, g)
    plain = evaluate_rank(q_g, **ids)
    result: dict[str, Any] = {
        "mAP": plain.mAP,
        "cmc": plain.cmc_at(1, 5, 10, 20),
        "queries": plain.valid_queries,
        "distance": distance,
        "bad_frames": len(bad),
        "bad_frame_examples": sorted(bad.paths)[:5],
    }
    if rerank:
        reranked = re_ranking(
            np.sqrt(_finite(q_g)),
            np.sqrt(_finite(rank_distances(q, q))),
            np.sqrt(_finite(rank_distances(g, g))),
            k1,
            k2,
            lambda_value,
        )
        reranked[~np.isfinite(q_g)] = np.inf
        rr = evaluate_rank(reranked, **ids)
        result["rerank"] = {"mAP": rr.mAP, "cmc": rr.cmc_at(1, 5, 10, 20), "k1": k1, "k2": k2, "lambda": lambda_value}
    return result


def average_results(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean of several evaluations (PRID-2011 / iLIDS-VID: one per split), field by field."""
    if not results:
        raise ValueError("no results to average")

    def mean(part: str | None = None) -> dict[str, Any]:
        rows = [r[part] if part else r for r in results]
        return {
            "mAP": float(np.mean([r["mAP"] for r in rows])),
            "cmc": {k: float(np.mean([r["cmc"][k] for r in rows])) for k in rows[0]["cmc"]},
        }

    out = mean() | {"splits": len(results), "per_split": [{"mAP": r["mAP"], "cmc": r["cmc"]} for r in results]}
    if all("rerank" in r for r in results):
        out["rerank"] = mean("rerank")
    return out
