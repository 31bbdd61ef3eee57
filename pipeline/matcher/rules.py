"""Cross-camera matching rules (docs/pipeline.md, "Matcher"): pure values and functions, no Redis.

For a tracklet on camera ``c`` over ``[t0, t1]`` the candidates are identities that

1. were not seen on ``c`` at an overlapping time (one person is not twice in one view), and
2. when a topology is configured, fit the transit window between their neighbouring sightings and ``c``
   (``gap = t0 - previous.t_end`` must lie in ``window(previous.camera, c)``, and likewise towards the
   next sighting when tracklets arrive out of order). A pair of cameras marked ``overlap`` may see one
   person at once (a negative gap); a listed pair that is not cannot (unless its window reaches below 0).
   With a soft topology (``Topology.soft``) a move outside its window is possible but costs
   ``Topology.penalty``: the link needs ``threshold + penalty`` (candidates are ranked by their score less
   their cost); being seen on two non-overlapping cameras at once stays impossible.

The score of an identity is the highest cosine similarity between the tracklet's feature and the
identity's exemplars. The tracklet joins the best candidate when its score reaches ``threshold`` *and*
beats the runner-up by ``margin``; otherwise it opens a new identity. A tracklet that continues a local
track (same camera and track id, less than ``continuity_gap`` seconds after its previous tracklet) keeps
that track's identity, unless the tracker evidently switched people: it scores below ``threshold`` to the
track's identity while another candidate would be linked confidently (threshold, and ``margin`` above both
its runner-up and the track's own score). Each identity keeps at most ``exemplars`` features: a new
feature is added unless it nearly repeats one (``duplicate`` cosine), and when the set is full it replaces
its nearest exemplar.

With a ground plane (``MatchPolicy.ground``, ``pipeline.matcher.ground``) an identity seen on another camera
farther than ``ground.far`` metres from the tracklet at the same moments is excluded like an impossible move;
when exactly one candidate was within ``ground.near`` metres of it at those moments, the tracklet joins that
identity whatever the scores say (a ``colocated`` decision). Two or more near candidates (people walking side by
side) leave the choice to the scores. A tracklet that continues its track keeps the continuity rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from crosscam.errors import ConfigError
from pipeline.matcher.ground import GroundPlane, Placement
from pipeline.types import TrackletEmbedding


@dataclass(frozen=True)
class Sighting:
    """Where and when an identity was seen (the timing the constraints need)."""

    camera: str
    track: int
    t_start: float
    t_end: float


TopologyMode = Literal["hard", "soft"]
"""How transit windows bind: ``hard``, a move outside its window is impossible; ``soft``, it costs a penalty."""


@dataclass(frozen=True)
class Topology:
    """Camera-to-camera transit windows in seconds, ``{(from, to): (min, max)}``. A pair not listed is
    unconstrained unless ``strict``, in which case a person cannot walk between those cameras.

    ``overlaps``: the listed pairs (both orders) whose views overlap, so one person may be in both at once.
    ``soft``: a move outside its window (gap at or above 0) costs ``penalty`` (a score the link must make up)
    instead of being impossible."""

    windows: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    strict: bool = False
    overlaps: frozenset[tuple[str, str]] = frozenset()
    soft: bool = False
    penalty: float = 0.1

    @classmethod
    def parse(
        cls,
        entries: Iterable[Mapping],
        strict: bool = False,
        symmetric: bool = True,
        mode: TopologyMode = "hard",
        penalty: float = 0.1,
    ) -> Topology:
        """From ``[{"from": "a", "to": "b", "min": 2, "max": 30, "overlap": false}, ...]`` (``overlap``
        optional); ``symmetric`` adds b -> a."""
        windows: dict[tuple[str, str], tuple[float, float]] = {}
        overlaps: set[tuple[str, str]] = set()
        for i, e in enumerate(entries):
            try:
                a, b, lo, hi = str(e["from"]), str(e["to"]), float(e["min"]), float(e["max"])
            except (KeyError, TypeError, ValueError) as err:
                raise ConfigError(f"topology entry {i} ({e!r}) needs from, to, min and max ({err})") from None
            if not lo <= hi:
                raise ConfigError(f"topology entry {i}: min {lo} is above max {hi}")
            windows[(a, b)] = (lo, hi)
            if e.get("overlap", False):
                overlaps |= {(a, b), (b, a)}
            if symmetric:
                windows.setdefault((b, a), (lo, hi))
        if mode not in ("hard", "soft"):
            raise ConfigError(f"topology mode {mode!r}: choose hard or soft")
        if not (math.isfinite(penalty) and penalty >= 0):
            raise ConfigError(f"transit penalty {penalty!r}: give a score of 0 or more")
        return cls(windows, strict, frozenset(overlaps), mode == "soft", penalty)

    def cost(self, from_camera: str, to_camera: str, gap: float) -> float:
        """What a move from ``from_camera`` to ``to_camera`` after ``gap`` seconds (negative: seen in both at
        once) costs a link: 0 when it fits, ``penalty`` when it is soft and outside its window, ``inf`` when
        it cannot happen."""
        if from_camera == to_camera:
            return 0.0
        window = self.windows.get((from_camera, to_camera))
        if window is None:
            return math.inf if self.strict else 0.0
        if window[0] <= gap <= window[1] or (gap < 0 and (from_camera, to_camera) in self.overlaps):
            return 0.0
        if gap < 0 or not self.soft:  # at once in two views that do not overlap: never
            return math.inf
        return self.penalty

    def allows(self, from_camera: str, to_camera: str, gap: float) -> bool:
        """Whether the move fits (costs nothing)."""
        return self.cost(from_camera, to_camera, gap) == 0.0


@dataclass(frozen=True)
class MatchPolicy:
    threshold: float = 0.6
    margin: float = 0.03
    exemplars: int = 8
    duplicate: float = 0.97
    continuity_gap: float = 10.0
    merge_threshold: float = 0.85
    topology: Topology | None = None
    ground: GroundPlane | None = None


def transit_cost(history: Iterable[Sighting], new: Sighting, topology: Topology | None) -> float:
    """The score ``new`` must make up to belong to an identity seen at ``history`` (rules 1 and 2 above): 0 when
    it fits, ``inf`` when it cannot, a soft topology's penalty (once, however many moves miss their window)."""
    before: Sighting | None = None
    after: Sighting | None = None
    cost = 0.0
    for s in history:
        overlaps = s.t_start < new.t_end and new.t_start < s.t_end
        if overlaps and s.camera == new.camera:
            return math.inf
        if topology is None:
            continue
        if overlaps:  # seen elsewhere at the same time: only overlapping views (or a window below 0) allow it
            cost = max(cost, topology.cost(s.camera, new.camera, new.t_start - s.t_end))
            if cost == math.inf:
                return cost
        elif s.t_end <= new.t_start and (before is None or s.t_end > before.t_end):
            before = s
        elif s.t_start >= new.t_end and (after is None or s.t_start < after.t_start):
            after = s
    if topology is None:
        return 0.0
    if before is not None:
        cost = max(cost, topology.cost(before.camera, new.camera, new.t_start - before.t_end))
    if after is not None:
        cost = max(cost, topology.cost(new.camera, after.camera, after.t_start - new.t_end))
    return cost


