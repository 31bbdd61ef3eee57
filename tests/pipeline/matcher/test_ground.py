"""The ground plane: homographies from measured points, plan tracks, and the rules that link co-located
sightings and keep apart those far from each other at the same moments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosscam.errors import ConfigError
from pipeline.matcher.gallery import Gallery
from pipeline.matcher.ground import (
    GroundPlane,
    PlanTrack,
    apply,
    foot_points,
    ground_plane,
    homography,
    place,
    plan_track,
    shared_distance,
)
from pipeline.matcher.linker import Linker
from pipeline.matcher.rules import MatchPolicy
from pipeline.types import TrackletEmbedding
from tests.support.records import make_embedding

FPS = 10.0
# two cameras on opposite sides of a 10 x 4 m floor: cam0 sees X to the right and Y downwards, cam1 mirrored
CAM0 = [(50, 100, 0, 0), (550, 100, 10, 0), (550, 300, 10, 4), (50, 300, 0, 4)]
CAM1 = [(550, 300, 0, 0), (50, 300, 10, 0), (50, 100, 10, 4), (550, 100, 0, 4)]


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def pixel(points, x: float, y: float) -> tuple[float, float]:
    """Where a camera of affine ``points`` (those above) sees the floor point (x, y)."""
    (u0, v0, _, _), (u1, _, _, _), (_, v2, _, _) = points[0], points[1], points[2]
    return u0 + (u1 - u0) * x / 10, v0 + (v2 - v0) * y / 4


def walk_path(points, t0: float, t1: float, start: tuple[float, float], velocity: tuple[float, float]) -> np.ndarray:
    """The ``path`` (frame, timestamp, x1, y1, x2, y2, score) of someone walking from ``start`` (plan metres) at
    ``velocity`` (m/s), as a camera of ``points`` sees them: boxes 40 x 100 pixels standing on their feet."""
    times = np.arange(round(t0 * FPS), round(t1 * FPS) + 1) / FPS
    rows = []
    for t in times:
        u, v = pixel(points, start[0] + velocity[0] * (t - t0), start[1] + velocity[1] * (t - t0))
        rows.append((round(t * FPS), t, u - 20, v - 100, u + 20, v, 0.9))
    return np.array(rows, np.float64)


def seen(camera: str, track: int, t0: float, t1: float, feature, path=None) -> TrackletEmbedding:
    f = unit(feature)
    return TrackletEmbedding("s", camera, track, 0, t0, t1, f, np.ones(2) / 2, b"", "m", path)


def counter():
    n = [0]

    def allocate(k: int) -> list[int]:
        n[0] += k
        return list(range(n[0] - k + 1, n[0] + 1))

    return allocate


def plane(**kw) -> GroundPlane:
    return ground_plane({"cam0": CAM0, "cam1": CAM1}, kw.pop("near", 1.0), kw.pop("far", 3.0))


# --- geometry ----------------------------------------------------------------------------------------------
def test_a_known_homography_is_recovered_from_four_points_and_maps_feet():
    truth = np.array([[0.02, 0.004, -1.0], [0.001, 0.05, -2.0], [0.0001, 0.0008, 1.0]])
    image = np.array([[40.0, 200], [600, 220], [560, 470], [80, 450]])
    plan = apply(truth, image)
    h = homography("cam0", np.c_[image, plan].tolist())
    np.testing.assert_allclose(h / h[2, 2], truth / truth[2, 2], rtol=1e-6, atol=1e-9)
    others = np.array([[300.0, 300], [100, 420], [500, 250]])
    np.testing.assert_allclose(apply(h, others), apply(truth, others), atol=1e-6)
    # six points, least squares over all of them, exact data: the same homography
    more = np.r_[image, others]
    h6 = homography("cam0", np.c_[more, apply(truth, more)].tolist())
    np.testing.assert_allclose(h6 / h6[2, 2], truth / truth[2, 2], rtol=1e-5, atol=1e-8)


def test_foot_points_are_the_boxes_bottom_centres_and_beyond_the_horizon_is_nan():
    path = np.array([[0, 0.0, 10, 20, 30, 120, 0.9], [1, 0.1, 12, 22, 36, 130, 0.0]])
    np.testing.assert_array_equal(foot_points(path), [[20, 120], [24, 130]])
    # a camera looking down a corridor: the horizon at v = 100; feet above it are on no floor
    h = homography("c", [(0, 400, -2, 1), (640, 400, 2, 1), (420, 200, 2, 5), (220, 200, -2, 5)])
    xy = apply(h, np.array([[320.0, 300], [320, 50]]))
    assert np.isfinite(xy[0]).all() and np.isnan(xy[1]).all()
    track = plan_track(h, np.array([[0, 0.0, 300, 200, 340, 300, 1], [1, 0.1, 300, 0, 340, 50, 1]]))
    assert track is not None and len(track.times) == 1  # the frame beyond the horizon is left out


def test_distance_at_shared_moments():
    t = np.arange(0, 3.01, 0.1)
    a = PlanTrack(t, np.c_[t, np.zeros_like(t)])
    b = PlanTrack(t + 1.0, np.c_[t + 1.0, np.full_like(t, 0.5)])  # 0.5 m beside a, from 1 s on
    d, n = shared_distance(a, b, 5)
    assert d == pytest.approx(0.5) and n == 21  # a's times 1.0 .. 3.0
    # another camera's clock: samples between a's, interpolated
    c = PlanTrack(t + 0.05, np.c_[t + 0.05, np.full_like(t, 2.0)])
    assert shared_distance(a, c, 5)[0] == pytest.approx(2.0)
    assert shared_distance(a, PlanTrack(t[:3] + 2.85, np.zeros((3, 2))), 5) is None  # 2 shared moments: too few
    assert shared_distance(a, PlanTrack(t + 10, np.c_[t, t]), 1) is None  # never at once


# --- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(0, 0, 0, 0), (100, 0, 1, 0), (100, 100, 1, 1)], "has 3 point pairs; give 4 or more"),
        ([(0, 0, 0, 0), (100, 0, 1, 0), (100, 100, math.inf, 1), (0, 100, 0, 1)], "ground point 2 .* is not finite"),
        ([(0, 0, 0, 0), (100, 0, 1, 0), (100, 100, math.nan, 1), (0, 100, 0, 1)], "is not finite"),
        ([(0, 0, 0, 0), (100, 0, 1, 0), (200, 0, 1, 1), (300, 0, 0, 1)], "image points lie on one line"),
        ([(0, 0, 0, 0), (100, 0, 1, 0), (100, 100, 2, 0), (0, 100, 3, 0)], "plan points lie on one line"),
        ([(0, 0, 0, 0), (100, 0, 1, 0), (200, 0, 2, 1), (100, 80, 1, 1)], "no usable homography"),
    ],
    ids=["three", "inf", "nan", "image-collinear", "plan-collinear", "degenerate"],
)
def test_bad_ground_points_are_one_line_naming_the_camera(points, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as e:
        homography("door-2", points)
    assert "camera door-2" in str(e.value) and "\n" not in str(e.value)
    # the same at config load, before anything runs
    from pipeline.config.loader import load_config

    config = tmp_path / "site.yaml"
    rows = ", ".join(
        f"[{', '.join('.nan' if x != x else '.inf' if x == math.inf else str(x) for x in p)}]" for p in points
    )
    config.write_text(f"cameras:\n  - id: door-2\n    source: a.mp4\n    ground: [{rows}]\n")
    with pytest.raises(ConfigError, match=message) as e:
        load_config(config)
    assert "camera door-2" in str(e.value) and "\n" not in str(e.value)


def test_ground_distances_must_be_ordered():
    from pipeline.config import CrosscamConfig

    with pytest.raises(ValueError, match=r"ground_near \(4 m\) must be below ground_far \(3 m\)"):
        CrosscamConfig.model_validate({"matcher": {"ground_near": 4.0}})
    with pytest.raises(ConfigError, match="near 3 m must be above 0 and below far 2 m"):
        GroundPlane({}, near=3, far=2)


def test_the_site_builds_the_ground_plane_of_the_cameras_that_have_points(redis_client):
    from pipeline.config import CrosscamConfig
    from pipeline.site import Site

    cameras = [{"id": "cam0", "source": "a.mp4", "ground": CAM0}, {"id": "cam1", "source": "b.mp4"}]
    config = CrosscamConfig.model_validate({"cameras": cameras, "matcher": {"ground_near": 0.8, "ground_far": 2.5}})
    ground = Site(config, redis_client).policy().ground
    assert set(ground.homographies) == {"cam0"} and (ground.near, ground.far) == (0.8, 2.5)
    np.testing.assert_allclose(apply(ground.homographies["cam0"], np.array([[300.0, 200]])), [[5.0, 2.0]])
    assert Site(CrosscamConfig(), redis_client).policy().ground is None  # no camera has points: none


# --- the rules ---------------------------------------------------------------------------------------------
def two_people_at_once(with_path: bool = True) -> list[TrackletEmbedding]:
    """A and B cross the floor at once, 4 m apart; cam0 then cam1 see each of them. Their features are too alike
    to tell them apart: A on cam1 looks more like B on cam0 than like A on cam0."""
    a0, b0 = [1.0, 0.3, 0.0], [1.0, 0.0, 0.3]
    a1, b1 = [1.0, 0.05, 0.35], [1.0, 0.35, 0.05]  # each turned towards the other's look on cam0
    walk = {"a": ((1.0, 0.0), (1.0, 0.0)), "b": ((9.0, 4.0), (-1.0, 0.0))}  # from (1, 0) east; from (9, 4) west

    def path(points, who):
        return walk_path(points, 10.0, 14.0, *walk[who]) if with_path else None

    return [
        seen("cam0", 1, 10.0, 14.0, a0, path(CAM0, "a")),
        seen("cam0", 2, 10.0, 14.0, b0, path(CAM0, "b")),
        seen("cam1", 1, 10.0, 14.0, a1, path(CAM1, "a")),
        seen("cam1", 2, 10.0, 14.0, b1, path(CAM1, "b")),
    ]


def test_two_alike_people_at_once_are_told_apart_by_where_they_stand():
    batch = two_people_at_once()
    assert float(batch[2].feature @ batch[1].feature) > float(batch[2].feature @ batch[0].feature) > 0.6
    wrong = Linker(MatchPolicy(threshold=0.6, margin=0.01), counter()).link(batch)
    assert [r.identity for r in wrong] == [1, 2, 2, 1]  # appearance alone swaps them
    right = Linker(MatchPolicy(threshold=0.6, margin=0.01, ground=plane()), counter()).link(batch)
    assert [r.identity for r in right] == [1, 2, 1, 2]
    for r in right[2:]:
        d = r.decision
        assert d.kind == "colocated" and "co-located on the floor plan" in d.reason and d.excluded == 1
        assert d.reason.startswith("co-located on the floor plan: 0.00 m apart over 41 shared moments")


def test_a_person_who_looks_different_in_two_views_is_linked_by_standing_in_one_place():
    path0 = walk_path(CAM0, 5.0, 8.0, (2.0, 1.0), (1.2, 0.3))
    path1 = walk_path(CAM1, 5.0, 8.0, (2.2, 1.1), (1.2, 0.3))  # a box's error: 0.2 m off
    batch = [seen("cam0", 3, 5.0, 8.0, [1, 0, 0], path0), seen("cam1", 8, 5.0, 8.0, [0.3, 1, 0], path1)]
    alone = Linker(MatchPolicy(threshold=0.6), counter()).link(batch)
    assert [r.decision.kind for r in alone] == ["new", "new"] and "below threshold" in alone[1].decision.reason
    linked = Linker(MatchPolicy(threshold=0.6, ground=plane()), counter()).link(batch)
    d = linked[1].decision
    assert linked[1].identity == linked[0].identity and d.kind == "colocated"
    assert d.score == pytest.approx(0.3 / math.hypot(0.3, 1)) and f"cosine {d.score:.3f}" in d.reason


def test_people_side_by_side_are_left_to_appearance():
    """Two people 0.5 m apart are both within ground_near of a third sighting: co-location cannot choose."""
    a0 = seen("cam0", 1, 0.0, 3.0, [1, 0, 0], walk_path(CAM0, 0.0, 3.0, (1.0, 1.0), (1.0, 0)))
    b0 = seen("cam0", 2, 0.0, 3.0, [0, 1, 0], walk_path(CAM0, 0.0, 3.0, (1.0, 1.5), (1.0, 0)))
    a1 = seen("cam1", 1, 0.0, 3.0, [1, 0.1, 0], walk_path(CAM1, 0.0, 3.0, (1.0, 1.0), (1.0, 0)))
    out = Linker(MatchPolicy(threshold=0.6, ground=plane()), counter()).link([a0, b0, a1])
    assert out[2].decision.kind == "link" and out[2].identity == out[0].identity


def test_a_sighting_far_away_at_the_same_moments_is_not_the_same_person():
    a0 = seen("cam0", 1, 0.0, 3.0, [1, 0, 0], walk_path(CAM0, 0.0, 3.0, (1.0, 0.5), (1.0, 0)))
    x1 = seen("cam1", 1, 0.0, 3.0, [1, 0.05, 0], walk_path(CAM1, 0.0, 3.0, (1.0, 3.9), (1.0, 0)))  # 3.4 m away
    out = Linker(MatchPolicy(threshold=0.6, ground=plane()), counter()).link([a0, x1])
    assert out[1].decision.kind == "new" and out[1].decision.excluded == 1
    assert Linker(MatchPolicy(threshold=0.6), counter()).link([a0, x1])[1].decision.kind == "link"


def test_unconstrained_where_there_is_no_plan_position():
    """A camera without a homography, a tracklet without a path, an identity loaded without plan tracks: the
    ground plane says nothing, and the scores decide."""
    batch = two_people_at_once()
    policy = MatchPolicy(threshold=0.6, margin=0.01)
    cam0_only = GroundPlane({"cam0": plane().homographies["cam0"]})
    for ground, tracklets in ((cam0_only, batch), (plane(), two_people_at_once(with_path=False))):
        out = Linker(MatchPolicy(threshold=0.6, margin=0.01, ground=ground), counter()).link(tracklets)
        assert [r.identity for r in out] == [1, 2, 2, 1]  # as without a ground plane
    # cam0 linked before a restart: the gallery as loaded from Redis holds its sightings, and no plan track
    first = Linker(policy, counter())
    first.link(batch[:2])
    gallery = Gallery()
    for identity in (1, 2):
        gallery.set(identity, first.gallery.exemplars(identity), first.gallery.history(identity))
    again = Linker(MatchPolicy(threshold=0.6, margin=0.01, ground=plane()), lambda n: [3, 4][:n], gallery)
    assert [r.identity for r in again.link(batch[2:])] == [2, 1]


def test_without_a_ground_plane_decisions_are_those_of_before():
    """A stream with paths, linked with no ground plane and with one for cameras the stream does not have,
    gives the same decisions as the stream without paths."""
    rng = np.random.default_rng(4)
    people = [unit(rng.normal(size=16)) for _ in range(6)]
    stream = []
    for k in range(60):
        p, cam, t0 = int(rng.integers(6)), f"cam{int(rng.integers(3))}", float(k)
        feature = people[p] + rng.normal(scale=0.3, size=16)
        path = walk_path(CAM0, t0, t0 + 2, (float(rng.uniform(0, 8)), float(rng.uniform(0, 4))), (1, 0))
        stream.append((seen(cam, k, t0, t0 + 2, feature, path), seen(cam, k, t0, t0 + 2, feature)))
    elsewhere = GroundPlane({"lobby": plane().homographies["cam0"]})
    runs = []
    for ground, which in ((None, 0), (None, 1), (elsewhere, 0)):
        linker = Linker(MatchPolicy(threshold=0.7, ground=ground), counter())
        runs.append(
            [
                (r.identity, r.decision)
                for i in range(0, 60, 7)
                for r in linker.link([s[which] for s in stream[i : i + 7]])
            ]
        )
    assert runs[0] == runs[1] == runs[2]


def test_plan_tracks_follow_their_identities_and_are_forgotten_in_time():
    batch = two_people_at_once()
    linker = Linker(MatchPolicy(threshold=0.6, margin=0.01, ground=plane()), counter())
    linker.link(batch)
    g = linker.gallery
    assert sorted(g.plans) == [1, 2] and [len(g.plans_of(i)) for i in (1, 2)] == [2, 2]  # real ids, not placeholders
    b1 = plan_track(plane().homographies["cam1"], batch[3].path)
    placed = place(b1, "cam1", g.recent_plans(), plane())
    assert placed.far == {1} and list(placed.near) == [2]  # cam1's own tracks are left out
    # a merge pass never joins two identities seen apart at the same moments, however alike
    linker.candidates[(1, 2)] = 0.99
    assert linker.merges() == []
    later = seen("cam0", 9, 100.0, 101.0, [0, 0, 1], walk_path(CAM0, 100.0, 101.0, (5, 2), (0, 0)))
    linker.link([later])
    assert sorted(g.plans) == [3]  # those of 60 s and more before are forgotten
    linker.forget([3])
    assert g.plans == {}


# --- a synthetic scene -------------------------------------------------------------------------------------
def scene_tracklets(scene, seconds: float = 2.0) -> list[tuple[int, TrackletEmbedding]]:
    """Every visit of ``scene`` cut into tracklets of ``seconds`` with their exact paths (the boxes the scene
    draws, every frame), as (true person, tracklet) in stream order. A person looks different from each
    camera: a feature of their own per camera, so appearance alone links no one across views."""
    from synth.visits import visit_boxes

    spec, rng = scene.spec, np.random.default_rng(0)
    looks = {(p, c): unit(rng.normal(size=32)) for p in scene.people for c in range(spec.cameras)}
    out = []
    for track, v in enumerate(sorted(scene.visits, key=lambda v: (v.t_enter, v.camera, v.pid))):
        frames = np.arange(math.ceil(v.t_enter * spec.fps), math.ceil(v.t_exit * spec.fps))
        for seq, start in enumerate(range(0, len(frames), round(seconds * spec.fps))):
            f = frames[start : start + round(seconds * spec.fps) + 1]
            if len(f) < 2:
                continue
            t = f / spec.fps
            boxes, _ = visit_boxes(v, t, spec.width, spec.height)
            path = np.c_[f, t, boxes, np.ones(len(f))]
            feature = unit(looks[(v.pid, v.camera)] + rng.normal(scale=0.1, size=32))
            e = TrackletEmbedding(
                "s", f"cam{v.camera}", track, seq, t[0], t[-1], feature, np.ones(2) / 2, b"", "m", path
            )
            out.append((v.pid, e))
    return sorted(out, key=lambda x: x[1].t_end)


def test_a_synthetic_site_with_overlapping_views_is_linked_across_them_by_the_floor():
    """The site layout, cameras 0 and 1 watching one walkway: with the ground points the scene gives, every
    tracklet of one view joins the identity of the same person in the other; without them none does."""
    from synth.scene import Scene, SceneSpec
    from synth.truth import idf1

    scene = Scene(SceneSpec(cameras=3, people=8, seconds=60, seed=3, layout="site", overlap=((0, 1),)))
    assert scene.ground_points(2) == [] and len(scene.ground_points(0)) == 4
    ground = ground_plane({f"cam{c}": scene.ground_points(c) for c in range(3)}, 1.0, 3.0)
    stream = scene_tracklets(scene)
    results = {}
    for name, policy in (
        ("appearance", MatchPolicy(threshold=0.6)),
        ("ground", MatchPolicy(threshold=0.6, ground=ground)),
    ):
        linker = Linker(policy, counter())
        linked = [r for i in range(0, len(stream), 16) for r in linker.link([t for _, t in stream[i : i + 16]])]
        results[name] = [(pid, r) for (pid, _), r in zip(stream, linked, strict=True)]
    for name, rows in results.items():
        # the same person seen in both views at once: one identity with the ground plane, two without
        same = {(r.tracklet.camera_id, r.tracklet.t_start, pid): r.identity for pid, r in rows}
        pairs = [
            (r.identity, same.get(("cam1", r.tracklet.t_start, pid)))
            for pid, r in rows
            if r.tracklet.camera_id == "cam0"
        ]
        pairs = [(a, b) for a, b in pairs if b is not None]
        assert len(pairs) >= 20
        joined = sum(a == b for a, b in pairs)
        assert joined == (len(pairs) if name == "ground" else 0), (name, joined, len(pairs))
    colocated = [r for _, r in results["ground"] if r.decision.kind == "colocated"]
    assert colocated and all(r.tracklet.camera_id in ("cam0", "cam1") for r in colocated)
    score = {
        n: idf1((pid, r.identity, r.tracklet.t_end - r.tracklet.t_start) for pid, r in rows)["idf1"]
        for n, rows in results.items()
    }
    assert score["ground"] > score["appearance"] + 0.1, score


def test_the_site_matcher_links_by_the_floor_and_explain_says_so(redis_client):
    """Through the stream: the records carry the paths, the site builds the ground plane from its cameras'
    points, and ``explain`` gives the co-location."""
    from pipeline import store
    from pipeline.config import CrosscamConfig
    from pipeline.site import Site

    cameras = [{"id": "cam0", "source": "a.mp4", "ground": CAM0}, {"id": "cam1", "source": "b.mp4", "ground": CAM1}]
    config = CrosscamConfig.model_validate(
        {"site": "floor", "cameras": cameras, "matcher": {"threshold": 0.6, "margin": 0.01}}
    )
    site = Site(config, redis_client)
    publisher, thumb = site.publisher(), make_embedding().thumbnail
    for t in two_people_at_once():
        publisher.publish(TrackletEmbedding(**(vars(t) | {"site": site.name, "thumbnail": thumb})))
    site.matcher(consumer="m").start().run(idle_exit=0.3)
    a0, b0, a1, b1 = (
        store.explain(redis_client, site.keys, s) for s in ("cam0:1:0", "cam0:2:0", "cam1:1:0", "cam1:2:0")
    )
    assert (a1.person, b1.person) == (a0.person, b0.person) and a0.person != b0.person
    assert a1.decision == "colocated" and a1.reason.startswith("co-located on the floor plan: 0.00 m apart")
