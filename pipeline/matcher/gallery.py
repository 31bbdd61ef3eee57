"""The matcher's in-memory gallery: every identity's exemplars in one matrix, scored in batches.

A batch of tracklets is scored against a snapshot of the matrix with one matrix product; an identity that
changes while the batch is processed is re-scored exactly, once per change, against the whole batch (a
small product over its current exemplar rows), so the result equals processing the tracklets one by one.
The gallery keeps a log of changed identities; a snapshot reads the part of the log written after it was
taken.

With a ground plane, the gallery also holds each identity's recent plan tracks (``pipeline.matcher.ground``), in
memory only: a gallery loaded from Redis has none, so its sightings are not constrained by the plan.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.matcher.ground import PlanSighting
from pipeline.matcher.rules import Sighting

HISTORY = 32  # recent sightings kept per identity for the space-time constraints


def _end(s: Sighting) -> float:
    return s.t_end


def latest(history: Iterable[Sighting]) -> list[Sighting]:
    """The ``HISTORY`` latest sightings by end time, oldest first: what is kept of an identity's history."""
    return sorted(history, key=_end)[-HISTORY:]


@dataclass
class _Identity:
    rows: list[int]
    history: list[Sighting]


class Gallery:
    def __init__(self, dim: int | None = None, capacity: int = 1024) -> None:
        self.dim = dim
        self.matrix = np.zeros((capacity, dim or 1), np.float32)
        self.owner = np.full(capacity, -1, np.int64)
        self.used = 0
        self.free: list[int] = []
        self.identities: dict[int, _Identity] = {}
        self.tracks: dict[tuple[str, int], tuple[int, float]] = {}  # (camera, track) -> (identity, t_end)
        # (identity, rows it held before) for each set, remove or rename since the last batch snapshot
        self.changes: list[tuple[int, list[int]]] = []
        self.plans: dict[int, list[PlanSighting]] = {}  # identity -> its recent plan tracks (in memory only)

    def __len__(self) -> int:
        return len(self.identities)

    def __contains__(self, identity: int) -> bool:
        return identity in self.identities

    # --- contents -----------------------------------------------------------------------------------
    def _row(self) -> int:
        if self.free:
            return self.free.pop()
        if self.used == len(self.matrix):
            grow = len(self.matrix)
            self.matrix = np.concatenate([self.matrix, np.zeros((grow, self.matrix.shape[1]), np.float32)])
            self.owner = np.concatenate([self.owner, np.full(grow, -1, np.int64)])
        self.used += 1
        return self.used - 1

    def exemplars(self, identity: int) -> np.ndarray:
        return self.matrix[self.identities[identity].rows]

    def history(self, identity: int) -> list[Sighting]:
        entry = self.identities.get(identity)
        return entry.history if entry else []

    def set(self, identity: int, exemplars: np.ndarray, history: list[Sighting] | None = None) -> None:
        """Put ``identity`` with these exemplars (and sightings, when given) into the gallery."""
        exemplars = np.asarray(exemplars, np.float32)
        if self.dim is None:
            self.dim = exemplars.shape[1]
            self.matrix = np.zeros((len(self.matrix), self.dim), np.float32)
        if exemplars.shape[1] != self.dim:
            raise ValueError(f"feature size {exemplars.shape[1]} does not match the gallery's {self.dim}")
        entry = self.identities.get(identity)
        old_rows = entry.rows if entry else []
        self.changes.append((identity, old_rows))
        for r in old_rows:
            self.owner[r] = -1
        self.free.extend(old_rows)
        rows = [self._row() for _ in range(len(exemplars))]
        self.matrix[rows] = exemplars
        self.owner[rows] = identity
        if history is None:  # sightings unchanged (already sorted, bounded and noted)
            self.identities[identity] = _Identity(rows, entry.history if entry else [])
            return
        self.identities[identity] = _Identity(rows, latest(history))
        for s in self.identities[identity].history:
            self._note_track(identity, s)

    def add_sighting(self, identity: int, sighting: Sighting) -> None:
        history = self.identities[identity].history
        history.append(sighting)
        if len(history) > 1 and history[-2].t_end > sighting.t_end:  # out of order: rare
            history.sort(key=_end)
        if len(history) > HISTORY:
            del history[0]
        self._note_track(identity, sighting)

    def _note_track(self, identity: int, s: Sighting) -> None:
        key = (s.camera, s.track)
        if key not in self.tracks or self.tracks[key][1] <= s.t_end:
            self.tracks[key] = (identity, s.t_end)

    def remove(self, identity: int) -> None:
        self.remove_all([identity])

    def remove_all(self, identities: Iterable[int]) -> None:
        """Take these identities out (those not held are ignored), with their tracks."""
        gone = set()
        for identity in identities:
            entry = self.identities.pop(identity, None)
            if entry is None:
                continue
            gone.add(identity)
            for r in entry.rows:
                self.owner[r] = -1
            self.free.extend(entry.rows)
            self.changes.append((identity, entry.rows))
            self.plans.pop(identity, None)
        if gone:
            self.tracks = {k: v for k, v in self.tracks.items() if v[0] not in gone}

    def rename(self, ids: dict[int, int]) -> None:
        """Give identities new ids (``old -> new``; the new ids must be unused)."""
        for old, new in ids.items():
            entry = self.identities.pop(old, None)
            if entry is None:
                continue
            self.identities[new] = entry
            self.owner[entry.rows] = new
            if old in self.plans:
                self.plans[new] = self.plans.pop(old)
            for s in entry.history:
                hit = self.tracks.get((s.camera, s.track))
                if hit is not None and hit[0] == old:
                    self.tracks[(s.camera, s.track)] = (new, hit[1])
            self.changes += [(old, entry.rows), (new, [])]

    # --- plan tracks (ground plane) ----------------------------------------------------------------------
    def add_plan(self, identity: int, sighting: PlanSighting) -> None:
        self.plans.setdefault(identity, []).append(sighting)

    def plans_of(self, identity: int) -> list[PlanSighting]:
        return self.plans.get(identity, [])

    def recent_plans(self) -> Iterator[tuple[int, PlanSighting]]:
        """Every identity's plan tracks, as (identity, plan sighting)."""
        for identity, plans in self.plans.items():
            for s in plans:
                yield identity, s

    def join_plans(self, source: int, into: int) -> None:
        """``source``'s plan tracks handed to ``into`` (a merge)."""
        moved = self.plans.pop(source, [])
        if moved:
            self.plans.setdefault(into, []).extend(moved)

    def forget_plans(self, before: float) -> None:
        """Drop the plan tracks that ended before ``before`` (stream seconds)."""
        kept = {i: [s for s in plans if s.t_end >= before] for i, plans in self.plans.items()}
        self.plans = {i: plans for i, plans in kept.items() if plans}

    def continuing(self, camera: str, track: int, t_start: float, max_gap: float) -> int | None:
        """The identity of this camera's track when its last tracklet ended less than ``max_gap`` earlier."""
        hit = self.tracks.get((camera, track))
        if hit is None or hit[0] not in self.identities:
            return None
        return hit[0] if 0 <= t_start - hit[1] <= max_gap else None

    # --- scoring ------------------------------------------------------------------------------------
    def snapshot(self, features: np.ndarray, batch: bool = False) -> Snapshot:
        """Score L2-normalised ``features [Q, D]`` against every exemplar, now. ``batch`` starts a new batch:
        the change log is cleared (snapshots taken before it must not be used after)."""
        if batch:
            self.changes = []
        n = self.used
        width = min(len(self.matrix), -(-n // BLOCK) * BLOCK)  # whole blocks for ``_heads`` where they fit
        scores = features @ self.matrix[:width].T if n else np.zeros((len(features), 0), np.float32)
        scores[:, n:] = -np.inf
        return Snapshot(self, features, scores, n, self.owner[:n].copy(), len(self.changes))

    def score(self, identity: int, feature: np.ndarray) -> float:
        return float((self.exemplars(identity) @ feature).max())


BLOCK = 16  # columns per block in ``_heads``


def _minus_first(x: tuple[float, int]) -> float:
    return -x[0]


def _heads(scores: np.ndarray, k: int, n: int) -> np.ndarray:
    """Each row's ``k`` best of its first ``n`` columns, best first. Columns from ``n`` on are padding
    (-inf) up to a multiple of ``BLOCK`` (added here when missing).

    Exact and cheap: split the columns into blocks (block ``j``: columns ``j, j + B, j + 2B, ...`` for
    ``B = width / BLOCK``, so the maxima are an elementwise maximum of ``BLOCK`` contiguous slices); the
    ``k`` best values lie in the ``k`` blocks with the highest maxima, so the partition runs over those."""
    q = scores.shape[0]
    blocks = -(-n // BLOCK)
    if k >= n:
        return np.argsort(-scores[:, :n], axis=1, kind="stable")
    if n < 64 * k:  # small: one partition is cheaper than the block search
        head = np.argpartition(scores[:, :n], n - k, axis=1)[:, n - k :]
    else:
        if scores.shape[1] < blocks * BLOCK:
            pad = np.full((q, blocks * BLOCK - scores.shape[1]), -np.inf, np.float32)
            scores = np.concatenate([scores, pad], axis=1)
        scores = scores[:, : blocks * BLOCK]
        maxima = scores.reshape(q, BLOCK, blocks).max(axis=1)
        best = np.argpartition(maxima, blocks - k, axis=1)[:, blocks - k :]  # [q, k] block indices
        cols = (best[:, :, None] + blocks * np.arange(BLOCK)).reshape(q, k * BLOCK)
        pick = np.argpartition(np.take_along_axis(scores, cols, axis=1), k * BLOCK - k, axis=1)[:, -k:]
        head = np.take_along_axis(cols, pick, axis=1)
    order = np.argsort(-np.take_along_axis(scores, head, axis=1), axis=1, kind="stable")
    return np.take_along_axis(head, order, axis=1)


class Snapshot:
    """Scores of a batch against the gallery as it was; ``ranked`` corrects them for later changes.

    Rows of identities changed since the snapshot are stale; each changed identity is re-scored against the
    whole batch once per change (a small product over its current rows). Each query's ranking starts with
    a head (its ``HEAD`` best rows merged with the re-scored identities, vectorised) and goes on, only when
    a caller reads that far, with a lazy tail over the remaining rows.
    """

    HEAD = 32

    def __init__(
        self, gallery: Gallery, features: np.ndarray, scores: np.ndarray, n: int, owner: np.ndarray, start: int
    ):
        """``scores [Q, >= n]``: the batch against the matrix's first ``n`` rows, then -inf padding."""
        self.gallery, self.features, self.sims, self.owner = gallery, features, scores[:, :n], owner
        self.read = start  # how much of the gallery's change log this snapshot has taken in
        self.stale = owner < 0  # per snapshot row: free, or held by a changed identity
        self._slot: dict[int, int] = {}  # changed identity -> its row in ``_fresh``
        self._ids = np.zeros(0, np.int64)  # per slot: the identity (placeholder ids are negative)
        self._alive = np.zeros(0, bool)  # per slot: False once the identity is removed
        self._fresh = np.zeros((0, len(features)), np.float32)  # per slot: its score for every query
        head = _heads(scores, self.HEAD, n)  # [Q, k] row indices, best first
        # per query, as Python lists (made once per batch): the head's owners and scores, and the cutoff
        # below which a row outside the head may come next (-inf: the head holds every row)
        self._head = head
        self._head_owners = owner[head].tolist()
        self._head_scores = np.take_along_axis(self.sims, head, axis=1).tolist()
        self._cutoffs = [s[-1] if head.shape[1] < n else -math.inf for s in self._head_scores]

    def _catch_up(self) -> None:
        log, entries, n = self.gallery.changes, self.gallery.identities, len(self.stale)
        if len(log) == self.read:
            return
        changed: dict[int, None] = {}
        for d, old_rows in log[self.read :]:
            if old_rows:  # a new identity has none
                self.stale[[r for r in old_rows if r < n]] = True
            changed[d] = None
        self.read = len(log)
        for d in changed:
            slot = self._slot.get(d)
            if slot is None:
                slot = self._slot[d] = len(self._slot)
                if slot == len(self._ids):
                    grow = max(8, slot)
                    self._ids = np.concatenate([self._ids, np.zeros(grow, np.int64)])
                    self._alive = np.concatenate([self._alive, np.zeros(grow, bool)])
                    self._fresh = np.concatenate([self._fresh, np.zeros((grow, len(self.features)), np.float32)])
            entry = entries.get(d)
            self._ids[slot], self._alive[slot] = d, entry is not None
            if entry is not None:
                rows, matrix = entry.rows, self.gallery.matrix
                self._fresh[slot] = (  # max over the outer axis: half the time of max(axis=1) over a few columns
                    self.features @ matrix[rows[0]] if len(rows) == 1 else (matrix[rows] @ self.features.T).max(axis=0)
                )

    def ranked(self, i: int) -> Iterator[tuple[int, float]]:
        """Identities best first, for query ``i`` of the batch."""
        self._catch_up()
        cutoff = self._cutoffs[i]
        fresh: list[tuple[float, int]] = []  # changed identities at or above the cutoff, best first
        m = len(self._slot)
        if m:
            column = self._fresh[:m, i]
            hits = np.flatnonzero(self._alive[:m] & (column >= cutoff))
            if len(hits):
                fresh = sorted(zip(column[hits].tolist(), self._ids[hits].tolist(), strict=True), key=_minus_first)
        stale = self.stale[self._head[i]].tolist()
        seen: set[int] = set()
        k = 0
        for row_stale, owner, score in zip(stale, self._head_owners[i], self._head_scores[i], strict=True):
            while k < len(fresh) and fresh[k][0] > score:  # ties: the head's row first
                f_score, f_owner = fresh[k]
                k += 1
                if f_owner not in seen:
                    seen.add(f_owner)
                    yield f_owner, f_score
            if row_stale or owner in seen:
                continue
            seen.add(owner)
            yield owner, score
        for f_score, f_owner in fresh[k:]:
            if f_owner not in seen:
                seen.add(f_owner)
                yield f_owner, f_score
        if cutoff == -math.inf:
            return
        # below the head: changed identities under the cutoff merged with the unchanged rows' tail
        m = len(self._slot)
        column, live = self._fresh[:m, i], self._alive[:m]
        rest = sorted(
            (-score, d)
            for score, d, alive in zip(column.tolist(), self._ids[:m].tolist(), live.tolist(), strict=True)
            if alive and score < cutoff and d not in seen
        )
        for s, d in heapq.merge(rest, self._tail(i, seen), key=lambda x: x[0]):
            yield d, -s

    def _tail(self, i: int, seen: set[int]) -> Iterator[tuple[float, int]]:
        """Unchanged identities not yet ``seen``, best first, as (-score, owner)."""
        row, stale, seen = self.sims[i], self.stale, set(seen)
        for r in np.argsort(-row, kind="stable").tolist():
            owner = int(self.owner[r])
            if stale[r] or owner in seen:
                continue
            seen.add(owner)
            yield (-float(row[r]), owner)
