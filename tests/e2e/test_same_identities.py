"""The same input gives the same identities: a synthetic scene run five times through the whole site (camera
workers on threads, the embedding service, the matcher), each camera slowed down at random moments, links every
tracklet to the same identity every time."""

from __future__ import annotations

import random
import time

import pytest


def identities(site, run) -> dict[str, int]:
    from pipeline import store

    return {sid: store.sighting(site.client, site.keys, sid).identity for sid in sorted(run.tracklets)}


def partition(assigned: dict[str, int]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for sid, identity in assigned.items():
        groups.setdefault(identity, set()).add(sid)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.slow
def test_five_runs_with_random_camera_delays_give_the_same_identities(monkeypatch, demo_cache):
    from models.embedder import load_embedder
    from pipeline.bus.connect import scratch_redis
    from pipeline.config import CrosscamConfig
    from pipeline.lab.bench_mtmc import scene_cameras
    from pipeline.lab.demo import demo_config, demo_model, run_site
    from pipeline.site import Site
    from synth.spec import SceneSpec

    monkeypatch.setenv("CROSSCAM_CACHE_DIR", str(demo_cache))
    embedder = load_embedder(demo_model(demo_cache), device="cpu")
    cameras = scene_cameras(SceneSpec(cameras=3, people=6, seconds=20.0, seed=4))
    runs = []
    for k in range(5):
        rng = random.Random(k)
        with scratch_redis("crosscam-test-same-") as client:
            site = Site(demo_config(CrosscamConfig(), "motion", synthetic=True), client, "same")
            run = run_site(site, cameras, embedder, pace=lambda camera, rng=rng: time.sleep(rng.uniform(0, 0.25)))
            runs.append(identities(site, run))
    assert len(runs[0]) >= 10 and len(set(runs[0].values())) >= 4  # tracklets of several people were linked
    assert all(set(r) == set(runs[0]) for r in runs)  # the same tracklets every time (the cameras are exact)
    assert all(partition(r) == partition(runs[0]) for r in runs[1:])
