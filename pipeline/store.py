"""Identities, sightings and per-camera timelines in Redis: what the matcher writes and queries read.

Keys, for site ``S`` under prefix ``P`` (besides those of ``pipeline.bus``):

| key | type | holds |
|---|---|---|
| ``P:S:identities`` | sorted set | identity id, scored by its last sighting's end (stream time) |
| ``P:S:identity:N`` | hash | ``exemplars`` (float16), ``dim``, ``recent`` (JSON: camera, track, start, end), ``sightings``, ``first_seen``, ``last_seen``, ``thumb`` (sighting id) |
| ``P:S:identity:N:sightings`` | sorted set | sighting ids of identity N by start time |
| ``P:S:sighting:ID`` | hash | ``identity``, ``camera``, ``track``, ``seq``, ``t_start``, ``t_end``, ``feature`` (float16), ``thumb`` (JPEG), ``model``, ``stream_id``, ``ingested`` (wall clock) and the decision: ``decision``, ``score``, ``best``, ``runner_up``, ``runner_up_score``, ``reason``, ``excluded`` |
| ``P:S:timeline:C`` | sorted set | sighting ids seen on camera C by start time |
| ``P:S:ingested`` | sorted set | sighting ids by wall-clock ingest time (retention) |
| ``P:S:decisions`` | stream | audit log and live feed: every link, new identity, merge and unlink (a link's scores are in its sighting's hash) |
| ``P:S:merges`` | hash | merged identity -> JSON ``{"into", "score", "at"}`` |
| ``P:S:cannot_link`` | set | ``"a:b"`` identity pairs a user split apart; merges never join them again |
| ``P:S:next_identity`` | string | the last identity id handed out |
| ``P:S:epoch`` | string | bumped by ``unlink`` and ``prune``: a running matcher reloads its gallery |
| ``P:S:version`` | string | bumped by every write that changes identities (links, merges, unlink, prune): readers' caches reload |

A sighting's id is its tracklet's id, ``camera:track:seq``: the matcher writes each at most once.
Identity ids increase; a gap means a batch whose write failed (its ids are not reused).
Retention: with ``ttl`` set, sighting and identity keys expire that long after their last write;
``prune`` removes sightings ingested before a cut-off together with their index entries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from models.errors import CrosscamError
from pipeline.commands import Commands
from pipeline.gallery import Gallery, latest
from pipeline.matching import Linked, MatchPolicy, Sighting, merge_exemplars
from pipeline.types import TrackletEmbedding

_F16 = np.dtype("<f2")
DECISIONS_MAXLEN = 100_000  # entries of the decisions stream kept (approximately: MAXLEN ~)
_DECISIONS_MAXLEN = str(DECISIONS_MAXLEN)


class NotFound(CrosscamError):
    """An identity or sighting that does not exist (or has expired)."""


@dataclass(frozen=True)
class StoreKeys:
    site: str
    prefix: str = "crosscam"

    def _k(self, *parts: object) -> str:
        return ":".join([self.prefix, self.site, *map(str, parts)])

    identities = property(lambda self: self._k("identities"))
    ingested = property(lambda self: self._k("ingested"))
    decisions = property(lambda self: self._k("decisions"))
    merges = property(lambda self: self._k("merges"))
    cannot_link = property(lambda self: self._k("cannot_link"))
    next_identity = property(lambda self: self._k("next_identity"))
    epoch = property(lambda self: self._k("epoch"))
    version = property(lambda self: self._k("version"))

    def identity(self, n: int) -> str:
        return self._k("identity", n)

    def sightings(self, n: int) -> str:
        return self._k("identity", n, "sightings")

    def sighting(self, sid: str) -> str:
        return self._k("sighting", sid)

    def timeline(self, camera: str) -> str:
        return self._k("timeline", camera)


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _recent_json(history: list[Sighting]) -> str:
    return json.dumps([[s.camera, s.track, s.t_start, s.t_end] for s in history])


def _summary(exemplars: np.ndarray, history: list[Sighting]) -> dict:
    """The identity hash fields that follow from its exemplars and sightings."""
    return {
        "exemplars": exemplars.astype(_F16).tobytes(),
        "dim": str(exemplars.shape[1]),
        "recent": _recent_json(latest(history)),
        "first_seen": repr(min(s.t_start for s in history)),
        "last_seen": repr(max(s.t_end for s in history)),
    }


def _recent(raw) -> list[Sighting]:
    return [Sighting(str(c), int(k), float(a), float(b)) for c, k, a, b in json.loads(_s(raw or "[]"))]


# --- writes (the matcher) ---------------------------------------------------------------------------
def _sighting_args(t: TrackletEmbedding, link: Linked, feature: bytes, start: str, stream_id: str, now: str) -> list:
    """The sighting hash as HSET's field, value list; every value already str or bytes."""
    return [
        "identity", str(link.identity),
        "camera", t.camera_id,
        "track", str(t.track_id),
        "seq", str(t.seq),
        "t_start", start,
        "t_end", repr(t.t_end),
        "feature", feature,
        "thumb", bytes(t.thumbnail),
        "model", t.model_id,
        "stream_id", stream_id,
        "ingested", now,
        *link.decision.field_args(),
    ]  # fmt: skip


