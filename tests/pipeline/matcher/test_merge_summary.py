"""The summary a merge writes: a person's recent history is bounded, so what it says about the person's
first sighting must come from the stored summaries."""

from __future__ import annotations

from pipeline import store
from tests.pipeline.matcher.test_consumer import people


def test_a_merge_keeps_the_earliest_first_seen_of_both_persons(redis_client, bus_keys):
    """A person's recent history is bounded, so its summary's first sighting is not the person's: a merge
    keeps the earlier of the two stored ``first_seen`` values."""
    import numpy as np

    from pipeline.bus.batch import Commands, Fence
    from pipeline.matcher.gallery import Gallery
    from pipeline.matcher.rules import Sighting

    keys, face = bus_keys, people(1)[0]
    for n, first in [(1, 5.0), (2, 50.0)]:
        redis_client.hset(keys.identity(n), mapping={"first_seen": repr(first), "sightings": 1})
        redis_client.zadd(keys.identities, {str(n): 100.0})
    gallery = Gallery()
    gallery.set(1, face[None, :], [Sighting("cam0", 9, 90.0, 95.0), Sighting("cam1", 10, 96.0, 99.0)])
    w = Commands()
    store.write_merge(w, redis_client, keys, 2, 1, 0.9, gallery, set())
    w.run(redis_client, Fence.of(keys, "", None))
    assert float(redis_client.hget(keys.identity(1), "first_seen")) == 5.0
    assert not redis_client.exists(keys.identity(2)) and np.isfinite(
        float(redis_client.hget(keys.identity(1), "last_seen"))
    )
