"""Linking in stream order: the same identities whatever order and pace the cameras deliver their tracklets in."""

from __future__ import annotations

import math
import random
import threading
import time

import numpy as np

from pipeline.bus.publisher import Publisher, read_watermarks, write_watermarks
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.reorder import Reorder, Watermarks, merge_period, order_key, stream_order
from pipeline.matcher.rules import MatchPolicy
from tests.support.records import make_embedding


def tracklet(camera: str, track: int, t0: float, t1: float, feature: np.ndarray, site: str = "s"):
    return make_embedding(
        dim=len(feature),
        site=site,
        camera_id=camera,
        track_id=track,
        seq=0,
        t_start=t0,
        t_end=t1,
        feature=np.asarray(feature, np.float32),
    )


def feature(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return v / np.linalg.norm(v)


def test_tracklets_leave_in_stream_order_once_the_watermark_passes_them():
    r = Reorder(window=5.0)
    late = tracklet("b", 1, 0.0, 4.0, feature(1))
    early = tracklet("a", 1, 0.0, 2.0, feature(2))
    r.add("2-0", late, now=0.0)
    r.add("1-0", early, now=0.1)
    assert r.release(watermark=1.0, now=0.2) == []  # nothing closed at or before 1.0
    assert [t for _, t in r.release(watermark=3.9, now=0.3)] == [early]
    assert "b:1:0" in r and len(r) == 1
    assert [t for _, t in r.release(watermark=4.0, now=0.4)] == [late]  # closed at 4.0: at the watermark


def test_a_tracklet_held_for_the_window_goes_with_everything_before_it():
    r = Reorder(window=1.0)
    a, b, c = (tracklet("a", i, 0.0, float(i), feature(i)) for i in (1, 2, 3))
    r.add("x", b, now=0.0)
    r.add("y", c, now=0.9)
    r.add("z", a, now=0.95)
    assert r.release(watermark=0.0, now=0.99) == []
    assert [t for _, t in r.release(watermark=0.0, now=1.0)] == [a, b]  # b waited 1 s: a is before it
    assert [t for _, t in r.release(watermark=0.0, now=2.0)] == [c]


def test_a_window_of_zero_links_in_arrival_order():
    r = Reorder(window=0.0)
    r.add("x", tracklet("a", 2, 0.0, 9.0, feature(1)), now=0.0)
    assert len(r.release(watermark=-math.inf, now=0.0)) == 1


def test_a_camera_whose_watermark_stops_moving_is_not_waited_for():
    w = Watermarks(window=2.0)
    assert w.update({"a": 5.0, "b": 3.0}, now=0.0) == 3.0
    assert w.update({"a": 6.0, "b": 3.0}, now=1.0) == 3.0
    assert w.update({"a": 9.0, "b": 3.0}, now=2.5) == 9.0  # b stuck for 2.5 s: dead or lost its stream
    assert w.update({"a": 9.5, "b": 4.0}, now=3.0) == 4.0  # b moves again: waited for again
    assert w.update({"a": math.inf, "b": math.inf}, now=100.0) == math.inf  # both ended
    assert Watermarks(window=1.0).update({}, now=0.0) == math.inf  # no camera publishes one: nothing to wait for


def test_the_order_is_the_closing_time_when_the_record_has_one():
    from dataclasses import replace

    lost = replace(tracklet("a", 1, 0.0, 2.0, feature(1)), t_closed=3.1)  # ended at 2.0, closed 1.1 s later
    done = replace(tracklet("b", 2, 0.0, 3.0, feature(2)), t_closed=3.0)  # closed at its last frame
    old = tracklet("c", 3, 0.0, 2.5, feature(3))  # a producer that does not say: its end stands for it
    assert [t.camera_id for t in stream_order([lost, done, old])] == ["c", "b", "a"]


def test_order_key_and_merge_periods():
    ts = [
        tracklet("b", 1, 0.0, 2.0, feature(1)),
        tracklet("a", 3, 0.0, 2.0, feature(2)),
        tracklet("a", 1, 0, 1, feature(3)),
    ]
    assert [order_key(t) for t in stream_order(ts)] == [(1.0, "a", 1, 0), (2.0, "a", 3, 0), (2.0, "b", 1, 0)]
    assert [merge_period(t, 10.0) for t in (0.0, 9.99, 10.0, 25.0)] == [0, 0, 1, 2]
    assert merge_period(math.inf, 10.0) == math.inf


def test_watermarks_round_trip_through_the_camera_status(redis_client, bus_keys):
    write_watermarks(redis_client, bus_keys, {"a": 12.5, "b": math.inf})
    redis_client.hset(bus_keys.camera("c"), "watermark", "not a number")
    redis_client.sadd(bus_keys.cameras, "c")
    assert read_watermarks(redis_client, bus_keys) == {"a": 12.5, "b": math.inf}


def scene(site: str, cameras: int = 3, people: int = 6, passes: int = 4, seed: int = 3):
    """People walking through cameras in turn, some pairs alike enough that which identity a tracklet joins depends
    on what was linked before it: per camera, its tracklets in stream order."""
    rng = np.random.default_rng(seed)
    looks = [feature(100 + p) for p in range(people)]
    for p in range(1, people, 2):  # every second person looks much like the one before
        looks[p] = looks[p - 1] + 0.6 * feature(200 + p)
        looks[p] /= np.linalg.norm(looks[p])
    by_camera: dict[str, list] = {f"cam{c}": [] for c in range(cameras)}
    track = 0
    for k in range(passes):
        for p in range(people):
            t0 = 40.0 * k + 3.0 * p + rng.uniform(0, 2)
            for c in range(cameras):
                track += 1
                f = looks[p] + rng.normal(scale=0.25, size=len(looks[p]))
                start = t0 + 6.0 * c
                by_camera[f"cam{c}"].append(
                    tracklet(f"cam{c}", track, start, start + 4.0, f / np.linalg.norm(f), site=site)
                )
    for camera in by_camera:
        by_camera[camera].sort(key=order_key)
    return by_camera


def run_site(redis_client, keys, by_camera, seed: int) -> dict[str, int]:
    """Each camera publishes its tracklets on a thread of its own, at a random pace, with its watermark (as a camera
    process does); a matcher links meanwhile. Returns tracklet id -> identity as stored."""
    from pipeline import store

    publisher = Publisher(redis_client, keys)
    rng = random.Random(seed)
    delays = {camera: [rng.uniform(0, 0.01) for _ in ts] for camera, ts in by_camera.items()}
    write_watermarks(redis_client, keys, dict.fromkeys(by_camera, -math.inf))  # every camera is there from the start

    def camera(name: str) -> None:
        for t, pause in zip(by_camera[name], delays[name], strict=True):
            time.sleep(pause)
            publisher.publish(t)
            write_watermarks(redis_client, keys, {name: t.t_end})  # nothing of this camera ends before it any more
        write_watermarks(redis_client, keys, {name: math.inf})

    threads = [threading.Thread(target=camera, args=(c,)) for c in by_camera]
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.6, margin=0.05), batch=8, merge_every=20.0).start()
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads) or matcher.backlog():
        matcher.step(block_ms=5)
    matcher.merge()
    matcher.release()
    ids = [t.tracklet_id for ts in by_camera.values() for t in ts]
    return {sid: store.sighting(redis_client, keys, sid).identity for sid in ids}


