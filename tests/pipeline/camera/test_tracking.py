"""Detection and tracking on real frames (PETS 2009 vtest.avi) with the real INT8 YOLOv8n ONNX detector."""

from __future__ import annotations

import itertools

import pytest

from pipeline.camera.sources import open_source
from pipeline.camera.tracking import DetectorError, DetectorOptions, MotionTracker, YoloTracker, load_yolo
from tests.support.paths import VTEST, YOLO_ONNX, needs_video


def first_frames(n: int):
    source = open_source("pets", str(VTEST))
    frames = list(itertools.islice(source.frames(), n))
    source.stop()
    return frames


@pytest.mark.slow
@needs_video
def test_yolo_tracks_people_with_per_camera_ids():
    frames = first_frames(40)
    a = YoloTracker("cam-a", DetectorOptions(weights=str(YOLO_ONNX)))
    b = YoloTracker("cam-b", DetectorOptions(weights=str(YOLO_ONNX)))
    ids_a, ids_b = set(), set()
    for f in frames:
        boxes = a.update(f)
        ids_a |= {x.track_id for x in boxes}
        ids_b |= {x.track_id for x in b.update(f)}
        assert all(x.camera_id == "cam-a" and 0 < x.score <= 1 and x.timestamp == f.timestamp for x in boxes)
    assert len(ids_a) >= 4
    assert ids_a == set(range(1, len(ids_a) + 1))  # this camera's own sequence
    assert min(ids_b) == 1  # the second camera starts its own sequence too


@needs_video
def test_detect_every_k_frames():
    frames = first_frames(12)
    tracker = YoloTracker("c", DetectorOptions(weights=str(YOLO_ONNX), every=3))
    per_frame = [len(tracker.update(f)) for f in frames]
    assert all(n == 0 for i, n in enumerate(per_frame) if i % 3)


@needs_video
def test_motion_tracker_finds_walking_people():
    tracker = MotionTracker("c", DetectorOptions(weights="motion"))
    ids, boxes = set(), []
    for f in first_frames(120):
        found = tracker.update(f)
        ids |= {b.track_id for b in found}
        boxes += found
    assert len(ids) >= 3
    assert all((b.box[3] - b.box[1]) > (b.box[2] - b.box[0]) for b in boxes)  # taller than wide


def test_missing_weights_say_how_to_provide_them(tmp_path):
    with pytest.raises(DetectorError, match=r"detector weights not found.*--detector motion"):
        load_yolo(str(tmp_path / "yolov8n.pt"))
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load these weights"):
        YoloTracker("c", DetectorOptions(weights=str(bad)))
