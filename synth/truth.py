"""Comparing what the pipeline produced with a synthetic scene's exact ground truth (pure functions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from synth.scene import Scene
from synth.visits import drawn_boxes, visit_boxes

TruthBox = tuple[int, int, tuple[float, float, float, float], float]  # frame, pid, (x1, y1, x2, y2), visible


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def identify(scene: Scene, camera: int, path: Iterable[Sequence[float]], min_iou: float = 0.3) -> int | None:
    """The ground-truth person a tracklet shows: the majority over every frame of its ``path`` (rows of
    time, x1, y1, x2, y2: ``Tracklet.path``, crops or not, so the label does not depend on which crops were
    chosen to describe it) of the person whose true box (clipped to the frame) overlaps the tracked box
    best, when that overlap reaches ``min_iou``."""
    w, h = scene.spec.width, scene.spec.height
    votes: Counter[int] = Counter()
    for t, *box in path:
        best, best_iou = None, min_iou
        for truth in scene.boxes(camera, float(t)):
            x1, y1, x2, y2 = truth.box
            score = iou(box, (max(0, x1), max(0, y1), min(w, x2), min(h, y2)))
            if score >= best_iou:
                best, best_iou = truth.pid, score
        if best is not None:
            votes[best] += 1
    return votes.most_common(1)[0][0] if votes else None


def truth_boxes(scene: Scene, camera: int) -> list[TruthBox]:
    """Every person ``camera`` shows in each of its frames, as ``Scene.render`` draws them (frame ``i`` at time
    ``i / fps``): (frame index from 0, pid, box x1, y1, x2, y2 clipped to the frame, share of the whole box
    inside the frame), by frame, far to near. The box is the one ``render`` draws the person to fill, in whole
    pixels: a walker fills its width mid-stride and about half of it with legs together, a still person most
    of it. People hidden behind others still count (their share is only the frame's cut); boxes too small to
    draw or wholly outside the frame do not. Pure arithmetic: no frame is rendered."""
    spec = scene.spec
    times = np.arange(scene.frame_count()) / spec.fps
    parts = []  # per visit: frame, depth, pid, clipped box, visible share
    for v in scene.visits:
        if v.camera != camera:
            continue
        frames = np.arange(np.searchsorted(times, v.t_enter), np.searchsorted(times, v.t_exit))  # enter <= t < exit
        boxes, _ = visit_boxes(v, times[frames], spec.width, spec.height)
        rounded, clipped, drawn = drawn_boxes(boxes, spec.width, spec.height)
        n, share = int(drawn.sum()), _area(clipped[drawn]) / _area(rounded[drawn])
        parts.append((frames[drawn], np.full(n, v.depth), np.full(n, v.pid), clipped[drawn], share))
    if not parts:
        return []
    frames, depths, pids, boxes, shares = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((depths, frames))  # stable: equal depths keep the visits' order, as render's sort does
    return [
        (f, p, (float(x1), float(y1), float(x2), float(y2)), s)
        for f, p, (x1, y1, x2, y2), s in zip(
            frames[order].tolist(), pids[order].tolist(), boxes[order].tolist(), shares[order].tolist(), strict=True
        )
    ]


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def passages(scene: Scene) -> set[tuple[int, int]]:
    """Every (person, camera) passage of the scene."""
    return {(v.pid, v.camera) for v in scene.visits}


def idf1(pairs: Iterable[tuple[int | None, int, float]]) -> dict:
    """Multi-camera IDF1 (Ristani et al. 2016) over tracklets: ``pairs`` of (true person or None, predicted
    identity, weight), weight being e.g. the tracklet's duration. True and predicted identities are
    matched one to one to maximise the weight they share (IDTP); IDF1 = 2 IDTP / (true + predicted weight).
    Tracklets of no true person count as predicted weight only (false positives)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    pairs = list(pairs)
    truths = sorted({t for t, _, _ in pairs if t is not None})
    preds = sorted({p for _, p, _ in pairs})
    shared = np.zeros((len(truths), len(preds)))
    ti, pi = {t: i for i, t in enumerate(truths)}, {p: i for i, p in enumerate(preds)}
    for t, p, w in pairs:
        if t is not None:
            shared[ti[t], pi[p]] += w
    rows, cols = linear_sum_assignment(-shared) if shared.size else ([], [])
    idtp = float(shared[rows, cols].sum())
    true_w = sum(w for t, _, w in pairs if t is not None)
    pred_w = sum(w for _, _, w in pairs)
    total = true_w + pred_w
    return {
        "idf1": 2 * idtp / total if total else 0.0,
        "idp": idtp / pred_w if pred_w else 0.0,
        "idr": idtp / true_w if true_w else 0.0,
        "true_people": len(truths),
        "identities": len(preds),
    }
