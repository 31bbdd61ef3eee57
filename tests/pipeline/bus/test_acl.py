"""The Redis ACL lines of docs/security.md, run as written against a real redis-server: with its role's user,
a worker announces its model and publishes real tracklets, the matcher links them (and unlink and prune run),
the API answers its routes, and what a role must not write is refused. The lines are read from the page, so the
page and the code cannot drift apart."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from models.spec import ArchSpec, InputSpec, ModelSpec
from pipeline import store
from pipeline.bus.connect import connect
from pipeline.bus.publisher import Publisher, last_track, write_watermarks
from pipeline.bus.site_models import announce_model
from pipeline.keys import Keys
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.serve.api import create_app
from tests.support.records import make_embedding
from tests.support.redis_process import redis_process

SECURITY = Path(__file__).parents[3] / "docs" / "security.md"
ROLES = ("crosscam-worker", "crosscam-api", "crosscam-matcher")
KEYS = Keys("s")  # the page's site ``s`` under the default prefix


def documented_acl() -> dict[str, list[str]]:
    """Each ``ACL SETUSER`` line of the page as arguments, by user name."""
    lines = re.findall(r"^\s*(ACL SETUSER .+)$", SECURITY.read_text(), re.MULTILINE)
    return {args[2]: args for args in map(shlex.split, lines)}


@pytest.fixture
def site(tmp_path):
    """A private redis-server (users are server-wide) with the page's users, passwords filled in; yields a
    function giving a connected client for a role."""
    with redis_process(tmp_path / "redis") as server:
        admin = server.client()
        for user, args in documented_acl().items():
            admin.execute_command(*[f">pw-{user}" if a == ">PASSWORD" else a for a in args])
        admin.config_set("requirepass", "admin-pw")  # the default user is the administrator: no one else
        clients = []

        def role(user: str) -> redis.Redis:
            clients.append(connect(f"redis://{user}:pw-{user}@127.0.0.1:{server.port}/0"))
            return clients[-1]

        yield role
        for c in clients:
            c.close()
        admin.close()


def test_the_page_documents_one_user_per_role():
    assert sorted(documented_acl()) == sorted(ROLES)


def _people(n: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(3).normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_each_role_does_its_work_with_the_documented_acl_and_nothing_more(site):
    worker, matcher_client, api = site("crosscam-worker"), site("crosscam-matcher"), site("crosscam-api")

    # a worker: announce the model, number tracks on, publish, report status and watermarks
    spec = ModelSpec(ArchSpec("frame", "imported", "mean", feature_dim=16), InputSpec(), "m1", {}, link_threshold=0.7)
    announce_model(worker, KEYS, spec)
    publisher = Publisher(worker, KEYS)
    first = last_track(worker, KEYS, "cam0")
    faces = _people(2)
    for i, (camera, person) in enumerate([("cam0", 0), ("cam1", 0), ("cam0", 1), ("cam1", 1)]):
        publisher.publish(
            make_embedding(
                site=KEYS.site,
                camera_id=camera,
                track_id=first + 1 + i,
                seq=0,
                t_start=10.0 * i,
                t_end=10.0 * i + 2,
                feature=faces[person],
                model_id="m1",
            )
        )
        publisher.camera_status(camera, "streaming", fps=5.0)
    write_watermarks(worker, KEYS, {"cam0": 100.0, "cam1": 100.0})
    publisher.count("backlog_dropped", 0)
    assert worker.execute_command("WAIT", 0, 1) == 0  # redis.replicas: a record counts once replicas hold it
    assert publisher.counts["refused"] == 0 and last_track(worker, KEYS, "cam0") == first + 3

    # the matcher: links at the announced threshold, merges, trims under a TTL; unlink and prune
    matcher = Matcher(matcher_client, KEYS, MatchPolicy(), consumer="m", model_threshold=True, ttl=3600.0)
    counts = matcher.start().run(idle_exit=0.3)
    assert counts["processed"] == 4 and counts["dead_letters"] == 0 and counts["linked"] == 2
    matcher.housekeeping()
    people = store.persons(matcher_client, KEYS)
    assert sorted(p.sightings for p in people) == [2, 2]
    unlinked = store.unlink(matcher_client, KEYS, "cam1:2:0", MatchPolicy())
    assert unlinked.person != unlinked.from_
    assert store.prune(matcher_client, KEYS, older_than=3600.0, policy=MatchPolicy()).sightings_removed == 0

    # the API: every route that reads the store (search reads the gallery: loaded here)
    http = TestClient(create_app(api, KEYS, "api-key"))
    person = store.persons(api, KEYS)[0].person
    for route in (
        "/api/cameras",
        "/api/persons?all=true",
        f"/api/persons/{person}",
        "/api/sightings/cam0:1:0",
        "/api/sightings/cam0:1:0/thumbnail",
    ):
        assert http.get(route, headers={"X-API-Key": "api-key"}).status_code == 200, route
    assert len(store.load_gallery(api, KEYS)) == 3

    # and nothing more: the API writes nothing; a worker touches no identity, no other key and not the group
    refused = [
        lambda: api.hset(KEYS.stats, "published", 0),
        lambda: api.xadd(KEYS.tracklets, {"v": "1"}),
        lambda: api.delete(KEYS.identity(person)),
        lambda: worker.hset(KEYS.identity(person), "exemplars", b""),
        lambda: worker.set(KEYS.epoch, 1),
        lambda: worker.hset(KEYS.calibration, "m1", '{"threshold": 0.1}'),
        lambda: worker.xgroup_destroy(KEYS.tracklets, "matcher"),
        lambda: worker.delete(KEYS.stats),
        lambda: worker.xrange(KEYS.decisions),
        lambda: matcher_client.flushall(),
        lambda: matcher_client.hset("crosscam:{other}:stats", "x", 1),
    ]
    for i, write in enumerate(refused):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()
            pytest.fail(f"refused[{i}] was allowed")