def write_links(
    w: Commands, keys: StoreKeys, links: list[Linked], stream_ids: list[str], gallery: Gallery, ttl: float | None
) -> None:
    """A batch's sightings (``stream_ids``: their records' ids), the indexes and the identities they changed
    (each identity written once, in its state after the batch), added to ``w`` (``pipeline.commands``: the
    matcher sends them, its acknowledgements last, as one script call).

    This runs for every tracklet the matcher takes in, so values are made str or bytes here, where the
    batch is at hand (one float16 conversion for all features, each key and number formatted once), and
    commands are added as ready argument lists (``Commands.add``)."""
    if not links:
        return
    now = time.time()
    at = repr(now)
    ttl_s = str(int(ttl)) if ttl else None
    sids = [link.tracklet.tracklet_id for link in links]
    starts = [repr(link.tracklet.t_start) for link in links]
    features = np.stack([np.asarray(link.tracklet.feature, np.float32) for link in links]).astype(_F16)
    sighting_key, decisions = keys.sighting(""), keys.decisions  # + the sighting id
    by_identity: dict[int, list[int]] = {}  # identity -> indexes into links
    by_camera: dict[str, list[str]] = {}  # camera -> ZADD's score, member list
    for i, (link, stream_id) in enumerate(zip(links, stream_ids, strict=True)):
        t, sid = link.tracklet, sids[i]
        key = sighting_key + sid
        w.add(["HSET", key, *_sighting_args(t, link, features[i].tobytes(), starts[i], stream_id, at)])
        # the audit log's entry; the details are in the sighting's hash
        w.add(["XADD", decisions, "MAXLEN", "~", _DECISIONS_MAXLEN, "*", "sighting", sid, "identity", str(link.identity),
               "decision", link.decision.kind, "at", at])  # fmt: skip
        if ttl_s:
            w.add(["EXPIRE", key, ttl_s])
        by_identity.setdefault(link.identity, []).append(i)
        by_camera.setdefault(t.camera_id, []).extend((starts[i], sid))
    for camera, members in by_camera.items():
        w.zadd_args(keys.timeline(camera), members)
    last_seen: list[str] = []
    for identity, group in by_identity.items():
        name = str(identity)
        fields = _summary(gallery.exemplars(identity), gallery.history(identity))
        last_seen += (fields["last_seen"], name)
        first = links[group[0]]
        if first.new:
            fields |= {"thumb": sids[group[0]], "created": at}
        else:
            del fields["first_seen"]  # kept from creation: the recent history is bounded
        key, sightings = keys.identity(name), keys.sightings(name)
        w.hset(key, fields)
        w.add(["HINCRBY", key, "sightings", str(len(group))])
        w.zadd_args(sightings, [x for i in group for x in (starts[i], sids[i])])
        if ttl_s:
            w.add(["EXPIRE", key, ttl_s])
            w.add(["EXPIRE", sightings, ttl_s])
    w.zadd_args(keys.identities, last_seen, gt=True)  # GT still adds new members
    w.add(["INCR", keys.version])
    # last: the ingest marks make a re-read record a duplicate, so they follow every other write (a script
    # that fails part-way keeps what it wrote before; without the marks, the records are processed again)
    w.zadd_args(keys.ingested, [x for sid in sids for x in (at, sid)])


