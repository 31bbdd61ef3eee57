"""People who stay put: present, still (but for a small sway), shorter when seated, one cut by the frame's edge."""

from __future__ import annotations

import numpy as np
import pytest

from synth.scene import Scene, SceneSpec
from synth.seated import EDGE_VISIBLE, SEATED_SHARE
from synth.truth import identify, passages, truth_boxes
from synth.visits import STILL_WIDTH, SWAY_PIXELS, walk_box

URL = "synth://?cameras=3&people=8&seconds=90&seed=4&seated=4"


def test_seated_people_are_extra_people_with_fresh_ids_in_the_truth():
    scene = Scene(SceneSpec.from_url(URL))
    walkers = Scene(SceneSpec.from_url(URL.replace("&seated=4", "")))
    assert [v for v in scene.visits if v.stay is None] == walkers.visits  # the walkers are the same people
    stays = [v for v in scene.visits if v.stay is not None]
    assert sorted(v.pid for v in stays) == [9, 10, 11, 12] and set(scene.people) == set(range(1, 13))
    assert {(v.pid, v.camera) for v in stays} <= passages(scene)
    for v in stays:
        pids = {pid for _, pid, _, _ in truth_boxes(scene, v.camera)}
        assert v.pid in pids
        t = (v.stay.t_still + v.stay.t_rise) / 2
        box = next(b.box for b in scene.boxes(v.camera, t) if b.pid == v.pid)
        path = [(t + k / 10, *box) for k in range(3)]
        assert identify(scene, v.camera, path) == v.pid


def test_a_stationary_box_stays_put_and_a_seated_one_is_shorter():
    scene = Scene(SceneSpec.from_url(URL))
    h, w = scene.spec.height, scene.spec.width
    shares = []
    for v in (v for v in scene.visits if v.stay is not None):
        s = v.stay
        assert v.t_enter <= s.t_still < s.t_rise <= v.t_exit <= scene.spec.seconds
        assert s.t_rise - s.t_still >= 18  # a long spell
        rows = [
            box
            for frame, pid, box, _ in truth_boxes(scene, v.camera)
            if pid == v.pid and s.t_still <= frame / scene.spec.fps < s.t_rise
        ]
        boxes = np.array(rows)
        assert len(boxes) >= 18 * scene.spec.fps
        assert np.ptp(boxes[:, 1]) == 0 and np.ptp(boxes[:, 3]) == 0  # still: not one pixel up or down
        fps = scene.spec.fps
        times = np.arange(np.ceil(s.t_still * fps), np.ceil(s.t_rise * fps)) / fps
        whole = np.array([next(b.box for b in scene.boxes(v.camera, t) if b.pid == v.pid) for t in times])
        _, y1, _, y2 = walk_box(v.depth, 0.5, False, w, h)  # standing, walking, at that depth
        assert whole[:, 3] == pytest.approx(y2)  # feet on the same line
        shares.append((whole[0, 3] - whole[0, 1]) / (y2 - y1))  # maybe shorter
        assert whole[:, 2] - whole[:, 0] == pytest.approx(STILL_WIDTH * (whole[0, 3] - whole[0, 1]))
        assert 1 <= np.ptp(whole[:, 0]) <= 2 * SWAY_PIXELS  # swaying a little, not a frozen image
    assert all(s == 1.0 or SEATED_SHARE[0] <= s <= SEATED_SHARE[1] for s in shares)
    assert any(s < 1.0 for s in shares)


def test_one_stationary_person_is_only_partly_in_the_frame():
    scene = Scene(SceneSpec.from_url(URL))
    first = next(v for v in scene.visits if v.stay is not None)
    shares = [
        visible
        for frame, pid, _, visible in truth_boxes(scene, first.camera)
        if pid == first.pid and first.stay.t_still <= frame / scene.spec.fps < first.stay.t_rise
    ]
    assert EDGE_VISIBLE[0] - 0.05 <= min(shares) <= max(shares) <= EDGE_VISIBLE[1] + 0.05


def test_seated_people_are_drawn_standing_still_and_walk_in_and_out_walking():
    scene = Scene(SceneSpec.from_url(URL))
    for v in (v for v in scene.visits if v.stay is not None):
        s = v.stay
        still = next(b for b in scene.boxes(v.camera, s.t_still + 2.0) if b.pid == v.pid)
        assert still.phase == 0.0
        if s.t_still > v.t_enter:
            arriving = next(b for b in scene.boxes(v.camera, (v.t_enter + s.t_still) / 2) if b.pid == v.pid)
            assert arriving.phase != 0.0 and arriving.box[3] - arriving.box[1] > still.box[3] - still.box[1] - 1e-9
