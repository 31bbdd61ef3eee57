"""The motion gate and the shared, batched detector leave the tracks unchanged, on real footage with the real
INT8 YOLOv8n (OpenVINO): PETS 2009 vtest.avi (people walk through every frame) and an indoor clip whose
corridor stands empty for a third of its frames."""

from __future__ import annotations

import collections
import itertools
import threading

import numpy as np
import pytest

from pipeline.camera.detection import DetectionService, YoloDetector
from pipeline.camera.motion import GateOptions, MotionGate
from pipeline.camera.sources import open_source
from pipeline.camera.tracking import DetectorOptions, YoloTracker
from pipeline.types import Frame
from tests.support.paths import INDOOR, VTEST, YOLO_OPENVINO, needs_video

pytestmark = needs_video


def frames_of(path, n: int) -> list[Frame]:
    source = open_source("c", str(path))
    frames = list(itertools.islice(source.frames(), n))
    source.stop()
    return frames


@pytest.fixture(scope="module")
def detector() -> YoloDetector:
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
def test_the_motion_gate_keeps_the_tracks_of_vtest(detector):
    frames = frames_of(VTEST, 160)
    off = track_figures(frames, tracker(detector, gate=0))
    gated = tracker(detector, gate=0.002)
    on = track_figures(frames, gated)
    assert off[0] >= 10 and off[1] >= 1000  # people walk through the whole clip
    assert within(on, off), f"gate on {on} vs off {off}"


@pytest.mark.slow
def test_the_motion_gate_skips_an_empty_corridor_and_keeps_its_track(detector):
    frames = frames_of(INDOOR / "cam1.mp4", 150)  # the whole clip
    off = track_figures(frames, tracker(detector, gate=0))
    gated = tracker(detector, gate=0.002)
    on = track_figures(frames, gated)
    assert off[0] >= 1 and off[1] >= 50
    assert gated.counts["gated"] >= 30  # the corridor stands empty before and after the person
    assert gated.counts["gated"] + gated.counts["detected"] == len(frames)
    assert within(on, off), f"gate on {on} vs off {off}"


@pytest.mark.slow
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
    with pytest.raises(RuntimeError, match="inference failed"):
        service.detect(image)
    assert service.detect(image).shape == (0, 6)
    service.stop()


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