def partition(assigned: dict[str, int]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for sid, identity in assigned.items():
        groups.setdefault(identity, set()).add(sid)
    return {frozenset(g) for g in groups.values()}


def test_the_same_identities_whatever_pace_the_cameras_deliver_at(redis_client, bus_keys):
    """One scene, its cameras publishing at random paces five times (each run a site of its own): the matcher makes
    the same identities every time. Linking in arrival order would not: the check below shows that the scene is one
    where order matters."""
    from dataclasses import replace

    by_camera = scene(bus_keys.site)
    runs = []
    for i in range(5):
        keys = replace(bus_keys, prefix=f"{bus_keys.prefix}-{i}")
        runs.append(partition(run_site(redis_client, keys, by_camera, seed=i)))
    assert all(r == runs[0] for r in runs[1:])
    assert 4 <= len(runs[0]) < sum(len(ts) for ts in by_camera.values())  # people were linked, and not all as one

    from pipeline.matcher.linker import Linker

    def in_order(order) -> set[frozenset[str]]:  # the rules alone, tracklet by tracklet in the given order
        ids = iter(range(1, 10_000))
        linker = Linker(MatchPolicy(threshold=0.6, margin=0.05), lambda n: [next(ids) for _ in range(n)])
        return partition({r.tracklet.tracklet_id: r.identity for t in order for r in linker.link([t])})

    tracklets = [t for ts in by_camera.values() for t in ts]
    shuffled = [in_order(random.Random(k).sample(tracklets, len(tracklets))) for k in range(5)]
    assert len({frozenset(p) for p in shuffled}) > 1  # arrival order changes the answer
