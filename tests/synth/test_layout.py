"""Scene layouts: overlapping views seen at the same moments, and transit gaps inside each pair's true window."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from crosscam.errors import CrosscamError
from synth.layout import APART_TRANSIT, SITE_TRANSIT_MIN, SITE_TRANSIT_WIDTH, camera_groups
from synth.scene import Scene, SceneSpec
from synth.stream import parse_synth_url
from synth.truth import truth_boxes

# the scene docs/pipeline.md recommends for learning transit windows and overlaps
SITE = "synth://?cameras=4&people=20&seconds=150&arrivals=0.5&layout=site&overlap=0-1"


def transitions(scene: Scene) -> list[tuple[int, int, float]]:
    """(from camera, to camera, gap in seconds) of every move of a walker from one view to the next (views that
    overlap show a walker over the same seconds: a move leaves all of them for all the next ones)."""
    moves = []
    for pid in scene.people:
        starts: dict[float, list] = {}
        for v in scene.visits:
            if v.pid == pid:
                starts.setdefault(v.t_enter, []).append(v)
        for here, there in itertools.pairwise(starts[t] for t in sorted(starts)):
            moves += [(a.camera, b.camera, b.t_enter - a.t_exit) for a in here for b in there]
    return moves


def frames_seen(scene: Scene) -> dict[tuple[int, int], set[int]]:
    """(pid, camera) -> the frames that draw the person."""
    seen: dict[tuple[int, int], set[int]] = {}
    for camera in range(scene.spec.cameras):
        for frame, pid, _, _ in truth_boxes(scene, camera):
            seen.setdefault((pid, camera), set()).add(frame)
    return seen


def test_overlap_pairs_join_cameras_into_groups():
    assert camera_groups(5, ((3, 1), (1, 0))) == ((0, 1, 3), (2,), (4,))
    scene = Scene(SceneSpec(cameras=4, layout="site", overlap=((0, 1), (1, 2))))
    assert scene.overlapping_pairs() == {frozenset(p) for p in ((0, 1), (1, 2), (0, 2))}  # a group overlaps pairwise


def test_overlapping_cameras_see_a_walker_at_the_same_moments_from_another_angle():
    scene = Scene(SceneSpec.from_url(SITE + "&seated=2&seconds=60"))
    assert scene.overlapping_pairs() == {frozenset((0, 1))}
    walks0 = [v for v in scene.visits if v.camera == 0 and v.stay is None]
    assert walks0
    for v in walks0:
        twin = [w for w in scene.visits if w.camera == 1 and w.pid == v.pid and w.t_enter == v.t_enter]
        assert len(twin) == 1 and twin[0].t_exit == v.t_exit
        assert (twin[0].depth, twin[0].leftward) != (v.depth, v.leftward)
    seen = frames_seen(scene)
    for v in walks0:
        assert seen[(v.pid, 0)] & seen[(v.pid, 1)]  # two cameras show the person at once


def test_cameras_that_do_not_overlap_never_show_one_person_at_once():
    scene = Scene(SceneSpec.from_url(SITE + "&seated=3&seconds=90"))
    seen = frames_seen(scene)
    overlapping = scene.overlapping_pairs()
    for pid in scene.people:
        for a, b in itertools.combinations(range(4), 2):
            if frozenset((a, b)) not in overlapping:
                assert not seen.get((pid, a), set()) & seen.get((pid, b), set()), (pid, a, b)


def test_site_transit_windows_are_per_pair_and_hold_every_gap():
    scene = Scene(SceneSpec.from_url(SITE))
    windows = scene.transit_windows()
    # every ordered pair of cameras that do not share a view, and no other
    assert set(windows) == {(a, b) for a, b in itertools.permutations(range(4), 2)} - {(0, 1), (1, 0)}
    for low, high in windows.values():
        assert SITE_TRANSIT_MIN[0] <= low <= SITE_TRANSIT_MIN[1]
        assert SITE_TRANSIT_WIDTH[0] <= high - low <= SITE_TRANSIT_WIDTH[1]
    assert windows[(0, 2)] == windows[(1, 2)]  # cameras 0 and 1 watch one walkway
    assert len({windows[(0, 2)], windows[(2, 0)], windows[(2, 3)], windows[(3, 2)]}) == 4
    moves = transitions(scene)
    for a, b, gap in moves:
        low, high = windows[(a, b)]
        assert low <= gap <= high, (a, b, gap)
    # the recommended scene walks every pair several times, for a learner to find its window
    walked = Counter((a, b) for a, b, _ in moves)
    assert min(walked[p] for p in windows) >= 5


def test_windows_depend_on_the_seed_only():
    a = Scene(SceneSpec.from_url(SITE)).transit_windows()
    assert Scene(SceneSpec.from_url(SITE + "&people=3&seated=2")).transit_windows() == a
    assert Scene(SceneSpec.from_url(SITE + "&seed=2")).transit_windows() != a


def test_the_default_layout_tells_its_truth_too():
    scene = Scene(SceneSpec(seed=3))
    assert scene.overlapping_pairs() == set()
    assert set(scene.transit_windows().values()) == {APART_TRANSIT} and len(scene.transit_windows()) == 6
    moves = transitions(scene)
    assert moves and all(APART_TRANSIT[0] <= gap <= APART_TRANSIT[1] for _, _, gap in moves)


def test_site_parameters_travel_in_a_camera_url():
    spec, camera = parse_synth_url("synth://?cameras=3&layout=site&overlap=0-1,1-2&seated=1&camera=2")
    assert (spec.layout, spec.overlap, spec.seated, camera) == ("site", ((0, 1), (1, 2)), 1, 2)
    assert SceneSpec.from_url(spec.url()) == spec
    assert SceneSpec().url() == "synth://?"


@pytest.mark.parametrize(
    "query,message",
    [
        ("overlap=0-1", "overlap needs layout=site"),
        ("layout=site&overlap=0-0", "two different cameras"),
        ("layout=site&overlap=0-3", "two different cameras of 0..2"),
        ("layout=site&overlap=0+1", "two camera indices joined by '-'"),
        ("layout=grid", "unknown layout 'grid'"),
        ("seated=-1", "seated must be 0 or more"),
    ],
)
def test_bad_layout_parameters_name_the_url(query, message):
    with pytest.raises(CrosscamError, match=message):
        SceneSpec.from_url(f"synth://?{query}", label="cam0's source")


def test_overlapping_views_see_one_floor_that_their_ground_points_describe_exactly():
    """Each camera of a group maps a walker's feet (bottom centre of the box) to the plan through the homography
    of its four ground points, and every camera of the group puts the walker at the same place at each moment,
    on a walkway of its own on the plan."""
    import cv2
    import numpy as np

    from synth.floor import DEPTH, GROUP_SPACING, WALKWAY

    scene = Scene(SceneSpec(cameras=5, people=12, seconds=60, seed=4, layout="site", overlap=((0, 1), (2, 3), (3, 4))))
    assert scene.ground_points(0) and scene.ground_points(4) and scene.ground_points(1) != scene.ground_points(0)
    h = {}
    for c in range(5):
        points = np.array(scene.ground_points(c), np.float32)
        assert len(points) == 4 and ((points[:, 0] >= 0) & (points[:, 0] <= 480)).all()  # marks in the frame
        h[c] = cv2.getPerspectiveTransform(np.ascontiguousarray(points[:, :2]), np.ascontiguousarray(points[:, 2:]))
    checked = 0
    for t in np.arange(0, 60, 0.5):
        for group, cameras in enumerate(scene.layout.groups):
            places: dict[int, list] = {}
            for c in cameras:
                for b in scene.boxes(c, float(t)):
                    feet = np.array([[[(b.box[0] + b.box[2]) / 2, b.box[3]]]])
                    places.setdefault(b.pid, []).append(cv2.perspectiveTransform(feet, h[c])[0, 0])
            for where in places.values():
                assert len(where) == len(cameras)  # everyone on the walkway is seen by every camera of the group
                np.testing.assert_allclose(where, [where[0]] * len(where), atol=1e-6)
                x, y = where[0] - (group * GROUP_SPACING, 0)
                assert -0.6 <= x <= WALKWAY + 0.6 and -1e-6 <= y <= DEPTH + 1e-6
                checked += len(cameras) > 1
    assert checked > 50
