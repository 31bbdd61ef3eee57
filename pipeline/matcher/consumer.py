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
  standbys; they take over when the lease of a dead one runs out (``lease`` seconds). The lease holds a
  token that is new each time a matcher takes it, so two matchers started under one consumer name are one
  active, one standby, and a matcher that takes its lapsed lease again starts a new tenure.
- **Fenced writes.** Every write (a batch, a merge pass, dead letters) runs in the fenced batch script
  (``pipeline.bus.batch``): it runs only while the lease holds this matcher's token of the tenure the write
  was made in and the site's epoch is the one its gallery was loaded at. A matcher paused past its lease (a stall, SIGSTOP) or whose gallery
  predates an ``unlink``/``prune`` writes nothing: it drops what it linked, reads its records again (they
  stay pending) and reloads, or stands by when another matcher took the lease. It never exits for it.
  Housekeeping that changes no identity is not fenced, and each is harmless to repeat: renewing the lease,
  the backlog figures in ``P:{S}:stats``, trimming the streams under ``ttl`` (skipped while a write was just
  refused) and forgetting ended consumers.
- **Bad records** (malformed or undecodable, unknown schema version, a feature that is not unit length or
  not of the size of the site's identities, a record of another model than the identities') go to the dead-letter stream, are counted in
  ``P:{S}:stats`` and acknowledged; processing goes on.
- **Trimmed records** (pending, trimmed from the stream before they were written) are counted as
  ``trimmed`` and acknowledged, never dead-lettered; a backlog near ``maxlen`` is warned of.
- **Redis outages** never end ``run``: it waits for Redis with a growing delay, then takes up from what
  Redis holds (``ride_out``).
