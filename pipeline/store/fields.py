"""How the store encodes identities and sightings in Redis hashes (keys: ``pipeline.keys``)."""

from __future__ import annotations

import json

import numpy as np

from crosscam.errors import CrosscamError
from pipeline.keys import text
from pipeline.matcher.gallery import latest
from pipeline.matcher.rules import Sighting

F16 = np.dtype("<f2")  # features and exemplars are stored as little-endian float16
DECISIONS_MAXLEN = 100_000  # entries of the decisions stream kept (approximately: MAXLEN ~)


class NotFound(CrosscamError):
    """An identity or sighting that does not exist (or has expired)."""


def recent_json(history: list[Sighting]) -> str:
    return json.dumps([[s.camera, s.track, s.t_start, s.t_end] for s in history])


def summary(exemplars: np.ndarray, history: list[Sighting]) -> dict:
    """The identity hash fields that follow from its exemplars and sightings."""
    return {
        "exemplars": exemplars.astype(F16).tobytes(),
        "dim": str(exemplars.shape[1]),
        "recent": recent_json(latest(history)),
        "first_seen": repr(min(s.t_start for s in history)),
        "last_seen": repr(max(s.t_end for s in history)),
    }


def recent_sightings(raw) -> list[Sighting]:
    return [Sighting(str(c), int(k), float(a), float(b)) for c, k, a, b in json.loads(text(raw or "[]"))]


TENTATIVE_SECONDS = 2.0  # see ``tentative``; the config's matcher.tentative_seconds


def tentative(recent: list[Sighting], seconds: float = TENTATIVE_SECONDS) -> bool:
    """Whether an identity is tentative: seen on one camera only, for less than ``seconds`` in all (its sightings'
    spans added up). A detection of no one (a reflection, a coat on a chair) the tracker kept for a moment makes
    such an identity; so does a real person glimpsed once. Queries and exports report them apart."""
    return len({s.camera for s in recent}) <= 1 and sum(s.t_end - s.t_start for s in recent) < seconds
