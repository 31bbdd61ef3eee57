"""The lease while the matcher loads its gallery: a load that takes longer than the lease must not let it
lapse (a lapsed lease is taken again under a new tenure, which makes the matcher load again, and so on)."""

from __future__ import annotations

import time

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.matcher import consumer
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from tests.pipeline.matcher.test_consumer import walk

LEASE = 0.5


def test_a_gallery_load_longer_than_the_lease_keeps_the_lease(redis_client, bus_keys, monkeypatch):
    publisher = Publisher(redis_client, bus_keys)
    truth = walk(bus_keys.site, n_people=3)
    for _, t in truth[:4]:
        publisher.publish(t)
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="m", lease=LEASE).start().run(idle_exit=0.3)
    load = store.load_gallery

    def slow_load(client, keys):  # a site whose gallery takes longer to load than the lease lasts
        time.sleep(1.6 * LEASE)
        return load(client, keys)

    monkeypatch.setattr(consumer.store, "load_gallery", slow_load)
    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="m", lease=LEASE).start()
    for _, t in truth[4:]:
        publisher.publish(t)
    deadline = time.monotonic() + 20  # a matcher that loads again and again never idles: bounded here
    counts = matcher.run(stop=lambda: time.monotonic() > deadline, idle_exit=1.0)
    assert matcher.lease.tenure == 1  # taken once, kept through the load
    assert counts["processed"] == len(truth) - 4
    assert sum(1 for _ in redis_client.scan_iter(bus_keys.sighting("*"))) == len(truth)