- **Retention** (``ttl``): identities leave the gallery before their keys expire (``pipeline.matcher.expiry``).
- **The model's own threshold.** A threshold belongs to the model that made the features. Every worker
  announces its model when it starts (``pipeline.bus.site_models.announce_model``: ``HSET P:{S}:models <model id> <JSON summary>``,
  with the spec's calibrated ``link_threshold``), before it publishes a record; a record names its model by
  id. With ``model_threshold`` the matcher links at the threshold announced for the model of the records it
  reads (``pipeline.matcher.thresholds``), so a site config only sets ``matcher.threshold`` to override it.

- **The same input gives the same identities.** Tracklets are linked in stream order (when they closed), not in the
  order the cameras happened to deliver them: each waits in a reorder buffer until every camera's watermark has
  passed it (at most ``reorder_window`` seconds), and merge passes run every ``merge_every`` seconds of stream
  time (``pipeline.matcher.reorder``). Records held there stay pending, so a crash loses none of them.

Writes go behind (``pipeline.matcher.writer``): a batch is linked and its write built, then sent after the
next batch has been read. At most one batch waits and one is in flight. Both are
written, and waited for, whenever a read comes back short of a full batch (the stream caught up: an idle
matcher has written everything) and before a merge pass or a release. A reload (lost lease, epoch bump)
drops a batch not yet sent: its records are read again. A write that fails surfaces at the next wait:
the gallery is rebuilt from Redis and the records of both batches, unacknowledged, are read again.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable

import redis

from pipeline import store
from pipeline.bus import records
from pipeline.bus.backlog import TRANSIENT, Retry
from pipeline.bus.batch import Commands, Fence, Fenced, Recorder
from pipeline.bus.connect import Client, master_of, wait_replicas
from pipeline.bus.publisher import dead_letter, read_watermarks
from pipeline.bus.scripts import script
from pipeline.keys import GROUP, Keys, text
from pipeline.matcher.bad_values import BadValues
from pipeline.matcher.expiry import Expiry
from pipeline.matcher.lease import Lease
from pipeline.matcher.linker import Linker
from pipeline.matcher.reader import Entry, GroupReader, trimmed
from pipeline.matcher.reorder import Reorder, Watermarks, merge_period
from pipeline.matcher.rules import MatchPolicy
from pipeline.matcher.thresholds import ModelThreshold
from pipeline.matcher.writer import WriteBehind
from pipeline.store.retention import trim_site
from pipeline.types import TrackletEmbedding, closing_time

log = logging.getLogger(__name__)

# Redis unreachable, restarting or loading its data, out of memory, a read-only replica, a cluster failover:
# waited out, never a reason to exit (the same errors the camera processes wait out)
OUTAGE = TRANSIENT
OUTAGE_RETRY = Retry(initial=0.1, max_delay=5.0)  # the waits between looks for Redis during an outage
BACKLOG_WARNING = 0.5  # warn when the records waiting reach this fraction of the stream's length limit
BACKLOG_EVERY = 10.0  # seconds between looks at the backlog
HELD_BLOCK_MS = 50  # the longest a read waits for new records while tracklets wait for the watermark


def consumer_name() -> str:
    """A consumer name unique to this process: host, process id and a random suffix (a process id repeats
    across restarts of a container). The records a dead matcher left pending are claimed by the next
    one after ``claim_idle`` seconds; a matcher restarted under a fixed ``--consumer`` reads its own at once."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


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
        maxlen: int | None = None,
        give_up: float | None = None,
        replicas: int = 0,
        replica_timeout: float = 1.0,
        reorder_window: float = 10.0,
    ) -> None:
        """``model_threshold``: link at the threshold announced for the records' model (see the module's
        docstring), ``policy.threshold`` being the fallback; else always at ``policy.threshold``.
        ``maxlen``: the stream's length limit (``redis.maxlen``), to warn when the backlog nears it.
        ``give_up``: seconds of a Redis outage after which ``run`` raises (default: it waits for Redis).
        ``reorder_window``: the longest a tracklet waits for the cameras' watermarks (0: link in arrival order)."""
        self.client, self.keys, self.policy = client, keys, policy
        self.replicas, self.replica_timeout = replicas, replica_timeout  # a write is done once replicated
        self.consumer = consumer or consumer_name()
        self.batch, self.merge_every, self.ttl = batch, merge_every, ttl
        self.reader = GroupReader(client, keys, self.consumer, batch, claim_idle)
        self.lease = Lease(client, keys, self.consumer, lease)
        self.writes = WriteBehind(f"matcher-{self.consumer}")
        self.counts = {
            "processed": 0,
            "duplicates": 0,
            "dead_letters": 0,
            "trimmed": 0,
            "new": 0,
            "linked": 0,
            "merged": 0,
            "expired": 0,
            "outages": 0,
            "stream_trimmed": 0,
            "bad_values": 0,
        }
        self.bad = BadValues(self.consumer, self.counts)  # values of keys other roles write, ignored
        self.thresholds = ModelThreshold(client, keys, policy, self.consumer, bad=self.bad) if model_threshold else None
        self.linker: Linker | None = None
        self.epoch: bytes | None = None  # the site's epoch the gallery was loaded at
        self.model: str | None = None  # the model of the identities' features (``reload``)
        self.stale = False  # a write was fenced: the gallery may hold what Redis did not take; reload
        self.stopping: Callable[[], bool] = lambda: False  # asked to stop: a standby's wait ends (``run``'s stop)
        self.tenure = -1  # the lease's tenure the gallery was loaded in
        self.last_merge = time.monotonic()  # wall clock of the last housekeeping (retention trims)
        # a record held longer than claim_idle would be claimed as abandoned: the wait stays well below it
        window = min(reorder_window, claim_idle / 2)
        self.reorder = Reorder(window)
        self.watermarks = Watermarks(window)
        self.watermark = math.inf  # the site's watermark as last read (``pipeline.matcher.reorder``)
        self.period: float | None = None  # the merge period (stream time) linked up to
        self.maxlen, self.give_up = maxlen, give_up
        self.next_backlog = 0.0  # when to look at the backlog next (monotonic clock)
        self.backlog_warned = False
        # identities' deadlines, with a TTL: forgotten a little before their keys expire
        self.expiry = Expiry(margin=min(1.0, ttl / 10)) if ttl else None

    @property
    def fence(self) -> Fence:
        """What this matcher's writes need in Redis: its lease token, and the epoch its gallery was loaded at."""
        return Fence.of(self.keys, self.lease.token, self.epoch)

    @property
    def active(self) -> MatchPolicy:
        """The rules in force: ``policy``, at the records' model's threshold when the matcher follows it."""
        return self.thresholds.active if self.thresholds else self.policy

    # --- set-up ---------------------------------------------------------------------------------------
    def acquire(self, wait: bool = True) -> bool:
        """Hold the site's lease (one active matcher); with ``wait``, stand by until it is free or the matcher
        is asked to stop (``stopping``)."""
        return self.lease.acquire(wait, self.stopping)

    def release(self) -> None:
        """Write what is left behind and give the lease up."""
        self.flush(raise_errors=False)
        self.lease.release()

    def reload(self) -> None:
        """Rebuild the gallery from Redis (at start, and after an unlink or prune)."""
        self._discard()
        self.stale = False
        self.tenure = self.lease.tenure
        self.epoch, model = self.client.mget(self.keys.epoch, self.keys.model)
        with self.lease.kept():  # a large gallery may take longer to load than the lease lasts
            self.linker = Linker(
                self.active,
                lambda n: store.next_identities(self.client, self.keys, n),
                store.load_gallery(self.client, self.keys),
                store.cannot_link(self.client, self.keys),
            )
            if self.expiry is not None:
                self._load_deadlines()
        # the model the identities' features are of; none while there are none (a new site, or one pruned empty)
        self.model = text(model) if model is not None and len(self.linker.gallery) else None
        log.info("matcher %s: gallery of %d identities loaded", self.consumer, len(self.linker.gallery))

    def _load_deadlines(self) -> None:
        """Each loaded identity's deadline from its key's remaining TTL; one gone since is forgotten now."""
        self.expiry.clear()
        ids = list(self.linker.gallery.identities)
        pipe = self.client.pipeline(transaction=False)
        for n in ids:
            pipe.pttl(self.keys.identity(n))
        now, gone = time.monotonic(), []
        for n, ms in zip(ids, pipe.execute(), strict=True):
            if ms == -2:
                gone.append(n)
            elif ms >= 0:  # -1: written without a TTL, which the next write of it sets
                self.expiry.set([n], now + ms / 1000)
        self.linker.forget(gone)
        if gone:  # expired: their ids are never handed out again, so their index entries go (housekeeping)
            self.client.zrem(self.keys.identities, *map(str, gone))

    def _forget_expired(self) -> None:
        """Take identities whose keys expire (``ttl``) out of the gallery, so a person seen again after
        that is a new identity, written whole."""
        if self.expiry is None or self.linker is None:
            return
        due = self.expiry.due(time.monotonic())
        if due:
            self.linker.forget(due)
            self.counts["expired"] += len(due)
            log.info("matcher %s: %d identities expired (matcher.ttl)", self.consumer, len(due))

    def start(self, wait: bool = True, stop: Callable[[], bool] | None = None) -> Matcher:
        """Create the group, take the lease (with ``wait``, standing by until ``stop()``), load the gallery and
        forget ended consumers; a Redis outage meanwhile is ridden out (``ride_out``)."""
        if stop is not None:
            self.stopping = stop
        try:
            self.reader.ensure_group()
            if not self.acquire(wait) and self.stopping():
                return self  # stopped while standing by: nothing loaded, nothing to write
            self.reload()
            self.forget_ended()
        except OUTAGE as e:
            self.ride_out(e)
        return self

    def forget_ended(self) -> list[str]:
        """Delete the group's consumers that ended: nothing pending, idle for ``claim_idle`` seconds or more
        (each start under a new default name adds one; their records were claimed). Returns their names."""
        forget = self.client.register_script(script("forget"))
        gone = []
        for c in self.client.xinfo_consumers(self.keys.tracklets, GROUP):
            name = text(c["name"])
            ended = name != self.consumer and not c["pending"] and c["idle"] >= self.reader.claim_idle * 1000
            if ended and forget(keys=[self.keys.tracklets], args=[GROUP, name]):
                gone.append(name)
        if gone:
            log.info("matcher %s: forgot %d ended consumers", self.consumer, len(gone))
        return gone

    def backlog(self) -> int:
        """Records not yet delivered to the group plus those pending."""
        return self.reader.backlog()

    def check_backlog(self) -> str | None:
        """Warn (log, and ``backlog_warning`` in ``P:{S}:stats``) while the records waiting for the matcher reach
        ``BACKLOG_WARNING`` of the stream's length limit: the stream trims its oldest records, read or not,
        so more would be lost (counted as ``trimmed``). Returns the warning, or None."""
        self.next_backlog = time.monotonic() + BACKLOG_EVERY
        waiting = self.backlog()
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.stats, "backlog", waiting)
        warning = None
        if self.maxlen and waiting >= BACKLOG_WARNING * self.maxlen:
            warning = (
                f"{waiting} records wait for the matcher, {waiting / self.maxlen:.0%} of the stream's redis.maxlen "
                f"{self.maxlen}: the oldest are trimmed unread when it is reached; raise redis.maxlen (a few times "
                "the longest backlog expected) or give the matcher more throughput"
            )
            pipe.hset(self.keys.stats, "backlog_warning", warning)
            if not self.backlog_warned:
                log.warning("matcher %s: %s", self.consumer, warning)
        else:
            pipe.hdel(self.keys.stats, "backlog_warning")
            if self.backlog_warned:
                log.info("matcher %s: backlog down to %d records", self.consumer, waiting)
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, redis.ResponseError):  # workers write the stats key too: it may be of another type
                self.bad(f"{self.keys.stats}: not written ({reply})")
        self.backlog_warned = warning is not None
        return warning

    # --- the loop -------------------------------------------------------------------------------------
    def step(self, block_ms: int = 500) -> int:
        """Read and process one batch; returns how many records it handled. After a full batch its write
        may still be behind (sent by the next step; ``flush`` writes it now)."""
        held, epoch = self.lease.hold()
        if not held:
            log.warning("matcher %s lost its lease; standing by", self.consumer)
            self._discard()  # a batch not yet sent is not ours to write now
            if not self.acquire(wait=True):
                return 0  # asked to stop while standing by
            self.reload()
        elif epoch != self.epoch or self.stale or self.lease.tenure != self.tenure:
            self.reload()  # a lapsed lease taken again: what was linked before is refused, so link it again
        self._forget_expired()
        if self.maxlen and time.monotonic() >= self.next_backlog:
            self.check_backlog()
        if self.reader.rewinding():
            self.flush()  # the records of a batch behind are pending too: written first, not read again
        self.watermark = self._read_watermark()
        # while tracklets wait for the cameras' watermarks, look again soon: the next one may release them
        entries = self.reader.read(min(block_ms, HELD_BLOCK_MS) if len(self.reorder) else block_ms)
        if entries or len(self.reorder):
            self.process(entries)
        if len(entries) < self.batch:  # caught up: nothing left behind
            self.flush()
        if not self.stale and self._merge_due(self.watermark):  # the cameras are past a merge period
            self.merge()
            self.period = merge_period(self.watermark, self.merge_every)
        if not self.stale and time.monotonic() - self.last_merge >= self.merge_every:
            self.housekeeping()
        return len(entries)

    def _merge_due(self, t: float) -> bool:
        """Whether linking has reached stream time ``t`` in a later merge period than the last linked: a merge pass
        runs first (nothing before the first link; nothing for a watermark that is not a time)."""
        return self.period is not None and math.isfinite(t) and merge_period(t, self.merge_every) > self.period

    def _rewind(self) -> None:
        """Read this consumer's pending records again: those of batches not written, and those held for ordering
        (forgotten here, they come again)."""
        self.reader.reread()
        self.reorder.clear()

    def _read_watermark(self) -> float:
        """The site's watermark now (``pipeline.matcher.reorder``); read before the stream, so every record below it
        is among those read after."""
        if self.reorder.window <= 0:
            return math.inf
        return self.watermarks.update(read_watermarks(self.client, self.keys, self.bad), time.monotonic())

    def _decode(self, ids: list[str], entries: list[Entry], dead: Recorder) -> list[tuple[str, TrackletEmbedding]]:
        """The records that decode, as (stream id, tracklet); the others go to the dead-letter stream
        through ``dead`` (commands written, fenced, with the batch). ``ids``: the entries' ids as text."""
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
                if self.model is not None and t.model_id != self.model:
                    raise records.RecordError(
                        f"record of model {t.model_id!r}; the site's identities are of model {self.model!r}, whose "
                        "features another model's cannot be compared with (one model per site: give another model "
                        "its own site, or prune the site's persons before the new model takes over)"
                    )
                dim, self.model = t.feature.size, t.model_id
                good.append((sid, t))
            except Exception as e:  # no record, whatever its bytes, stops the consumer
                reason = (
                    str(e) if isinstance(e, records.RecordError) else f"undecodable record ({type(e).__name__}: {e})"
                )
                log.warning("tracklet record %s moved to %s: %s", sid, self.keys.dead, reason)
                dead_letter(dead, self.keys, sid, fields, reason)  # counted once the batch is written
        return good

    def _fresh(self, good: list[tuple[str, TrackletEmbedding]]) -> list[tuple[str, TrackletEmbedding]]:
        """``good`` without the tracklets already stored, repeated in the batch, linked and not yet written, or held
        for ordering."""
        seen = store.processed(self.client, self.keys, [t.tracklet_id for _, t in good])
        unwritten = self.writes.unwritten()
        fresh, ids = [], set()
        for (sid, t), done in zip(good, seen, strict=True):
            tid = t.tracklet_id
            if done or tid in ids or tid in unwritten or tid in self.reorder:
                continue  # a duplicate: counted with its batch, once written
            ids.add(tid)
            fresh.append((sid, t))
        return fresh

    def process(self, entries: list[Entry]) -> None:
        """Link a batch of stream entries and queue its write (sent by the next batch or ``flush``). When the
        write of the batch before is refused by its fence, this batch is not linked: its records are read
        again once the matcher has reloaded (or taken the lease back)."""
        w = Commands()
        ids = [text(e[0]) for e in entries]
        kept = [(sid, e) for sid, e in zip(ids, entries, strict=True) if not trimmed(e)]
        gone = len(entries) - len(kept)  # trimmed from the stream before they were processed: counted, acked
        if gone:
            log.warning(
                "matcher %s: %d pending records were trimmed from %s before they were processed (redis.maxlen)",
                self.consumer,
                gone,
                self.keys.tracklets,
            )
        good = self._decode([sid for sid, _ in kept], [e for _, e in kept], w.pipeline())
        fresh = self._fresh(good)
        now = time.monotonic()
        for sid, t in fresh:
            self.reorder.add(sid, t, now)
        held = {sid for sid, _ in fresh}
        done = [sid for sid in ids if sid not in held]  # dead letters, duplicates, trimmed: acknowledged now
        counts = {"dead_letters": len(kept) - len(good), "trimmed": gone, "duplicates": len(good) - len(fresh)}
        if gone:
            w.count(self.keys.stats, "trimmed", gone)
        released = self.reorder.release(self.watermark, now)
        # the batch linked before goes to Redis now; this one is linked meanwhile
        if not self._recovering(self.writes.send):
            return
        segments: list[list[tuple[str, TrackletEmbedding]]] = []
        for sid, t in released:  # cut where a merge period ends: a merge pass runs there
            period = merge_period(closing_time(t), self.merge_every)
            if not segments or period != merge_period(closing_time(segments[-1][-1][1]), self.merge_every):
                segments.append([])
            segments[-1].append((sid, t))
        if not segments:
            if done:
                w.xack(self.keys.tracklets, GROUP, done)
                self.writes.queue(self._write(w), set(), functools.partial(self._count, counts))
            return
        for k, segment in enumerate(segments):
            if self._merge_due(closing_time(segment[0][1])):
                self.merge()
                if self.stale:  # the merge's write was refused: every record is read again after a reload
                    return
            first = k == 0
            self._link(w if first else Commands(), segment, done if first else [], counts if first else {})
            self.period = merge_period(closing_time(segment[-1][1]), self.merge_every)

    def _link(
        self, w: Commands, segment: list[tuple[str, TrackletEmbedding]], done: list[str], counts: dict[str, int]
    ) -> None:
        """Link ``segment`` (in stream order) and queue its write with ``w`` (what else the read left to write),
        acknowledging its records and ``done``."""
        tracklets = [t for _, t in segment]
        if self.thresholds is not None:
            self.linker.policy = self.thresholds.follow(tracklets)
        built = time.monotonic()
        try:
            linked = self.linker.link(tracklets)
            store.write_links(w, self.keys, linked, [sid for sid, _ in segment], self.linker.gallery, self.ttl)
            w.count(self.keys.stats, "matched", len(segment))
            w.call("SET", self.keys.model, tracklets[-1].model_id)
            # last: a failed script acks nothing
            w.xack(self.keys.tracklets, GROUP, [sid for sid, _ in segment] + done)
        except Exception:
            self._rewind()  # this batch's records are read again
            self.reload()  # the gallery may hold what Redis did not take
            raise
        new = sum(r.new for r in linked)
        counts = counts | {"processed": len(segment), "new": new, "linked": len(linked) - new}
        if self.writes.queued:  # a segment of the same read went before: it goes first
            self.writes.send()
        self.writes.queue(
            self._write(w),
            {t.tracklet_id for t in tracklets},
            functools.partial(self._count, counts),  # once Redis took the batch
        )
        if self.expiry is not None and linked:  # keys expire ``ttl`` after the write, which is not sent yet
            self.expiry.set({r.identity for r in linked}, built + self.ttl)

    def _count(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.counts[k] += v

    # --- writes behind ----------------------------------------------------------------------------------
    def _write(self, w: Commands) -> Callable[[], int]:
        """Sending ``w`` behind this matcher's fence (as it is now); with ``replicas``, done once that many
        replicas hold it: until then its records stay pending, so a write a failover loses is read and written
        again (``pipeline.bus.connect.wait_replicas``)."""
        fence = self.fence

        def write() -> int:
            if self.replicas <= 0:
                n = w.run(self.client, fence)
            else:
                node = master_of(self.client, self.keys.stats)  # pinned before the write: a failover is noticed
                n = w.run(self.client, fence)
                # the write WAIT follows changes nothing, on a key only the matcher writes (not the stats: workers
                # write them too)
                noop = ("INCRBY", self.keys.next_identity, 0)
                wait_replicas(node, self.keys.stats, self.replicas, self.replica_timeout, write=noop)
            for field in w.bad_counters:
                self.bad(f"{self.keys.stats} {field!r}: not an integer counter; it starts again")
            return n

        return write

    def _recovering(self, write: Callable[[], None]) -> bool:
        """Run ``write`` (a send or wait of ``writes``). A batch refused by its fence is dropped (``_fenced``)
        and False returned; if a batch's write failed otherwise, its records are read again and the gallery is
        rebuilt from Redis before the error is raised."""
        try:
            write()
        except Fenced as e:
            self._fenced(e)
            return False
        except Exception:
            self._rewind()
            self.reload()
            raise
        return True

    def _fenced(self, error: Fenced) -> None:
        """A write was refused: the lease is another's, or the site's epoch moved on (``unlink``, ``prune``).
        Nothing of it was written; the batch waiting behind it is dropped too, their records (still pending)
        are read again, and the next step reloads the gallery, or stands by when the lease is another's."""
        log.warning("matcher %s: %s; its records will be read again after a reload", self.consumer, error)
        self.stale = True
        self._discard()
        self._rewind()

    def _discard(self) -> None:
        """Before a reload: drop the batch not yet sent and wait for the one in flight (an error is logged);
        the records of either are read again."""
        dropped, error = self.writes.discard()
        if dropped or error is not None:
            self._rewind()
        if isinstance(error, Fenced):
            log.warning("matcher %s: %s; its records will be read again", self.consumer, error)
        elif error is not None:
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

    def housekeeping(self) -> None:
        """Every ``merge_every`` seconds (wall clock): with retention, the streams forget what the identities
        forgot."""
        self.last_merge = time.monotonic()
        if self.ttl is not None and not self.stale:
            trimmed = trim_site(self.client, self.keys, time.time() - self.ttl)
            self.counts["stream_trimmed"] += sum(trimmed.values())

    def merge(self) -> list[tuple[int, int, float]]:
        """A merge pass (same constraints as linking), written as one fenced script call; returns the merges
        written (none when the fence refused them: the gallery is then reloaded). It runs when linking crosses
        into a new merge period of stream time, and at exit."""
        self.flush()
        if self.stale:  # a write was just refused: nothing to merge until the gallery is reloaded
            return []
        merges = self.linker.merges()
        if merges:
            w, carried = Commands(), {}
            for source, into, score in merges:
                store.write_merge(
                    w,
                    self.client,
                    self.keys,
                    source,
                    into,
                    score,
                    self.linker.gallery,
                    self.linker.cannot_link,
                    carried,
                )
            try:
                self._write(w)()
            except Fenced as e:
                self._fenced(e)
                return []
            except Exception:
                self.reload()
                raise
            if self.expiry is not None:
                self.expiry.discard(source for source, _, _ in merges)
            self.counts["merged"] += len(merges)
        return merges

    def ride_out(self, error: Exception, stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait for Redis after a connection error (logged once), retrying with a growing delay (0.1 s up to
        5 s), then carry on from what Redis holds: group, lease (standing by if another matcher took it
        meanwhile), epoch and gallery; the records of batches not known to be written are read again (a
        tracklet already stored is a duplicate). Raises ``error`` after ``give_up`` seconds, if set; returns
        False when ``stop()`` ends the wait first."""
        started = time.monotonic()
        self.counts["outages"] += 1
        log.warning("matcher %s: Redis unreachable (%s); waiting for it to come back", self.consumer, error)
        self.writes.discard()  # whether they reached Redis is unknown: their records are read again
        self._rewind()
        attempt = 0
        while not stop():
            if self.give_up is not None and time.monotonic() - started >= self.give_up:
                log.error("matcher %s: Redis unreachable for %.0f s; giving up", self.consumer, self.give_up)
                raise error
            time.sleep(OUTAGE_RETRY.delay(attempt))
            attempt += 1
            try:
                self.client.ping()
                self.reader.ensure_group()
                if not self.lease.hold()[0]:
                    log.warning("matcher %s lost its lease during the outage; standing by", self.consumer)
                    if not self.acquire(wait=True):
                        return False  # asked to stop while standing by
                self.reload()
            except OUTAGE:
                continue
            self.reader.next_claim = 0.0
            log.warning("matcher %s: Redis is back after %.1f s", self.consumer, time.monotonic() - started)
            return True
        return False

    def run(self, stop: Callable[[], bool] = lambda: False, idle_exit: float | None = None) -> dict:
        """Process until ``stop()``; with ``idle_exit``, also stop after that many seconds with nothing to do.
        A Redis outage is ridden out (``ride_out``): the matcher never stops for one (unless ``give_up``). On its
        way out it writes what it linked, runs a last merge pass and releases the lease, so a standby takes over
        at once."""
        self.stopping = stop
        idle_since = time.monotonic()
        try:
            while not stop():
                try:
                    handled = self.step(block_ms=200)
                except OUTAGE as e:
                    self.ride_out(e, stop)
                    idle_since = time.monotonic()
                    continue
                if handled:
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    break
            try:
                if self.linker is not None:  # none when stopped before it held the lease
                    self.merge()
                    self.housekeeping()
            except OUTAGE as e:  # the last merge pass: the next start merges
                log.warning(
                    "matcher %s: Redis unreachable at exit (%s); merges left to the next start", self.consumer, e
                )
        finally:
            try:
                self.release()
            except OUTAGE as e:
                log.warning(
                    "matcher %s: lease not released, Redis unreachable (%s); a standby takes over in %g s",
                    self.consumer,
                    e,
                    self.lease.seconds,
                )
        return dict(self.counts)
