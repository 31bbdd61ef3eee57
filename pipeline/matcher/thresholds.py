"""The link threshold of the records' model. A threshold belongs to the model that made the features: every
worker announces its model before it publishes (``pipeline.bus.site_models``), and a record names its model
by id. ``ModelThreshold`` gives the rules to link a batch with: ``policy`` at the site's own fit of the
batch's model when there is one (``crosscam calibrate --dataset site --write``, ``pipeline.bus.site_fit``),
else at the threshold the model announced, else at ``policy.threshold``. Both are looked up when the model id
changes and again every ``recheck`` seconds, so a fit or a summary written while the matcher runs is taken up.
Both keys are written by other roles: a value that is not a threshold (``pipeline.bus.site_fit.valid_threshold``)
is ignored and reported to ``bad`` (``pipeline.matcher.bad_values``). A site config's ``matcher.threshold`` wins over both (the matcher then does not
follow at all: ``pipeline.site``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pipeline.bus.connect import Client
from pipeline.bus.site_fit import site_fit
from pipeline.bus.site_models import read_announced
from pipeline.keys import Keys
from pipeline.matcher.bad_values import BadValues
from pipeline.matcher.rules import MatchPolicy, with_model_threshold
from pipeline.types import TrackletEmbedding

log = logging.getLogger(__name__)

RECHECK = 10.0  # seconds between looks at the site's stored fit


class ModelThreshold:
    """``active``: the rules in force; ``follow(batch)`` moves them to the batch's model's threshold."""

    def __init__(
        self,
        client: Client,
        keys: Keys,
        policy: MatchPolicy,
        name: str,
        recheck: float = RECHECK,
        bad: Callable[[str], None] | None = None,
    ) -> None:
        """``bad``: told of each stored value ignored (default: logged once each, ``BadValues``)."""
        self.client, self.keys, self.policy, self.name, self.recheck = client, keys, policy, name, recheck
        self.bad = bad or BadValues(name)
        self.active = policy
        self.model_id: str | None = None  # the model whose stored thresholds were read last
        self.announced: float | None = None  # that model's calibrated threshold
        self.next_check = 0.0  # when to read them again (monotonic clock)
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
        now = time.monotonic()
        if model == self.model_id and now < self.next_check:
            return self.active
        announced = read_announced(self.client, self.keys, model)
        self.announced = announced.threshold
        self.model_id = model if announced.summary is not None else None  # not announced yet: look again next batch
        fitted, why = site_fit(self.client, self.keys, model)
        if announced.problem is not None:
            self.bad(f"the model's announced summary: {announced.problem}")
        if why is not None:
            self.bad(f"the site's stored fit: {why}")
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
