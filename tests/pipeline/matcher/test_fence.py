"""The lease and the epoch fence every write of the matcher: a matcher that lost its lease, or whose gallery
predates an ``unlink``/``prune``, writes nothing; ``unlink``/``prune`` beside a live matcher leave every
person's counters and summary right; a pair a user split stays apart through unlinks and merges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest

from pipeline import store
from pipeline.bus.batch import Commands, Fence, Fenced
from pipeline.bus.publisher import Publisher
from pipeline.keys import text
from pipeline.matcher.consumer import GROUP, Matcher, consumer_name
from pipeline.matcher.gallery import Gallery
from pipeline.matcher.linker import Linker
from pipeline.matcher.rules import MatchPolicy, Sighting
from tests.pipeline.matcher.test_consumer import people, tracklet
from tests.support.cli import redis_url
from tests.support.waiting import wait_for


def link_decisions(client, keys) -> Counter:
    """How many link decisions (new or link) the audit log holds per sighting."""
    return Counter(
        text(f[b"sighting"])
        for _, f in client.xrange(keys.decisions)
        if b"sighting" in f and f[b"decision"] != b"unlink"
    )


def check_store(client, keys, published: list[str] | None = None) -> None:
    """The store is coherent: each (published) tracklet has one sighting and one link decision, each sighting
    is in exactly its person's index, and each person's count, first sighting and recent history are its
    sightings'."""
    sightings = {}
    for n in (int(x) for x in client.zrange(keys.identities, 0, -1)):
        members = [text(x) for x in client.zrange(keys.sightings(n), 0, -1)]
        h = client.hgetall(keys.identity(n))
        assert h, f"person {n} is listed without its hash"
        assert int(h[b"sightings"]) == len(members), f"person {n}: count {h[b'sightings']} for {len(members)}"
        rows = [client.hmget(keys.sighting(s), "identity", "camera", "track", "t_start") for s in members]
        assert all(r[0] is not None and int(r[0]) == n for r in rows), f"person {n} lists another's sighting"
        assert float(h[b"first_seen"]) == min(float(r[3]) for r in rows), f"person {n}: stale first_seen"
        tracks = {(text(r[1]), int(r[2])) for r in rows}
        recent = {(c, k) for c, k, _a, _b in json.loads(h[b"recent"])}
        assert recent <= tracks, f"person {n}: recent history {recent - tracks} of sightings it no longer has"
        for s in members:
            assert s not in sightings, f"sighting {s} in persons {sightings[s]} and {n}"
            sightings[s] = n
    if published is not None:
        assert sorted(sightings) == sorted(published)
        assert sorted(text(x) for x in client.zrange(keys.ingested, 0, -1)) == sorted(published)
        decided = link_decisions(client, keys)
        assert sorted(decided) == sorted(published) and set(decided.values()) == {1}, "a tracklet decided twice"
        assert client.xpending(keys.tracklets, GROUP)["pending"] == 0


def test_the_batch_script_runs_nothing_unless_the_lease_and_the_epoch_are_the_writers(redis_client, bus_keys):
    keys = bus_keys
    w = Commands()
    w.call("SET", "crosscam-test-fenced", "1")
    redis_client.set(keys.lease, "a/123")
    for fence in [Fence.of(keys, "b/456", None), Fence.of(keys, "a/123", b"1"), Fence.of(keys, "", None)]:
        with pytest.raises(Fenced, match="batch refused"):
            w.run(redis_client, fence)
    assert not redis_client.exists("crosscam-test-fenced")
    assert w.run(redis_client, Fence.of(keys, "a/123", None)) == 1
    redis_client.delete(keys.lease, "crosscam-test-fenced")
    redis_client.incr(keys.epoch)
    assert w.run(redis_client, Fence.of(keys, "", b"1")) == 1  # no matcher: a tool's write at the epoch it read
    redis_client.delete("crosscam-test-fenced")


