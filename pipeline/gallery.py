"""The matcher's in-memory gallery: every identity's exemplars in one matrix, scored in batches.

A batch of tracklets is scored against a snapshot of the matrix with one matrix product; identities that
change while the batch is processed ("dirty") are re-scored exactly, so the result equals processing the
tracklets one by one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.matching import Sighting

HISTORY = 32  # recent sightings kept per identity for the space-time constraints


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
        self.dirty: set[int] = set()

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
        for r in old_rows:
            self.owner[r] = -1
        self.free.extend(old_rows)
        rows = [self._row() for _ in range(len(exemplars))]
        self.matrix[rows] = exemplars
        self.owner[rows] = identity
        hist = history if history is not None else (entry.history if entry else [])
        self.identities[identity] = _Identity(rows, sorted(hist, key=lambda s: s.t_end)[-HISTORY:])
        for s in self.identities[identity].history:
            self._note_track(identity, s)
        self.dirty.add(identity)

    def add_sighting(self, identity: int, sighting: Sighting) -> None:
        entry = self.identities[identity]
        entry.history = sorted([*entry.history, sighting], key=lambda s: s.t_end)[-HISTORY:]
        self._note_track(identity, sighting)

    def _note_track(self, identity: int, s: Sighting) -> None:
        key = (s.camera, s.track)
        if key not in self.tracks or self.tracks[key][1] <= s.t_end:
            self.tracks[key] = (identity, s.t_end)

    def remove(self, identity: int) -> None:
        entry = self.identities.pop(identity, None)
        if entry is None:
            return
        for r in entry.rows:
            self.owner[r] = -1
        self.free.extend(entry.rows)
        self.tracks = {k: v for k, v in self.tracks.items() if v[0] != identity}
        self.dirty.add(identity)

    def continuing(self, camera: str, track: int, t_start: float, max_gap: float) -> int | None:
        """The identity of this camera's track when its last tracklet ended less than ``max_gap`` earlier."""
        hit = self.tracks.get((camera, track))
        if hit is None or hit[0] not in self.identities:
            return None
        return hit[0] if 0 <= t_start - hit[1] <= max_gap else None

    # --- scoring ------------------------------------------------------------------------------------
    def snapshot(self, features: np.ndarray) -> Snapshot:
        """Score a batch of L2-normalised ``features [Q, D]`` against every exemplar, now."""
        self.dirty = set()
        n = self.used
        sims = features @ self.matrix[:n].T if n else np.zeros((len(features), 0), np.float32)
        return Snapshot(self, sims, self.owner[:n].copy())

    def score(self, identity: int, feature: np.ndarray) -> float:
        return float((self.exemplars(identity) @ feature).max())


class Snapshot:
    def __init__(self, gallery: Gallery, sims: np.ndarray, owner: np.ndarray) -> None:
        self.gallery, self.sims, self.owner = gallery, sims, owner

    def ranked(self, i: int, feature: np.ndarray) -> Iterator[tuple[int, float]]:
        """Identities best first, for query ``i`` of the batch (``feature`` is that query)."""
        g = self.gallery
        fresh = sorted(((-g.score(d, feature), d) for d in g.dirty if d in g), key=lambda x: x[0])
        yield from ((d, -s) for s, d in heapq.merge(fresh, self._stale(i), key=lambda x: x[0]))

    def _stale(self, i: int) -> Iterator[tuple[float, int]]:
        row = self.sims[i]
        seen: set[int] = set()
        dirty = self.gallery.dirty
        top = min(64, len(row))
        order = np.argpartition(-row, top - 1)[:top] if top else np.zeros(0, np.int64)
        order = order[np.argsort(-row[order])]
        done = set(order.tolist())
        for chunk in (order, None):
            if chunk is None:
                if len(row) <= top:
                    return
                rest = np.argsort(-row)
                chunk = rest[[r not in done for r in rest.tolist()]]
            for r in chunk.tolist():
                owner = int(self.owner[r])
                if owner < 0 or owner in seen or owner in dirty:
                    continue
                seen.add(owner)
                yield (-float(row[r]), owner)
