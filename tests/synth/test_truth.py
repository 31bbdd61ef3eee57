"""Per-frame ground truth: exactly the people ``Scene.render`` draws, where it draws them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synth.camera import apply_style
from synth.scene import Scene, SceneSpec
from synth.truth import truth_boxes
from synth.visits import drawn_boxes

URL = "synth://?cameras=4&people=10&seconds=40&seed=5&seated=3&layout=site&overlap=0-1&arrivals=0.5"
BLUR_MARGIN = 6  # pixels a camera's blur spreads a person beyond their box


def by_frame(rows) -> dict[int, list]:
    frames: dict[int, list] = {}
    for frame, pid, box, visible in rows:
        frames.setdefault(frame, []).append((pid, box, visible))
    return frames


def test_truth_boxes_are_the_boxes_render_draws_in_every_frame():
    scene = Scene(SceneSpec.from_url(URL))
    w, h = scene.spec.width, scene.spec.height
    for camera in range(scene.spec.cameras):
        truth = by_frame(truth_boxes(scene, camera))
        for index in range(scene.frame_count()):
            visible = scene.boxes(camera, index / scene.spec.fps)  # what render(camera, index) draws from
            rounded, clipped, drawn = drawn_boxes(np.array([b.box for b in visible]), w, h)
            expected = [
                (b.pid, tuple(map(float, c)), float((c[2] - c[0]) * (c[3] - c[1]) / ((r[2] - r[0]) * (r[3] - r[1]))))
                for b, r, c, d in zip(visible, rounded.tolist(), clipped.tolist(), drawn, strict=True)
                if d
            ]
            assert truth.get(index, []) == expected, (camera, index)


def test_every_truth_box_covers_drawn_person_pixels_and_no_person_is_left_out():
    scene = Scene(SceneSpec.from_url(URL))
    frames = 0
    for camera in range(scene.spec.cameras):
        truth = by_frame(truth_boxes(scene, camera))
        for index in sorted(truth)[:: max(1, len(truth) // 4)]:
            image, _ = scene.render(camera, index)
            empty = apply_style(
                scene.backgrounds[camera].copy(),
                scene.styles[camera],
                np.random.default_rng([scene.spec.seed, camera, index]),
            )
            person = np.abs(image.astype(int) - empty.astype(int)).max(axis=2) > 0
            inside = np.zeros_like(person)
            for pid, (x1, y1, x2, y2), visible in truth[index]:
                assert 0 < visible <= 1
                region = person[int(y1) : int(y2), int(x1) : int(x2)]
                if visible >= 0.5:  # a sliver of a box at the frame's edge may hold only the margin beside a person
                    assert region.mean() > 0.1, (camera, index, pid)  # someone is drawn there
                inside[int(y1) : int(y2), int(x1) : int(x2)] = True
            inside = cv2.dilate(inside.astype(np.uint8), np.ones((2 * BLUR_MARGIN + 1,) * 2, np.uint8)) > 0
            assert not (person & ~inside).any(), (camera, index)  # nobody drawn outside the truth
            frames += 1
    assert frames >= 16


def test_frames_without_people_have_no_truth_and_times_follow_the_frame_rate():
    scene = Scene(SceneSpec(cameras=2, people=2, seconds=30, seed=2, fps=7.5))
    for camera in range(2):
        rows = truth_boxes(scene, camera)
        seen = {f for f, _, _, _ in rows}
        assert seen and max(seen) < scene.frame_count()
        for v in (v for v in scene.visits if v.camera == camera):
            inside = {f for f in range(scene.frame_count()) if v.t_enter <= f / 7.5 < v.t_exit}
            mine = {f for f, pid, _, _ in rows if pid == v.pid}
            assert mine <= inside and len(mine) >= len(inside) - 4  # less only where the box is out of frame
        for frame in set(range(scene.frame_count())) - seen:
            assert all(b.box[2] <= 0 or b.box[0] >= scene.spec.width for b in scene.boxes(camera, frame / 7.5))


@pytest.mark.parametrize("seconds", [0.05, 5.0])
def test_short_and_empty_scenes(seconds):
    scene = Scene(SceneSpec(cameras=1, people=1, seconds=seconds, seed=1))
    assert truth_boxes(scene, 0) == []  # nobody has entered yet
