"""The matcher: links every tracklet on a site's stream to a global identity (ARCHITECTURE.md, "Matching").

``Linker`` applies the rules to batches in memory (``pipeline.matching`` + ``pipeline.gallery``);
``Matcher`` feeds it from a Redis consumer group and writes the results with ``pipeline.store``.

Guarantees:

- **Exactly one sighting per tracklet.** A batch's sightings, identity updates and, last, its ingest
  marks and the stream acknowledgements are written by one server-side script (``pipeline.commands``;
  atomic, and one that fails part-way has marked and acknowledged nothing, so its records are read and
  written again), and a tracklet already marked ingested is acknowledged without being processed again
  (a record published twice changes nothing).
- **Crash recovery.** A restarted matcher first re-reads its own pending records, then claims records
  another consumer left pending for ``claim_idle`` seconds (XAUTOCLAIM, looked for at start and then every
  ``claim_idle / 4`` seconds). The in-memory gallery is rebuilt from Redis at start, and again whenever
  ``unlink``/``prune`` bump the site's epoch.
- **One active matcher per site.** A lease key (``P:S:matcher:lease``) makes further matchers wait as
  standbys; they take over when the lease of a dead one runs out (``lease`` seconds).
- **Bad records** (malformed, unknown schema version) go to the dead-letter stream, are counted in
  ``P:S:stats`` and acknowledged; processing goes on.
- **The model's own threshold.** A threshold belongs to the model that made the features. Every worker
  announces its model when it starts (``pipeline.site_models.announce_model``: ``HSET P:S:models <model id> <JSON summary>``,
  with the spec's calibrated ``link_threshold``), before it publishes a record; a record names its model by
  id. With ``model_threshold`` the matcher links at the threshold announced for the model of the records it
  reads (looked up when the model id changes; ``policy.threshold`` while a model announced none), so a site
  config only sets ``matcher.threshold`` to override it.

Writes go behind: a batch is linked and its write built, then sent after the next batch has been read,
so the Redis server runs one batch's script while the matcher links the next (Redis would otherwise wait
for the matcher, and the matcher for Redis). At most one batch waits and one is in flight. Both are
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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from pipeline import records, store
from pipeline.bus import Keys, dead_letter
from pipeline.commands import Commands
from pipeline.gallery import Gallery
from pipeline.matching import (
    Linked,
    MatchPolicy,
    Sighting,
    decide,
    histories_compatible,
    merge_exemplars,
    update_exemplars,
)
from pipeline.site_models import announced_model, with_model_threshold
from pipeline.types import TrackletEmbedding

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
GROUP = "matcher"
# KEYS: lease, epoch; ARGV: consumer, lease in ms. Returns {held, epoch}: the lease is taken when free and
# renewed when ours; the epoch (bumped by unlink and prune) comes in the same round trip.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  return {0, redis.call('GET', KEYS[2])}
end
return {1, redis.call('GET', KEYS[2])}
"""


def _recorded(ranked: Iterator[tuple[int, float]], into: list) -> Iterator[tuple[int, float]]:
    """``ranked``, each item also appended to ``into`` as it is read."""
    for item in ranked:
        into.append(item)
        yield item


