"""Per-frame tracks out of the store: every stored sighting's box in every frame, with its current identity."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.bus.connect import Client
from pipeline.bus.records import RecordError, decode_path
from pipeline.keys import Keys, text

_FIELDS = ("identity", "track", "t_start", "path")


@dataclass(frozen=True, eq=False)
class SightingPath:
    """One stored sighting's boxes: ``path`` float64[N,7] (``pipeline.types.PATH_COLUMNS``)."""

    sighting: str
    camera: str
    identity: int
    track: int
    path: np.ndarray


def camera_ids(client: Client, keys: Keys) -> list[str]:
    """The cameras that have stored sightings or reported a status, sorted."""
    names = {text(x) for x in client.smembers(keys.cameras)}
    prefix = keys.timeline("")
    names |= {text(k)[len(prefix) :] for k in client.scan_iter(match=prefix + "*", count=1000)}
    return sorted(names)


def sighting_paths(
    client: Client, keys: Keys, camera: str, chunk: int = 500, skipped: dict[str, int] | None = None
) -> Iterator[SightingPath]:
    """The sightings of ``camera`` in start order that carry per-frame boxes (stored from records with a ``path``);
    a sighting without one, expired, or with a damaged path is counted in ``skipped`` (by reason) and left out."""
    sids = [text(x) for x in client.zrange(keys.timeline(camera), 0, -1)]
    for i in range(0, len(sids), chunk):
        part = sids[i : i + chunk]
        pipe = client.pipeline(transaction=False)
        for sid in part:
            pipe.hmget(keys.sighting(sid), *_FIELDS)
        for sid, (identity, track, t_start, raw) in zip(part, pipe.execute(), strict=True):
            reason = "expired" if identity is None else "no_path" if raw is None else None
            if reason is None:
                try:
                    path = decode_path(bytes(raw), float(t_start))
                except (RecordError, ValueError):
                    reason = "damaged"
            if reason is not None:
                if skipped is not None:
                    skipped[reason] = skipped.get(reason, 0) + 1
                continue
            yield SightingPath(sid, camera, int(identity), int(track), path)
