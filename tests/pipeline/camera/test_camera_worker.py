"""``CameraStages`` and ``CameraWorker`` on real parts, without Redis: a rendered synthetic camera
(``synth://``), the motion tracker and a tracklet buffer; the tracklets and statuses go to lists."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.camera.sources import Source, open_source
from pipeline.camera.tracking import DetectorOptions, make_tracker
from pipeline.camera.tracklets import TrackletBuffer, TrackletPolicy
from pipeline.camera.worker import CameraStages, CameraWorker, WorkerReport
from pipeline.site import SOURCE_TYPES
from pipeline.types import Tracklet

CAMERA = "door"
SCENE = "synth://?cameras=1&people=2&seconds=6&seed=3&camera=0"  # 60 frames; one walker crosses the view
SCENE_FRAMES = 60
# Tracklets close every 2 s, so some close while the scene runs and one is still open when it ends; the
# synthetic people are smaller than the default minimum box height (as for the demo's scene).
POLICY = TrackletPolicy(max_seconds=2.0, min_box_height=30)


def camera_stages(tracklets: list[Tracklet]) -> CameraStages:
    """The motion tracker and a tracklet buffer for ``CAMERA``, closed tracklets appended to ``tracklets``."""
    tracker = make_tracker(CAMERA, DetectorOptions())
    return CameraStages(CAMERA, tracker, TrackletBuffer(CAMERA, POLICY), tracklets.append)


def synth_source(url: str = SCENE) -> Source:
    return open_source(CAMERA, url, types=SOURCE_TYPES)


@dataclass
class Run:
    """A worker's run over the whole scene, with what its callbacks received."""

    worker: CameraWorker
    source: Source
    report: WorkerReport
    tracklets: list[Tracklet] = field(default_factory=list)
    statuses: list[tuple[tuple, dict]] = field(default_factory=list)


@pytest.fixture(scope="module")
def scene_run() -> Run:
    """``SCENE`` through a worker that reports its status after every frame (``status_every=0``)."""
    tracklets: list[Tracklet] = []
    statuses: list[tuple[tuple, dict]] = []
    source = synth_source()
    worker = CameraWorker(source, camera_stages(tracklets), lambda *a, **k: statuses.append((a, k)), status_every=0.0)
    return Run(worker, source, worker.run(), tracklets, statuses)


def test_every_closed_tracklet_reaches_the_callback_and_is_counted(scene_run):
    r = scene_run.report
    assert r.tracklets == len(scene_run.tracklets) >= 2
    assert r.counts["tracklets"] == r.tracklets  # the buffer's own count of the tracklets it closed
    assert all(t.camera_id == CAMERA for t in scene_run.tracklets)
    keys = [(t.track_id, t.seq) for t in scene_run.tracklets]
    assert len(set(keys)) == len(keys)  # each tracklet handed over once
    assert r.boxes > 0 and r.counts["collected"] > 0
    assert not scene_run.worker.stages.buffer.open  # the tracklets open at the end were handed over too


def test_the_report_counts_every_frame_the_source_delivered(scene_run):
    r = scene_run.report
    assert r.frames == scene_run.source.counts["frames"] == SCENE_FRAMES
    assert r.counts["source_frames"] == SCENE_FRAMES
    assert r.final_state == "ended" and r.seconds > 0 and r.fps > 0
    assert r.as_dict()["frames"] == SCENE_FRAMES and r.as_dict()["camera"] == CAMERA


def test_the_status_callback_gets_the_camera_its_final_state_and_counters(scene_run):
    r = scene_run.report
    (camera, state, error), counters = scene_run.statuses[-1]
    assert (camera, state, error) == (CAMERA, "ended", "")
    assert counters == {"frames": r.frames, "fps": round(r.fps, 2), "tracklets": r.tracklets, "dropped_frames": 0}
    # every frame gave a status while the source streamed (status_every=0), then the final one
    assert len(scene_run.statuses) == r.frames + 1
    during = scene_run.statuses[:-1]
    assert [k["frames"] for _, k in during] == list(range(1, r.frames + 1))
    assert {a[0] for a, _ in during} == {CAMERA} and {a[1] for a, _ in during} <= {"streaming", "ended"}


def test_a_status_is_sent_when_the_worker_stops_even_between_periods():
    statuses: list[tuple[tuple, dict]] = []
    worker = CameraWorker(synth_source(), camera_stages([]), lambda *a, **k: statuses.append((a, k)), 3600.0)
    report = worker.run()
    assert len(statuses) == 1 and statuses[0][0] == (CAMERA, "ended", "")
    assert statuses[0][1]["frames"] == report.frames == SCENE_FRAMES


def test_finish_hands_over_the_tracklets_still_open():
    tracklets: list[Tracklet] = []
    stages = camera_stages(tracklets)
    source = synth_source()
    for frame in source.frames():
        stages.process(frame)
    closed_while_running = len(tracklets)
    still_open = set(stages.buffer.open)
    assert closed_while_running >= 1 and still_open, "the scene should leave a tracklet open at its end"
    assert stages.report.tracklets == closed_while_running
    stages.finish()
    handed = tracklets[closed_while_running:]
    assert handed and {t.track_id for t in handed} <= still_open and not stages.buffer.open
    assert stages.report.tracklets == len(tracklets)
    assert stages.report.frames == source.counts["frames"] == SCENE_FRAMES


def test_max_seconds_stops_the_run_and_the_source():
    long_scene = "synth://?cameras=1&people=2&seconds=60&seed=3&camera=0"  # 600 frames, far more than it reads
    source = synth_source(long_scene)
    report = CameraWorker(source, camera_stages([])).run(max_seconds=0.2)
    assert 0 < report.frames < 600 and report.seconds >= 0.2
    # the source was stopped: it read at most a buffer's worth of frames ahead, and its thread has ended
    assert source.counts["frames"] <= report.frames + source.buffer.capacity + 1
    assert source.buffer.closed and report.final_state == source.state.value == "stopped"


def test_a_worker_without_a_status_callback_runs():
    tracklets: list[Tracklet] = []
    report = CameraWorker(synth_source(), camera_stages(tracklets)).run()
    assert report.frames == SCENE_FRAMES and report.final_state == "ended"
    assert report.tracklets == len(tracklets) >= 1
