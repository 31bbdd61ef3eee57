"""The link threshold of the records' model. A threshold belongs to the model that made the features: every
worker announces its model before it publishes (``pipeline.bus.site_models``), and a record names its model
by id. ``ModelThreshold`` gives the rules to link a batch with: ``policy`` at the threshold announced for
the batch's model (looked up when the model id changes; ``policy.threshold`` while a model announced none)."""

from __future__ import annotations

import logging

from pipeline.bus.connect import Client
from pipeline.bus.site_models import announced_model
from pipeline.keys import Keys
from pipeline.matcher.rules import MatchPolicy, with_model_threshold
from pipeline.types import TrackletEmbedding

log = logging.getLogger(__name__)


class ModelThreshold:
    """``active``: the rules in force; ``follow(batch)`` moves them to the batch's model's threshold."""

    def __init__(self, client: Client, keys: Keys, policy: MatchPolicy, name: str) -> None:
        self.client, self.keys, self.policy, self.name = client, keys, policy, name
        self.active = policy
        self.model_id: str | None = None  # the model whose announced summary set ``active``
        self._logged: tuple[str, float] | None = None

    def follow(self, batch: list[TrackletEmbedding]) -> MatchPolicy:
        """The rules for ``batch`` (the last record's model decides; a batch of several models is logged)."""
        if not batch:
            return self.active
        model = batch[-1].model_id
        if len({t.model_id for t in batch}) > 1:
            log.warning(
                "matcher %s: one batch holds features of several models; their scores mean nothing "
                "to each other (one model per site)",
                self.name,
            )
        if model == self.model_id:
            return self.active
        summary = announced_model(self.client, self.keys, model)
        threshold = summary.get("link_threshold") if summary else None
        self.active = with_model_threshold(self.policy, None if threshold is None else float(threshold))
        if (model, self.active.threshold) != self._logged:
            self._logged = (model, self.active.threshold)
            log.info(
                "matcher %s: model %s, linking at %s (%s)",
                self.name,
                model,
                self.active.threshold,
                "its calibrated threshold" if threshold is not None else "no calibrated threshold announced",
            )
        self.model_id = model if summary is not None else None  # not announced yet: look again next batch
        return self.active
