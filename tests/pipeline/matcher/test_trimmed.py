"""Pending records trimmed from the stream (``redis.maxlen``) before the matcher processed them: counted as
``trimmed`` and acknowledged, never dead-lettered; and the warning when the backlog nears the stream's limit."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.keys import GROUP
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.types import TrackletEmbedding


def publish(client, keys, n: int) -> list[str]:
    """``n`` tracklets of 5 people; returns their tracklet ids."""
    faces = np.random.default_rng(0).normal(size=(5, 32))
    publisher, ids = Publisher(client, keys), []
    for i in range(n):
        f = faces[i % 5] + np.random.default_rng(i).normal(scale=0.05, size=32)
        f = (f / np.linalg.norm(f)).astype(np.float32)
        t = TrackletEmbedding(
            keys.site, f"cam{i % 3}", i, 0, 10.0 * i, 10.0 * i + 2, f, np.ones(2) / 2, b"\xff\xd8", "m1"
        )
        publisher.publish(t)
        ids.append(t.tracklet_id)
    return ids


def stats(client, keys) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(keys.stats).items()}


@pytest.mark.parametrize("path", ["own pending", "claimed"])
def test_pending_records_trimmed_before_processing_are_counted_not_dead_lettered(redis_client, bus_keys, path):
    """A matcher read 30 records and died; the stream was then trimmed to its 10 newest. The matcher that goes
    on (under the same name: its own pending records; under another: claimed from the dead one) counts 20
    trimmed, in its counts and the site's stats, acknowledges them, dead-letters nothing, and stores the 10."""
    keys = bus_keys
    ids = publish(redis_client, keys, 30)
    redis_client.xgroup_create(keys.tracklets, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "dead", {keys.tracklets: ">"}, count=30)
    assert redis_client.xtrim(keys.tracklets, maxlen=10, approximate=False) == 20
    name = "dead" if path == "own pending" else "next"
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer=name, batch=8, claim_idle=0.01)
    counts = matcher.start().run(idle_exit=2)
    assert redis_client.xlen(keys.dead) == 0
    assert redis_client.xpending(keys.tracklets, GROUP)["pending"] == 0
    assert (counts.get("trimmed"), counts["dead_letters"], counts["processed"]) == (20, 0, 10)
    assert stats(redis_client, keys).get("trimmed") == "20"
    assert sorted(x.decode() for x in redis_client.zrange(keys.ingested, 0, -1)) == sorted(ids[20:])
    assert sum(p.sightings for p in store.persons(redis_client, keys)) == 10


def test_a_backlog_near_the_streams_length_limit_is_warned_of(redis_client, bus_keys, caplog):
    """With 120 records waiting and ``redis.maxlen`` 200 the matcher warns, in its log and in the site's stats
    (``backlog_warning``); once caught up the warning is withdrawn."""
    keys = bus_keys
    publish(redis_client, keys, 120)
    redis_client.xgroup_create(keys.tracklets, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "dead", {keys.tracklets: ">"}, count=120)  # pending: known to every Redis
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m", claim_idle=0.01, maxlen=200)
    with caplog.at_level(logging.WARNING, logger="pipeline.matcher.consumer"):
        matcher.start().step(block_ms=10)
    s = stats(redis_client, keys)
    assert s["backlog"] == "120" and "redis.maxlen 200" in s["backlog_warning"]
    assert [r for r in caplog.records if "redis.maxlen 200" in r.getMessage()]
    matcher.run(idle_exit=0.3)
    assert matcher.check_backlog() is None
    s = stats(redis_client, keys)
    assert s["backlog"] == "0" and "backlog_warning" not in s


def test_the_backlog_counts_records_not_yet_delivered_on_every_redis_version(redis_client, bus_keys):
    """Redis 6.2 reports no consumer-group lag: what follows the last delivered record is counted all the same,
    so a caller that waits for the backlog to reach 0 never stops before the last records are read."""
    from pipeline.matcher.reader import GroupReader

    publish(redis_client, bus_keys, 7)
    reader = GroupReader(redis_client, bus_keys, "m", batch=3, claim_idle=60.0)
    reader.ensure_group()
    assert reader.backlog() == 7
    got = redis_client.xreadgroup(GROUP, "m", {bus_keys.tracklets: ">"}, count=3)[0][1]
    assert reader.backlog() == 7  # 3 pending, 4 not delivered
    redis_client.xack(bus_keys.tracklets, GROUP, *[sid for sid, _ in got])
    assert reader.backlog() == 4
