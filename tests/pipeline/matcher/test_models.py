"""One model per site: the identities hold one model's features, and a record of another model, even of the
same feature size, is dead-lettered with its reason (features of two models cannot be compared)."""

from __future__ import annotations

import dataclasses

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from tests.pipeline.matcher.test_consumer import people, tracklet


def test_a_record_of_another_model_of_the_same_size_is_dead_lettered(redis_client, bus_keys):
    keys, faces = bus_keys, people(2)
    publisher = Publisher(redis_client, keys)
    publisher.publish(tracklet(keys.site, "cam0", 1, 0.0, faces[0]))  # model m1
    other = dataclasses.replace(tracklet(keys.site, "cam1", 2, 10.0, faces[0]), model_id="m2")
    publisher.publish(other)
    Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m").start().run(idle_exit=0.3)
    dead = redis_client.xrange(keys.dead)
    assert len(dead) == 1 and b"of model 'm2'" in dead[0][1][b"reason"] and b"'m1'" in dead[0][1][b"reason"]
    assert [p.sightings for p in store.persons(redis_client, keys)] == [1]
    # a restarted matcher keeps the site's model
    publisher.publish(dataclasses.replace(tracklet(keys.site, "cam1", 3, 20.0, faces[1]), model_id="m2"))
    Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m").start().run(idle_exit=0.3)
    assert redis_client.xlen(keys.dead) == 2


def test_a_site_pruned_empty_takes_a_new_model(redis_client, bus_keys):
    keys, faces = bus_keys, people(1)
    publisher = Publisher(redis_client, keys)
    publisher.publish(tracklet(keys.site, "cam0", 1, 0.0, faces[0]))
    Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m").start().run(idle_exit=0.3)
    store.prune(redis_client, keys, older_than=0, policy=MatchPolicy())
    publisher.publish(dataclasses.replace(tracklet(keys.site, "cam0", 2, 10.0, faces[0]), model_id="m2"))
    Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m").start().run(idle_exit=0.3)
    assert redis_client.xlen(keys.dead) == 0 and len(store.persons(redis_client, keys)) == 1
