"""How a scene's cameras are laid out: which of them share a view, and how long the walk between two views takes.

``apart`` (the default): no two views overlap, and the walk from any view to another takes APART_TRANSIT.
``site``: cameras named in overlapping pairs form groups that watch the same walkway from different angles
(a person passing one camera of a group is seen by all of them over the same seconds, at one place on the
group's floor that each camera sees from its own side: ``synth.floor``). Groups are closed under overlap: 0-1
and 1-2 make 0, 1 and 2 one group. Each ordered pair of groups has its own transit window [min, max], drawn
once per scene (min in SITE_TRANSIT_MIN, width in SITE_TRANSIT_WIDTH); a walker's gap between leaving one
group and entering the next is drawn inside it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from synth.floor import seen_as
from synth.visits import Visit

LAYOUTS = ("apart", "site")
APART_TRANSIT = (1.5, 4.0)  # seconds between two views, any pair, in the apart layout
VISIT_SECONDS = (4.0, 7.0)  # how long crossing a view takes
SITE_TRANSIT_MIN = (1.0, 8.0)  # seconds: a window's lower end is drawn in this range
SITE_TRANSIT_WIDTH = (2.0, 4.0)  # seconds: and its width in this one
SITE_HOPS = (3, 6)  # a walker of the site layout passes this many groups (inclusive), the scene's end permitting


@dataclass(frozen=True)
class Layout:
    """The truth of a layout: camera groups that share a view, and the transit window of each ordered pair of
    groups (indices into ``groups``; seconds)."""

    groups: tuple[tuple[int, ...], ...]
    windows: dict[tuple[int, int], tuple[float, float]]

    def camera_windows(self) -> dict[tuple[int, int], tuple[float, float]]:
        """The transit window of each ordered pair of cameras that do not share a view."""
        return {
            (a, b): window for (i, j), window in self.windows.items() for a in self.groups[i] for b in self.groups[j]
        }

    def overlapping_pairs(self) -> set[frozenset[int]]:
        return {frozenset(pair) for g in self.groups for pair in itertools.combinations(g, 2)}


def camera_groups(cameras: int, overlap: tuple[tuple[int, int], ...]) -> tuple[tuple[int, ...], ...]:
    """Cameras ``0 .. cameras-1`` joined by ``overlap`` pairs into groups (connected components), ordered by
    their lowest camera."""
    group = list(range(cameras))

    def root(c: int) -> int:
        while group[c] != c:
            c = group[c]
        return c

    for a, b in overlap:
        ra, rb = root(a), root(b)
        group[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for c in range(cameras):
        members.setdefault(root(c), []).append(c)
    return tuple(tuple(m) for _, m in sorted(members.items()))


def apart_layout(cameras: int) -> Layout:
    groups = tuple((c,) for c in range(cameras))
    return Layout(groups, {pair: APART_TRANSIT for pair in itertools.permutations(range(cameras), 2)})


def site_layout(cameras: int, overlap: tuple[tuple[int, int], ...], rng: np.random.Generator) -> Layout:
    """Groups from ``overlap`` and a transit window for each ordered pair of groups, drawn from ``rng``."""
    groups = camera_groups(cameras, overlap)
    windows = {}
    for pair in itertools.permutations(range(len(groups)), 2):
        low = float(rng.uniform(*SITE_TRANSIT_MIN))
        windows[pair] = (low, low + float(rng.uniform(*SITE_TRANSIT_WIDTH)))
    return Layout(groups, windows)


def site_walks(
    pids: list[int], layout: Layout, seconds: float, arrivals: float, rng: np.random.Generator
) -> list[Visit]:
    """Each of ``pids`` arrives within ``arrivals`` of the scene's ``seconds`` and walks through SITE_HOPS groups
    (never the same twice in a row), seen by every camera of a group over the same seconds; the gap between two
    groups lies inside their transit window."""
    visits = []
    for pid in pids:
        t = rng.uniform(0, seconds * arrivals)
        g = int(rng.integers(len(layout.groups)))
        for _ in range(int(rng.integers(SITE_HOPS[0], SITE_HOPS[1] + 1))):
            dur = rng.uniform(*VISIT_SECONDS)
            if t + dur > seconds:
                break
            group = layout.groups[g]
            draws = [(float(rng.uniform(0, 1)), bool(rng.random() < 0.5)) for _ in group]
            if len(group) == 1:
                visits.append(Visit(pid, group[0], t, t + dur, *draws[0]))
            else:  # one place on the group's floor, seen from each camera's side (synth.floor)
                depth, backward = draws[0]
                for position, cam in enumerate(group):
                    visits.append(Visit(pid, cam, t, t + dur, *seen_as(position, depth, backward), floor=True))
            if len(layout.groups) == 1:
                break
            following = int(rng.integers(len(layout.groups) - 1))
            following += following >= g  # any group but this one
            t += dur + rng.uniform(*layout.windows[(g, following)])
            g = following
    return visits
