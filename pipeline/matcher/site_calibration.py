"""Self-calibration: the link threshold fitted from a site's own footage, without labels.

A site's geometry labels some pairs of tracklets for free (pure functions over ``pipeline.matcher.evidence``):

- **positives**: consecutive tracklets of one track (same camera and track id, ``seq`` k and k + 1) show one
  person (unless the tracker switched people, which is rare);
- **negatives**: tracklets of two tracks seen on one camera at the same moment (their time spans overlap)
  show two people.

Same-camera positives are much easier than the cross-camera pairs linking decides (one view, light and
pose), so the best separation of positives from negatives would link far too readily across cameras. The
negatives are the reliable half: two people side by side in one view share its light and angle, which lifts
their scores above those of different people across cameras, so their upper tail is a conservative stand-in
for the different-person scores a cross-camera link must stay clear of. The rule (``RULE``): the threshold
is the ``QUANTILE`` (95th percentile) of the negatives' scores, so two people seen together score above it
one time in twenty; the positives give the margin, the typical noise of one same-person score (the median
absolute deviation of their scores, clipped to ``MARGIN_RANGE``). Chosen on synthetic scenes against the
threshold the ground truth gives (``crosscam calibrate`` replays, docs/pipeline.md "Learning from the
site"). It suits a model whose different-people and same-person scores overlap; with one that separates people
well the best threshold lies above the negatives' tail, and the rule sets it too low (Market-1501 with the
bundled model: 0.28 against the labelled calibration's 0.57).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crosscam.errors import CrosscamError
from pipeline.matcher.evidence import StoredSighting

QUANTILE = 0.95  # of the co-visible negatives' scores: the threshold
MIN_NEGATIVES = 20  # fewer, and the 95th percentile is the largest score or worse
MIN_POSITIVES = 5
MARGIN_RANGE = (0.01, 0.1)
RULE = (
    "95th percentile of the scores of tracklets of two tracks seen on one camera at the same moment (two people); "
    "margin: median absolute deviation of the scores of consecutive tracklets of one track (one person)"
)


class TooFewPairs(CrosscamError):
    """The site has not yet seen enough people to fit a threshold from."""


@dataclass(frozen=True, eq=False)
class SitePairs:
    """Cosine scores of the pairs the site labels itself: ``positives float[P]`` (one person), ``negatives
    float[N]`` (two people)."""

    positives: np.ndarray
    negatives: np.ndarray


@dataclass(frozen=True)
class SiteFit:
    """A fitted threshold and margin, with what they rest on."""

    threshold: float
    margin: float
    positives: int
    negatives: int
    quantile: float = QUANTILE

    def as_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "margin": self.margin,
            "pairs": {"positives": self.positives, "negatives": self.negatives},
            "quantile": self.quantile,
            "rule": RULE,
        }


def pair_indices(sightings: Sequence[StoredSighting]) -> tuple[np.ndarray, np.ndarray]:
    """``(int[P,2], int[N,2])``: index pairs of the positives (consecutive tracklets of one track) and of the
    negatives (tracklets of two tracks on one camera whose time spans overlap)."""
    by_track: dict[tuple[str, int, int], int] = {}
    by_camera: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sightings):
        by_track[(s.camera, s.track, s.seq)] = i
        by_camera[s.camera].append(i)
    positives = [(by_track[(c, k, q - 1)], i) for (c, k, q), i in by_track.items() if (c, k, q - 1) in by_track]
    negatives = []
    for members in by_camera.values():
        members.sort(key=lambda i: (sightings[i].t_start, sightings[i].sighting))
        open_: list[int] = []  # started earlier, maybe still in view
        for i in members:
            s = sightings[i]
            open_ = [j for j in open_ if sightings[j].t_end > s.t_start]
            negatives += [(j, i) for j in open_ if sightings[j].track != s.track]
            open_.append(i)
    as_array = lambda x: np.array(sorted(x), np.int64).reshape(-1, 2)  # noqa: E731
    return as_array(positives), as_array(negatives)


def site_pairs(sightings: Sequence[StoredSighting], features: np.ndarray) -> SitePairs:
    """The self-labelled pairs' scores; ``features float[N,D]`` L2-normalised, row i for ``sightings[i]``."""
    pos, neg = pair_indices(sightings)
    f = np.asarray(features, np.float32)

    def cosines(pairs: np.ndarray) -> np.ndarray:
        return np.einsum("nd,nd->n", f[pairs[:, 0]], f[pairs[:, 1]]) if len(pairs) else np.zeros(0, np.float32)

    return SitePairs(cosines(pos), cosines(neg))


def fit_threshold(pairs: SitePairs, quantile: float = QUANTILE, what: str = "the site") -> SiteFit:
    """The link threshold and margin by ``RULE``; ``TooFewPairs`` (naming ``what``) below the minimum counts."""
    p, n = np.asarray(pairs.positives, np.float64), np.asarray(pairs.negatives, np.float64)
    if len(n) < MIN_NEGATIVES or len(p) < MIN_POSITIVES:
        raise TooFewPairs(
            f"{what}: {len(n)} pairs of people seen together on one camera and {len(p)} pairs of tracklets of "
            f"one track found; self-calibration needs at least {MIN_NEGATIVES} and {MIN_POSITIVES}: let the "
            "site run longer (more people, more of them in view at once), then calibrate again"
        )
    threshold = float(np.quantile(n, quantile))
    spread = float(np.median(np.abs(p - np.median(p))))
    margin = float(np.clip(spread, *MARGIN_RANGE))
    return SiteFit(round(threshold, 3), round(margin, 3), len(p), len(n), quantile)
