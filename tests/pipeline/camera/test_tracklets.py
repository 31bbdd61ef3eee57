"""Tracklet cutting on hand-built frames and boxes."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from pipeline.camera.tracklets import TrackletBuffer, TrackletPolicy, blurred, crop_quality, even_indices, sharpness
from pipeline.types import Frame, TrackedBox

POLICY = TrackletPolicy(
    frames=4,
    crop_height=64,
    crop_width=32,
    max_length=10,
    max_seconds=100.0,
    lost_after=1.0,
    min_crops=2,
    min_box_height=20,
    blur_ratio=0.33,
)


def textured(h=120, w=160, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def soft(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` as a camera out of focus (Gaussian blur of ``sigma`` pixels) sees it."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def box(track: int, t: float, xy=(40, 20, 70, 90)) -> TrackedBox:
    return TrackedBox("cam", track, tuple(float(v) for v in xy), 0.9, t)


def frame(i: int, t: float, image=None) -> Frame:
    return Frame("cam", i, t, textured() if image is None else image)


def test_even_indices():
    assert even_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert even_indices(3, 4).tolist() == [0, 1, 2, 0]
    assert even_indices(4, 4).tolist() == [0, 1, 2, 3]


def test_track_end_closes_a_tracklet_of_t_even_crops():
    buf = TrackletBuffer("cam", POLICY)
    out = []
    for i in range(6):
        out += buf.add(frame(i, i * 0.1), [box(1, i * 0.1)])
    assert out == []
    out += buf.add(frame(6, 2.0), [])  # track 1 unseen for 1.5 s > lost_after
    (t,) = out
    assert (t.camera_id, t.track_id, t.seq, t.t_start, t.t_end) == ("cam", 1, 0, 0.0, 0.5)
    assert t.t_closed == 2.0  # closed on the frame it was found lost on
    assert t.crops.shape == (4, 64, 32, 3) and t.boxes.shape == (4, 4)


def test_length_limit_gives_successive_tracklets_of_one_track():
    buf = TrackletBuffer("cam", POLICY)
    out = []
    for i in range(25):
        out += buf.add(frame(i, i * 0.1), [box(3, i * 0.1)])
    out += buf.flush()
    assert [t.seq for t in out] == [0, 1, 2] and all(t.track_id == 3 for t in out)
    assert buf.counts["collected"] == 25 and buf.counts["tracklets"] == 3


def test_time_limit_closes_long_tracks():
    buf = TrackletBuffer("cam", TrackletPolicy(**{**POLICY.__dict__, "max_length": 1000, "max_seconds": 2.0}))
    out = []
    for i in range(50):
        out += buf.add(frame(i, i * 0.1), [box(5, i * 0.1)])
    assert len(out) == 2 and all(t.t_end - t.t_start >= 2.0 for t in out)


def test_poor_crops_are_counted_and_dropped():
    buf = TrackletBuffer("cam", POLICY)
    buf.add(frame(0, 0.0), [box(1, 0.0, (40, 20, 50, 30))])  # 10 px tall
    buf.add(frame(1, 0.1), [box(1, 0.1, (40, 20, 50, 35))])  # 15 px tall
    buf.add(frame(2, 0.2), [box(1, 0.2)])  # the one usable crop: too short a tracklet
    out = buf.add(frame(3, 5.0), [])
    assert out == []  # nothing published
    assert buf.counts == {"rejected_small": 2, "collected": 1, "dropped_short": 1}


def test_sharpness_falls_with_blur_and_is_zero_without_texture():
    image = textured()
    values = [sharpness(soft(image, s)) if s else sharpness(image) for s in (0, 1, 2, 4)]
    assert values == sorted(values, reverse=True) and values[-1] < values[0] / 100
    assert sharpness(np.full((64, 32, 3), 128, np.uint8)) == 0.0


def test_blurred_is_relative_to_the_tracklet_and_keeps_the_sharpest():
    assert blurred(np.array([100.0, 90, 110, 20, 95]), 0.33, 2).tolist() == [False, False, False, True, False]
    # the same crops on a camera 100 times softer: the same crop is the blurred one, the rest are kept
    assert blurred(np.array([1.0, 0.9, 1.1, 0.2, 0.95]), 0.33, 2).tolist() == [False, False, False, True, False]
    assert not blurred(np.array([5.0, 5.2, 4.8]), 0.33, 2).any()  # uniformly soft: nothing is blurred
    assert blurred(np.array([100.0, 1.0]), 0.33, 2).tolist() == [False, False]  # never below min_crops
    assert blurred(np.array([100.0, 90.0, 1.0, 2.0]), 0.33, 2).tolist() == [False, False, True, True]
    assert blurred(np.array([100.0, 90.0, 1.0, 2.0]), 0.33, 3).tolist() == [False, False, True, False]
    assert not blurred(np.array([100.0, 0.0, 50.0]), 0.0, 1).any()  # ratio 0: off
    assert blurred(np.zeros(0), 0.33, 2).tolist() == []


def test_the_blurriest_crops_of_a_track_are_left_out():
    """Frames 2 and 5 smeared (a focus hunt, fast motion): dropped and counted; the published crops are
    the sharp ones."""
    buf = TrackletBuffer("cam", POLICY)
    base = textured()
    for i in range(8):
        buf.add(frame(i, i * 0.1, soft(base, 4.0) if i in (2, 5) else soft(base, 0.8)), [box(1, i * 0.1)])
    (t,) = buf.flush()
    assert buf.counts["rejected_blurred"] == 2 and buf.counts["collected"] == 8
    assert 0.2 not in np.round(t.times, 1) and 0.5 not in np.round(t.times, 1)
    assert len(t.crops) == POLICY.frames


def test_a_soft_camera_still_publishes_every_person():
    """A camera out of focus everywhere: every crop is far below 15, a common fixed floor for the variance of
    the Laplacian, yet the track is published from its sharpest views."""
    buf = TrackletBuffer("cam", POLICY)
    base = soft(textured(), 3.0)
    out = []
    for i in range(6):
        out += buf.add(frame(i, i * 0.1, soft(base, 0.5 + 0.1 * i)), [box(1, i * 0.1)])
    (t,) = out + buf.flush()
    assert max(sharpness(c) for c in t.crops) < 15.0
    assert buf.counts["rejected_blurred"] <= 1 and len(t.crops) == POLICY.frames


def test_blur_never_drops_a_short_tracklet():
    buf = TrackletBuffer("cam", POLICY)
    buf.add(frame(0, 0.0), [box(1, 0.0)])
    buf.add(frame(1, 0.1, soft(textured(), 6.0)), [box(1, 0.1)])  # far blurrier than the other crop
    (t,) = buf.flush()
    assert buf.counts["rejected_blurred"] == 0 and sorted(set(np.round(t.times, 1))) == [0.0, 0.1]


@pytest.mark.parametrize(
    "xy,reason", [((40, 20, 70, 90), None), ((40, 20, 70, 35), "small"), ((40, 20, 70, 119), "edge")]
)
def test_crop_quality(xy, reason):
    assert crop_quality(textured(), xy, POLICY) == reason


def test_tracks_of_one_camera_are_independent():
    buf = TrackletBuffer("cam", POLICY)
    out = []
    for i in range(4):
        out += buf.add(frame(i, i * 0.1), [box(1, i * 0.1), box(2, i * 0.1, (90, 20, 120, 90))])
    out += buf.flush()
    assert sorted(t.track_id for t in out) == [1, 2]


def test_memory_per_track_is_bounded():
    buf = TrackletBuffer("cam", TrackletPolicy(**{**POLICY.__dict__, "max_length": 8}))
    for i in range(100):
        buf.add(frame(i, i * 0.01), [box(1, i * 0.01)])
        assert all(len(o.crops) < 8 for o in buf.open.values())


def test_path_holds_every_frame_of_the_tracklet_not_only_its_crops():
    """Ground truth labels a tracklet by its whole path, whichever crops were chosen to describe it."""
    buf = TrackletBuffer("cam", POLICY)
    for i in range(7):
        xy = (0, 20, 30, 90) if i == 3 else (40, 20, 70, 90)  # frame 3 touches the edge: no crop
        buf.add(frame(i, i * 0.1), [box(1, i * 0.1, xy)])
    (t,) = buf.flush()
    assert t.path.shape == (7, 7) and t.path[:, 1].tolist() == pytest.approx([i * 0.1 for i in range(7)])
    assert t.path[:, 0].tolist() == list(range(7))
    assert t.path[3, 2:6].tolist() == [0, 20, 30, 90] and len(t.boxes) == 4 and 0.3 not in np.round(t.times, 1)
    assert t.path[:, 6].tolist() == [0.9] * 7  # every row detected


def test_frames_without_a_detection_are_filled_between_detections_and_not_after_the_last():
    """A frame the detector skipped (motion gate) or missed gets the box interpolated between its neighbours,
    score 0; the frames after the last detection are not claimed."""
    buf = TrackletBuffer("cam", POLICY)
    detected = {0: 10, 4: 30, 5: 35}  # frame -> x1 of the box
    for i in range(8):
        x = detected.get(i)
        buf.add(frame(i, i * 0.1), [] if x is None else [box(1, i * 0.1, (x, 20, x + 30, 90))])
    (t,) = buf.flush()
    assert t.path[:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # frames 6 and 7 came after the last detection
    assert t.path[:, 2].tolist() == pytest.approx([10, 15, 20, 25, 30, 35])
    assert t.path[:, 6].tolist() == [0.9, 0, 0, 0, 0.9, 0.9]
    assert (t.t_start, t.t_end) == (0.0, 0.5)


def test_a_tracks_next_tracklet_takes_the_frames_since_the_previous_one():
    """A long track is cut into tracklets; the skipped frames between one's last detection and the next one's first
    belong to the next, so the track has a box on every frame."""
    buf = TrackletBuffer("cam", replace(POLICY, max_length=3))
    out = []
    for i in range(10):
        detect = i < 3 or i % 3 == 2  # frames 0, 1, 2 (the first tracklet closes at 3 crops), then 5 and 8
        out += buf.add(frame(i, i * 0.1), [box(1, i * 0.1, (10 + i, 20, 40 + i, 90))] if detect else [])
    out += buf.flush()
    assert [t.seq for t in out] == [0, 1]
    frames = [int(f) for t in out for f in t.path[:, 0]]
    assert frames == list(range(9))  # every frame once, none twice, none after the last detection (8)
    x1 = np.concatenate([t.path[:, 2] for t in out])
    assert x1.tolist() == pytest.approx([10 + i for i in range(9)])  # the person moves 1 px a frame
    assert out[1].t_start == pytest.approx(0.3)  # the second tracklet starts right after the first


def test_a_track_found_again_after_lost_after_is_not_filled_across_the_gap():
    buf = TrackletBuffer("cam", POLICY)
    out = []
    for i in range(30):
        t = i * 0.1
        visible = i < 3 or i >= 20  # unseen for 1.7 s > lost_after
        out += buf.add(frame(i, t), [box(1, t)] if visible else [])
    out += buf.flush()
    assert [t.path[:, 0].tolist() for t in out] == [[0, 1, 2], list(range(20, 30))]


def test_a_person_always_cut_by_the_frame_edge_is_described_by_edge_crops():
    """Someone sitting at the border of the view never gives a whole crop; their edge crops make up the tracklet once
    they stayed half of max_seconds. Someone who only crosses the edge is not described by cut views alone."""
    policy = replace(POLICY, max_seconds=1.0)
    buf = TrackletBuffer("cam", policy)
    for i in range(6):
        buf.add(frame(i, i * 0.1), [box(1, i * 0.1, (0, 20, 30 + i, 90))])  # touches the left edge for 0.5 s
    (t,) = buf.flush()
    assert len(t.crops) == 4 and buf.counts["edge_used"] == 4 and buf.counts["rejected_edge"] == 6
    assert t.boxes[:, 2].tolist() == [32, 33, 34, 35]  # the largest, in time order
    passing = TrackletBuffer("cam", policy)
    for i in range(4):
        passing.add(frame(i, i * 0.1), [box(1, i * 0.1, (0, 20, 30 + i, 90))])  # 0.3 s at the edge, then gone
    assert passing.flush() == [] and passing.counts["dropped_short"] == 1


def test_finished_tracks_are_forgotten():
    buf = TrackletBuffer("cam", POLICY)
    for i in range(40):
        buf.add(frame(i, i * 0.1), [box(i // 4 + 1, i * 0.1)])  # a new track every 4 frames
    assert len(buf.ended) <= 11 and len(buf.recent) <= 11  # about lost_after's worth (1 s at 10 frames/s)
