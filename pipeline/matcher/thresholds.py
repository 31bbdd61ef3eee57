"""The link threshold of the records' model. A threshold belongs to the model that made the features: every
worker announces its model before it publishes (``pipeline.bus.site_models``), and a record names its model
by id. ``ModelThreshold`` gives the rules to link a batch with: ``policy`` at the site's own fit of the
batch's model when there is one (``crosscam calibrate --dataset site --write``, ``pipeline.bus.site_fit``),
else at the threshold the model announced, else at ``policy.threshold``. The model's summary is looked up
when the model id changes; the site's fit also every ``recheck`` seconds, so a fit written while the
matcher runs is taken up. A site config's ``matcher.threshold`` wins over both (the matcher then does not
follow at all: ``pipeline.site``)."""

from __future__ import annotations

import logging
import time

from pipeline.bus.connect import Client
from pipeline.bus.site_fit import site_fit
from pipeline.bus.site_models import announced_model
from pipeline.keys import Keys
from pipeline.matcher.rules import MatchPolicy, with_model_threshold
from pipeline.types import TrackletEmbedding

log = logging.getLogger(__name__)

RECHECK = 10.0  # seconds between looks at the site's stored fit


class ModelThreshold:
    """``active``: the rules in force; ``follow(batch)`` moves them to the batch's model's threshold."""

    def __init__(self, client: Client, keys: Keys, policy: MatchPolicy, name: str, recheck: float = RECHECK) -> None:
        self.client, self.keys, self.policy, self.name, self.recheck = client, keys, policy, name, recheck
        self.active = policy
        self.model_id: str | None = None  # the model whose announced summary set ``active``
        self.announced: float | None = None  # that model's calibrated threshold
        self.next_check = 0.0  # when to read the site's fit again (monotonic clock)
        self._logged: tuple[str, float] | None = None
        self._bad: set[str] = set()  # unusable stored fits already logged

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
        now = time.monotonic()
        if model == self.model_id and now < self.next_check:
            return self.active
        if model != self.model_id:
            summary = announced_model(self.client, self.keys, model)
            threshold = summary.get("link_threshold") if summary else None
            self.announced = None if threshold is None else float(threshold)
            self.model_id = model if summary is not None else None  # not announced yet: look again next batch
        fitted, why = site_fit(self.client, self.keys, model)
        if why is not None and why not in self._bad:
            self._bad.add(why)
            log.warning("matcher %s: ignoring the site's stored fit: %s", self.name, why)
        self.next_check = now + self.recheck
        chosen = fitted if fitted is not None else self.announced
        self.active = with_model_threshold(self.policy, chosen)
        if (model, self.active.threshold) != self._logged:
            self._logged = (model, self.active.threshold)
            source = (
                "the site's own fit"
                if fitted is not None
                else "its calibrated threshold"
                if self.announced is not None
                else "no calibrated threshold announced"
            )
            log.info("matcher %s: model %s, linking at %s (%s)", self.name, model, self.active.threshold, source)
        return self.active
