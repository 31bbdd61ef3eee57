"""People who stay put in one camera's view: seated (a shorter box) or standing still, for most of the scene
or for a spell of STAY_SECONDS, walking in and out at the view's edges. The first of them stays at the frame's
edge, only partly in view (EDGE_VISIBLE of their box). They share no view with another camera, even where
the layout has overlapping cameras: overlapping views share a walkway, not the seats."""

from __future__ import annotations

import numpy as np

from synth.visits import STILL_WIDTH, Stay, Visit

SEATED_SHARE = (0.6, 0.7)  # a seated person's box height, of a standing person's at the same depth
STANDING = 0.3  # share of stationary people who stand rather than sit
LONG_STAY = 0.5  # share who are there from the start and stay for most of the scene (the others: one spell)
LONG_RISE = (0.6, 1.2)  # when a long stayer gets up, of the scene's length (too late to walk out: stays to the end)
STAY_SECONDS = (20.0, 60.0)  # a spell's length, at most SPELL_SHARE of the scene
SPELL_SHARE = 0.8
EDGE_VISIBLE = (0.5, 0.75)  # share of the box in the frame for the person at the edge
CROSSING_SECONDS = (4.0, 7.0)  # walking pace: the time to cross the whole view, as walkers do


def stationary_visits(
    pids: list[int], cameras: int, seconds: float, width: int, height: int, rng: np.random.Generator
) -> list[Visit]:
    """One visit with a ``Stay`` for each of ``pids`` in a camera of ``0 .. cameras-1``, drawn from ``rng``."""
    visits = []
    for k, pid in enumerate(pids):
        camera, depth = int(rng.integers(cameras)), float(rng.uniform(0, 1))
        share = 1.0 if rng.random() < STANDING else float(rng.uniform(*SEATED_SHARE))
        ph = height * (0.45 + 0.3 * depth)
        pw, still_w = ph * 0.45, STILL_WIDTH * share * ph  # box widths walking and still
        speed = (width + pw) / rng.uniform(*CROSSING_SECONDS)  # pixels a second
        if k == 0:  # at an edge, partly out of the frame
            inside = rng.uniform(*EDGE_VISIBLE)
            from_left = to_left = bool(rng.random() < 0.5)
            x = still_w * (inside - 0.5) if from_left else width - still_w * (inside - 0.5)
        else:
            x = float(rng.uniform(still_w / 2, width - still_w / 2))
            from_left, to_left = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        walk_in = abs(x - (-pw / 2 if from_left else width + pw / 2)) / speed
        walk_out = abs(x - (-pw / 2 if to_left else width + pw / 2)) / speed
        if rng.random() < LONG_STAY:
            t_enter = t_still = 0.0
            t_rise = float(rng.uniform(*LONG_RISE)) * seconds
        else:
            spell = min(float(rng.uniform(*STAY_SECONDS)), SPELL_SHARE * seconds)
            t_enter = float(rng.uniform(0, max(0.0, seconds - spell - walk_in - walk_out)))
            t_still = t_enter + walk_in
            t_rise = t_still + spell
        t_exit = t_rise + walk_out
        if t_exit > seconds:  # no time left to walk out: stays to the end
            t_rise = t_exit = seconds
        stay = Stay(float(x), share, t_still, t_rise, from_left, to_left)
        visits.append(Visit(pid, camera, t_enter, t_exit, depth, to_left, stay))
    return visits
