"""Changes a user makes to what the matcher stored: ``unlink`` a sighting, ``prune`` old ones.

Both run beside a live matcher, so each change is one transaction under optimistic locking: the keys it
reads (the sightings it moves or deletes, the sighting indexes of the persons it rebuilds, the cannot-link
pairs) are WATCHed, and a change that meets a concurrent write is read and computed again. The same
transaction bumps the site's epoch, which fences the matcher (``pipeline.bus.batch``): a batch it linked
on the gallery as it was before the change is refused, and linked again after a reload. So neither side
writes back a stale summary or count.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import redis

from crosscam.errors import CrosscamError
from pipeline.bus.connect import Client, Pipeline
from pipeline.keys import Keys, text
from pipeline.matcher.rules import MatchPolicy, Sighting, merge_exemplars
from pipeline.store.fields import DECISIONS_MAXLEN, F16, summary
from pipeline.store.queries import resolve, sighting
from pipeline.store.retention import trim_site
from pipeline.store.views import PruneResult, UnlinkResult
from pipeline.store.writes import cannot_link, next_identities

ATTEMPTS = 20  # tries of one change that keeps meeting concurrent writes
PRUNE_CHUNK = 10_000  # sightings deleted per transaction (each bumps the epoch: the matcher reloads once)
_FIELDS = ("camera", "track", "t_start", "t_end", "feature")


class Contended(CrosscamError):
    """A change that kept meeting concurrent writes to the same persons."""


def _optimistic(client: Client, what: str, change: Callable[[Pipeline], object], attempts: int = ATTEMPTS):
    """``change(pipe)``: WATCHes what it reads, then ``pipe.multi()`` and queues its writes. Runs it until its
    transaction goes through (no watched key written meanwhile), at most ``attempts`` times."""
    for _ in range(attempts):
        with client.pipeline(transaction=True) as pipe:
            try:
                result = change(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                continue
    raise Contended(f"{what}: the persons it changes kept changing under the matcher ({attempts} tries); run it again")


def _rebuild_identity(
    client: Client, pipe: Pipeline, keys: Keys, identity: int, policy: MatchPolicy, sids: list[str]
) -> bool:
    """Queue an identity's summary, exemplars and sighting count recomputed from ``sids`` (the sightings it
    keeps, in its sighting index after ``pipe`` runs); a sighting whose hash expired leaves the index. Deletes
    the identity and returns False when none remain."""
    fetch = client.pipeline(transaction=False)
    for sid in sids:
        fetch.hmget(keys.sighting(sid), *_FIELDS)
    rows = list(zip(sids, fetch.execute() if sids else [], strict=True))
    gone = [sid for sid, v in rows if v[0] is None]
    rows = [(sid, v) for sid, v in rows if v[0] is not None]
    if not rows:
        pipe.delete(keys.identity(identity), keys.sightings(identity))
        pipe.zrem(keys.identities, str(identity))
        return False
    if gone:
        pipe.zrem(keys.sightings(identity), *gone)
    history = [Sighting(text(c), int(k), float(a), float(b)) for _, (c, k, a, b, _f) in rows]
    features = [np.frombuffer(v[4], F16).astype(np.float32) for _, v in rows]
    exemplars = merge_exemplars(
        np.zeros((0, len(features[0])), np.float32), np.stack(features[::-1]), policy.exemplars, policy.duplicate
    )
    fields = summary(exemplars, history) | {"sightings": len(rows), "thumb": rows[0][0]}
    pipe.hset(keys.identity(identity), mapping=fields)
    pipe.zadd(keys.identities, {str(identity): float(fields["last_seen"])})
    return True


def _pair(a: int, b: int) -> str:
    return f"{min(a, b)}:{max(a, b)}"


def unlink(client: Client, keys: Keys, sid: str, policy: MatchPolicy) -> UnlinkResult:
    """Take a sighting out of its person into a new one; the two are never merged again.

    What is remembered (``P:{S}:cannot_link``) is a pair of identities: the old and the new. The new one also
    takes over every pair of the old one (the sighting was split from those persons too), and a merge hands
    the pairs of the merged identity on to the one it goes into (``pipeline.store.writes.write_merge``). So
    the sighting stays apart from the person it was taken from however often it is unlinked again or merged
    (a second unlink of the same sighting moves it on, and keeps it apart from both)."""
    new: list[int] = []

    def change(pipe: Pipeline) -> UnlinkResult:
        pipe.watch(keys.sighting(sid), keys.merges, keys.cannot_link)
        view = sighting(client, keys, sid)
        old = resolve(client, keys, view.identity)
        pipe.watch(keys.sightings(old))
        if not new:  # one id, however many tries (ids are never reused)
            new.append(next_identities(client, keys, 1)[0])
        person = new[0]
        remaining = [text(x) for x in client.zrange(keys.sightings(old), 0, -1) if text(x) != sid]
        partners = {b for a, b in cannot_link(client, keys) if a == old and b != person}
        pipe.multi()
        pipe.zrem(keys.sightings(old), sid)
        pipe.zadd(keys.sightings(person), {sid: view.t_start})
        pipe.hset(
            keys.sighting(sid), mapping={"identity": person, "decision": "unlinked", "reason": f"unlinked from {old}"}
        )
        kept = _rebuild_identity(client, pipe, keys, old, policy, remaining)
        _rebuild_identity(client, pipe, keys, person, policy, [sid])
        pipe.sadd(keys.cannot_link, _pair(old, person), *(_pair(person, p) for p in sorted(partners)))
        pipe.xadd(
            keys.decisions,
            {"decision": "unlink", "sighting": sid, "identity": person, "from": old, "at": repr(time.time())},
            maxlen=DECISIONS_MAXLEN,
            approximate=True,
        )
        pipe.incr(keys.epoch)  # in the same transaction: the matcher's batches linked before are refused
        pipe.incr(keys.version)
        return UnlinkResult(sighting=sid, from_=old, person=person, from_kept=kept)

    return _optimistic(client, f"unlink {sid}", change)


def _prune_some(client: Client, pipe: Pipeline, keys: Keys, sids: list[str], policy: MatchPolicy) -> int:
    """Queue the deletion of ``sids`` and the rebuild of the persons they leave; returns how many persons
    are left without sightings (deleted)."""
    pipe.watch(*(keys.sighting(sid) for sid in sids))
    fetch = client.pipeline(transaction=False)
    for sid in sids:
        fetch.hmget(keys.sighting(sid), "identity", "camera")
    located = list(zip(sids, fetch.execute(), strict=True))
    touched = sorted({int(identity) for _, (identity, _c) in located if identity is not None})
    if touched:
        pipe.watch(*(keys.sightings(n) for n in touched))
        for n in touched:
            fetch.zrange(keys.sightings(n), 0, -1)
        indexes = fetch.execute()
    else:
        indexes = []
    gone = set(sids)
    pipe.multi()
    for sid, (identity, camera) in located:
        if identity is not None:
            pipe.zrem(keys.sightings(int(identity)), sid)
        # the camera is the sighting id's first part: the timeline entry goes even when the hash expired
        pipe.zrem(keys.timeline(text(camera) if camera is not None else sid.rsplit(":", 2)[0]), sid)
        pipe.delete(keys.sighting(sid))
        pipe.zrem(keys.ingested, sid)
    removed = 0
    for n, index in zip(touched, indexes, strict=True):
        left = [text(x) for x in index if text(x) not in gone]
        removed += not _rebuild_identity(client, pipe, keys, n, policy, left)
    pipe.incr(keys.epoch)  # in the same transaction: the matcher's batches linked before are refused
    pipe.incr(keys.version)
    return removed


def prune(
    client: Client,
    keys: Keys,
    older_than: float,
    policy: MatchPolicy,
    now: float | None = None,
    chunk: int = PRUNE_CHUNK,
) -> PruneResult:
    """Delete sightings ingested more than ``older_than`` seconds ago, and persons left without any: up to
    ``chunk`` sightings per transaction, fewer when a chunk keeps meeting the matcher's writes."""
    cutoff = (now or time.time()) - older_than
    sightings = persons = 0
    while True:
        sids = [text(x) for x in client.zrangebyscore(keys.ingested, "-inf", cutoff, start=0, num=chunk)]
        if not sids:
            break
        try:
            persons += _optimistic(
                client,
                f"prune of {len(sids)} sightings",
                lambda pipe, sids=sids: _prune_some(client, pipe, keys, sids, policy),
                attempts=ATTEMPTS if chunk == 1 else 3,
            )
        except Contended:
            if chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            continue
        sightings += len(sids)
    return PruneResult(
        sightings_removed=sightings, persons_removed=persons, cutoff=cutoff, trimmed=trim_site(client, keys, cutoff)
    )
