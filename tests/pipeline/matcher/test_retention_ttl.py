"""``matcher.ttl`` under a running matcher: an identity whose keys expired is forgotten by the matcher, so a
person seen again is a new identity with a whole summary; the queries read a partial summary."""

from __future__ import annotations

import numpy as np

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.store.fields import summary
from pipeline.types import TrackletEmbedding
from tests.support.waiting import wait_for

TTL = 1.0


def person(seed: int = 0, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def seen(site: str, camera: str, track: int, t0: float, face: np.ndarray) -> TrackletEmbedding:
    f = face + np.random.default_rng(track).normal(scale=0.02, size=face.shape)
    f = (f / np.linalg.norm(f)).astype(np.float32)
    return TrackletEmbedding(site, camera, track, 0, t0, t0 + 2.0, f, np.full(4, 0.25, np.float32), b"\xff\xd8", "m1")


def drain(matcher: Matcher) -> None:
    while matcher.step(block_ms=10):
        pass


def expired(client, keys, identity: int) -> bool:
    return not client.exists(keys.identity(identity), keys.sightings(identity))


def test_a_person_seen_after_the_ttl_expired_is_a_new_whole_identity(redis_client, bus_keys):
    """Linked, expired under the running matcher, seen again: the matcher does not link to the identity
    Redis deleted; the person is a new identity whose summary has first_seen and a thumbnail, and
    ``persons`` (what ``/api/persons`` answers) lists it."""
    keys, face = bus_keys, person()
    publisher = Publisher(redis_client, keys)
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m", ttl=TTL).start()
    publisher.publish(seen(keys.site, "cam0", 1, 10.0, face))
    publisher.publish(seen(keys.site, "cam1", 2, 20.0, face))
    drain(matcher)
    assert [p.person for p in store.persons(redis_client, keys)] == [1]
    assert wait_for(lambda: expired(redis_client, keys, 1), 10)

    publisher.publish(seen(keys.site, "cam0", 3, 30.0, face))
    drain(matcher)
    rows = store.persons(redis_client, keys)
    assert [(p.person, p.sightings) for p in rows] == [(2, 1)]
    assert rows[0].first_seen == 30.0 and rows[0].thumb == "cam0:3:0"
    assert store.sighting(redis_client, keys, "cam0:3:0").decision == "new"
    assert matcher.counts["expired"] == 1 and 1 not in matcher.linker.gallery
    h = {k.decode() for k in redis_client.hgetall(keys.identity(2))}
    assert {"first_seen", "last_seen", "thumb", "created", "sightings", "exemplars"} <= h


def test_a_restarted_matcher_forgets_identities_when_their_keys_expire(redis_client, bus_keys):
    """The deadlines of the identities a matcher loads come from their keys' remaining TTL."""
    keys, face = bus_keys, person(1)
    publisher = Publisher(redis_client, keys)
    publisher.publish(seen(keys.site, "cam0", 1, 10.0, face))
    Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="a", ttl=TTL).start().run(idle_exit=0.1)
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="b", ttl=TTL).start()
    assert 1 in matcher.linker.gallery or expired(redis_client, keys, 1)
    assert wait_for(lambda: expired(redis_client, keys, 1), 10)
    publisher.publish(seen(keys.site, "cam1", 2, 20.0, face))
    drain(matcher)
    assert [(p.person, p.first_seen) for p in store.persons(redis_client, keys)] == [(2, 20.0)]


def test_a_link_to_an_identity_whose_hash_is_gone_writes_it_whole(redis_client, bus_keys):
    """Should the hash go between a link and its write, the write still gives it first_seen and a thumb."""
    keys, face = bus_keys, person(2)
    publisher = Publisher(redis_client, keys)
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m").start()
    publisher.publish(seen(keys.site, "cam0", 1, 10.0, face))
    drain(matcher)
    redis_client.delete(keys.identity(1))  # as an expiry the matcher did not see would
    publisher.publish(seen(keys.site, "cam1", 2, 20.0, face))
    drain(matcher)
    row = store.persons(redis_client, keys)[0]
    assert (row.person, row.first_seen, row.thumb) == (1, 10.0, "cam1:2:0")


def test_persons_fills_a_partial_summary_left_by_older_versions(redis_client, bus_keys):
    """A summary without first_seen and thumb (what older versions wrote for a person seen again after its
    keys expired) is listed with first_seen from its recent sightings and its earliest stored sighting as
    thumbnail; one with no stored sighting is left out. Nothing raises."""
    from pipeline.matcher.rules import Sighting

    keys = bus_keys
    fields = summary(person()[None], [Sighting("cam0", 3, 30.0, 32.0), Sighting("cam1", 4, 40.0, 42.0)])
    del fields["first_seen"]
    for n in (7, 8):
        redis_client.hset(keys.identity(n), mapping=fields)
        redis_client.hincrby(keys.identity(n), "sightings", 2)
        redis_client.zadd(keys.identities, {str(n): 42.0})
    redis_client.zadd(keys.sightings(7), {"cam0:3:0": 30.0, "cam1:4:0": 40.0})
    rows = store.persons(redis_client, keys)
    assert [(r.person, r.first_seen, r.last_seen, r.thumb, r.sightings) for r in rows] == [
        (7, 30.0, 42.0, "cam0:3:0", 2)
    ]
    assert store.history(redis_client, keys, 7).first_seen is None  # history reads it as unknown


def test_expiry_gives_each_identity_once_within_the_margin_of_its_latest_deadline():
    from pipeline.matcher.expiry import Expiry

    e = Expiry(margin=0.5)
    e.set([1, 2, 3], 10.0)
    e.set([1], 20.0)  # written again: the later deadline counts
    e.discard([3])  # merged away
    assert e.due(9.4) == [] and e.due(9.5) == [2] and e.due(9.6) == []
    assert e.due(19.0) == [] and e.due(19.5) == [1] and len(e) == 0


def test_with_a_ttl_the_matcher_trims_the_streams_of_what_it_forgot(redis_client, bus_keys):
    """Retention under the matcher: the tracklet and decisions streams hold thumbnails and features too; the
    matcher's periodic pass trims their entries older than ``ttl``, as ``prune`` does."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    for k in range(3):
        publisher.publish(seen(keys.site, "cam1", k, 10.0 * k, person(k)))
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m", ttl=TTL, merge_every=0.1).start()
    drain(matcher)
    assert redis_client.xlen(keys.tracklets) == 3 and redis_client.xlen(keys.decisions) == 3

    def trimmed() -> bool:  # the decisions were added after the records: trimmed a pass later, maybe
        matcher.step(block_ms=10)
        return redis_client.xlen(keys.tracklets) == redis_client.xlen(keys.decisions) == 0

    assert wait_for(trimmed, timeout=10)
    assert matcher.counts["stream_trimmed"] == 6