def next_identities(client, keys: StoreKeys, count: int) -> list[int]:
    last = int(client.incrby(keys.next_identity, count))
    return list(range(last - count + 1, last + 1))


def processed(client, keys: StoreKeys, sighting_ids: list[str]) -> list[bool]:
    """Whether each tracklet already has a sighting (one ZMSCORE on the ingest index, which a sighting
    joins in the same transaction; it outlives an expired sighting, so a late duplicate stays a duplicate)."""
    if not sighting_ids:
        return []
    return [x is not None for x in client.zmscore(keys.ingested, sighting_ids)]


# --- the gallery ------------------------------------------------------------------------------------
def identity_ids(client, keys: StoreKeys) -> list[int]:
    return [int(x) for x in client.zrange(keys.identities, 0, -1)]


def load_gallery(client, keys: StoreKeys, chunk: int = 2000) -> Gallery:
    """Every stored identity's exemplars and recent sightings (the matcher's state after a restart)."""
    gallery = Gallery()
    ids = identity_ids(client, keys)
    for i in range(0, len(ids), chunk):
        pipe = client.pipeline(transaction=False)
        for n in ids[i : i + chunk]:
            pipe.hmget(keys.identity(n), "exemplars", "dim", "recent")
        for n, (ex, dim, recent) in zip(ids[i : i + chunk], pipe.execute(), strict=True):
            if ex is None or dim is None:
                continue  # expired
            exemplars = np.frombuffer(ex, _F16).astype(np.float32).reshape(-1, int(dim))
            gallery.set(n, exemplars, _recent(recent))
    gallery.changes = []
    return gallery


def cannot_link(client, keys: StoreKeys) -> set[tuple[int, int]]:
    out = set()
    for raw in client.smembers(keys.cannot_link):
        a, b = _s(raw).split(":")
        out |= {(int(a), int(b)), (int(b), int(a))}
    return out


def write_merge(
    pipe, client, keys: StoreKeys, source: int, into: int, score: float, gallery: Gallery, carried: dict | None = None
) -> None:
    """Move every sighting of ``source`` to ``into`` (the gallery already holds the merged identity).

    Merges queued in one transaction can chain (3 into 2, then 2 into 1): ``carried`` holds what earlier
    ones moved, which ``client`` cannot read before the transaction runs (``{identity: (sightings, count)}``),
    and the summary of an identity merged on in the same pass is left to the merge that removes it."""
    carried = {} if carried is None else carried
    moved, extra = carried.pop(source, ({}, 0))
    starts = {_s(k): v for k, v in client.zrange(keys.sightings(source), 0, -1, withscores=True)} | moved
    for sid in starts:
        pipe.hset(keys.sighting(sid), "identity", into)
        pipe.hsetnx(keys.sighting(sid), "merged_from", source)
    if starts:
        pipe.zadd(keys.sightings(into), starts)
    count = int(client.hget(keys.identity(source), "sightings") or 0) + extra
    if into in gallery:
        fields = _summary(gallery.exemplars(into), gallery.history(into))
        pipe.hset(keys.identity(into), mapping=fields)
        pipe.hincrby(keys.identity(into), "sightings", count)
        pipe.zadd(keys.identities, {str(into): float(fields["last_seen"])})
    else:  # merged on later in this pass: that merge moves these too
        before = carried.get(into, ({}, 0))
        carried[into] = (before[0] | starts, before[1] + count)
    pipe.delete(keys.identity(source), keys.sightings(source))
    pipe.zrem(keys.identities, str(source))
    now = time.time()
    pipe.hset(keys.merges, str(source), json.dumps({"into": into, "score": round(score, 4), "at": now}))
    pipe.xadd(
        keys.decisions,
        {"decision": "merge", "identity": into, "merged": source, "score": f"{score:.4f}", "at": repr(now)},
        maxlen=DECISIONS_MAXLEN,
        approximate=True,
    )
    pipe.incr(keys.version)


# --- queries ----------------------------------------------------------------------------------------
def _merge_chain(client, keys: StoreKeys, identity: int) -> list[dict]:
    """The merges that carried ``identity`` into others, in order: ``{"from", "into", "score"}`` each."""
    chain = []
    for _ in range(64):
        raw = client.hget(keys.merges, str(identity))
        if raw is None:
            break
        m = json.loads(raw)
        chain.append({"from": identity, "into": m["into"], "score": m["score"]})
        identity = int(m["into"])
    return chain


