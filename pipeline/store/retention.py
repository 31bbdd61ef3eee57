"""Retention of a site's streams: entries older than a wall-clock time are removed (pure Redis commands).

Sightings and persons are pruned by ``maintenance.prune`` (and expired by ``matcher.ttl``); the streams keep
their own copies of what retention must forget: the tracklet stream holds every record's thumbnail and
feature, the dead-letter stream the records the matcher refused (with theirs), the decisions stream who was
linked to whom and when. ``trim_streams`` removes a stream's entries by their id, which is the wall-clock
time (ms) Redis added them at (``XTRIM ... MINID``, exact).

Trimming the tracklet stream removes records older than the cut-off whether the matcher has read them or
not: that is what retention means. A record the matcher had not processed yet is gone with its personal data
(the matcher reports such records as trimmed).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.bus.connect import Client
from pipeline.keys import Keys, text


def min_id(before: float) -> str:
    """The first stream id at or after wall-clock time ``before`` (seconds): entries below it are older."""
    return f"{max(0, int(before * 1000))}-0"


def trim_streams(client: Client, keys: Iterable[str], before: float) -> dict[str, int]:
    """Remove the entries of each stream in ``keys`` added before ``before`` (wall-clock seconds); how many
    went from each. A key that does not exist, or is not a stream, is left alone (0)."""
    removed = {}
    for key in keys:
        kind = client.type(key)
        removed[key] = int(client.xtrim(key, minid=min_id(before), approximate=False)) if text(kind) == "stream" else 0
    return removed


def trim_site(client: Client, keys: Keys, before: float) -> dict[str, int]:
    """``trim_streams`` on a site's tracklet, decisions and dead-letter streams, by name: ``tracklets``,
    ``decisions``, ``dead_letters``."""
    names = {keys.tracklets: "tracklets", keys.decisions: "decisions", keys.dead: "dead_letters"}
    return {names[key]: n for key, n in trim_streams(client, names, before).items()}
