"""Threshold calibration: replaying labelled tracklets through the matcher's rules and scoring IDF1."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.calibrate import Labelled, parse_thresholds, plot, replay, sweep
from pipeline.matching import MatchPolicy
from tests.pipeline.test_matching import tracklet


def walks(people: int = 4, cameras: int = 3, noise: float = 0.15, seed: int = 0) -> list[Labelled]:
    """Each person in turn walks past every camera (3 s per camera, 1 s between), tracklets in time order."""
    rng = np.random.default_rng(seed)
    looks = rng.normal(size=(people, 32))
    items = []
    for p in range(people):
        for c in range(cameras):
            t0 = p * 15.0 + c * 4.0
            f = looks[p] + noise * np.linalg.norm(looks[p]) * rng.normal(size=32) / np.sqrt(32)
            items.append(Labelled(tracklet(f"c{c}", 10 * p + c, t0, t0 + 3.0, f / np.linalg.norm(f)), p, 3.0))
    return sorted(items, key=lambda x: x.record.t_end)


def test_parse_thresholds():
    assert parse_thresholds("0.5:0.6:0.05") == [0.5, 0.55, 0.6]
    assert parse_thresholds("0.7, 0.8") == [0.7, 0.8]
    with pytest.raises(ValueError):
        parse_thresholds("0.9:0.5:0.1")


def test_sweep_finds_the_separating_threshold():
    items = walks()
    rows = {r["threshold"]: r for r in sweep(items, MatchPolicy(margin=0.0), [-1.0, 0.6, 0.9999])}
    assert rows[0.6]["idf1"] == 1.0 and rows[0.6]["identities"] == 4  # every person one identity
    assert rows[0.9999]["identities"] == len(items) and rows[0.9999]["idf1"] < 0.5  # nothing links
    assert rows[-1.0]["identities"] == 1 and rows[-1.0]["idf1"] < 0.5  # one after the other, all are linked


def test_replay_follows_merges():
    items = walks(people=1, cameras=3, noise=0.0)
    # with a threshold above every score each tracklet opens an identity; the merge pass joins them
    persons = replay(items, MatchPolicy(threshold=1.01, merge_threshold=0.99), batch=1, merge_every=1)
    assert len(set(persons)) == 1


def test_plot_writes_a_png(tmp_path):
    rows = sweep(walks(), MatchPolicy(), [0.4, 0.6, 0.8])
    plot(rows, 0.6, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
