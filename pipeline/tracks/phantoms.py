"""Phantom identities: predicted identities with no person behind them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pipeline.tracks.metrics import box_iou
from pipeline.tracks.mot import TrackRow, is_person


def phantom_identities(
    gt: Mapping[str, list[TrackRow]], pred: Mapping[str, list[TrackRow]], iou: float = 0.5, share: float = 0.5
) -> set[int]:
    """The predicted identities whose boxes cover a true person (any, overlap ``iou`` or more) in less than ``share``
    of their frames, over every camera: a detection of no one (a shadow, a reflection, a chair), tracked and kept."""
    import numpy as np

    boxes: Counter[int] = Counter()
    on_person: Counter[int] = Counter()
    for camera, rows in pred.items():
        truth: dict[int, list[TrackRow]] = {}
        for r in gt.get(camera, []):
            if is_person(r):
                truth.setdefault(r.frame, []).append(r)
        for r in rows:
            boxes[r.identity] += 1
            people = truth.get(r.frame)
            if not people:
                continue
            xywh = lambda rs: np.array([[x.left, x.top, x.width, x.height] for x in rs], float)  # noqa: E731
            if box_iou(xywh([r]), xywh(people)).max() >= iou:
                on_person[r.identity] += 1
    return {i for i, n in boxes.items() if on_person[i] < share * n}