def stalled_matcher(client, keys) -> tuple[Matcher, list[str]]:
    """Twelve tracklets published; matcher A (lease 0.3 s) linked the first batch of four, whose write is
    behind, and stalled until its lease ran out and its records idled past ``claim_idle``. Returns A and the
    published tracklet ids."""
    publisher = Publisher(client, keys)
    faces = people(4)
    published = []
    for i in range(12):
        t = tracklet(keys.site, f"cam{i % 3}", i, 10.0 * i, faces[i % 4])
        publisher.publish(t)
        published.append(t.tracklet_id)
    a = Matcher(
        client, keys, MatchPolicy(threshold=0.7), consumer="a", batch=4, lease=0.3, claim_idle=0.2, merge_every=1e9
    )
    a.start(wait=False)
    assert a.step(block_ms=10) == 4 and client.zcard(keys.ingested) == 0  # linked, its write behind
    time.sleep(0.5)  # A stalls: its lease runs out and its records idle past claim_idle
    return a, published


def test_a_matcher_whose_lease_was_taken_writes_nothing_of_its_linked_batch(redis_client, bus_keys):
    """A linked the first batch (its write behind) and then stalled past its lease; B took over, claimed the
    records and stored them. A's write is refused: every tracklet is decided once, counts stay right, and
    A stands by instead of exiting; it takes over when B gives the lease up."""
    keys = bus_keys
    a, published = stalled_matcher(redis_client, keys)
    b = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="b", batch=4, lease=30, claim_idle=0.2)
    assert b.start(wait=False).acquire(wait=False)
    while b.step(block_ms=10):  # claims A's four records and reads the rest
        pass
    a.flush()  # A wakes up: its batch is refused, and it does not raise
    check_store(redis_client, keys, published)
    assert a.stale and a.counts["processed"] == 0
    assert len(store.persons(redis_client, keys)) == 4
    assert not a.lease.acquire(wait=False)
    b.lease.release()
    assert a.step(block_ms=10) == 0 and not a.stale  # took the lease, reloaded: nothing left to do
    assert len(a.linker.gallery) == 4
    check_store(redis_client, keys, published)


def test_a_matcher_that_takes_its_lapsed_lease_again_links_its_batch_again(redis_client, bus_keys):
    """A linked a batch (its write behind) and stalled past its lease; B took over, stored everything and
    gave the lease up. A takes the free lease again, in a new tenure: the batch it linked in the old one is
    refused, and nothing is stored twice."""
    keys = bus_keys
    a, published = stalled_matcher(redis_client, keys)
    b = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="b", batch=4, lease=30, claim_idle=0.2)
    b.start(wait=False).run(idle_exit=0.3)  # stores everything, then gives the lease up
    while a.step(block_ms=10):
        pass
    a.flush()
    check_store(redis_client, keys, published)
    assert len(store.persons(redis_client, keys)) == 4


