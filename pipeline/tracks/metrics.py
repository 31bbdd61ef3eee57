"""Multi-camera scores of per-frame tracks against ground truth: IDF1/IDP/IDR, CLEAR MOT and HOTA, computed by
TrackEval's own metric classes (``trackeval.metrics.Identity``, ``CLEAR``, ``HOTA``).

Scoring follows the multi-camera practice of DukeMTMC and the AI City Challenge: every camera's frames form
one long sequence, the cameras one after another in sorted order, and identities are shared across cameras,
so a person whose predicted identity changes between cameras costs identity figures as a switch within one
camera does. Per timestep the similarity is box IoU; a box pair matches at ``ScoreOptions.iou`` or more
(CLEAR, Identity; HOTA averages over its own IoU thresholds 0.05 to 0.95 and takes no threshold).

Ground-truth conventions are MOTChallenge's (TrackEval's ``MotChallenge2DBox`` with preprocessing): in each
frame every ground-truth box, scored or not, is matched one-to-one to the predicted boxes (Hungarian, IoU at
the threshold or more); a predicted box matched to a distractor (``mot.is_distractor``) is dropped; then only
person rows (``mot.is_person``) remain as ground truth. ``ScoreOptions.gt_ids`` scores a subset of people by
treating every other ground-truth identity as a distractor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.tracks.mot import TrackRow, is_distractor, is_person
from pipeline.tracks.options import ScoreOptions, ScoringError

__all__ = ["ScoreOptions", "Scores", "ScoringError", "TrackScores", "box_iou", "evaluate"]

EPS = np.finfo(float).eps  # TrackEval's tolerance on threshold comparisons


@dataclass(frozen=True)
class Scores:
    """The figures of one scope (all cameras, or one). Ratios are in [0, 1] (MOTA may be negative)."""

    idf1: float  # identity F1: 2 IDTP / (2 IDTP + IDFP + IDFN), after the best one-to-one identity assignment
    idp: float  # identity precision: IDTP / (IDTP + IDFP)
    idr: float  # identity recall: IDTP / (IDTP + IDFN)
    mota: float  # 1 - (FN + FP + ID switches) / GT boxes
    motp: float  # mean IoU of the matched box pairs
    hota: float  # sqrt(DetA * AssA), averaged over IoU thresholds 0.05 .. 0.95
    deta: float  # detection accuracy: TP / (TP + FN + FP), averaged likewise
    assa: float  # association accuracy: how well matched boxes' identities agree over time, averaged likewise
    id_switches: int
    true_positives: int
    false_positives: int
    false_negatives: int
    idtp: int
    idfp: int
    idfn: int
    gt_boxes: int
    pred_boxes: int
    gt_identities: int
    pred_identities: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class TrackScores:
    """The scores of a prediction: over all cameras as one sequence, and each camera alone."""

    overall: Scores
    cameras: Mapping[str, Scores]  # camera id -> its figures, in camera order
    options: ScoreOptions
    left_out: tuple[str, ...] = ()  # prediction cameras without ground truth, not scored
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.as_dict(),
            "cameras": {c: s.as_dict() for c, s in self.cameras.items()},
            "iou": self.options.iou,
            "gt_ids": None if self.options.gt_ids is None else sorted(self.options.gt_ids),
            "local_ids": self.options.local_ids,
            "left_out": list(self.left_out),
            "warnings": list(self.warnings),
        }


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``float[N,4]`` and ``float[M,4]``, each ``(left, top, width, height)``: ``float[N,M]``.

    Intersection area over union area; a pair with an empty box or union scores 0 (TrackEval's
    ``_calculate_box_ious``, the same operations in the same order)."""
    a0, a1 = a[:, :2], a[:, :2] + a[:, 2:]
    b0, b1 = b[:, :2], b[:, :2] + b[:, 2:]
    lo = np.maximum(a0[:, None, :], b0[None, :, :])
    hi = np.minimum(a1[:, None, :], b1[None, :, :])
    intersection = np.maximum(hi[..., 0] - lo[..., 0], 0) * np.maximum(hi[..., 1] - lo[..., 1], 0)
    area_a = (a1[:, 0] - a0[:, 0]) * (a1[:, 1] - a0[:, 1])
    area_b = (b1[:, 0] - b0[:, 0]) * (b1[:, 1] - b0[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    intersection[area_a <= EPS, :] = 0
    intersection[:, area_b <= EPS] = 0
    intersection[union <= EPS] = 0
    union[union <= EPS] = 1
    return intersection / union


@dataclass(frozen=True)
class Step:
    """One frame of one camera, ready to score: the identity keys of the ground-truth and predicted boxes
    kept, and their IoU ``float[len(gt), len(pred)]``."""

    gt: tuple[Any, ...]
    pred: tuple[Any, ...]
    similarity: np.ndarray


def _boxes(rows: Sequence[TrackRow]) -> np.ndarray:
    return np.array([(r.left, r.top, r.width, r.height) for r in rows], dtype=float).reshape(-1, 4)


def _by_frame(rows: Iterable[TrackRow]) -> dict[int, list[TrackRow]]:
    frames: dict[int, list[TrackRow]] = defaultdict(list)
    for r in rows:
        frames[r.frame].append(r)
    return frames


def matched_to(similarity: np.ndarray, rows: np.ndarray, threshold: float) -> np.ndarray:
    """Columns (predicted boxes) that the one-to-one matching of maximum total IoU, among pairs at
    ``threshold`` or more, pairs with one of ``rows`` (a bool mask over ground-truth boxes)."""
    if not similarity.size or not rows.any():
        return np.empty(0, dtype=int)
    scores = similarity.copy()
    scores[scores < threshold - EPS] = 0
    r, c = linear_sum_assignment(-scores)
    matched = scores[r, c] > EPS
    r, c = r[matched], c[matched]
    return c[rows[r]]


def camera_steps(camera: str, gt: Sequence[TrackRow], pred: Sequence[TrackRow], options: ScoreOptions) -> list[Step]:
    """A camera's frames, in order, after the ground-truth conventions (module docstring). Frames without a
    row are left out: no metric counts them (TrackEval passes over an empty timestep)."""
    gt_frames, pred_frames = _by_frame(gt), _by_frame(pred)
    wanted = options.gt_ids

    def key(identity: int) -> Any:
        return (camera, identity) if options.local_ids else identity

    steps = []
    for frame in sorted(gt_frames.keys() | pred_frames.keys()):
        g, p = gt_frames.get(frame, []), pred_frames.get(frame, [])
        similarity = box_iou(_boxes(g), _boxes(p))
        dropping = np.array([is_distractor(r) or (wanted is not None and r.identity not in wanted) for r in g], bool)
        dropped = set(matched_to(similarity, dropping, options.iou).tolist())
        keep_gt = [i for i, r in enumerate(g) if is_person(r) and (wanted is None or r.identity in wanted)]
        keep_pred = [j for j in range(len(p)) if j not in dropped]
        steps.append(
            Step(
                tuple(key(g[i].identity) for i in keep_gt),
                tuple(key(p[j].identity) for j in keep_pred),
                similarity[np.ix_(keep_gt, keep_pred)],
            )
        )
    return steps


def trackeval_data(steps: Sequence[Step]) -> dict[str, Any]:
    """The sequence as TrackEval's metrics take it (``eval_sequence``): identities renumbered 0..n-1 in sorted
    order, as its datasets do."""
    gt_index = {k: i for i, k in enumerate(sorted({k for s in steps for k in s.gt}))}
    pred_index = {k: i for i, k in enumerate(sorted({k for s in steps for k in s.pred}))}
    return {
        "seq": "cameras",
        "num_timesteps": len(steps),
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(pred_index),
        "num_gt_dets": sum(len(s.gt) for s in steps),
        "num_tracker_dets": sum(len(s.pred) for s in steps),
        "gt_ids": [np.array([gt_index[k] for k in s.gt], dtype=int) for s in steps],
        "tracker_ids": [np.array([pred_index[k] for k in s.pred], dtype=int) for s in steps],
        "similarity_scores": [s.similarity for s in steps],
    }


def score_steps(steps: Sequence[Step], iou: float) -> Scores:
    """TrackEval's HOTA, CLEAR and Identity metrics on one sequence of steps."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    data = trackeval_data(steps)
    config = {"THRESHOLD": iou, "PRINT_CONFIG": False}
    hota = HOTA().eval_sequence(data)
    clear = CLEAR(config).eval_sequence(data)
    ident = Identity(config).eval_sequence(data)
    return Scores(
        idf1=float(ident["IDF1"]),
        idp=float(ident["IDP"]),
        idr=float(ident["IDR"]),
        mota=float(clear["MOTA"]),
        motp=float(clear["MOTP"]),
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        id_switches=int(clear["IDSW"]),
        true_positives=int(clear["CLR_TP"]),
        false_positives=int(clear["CLR_FP"]),
        false_negatives=int(clear["CLR_FN"]),
        idtp=int(ident["IDTP"]),
        idfp=int(ident["IDFP"]),
        idfn=int(ident["IDFN"]),
        gt_boxes=data["num_gt_dets"],
        pred_boxes=data["num_tracker_dets"],
        gt_identities=data["num_gt_ids"],
        pred_identities=data["num_tracker_ids"],
    )


def _span(ids: set[int]) -> str:
    return f"{min(ids)}-{max(ids)}" if len(ids) > 1 else str(min(ids))


def numbered_per_camera(gt: Mapping[str, Sequence[TrackRow]]) -> str | None:
    """A warning when ground-truth identities look numbered per camera rather than globally: each camera's
    identities are exactly 1..n of its own, and two cameras or more hold several. Global numbering can do that
    too (the same few people in every camera), hence a warning, not an error."""
    ids = {c: {r.identity for r in rows if is_person(r)} for c, rows in gt.items()}
    ids = {c: s for c, s in ids.items() if s}
    if sum(len(s) > 1 for s in ids.values()) < 2 or any(s != set(range(1, len(s) + 1)) for s in ids.values()):
        return None
    shown = ", ".join(f"{c} {_span(s)}" for c, s in list(ids.items())[:3]) + (", ..." if len(ids) > 3 else "")
    return (
        f"every camera's ground-truth identities run from 1 ({shown}): if each camera was numbered apart, the "
        "cross-camera figures are meaningless; renumber so one person has one id in every camera, or score "
        "with local ids (--local-ids)"
    )


def evaluate(
    gt: Mapping[str, Sequence[TrackRow]],
    pred: Mapping[str, Sequence[TrackRow]],
    options: ScoreOptions | None = None,
) -> TrackScores:
    """Score ``pred`` against ``gt`` (camera id -> that camera's rows, as ``mot.read_tracks`` gives them).

    The ground truth's cameras are scored; a prediction camera without ground truth is left out (listed in
    ``left_out`` and warned about), one missing from the prediction has every box missed. Raises
    ``ScoringError`` when no prediction camera has ground truth, or ``options.gt_ids`` names identities the
    ground truth lacks."""
    options = options or ScoreOptions()
    cameras = sorted(gt)
    left_out = tuple(sorted(set(pred) - set(gt)))
    if pred and len(left_out) == len(pred):
        raise ScoringError(
            f"no prediction camera ({', '.join(left_out)}) has ground truth (cameras {', '.join(cameras)}): "
            "name each prediction file after its camera's ground-truth file"
        )
    if options.gt_ids is not None:
        known = {r.identity for rows in gt.values() for r in rows if is_person(r)}
        if missing := sorted(options.gt_ids - known):
            raise ScoringError(
                f"identities to score {', '.join(map(str, missing))} are not in the ground truth (its identities "
                f"run {_span(known)}): name identities of the ground-truth files"
            )
    warnings = [f"prediction camera {c} has no ground truth: left out of the scores" for c in left_out]
    warnings += [
        f"camera {c} has no prediction: its {sum(map(is_person, gt[c]))} ground-truth boxes count as missed"
        for c in cameras
        if c not in pred
    ]
    if not options.local_ids and (warning := numbered_per_camera(gt)):
        warnings.append(warning)
    steps = {c: camera_steps(c, gt[c], pred.get(c, ()), options) for c in cameras}
    return TrackScores(
        overall=score_steps([s for c in cameras for s in steps[c]], options.iou),
        cameras={c: score_steps(steps[c], options.iou) for c in cameras},
        options=options,
        left_out=left_out,
        warnings=tuple(warnings),
    )
