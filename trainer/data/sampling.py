"""Which tracklets form a batch, and which frames form a clip (pure functions of an RNG)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np


def clip_indices(length: int, frames: int, mode: str, rng: np.random.Generator) -> np.ndarray:
    """``frames`` frame indexes of a ``length``-frame tracklet, in order.

    ``consecutive`` (the seed code's training sampler): ``frames`` consecutive frames from a random
    start; a shorter tracklet is padded by repeating its frames in order (0,1,2,0,1,...), as the paper does.
    ``even``: the tracklet is cut into ``frames`` equal chunks and one random frame is taken from each.
    """
    if length < 1:
        raise ValueError("a tracklet needs at least one frame")
    if length < frames:
        return np.arange(frames) % length
    if mode == "consecutive":
        start = int(rng.integers(0, length - frames + 1))
        return np.arange(start, start + frames)
    if mode == "even":
        edges = np.linspace(0, length, frames + 1)
        return np.array([int(rng.integers(int(a), max(int(a) + 1, int(b)))) for a, b in itertools.pairwise(edges)])
    raise ValueError(f"unknown clip sampling {mode!r}; use consecutive or even")


def dense_clips(length: int, frames: int) -> list[np.ndarray]:
    """Every non-overlapping ``frames``-frame clip of a tracklet (dense evaluation); the last is padded
    by repeating the tracklet's frames in order."""
    clips = []
    for start in range(0, max(length, 1), frames):
        idx = np.arange(start, start + frames)
        clips.append(np.where(idx < length, idx, idx % max(length, 1)))
    return clips


class IdentitySampler:
    """P x K batches: ``p`` identities, ``k`` tracklets of each (drawn with replacement when an identity
    has fewer than ``k``). One epoch visits every identity once, in a new random order."""

    def __init__(self, pids: Sequence[int], p: int, k: int, seed: int = 0) -> None:
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(pids):
            self.by_pid[pid].append(i)
        if len(self.by_pid) < p:
            raise ValueError(f"a batch needs {p} identities but the training set has {len(self.by_pid)}")
        self.p, self.k = p, k
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.by_pid) // self.p

    def __iter__(self) -> Iterator[list[int]]:
        order = self.rng.permutation(sorted(self.by_pid))
        for b in range(len(self)):
            batch = []
            for pid in order[b * self.p : (b + 1) * self.p]:
                members = self.by_pid[int(pid)]
                batch += self.rng.choice(members, size=self.k, replace=len(members) < self.k).tolist()
            yield batch
