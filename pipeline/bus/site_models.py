"""The models a site's workers embed with, and the threshold each was calibrated for.

A threshold belongs to the model that made the features. Every worker announces its model before it
publishes a record (``HSET P:{S}:models <model id> <JSON summary>``); the matcher, which learns a model only
from the id in the records, looks the summary up and links at that model's calibrated ``link_threshold``
unless the site config sets ``matcher.threshold``.
"""

from __future__ import annotations

import json
import logging

from models.spec import ModelSpec
from pipeline.bus.connect import Client
from pipeline.keys import Keys

log = logging.getLogger(__name__)


def model_summary(spec: ModelSpec) -> dict:
    """What the matcher needs to know of a model: its calibrated threshold, and where that came from."""
    return {
        "arch": spec.arch.name,
        "feature_dim": spec.feature_dim,
        "link_threshold": spec.link_threshold,
        "calibration": spec.provenance.get("calibration"),
    }


def announce_model(client: Client, keys: Keys, spec: ModelSpec) -> None:
    """Register the model a worker embeds with under the site's models key, before it publishes a record."""
    client.hset(keys.models, spec.model_id, json.dumps(model_summary(spec)))


def announced_model(client: Client, keys: Keys, model_id: str) -> dict | None:
    """The summary a worker announced for ``model_id``, or None."""
    raw = client.hget(keys.models, model_id)
    if raw is None:
        return None
    try:
        summary = json.loads(raw)
    except ValueError:
        log.warning("unreadable summary of model %s under %s; ignored", model_id, keys.models)
        return None
    return summary if isinstance(summary, dict) else None
