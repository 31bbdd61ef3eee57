"""The matcher's writes: a batch's sightings and identities, merges, and the gallery it loads at start."""

from __future__ import annotations

import json
import time

import numpy as np

from pipeline.bus.batch import Commands
from pipeline.bus.connect import Client
from pipeline.bus.records import encode_path
from pipeline.keys import Keys, text
from pipeline.matcher.gallery import Gallery
from pipeline.matcher.rules import Linked
from pipeline.store.fields import DECISIONS_MAXLEN, F16, recent_sightings, summary
from pipeline.types import TrackletEmbedding

_DECISIONS_MAXLEN = str(DECISIONS_MAXLEN)


def _sighting_args(t: TrackletEmbedding, link: Linked, feature: bytes, start: str, stream_id: str, now: str) -> list:
    """The sighting hash as HSET's field, value list; every value already str or bytes."""
    path = [] if t.path is None else ["path", encode_path(t.path, t.t_start)]
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
        *path,
        *link.decision.field_args(),
    ]  # fmt: skip


def write_links(
    w: Commands, keys: Keys, links: list[Linked], stream_ids: list[str], gallery: Gallery, ttl: float | None
) -> None:
    """A batch's sightings (``stream_ids``: their records' ids), the indexes and the identities they changed
    (each identity written once, in its state after the batch), added to ``w`` (``pipeline.bus.batch``: the
    matcher sends them, its acknowledgements last, as one script call).

    This runs for every tracklet the matcher takes in, so values are made str or bytes here, where the
    batch is at hand (one float16 conversion for all features, each key and number formatted once), and
    commands are added as ready argument lists (``Commands.add``)."""
    if not links:
        return
    now = time.time()
    at = repr(now)
    ttl_ms = str(max(1, round(ttl * 1000))) if ttl else None  # PEXPIRE: a TTL under a second stays one
    sids = [link.tracklet.tracklet_id for link in links]
    starts = [repr(link.tracklet.t_start) for link in links]
    features = np.stack([np.asarray(link.tracklet.feature, np.float32) for link in links]).astype(F16)
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
        if ttl_ms:
            w.add(["PEXPIRE", key, ttl_ms])
        by_identity.setdefault(link.identity, []).append(i)
        by_camera.setdefault(t.camera_id, []).extend((starts[i], sid))
    for camera, members in by_camera.items():
        w.zadd_args(keys.timeline(camera), members)
    last_seen: list[str] = []
    for identity, group in by_identity.items():
        name = str(identity)
        fields = summary(gallery.exemplars(identity), gallery.history(identity))
        last_seen += (fields["last_seen"], name)
        first = links[group[0]]
        if first.new:
            fields |= {"thumb": sids[group[0]], "created": at}
        key, sightings = keys.identity(name), keys.sightings(name)
        if not first.new:  # first_seen and thumb are kept from creation (the recent history is bounded), and
            # set here only where the hash is gone (expired under the matcher): never a summary without them
            w.add(["HSETNX", key, "first_seen", fields.pop("first_seen")])
            w.add(["HSETNX", key, "thumb", sids[group[0]]])
        w.hset(key, fields)
        w.zadd_args(sightings, [x for i in group for x in (starts[i], sids[i])])
        w.hset_card(key, "sightings", sightings)  # counted, not incremented: it cannot go stale
        if ttl_ms:
            w.add(["PEXPIRE", key, ttl_ms])
            w.add(["PEXPIRE", sightings, ttl_ms])
    w.zadd_args(keys.identities, last_seen, gt=True)  # GT still adds new members
    w.add(["INCR", keys.version])
    # last: the ingest marks make a re-read record a duplicate, so they follow every other write (a script
    # that fails part-way keeps what it wrote before; without the marks, the records are processed again)
    w.zadd_args(keys.ingested, [x for sid in sids for x in (at, sid)])


def next_identities(client: Client, keys: Keys, count: int) -> list[int]:
    last = int(client.incrby(keys.next_identity, count))
    return list(range(last - count + 1, last + 1))