def test_a_starting_matcher_forgets_the_consumers_that_ended(redis_client, bus_keys):
    """Consumers with nothing pending, idle past ``claim_idle``, are deleted at start (each start under a
    new default name adds one); one with records pending is kept until they are claimed."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    t = tracklet(keys.site, "cam0", 1, 0.0, people(1)[0])
    publisher.publish(t)
    redis_client.xgroup_create(keys.tracklets, GROUP, id="$")
    redis_client.xreadgroup(GROUP, "ended", {keys.tracklets: ">"})  # nothing new: no records pending
    publisher.publish(tracklet(keys.site, "cam0", 2, 10.0, people(1)[0]))
    redis_client.xreadgroup(GROUP, "pending", {keys.tracklets: ">"})
    time.sleep(0.2)
    m = Matcher(redis_client, keys, MatchPolicy(), consumer="m", claim_idle=0.1).start()
    names = {text(c["name"]) for c in redis_client.xinfo_consumers(keys.tracklets, GROUP)}
    assert "ended" not in names and "pending" in names
    m.run(idle_exit=0.2)  # claims the pending record
    time.sleep(0.2)
    assert m.forget_ended() == ["pending"]


def test_the_same_consumer_name_twice_gets_two_lease_tokens():
    assert consumer_name() != consumer_name()  # unique per process, and per call


def _matcher_argv(client, keys, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline",
        "matcher",
        "--redis-url",
        redis_url(client),
        "--site",
        keys.site,
        "--set",
        f"redis.prefix={keys.prefix}",
        "--set",
        "matcher.lease=1",
        "--set",
        "matcher.claim_idle=1",
        "--set",
        "matcher.threshold=0.7",
        "--json",
        *extra,
    ]


ENV = os.environ | {"PYTHONPATH": os.getcwd()}


def _blocked_readers(client) -> int:
    return sum(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in client.client_list())


@pytest.mark.slow
def test_two_matchers_under_one_consumer_name_are_one_active_one_standby(redis_client, bus_keys):
    keys = bus_keys
    argv = _matcher_argv(redis_client, keys, "--consumer", "same", "--idle-exit", "5")
    connected = len(redis_client.client_list())
    procs = [subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    # both are up once each has a connection: one reading, the other standing by
    assert wait_for(lambda: len(redis_client.client_list()) >= connected + 2, 60), "the matchers did not start"
    publisher = Publisher(redis_client, keys)
    faces = people(6)
    published = []
    for i in range(60):
        t = tracklet(keys.site, f"cam{i % 3}", i, 10.0 * i, faces[i % 6])
        publisher.publish(t)
        published.append(t.tracklet_id)
        time.sleep(0.02)  # a live trickle: each reader gets some
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    processed = sorted(json.loads(out.strip().splitlines()[-1])["processed"] for out, _ in outs)
    assert processed == [0, 60]
    check_store(redis_client, keys, published)
    assert len(store.persons(redis_client, keys)) == 6


def _holder(client, keys) -> str:
    """The consumer name of the matcher that holds the lease ('' when none)."""
    return text(client.get(keys.lease)).split("/")[0]


@pytest.mark.slow
def test_matchers_stopped_past_their_lease_write_nothing_when_they_resume(redis_client, bus_keys):
    """Two matchers on a long backlog; the active one is stopped (SIGSTOP) in the middle of its batches, the
    standby takes over, claims its records and stores them; the stopped one is resumed (SIGCONT), holding
    batches it linked before the stop. Three times. Its writes are refused and it stands by: every tracklet
    ends in exactly one sighting, with one decision, and every person's count is right."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    faces = people(40, dim=64, seed=3)
    rng = np.random.default_rng(2)
    published = []
    for i in range(8000):
        t = tracklet(keys.site, f"cam{i % 4}", i, 2.0 * i, faces[i % 40], rng=rng)
        publisher.publish(t)
        published.append(t.tracklet_id)
    extra = ["--set", "matcher.batch=16", "--set", "matcher.merge_every=0.2", "--idle-exit", "3"]
    procs = {
        name: subprocess.Popen(
            _matcher_argv(redis_client, keys, "--consumer", name, *extra),
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    }
    ingested = lambda: redis_client.zcard(keys.ingested)  # noqa: E731
    episodes = 0
    try:
        for _ in range(3):
            start = ingested()
            if not wait_for(lambda start=start: ingested() >= start + 300 and _holder(redis_client, keys), 60):
                break  # the backlog is done
            stopped = _holder(redis_client, keys)
            procs[stopped].send_signal(signal.SIGSTOP)  # most likely with a batch linked and not yet written
            at_stop = ingested()
            other = "second" if stopped == "first" else "first"
            # the standby waits out the lease, claims the stopped one's records and stores them
            took_over = wait_for(
                lambda stopped=stopped, at_stop=at_stop: (
                    ingested() > at_stop + 50
                    and not redis_client.xpending_range(keys.tracklets, GROUP, "-", "+", 1, stopped)
                ),
                60,
            )
            procs[stopped].send_signal(signal.SIGCONT)
            if not took_over:
                break
            assert _holder(redis_client, keys) == other
            episodes += 1
        outs = {name: p.communicate(timeout=300) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs.values()), [err[-2000:] for _, err in outs.values()]
    assert episodes >= 2, f"{episodes} stops mid-stream"
    check_store(redis_client, keys, published)
    total = sum(json.loads(out.strip().splitlines()[-1])["processed"] for out, _ in outs.values())
    assert total == len(published)  # counted once, by the matcher whose write went through
    assert any("batch refused" in err for _, err in outs.values())


def _three_views(site: str):
    """One person seen on three cameras in turn."""
    face = people(1, seed=11)[0]
    return [tracklet(site, f"cam{c}", c + 1, 10.0 * c, face) for c in range(3)]


def test_a_batch_linked_before_an_unlink_is_refused_and_linked_again(redis_client, bus_keys):
    """An unlink while the matcher holds a linked batch: the batch was linked on the gallery as it was before
    (the unlinked sighting in its person), so writing it would put the sighting back into the person's
    summary. It is refused, and linked again after a reload (where the two look-alike persons make the
    new views ambiguous: each opens a person)."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    views = _three_views(keys.site)
    for t in views:
        publisher.publish(t)
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m", batch=2, merge_every=1e9).start()
    matcher.run(idle_exit=0.2)
    assert [p.sightings for p in store.persons(redis_client, keys)] == [3]
    later = [tracklet(keys.site, "cam0", 50 + k, 100.0 + 10 * k, people(1, seed=11)[0]) for k in range(2)]
    for t in later:
        publisher.publish(t)
    matcher.start()
    assert matcher.step(block_ms=10) == 2  # linked into person 1, its write behind
    r = store.unlink(redis_client, keys, views[2].tracklet_id, MatchPolicy())
    assert (r.from_, r.person) == (1, 2)
    matcher.flush()  # refused: no error
    while matcher.step(block_ms=10):
        pass
    check_store(redis_client, keys, [t.tracklet_id for t in views + later])
    assert store.sighting(redis_client, keys, views[2].tracklet_id).identity == 2
    held = [s.sighting for s in store.history(redis_client, keys, 1).sightings]
    assert views[0].tracklet_id in held and views[1].tracklet_id in held and views[2].tracklet_id not in held


def test_a_batch_linked_before_a_prune_leaves_no_pruned_sighting_behind(redis_client, bus_keys):
    """A prune while the matcher holds a linked batch of a person's new sighting: the batch's summary of the
    person (made from the gallery before the prune) would bring the pruned sightings back into the person's
    recent history and exemplars. It is refused and linked again on the pruned gallery."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    views = _three_views(keys.site)
    for t in views:
        publisher.publish(t)
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m", batch=1, merge_every=1e9).start()
    matcher.run(idle_exit=0.2)
    cutoff = time.time()  # the three sightings are older; the late record (kept by the stream's trim) is not
    time.sleep(0.01)
    late = tracklet(keys.site, "cam0", 77, 100.0, people(1, seed=11)[0])
    publisher.publish(late)
    matcher.start()
    assert matcher.step(block_ms=10) == 1  # a full batch: linked into person 1, its write behind
    r = store.prune(redis_client, keys, older_than=0, policy=MatchPolicy(), now=cutoff)
    assert (r.sightings_removed, r.persons_removed) == (3, 1)
    matcher.flush()
    while matcher.step(block_ms=10):
        pass
    check_store(redis_client, keys)
    (person,) = store.persons(redis_client, keys)
    assert person.sightings == 1 and person.person == 2  # a new person: the old one was pruned
    exemplars = np.frombuffer(redis_client.hget(keys.identity(2), "exemplars"), np.float16)
    assert exemplars.size == views[0].feature.size  # only the new sighting's feature
    assert link_decisions(redis_client, keys)[late.tracklet_id] == 1


def test_unlink_and_prune_beside_a_busy_matcher_keep_every_person_right(redis_client, bus_keys):
    """A matcher links a stream while unlink and prune run beside it, again and again: afterwards every
    person's count, first sighting and recent history are those of the sightings it holds."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    faces = people(6, seed=21)
    for i in range(400):
        publisher.publish(tracklet(keys.site, f"cam{i % 4}", i, 4.0 * i, faces[i % 6]))
    matcher = Matcher(redis_client, keys, MatchPolicy(threshold=0.7), consumer="m", batch=8, merge_every=0.2).start()
    done = threading.Event()
    thread = threading.Thread(target=lambda: matcher.run(stop=done.is_set, idle_exit=None))
    thread.start()
    try:
        changes = 0
        while redis_client.zcard(keys.ingested) < 40:
            time.sleep(0.01)
        while matcher.backlog() or changes < 12:  # at least a few changes, then until the stream is done
            sids = [text(x) for x in redis_client.zrange(keys.ingested, -5, -1)]
            for sid in sids[:2]:
                try:
                    store.unlink(redis_client, keys, sid, MatchPolicy())
                    changes += 1
                except store.NotFound:
                    pass  # pruned meanwhile
            at = redis_client.zrange(keys.ingested, -10, -10, withscores=True)
            if at:
                store.prune(redis_client, keys, older_than=0, policy=MatchPolicy(), now=at[0][1])
                changes += 1
    finally:
        done.set()
        thread.join(60)
    check_store(redis_client, keys)
    assert link_decisions(redis_client, keys).most_common(1)[0][1] == 1


def test_a_sighting_unlinked_twice_is_not_merged_back(redis_client, bus_keys):
    """Unlinking a sighting twice (1 -> 2, then 2 -> 3) keeps it apart from the person it was first taken
    from: a new view close to both does not make the merge pass join them again."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    views = _three_views(keys.site)
    for t in views:
        publisher.publish(t)
    policy = MatchPolicy(threshold=0.7, merge_threshold=0.7)
    matcher = Matcher(redis_client, keys, policy, consumer="m", merge_every=1e9).start()
    matcher.run(idle_exit=0.2)
    wrong = views[2].tracklet_id
    assert store.unlink(redis_client, keys, wrong, policy).person == 2
    assert store.unlink(redis_client, keys, wrong, policy).person == 3
    publisher.publish(tracklet(keys.site, "cam3", 9, 200.0, people(1, seed=11)[0]))  # close to 1 and to 3
    matcher.start()
    matcher.run(idle_exit=0.2)  # ends with a merge pass
    assert store.sighting(redis_client, keys, wrong).identity == 3
    assert store.sighting(redis_client, keys, views[0].tracklet_id).identity == 1
    assert {(1, 3), (2, 3), (1, 2)} <= store.cannot_link(redis_client, keys)
    check_store(redis_client, keys)


def _linker_of_three(cannot: set[tuple[int, int]]) -> Linker:
    g = Gallery()
    face = people(1, seed=4)[0]
    for n in (1, 2, 3):
        g.set(n, face[None, :], [Sighting(f"cam{n}", n, 10.0 * n, 10.0 * n + 3)])
    return Linker(MatchPolicy(merge_threshold=0.5), lambda k: [], g, cannot | {(b, a) for a, b in cannot})


def test_a_merged_identity_hands_its_cannot_link_pairs_on():
    """1 and 3 were split by a user; 3 merges into 2, so 2 may no longer join 1, in the same pass or later."""
    linker = _linker_of_three({(1, 3)})
    linker.candidates = {(2, 3): 0.95, (1, 2): 0.9}
    assert linker.merges() == [(3, 2, 0.95)]
    assert (1, 2) in linker.cannot_link and (2, 1) in linker.cannot_link
    linker.candidates = {(1, 2): 0.9}
    assert linker.merges() == []


def test_the_pairs_a_merge_hands_on_are_stored(redis_client, bus_keys):
    """The matcher's merge pass stores the pairs the merged identity handed on: a restarted matcher keeps
    the split pair apart too."""
    keys = bus_keys
    publisher = Publisher(redis_client, keys)
    faces = people(3, seed=4)
    for n in (1, 2, 3):
        publisher.publish(tracklet(keys.site, f"cam{n}", n, 10.0 * n, faces[n - 1]))
    policy = MatchPolicy(threshold=0.7, merge_threshold=0.5)
    matcher = Matcher(redis_client, keys, policy, consumer="m", merge_every=1e9).start()
    while matcher.step(block_ms=10):
        pass
    matcher.linker.candidates = {}  # the merges of this test come from the pairs set below
    assert [p.person for p in store.persons(redis_client, keys)] == [3, 2, 1]
    redis_client.sadd(keys.cannot_link, "1:3")  # as unlink stores a split pair
    redis_client.incr(keys.epoch)
    matcher.step(block_ms=10)  # reloads
    matcher.linker.candidates = {(2, 3): 0.95, (1, 2): 0.9}
    assert matcher.merge() == [(3, 2, 0.95)]
    assert (1, 2) in store.cannot_link(redis_client, keys)
    check_store(redis_client, keys)
    matcher.release()
    again = Matcher(redis_client, keys, policy, consumer="m2").start(wait=True)
    assert (1, 2) in again.linker.cannot_link
