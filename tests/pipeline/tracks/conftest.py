"""A small two-camera scene with hand-made boxes: ground truth and a flawed prediction, identities global."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipeline.tracks.mot import TrackRow

W, H = 40.0, 100.0  # every box's size; a prediction shifted by d pixels has IoU (W - d) / (W + d)


def person(identity: int, frames, x: float, shift: float = 0.0, **extra) -> list[TrackRow]:
    """``identity`` standing at ``x`` in ``frames``, its box moved right by ``shift`` plus (frame % 5) pixels
    when ``shift`` is not 0 (a prediction's small, varying error)."""
    return [TrackRow(f, identity, x + (shift + f % 5 if shift else 0.0), 50.0, W, H, **extra) for f in frames]


@dataclass(frozen=True)
class Scene:
    gt: dict[str, list[TrackRow]]
    pred: dict[str, list[TrackRow]]
    lengths: dict[str, int]  # each camera's frame count (its video's length)


@pytest.fixture
def scene() -> Scene:
    """Two cameras; ground-truth identities 1-4, prediction identities 11-17.

    cam1, frames 1-12: people 1 and 2 throughout, person 3 in frames 1-6, a static person (class 7, conf 0)
    in frames 1-4, a person flagged conf 0 in frame 5.
    cam2, frames 1-10: person 1 again in frames 1-8 (the person seen by both cameras), person 4 in frames 3-8.

    The prediction: 11 follows person 1 in cam1 and in cam2's frames 1-4, then 17 does (the cross-camera
    link holds for half of cam2); person 2 is 12 until frame 6, then 13 (an identity switch); person 3 is
    missed; 14 is a false positive where nobody stands (frames 2-5); 15 sits on the static person (dropped, a
    distractor); 16 on the conf-0 person (a false positive); in cam2 person 4 is predicted as 12, the
    identity of person 2 in cam1, and its frame-8 box is 25 pixels off (IoU 0.23: a miss and a false positive).
    """
    gt = {
        "cam1": [
            *person(1, range(1, 13), 10, cls=1),
            *person(2, range(1, 13), 200, cls=1),
            *person(3, range(1, 7), 400, cls=1),
            *person(5, range(1, 5), 600, conf=0.0, cls=7),
            *person(6, [5], 800, conf=0.0, cls=1),
        ],
        "cam2": [*person(1, range(1, 9), 10, cls=1), *person(4, range(3, 9), 300, cls=1)],
    }
    pred = {
        "cam1": [
            *person(11, range(1, 13), 10, shift=1),
            *person(12, range(1, 7), 200, shift=2),
            *person(13, range(7, 13), 200, shift=1),
            *person(14, range(2, 6), 1000),
            *person(15, range(1, 5), 600, shift=1),
            *person(16, [5], 800, shift=1),
        ],
        "cam2": [
            *person(11, range(1, 5), 10, shift=2),
            *person(17, range(5, 9), 10, shift=1),
            *person(12, range(3, 8), 300, shift=1),
            *person(12, [8], 325),
        ],
    }
    return Scene(gt, pred, {"cam1": 12, "cam2": 10})
