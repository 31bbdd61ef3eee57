"""What the store's queries and maintenance return: frozen, typed views of the stored hashes.

Their JSON (``model_dump(mode="json", by_alias=True)``) is what ``crosscam ... --json`` prints and the HTTP
API answers. A field named ``from`` in JSON is ``from_`` in Python (a keyword); dump with ``by_alias=True``.
Times are stream seconds unless noted.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.matcher.rules import DecisionKind

StoredDecision = Literal[DecisionKind, "unlinked"]
"""A sighting's ``decision`` field: the matcher's rule, or ``unlinked`` when a user took it out of its person."""


class View(BaseModel):
    """A frozen view; fields given by alias or by name."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class SightingView(View):
    """One sighting: where and when, and the decision that gave it its identity. Fields a query did not read
    are empty strings (text) or None (numbers)."""

    sighting: str = Field(description="the sighting's id, camera:track:seq")
    camera: str
    model: str = Field(description="id of the model that embedded it")
    decision: StoredDecision
    reason: str
    stream_id: str = Field(description="id of its record on the tracklet stream")
    identity: int | None = Field(description="the identity it belongs to (merges rewrite it)")
    track: int | None
    seq: int | None
    excluded: int | None = Field(description="candidates ruled out by the space-time constraints")
    best: int | None = Field(description="the best candidate, even when not taken")
    runner_up: int | None
    t_start: float | None
    t_end: float | None
    score: float | None = Field(description="the best candidate's cosine score")
    runner_up_score: float | None
    ingested: float | None = Field(description="wall-clock time the matcher stored it")


class MergeStep(View):
    """One merge that carried an identity into another."""

    from_: int = Field(alias="from")
    into: int
    score: float


class Explanation(SightingView):
    """Why a sighting belongs to its person: its decision, then the merges from the identity it was given to
    the person that holds it."""

    merges: list[MergeStep]
    person: int


class History(View):
    """A person's cross-camera history: every sighting still stored, in time order."""

    person: int = Field(description="the identity that holds the sightings (merges followed)")
    asked: int = Field(description="the identity asked for")
    first_seen: float | None
    last_seen: float | None
    cameras: list[str] = Field(description="cameras in order of first sighting")
    thumb: str | None = Field(description="the sighting id of the person's thumbnail")
    sightings: list[SightingView]


class PersonSummary(View):
    """A person as listed: when and where seen, and how often."""

    person: int
    first_seen: float
    last_seen: float
    sightings: int
    cameras: list[str] = Field(description="cameras of the person's recent sightings")
    thumb: str = Field(description="the sighting id of the person's thumbnail")
    tentative: bool = Field(
        False,
        description="seen on one camera only, for less than matcher.tentative_seconds in all: possibly no one (a "
        "false detection); left out of lists unless asked for",
    )


class SearchHit(View):
    """A person who looks like the query, with the cosine score and the person's history."""

    person: int
    score: float
    history: History


class UnlinkResult(View):
    """A sighting taken out of its person into a new one."""

    sighting: str
    from_: int = Field(alias="from", description="the person it was taken from")
    person: int = Field(description="the new person that holds it")
    from_kept: bool = Field(description="whether the old person still has sightings")


class PruneResult(View):
    """What a prune removed."""

    sightings_removed: int
    persons_removed: int
    cutoff: float = Field(description="wall-clock time: sightings ingested before it were removed")
    trimmed: dict[str, int] = Field(
        default_factory=dict,
        description="entries removed from the streams (tracklets, decisions, dead_letters): those added before "
        "the cutoff, read by the matcher or not",
    )
