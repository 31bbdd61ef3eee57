"""The matcher against a real Redis: linking, queries, duplicates, dead letters, undo, retention, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.matcher.consumer import GROUP, Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.types import TrackletEmbedding
from tests.support.cli import redis_url, run_json

THUMB = cv2.imencode(".jpg", np.full((16, 8, 3), 128, np.uint8))[1].tobytes()


def people(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def tracklet(site, camera, track, t0, feature, seq=0, noise=0.05, rng=None):
    f = feature + (rng or np.random.default_rng(track * 7 + seq)).normal(scale=noise, size=feature.shape)
    f = (f / np.linalg.norm(f)).astype(np.float32)
    return TrackletEmbedding(site, camera, track, seq, t0, t0 + 3.0, f, np.full(4, 0.25, np.float32), THUMB, "m1")


def walk(site: str, n_people: int = 5, cameras: int = 3) -> list[tuple[int, TrackletEmbedding]]:
    """Each person walks through every camera in turn, with transit; returns (true person, tracklet)."""
    faces = people(n_people)
    out = []
    for p in range(n_people):
        for c in range(cameras):
            t0 = 10.0 * p + 5.0 * c
            out.append((p, tracklet(site, f"cam{c}", 100 * c + p, t0, faces[p])))
    return sorted(out, key=lambda x: x[1].t_end)


@pytest.mark.parametrize("broken", ["timeline", "identity"])  # early in the batch's writes, and late
def test_a_batch_whose_write_fails_is_not_acknowledged(redis_client, bus_keys, broken):
    """A write that fails part-way (here a key of the wrong type) acknowledges nothing: the records stay
    pending, are not marked ingested, and a restarted matcher stores each exactly once."""
    import redis

    publisher = Publisher(redis_client, bus_keys)
    truth = walk(bus_keys.site, n_people=2)
    for _, t in truth:
        publisher.publish(t)
    keys = bus_keys
    bad = keys.timeline("cam1") if broken == "timeline" else keys.identity(1)  # the first new person
    redis_client.set(bad, "not a hash or sorted set")
    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="m", batch=len(truth)).start()
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        matcher.step(block_ms=10)
        matcher.flush()  # a full batch is written behind: its error surfaces at the next step or flush
    assert redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == len(truth)
    assert redis_client.zcard(keys.ingested) == 0
    matcher.release()
    redis_client.delete(bad)
    counts = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="m").start().run(idle_exit=0.3)
    assert counts["processed"] == len(truth) and redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0
    persons = [p.person for p in store.persons(redis_client, keys)]  # ids of the failed batch are not reused
    assert sorted(len(store.history(redis_client, keys, p).sightings) for p in persons) == [3, 3]


def test_links_queries_duplicates_and_dead_letters(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    truth = walk(bus_keys.site)
    for _, t in truth[:7]:
        publisher.publish(t)
    publisher.publish(truth[3][1])  # published twice: changes nothing
    redis_client.xadd(bus_keys.tracklets, {"v": b"9", "camera": b"x"})  # unknown schema version
    for _, t in truth[7:]:
        publisher.publish(t)
    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), batch=4).start()
    counts = matcher.run(idle_exit=0.3)
    assert counts["processed"] == len(truth) and counts["duplicates"] == 1 and counts["dead_letters"] == 1
    assert redis_client.xlen(bus_keys.dead) == 1 and int(redis_client.hget(bus_keys.stats, "dead_letters")) == 1
    assert redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0
    keys = bus_keys
    persons = store.persons(redis_client, keys)
    assert len(persons) == 5 and all(p.sightings == 3 for p in persons)
    by_truth = {}
    for p, t in truth:
        by_truth.setdefault(p, set()).add(store.sighting(redis_client, keys, t.tracklet_id).identity)
    assert all(len(v) == 1 for v in by_truth.values()) and len({next(iter(v)) for v in by_truth.values()}) == 5
    person = next(iter(by_truth[2]))
    h = store.history(redis_client, keys, person)
    assert h.cameras == ["cam0", "cam1", "cam2"] and [s.t_start for s in h.sightings] == [20.0, 25.0, 30.0]
    assert [p.person for p in store.persons(redis_client, keys, camera="cam1", since=30.0)] == [5, 4]
    e = store.explain(redis_client, keys, h.sightings[1].sighting)
    assert e.decision == "link" and e.score >= 0.7 and e.person == person and e.runner_up is not None
    assert store.thumbnail(redis_client, keys, e.sighting) == THUMB
    with pytest.raises(store.NotFound, match="no person 999"):
        store.history(redis_client, keys, 999)

    # a restarted matcher rebuilds its gallery from Redis and goes on linking
    again = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7)).start()
    assert len(again.linker.gallery) == 5
    faces = people(5)
    publisher.publish(tracklet(bus_keys.site, "cam0", 900, 100.0, faces[2]))
    again.run(idle_exit=0.3)
    assert store.sighting(redis_client, keys, "cam0:900:0").identity == person


def test_unlink_and_prune(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    for _, t in walk(bus_keys.site, n_people=2):
        publisher.publish(t)
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7)).start().run(idle_exit=0.3)
    keys = bus_keys
    first = store.history(redis_client, keys, 1)
    wrong = first.sightings[2].sighting
    r = store.unlink(redis_client, keys, wrong, MatchPolicy())
    assert r.from_ == 1 and r.person == 3
    assert [s.sighting for s in store.history(redis_client, keys, 3).sightings] == [wrong]
    assert len(store.history(redis_client, keys, 1).sightings) == 2
    assert store.explain(redis_client, keys, wrong).decision == "unlinked"
    assert (1, 3) in store.cannot_link(redis_client, keys)
    r = store.prune(redis_client, keys, older_than=3600, policy=MatchPolicy(), now=time.time() + 7200)
    assert r.model_dump() == {
        "sightings_removed": 6,
        "persons_removed": 3,
        "cutoff": pytest.approx(time.time() + 3600, abs=60),
        "trimmed": {"tracklets": 6, "decisions": 7, "dead_letters": 0},  # the streams forget too
    }
    assert store.persons(redis_client, keys) == []


def test_a_ttl_expires_sightings_and_persons_but_not_the_ingest_marks(redis_client, bus_keys):
    """``matcher.ttl``: every sighting, person and person's sighting index expires ``ttl`` seconds after its
    last write; the ingest index does not (a late duplicate stays a duplicate)."""
    publisher = Publisher(redis_client, bus_keys)
    truth = walk(bus_keys.site, n_people=2)
    for _, t in truth:
        publisher.publish(t)
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), ttl=3600).start().run(idle_exit=0.3)
    keys = bus_keys
    persons = [p.person for p in store.persons(redis_client, keys)]
    assert len(persons) == 2
    expiring = [keys.sighting(t.tracklet_id) for _, t in truth]
    expiring += [k for p in persons for k in (keys.identity(p), keys.sightings(p))]
    assert all(3500 < redis_client.ttl(k) <= 3600 for k in expiring)
    assert redis_client.ttl(keys.ingested) == -1  # no expiry


def test_cli_queries(capsys, redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    for _, t in walk(bus_keys.site, n_people=3):
        publisher.publish(t)
    url = redis_url(redis_client)
    common = ["--redis-url", url, "--site", bus_keys.site, "--set", f"redis.prefix={bus_keys.prefix}"]
    code, data, err = run_json(capsys, "matcher", "--idle-exit", "0.3", *common)
    assert code == 0, err
    assert data["processed"] == 9 and data["new"] == 3
    code, data, _ = run_json(capsys, "persons", "--camera", "cam2", *common)
    assert [p["person"] for p in data["persons"]] == [3, 2, 1]
    code, data, _ = run_json(capsys, "history", "2", *common)
    assert code == 0 and data["cameras"] == ["cam0", "cam1", "cam2"]
    code, data, _ = run_json(capsys, "explain", data["sightings"][0]["sighting"], *common)
    assert code == 0 and data["decision"] == "new" and data["person"] == 2
    code, data, _ = run_json(capsys, "history", "77", *common)
    assert code == 2 and "no person 77" in data["error"]
    code, data, _ = run_json(capsys, "prune", "--older-than", "soon", *common)
    assert code == 2 and "--older-than 'soon'" in data["error"]


@pytest.mark.slow
def test_matcher_killed_mid_stream_loses_and_repeats_nothing(tmp_path, redis_client, bus_keys):
    """Acceptance: SIGKILL the matcher mid-stream and restart it: every published tracklet ends in exactly
    one sighting, none lost, none duplicated."""
    publisher = Publisher(redis_client, bus_keys)
    faces = people(40, dim=64, seed=5)
    rng = np.random.default_rng(1)
    published = []
    for i in range(3000):
        t = tracklet(bus_keys.site, f"cam{i % 4}", i, float(i), faces[i % 40], rng=rng)
        publisher.publish(t)
        published.append(t.tracklet_id)
    argv = [
        sys.executable,
        "-m",
        "pipeline",
        "matcher",
        "--redis-url",
        redis_url(redis_client),
        "--site",
        bus_keys.site,
        "--set",
        f"redis.prefix={bus_keys.prefix}",
        "--set",
        "matcher.batch=16",
        "--set",
        "matcher.lease=1",
        "--set",
        "matcher.claim_idle=1",
        "--idle-exit",
        "1",
        "--json",
    ]
    env = os.environ | {"PYTHONPATH": str(os.getcwd())}
    keys = bus_keys
    first = subprocess.Popen([*argv, "--consumer", "first"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while redis_client.zcard(keys.ingested) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_at_kill = redis_client.zcard(keys.ingested)
    assert 0 < done_at_kill < len(published), "the matcher was not killed mid-stream"
    # a second matcher under another name: it waits out the dead one's lease, then claims its pending records
    second = subprocess.run([*argv, "--consumer", "second"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    sightings = redis_client.zrange(keys.ingested, 0, -1)
    assert sorted(s.decode() for s in sightings) == sorted(published)  # none lost, none twice (a set)
    total = sum(
        int(redis_client.hget(keys.identity(p.person), "sightings"))
        for p in store.persons(redis_client, keys, limit=10**6)
    )
    assert total == len(published)  # each counted in exactly one person
    assert redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0


def test_a_chain_of_merges_in_one_pass_keeps_every_sighting(redis_client, bus_keys):
    """Three views of one person open three identities; the merge pass joins 3 into 2, then 2 into 1, in one
    transaction: every sighting ends in person 1, none is lost with the intermediate identity."""
    publisher = Publisher(redis_client, bus_keys)
    face = people(1)[0]
    rng = np.random.default_rng(5)
    near = face + rng.normal(scale=0.25, size=face.shape)
    publisher.publish(tracklet(bus_keys.site, "cam0", 1, 0.0, face, noise=0.0))
    publisher.publish(tracklet(bus_keys.site, "cam1", 2, 10.0, near, noise=0.0))
    publisher.publish(tracklet(bus_keys.site, "cam2", 3, 20.0, near, noise=0.03))  # nearest to 2
    policy = MatchPolicy(threshold=0.9999, merge_threshold=0.5)
    matcher = Matcher(redis_client, bus_keys, policy, merge_every=1e9).start()
    matcher.run(idle_exit=0.3)
    keys = bus_keys
    assert [p.person for p in store.persons(redis_client, keys)] == [1]
    h = store.history(redis_client, keys, 1)
    assert [s.camera for s in h.sightings] == ["cam0", "cam1", "cam2"]
    assert store.persons(redis_client, keys)[0].sightings == 3
    assert all(store.sighting(redis_client, keys, f"cam{c}:{c + 1}:0").identity == 1 for c in range(3))
    merges = [(int(k), json.loads(v)["into"]) for k, v in redis_client.hgetall(keys.merges).items()]
    assert sorted(merges) == [(2, 1), (3, 2)]


def test_writes_behind_keep_every_tracklet_exactly_once(redis_client, bus_keys):
    """A full batch's write waits for the next read; a tracklet published again while its batch waits is a
    duplicate; a short read writes everything; a reload (epoch bump) drops a batch not yet sent, whose
    records are read again and stored once."""
    publisher = Publisher(redis_client, bus_keys)
    faces = people(3)
    first = [tracklet(bus_keys.site, "cam0", i, 10.0 * i, faces[i % 3]) for i in range(7)]
    for t in first[:4] + first[4:7] + [first[0]]:  # two full batches of 4, the second repeating the first's
        publisher.publish(t)
    keys = bus_keys
    matcher = Matcher(redis_client, bus_keys, MatchPolicy(), consumer="m", batch=4, merge_every=1e9).start()
    assert matcher.step(block_ms=10) == 4
    assert redis_client.zcard(keys.ingested) == 0  # linked, its write behind
    assert matcher.step(block_ms=10) == 4  # sends the first batch's write, links the second
    assert matcher.counts["duplicates"] == 0  # counted once its batch is written
    assert matcher.step(block_ms=10) == 0  # caught up: everything written
    assert redis_client.zcard(keys.ingested) == 7 and matcher.counts["processed"] == 7
    assert matcher.counts["duplicates"] == 1
    assert redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0

    later = [tracklet(bus_keys.site, "cam1", 100 + i, 100.0 + 10 * i, faces[i % 3]) for i in range(4)]
    for t in later:
        publisher.publish(t)
    assert matcher.step(block_ms=10) == 4  # waits, not sent
    redis_client.incr(keys.epoch)  # as unlink and prune do: the next step reloads, dropping it
    while matcher.step(block_ms=10):
        pass
    assert sorted(x.decode() for x in redis_client.zrange(keys.ingested, 0, -1)) == sorted(
        t.tracklet_id for t in first + later
    )
    total = sum(int(redis_client.hget(keys.identity(p.person), "sightings")) for p in store.persons(redis_client, keys))
    assert total == 11 and redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0


def test_one_matcher_holds_the_lease_and_sees_the_epoch(redis_client, bus_keys):
    """The lease is taken when free, renewed by its holder, refused to others until released or expired;
    the epoch (bumped by unlink and prune) is read with it."""
    a = Matcher(redis_client, bus_keys, MatchPolicy(), consumer="a", lease=0.3)
    b = Matcher(redis_client, bus_keys, MatchPolicy(), consumer="b", lease=0.3)
    assert a.acquire(wait=False) and not b.acquire(wait=False)
    assert a.acquire(wait=False)  # renewed
    a.release()
    assert b.acquire(wait=False) and not a.acquire(wait=False)
    time.sleep(0.5)  # b died without releasing: its lease runs out
    assert a.lease.hold() == (True, None)
    redis_client.incr(a.keys.epoch)
    assert a.lease.hold() == (True, b"1")


@pytest.mark.parametrize("exemplars", [1, 8])
def test_matcher_benchmark_links_every_re_view_to_its_person(redis_client, bus_keys, exemplars):
    """``crosscam bench matcher``'s measurement on a small gallery: every noisy re-view goes to its person,
    with one seeded exemplar per identity or the full eight."""
    from pipeline.config import load_config
    from pipeline.lab.bench_matcher import bench_matcher
    from pipeline.site import Site

    config = load_config(overrides=["matcher.threshold=0.6", f"redis.prefix={bus_keys.prefix}"])
    site = Site(config, redis_client, bus_keys.site)
    r = bench_matcher(site, 300, tracklets=256, dim=64, queries=20, exemplars=exemplars)
    assert r["link_correct"] == 1.0 and r["exemplars"] == exemplars and r["link_tracklets_per_s"] > 0
    keys = bus_keys
    person = store.history(redis_client, keys, 1)  # its seeded views, on as many cameras, and any re-view
    assert len(person.sightings) >= exemplars and len(person.cameras) >= exemplars
    assert redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0


def test_bench_matcher_cli_reports_the_machine_and_the_date(capsys, redis_client, bus_keys):
    """What a user records in docs/benchmarks.md comes with the figures: the date, the CPU, the Redis server."""
    url = redis_url(redis_client)
    argv = ["bench", "matcher", "--identities", "150,300", "--tracklets", "128", "--dim", "32", "--redis-url", url]
    code, data, err = run_json(capsys, *argv, "--set", f"redis.prefix={bus_keys.prefix}")
    assert code == 0, err
    assert data["benchmark"] == "matcher" and data["date"].startswith("20")
    assert data["machine"]["cores"] >= 1 and data["machine"]["redis"] == redis_client.info("server")["redis_version"]
    assert data["machine"]["redis_server"] == "given by URL"
    assert [r["identities"] for r in data["results"]] == [150, 300]
    assert all(r["link_correct"] == 1.0 and r["link_tracklets_per_s"] > 0 for r in data["results"])
    assert not redis_client.keys(f"{bus_keys.prefix}:bench-*")  # each size's keys are removed after it


def test_records_of_another_feature_size_or_undecodable_bytes_are_dead_lettered(redis_client, bus_keys):
    """A second model's record (another feature size) and a record whose field name is not UTF-8 go to the
    dead-letter stream with their reason; the matcher links the others and keeps running."""
    publisher = Publisher(redis_client, bus_keys)
    truth = walk(bus_keys.site, n_people=2)
    for _, t in truth[:2]:
        publisher.publish(t)
    other = people(1, dim=48, seed=9)[0]
    publisher.publish(tracklet(bus_keys.site, "cam9", 900, 50.0, other))
    redis_client.xadd(bus_keys.tracklets, {b"\xff\xfe": b"x", b"v": b"1"})
    for _, t in truth[2:]:
        publisher.publish(t)
    counts = (
        Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7), consumer="m", batch=3).start().run(idle_exit=0.3)
    )
    assert counts["processed"] == len(truth) and counts["dead_letters"] == 2
    reasons = sorted(f[b"reason"].decode() for _, f in redis_client.xrange(bus_keys.dead))
    assert "the site's identities hold 32-d features" in reasons[0]
    assert "missing field" in reasons[1]
    assert redis_client.xpending(bus_keys.tracklets, GROUP)["pending"] == 0
