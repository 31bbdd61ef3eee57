"""The linker: the matching rules (``pipeline.matcher.rules``) applied to batches of tracklets over an
in-memory gallery (``pipeline.matcher.gallery``). Pure: no Redis, no threads; the matcher process
(``pipeline.matcher.consumer``) and the calibration replay both drive it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.matcher.gallery import Gallery
from pipeline.matcher.ground import Placement, PlanSighting, PlanTrack, apart, place
from pipeline.matcher.rules import (
    Linked,
    MatchPolicy,
    Sighting,
    decide,
    histories_cost,
    merge_exemplars,
    update_exemplars,
)
from pipeline.types import TrackletEmbedding


def _recorded(ranked: Iterator[tuple[int, float]], into: list) -> Iterator[tuple[int, float]]:
    """``ranked``, each item also appended to ``into`` as it is read."""
    for item in ranked:
        into.append(item)
        yield item


@dataclass
class Linker:
    """The matching rules over an in-memory gallery; ``allocate(n)`` hands out new identity ids.

    Merge candidates come from linking itself: each tracklet's ranking is read down to ``merge_threshold``,
    and every other identity above it is recorded as a candidate pair with the identity the tracklet ends
    in. Every pair of features is scored when the later of the two arrives, so the candidates since the
    last pass are all the pairs that may have come to agree, and the merge pass needs no scoring of its
    own.

    With a ground plane (``policy.ground``) each tracklet with a path on a camera with a homography is placed
    on the floor plan against the identities' recent plan tracks (``pipeline.matcher.ground.place``), and its
    own plan track joins its identity's."""

    policy: MatchPolicy
    allocate: Callable[[int], list[int]]
    gallery: Gallery = field(default_factory=Gallery)
    cannot_link: set[tuple[int, int]] = field(default_factory=set)
    candidates: dict[tuple[int, int], float] = field(default_factory=dict)  # (lower id, higher id) -> score

    def link(self, batch: list[TrackletEmbedding]) -> list[Linked]:
        if not batch:
            return []
        g, p = self.gallery, self.policy
        features = np.stack([np.asarray(t.feature, np.float32) for t in batch])
        snap = g.snapshot(features, batch=True)
        out, opened, near = [], 0, []
        for i, t in enumerate(batch):
            s = Sighting(t.camera_id, t.track_id, t.t_start, t.t_end)
            continuing = g.continuing(t.camera_id, t.track_id, t.t_start, p.continuity_gap)
            ranked, heard = snap.ranked(i), []
            plan = p.ground.track(t.camera_id, t.path) if p.ground is not None else None
            placement = self._place(plan, t.camera_id, features[i]) if plan is not None else None
            d = decide(_recorded(ranked, heard), g.history, s, p, continuing, placement)
            if not heard or heard[-1][1] >= p.merge_threshold:
                for item in ranked:  # the rest of the ranking down to the merge threshold
                    heard.append(item)
                    if item[1] < p.merge_threshold:
                        break
            new = d.identity is None
            identity = -opened - 1 if new else d.identity  # a placeholder until the batch ends
            opened += new
            exemplars = np.zeros((0, len(features[i])), np.float32) if new else g.exemplars(identity)
            updated = update_exemplars(exemplars, features[i], p.exemplars, p.duplicate)
            if updated is not exemplars:  # unchanged (a near repeat): nothing to re-score
                g.set(identity, updated)
            g.add_sighting(identity, s)
            if plan is not None:
                g.add_plan(identity, PlanSighting(t.camera_id, plan))
            out.append(Linked(t, identity, d, new))
            near.append([(other, score) for other, score in heard if score >= p.merge_threshold])
        if p.ground is not None:
            g.forget_plans(max(t.t_end for t in batch) - p.ground.keep)
        out, real = self._name_new(out, opened)
        for r, others in zip(out, near, strict=True):
            for other, score in others:
                other = real.get(other, other)
                if other != r.identity:
                    key = (min(other, r.identity), max(other, r.identity))
                    self.candidates[key] = max(self.candidates.get(key, score), score)
        return out

    def _place(self, plan: PlanTrack, camera: str, feature: np.ndarray) -> Placement:
        """Where ``plan`` (a tracklet's plan track on ``camera``) stands against the identities' recent plan
        tracks, with the near identities' scores."""
        g = self.gallery
        placement = place(plan, camera, g.recent_plans(), self.policy.ground)
        if not placement.near:
            return placement
        return replace(placement, scores={i: g.score(i, feature) for i in placement.near if i in g})

    def _name_new(self, out: list[Linked], opened: int) -> tuple[list[Linked], dict[int, int]]:
        """Give the identities opened in a batch their ids (one ``allocate`` call, so ids have no gaps);
        returns the renamed results and ``placeholder -> id``."""
        if not opened:
            return out, {}
        real = dict(zip(range(-1, -opened - 1, -1), self.allocate(opened), strict=True))
        self.gallery.rename(real)
        renamed = [
            replace(
                r,
                identity=real.get(r.identity, r.identity),
                decision=r.decision.renamed(real),
            )
            for r in out
        ]
        return renamed, real

    def forget(self, identities: list[int]) -> None:
        """Take identities out of the gallery and the merge candidates (their keys expired in the store): a
        tracklet of the same person is then a new identity."""
        if not identities:
            return
        self.gallery.remove_all(identities)
        gone = set(identities)
        self.candidates = {k: v for k, v in self.candidates.items() if k[0] not in gone and k[1] not in gone}

    def merges(self) -> list[tuple[int, int, float]]:
        """One merge pass over the candidate pairs recorded since the last: best pair first (a pair's score
        is the best a tracklet of one reached with an exemplar of the other, so this is single-linkage
        clustering), each merged when its histories fit together and a user did not split it with
        ``unlink`` (an identity merged into another hands its cannot-link pairs on to it); returns (source,
        into, score) and applies them to the gallery. The younger identity (higher id) goes into the older."""
        g, p = self.gallery, self.policy
        pairs, self.candidates = self.candidates, {}
        into_of: dict[int, int] = {}  # merged identity -> where it went

        def root(i: int) -> int:
            while i in into_of:
                i = into_of[i]
            return i

        done: list[tuple[int, int, float]] = []
        for (a, b), score in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
            a, b = root(a), root(b)
            if a == b or a not in g or b not in g or (a, b) in self.cannot_link:
                continue
            cost = histories_cost(g.history(a), g.history(b), p.topology)
            if cost == math.inf or (cost > 0 and score - cost < p.merge_threshold):  # a soft move's penalty
                continue
            if p.ground is not None and apart(g.plans_of(a), g.plans_of(b), p.ground):
                continue  # seen apart on the floor plan at the same moments
            source, into = max(a, b), min(a, b)
            merged = merge_exemplars(g.exemplars(into), g.exemplars(source), p.exemplars, p.duplicate)
            history = g.history(into) + g.history(source)
            g.join_plans(source, into)
            g.remove(source)
            g.set(into, merged, history)
            into_of[source] = into
            # ``into`` now holds the sightings a user split from ``source``'s partners: it keeps them apart too
            for other in [y for x, y in self.cannot_link if x == source and y != into]:
                self.cannot_link |= {(into, other), (other, into)}
            done.append((source, into, score))
        return done
