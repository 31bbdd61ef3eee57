"""Overlapping views and soft transit windows in the rules: who may be in two views at once, and what a move
outside its window costs a link."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crosscam.errors import ConfigError
from pipeline.config import load_config
from pipeline.matcher.linker import Linker
from pipeline.matcher.rules import MatchPolicy, Sighting, Topology, compatible, decide, transit_cost
from tests.support.records import tracklet

WINDOWS = [{"from": "a", "to": "b", "min": 2, "max": 10}, {"from": "b", "to": "c", "min": 0, "max": 5, "overlap": True}]


def test_overlapping_views_allow_one_person_in_both_at_once_and_listed_others_do_not():
    topo = Topology.parse(WINDOWS)
    on_b = [Sighting("b", 1, 0.0, 6.0)]
    assert compatible(on_b, Sighting("c", 2, 4.0, 9.0), topo)  # b and c overlap: seen in both at once
    assert not compatible(on_b, Sighting("a", 2, 4.0, 9.0), topo)  # a and b do not: two people
    assert compatible(on_b, Sighting("d", 2, 4.0, 9.0), topo)  # an unlisted pair stays free
    assert compatible([Sighting("c", 1, 0.0, 6.0)], Sighting("b", 2, 4.0, 9.0), topo)  # both directions


def test_a_soft_window_costs_the_penalty_and_being_in_two_views_at_once_stays_impossible():
    soft = Topology.parse(WINDOWS, mode="soft", penalty=0.15)
    on_a = [Sighting("a", 1, 0.0, 5.0)]
    assert transit_cost(on_a, Sighting("b", 2, 8.0, 9.0), soft) == 0.0  # 3 s: fits
    assert transit_cost(on_a, Sighting("b", 2, 60.0, 61.0), soft) == pytest.approx(0.15)  # 55 s: outside
    assert transit_cost(on_a, Sighting("b", 2, 4.0, 9.0), soft) == math.inf  # at once in a and b
    hard = Topology.parse(WINDOWS)
    assert transit_cost(on_a, Sighting("b", 2, 60.0, 61.0), hard) == math.inf  # today's behaviour


def test_the_penalty_raises_the_bar_and_reorders_candidates():
    soft = Topology.parse(WINDOWS, mode="soft", penalty=0.2)
    histories = {1: [Sighting("a", 1, 0.0, 5.0)], 3: [Sighting("d", 9, 50.0, 58.0)]}  # d -> b is not listed: free
    new = Sighting("b", 3, 60.0, 62.0)  # 55 s after identity 1 left a: outside a -> b's 2-10 s window
    policy = MatchPolicy(threshold=0.6, margin=0.03, topology=soft)
    d = decide([(1, 0.85)], histories.get, new, policy)
    assert d.kind == "link" and d.score == pytest.approx(0.65) and "transit penalty 0.200" in d.reason
    d = decide([(1, 0.75)], histories.get, new, policy)  # 0.75 - 0.2 below 0.6: a new identity
    assert d.kind == "new" and "transit penalty" in d.reason
    d = decide([(1, 0.9), (3, 0.8)], histories.get, new, policy)  # 0.9 - 0.2 falls behind 0.8
    assert d.identity == 3 and d.runner_up == 1 and d.runner_up_score == pytest.approx(0.7)


def test_hard_mode_decides_as_before():
    hard = Topology.parse(WINDOWS)
    histories = {1: [Sighting("a", 1, 0.0, 5.0)], 2: [Sighting("a", 2, 0.0, 5.0)]}
    policy = MatchPolicy(threshold=0.6, topology=hard)
    d = decide([(1, 0.9), (2, 0.8)], histories.get, Sighting("b", 3, 60.0, 62.0), policy)
    assert d.kind == "new" and d.excluded == 2 and d.reason == "no compatible identity"


def counter():
    ids = iter(range(1, 100))
    return lambda n: [next(ids) for _ in range(n)]


def test_merges_pay_the_penalty():
    """Two identities 55 s apart on a and b: merged at 0.9 only while the penalty leaves them above 0.85."""
    f = np.array([1.0, 0.0], np.float32)
    for penalty, merged in ((0.01, True), (0.2, False)):
        topo = Topology.parse(WINDOWS, mode="soft", penalty=penalty)
        linker = Linker(MatchPolicy(threshold=1.01, merge_threshold=0.85, topology=topo), counter())
        linker.link([tracklet("a", 1, 0.0, 5.0, f)])
        linker.link([tracklet("b", 2, 60.0, 62.0, f)])
        assert bool(linker.merges()) is merged, penalty


def test_the_config_spells_overlap_mode_and_penalty():
    config = load_config(
        overrides=[
            "matcher.topology=[{from: a, to: b, min: 0, max: 4, overlap: true}]",
            "matcher.topology_mode=soft",
            "matcher.transit_penalty=0.2",
        ]
    )
    topo = config.matcher.policy().topology
    assert topo.soft and topo.penalty == 0.2 and ("b", "a") in topo.overlaps
    assert load_config().matcher.topology_mode == "hard"  # hand-typed windows bind as they always did
    with pytest.raises(ConfigError, match="topology mode"):
        Topology.parse(WINDOWS, mode="sometimes")