def resolve(client, keys: StoreKeys, identity: int) -> int:
    """Follow merges: the identity that now holds ``identity``'s sightings."""
    chain = _merge_chain(client, keys, identity)
    return int(chain[-1]["into"]) if chain else identity


def _sighting_view(sid: str, h: dict) -> dict:
    g = {_s(k): v for k, v in h.items()}
    out = {"sighting": sid}
    for k in ("camera", "model", "decision", "reason", "stream_id"):
        out[k] = _s(g.get(k, b""))
    for k in ("identity", "track", "seq", "excluded", "best", "runner_up"):
        out[k] = int(g[k]) if g.get(k) not in (None, b"") else None
    for k in ("t_start", "t_end", "score", "runner_up_score", "ingested"):
        out[k] = float(g[k]) if g.get(k) not in (None, b"") else None
    return out


def sighting(client, keys: StoreKeys, sid: str) -> dict:
    h = client.hgetall(keys.sighting(sid))
    if not h:
        raise NotFound(f"no sighting {sid!r} in site {keys.site!r}; sighting ids look like camera:track:seq")
    return _sighting_view(sid, h)


def thumbnail(client, keys: StoreKeys, sid: str) -> bytes:
    data = client.hget(keys.sighting(sid), "thumb")
    if data is None:
        raise NotFound(f"no sighting {sid!r} in site {keys.site!r}")
    return bytes(data)


_LIST_FIELDS = ("identity", "camera", "track", "seq", "t_start", "t_end", "score", "decision")


def history(client, keys: StoreKeys, identity: int) -> dict:
    """An identity's cross-camera history: its sightings in time order, with cameras and scores."""
    current = resolve(client, keys, identity)
    summary = client.hmget(keys.identity(current), "first_seen", "last_seen", "sightings", "thumb")
    if summary[2] is None:
        raise NotFound(f"no person {identity} in site {keys.site!r}; `crosscam persons` lists them")
    sids = [_s(x) for x in client.zrange(keys.sightings(current), 0, -1)]
    pipe = client.pipeline(transaction=False)
    for sid in sids:
        pipe.hmget(keys.sighting(sid), *_LIST_FIELDS)
    rows = []
    for sid, values in zip(sids, pipe.execute(), strict=True):
        if values[0] is None:
            continue  # expired
        rows.append(_sighting_view(sid, dict(zip(_LIST_FIELDS, values, strict=True))))
    rows.sort(key=lambda r: (r["t_start"], r["sighting"]))
    cameras = list(dict.fromkeys(r["camera"] for r in rows))
    return {
        "person": current,
        "asked": identity,
        "first_seen": float(summary[0]) if summary[0] else None,
        "last_seen": float(summary[1]) if summary[1] else None,
        "cameras": cameras,
        "thumb": _s(summary[3]) if summary[3] else (rows[0]["sighting"] if rows else None),
        "sightings": rows,
    }


def persons(
    client, keys: StoreKeys, camera: str | None = None, since: float | None = None, limit: int = 1000
) -> list[dict]:
    """Identities seen (on ``camera``) since ``since`` (stream time), most recent first."""
    low = "-inf" if since is None else since
    if camera is None:
        ids = [int(x) for x in client.zrevrangebyscore(keys.identities, "+inf", low, start=0, num=limit)]
    else:
        sids = [_s(x) for x in client.zrevrangebyscore(keys.timeline(camera), "+inf", low)]
        pipe = client.pipeline(transaction=False)
        for sid in sids:
            pipe.hget(keys.sighting(sid), "identity")
        ids = list(dict.fromkeys(int(x) for x in pipe.execute() if x is not None))[:limit]
    pipe = client.pipeline(transaction=False)
    for n in ids:
        pipe.hmget(keys.identity(n), "first_seen", "last_seen", "sightings", "thumb", "recent")
    out = []
    for n, (first, last, count, thumb, recent) in zip(ids, pipe.execute(), strict=True):
        if count is None:
            continue
        cams = list(dict.fromkeys(s.camera for s in _recent(recent)))
        out.append(
            {
                "person": n,
                "first_seen": float(first),
                "last_seen": float(last),
                "sightings": int(count),
                "cameras": cams,
                "thumb": _s(thumb),
            }
        )
    return out