def compatible(history: Iterable[Sighting], new: Sighting, topology: Topology | None) -> bool:
    """Whether ``new`` can belong to an identity seen at ``history`` (rules 1 and 2 above; a soft topology's
    penalised moves are possible)."""
    return transit_cost(history, new, topology) < math.inf


def histories_cost(a: Iterable[Sighting], b: Iterable[Sighting], topology: Topology | None) -> float:
    """What joining two identities costs: the highest ``transit_cost`` of a sighting of ``b`` against ``a``."""
    a = list(a)
    cost = 0.0
    for s in b:
        cost = max(cost, transit_cost(a, s, topology))
        if cost == math.inf:
            break
    return cost


def histories_compatible(a: Iterable[Sighting], b: Iterable[Sighting], topology: Topology | None) -> bool:
    """Whether two identities can be one person: every sighting of ``b`` fits ``a``'s history."""
    return histories_cost(a, b, topology) < math.inf


DecisionKind = Literal["link", "new", "continuity", "colocated"]
"""What the rules did with a tracklet: joined a candidate (``link``), opened an identity (``new``), kept its
track's identity (``continuity``), or joined the one identity seen at its place on the floor plan at the same
moments (``colocated``)."""


@dataclass(frozen=True)
class Decision:
    """What the matcher did with one tracklet, and why."""

    kind: DecisionKind
    identity: int | None  # the identity joined (None: a new one is opened)
    score: float  # best candidate's score (nan when there was none)
    best: int | None  # best candidate, even when not taken
    runner_up: int | None
    runner_up_score: float
    reason: str
    excluded: int = 0  # candidates ruled out by the space-time constraints (and the ground plane)

    def renamed(self, ids: Mapping[int, int]) -> Decision:
        """This decision with identity ids replaced by ``ids`` (placeholders given their real ids)."""
        m = lambda i: ids.get(i, i) if i is not None else None  # noqa: E731
        return replace(self, identity=m(self.identity), best=m(self.best), runner_up=m(self.runner_up))

    def field_args(self) -> list[str]:
        """The decision's fields in a sighting's hash, as a flat field, value list."""
        return [
            "decision", self.kind,
            "score", _num(self.score),
            "best", "" if self.best is None else str(self.best),
            "runner_up", "" if self.runner_up is None else str(self.runner_up),
            "runner_up_score", _num(self.runner_up_score),
            "reason", self.reason,
            "excluded", str(self.excluded),
        ]  # fmt: skip


