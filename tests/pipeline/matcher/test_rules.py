"""The matching rules as pure functions, and the in-memory linker that applies them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from crosscam.errors import ConfigError
from pipeline.matcher.gallery import BLOCK, HISTORY, Gallery, _heads
from pipeline.matcher.linker import Linker
from pipeline.matcher.rules import (
    MatchPolicy,
    Sighting,
    Topology,
    compatible,
    decide,
    histories_compatible,
    update_exemplars,
)
from tests.support.records import tracklet


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_same_camera_overlap_is_excluded_and_transit_windows_apply():
    hist = [Sighting("a", 1, 0.0, 5.0)]
    assert not compatible(hist, Sighting("a", 2, 4.0, 8.0), None)  # two places at once in one view
    assert compatible(hist, Sighting("a", 2, 5.0, 8.0), None)  # touching is not overlapping
    topo = Topology.parse([{"from": "a", "to": "b", "min": 2, "max": 10}])
    assert compatible(hist, Sighting("b", 1, 8.0, 9.0), topo)  # 3 s transit
    assert not compatible(hist, Sighting("b", 1, 5.5, 9.0), topo)  # too fast
    assert not compatible(hist, Sighting("b", 1, 30.0, 31.0), topo)  # too slow
    assert compatible(hist, Sighting("c", 1, 5.5, 9.0), topo)  # pair not listed: free
    assert not compatible(hist, Sighting("c", 1, 5.5, 9.0), Topology(topo.windows, strict=True))
    # out of order: the new sighting comes before the identity's and must reach it in time
    assert compatible(hist, Sighting("b", 1, -8.0, -3.0), topo)
    assert not compatible(hist, Sighting("b", 1, -30.0, -25.0), topo)


def test_topology_errors_name_the_entry():
    with pytest.raises(ConfigError, match=r"topology entry 0 .* needs from, to, min and max"):
        Topology.parse([{"from": "a", "to": "b"}])
    with pytest.raises(ConfigError, match=r"min 5\.0 is above max 1\.0"):
        Topology.parse([{"from": "a", "to": "b", "min": 5, "max": 1}])


def test_decide_threshold_margin_and_continuity():
    new = Sighting("b", 7, 10.0, 12.0)
    policy = MatchPolicy(threshold=0.6, margin=0.05)
    history = {1: [Sighting("a", 1, 0, 5)], 2: [Sighting("a", 2, 0, 5)], 3: [Sighting("b", 9, 11, 13)]}.get
    d = decide([(1, 0.9), (2, 0.7)], history, new, policy)
    assert (d.kind, d.identity, d.score, d.runner_up, d.runner_up_score) == ("link", 1, 0.9, 2, 0.7)
    d = decide([(1, 0.9), (2, 0.87)], history, new, policy)
    assert d.kind == "new" and d.identity is None and "ambiguous" in d.reason and d.best == 1
    d = decide([(1, 0.5)], history, new, policy)
    assert d.kind == "new" and "below threshold" in d.reason
    d = decide([(3, 0.99), (1, 0.8)], history, new, policy)  # 3 is on camera b at the same time
    assert d.kind == "link" and d.identity == 1 and d.excluded == 1 and d.runner_up is None
    d = decide([(1, 0.9)], history, new, policy, continuing=2)
    assert d.kind == "continuity" and d.identity == 2 and math.isnan(d.score)
    assert decide([], history, new, policy).reason == "no compatible identity"


def test_continuity_gives_way_when_the_tracker_switched_people():
    new = Sighting("b", 7, 10.0, 12.0)
    policy = MatchPolicy(threshold=0.6, margin=0.05)
    history = {1: [Sighting("a", 1, 0, 5)], 2: [Sighting("b", 7, 0, 9.5)]}.get
    d = decide([(1, 0.9), (2, 0.3)], history, new, policy, continuing=2)  # looks like 1, not like its track's 2
    assert (d.kind, d.identity, d.score) == ("link", 1, 0.9) and "switched people" in d.reason
    for ranked in ([(1, 0.55), (2, 0.3)], [(1, 0.62), (2, 0.59)], [(2, 0.7), (1, 0.9)]):
        # the other is below threshold / not clearly above the track's own score / the track still looks itself
        assert decide(ranked, history, new, policy, continuing=2).kind == "continuity"


def test_exemplars_stay_bounded_and_distinct():
    ex = np.zeros((0, 3), np.float32)
    ex = update_exemplars(ex, unit(1, 0, 0), capacity=2, duplicate=0.95)
    assert len(update_exemplars(ex, unit(1, 0.01, 0), 2, 0.95)) == 1  # a near repeat is not kept
    ex = update_exemplars(ex, unit(0, 1, 0), 2, 0.95)
    ex = update_exemplars(ex, unit(0.3, 1, 0.5), 2, 0.95)  # full: replaces its nearest exemplar
    assert len(ex) == 2 and np.allclose(ex[0], unit(1, 0, 0)) and np.allclose(ex[1], unit(0.3, 1, 0.5))


def test_gallery_batch_scoring_equals_one_by_one():
    rng = np.random.default_rng(0)
    people = [unit(*rng.normal(size=16)) for _ in range(6)]
    stream = []
    for i in range(60):
        p = int(rng.integers(6))
        f = people[p] + rng.normal(scale=0.05, size=16)
        stream.append(tracklet(f"c{i % 3}", 100 + i, float(i), i + 0.5, f / np.linalg.norm(f)))
    results = []
    for batch in (1, 7, 60):
        ids = itertools.count(1)
        linker = Linker(MatchPolicy(threshold=0.7), lambda n, ids=ids: [next(ids) for _ in range(n)])
        out = []
        for k in range(0, len(stream), batch):
            out += [
                (r.identity, r.decision.kind, str(round(r.decision.score, 3)))
                for r in linker.link(stream[k : k + batch])
            ]
        results.append(out)
    assert results[0] == results[1] == results[2]
    assert len({i for i, _, _ in results[0]}) <= 8  # six people, a few ambiguous splits at most


@pytest.mark.parametrize("people", [120, 1500])  # 1500: enough rows for the head's block search
def test_snapshot_ranking_equals_brute_force_after_changes(people):
    """The vectorised head, the re-scored changed identities and the lazy tail give the exact ranking."""
    rng = np.random.default_rng(1)

    def rand(n):
        v = rng.normal(size=(n, 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    g = Gallery()
    for identity in range(1, people + 1):
        g.set(identity, rand(int(rng.integers(1, 4))))
    queries = rand(4)
    snap = g.snapshot(queries, batch=True)
    for step, q in enumerate(queries):
        g.set(int(rng.integers(1, people + 1)), rand(2))  # changed: some now score higher, some lower
        g.remove(int(rng.integers(1, people + 1)))
        g.set(200 + step, q[None])  # a new identity that is the query itself
        got = list(snap.ranked(step))
        want = sorted(((d, g.score(d, q)) for d in g.identities), key=lambda x: -x[1])
        assert sorted(d for d, _ in got) == sorted(d for d, _ in want)  # each identity once
        assert all(abs(s - g.score(d, q)) < 1e-6 for d, s in got)  # its exact score
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-6)  # so best first (ties aside)
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
        assert got[0] == (200 + step, pytest.approx(1.0))


@pytest.mark.parametrize("n", [0, 5, 32, 33, 100, 2047, 2048, 4099])
def test_heads_are_the_best_columns_in_order(n):
    """The block search finds each row's k best columns, best first, with or without the padding."""
    rng = np.random.default_rng(n)
    scores = rng.normal(size=(6, n)).astype(np.float32)
    want = np.argsort(-scores, axis=1, kind="stable")[:, :32]
    assert np.array_equal(_heads(scores, 32, n), want)
    width = -(-n // BLOCK) * BLOCK
    padded = np.concatenate([scores, np.full((6, width - n), -np.inf, np.float32)], axis=1)
    assert np.array_equal(_heads(padded, 32, n), want)


def test_linker_links_across_cameras_keeps_tracks_and_merges():
    ids = itertools.count(1)
    policy = MatchPolicy(threshold=0.8, margin=0.05, merge_threshold=0.9)
    linker = Linker(policy, lambda n: [next(ids) for _ in range(n)])
    a, b = unit(1, 0, 0, 0), unit(0, 1, 0, 0)
    r = linker.link([tracklet("c1", 1, 0, 4, a), tracklet("c1", 2, 0, 4, b)])
    assert [x.identity for x in r] == [1, 2] and all(x.new for x in r)
    r = linker.link([tracklet("c2", 5, 6, 9, unit(1, 0.1, 0, 0))])  # same person, next camera
    assert r[0].identity == 1 and r[0].decision.kind == "link" and r[0].decision.runner_up == 2
    r = linker.link([tracklet("c1", 2, 4.5, 8, unit(0, 0, 1, 0), seq=1)])  # track 2 goes on, whatever it looks like
    assert r[0].identity == 2 and r[0].decision.kind == "continuity"
    # a later view of person 1 that scored as new (below threshold) ...
    r = linker.link([tracklet("c3", 1, 12, 14, unit(1, 0, 0, 0.9))])
    assert r[0].new and r[0].identity == 3
    linker.link([tracklet("c3", 1, 14.5, 16, unit(1, 0, 0, 0.1), seq=1)])  # ... whose track then shows more of them
    merges = linker.merges()
    assert merges and merges[0][:2] == (3, 1) and 3 not in linker.gallery
    linker.cannot_link = {(1, 2), (2, 1)}
    assert linker.merges() == []


def test_gallery_rows_are_reused():
    g = Gallery()
    g.set(1, np.stack([unit(1, 0), unit(0, 1)]))
    g.set(2, unit(1, 1)[None])
    g.remove(1)
    g.set(3, unit(1, 0)[None])
    assert g.used == 3 and sorted(int(o) for o in g.owner[: g.used] if o >= 0) == [2, 3]


def test_gallery_history_stays_sorted_and_bounded():
    """Sightings arriving out of order are kept in end-time order; the oldest go past ``HISTORY``; new
    exemplars keep the sightings."""
    g = Gallery()
    g.set(1, unit(1, 0)[None])
    ends = [5.0, 3.0, 9.0, 1.0] + [10.0 + k for k in range(HISTORY)]
    for k, end in enumerate(ends):
        g.add_sighting(1, Sighting("c1", k, end - 1, end))
    g.set(1, np.stack([unit(1, 0), unit(0, 1)]))
    got = [s.t_end for s in g.history(1)]
    assert got == sorted(ends)[-HISTORY:]
    assert g.continuing("c1", len(ends) - 1, ends[-1] + 1, 5.0) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_pass_leaves_no_mergeable_pair(seed):
    """Merge candidates come from linking alone (no scoring in the pass). After the last pass no two
    identities remain whose exemplars agree at ``merge_threshold``, whose histories fit and that no one
    split: the recorded candidates covered every such pair."""
    rng = np.random.default_rng(seed)
    faces = rng.normal(size=(30, 16)).astype(np.float32)
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    stream = []
    for k in range(240):
        person = int(rng.integers(30))
        f = faces[person] + rng.normal(scale=0.12, size=16).astype(np.float32)
        stream.append(tracklet(f"c{k % 3}", k, k * 0.5, k * 0.5 + 1.0, f / np.linalg.norm(f)))
    policy = MatchPolicy(threshold=0.95, margin=0.0, merge_threshold=0.8)  # strict links leave merges to do
    ids = itertools.count(1)
    linker = Linker(policy, lambda n: [next(ids) for _ in range(n)])
    merged = 0
    for k in range(0, len(stream), 16):
        linker.link(stream[k : k + 16])
        if k % 64 == 48:
            merged += len(linker.merges())
    merged += len(linker.merges())
    assert merged > 10
    g = linker.gallery
    alive = sorted(g.identities)
    for a, b in itertools.combinations(alive, 2):
        score = float((g.exemplars(a) @ g.exemplars(b).T).max())
        assert not (score >= 0.8 and histories_compatible(g.history(a), g.history(b), None)), (a, b, score)
