"""The motion gate and the shared, batched detector leave the tracks unchanged, on real footage with the real
INT8 YOLOv8n (OpenVINO): PETS 2009 vtest.avi (people walk through every frame) and an indoor clip whose
corridor stands empty for a third of its frames."""

from __future__ import annotations

import collections
import itertools
import threading
from typing import ClassVar

import numpy as np
import pytest

from pipeline.camera.detection import DetectionService, DetectorError, YoloDetector
from pipeline.camera.motion import GateOptions, MotionGate
from pipeline.camera.sources import open_source
from pipeline.camera.tracking import DetectorOptions, YoloTracker
from pipeline.types import Frame
from tests.support.paths import INDOOR, VTEST, YOLO_OPENVINO, needs_video

needs_detector = pytest.mark.skipif(
    not (YOLO_OPENVINO.is_dir() and INDOOR.is_dir()), reason=f"{YOLO_OPENVINO} or {INDOOR} is absent (no shared data)"
)


def frames_of(path, n: int) -> list[Frame]:
    source = open_source("c", str(path))
    frames = list(itertools.islice(source.frames(), n))
    source.stop()
    return frames


@pytest.fixture(scope="module")
def detector() -> YoloDetector:
    if not YOLO_OPENVINO.is_dir():
        pytest.skip(f"{YOLO_OPENVINO} is absent (a fresh clone without shared data)")
    return YoloDetector(str(YOLO_OPENVINO))


def track_figures(frames: list[Frame], tracker: YoloTracker) -> tuple[int, int]:
    """(tracks, total length in frames from each track's first box to its last)."""
    seen = collections.defaultdict(list)
    for f in frames:
        for box in tracker.update(f):
            seen[box.track_id].append(f.index)
    return len(seen), sum(v[-1] - v[0] + 1 for v in seen.values())


def tracker(detector: YoloDetector, gate: float, detect=None) -> YoloTracker:
    options = DetectorOptions(weights=str(YOLO_OPENVINO), gate=gate)
    return YoloTracker("c", options, detect or (lambda image: detector.detect([image])[0]))


def within(a: tuple[int, int], b: tuple[int, int], tolerance: float = 0.05) -> bool:
    return all(abs(x - y) <= tolerance * y for x, y in zip(a, b, strict=True))


@pytest.mark.slow
@needs_video
@needs_detector
def test_the_motion_gate_keeps_the_tracks_of_vtest(detector):
    frames = frames_of(VTEST, 160)
    off = track_figures(frames, tracker(detector, gate=0))
    gated = tracker(detector, gate=0.002)
    on = track_figures(frames, gated)
    assert off[0] >= 10 and off[1] >= 1000  # people walk through the whole clip
    assert within(on, off), f"gate on {on} vs off {off}"


@pytest.mark.slow
@needs_video
@needs_detector
def test_the_motion_gate_skips_an_empty_corridor_and_keeps_its_track(detector):
    frames = frames_of(INDOOR / "cam1.mp4", 150)  # the whole clip
    off = track_figures(frames, tracker(detector, gate=0))
    gated = tracker(detector, gate=0.002)
    on = track_figures(frames, gated)
    assert off[0] >= 1 and off[1] >= 50
    # the corridor stands empty before the person comes (after they leave, the detector looks for them on every
    # frame until the tracker gives them up, as it would without the gate)
    assert gated.counts["gated"] >= 20
    assert gated.counts["gated"] + gated.counts["detected"] == len(frames)
    assert within(on, off), f"gate on {on} vs off {off}"


@pytest.mark.slow
@needs_video
@needs_detector
def test_cameras_sharing_a_batched_detector_find_the_tracks_each_finds_alone(detector):
    frames = frames_of(VTEST, 50)
    alone = track_figures(frames, tracker(detector, gate=0))
    service = DetectionService(detector, max_batch=3)
    figures = {}

    def camera(i: int) -> None:
        figures[i] = track_figures(frames, tracker(detector, gate=0, detect=service.detect))

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    service.stop()
    assert service.counts["images"] == 3 * len(frames)
    assert service.counts["largest"] >= 2  # the cameras' frames were detected together
    for i in range(3):
        assert within(figures[i], alone), f"camera {i}: {figures[i]} vs alone {alone}"


def test_a_still_picture_is_gated_and_a_moving_one_is_not():
    still = np.zeros((360, 480, 3), np.uint8)
    still[:] = np.linspace(60, 200, 480, dtype=np.uint8)[None, :, None]  # a plain wall, lit from one side
    gate = MotionGate(GateOptions(threshold=0.002, refresh=0.5))
    assert gate.wants(still, 0.0, tracking=False)  # the first frame always: nothing to compare with
    assert not any(gate.wants(still, t / 10, tracking=False) for t in range(1, 20))
    moved = still.copy()
    moved[100:200, 100:140] = 20  # a person walks in
    assert gate.wants(moved, 2.0, tracking=False)
    # a still picture with a track open is detected again every `refresh` seconds
    times = [t / 10 for t in range(30, 60)]
    detected = [t for t in times if gate.wants(still, t, tracking=True)]
    assert detected and all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(detected))
    assert len(detected) <= 7


