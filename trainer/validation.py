"""Model selection on identities held out from training (the seed code selected on the test set)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from trainer.data.index import DatasetIndex, Tracklet


def hold_out(index: DatasetIndex, share: float, seed: int) -> tuple[tuple[Tracklet, ...], DatasetIndex]:
    """Split the training identities: ``share`` of those seen in at least two cameras become a
    validation set (one tracklet of each as the query, the rest as gallery); the others stay for training."""
    by_pid: dict[int, list[Tracklet]] = defaultdict(list)
    for t in index.train:
        by_pid[t.pid].append(t)
    eligible = sorted(p for p, ts in by_pid.items() if len({t.camid for t in ts}) >= 2)
    count = min(len(eligible), round(share * len(by_pid))) if share > 0 else 0
    if share > 0:
        count = max(count, min(2, len(eligible)))
    rng = np.random.default_rng([seed, 11])
    held = set(rng.choice(eligible, size=count, replace=False).tolist()) if count else set()
    query, gallery = [], []
    for pid in sorted(held):
        first, *rest = by_pid[pid]
        query.append(first)
        gallery += rest
    train = tuple(t for t in index.train if t.pid not in held)
    val = DatasetIndex(f"{index.name}-val", index.root, (), tuple(query), tuple(gallery))
    return train, val
