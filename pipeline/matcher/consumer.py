"""The matcher: links every tracklet on a site's stream to a global identity (docs/pipeline.md, "Matcher").

``Matcher`` feeds the ``Linker`` (``pipeline.matcher.linker``: the rules over an in-memory gallery) from
the site's tracklet stream in a Redis consumer group, and writes the results with ``pipeline.store.writes``.

Guarantees:

- **Exactly one sighting per tracklet.** A batch's sightings, identity updates and, last, its ingest
  marks and the stream acknowledgements are written by one server-side script (``pipeline.bus.batch``;
  atomic, and one that fails part-way has marked and acknowledged nothing, so its records are read and
  written again), and a tracklet already marked ingested is acknowledged without being processed again
  (a record published twice changes nothing).
- **Crash recovery.** A restarted matcher first re-reads its own pending records, then claims records
  another consumer left pending for ``claim_idle`` seconds (``pipeline.matcher.reader``). The in-memory
  gallery is rebuilt from Redis at start, and again whenever ``unlink``/``prune`` bump the site's epoch.
- **One active matcher per site.** A lease (``pipeline.matcher.lease``) makes further matchers wait as
  standbys; they take over when the lease of a dead one runs out (``lease`` seconds).
- **Bad records** (malformed or undecodable, unknown schema version, a feature that is not unit length or
  not of the size of the site's identities) go to the dead-letter stream, are counted in
  ``P:S:stats`` and acknowledged; processing goes on.
- **The model's own threshold.** A threshold belongs to the model that made the features. Every worker
  announces its model when it starts (``pipeline.bus.site_models.announce_model``: ``HSET P:S:models <model id> <JSON summary>``,
  with the spec's calibrated ``link_threshold``), before it publishes a record; a record names its model by
  id. With ``model_threshold`` the matcher links at the threshold announced for the model of the records it
  reads (``pipeline.matcher.thresholds``), so a site config only sets ``matcher.threshold`` to override it.

Writes go behind (``pipeline.matcher.writer``): a batch is linked and its write built, then sent after the
next batch has been read. At most one batch waits and one is in flight. Both are
written, and waited for, whenever a read comes back short of a full batch (the stream caught up: an idle
matcher has written everything) and before a merge pass or a release. A reload (lost lease, epoch bump)
drops a batch not yet sent: its records are read again. A write that fails surfaces at the next wait:
the gallery is rebuilt from Redis and the records of both batches, unacknowledged, are read again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from pipeline import store
from pipeline.bus import records
from pipeline.bus.batch import Commands
from pipeline.bus.connect import Client, Pipeline, Replicated, replicated
from pipeline.bus.publisher import dead_letter
from pipeline.keys import GROUP, Keys, text
from pipeline.matcher.lease import Lease
from pipeline.matcher.linker import Linker
from pipeline.matcher.reader import Entry, GroupReader
from pipeline.matcher.rules import MatchPolicy
from pipeline.matcher.thresholds import ModelThreshold
from pipeline.matcher.writer import WriteBehind
from pipeline.types import TrackletEmbedding

log = logging.getLogger(__name__)


def consumer_name() -> str:
    """A consumer name for this process: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Matcher:
    """One site's matcher: reads ``keys.tracklets`` in the consumer group ``matcher``, links, writes, merges."""

    def __init__(
        self,
        client: Client,
        keys: Keys,
        policy: MatchPolicy,
        consumer: str | None = None,
        batch: int = 128,
        claim_idle: float = 30.0,
        merge_every: float = 10.0,
        ttl: float | None = None,
        lease: float = 10.0,
        model_threshold: bool = False,
        replicas: int = 0,
        replica_timeout: float = 1.0,
    ) -> None:
        """``model_threshold``: link at the threshold announced for the records' model (see the module's
        docstring), ``policy.threshold`` being the fallback; else always at ``policy.threshold``."""
        self.client, self.keys, self.policy = client, keys, policy
        self.replicas, self.replica_timeout = replicas, replica_timeout  # a write is done once replicated
        self.consumer = consumer or consumer_name()
        self.batch, self.merge_every, self.ttl = batch, merge_every, ttl
        self.reader = GroupReader(client, keys, self.consumer, batch, claim_idle)
        self.lease = Lease(client, keys, self.consumer, lease)
        self.writes = WriteBehind(f"matcher-{self.consumer}")
        self.thresholds = ModelThreshold(client, keys, policy, self.consumer) if model_threshold else None
        self.linker: Linker | None = None
        self.epoch: bytes | None = None  # the site's epoch the gallery was loaded at
        self.last_merge = time.monotonic()
        self.counts = {"processed": 0, "duplicates": 0, "dead_letters": 0, "new": 0, "linked": 0, "merged": 0}

    @property
    def active(self) -> MatchPolicy:
        """The rules in force: ``policy``, at the records' model's threshold when the matcher follows it."""
        return self.thresholds.active if self.thresholds else self.policy

    # --- set-up ---------------------------------------------------------------------------------------
    def acquire(self, wait: bool = True) -> bool:
        """Hold the site's lease (one active matcher); with ``wait``, stand by until it is free."""
        return self.lease.acquire(wait)

    def release(self) -> None:
        """Write what is left behind and give the lease up."""
        self.flush(raise_errors=False)
        self.lease.release()

    def reload(self) -> None:
        """Rebuild the gallery from Redis (at start, and after an unlink or prune)."""
        self._discard()
        self.epoch = self.client.get(self.keys.epoch)
        self.linker = Linker(
            self.active,
            lambda n: store.next_identities(self.client, self.keys, n),
            store.load_gallery(self.client, self.keys),
            store.cannot_link(self.client, self.keys),
        )
        log.info("matcher %s: gallery of %d identities loaded", self.consumer, len(self.linker.gallery))

    def start(self, wait: bool = True) -> Matcher:
        self.reader.ensure_group()
        self.acquire(wait)
        self.reload()
        return self

    def backlog(self) -> int:
        """Records not yet delivered to the group plus those pending."""
        return self.reader.backlog()

    # --- the loop -------------------------------------------------------------------------------------
    def step(self, block_ms: int = 500) -> int:
        """Read and process one batch; returns how many records it handled. After a full batch its write
        may still be behind (sent by the next step; ``flush`` writes it now)."""
        held, epoch = self.lease.hold()
        if not held:
            log.warning("matcher %s lost its lease; standing by", self.consumer)
            self._discard()  # a batch not yet sent is not ours to write now
            self.acquire(wait=True)
            self.reload()
        elif epoch != self.epoch:
            self.reload()
        entries = self.reader.read(block_ms)
        if entries:
            self.process(entries)
        if len(entries) < self.batch:  # caught up: nothing left behind
            self.flush()
        if time.monotonic() - self.last_merge >= self.merge_every:
            self.merge()
        return len(entries)

    def _decode(self, ids: list[str], entries: list[Entry], dead: Pipeline) -> list[tuple[str, TrackletEmbedding]]:
        """The records that decode, as (stream id, tracklet); the others go to the dead-letter stream
        through ``dead`` (a transaction, written with the batch). ``ids``: the entries' ids as text."""
        good = []
        dim = self.linker.gallery.dim if self.linker is not None else None
        for sid, (_, fields) in zip(ids, entries, strict=True):
            try:
                t = records.decode(fields)
                if t.site != self.keys.site:
                    raise records.RecordError(f"record of site {t.site!r} on site {self.keys.site!r}'s stream")
                if dim is not None and t.feature.size != dim:
                    raise records.RecordError(
                        f"feature of {t.feature.size} values from model {t.model_id!r}; the site's identities hold "
                        f"{dim}-d features (one model per site: give another model its own site)"
                    )
                dim = t.feature.size
                good.append((sid, t))
            except Exception as e:  # no record, whatever its bytes, stops the consumer
                reason = (
                    str(e) if isinstance(e, records.RecordError) else f"undecodable record ({type(e).__name__}: {e})"
                )
                log.warning("tracklet record %s moved to %s: %s", sid, self.keys.dead, reason)
                dead_letter(dead, self.keys, sid, fields, reason)
                self.counts["dead_letters"] += 1
        return good

    def _fresh(self, good: list[tuple[str, TrackletEmbedding]]) -> list[tuple[str, TrackletEmbedding]]:
        """``good`` without the tracklets already stored, repeated in the batch, or linked and not yet written."""
        seen = store.processed(self.client, self.keys, [t.tracklet_id for _, t in good])
        unwritten = self.writes.unwritten()
        fresh, ids = [], set()
        for (sid, t), done in zip(good, seen, strict=True):
            tid = t.tracklet_id
            if done or tid in ids or tid in unwritten:
                self.counts["duplicates"] += 1
                continue
            ids.add(tid)
            fresh.append((sid, t))
        return fresh

    def process(self, entries: list[Entry]) -> None:
        """Link a batch of stream entries and queue its write (sent by the next batch or ``flush``)."""
        pipe = self.client.pipeline(transaction=True)
        ids = [text(e[0]) for e in entries]
        fresh = self._fresh(self._decode(ids, entries, pipe))
        tracklets = [t for _, t in fresh]
        self._recovering(self.writes.send)  # the batch linked before goes to Redis now; this one is linked meanwhile
        if self.thresholds is not None:
            self.linker.policy = self.thresholds.follow(tracklets)
        try:
            linked = self.linker.link(tracklets)
            w = Commands()
            store.write_links(w, self.keys, linked, [sid for sid, _ in fresh], self.linker.gallery, self.ttl)
            w.call("HINCRBY", self.keys.stats, "matched", len(fresh))
            w.xack(self.keys.tracklets, GROUP, ids)  # last: a failed script acks nothing
            w.queue(pipe, [self.keys.lease])
        except Exception:
            self.reader.reread()  # this batch's records are read again
            self.reload()  # the gallery may hold what Redis did not take
            raise
        self.writes.queue(self._replicated(pipe), {t.tracklet_id for t in tracklets})
        self.counts["processed"] += len(fresh)
        self.counts["new"] += sum(r.new for r in linked)
        self.counts["linked"] += sum(not r.new for r in linked)

    # --- writes behind ----------------------------------------------------------------------------------
    def _replicated(self, pipe: Pipeline) -> Pipeline | Replicated:
        """``pipe``, done once ``replicas`` replicas hold it: until then its records stay pending, so a write
        a failover loses is read and written again (``pipeline.bus.connect.wait_replicas``)."""
        return replicated(pipe, self.client, self.keys.stats, self.replicas, self.replica_timeout)

    def _recovering(self, write: Callable[[], None]) -> None:
        """Run ``write`` (a send or wait of ``writes``); if a batch's write failed, its records are read again
        and the gallery is rebuilt from Redis before the error is raised."""
        try:
            write()
        except Exception:
            self.reader.reread()
            self.reload()
            raise

    def _discard(self) -> None:
        """Before a reload: drop the batch not yet sent and wait for the one in flight (an error is logged);
        the records of either are read again."""
        dropped, error = self.writes.discard()
        if dropped or error is not None:
            self.reader.reread()
        if error is not None:
            log.error(
                "matcher %s: a batch's write failed; its records will be read again", self.consumer, exc_info=error
            )

    def flush(self, raise_errors: bool = True) -> None:
        """Write the batches left behind and wait for them. A failed write rebuilds the gallery (its records
        are read again) and is raised, or with ``raise_errors=False`` logged."""
        try:
            self._recovering(self.writes.flush)
        except Exception:
            if raise_errors:
                raise
            log.exception("matcher %s: a batch's write failed; its records will be read again", self.consumer)

    def merge(self) -> list[tuple[int, int, float]]:
        """The periodic merge pass (same constraints as linking), written in one transaction."""
        self.flush()
        self.last_merge = time.monotonic()
        merges = self.linker.merges()
        if merges:
            pipe, carried = self.client.pipeline(transaction=True), {}
            for source, into, score in merges:
                store.write_merge(pipe, self.client, self.keys, source, into, score, self.linker.gallery, carried)
            try:
                self._replicated(pipe).execute()
            except Exception:
                self.reload()
                raise
            self.counts["merged"] += len(merges)
        return merges

    def run(self, stop: Callable[[], bool] = lambda: False, idle_exit: float | None = None) -> dict:
        """Process until ``stop()``; with ``idle_exit``, also stop after that many seconds with nothing to do."""
        idle_since = time.monotonic()
        try:
            while not stop():
                if self.step(block_ms=200):
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    break
            self.merge()
        finally:
            self.release()
        return dict(self.counts)
