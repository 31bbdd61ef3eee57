"""Changes a user makes to what the matcher stored: ``unlink`` a sighting, ``prune`` old ones."""

from __future__ import annotations

import time

import numpy as np

from pipeline.bus.connect import Client, Pipeline
from pipeline.keys import Keys, text
from pipeline.matcher.rules import MatchPolicy, Sighting, merge_exemplars
from pipeline.store.fields import DECISIONS_MAXLEN, F16, summary
from pipeline.store.queries import resolve, sighting
from pipeline.store.retention import trim_site
from pipeline.store.views import PruneResult, UnlinkResult
from pipeline.store.writes import next_identities


def _rebuild_identity(
    client: Client, pipe: Pipeline, keys: Keys, identity: int, policy: MatchPolicy, skip: set[str]
) -> bool:
    """Recompute an identity's summary and exemplars from its remaining sightings; False if none remain."""
    sids = [text(x) for x in client.zrange(keys.sightings(identity), 0, -1) if text(x) not in skip]
    fields = ("camera", "track", "t_start", "t_end", "feature")
    rows = [(sid, client.hmget(keys.sighting(sid), *fields)) for sid in sids]
    rows = [(sid, v) for sid, v in rows if v[0] is not None]
    if not rows:
        pipe.delete(keys.identity(identity), keys.sightings(identity))
        pipe.zrem(keys.identities, str(identity))
        return False
    history = [Sighting(text(c), int(k), float(a), float(b)) for _, (c, k, a, b, _f) in rows]
    features = [np.frombuffer(v[4], F16).astype(np.float32) for _, v in rows]
    exemplars = merge_exemplars(
        np.zeros((0, len(features[0])), np.float32), np.stack(features[::-1]), policy.exemplars, policy.duplicate
    )
    fields = summary(exemplars, history) | {"sightings": len(rows), "thumb": rows[0][0]}
    pipe.hset(keys.identity(identity), mapping=fields)
    pipe.zadd(keys.identities, {str(identity): float(fields["last_seen"])})
    return True


def unlink(client: Client, keys: Keys, sid: str, policy: MatchPolicy) -> UnlinkResult:
    """Take a sighting out of its person into a new one; the two are never merged again."""
    view = sighting(client, keys, sid)
    old = resolve(client, keys, view.identity)
    new = next_identities(client, keys, 1)[0]
    pipe = client.pipeline(transaction=True)
    pipe.zrem(keys.sightings(old), sid)
    pipe.zadd(keys.sightings(new), {sid: view.t_start})
    pipe.hset(keys.sighting(sid), mapping={"identity": new, "decision": "unlinked", "reason": f"unlinked from {old}"})
    kept = _rebuild_identity(client, pipe, keys, old, policy, skip={sid})
    pipe.sadd(keys.cannot_link, f"{old}:{new}")
    pipe.xadd(
        keys.decisions,
        {"decision": "unlink", "sighting": sid, "identity": new, "from": old, "at": repr(time.time())},
        maxlen=DECISIONS_MAXLEN,
        approximate=True,
    )
    pipe.execute()
    pipe = client.pipeline(transaction=True)
    _rebuild_identity(client, pipe, keys, new, policy, skip=set())
    pipe.incr(keys.epoch)
    pipe.incr(keys.version)
    pipe.execute()
    return UnlinkResult(sighting=sid, from_=old, person=new, from_kept=kept)


def prune(client: Client, keys: Keys, older_than: float, policy: MatchPolicy, now: float | None = None) -> PruneResult:
    """Delete sightings ingested more than ``older_than`` seconds ago, and persons left without any."""
    cutoff = (now or time.time()) - older_than
    sids = [text(x) for x in client.zrangebyscore(keys.ingested, "-inf", cutoff)]
    touched: dict[int, None] = {}
    pipe = client.pipeline(transaction=True)
    for sid in sids:
        identity, camera = client.hmget(keys.sighting(sid), "identity", "camera")
        if identity is not None:
            touched[int(identity)] = None
            pipe.zrem(keys.sightings(int(identity)), sid)
            pipe.zrem(keys.timeline(text(camera)), sid)
        pipe.delete(keys.sighting(sid))
        pipe.zrem(keys.ingested, sid)
    pipe.execute()
    removed = 0
    pipe = client.pipeline(transaction=True)
    for identity in touched:
        removed += not _rebuild_identity(client, pipe, keys, identity, policy, skip=set())
    pipe.incr(keys.epoch)
    pipe.incr(keys.version)
    pipe.execute()
    return PruneResult(
        sightings_removed=len(sids), persons_removed=removed, cutoff=cutoff, trimmed=trim_site(client, keys, cutoff)
    )
