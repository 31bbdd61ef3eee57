"""Retention forgets: after ``crosscam prune --older-than X`` (the CLI, a real Redis), no thumbnail or feature
of a record older than X remains anywhere in Redis: not in sightings or persons, nor in the tracklet,
decisions or dead-letter streams. Newer data stays."""

from __future__ import annotations

import time

import cv2
import numpy as np

from pipeline.bus import records
from pipeline.bus.publisher import Publisher
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.store.retention import trim_streams
from tests.support.cli import run_json, site_args
from tests.support.records import make_embedding
from tests.support.redis_scan import every_value


def unique_tracklets(site: str, camera: str, count: int, seed: int):
    """Tracklets of different people, each with its own thumbnail and feature."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        f = rng.normal(size=64).astype(np.float32)
        thumb = cv2.imencode(".jpg", rng.integers(0, 255, (64, 32, 3), dtype=np.uint8))[1].tobytes()
        out.append(
            make_embedding(
                site=site, camera_id=camera, track_id=i, dim=64, feature=f / np.linalg.norm(f), thumbnail=thumb
            )
        )
    return out


def personal_data(tracklets) -> list[bytes]:
    """What must go: each tracklet's thumbnail and its feature as stored (float16)."""
    out = []
    for t in tracklets:
        fields = records.encode(t)
        out += [fields["thumb"], fields["feature"]]
    return out


def test_prune_leaves_no_thumbnail_or_feature_older_than_the_cutoff_anywhere(capsys, redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    old = unique_tracklets(bus_keys.site, "cam0", 3, seed=1)
    for t in old:
        publisher.publish(t)
    refused = records.encode(unique_tracklets(bus_keys.site, "cam0", 1, seed=3)[0]) | {"dim": b"65"}
    redis_client.xadd(bus_keys.tracklets, refused)  # malformed: the matcher dead-letters it, thumbnail and all
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.99)).start().run(idle_exit=0.3)
    assert redis_client.xlen(bus_keys.dead) == 1
    time.sleep(3.0)  # what follows is newer than the cut-off (2 s ago) when prune runs
    new = unique_tracklets(bus_keys.site, "cam1", 2, seed=2)
    for t in new:
        publisher.publish(t)
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.99)).start().run(idle_exit=0.3)
    everything = every_value(redis_client)
    assert all(any(d in v for v in everything) for d in personal_data(old + new))  # stored in several places

    common = site_args(redis_client, bus_keys)
    code, data, err = run_json(capsys, "prune", "--older-than", "2s", *common)
    assert code == 0, err
    assert data["sightings_removed"] == 3 and data["persons_removed"] == 3
    assert data["trimmed"]["tracklets"] == 4 and data["trimmed"]["dead_letters"] == 1
    assert data["trimmed"]["decisions"] >= 3
    everything = every_value(redis_client)
    left = [d for d in [*personal_data(old), refused["thumb"]] if any(d in v for v in everything)]
    assert not left, f"{len(left)} thumbnails or features older than the cut-off remain"
    assert all(any(d in v for v in everything) for d in personal_data(new))  # newer data is kept


def test_trim_streams_counts_what_it_removes_and_leaves_other_keys_alone(redis_client, bus_keys):
    redis_client.xadd(bus_keys.tracklets, {"a": 1}, id="1000-0")
    redis_client.xadd(bus_keys.tracklets, {"a": 2}, id="5000-0")
    redis_client.set(bus_keys.epoch, 3)  # not a stream
    removed = trim_streams(redis_client, [bus_keys.tracklets, bus_keys.epoch, bus_keys.dead], before=2.0)
    assert removed == {bus_keys.tracklets: 1, bus_keys.epoch: 0, bus_keys.dead: 0}
    assert [e[0] for e in redis_client.xrange(bus_keys.tracklets)] == [b"5000-0"]
    assert redis_client.get(bus_keys.epoch) == b"3"