def explain(client, keys: StoreKeys, sid: str) -> dict:
    """Why a sighting belongs to its person: the decision with its score and runner-up, and any merges."""
    view = sighting(client, keys, sid)
    first = client.hget(keys.sighting(sid), "merged_from")
    identity = int(first) if first is not None else view["identity"]
    chain = _merge_chain(client, keys, identity)
    return view | {"merges": chain, "person": int(chain[-1]["into"]) if chain else identity}


def search(gallery: Gallery, feature: np.ndarray, top_k: int = 5) -> list[tuple[int, float]]:
    """The ``top_k`` identities nearest to ``feature`` (no space-time constraints: a query has no time)."""
    if not len(gallery):
        return []
    snap = gallery.snapshot(np.asarray(feature, np.float32)[None])
    out = []
    for identity, score in snap.ranked(0):
        out.append((identity, score))
        if len(out) == top_k:
            break
    return out


def search_histories(client, keys: StoreKeys, gallery: Gallery, feature: np.ndarray, top_k: int = 5) -> list[dict]:
    """``search`` with each hit's score rounded and its history: what the CLI and the API answer."""
    return [
        {"person": p, "score": round(s, 4), "history": history(client, keys, p)}
        for p, s in search(gallery, feature, top_k)
    ]


# --- undo and retention -----------------------------------------------------------------------------
def _rebuild_identity(client, pipe, keys: StoreKeys, identity: int, policy: MatchPolicy, skip: set[str]) -> bool:
    """Recompute an identity's summary and exemplars from its remaining sightings; False if none remain."""
    sids = [_s(x) for x in client.zrange(keys.sightings(identity), 0, -1) if _s(x) not in skip]
    fields = ("camera", "track", "t_start", "t_end", "feature")
    rows = [(sid, client.hmget(keys.sighting(sid), *fields)) for sid in sids]
    rows = [(sid, v) for sid, v in rows if v[0] is not None]
    if not rows:
        pipe.delete(keys.identity(identity), keys.sightings(identity))
        pipe.zrem(keys.identities, str(identity))
        return False
    history = [Sighting(_s(c), int(k), float(a), float(b)) for _, (c, k, a, b, _f) in rows]
    features = [np.frombuffer(v[4], _F16).astype(np.float32) for _, v in rows]
    exemplars = merge_exemplars(
        np.zeros((0, len(features[0])), np.float32), np.stack(features[::-1]), policy.exemplars, policy.duplicate
    )
    fields = _summary(exemplars, history) | {"sightings": len(rows), "thumb": rows[0][0]}
    pipe.hset(keys.identity(identity), mapping=fields)
    pipe.zadd(keys.identities, {str(identity): float(fields["last_seen"])})
    return True


def unlink(client, keys: StoreKeys, sid: str, policy: MatchPolicy) -> dict:
    """Take a sighting out of its person into a new one; the two are never merged again."""
    view = sighting(client, keys, sid)
    old = resolve(client, keys, view["identity"])
    new = next_identities(client, keys, 1)[0]
    pipe = client.pipeline(transaction=True)
    pipe.zrem(keys.sightings(old), sid)
    pipe.zadd(keys.sightings(new), {sid: view["t_start"]})
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
    return {"sighting": sid, "from": old, "person": new, "from_kept": kept}


def prune(client, keys: StoreKeys, older_than: float, policy: MatchPolicy, now: float | None = None) -> dict:
    """Delete sightings ingested more than ``older_than`` seconds ago, and persons left without any."""
    cutoff = (now or time.time()) - older_than
    sids = [_s(x) for x in client.zrangebyscore(keys.ingested, "-inf", cutoff)]
    touched: dict[int, None] = {}
    pipe = client.pipeline(transaction=True)
    for sid in sids:
        identity, camera = client.hmget(keys.sighting(sid), "identity", "camera")
        if identity is not None:
            touched[int(identity)] = None
            pipe.zrem(keys.sightings(int(identity)), sid)
            pipe.zrem(keys.timeline(_s(camera)), sid)
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
    return {"sightings_removed": len(sids), "persons_removed": removed, "cutoff": cutoff}