@dataclass(frozen=True)
class Linked:
    """A tracklet and the identity the rules gave it (``new``: an identity opened for it)."""

    tracklet: TrackletEmbedding
    identity: int
    decision: Decision
    new: bool


def _num(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.4f}"


def decide(
    ranked: Iterable[tuple[int, float]],
    history_of,
    new: Sighting,
    policy: MatchPolicy,
    continuing: int | None = None,
    placement: Placement | None = None,
) -> Decision:
    """Apply the rules to ``ranked`` (identity, score) pairs, best first. ``history_of(identity)`` gives an
    identity's sightings; ``continuing`` is the identity of the tracklet's own track, if it continues one;
    ``placement`` where the tracklet stood on the floor plan against the identities seen at the same moments."""
    far = placement.far if placement is not None else frozenset()
    valid: list[tuple[int, float]] = []  # (identity, score less its transit cost), best first
    excluded = 0
    scores: dict[int, float] = {}
    for identity, score in ranked:
        scores.setdefault(identity, score)
        # ranked best first: once two candidates score at least this one, no later one can pass them
        if identity != continuing and not (len(valid) >= 2 and score <= valid[1][1]):
            cost = math.inf if identity in far else transit_cost(history_of(identity), new, policy.topology)
            if cost == math.inf:
                excluded += 1
            else:
                valid.append((identity, score - cost))
                valid.sort(key=_second_desc)  # stable: equal scores keep the ranking's order
        if len(valid) >= 2 and score <= valid[1][1] and (continuing is None or continuing in scores):
            break
    best, best_score = valid[0] if valid else (None, math.nan)
    runner, runner_score = valid[1] if len(valid) > 1 else (None, math.nan)
    own = scores.get(continuing, math.nan) if continuing is not None else math.nan
    if continuing is not None and not (own < policy.threshold and _confident(valid, policy, own)):
        return Decision(
            "continuity",
            continuing,
            own,
            best,
            runner,
            best_score,
            f"continues track {new.track} on {new.camera}",
            excluded,
        )
    if continuing is not None:  # the tracker most likely switched people: the track's identity is not kept
        reason = (
            f"track {new.track} on {new.camera} scores {own:.3f} to its identity {continuing}, "
            f"{best_score:.3f} to {best}: the track switched people"
        )
        return Decision("link", best, best_score, best, runner, runner_score, reason, excluded)
    if placement is not None:
        colocated = _colocated(placement, history_of, new, policy)
        if colocated is not None:
            identity, reason = colocated
            score = placement.scores.get(identity, math.nan)
            return Decision("colocated", identity, score, best, runner, runner_score, reason, excluded)
    if best is None:
        return Decision("new", None, math.nan, None, None, math.nan, "no compatible identity", excluded)
    if best_score < policy.threshold:
        reason = f"best score {best_score:.3f} below threshold {policy.threshold}" + _penalty_note(
            scores[best], best_score
        )
        return Decision("new", None, best_score, best, runner, runner_score, reason, excluded)
    if runner is not None and best_score - runner_score < policy.margin:
        reason = f"ambiguous: runner-up within {best_score - runner_score:.3f} (margin {policy.margin})"
        return Decision("new", None, best_score, best, runner, runner_score, reason, excluded)
    reason = f"score {best_score:.3f} >= {policy.threshold}" + (
        f", {best_score - runner_score:.3f} above the runner-up" if runner is not None else ", no runner-up"
    )
    reason += _penalty_note(scores[best], best_score)
    return Decision("link", best, best_score, best, runner, runner_score, reason, excluded)


