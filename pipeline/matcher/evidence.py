"""What a site's own store shows, as plain values: its sightings (where, when, which identity, how decided)
and their features. Self-calibration (``pipeline.matcher.site_calibration``) and the learned topology
(``pipeline.matcher.topology_learn``) estimate from these; ``pipeline.store.sightings`` reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StoredSighting:
    """One stored sighting. ``score``: its decision's best candidate score (nan when it had none)."""

    sighting: str  # camera:track:seq
    identity: int
    camera: str
    track: int
    seq: int
    t_start: float
    t_end: float
    decision: str  # link, new, continuity or colocated
    score: float = math.nan
    model: str = ""
    merged: bool = False  # moved into its identity by a merge pass


@dataclass(frozen=True, eq=False)
class SiteEvidence:
    """A site's sightings of one model and their features (``float32[N,D]``, L2-normalised, row i for
    ``sightings[i]``)."""

    sightings: tuple[StoredSighting, ...]
    features: np.ndarray
    model: str = ""

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or len(self.features) != len(self.sightings):
            raise ValueError(
                f"features {self.features.shape} do not match {len(self.sightings)} sightings (one row each)"
            )