def test_a_still_picture_without_tracks_is_detected_every_idle_seconds():
    """Someone who sits still from the start is part of the average and never moves: the detector still looks
    every ``idle`` seconds, so they are found."""
    still = np.full((90, 120, 3), 120, np.uint8)
    gate = MotionGate(GateOptions(threshold=0.002, refresh=0.5, idle=2.0))
    detected = [t / 10 for t in range(100) if gate.wants(still, t / 10, tracking=False)]
    assert detected == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0])


def test_a_missed_person_is_looked_for_on_every_frame():
    """While the tracker searches for a person the detector missed, the gate lets every frame through."""
    still = np.full((90, 120, 3), 120, np.uint8)
    gate = MotionGate(GateOptions(threshold=0.002, refresh=0.5, idle=2.0))
    assert gate.wants(still, 0.0, tracking=True)  # the first frame
    assert not gate.wants(still, 0.1, tracking=True)
    assert all(gate.wants(still, t / 10, tracking=True, searching=True) for t in range(2, 10))


def test_a_gate_of_zero_detects_every_frame():
    gate = MotionGate(GateOptions(threshold=0))
    still = np.zeros((36, 48, 3), np.uint8)
    assert all(gate.wants(still, t, tracking=False) for t in range(10))


def test_a_failing_detector_raises_in_the_calling_camera_and_the_service_goes_on():
    class Flaky:
        weights = "flaky"
        calls = 0

        def detect(self, images):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("inference failed")
            return [np.zeros((0, 6), np.float32) for _ in images]

    service = DetectionService(Flaky())
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(DetectorError, match=r"flaky: detection failed .*inference failed"):
        service.detect(image)
    assert service.detect(image).shape == (0, 6)
    service.stop()


def test_a_picture_that_breaks_a_batch_fails_only_its_own_camera():
    class Picky:
        """Fails any batch holding a white picture; returns one result too few when asked for three or more."""

        weights = "picky"

        def detect(self, images):
            if any(i.mean() == 255 for i in images):
                raise ValueError("cannot read this picture")
            return [np.zeros((0, 6), np.float32) for _ in images][: 2 if len(images) >= 3 else None]

    service = DetectionService(Picky(), max_batch=4, max_wait=0.3)  # the three cameras' pictures in one batch
    pictures = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8), np.ones((8, 8, 3), np.uint8)]
    results = {}

    def camera(i: int) -> None:
        try:
            results[i] = service.detect(pictures[i]).shape
        except DetectorError as e:
            results[i] = str(e)

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    service.stop()
    assert not any(t.is_alive() for t in threads)  # nobody waits forever
    assert results[0] == results[2] == (0, 6)
    assert "cannot read this picture" in results[1]
    assert service.counts["largest"] == 3


def test_the_detector_waits_while_the_embedder_runs_and_never_longer_than_its_bound():
    import time

    from pipeline.turns import Turns

    turns = Turns(max_wait=5.0)
    order = []

    class Recording:
        weights = "recording"

        def detect(self, images):
            order.append("detect")
            return [np.zeros((0, 6), np.float32) for _ in images]

    service = DetectionService(Recording(), turns=turns)
    image = np.zeros((8, 8, 3), np.uint8)
    service.detect(image)  # the service's thread is up and idle
    with turns.first():
        waiting = threading.Thread(target=service.detect, args=(image,))
        waiting.start()
        time.sleep(0.3)  # the detector's batch waits for the embedder's turn to end
        order.append("embedded")
    waiting.join(10)
    service.stop()
    assert order == ["detect", "embedded", "detect"] and turns.waited >= 1

    bounded = Turns(max_wait=0.05)
    with bounded.first():
        bounded.after()  # returns after its bound although the first service still runs
    assert bounded.waited == 1


def test_a_camera_skips_a_frame_its_detector_fails_on_and_stops_failed_after_many():
    from pipeline.camera.tracklets import TrackletBuffer, TrackletPolicy
    from pipeline.camera.worker import CameraStages, CameraWorker
    from pipeline.types import Frame

    failing = set(range(3, 5)) | set(range(10, 100))  # a short streak (skipped), then a long one

    def detect(image):
        if int(image[0, 0, 0]) in failing:
            raise DetectorError("yolo: detection failed (inference failed)")
        return np.zeros((0, 6), np.float32)

    class Frames:
        """A source of 40 frames, each carrying its index in its first pixel."""

        class buffer:
            dropped = 0

        state = type("State", (), {"value": "ended"})()
        error = ""
        counts: ClassVar[dict] = {}

        def frames(self, poll=0.2, until=None):
            for i in range(40):
                if until is not None and until():
                    return
                yield Frame("c", i, i / 10, np.full((48, 64, 3), i, np.uint8))

        def stop(self):
            pass

    tracker = YoloTracker("c", DetectorOptions(weights="yolo", gate=0), detect, max_errors=5)
    statuses = []
    stages = CameraStages("c", tracker, TrackletBuffer("c", TrackletPolicy()), lambda t: None)
    report = CameraWorker(Frames(), stages, lambda *a, **k: statuses.append(a)).run()
    assert tracker.counts["errors"] == 2 + 5 and tracker.counts["detected"] == 8  # frames 0-2, 5-9
    assert report.final_state == "failed" and "5 frames in a row" in report.error
    assert statuses[-1][1:] == ("failed", report.error)
