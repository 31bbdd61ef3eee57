"""The learned topology (pure estimation over stored sightings): transit windows, overlapping views, and which
links count as confident."""

from __future__ import annotations

import math

import pytest

from pipeline.matcher.evidence import StoredSighting
from pipeline.matcher.topology_learn import confident, entries, learn_topology, moves, window_of


def seen(identity: int, camera: str, t0: float, t1: float, decision: str = "link", score: float = 0.95, **kw):
    return StoredSighting(f"{camera}:{identity}:{t0:g}", identity, camera, identity, 0, t0, t1, decision, score, **kw)


def test_confident_sightings():
    assert confident(seen(1, "a", 0, 1, "new", math.nan), 0.7, 0.03)  # founded its identity
    assert not confident(seen(1, "a", 0, 1, "new", math.nan, merged=True), 0.7, 0.03)  # moved there by a merge
    assert confident(seen(1, "a", 0, 1, "link", 0.73), 0.7, 0.03)
    assert not confident(seen(1, "a", 0, 1, "link", 0.72), 0.7, 0.03)
    assert not confident(seen(1, "a", 0, 1, "continuity", math.nan), 0.7, 0.03)
    assert confident(seen(1, "a", 0, 1, "colocated", 0.3), 0.7, 0.03)  # one place on the floor plan at once


def test_moves_are_consecutive_cross_camera_confident_sightings():
    history = [
        seen(1, "a", 0, 5, "new"),
        seen(1, "a", 5, 8),  # same camera: no move
        seen(1, "b", 10, 14),  # a -> b, 2 s
        seen(1, "c", 15, 16, score=0.5),  # not confident: skipped
        seen(1, "a", 20, 22),  # b -> a, 6 s
        seen(2, "b", 0, 5, "new"),
        seen(2, "c", 3, 9),  # seen in both at once: -2 s
    ]
    assert moves(history, 0.7, 0.03) == {("a", "b"): [2.0], ("b", "a"): [6.0], ("b", "c"): [-2.0]}


def test_a_walk_through_a_view_between_is_no_move_and_views_watching_one_place_all_move_on():
    history = [
        seen(1, "a", 0, 5, "new"),
        seen(1, "a2", 0, 5),  # a and a2 watch one place
        seen(1, "b", 7, 12),
        seen(1, "c", 14, 18),  # no move a -> c: b started in between
    ]
    assert moves(history, 0.7, 0.03) == {
        ("a2", "a"): [-5.0],  # equal starts: in sighting id order
        ("a", "b"): [2.0],
        ("a2", "b"): [2.0],
        ("b", "c"): [2.0],
    }


def test_window_rule():
    lo, hi = window_of([2.0] * 10 + [12.0] * 10)  # p5 = 2, p95 = 12, widened by 10 % of 10 s
    assert (lo, hi) == pytest.approx((1.0, 13.0))
    assert window_of([3.0, 3.0, 3.0]) == pytest.approx((2.5, 3.5))  # at least 0.5 s each side
    assert window_of([0.1, 0.2, 0.3])[0] == 0.0  # never below 0


def test_overlapping_views_and_pairs_with_too_few_moves():
    s = []
    for i in range(6):  # a and b overlap: everyone is in both at once for a while
        s += [seen(10 + i, "a", 10.0 * i, 10.0 * i + 6, "new"), seen(10 + i, "b", 10.0 * i + 4, 10.0 * i + 9)]
    for i in range(2):  # c -> d twice: too few to list
        s += [seen(20 + i, "c", 10.0 * i, 10.0 * i + 3, "new"), seen(20 + i, "d", 10.0 * i + 5, 10.0 * i + 7)]
    (ab,) = learn_topology(s, 0.7, 0.03)
    assert ab.cameras == ("a", "b") and ab.overlap and ab.moves == ab.overlapping == 6
    assert entries([ab]) == [{"from": "a", "to": "b", "min": 0.0, "max": 0.5, "overlap": True}]


def test_a_wrong_link_neither_stretches_the_window_nor_makes_an_overlap():
    s = []
    for i in range(20):
        gap = 2.0 + 0.1 * i  # 2.0 - 3.9 s
        s += [seen(i, "a", 20.0 * i, 20.0 * i + 5, "new"), seen(i, "b", 20.0 * i + 5 + gap, 20.0 * i + 12)]
    s += [seen(99, "a", 1000, 1005, "new"), seen(99, "b", 1003, 1004), seen(99, "a", 1300, 1301)]  # nonsense
    (ab,) = learn_topology(s, 0.7, 0.03)
    assert not ab.overlap and ab.overlapping == 1 and ab.moves == 21 and ab.cameras == ("a", "b")
    assert 1.5 <= ab.window[0] <= 2.0 and 3.9 <= ab.window[1] <= 4.5  # the 296 s gap is outside the percentiles


def test_today_scene_transit_windows_are_recovered():
    """The default scene's people walk between non-overlapping views with 1.5-4.0 s of transit: from exact
    sightings (each visit, with its identity) every pair's learned window lies within 2 s of that."""
    from synth.scene import Scene, SceneSpec

    scene = Scene(SceneSpec(cameras=3, people=40, seconds=300, seed=3))
    first: set[int] = set()
    s = []
    for v in sorted(scene.visits, key=lambda v: v.t_enter):
        s.append(seen(v.pid, f"cam{v.camera}", v.t_enter, v.t_exit, "link" if v.pid in first else "new"))
        first.add(v.pid)
    learned = learn_topology(s, 0.7, 0.03)
    assert len(learned) == 6  # every ordered pair of the three cameras
    for e in learned:
        assert not e.overlap and e.overlapping == 0
        assert abs(e.window[0] - 1.5) <= 2 and abs(e.window[1] - 4.0) <= 2, e


@pytest.mark.parametrize("overlap", [((0, 1),), ((0, 1), (2, 3))])
def test_site_layout_windows_and_overlaps_are_recovered(overlap):
    """The site layout: views that watch one place, and a transit window of its own for each ordered pair of
    places. From exact sightings, each learned window lies within 2 s of the true one and the overlapping
    pairs are exactly the true ones."""
    from synth.scene import Scene, SceneSpec

    scene = Scene(SceneSpec(cameras=5, people=60, seconds=600, seed=2, layout="site", overlap=overlap))
    founded: set[int] = set()
    s = []
    for v in sorted(scene.visits, key=lambda v: (v.t_enter, v.camera)):
        s.append(seen(v.pid, f"cam{v.camera}", v.t_enter, v.t_exit, "link" if v.pid in founded else "new"))
        founded.add(v.pid)
    learned = {e.cameras: e for e in learn_topology(s, 0.7, 0.03)}
    truth = scene.transit_windows()
    overlapping = {frozenset((int(a[3:]), int(b[3:]))) for (a, b), e in learned.items() if e.overlap}
    assert overlapping == scene.overlapping_pairs()
    checked = 0
    for (a, b), (lo, hi) in truth.items():
        e = learned.get((f"cam{a}", f"cam{b}"))
        if e is None:  # a pair walked fewer than MIN_MOVES times
            continue
        assert abs(e.window[0] - lo) <= 2 and abs(e.window[1] - hi) <= 2, (a, b, e.window, (lo, hi))
        checked += 1
    assert checked >= 0.8 * len(truth)
