"""A camera process rides out a Redis restart: a real redis-server (AOF on, ``appendfsync always``) stopped
and restarted on the same port and data folder while a worker publishes a rendered synthetic camera through
the real embedding service. Every tracklet it produced is on the stream exactly once, in order, and the
worker ran to the end of its source; with a small backlog the oldest tracklets are dropped and counted."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from models.embedder import load_embedder
from pipeline.bus import records
from pipeline.config import CrosscamConfig
from pipeline.site import Site
from tests.support.redis_process import RedisProcess
from tests.support.waiting import wait_for

SCENE = "synth://?cameras=1&people=4&seconds=60&seed=3&camera=0"  # 600 frames: tracklets close all along


@pytest.fixture
def server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


def camera_process(server: RedisProcess, embedder_path, backlog: int = 5000):
    config = CrosscamConfig.model_validate(
        {
            "site": "lobby",
            "redis": {"url": server.url, "backlog": backlog},
            # the synthetic people are small, and tracklets close every 2 s of the scene
            "tracklets": {"max_seconds": 2.0, "min_box_height": 30},
        }
    )
    site = Site.open(config)
    return site, site.cameras(load_embedder(embedder_path, device="cpu"))


def start(process) -> tuple[threading.Thread, dict]:
    worker = process.camera("door", SCENE, "motion")
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(process.run([worker])), daemon=True)
    thread.start()
    return thread, out


def stream_ids(client, key: str) -> list[str]:
    return [records.decode(fields).tracklet_id for _, fields in client.xrange(key)]


@pytest.mark.parametrize("outage", [0.0, pytest.param(30.0, marks=pytest.mark.long)], ids=["restart", "30s"])
def test_a_worker_rides_out_a_redis_restart_and_publishes_every_tracklet_once(outage, server, tiny_checkpoints, caplog):
    """Redis stays down until tracklets were made meanwhile, and at least ``outage`` seconds (the source may
    end during a long outage: the service then keeps trying while the process stops)."""
    caplog.set_level(logging.INFO)
    site, process = camera_process(server, tiny_checkpoints["tiny_attention"])
    service = process.service
    thread, reports = start(process)
    assert wait_for(lambda: site.client.xlen(site.keys.tracklets) >= 2, 120), "nothing published before the stop"

    server.stop()
    stopped = time.monotonic()
    made_before = service.counts["submitted"]
    # tracklets keep coming while Redis is down: they wait in the backlog
    assert wait_for(lambda: service.counts["submitted"] >= made_before + 3, 120), "no tracklets during the outage"
    time.sleep(max(0.0, outage - (time.monotonic() - stopped)))
    server.start()

    thread.join(300)
    assert not thread.is_alive()
    report = reports["door"]
    assert report.final_state == "ended" and report.frames == 600  # the worker read its whole source
    client = server.client()
    ids = stream_ids(client, site.keys.tracklets)
    assert len(ids) == len(set(ids)) == service.counts["submitted"] == report.tracklets  # all, exactly once
    by_track: dict[str, list[int]] = {}
    for tid in ids:  # in order: each track's tracklets in the order they closed
        camera, track, seq = tid.rsplit(":", 2)
        by_track.setdefault(f"{camera}:{track}", []).append(int(seq))
    assert all(seqs == sorted(seqs) for seqs in by_track.values())
    assert service.counts["published"] == len(ids)
    assert service.counts["backlog_dropped"] == service.counts["dropped"] == service.counts["failed"] == 0
    assert int(client.hget(site.keys.stats, "published")) == len(ids)
    assert client.hget(site.keys.camera("door"), "state") == b"ended"  # the status kept during the outage
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    assert any("Redis reachable again" in r.getMessage() for r in caplog.records)


def test_a_full_backlog_drops_the_oldest_tracklets_and_counts_them(server, tiny_checkpoints, caplog):
    caplog.set_level(logging.WARNING)
    site, process = camera_process(server, tiny_checkpoints["tiny_attention"], backlog=2)
    service = process.service
    server.stop()  # down from the start: every tracklet waits, and only the 2 newest are kept
    thread, reports = start(process)
    assert wait_for(lambda: service.counts["backlog_dropped"] >= 3, 120), "the backlog never filled"
    server.start()

    thread.join(300)
    assert not thread.is_alive() and reports["door"].final_state == "ended"
    client = server.client()
    ids = stream_ids(client, site.keys.tracklets)
    dropped = service.counts["backlog_dropped"]
    assert len(ids) == len(set(ids)) == service.counts["submitted"] - dropped
    assert int(client.hget(site.keys.stats, "backlog_dropped")) == dropped  # counted on the site too
    full = [r for r in caplog.records if "backlog full" in r.getMessage()]
    assert len(full) == 1  # logged once for the outage
    recovered = [r.getMessage() for r in caplog.records if "Redis reachable again" in r.getMessage()]
    assert recovered and f"{dropped} oldest dropped" in recovered[0]