def processed(client: Client, keys: Keys, sighting_ids: list[str]) -> list[bool]:
    """Whether each tracklet already has a sighting (one ZMSCORE on the ingest index, which a sighting
    joins in the same transaction; it outlives an expired sighting, so a late duplicate stays a duplicate)."""
    if not sighting_ids:
        return []
    return [x is not None for x in client.zmscore(keys.ingested, sighting_ids)]


def identity_ids(client: Client, keys: Keys) -> list[int]:
    return [int(x) for x in client.zrange(keys.identities, 0, -1)]


def load_gallery(client: Client, keys: Keys, chunk: int = 2000) -> Gallery:
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
            exemplars = np.frombuffer(ex, F16).astype(np.float32).reshape(-1, int(dim))
            gallery.set(n, exemplars, recent_sightings(recent))
    gallery.changes = []
    return gallery


def cannot_link(client: Client, keys: Keys) -> set[tuple[int, int]]:
    """The identity pairs merges must never join, both ways round (``P:{S}:cannot_link``; see ``unlink``)."""
    out = set()
    for raw in client.smembers(keys.cannot_link):
        a, b = text(raw).split(":")
        out |= {(int(a), int(b)), (int(b), int(a))}
    return out


def write_merge(
    w: Commands,
    client: Client,
    keys: Keys,
    source: int,
    into: int,
    score: float,
    gallery: Gallery,
    cannot_link: set[tuple[int, int]],
    carried: dict | None = None,
) -> None:
    """Move every sighting of ``source`` to ``into`` (the gallery already holds the merged identity), added
    to ``w`` (the matcher runs a pass's merges as one fenced script call).

    ``into`` takes over the pairs of ``source`` that must never be joined (``cannot_link``: the linker's, as
    the pass left it), so a pair a user split apart stays apart through any chain of merges.

    Merges of one pass can chain (3 into 2, then 2 into 1): ``carried`` holds the sightings earlier ones
    moved, which ``client`` cannot read before the script runs (``{identity: sightings}``), and the summary
    of an identity merged on in the same pass is left to the merge that removes it."""
    carried = {} if carried is None else carried
    moved = carried.pop(source, {})
    starts = {text(k): v for k, v in client.zrange(keys.sightings(source), 0, -1, withscores=True)} | moved
    for sid in starts:
        w.call("HSET", keys.sighting(sid), "identity", into)
        w.call("HSETNX", keys.sighting(sid), "merged_from", source)
    if starts:
        w.zadd(keys.sightings(into), starts)
    if into in gallery:
        fields = summary(gallery.exemplars(into), gallery.history(into))
        # the recent history is bounded: first_seen is the earlier of the two stored ones, not its minimum
        stored = [client.hget(keys.identity(n), "first_seen") for n in (source, into)]
        fields["first_seen"] = repr(min([float(fields["first_seen"])] + [float(x) for x in stored if x is not None]))
        w.hset(keys.identity(into), fields)
        w.hset_card(keys.identity(into), "sightings", keys.sightings(into))
        w.zadd(keys.identities, {str(into): float(fields["last_seen"])})
    else:  # merged on later in this pass: that merge moves these too
        carried[into] = carried.get(into, {}) | starts
    partners = sorted({b for a, b in cannot_link if a == source and b != into})
    if partners:
        w.call("SADD", keys.cannot_link, *(f"{min(into, b)}:{max(into, b)}" for b in partners))
    w.call("DEL", keys.identity(source), keys.sightings(source))
    w.call("ZREM", keys.identities, str(source))
    now = time.time()
    w.call("HSET", keys.merges, str(source), json.dumps({"into": into, "score": round(score, 4), "at": now}))
    w.xadd(
        keys.decisions,
        {"decision": "merge", "identity": into, "merged": source, "score": f"{score:.4f}", "at": repr(now)},
        maxlen=DECISIONS_MAXLEN,
    )
    w.call("INCR", keys.version)