def _colocated(placement: Placement, history_of, new: Sighting, policy: MatchPolicy) -> tuple[int, str] | None:
    """The one candidate seen within ``ground.near`` of the tracklet (not far, and a possible move), with the
    reason; None when there is none or more than one."""
    near = [
        (i, n)
        for i, n in placement.near.items()
        if i not in placement.far and transit_cost(history_of(i), new, policy.topology) < math.inf
    ]
    if len(near) != 1:
        return None
    identity, n = near[0]
    score = placement.scores.get(identity, math.nan)
    g = policy.ground
    reason = (
        f"co-located on the floor plan: {n.distance:.2f} m apart over {n.moments} shared moments "
        f"(ground_near {g.near if g is not None else math.nan:g} m)"
    )
    if not math.isnan(score):
        reason += f"; cosine {score:.3f}"
    return identity, reason


def _penalty_note(cosine: float, score: float) -> str:
    """How a candidate's score came from its cosine, where a soft topology's transit penalty lowered it."""
    return "" if score == cosine else f" (cosine {cosine:.3f} less the transit penalty {cosine - score:.3f})"


def _second_desc(item: tuple[int, float]) -> float:
    return -item[1]


def _confident(valid: list[tuple[int, float]], policy: MatchPolicy, floor: float) -> bool:
    """Whether the best valid candidate clears the threshold, its runner-up and ``floor`` by the margin."""
    if not valid or valid[0][1] < policy.threshold:
        return False
    beaten = [valid[1][1]] if len(valid) > 1 else []
    if not math.isnan(floor):
        beaten.append(floor)
    return all(valid[0][1] - b >= policy.margin for b in beaten)


def update_exemplars(exemplars: np.ndarray, feature: np.ndarray, capacity: int, duplicate: float) -> np.ndarray:
    """The identity's exemplar set after seeing ``feature`` (rows L2-normalised, at most ``capacity``)."""
    if len(exemplars) == 0:
        return feature[None].astype(np.float32)
    sims = exemplars @ feature
    if sims.max() >= duplicate:
        return exemplars
    if len(exemplars) < capacity:
        return np.concatenate([exemplars, feature[None]]).astype(np.float32)
    out = exemplars.copy()
    out[int(np.argmax(sims))] = feature
    return out


def merge_exemplars(a: np.ndarray, b: np.ndarray, capacity: int, duplicate: float) -> np.ndarray:
    out = a
    for f in b:
        out = update_exemplars(out, f, capacity, duplicate)
    return out


def with_model_threshold(policy: MatchPolicy, threshold: float | None) -> MatchPolicy:
    """``policy`` linking at a model's calibrated ``threshold`` (None: ``policy`` as it is). The merge threshold
    stays at or above it: a merge must be at least as sure as a link."""
    if threshold is None:
        return policy
    return replace(policy, threshold=threshold, merge_threshold=max(policy.merge_threshold, threshold))