@dataclass
class Linker:
    """The matching rules over an in-memory gallery; ``allocate(n)`` hands out new identity ids.

    Merge candidates come from linking itself: each tracklet's ranking is read down to ``merge_threshold``,
    and every other identity above it is recorded as a candidate pair with the identity the tracklet ends
    in. Every pair of features is scored when the later of the two arrives, so the candidates since the
    last pass are all the pairs that may have come to agree, and the merge pass needs no scoring of its
    own (it used to score each changed identity against the whole gallery: 20 ms an identity at 80,000
    rows)."""

    policy: MatchPolicy
    allocate: Callable[[int], list[int]]
    gallery: Gallery = field(default_factory=Gallery)
    cannot_link: set[tuple[int, int]] = field(default_factory=set)
    candidates: dict[tuple[int, int], float] = field(default_factory=dict)  # (lower id, higher id) -> score

    def link(self, batch: list[TrackletEmbedding]) -> list[Linked]:
        if not batch:
            return []
        g, p = self.gallery, self.policy
        features = np.stack([np.asarray(t.feature, np.float32) for t in batch])
        snap = g.snapshot(features, batch=True)
        out, opened, near = [], 0, []
        for i, t in enumerate(batch):
            s = Sighting(t.camera_id, t.track_id, t.t_start, t.t_end)
            continuing = g.continuing(t.camera_id, t.track_id, t.t_start, p.continuity_gap)
            ranked, heard = snap.ranked(i), []
            d = decide(_recorded(ranked, heard), g.history, s, p, continuing)
            if not heard or heard[-1][1] >= p.merge_threshold:
                for item in ranked:  # the rest of the ranking down to the merge threshold
                    heard.append(item)
                    if item[1] < p.merge_threshold:
                        break
            new = d.identity is None
            identity = -opened - 1 if new else d.identity  # a placeholder until the batch ends
            opened += new
            exemplars = np.zeros((0, len(features[i])), np.float32) if new else g.exemplars(identity)
            updated = update_exemplars(exemplars, features[i], p.exemplars, p.duplicate)
            if updated is not exemplars:  # unchanged (a near repeat): nothing to re-score
                g.set(identity, updated)
            g.add_sighting(identity, s)
            out.append(Linked(t, identity, d, new))
            near.append([(other, score) for other, score in heard if score >= p.merge_threshold])
        out, real = self._name_new(out, opened)
        for r, others in zip(out, near, strict=True):
            for other, score in others:
                other = real.get(other, other)
                if other != r.identity:
                    key = (min(other, r.identity), max(other, r.identity))
                    self.candidates[key] = max(self.candidates.get(key, score), score)
        return out

    def _name_new(self, out: list[Linked], opened: int) -> tuple[list[Linked], dict[int, int]]:
        """Give the identities opened in a batch their ids (one ``allocate`` call, so ids have no gaps);
        returns the renamed results and ``placeholder -> id``."""
        if not opened:
            return out, {}
        real = dict(zip(range(-1, -opened - 1, -1), self.allocate(opened), strict=True))
        self.gallery.rename(real)
        renamed = [
            replace(
                r,
                identity=real.get(r.identity, r.identity),
                decision=r.decision.renamed(real),
            )
            for r in out
        ]
        return renamed, real

    def merges(self) -> list[tuple[int, int, float]]:
        """One merge pass over the candidate pairs recorded since the last: best pair first (a pair's score
        is the best a tracklet of one reached with an exemplar of the other, so this is single-linkage
        clustering), each merged when its histories fit together and a user did not split it with
        ``unlink``; returns (source, into, score) and applies them to the gallery. The younger identity
        (higher id) goes into the older."""
        g, p = self.gallery, self.policy
        pairs, self.candidates = self.candidates, {}
        into_of: dict[int, int] = {}  # merged identity -> where it went

        def root(i: int) -> int:
            while i in into_of:
                i = into_of[i]
            return i

        done: list[tuple[int, int, float]] = []
        for (a, b), score in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
            a, b = root(a), root(b)
            if a == b or a not in g or b not in g or (a, b) in self.cannot_link:
                continue
            if not histories_compatible(g.history(a), g.history(b), p.topology):
                continue
            source, into = max(a, b), min(a, b)
            merged = merge_exemplars(g.exemplars(into), g.exemplars(source), p.exemplars, p.duplicate)
            history = g.history(into) + g.history(source)
            g.remove(source)
            g.set(into, merged, history)
            into_of[source] = into
            done.append((source, into, score))
        return done


