"""Moving a site's keys from the layout before hash tags (``P:S:...``) to ``P:{S}:...``."""

from __future__ import annotations

import uuid

import pytest

from pipeline.keys import Keys, text
from pipeline.store.migrate import migrate_keys
from pipeline.store.queries import persons
from tests.support.cli import redis_url, run_json


def legacy(keys: Keys, key: str) -> str:
    """``key`` (a key of ``keys``) as the layout before hash tags spelled it."""
    return keys.legacy_prefix + key[len(keys.pattern) - 1 :]


@pytest.fixture
def old_site(redis_client):
    """A site written in the old layout: a person with one sighting, a stream with a consumer group, a lease."""
    keys = Keys(f"lobby{uuid.uuid4().hex[:8]}")  # unique: a shared server is never flushed
    r = redis_client
    r.zadd(legacy(keys, keys.identities), {"1": 103.5})
    r.hset(
        legacy(keys, keys.identity(1)),
        mapping={"first_seen": 100, "last_seen": 103.5, "sightings": 1, "thumb": "c:1:0"},
    )
    r.zadd(legacy(keys, keys.sightings(1)), {"c:1:0": 100})
    r.hset(legacy(keys, keys.sighting("c:1:0")), mapping={"identity": 1, "camera": "c"})
    r.xadd(legacy(keys, keys.tracklets), {"v": "1"})
    r.xgroup_create(legacy(keys, keys.tracklets), "matcher", id="0")
    r.set(legacy(keys, keys.lease), "m-1", px=60_000)
    r.set(f"crosscam:{keys.site}x:next_identity", 9)  # another site whose name starts alike: not touched
    return keys


def test_migrate_keys_renames_every_key_of_the_site(redis_client, old_site):
    keys = old_site
    assert persons(redis_client, keys) == []  # nothing reads the old layout
    done = migrate_keys(redis_client, keys)
    assert done.renamed == 6 and done.conflicts == []
    assert [p.person for p in persons(redis_client, keys)] == [1]
    assert redis_client.xinfo_groups(keys.tracklets)[0]["name"] in (b"matcher", "matcher")  # the group moved along
    assert 0 < redis_client.pttl(keys.lease) <= 60_000  # and the time to live
    assert not list(redis_client.scan_iter(keys.legacy_prefix + "*"))
    assert redis_client.get(f"crosscam:{keys.site}x:next_identity") == b"9"
    assert migrate_keys(redis_client, keys).renamed == 0  # again: nothing left to do


def test_migrate_keys_overwrites_nothing(redis_client, old_site):
    keys = old_site
    redis_client.set(keys.lease, "new-matcher")  # a new-layout key exists already
    done = migrate_keys(redis_client, keys)
    assert done.conflicts == [legacy(keys, keys.lease)] and done.renamed == 5
    assert text(redis_client.get(keys.lease)) == "new-matcher"
    assert text(redis_client.get(legacy(keys, keys.lease))) == "m-1"


def test_crosscam_migrate_keys(redis_client, old_site, capsys):
    code, out, _ = run_json(capsys, "migrate-keys", "--site", old_site.site, "--redis-url", redis_url(redis_client))
    assert code == 0 and out == {"site": old_site.site, "renamed": 6, "conflicts": []}
    assert redis_client.exists(old_site.identity(1))
