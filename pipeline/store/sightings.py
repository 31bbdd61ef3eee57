"""Every stored sighting of a site with its feature, for estimating from the site's own footage
(``pipeline.matcher.evidence``): self-calibration and the learned topology."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from pipeline.bus.connect import Client
from pipeline.keys import Keys, text
from pipeline.matcher.evidence import SiteEvidence, StoredSighting
from pipeline.store.fields import F16

_FIELDS = (
    "identity", "camera", "track", "seq", "t_start", "t_end", "decision", "score", "model", "merged_from", "feature",
)  # fmt: skip


def _number(raw, kind=float):
    return kind(raw) if raw not in (None, b"", "") else None


def read_sightings(client: Client, keys: Keys, features: bool = True, chunk: int = 2000) -> list[tuple]:
    """``(StoredSighting, float32[D] | None)`` for every sighting in the site's ingest index that is still
    stored, in ingest order (expired or malformed ones are left out). ``features``: read the features too."""
    sids = [text(s) for s in client.zrange(keys.ingested, 0, -1)]
    wanted = _FIELDS if features else _FIELDS[:-1]
    out = []
    for i in range(0, len(sids), chunk):
        pipe = client.pipeline(transaction=False)
        for sid in sids[i : i + chunk]:
            pipe.hmget(keys.sighting(sid), *wanted)
        for sid, values in zip(sids[i : i + chunk], pipe.execute(), strict=True):
            row = dict(zip(wanted, values, strict=True))
            identity, track, seq = (_number(row[k], int) for k in ("identity", "track", "seq"))
            start, end = _number(row["t_start"]), _number(row["t_end"])
            if None in (identity, track, seq, start, end) or not row["camera"]:
                continue
            score = _number(row["score"])
            s = StoredSighting(
                sid,
                identity,
                text(row["camera"]),
                track,
                seq,
                start,
                end,
                text(row["decision"]),
                math.nan if score is None else score,
                text(row["model"]),
                row["merged_from"] is not None,
            )
            raw = row.get("feature")
            out.append((s, np.frombuffer(raw, F16).astype(np.float32) if raw else None))
    return out


def site_evidence(client: Client, keys: Keys, model: str | None = None) -> SiteEvidence:
    """The site's sightings of ``model`` (default: the model of most sightings) that have a feature."""
    rows = [(s, f) for s, f in read_sightings(client, keys) if f is not None]
    if model is None and rows:
        model = Counter(s.model for s, _ in rows).most_common(1)[0][0]
    rows = [(s, f) for s, f in rows if s.model == model]
    dims = Counter(len(f) for _, f in rows)
    if len(dims) > 1:  # one model has one feature size: anything else is damaged
        size = dims.most_common(1)[0][0]
        rows = [(s, f) for s, f in rows if len(f) == size]
    features = np.stack([f for _, f in rows]) if rows else np.zeros((0, 0), np.float32)
    if len(features):
        features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return SiteEvidence(tuple(s for s, _ in rows), features, model or "")
