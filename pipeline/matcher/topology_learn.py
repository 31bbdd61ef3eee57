"""The site's topology learned from its confident links: pure estimation over stored sightings, no Redis.

A sighting is *confident* when it founded its identity (``new``, and not moved there by a merge pass), when it
joined the one identity seen at its place on the floor plan (``colocated``, a ground plane's link, whatever its
score), or its decision (``link``, ``continuity``) scored at least ``threshold + margin``. The estimates are as good as these
links: a model that links many wrong people at that score gives wide windows and spurious overlaps (the
counts behind each estimate say how much it rests on).

An identity's confident sightings give its *moves*: from its latest sighting on camera X to a later-starting
one on camera Y, when no sighting of it started between the end of the first and the start of the second (a
walk A -> B -> C is no move A -> C; cameras that watch one place at once all move on to the next). A move's
*gap* runs from the end of the first to the start of the second (negative: seen in both at once). Per
ordered camera pair:

- **transit window**: from the non-negative gaps (at least ``MIN_MOVES``), the ``LOW``-th to ``HIGH``-th
  percentile, widened on each side by ``WIDEN`` of its width (at least ``MIN_WIDEN`` seconds), the low end
  not below 0. The percentiles keep one wrong link from stretching the window; the widening leaves room
  for the people the sample missed.
- **overlap** (both directions pooled): the views overlap when at least ``OVERLAP_SHARE`` of the pair's
  moves (and at least ``MIN_OVERLAPS``) have a negative gap; people seen in both at the same moment are
  otherwise impossible. Such a pair's window, with too few gaps of its own, is ``[0, largest gap +
  MIN_WIDEN]``.

A pair with fewer than ``MIN_MOVES`` moves (and no overlap) is not listed: unconstrained, and a config that
lists only one direction gives the other the same window. Estimates are written as the site config's
``matcher.topology`` entries (``entries``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.matcher.evidence import StoredSighting

LOW, HIGH = 5.0, 95.0  # percentiles of the transit gaps that bound the window
WIDEN = 0.1  # share of the window's width added on each side
MIN_WIDEN = 0.5  # seconds added on each side at least
MIN_MOVES = 3  # moves (and transit gaps) a pair needs to be listed (to get a window)
OVERLAP_SHARE = 0.2  # share of a pair's moves seen in both views at once that marks the views overlapping
MIN_OVERLAPS = 2
LINKED = ("link", "continuity")


@dataclass(frozen=True)
class PairEstimate:
    """What the confident links say of one ordered camera pair (``cameras``: from, to)."""

    cameras: tuple[str, str]
    moves: int  # moves of one identity from the first camera to the second
    overlapping: int  # moves between the two, either way, seen in both at once
    both_ways: int  # moves between the two, either way
    gaps: tuple[float, ...]  # the non-negative gaps of this direction, seconds, sorted
    window: tuple[float, float] | None  # the transit window (None: too few gaps)
    overlap: bool

    def as_dict(self) -> dict:
        return {
            "cameras": list(self.cameras),
            "moves": self.moves,
            "overlapping": self.overlapping,
            "both_ways": self.both_ways,
            "transit_gaps": len(self.gaps),
            "window": None if self.window is None else [round(x, 2) for x in self.window],
            "overlap": self.overlap,
            "gap_percentiles": (
                {f"p{p:g}": round(float(np.percentile(self.gaps, p)), 2) for p in (LOW, 50.0, HIGH)}
                if self.gaps
                else {}
            ),
        }


def confident(s: StoredSighting, threshold: float, margin: float) -> bool:
    """Whether ``s`` belongs to its identity with confidence (see the module's docstring)."""
    if s.decision == "new":
        return not s.merged
    if s.decision == "colocated":
        return True
    return s.decision in LINKED and not math.isnan(s.score) and s.score >= threshold + margin


def moves(sightings: Iterable[StoredSighting], threshold: float, margin: float) -> dict[tuple[str, str], list[float]]:
    """Per ordered camera pair, the gaps (seconds) of every move between them in an identity's confident
    sightings (see the module's docstring)."""
    by_identity: dict[int, list[StoredSighting]] = defaultdict(list)
    for s in sightings:
        if confident(s, threshold, margin):
            by_identity[s.identity].append(s)
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for history in by_identity.values():
        history.sort(key=lambda s: (s.t_start, s.t_end, s.sighting))
        latest: dict[str, int] = {}  # camera -> index of its latest sighting so far
        for j, b in enumerate(history):
            for camera, i in latest.items():
                a = history[i]
                if camera == b.camera or any(a.t_end < history[k].t_start < b.t_start for k in range(i + 1, j)):
                    continue
                out[(a.camera, b.camera)].append(b.t_start - a.t_end)
            latest[b.camera] = j
    return dict(out)


def window_of(gaps: Sequence[float]) -> tuple[float, float]:
    """The transit window of non-negative ``gaps`` (see the module's docstring)."""
    lo, hi = (float(x) for x in np.percentile(np.asarray(gaps, np.float64), [LOW, HIGH]))
    pad = max(MIN_WIDEN, WIDEN * (hi - lo))
    return max(0.0, lo - pad), hi + pad


def learn_topology(
    sightings: Iterable[StoredSighting], threshold: float, margin: float, min_moves: int = MIN_MOVES
) -> list[PairEstimate]:
    """Every ordered camera pair with at least ``min_moves`` confident moves, or overlapping views, sorted."""
    found = moves(sightings, threshold, margin)
    out = []
    for (a, b), gaps in sorted(found.items()):
        both = gaps + found.get((b, a), [])
        overlapping = sum(g < 0 for g in both)
        overlap = overlapping >= MIN_OVERLAPS and overlapping >= OVERLAP_SHARE * len(both)
        if len(gaps) < min_moves and not overlap:
            continue
        after = sorted(g for g in gaps if g >= 0)
        if len(after) >= min_moves:
            window = window_of(after)
        elif overlap:  # seen mostly in both at once: the few moves out of view bound the window
            window = (0.0, (after[-1] if after else 0.0) + MIN_WIDEN)
        else:
            window = None
        out.append(PairEstimate((a, b), len(gaps), overlapping, len(both), tuple(after), window, overlap))
    return out


def entries(estimates: Iterable[PairEstimate]) -> list[dict]:
    """The estimates with a window as ``matcher.topology`` entries of a site config (seconds to 0.1 s, the
    window rounded outwards)."""
    return [
        {
            "from": e.cameras[0],
            "to": e.cameras[1],
            "min": math.floor(e.window[0] * 10) / 10,
            "max": math.ceil(e.window[1] * 10) / 10,
            "overlap": e.overlap,
        }
        for e in estimates
        if e.window is not None
    ]
