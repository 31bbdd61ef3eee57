"""How a prediction is scored (``pipeline.tracks.metrics``), in a module light enough for the CLI's parser."""

from __future__ import annotations

from dataclasses import dataclass

from crosscam.errors import CrosscamError


class ScoringError(CrosscamError):
    """Ground truth and prediction that cannot be scored against each other as given."""


@dataclass(frozen=True)
class ScoreOptions:
    """How a prediction is scored.

    ``iou``: the box overlap at which a predicted box matches a ground-truth box (0.5, MOTChallenge's).
    ``gt_ids``: score only these ground-truth identities; predicted boxes that match another ground-truth
    identity in their frame are dropped, as for a distractor. ``None``: every identity.
    ``local_ids``: identities are each camera's own, in ground truth and prediction alike (the same number in
    two cameras is two people); the figures then measure tracking within cameras, not linking across them.
    """

    iou: float = 0.5
    gt_ids: frozenset[int] | None = None
    local_ids: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.iou <= 1:
            raise ScoringError(f"IoU threshold {self.iou}: give a box overlap above 0 and at most 1 (0.5 is usual)")
        if self.gt_ids is not None and (not self.gt_ids or min(self.gt_ids) < 1):
            raise ScoringError(f"identities to score {sorted(self.gt_ids)}: give ground-truth identities (>= 1)")