class Matcher:
    """One site's matcher: consumes ``bus_keys.tracklets`` in the consumer group ``matcher``."""

    def __init__(
        self,
        client,
        bus_keys: Keys,
        policy: MatchPolicy,
        consumer: str | None = None,
        batch: int = 128,
        claim_idle: float = 30.0,
        merge_every: float = 10.0,
        ttl: float | None = None,
        lease: float = 10.0,
        model_threshold: bool = False,
    ) -> None:
        """``model_threshold``: link at the threshold announced for the records' model (see the module's
        docstring), ``policy.threshold`` being the fallback; else always at ``policy.threshold``."""
        self.client, self.bus_keys, self.policy = client, bus_keys, policy
        self.model_threshold = model_threshold
        self.active = policy  # the rules in force: ``policy`` with the model's threshold when it follows one
        self.model_id: str | None = None  # the model whose announced summary set ``active``
        self._announced: tuple[str, float] | None = None  # the last (model, threshold) logged
        self.keys = store.StoreKeys(bus_keys.site, bus_keys.prefix)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch, self.claim_idle, self.merge_every, self.ttl, self.lease = batch, claim_idle, merge_every, ttl, lease
        self.lease_key = f"{bus_keys.prefix}:{bus_keys.site}:matcher:lease"
        self._lease_script = client.register_script(_LEASE)
        self.linker: Linker | None = None
        self.epoch = None
        self.own_pending = True
        self.next_claim = 0.0  # when to look for another consumer's stale records next (monotonic clock)
        self.last_merge = time.monotonic()
        self._writer: ThreadPoolExecutor | None = None
        self._queued: tuple[object, set[str]] | None = None  # a linked batch's write and tracklets, not yet sent
        self._inflight: Future | None = None
        self._inflight_ids: set[str] = set()  # tracklets of the batch in flight (not yet marked ingested)
        self.counts = {"processed": 0, "duplicates": 0, "dead_letters": 0, "new": 0, "linked": 0, "merged": 0}

    # --- set-up ---------------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.bus_keys.tracklets, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def _hold(self) -> tuple[bool, bytes | None]:
        """Take or renew the lease if it is free or ours, and read the site's epoch: one round trip."""
        held, epoch = self._lease_script(
            keys=[self.lease_key, self.keys.epoch], args=[self.consumer, int(self.lease * 1000)]
        )
        return bool(held), epoch

    def acquire(self, wait: bool = True) -> bool:
        """Hold the site's lease (one active matcher); with ``wait``, stand by until it is free."""
        while True:
            if self._hold()[0]:
                return True
            if not wait:
                return False
            time.sleep(min(1.0, self.lease / 4))

    def release(self) -> None:
        self.flush(raise_errors=False)
        holder = self.client.get(self.lease_key)
        if holder is not None and holder.decode() == self.consumer:
            self.client.delete(self.lease_key)

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
        self.ensure_group()
        self.acquire(wait)
        self.reload()
        return self

    # --- the loop -------------------------------------------------------------------------------------
    def _read(self, block_ms: int) -> list[tuple[str, dict]]:
        stream = self.bus_keys.tracklets
        if self.own_pending:  # our own pending records first (a restart under the same consumer name)
            got = self.client.xreadgroup(GROUP, self.consumer, {stream: "0"}, count=self.batch)
            entries = got[0][1] if got else []
            if entries:
                return entries
            self.own_pending = False
        now = time.monotonic()
        if now >= self.next_claim:  # another consumer's stale records, looked for every claim_idle / 4 seconds
            claimed = self.client.xautoclaim(
                stream,
                GROUP,
                self.consumer,
                min_idle_time=int(self.claim_idle * 1000),
                start_id="0-0",
                count=self.batch,
            )
            entries = [e for e in claimed[1] if e[1]] if claimed else []
            for e in claimed[2] if claimed and len(claimed) > 2 else []:  # deleted by trimming: nothing to do
                self.client.xack(stream, GROUP, e)
            if entries:
                return entries
            self.next_claim = now + self.claim_idle / 4
        got = self.client.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=self.batch, block=block_ms)
        return got[0][1] if got else []

    def step(self, block_ms: int = 500) -> int:
        """Read and process one batch; returns how many records it handled. After a full batch its write
        may still be behind (sent by the next step; ``flush`` writes it now)."""
        held, epoch = self._hold()
        if not held:
            log.warning("matcher %s lost its lease; standing by", self.consumer)
            self._discard()  # a batch not yet sent is not ours to write now
            self.acquire(wait=True)
            self.reload()
        elif epoch != self.epoch:
            self.reload()
        entries = self._read(block_ms)
        if entries:
            self.process(entries)
        if len(entries) < self.batch:  # caught up: nothing left behind
            self.flush()
        if time.monotonic() - self.last_merge >= self.merge_every:
            self.merge()
        return len(entries)

    def process(self, entries: list[tuple]) -> None:
        stream, keys = self.bus_keys.tracklets, self.keys
        ids = [e[0].decode() if isinstance(e[0], bytes) else str(e[0]) for e in entries]
        good: list[tuple[str, TrackletEmbedding]] = []
        pipe = self.client.pipeline(transaction=True)
        for sid, (_, fields) in zip(ids, entries, strict=True):
            try:
                t = records.decode(fields)
                if t.site != self.bus_keys.site:
                    raise records.RecordError(f"record of site {t.site!r} on site {self.bus_keys.site!r}'s stream")
                good.append((sid, t))
            except records.RecordError as e:
                log.warning("tracklet record %s moved to %s: %s", sid, self.bus_keys.dead, e)
                dead_letter(pipe, self.bus_keys, sid, fields, str(e))
                self.counts["dead_letters"] += 1
        seen = store.processed(self.client, keys, [t.tracklet_id for _, t in good])
        unsent = self._queued[1] if self._queued else set()
        fresh, batch_ids = [], set()
        for (sid, t), done in zip(good, seen, strict=True):
            tid = t.tracklet_id
            if done or tid in batch_ids or tid in unsent or tid in self._inflight_ids:
                self.counts["duplicates"] += 1
                continue
            batch_ids.add(tid)
            fresh.append((sid, t))
        self._send()  # the batch linked before goes to Redis now; this one is linked meanwhile
        self._follow_model([t for _, t in fresh])
        try:
            linked = self.linker.link([t for _, t in fresh])
            w = Commands()
            store.write_links(w, keys, linked, [sid for sid, _ in fresh], self.linker.gallery, self.ttl)
            w.call("HINCRBY", self.bus_keys.stats, "matched", len(fresh))
            w.xack(stream, GROUP, ids)  # last: a script that fails before it acknowledges nothing
            w.queue(pipe)
        except Exception:
            self.own_pending = True  # this batch's records are read again
            self.reload()  # the gallery may hold what Redis did not take
            raise
        self._queued = (pipe, batch_ids)
        self.counts["processed"] += len(fresh)
        self.counts["new"] += sum(r.new for r in linked)
        self.counts["linked"] += sum(not r.new for r in linked)

    def _follow_model(self, batch: list[TrackletEmbedding]) -> None:
        """With ``model_threshold``: take the threshold announced for the batch's model when it changes."""
        if not self.model_threshold or not batch:
            return
        model = batch[-1].model_id
        if len({t.model_id for t in batch}) > 1:
            log.warning(
                "matcher %s: one batch holds features of several models; their scores mean nothing "
                "to each other (one model per site)",
                self.consumer,
            )
        if model == self.model_id:
            return
        summary = announced_model(self.client, self.bus_keys, model)
        threshold = summary.get("link_threshold") if summary else None
        active = with_model_threshold(self.policy, None if threshold is None else float(threshold))
        if (model, active.threshold) != self._announced:
            self._announced = (model, active.threshold)
            log.info(
                "matcher %s: model %s, linking at %s (%s)",
                self.consumer,
                model,
                active.threshold,
                "its calibrated threshold" if threshold is not None else "no calibrated threshold announced",
            )
        self.active = self.linker.policy = active
        self.model_id = model if summary is not None else None  # not announced yet: look again next batch

    # --- writes behind ----------------------------------------------------------------------------------
    def _send(self) -> None:
        """Send the waiting batch's write, once the one in flight has finished."""
        self._wait()
        if self._queued is None:
            return
        (pipe, ids), self._queued = self._queued, None
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"matcher-{self.consumer}-write")
        self._inflight, self._inflight_ids = self._writer.submit(pipe.execute), ids

    def _wait(self) -> None:
        """Wait for the batch in flight; if its write failed, rebuild the gallery and raise the error."""
        future, self._inflight, self._inflight_ids = self._inflight, None, set()
        if future is None:
            return
        try:
            future.result()
        except Exception:
            self.own_pending = True  # its records (unacknowledged) are read again
            self.reload()
            raise

    def _discard(self) -> None:
        """Before a reload: wait for the batch in flight (an error is logged) and drop the one not sent."""
        future, self._inflight, self._inflight_ids = self._inflight, None, set()
        if self._queued is not None:
            self._queued, self.own_pending = None, True
        if future is not None:
            try:
                future.result()
            except Exception:
                self.own_pending = True
                self._log_failed_write()

    def flush(self, raise_errors: bool = True) -> None:
        """Write the batches left behind and wait for them. A failed write rebuilds the gallery (its records
        are read again) and is raised, or with ``raise_errors=False`` logged."""
        try:
            self._send()
            self._wait()
        except Exception:
            if raise_errors:
                raise
            self._log_failed_write()

    def _log_failed_write(self) -> None:
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
                pipe.execute()
            except Exception:
                self.reload()
                raise
            self.counts["merged"] += len(merges)
        return merges

    def backlog(self) -> int:
        """Records not yet delivered to the group plus those pending."""
        info = {
            g["name"].decode() if isinstance(g["name"], bytes) else g["name"]: g
            for g in self.client.xinfo_groups(self.bus_keys.tracklets)
        }
        g = info.get(GROUP, {})
        return int(g.get("lag") or 0) + int(g.get("pending") or 0)

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
