"""Reading what the matcher stored: sightings, a person's history, persons seen, explanations, search."""

from __future__ import annotations

import json

import numpy as np

from pipeline.bus.connect import Client
from pipeline.keys import Keys, text
from pipeline.matcher.gallery import Gallery
from pipeline.store.fields import TENTATIVE_SECONDS, NotFound, recent_sightings, tentative
from pipeline.store.views import Explanation, History, MergeStep, PersonSummary, SearchHit, SightingView


def _merge_chain(client: Client, keys: Keys, identity: int) -> list[MergeStep]:
    """The merges that carried ``identity`` into others, in order."""
    chain: list[MergeStep] = []
    for _ in range(64):
        raw = client.hget(keys.merges, str(identity))
        if raw is None:
            break
        m = json.loads(raw)
        chain.append(MergeStep(from_=identity, into=int(m["into"]), score=m["score"]))
        identity = int(m["into"])
    return chain


def resolve(client: Client, keys: Keys, identity: int) -> int:
    """Follow merges: the identity that now holds ``identity``'s sightings."""
    chain = _merge_chain(client, keys, identity)
    return chain[-1].into if chain else identity


def _sighting_fields(sid: str, h: dict) -> dict:
    """A sighting hash (or the fields of it read) as ``SightingView``'s fields."""
    g = {text(k): v for k, v in h.items()}
    out: dict = {"sighting": sid}
    for k in ("camera", "model", "decision", "reason", "stream_id"):
        out[k] = text(g.get(k, b""))
    for k in ("identity", "track", "seq", "excluded", "best", "runner_up"):
        out[k] = int(g[k]) if g.get(k) not in (None, b"") else None
    for k in ("t_start", "t_end", "score", "runner_up_score", "ingested"):
        out[k] = float(g[k]) if g.get(k) not in (None, b"") else None
    return out


def sighting(client: Client, keys: Keys, sid: str) -> SightingView:
    """A stored sighting; ``NotFound`` when there is none (or it expired)."""
    h = client.hgetall(keys.sighting(sid))
    if not h:
        raise NotFound(f"no sighting {sid!r} in site {keys.site!r}; sighting ids look like camera:track:seq")
    return SightingView(**_sighting_fields(sid, h))


def thumbnail(client: Client, keys: Keys, sid: str) -> bytes:
    """A sighting's thumbnail (JPEG bytes)."""
    data = client.hget(keys.sighting(sid), "thumb")
    if data is None:
        raise NotFound(f"no sighting {sid!r} in site {keys.site!r}")
    return bytes(data)


_LIST_FIELDS = ("identity", "camera", "track", "seq", "t_start", "t_end", "score", "decision")


def history(client: Client, keys: Keys, identity: int) -> History:
    """An identity's cross-camera history: its sightings in time order, with cameras and scores."""
    current = resolve(client, keys, identity)
    summary = client.hmget(keys.identity(current), "first_seen", "last_seen", "sightings", "thumb")
    if summary[2] is None:
        raise NotFound(f"no person {identity} in site {keys.site!r}; `crosscam persons` lists them")
    sids = [text(x) for x in client.zrange(keys.sightings(current), 0, -1)]
    pipe = client.pipeline(transaction=False)
    for sid in sids:
        pipe.hmget(keys.sighting(sid), *_LIST_FIELDS)
    rows = []
    for sid, values in zip(sids, pipe.execute(), strict=True):
        if values[0] is None:
            continue  # expired
        rows.append(SightingView(**_sighting_fields(sid, dict(zip(_LIST_FIELDS, values, strict=True)))))
    rows.sort(key=lambda r: (r.t_start, r.sighting))
    return History(
        person=current,
        asked=identity,
        first_seen=float(summary[0]) if summary[0] else None,
        last_seen=float(summary[1]) if summary[1] else None,
        cameras=list(dict.fromkeys(r.camera for r in rows)),
        thumb=text(summary[3]) if summary[3] else (rows[0].sighting if rows else None),
        sightings=rows,
    )


def persons(
    client: Client,
    keys: Keys,
    camera: str | None = None,
    since: float | None = None,
    limit: int = 1000,
    tentative_seconds: float = TENTATIVE_SECONDS,
    everyone: bool = True,
) -> list[PersonSummary]:
    """Identities seen (on ``camera``) since ``since`` (stream time), most recent first; each marked ``tentative``
    by ``fields.tentative`` at ``tentative_seconds``, and left out unless ``everyone``."""
    low = "-inf" if since is None else since
    if camera is None:
        ids = [int(x) for x in client.zrevrangebyscore(keys.identities, "+inf", low, start=0, num=limit)]
    else:
        sids = [text(x) for x in client.zrevrangebyscore(keys.timeline(camera), "+inf", low)]
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
        recent = recent_sightings(recent)
        if first is None or last is None or thumb is None:  # partial: see ``_fill_partial``
            filled = _fill_partial(client, keys, n, first, last, thumb, recent)
            if filled is None:
                continue
            first, last, thumb = filled
        cams = list(dict.fromkeys(s.camera for s in recent))
        unsure = tentative(recent, tentative_seconds)
        if unsure and not everyone:
            continue
        out.append(
            PersonSummary(
                person=n,
                first_seen=float(first),
                last_seen=float(last),
                sightings=int(count),
                cameras=cams,
                thumb=text(thumb),
                tentative=unsure,
            )
        )
    return out


def _fill_partial(client: Client, keys: Keys, identity: int, first, last, thumb, recent: list) -> tuple | None:
    """An identity hash that lacks ``first_seen``, ``last_seen`` or ``thumb`` (older versions wrote such a hash
    when a person was seen again after the TTL expired the first one): its summary filled from what is stored,
    ``first_seen`` from its recent sightings, ``last_seen`` from them too, ``thumb`` its earliest stored
    sighting. None, and the person left out of lists, when it has no stored sighting to show."""
    earliest = client.zrange(keys.sightings(identity), 0, 0)
    if not earliest or (last is None and not recent):
        return None
    if last is None:
        last = max(s.t_end for s in recent)
    if first is None:
        first = min((s.t_start for s in recent), default=float(last))
    return first, last, thumb if thumb is not None else earliest[0]


def explain(client: Client, keys: Keys, sid: str) -> Explanation:
    """Why a sighting belongs to its person: the decision with its score and runner-up, and any merges."""
    view = sighting(client, keys, sid)
    first = client.hget(keys.sighting(sid), "merged_from")
    identity = int(first) if first is not None else view.identity
    chain = _merge_chain(client, keys, identity)
    return Explanation(**view.model_dump(), merges=chain, person=chain[-1].into if chain else identity)


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


def search_histories(
    client: Client, keys: Keys, gallery: Gallery, feature: np.ndarray, top_k: int = 5
) -> list[SearchHit]:
    """``search`` with each hit's score rounded and its history: what the CLI and the API answer."""
    return [
        SearchHit(person=p, score=round(s, 4), history=history(client, keys, p))
        for p, s in search(gallery, feature, top_k)
    ]
