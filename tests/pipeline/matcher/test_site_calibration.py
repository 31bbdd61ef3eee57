"""Self-calibration's pairs (what the site's geometry labels for free) and its rule."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.matcher.evidence import StoredSighting
from pipeline.matcher.site_calibration import (
    MIN_NEGATIVES,
    MIN_POSITIVES,
    SitePairs,
    TooFewPairs,
    fit_threshold,
    pair_indices,
    site_pairs,
)


def s(camera: str, track: int, seq: int, t0: float, t1: float) -> StoredSighting:
    return StoredSighting(f"{camera}:{track}:{seq}", track, camera, track, seq, t0, t1, "new")


def test_pairs_the_site_labels_itself():
    sightings = [
        s("a", 1, 0, 0, 4),
        s("a", 1, 1, 4, 8),  # one track: positive with the one before
        s("a", 2, 0, 3, 6),  # overlaps both of track 1 on a: two negatives
        s("a", 3, 0, 8, 9),  # touches track 1's end: not at the same moment
        s("b", 4, 0, 3, 6),  # another camera: nothing
        s("a", 1, 3, 20, 22),  # seq 3 without seq 2: no positive
    ]
    pos, neg = pair_indices(sightings)
    assert pos.tolist() == [[0, 1]]
    assert sorted(map(sorted, neg.tolist())) == [[0, 2], [1, 2]]


def test_scores_of_the_pairs():
    f = np.array([[1, 0], [0.8, 0.6], [0, 1]], np.float32)
    pairs = site_pairs([s("a", 1, 0, 0, 4), s("a", 1, 1, 4, 8), s("a", 2, 0, 3, 6)], f)
    assert pairs.positives.tolist() == pytest.approx([0.8])
    assert sorted(pairs.negatives.tolist()) == pytest.approx([0.0, 0.6])


def test_the_rule_is_the_negatives_upper_tail_and_the_positives_spread():
    negatives = np.linspace(0.0, 0.99, 100)  # 95th percentile 0.9405
    positives = np.array([0.90, 0.92, 0.94, 0.96, 0.98])  # median 0.94, absolute deviations 0.04, 0.02, 0, ...
    fit = fit_threshold(SitePairs(positives, negatives))
    assert fit.threshold == pytest.approx(0.941, abs=1e-3) and fit.margin == pytest.approx(0.02)
    assert fit.as_dict()["pairs"] == {"positives": 5, "negatives": 100}


def test_too_few_pairs_says_how_many_were_found_and_are_needed():
    with pytest.raises(TooFewPairs) as e:
        fit_threshold(SitePairs(np.ones(3), np.zeros(7)), what="site 'lobby'")
    message = str(e.value)
    assert "site 'lobby'" in message and "7 pairs" in message and "3 pairs" in message
    assert f"at least {MIN_NEGATIVES} and {MIN_POSITIVES}" in message and "\n" not in message
