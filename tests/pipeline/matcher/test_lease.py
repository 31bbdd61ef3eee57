"""The lease while the matcher loads its gallery: a load that takes longer than the lease must not let it
lapse (a lapsed lease is taken again under a new tenure, which makes the matcher load again, and so on)."""

from __future__ import annotations

import time

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.matcher import consumer
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.lease import Lease
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


def test_a_standby_asked_to_stop_stops_waiting_and_leaves_the_lease_alone(redis_client, bus_keys):
    redis_client.set(bus_keys.lease, "another/abc", ex=60)  # another matcher is active
    looks = []

    def stop() -> bool:  # asked to stop after the standby has looked at the lease a few times
        looks.append(redis_client.get(bus_keys.lease))
        return len(looks) > 3

    lease = Lease(redis_client, bus_keys, "standby", 60.0)
    assert lease.acquire(wait=True, stop=stop) is False
    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="standby", lease=60.0)
    looks.clear()
    counts = matcher.start(stop=stop).run(stop=stop)  # stands by, then stops: nothing loaded, nothing written
    assert matcher.linker is None and counts.get("processed", 0) == 0
    assert redis_client.get(bus_keys.lease) == b"another/abc"


def test_a_stopped_matcher_releases_its_lease(redis_client, bus_keys):
    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="m", lease=60.0).start()
    assert redis_client.get(bus_keys.lease).startswith(b"m/")
    matcher.run(stop=lambda: True)
    assert redis_client.get(bus_keys.lease) is None  # a standby takes it at its next look
