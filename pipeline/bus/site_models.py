"""The models a site's workers embed with, and the threshold each was calibrated for.

A threshold belongs to the model that made the features. Every worker announces its model before it
publishes a record (``HSET P:{S}:models <model id> <JSON summary>``); the matcher, which learns a model only
from the id in the records, looks the summary up and links at that model's calibrated ``link_threshold``
unless the site config sets ``matcher.threshold``.

Workers write this key, so what is read from it is checked (``read_announced``): a summary that is not a JSON
object, or a ``link_threshold`` that is not a threshold (``pipeline.bus.site_fit.valid_threshold``: a string,
``-1``, ``NaN``), is ignored with the reason why; the matcher then links at its own threshold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis

from models.spec import ModelSpec
from pipeline.bus.connect import Client
from pipeline.bus.site_fit import THRESHOLD_RULE, valid_threshold
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


@dataclass(frozen=True)
class Announced:
    """What the site's models key holds for one model: ``summary`` (None when it holds nothing usable),
    ``threshold`` (its checked ``link_threshold``; None when it has none or a bad one) and ``problem`` (why
    something was ignored, naming the key and the value; None when nothing was)."""

    summary: dict | None
    threshold: float | None
    problem: str | None = None


def read_announced(client: Client, keys: Keys, model_id: str) -> Announced:
    """The checked summary a worker announced for ``model_id`` (see the module's docstring); never raises for
    what the key holds."""
    where = f"{keys.models} {model_id[:64]!r}"
    try:
        raw = client.hget(keys.models, model_id)
    except redis.ResponseError as e:  # a key of another type
        return Announced(None, None, f"{keys.models}: unreadable ({e})")
    if raw is None:
        return Announced(None, None)
    try:
        summary = json.loads(raw)
    except ValueError:
        return Announced(None, None, f"{where}: unreadable summary {raw[:80]!r}")
    if not isinstance(summary, dict):
        return Announced(None, None, f"{where}: summary {raw[:80]!r} is not a JSON object")
    threshold = summary.get("link_threshold")
    if threshold is None:
        return Announced(summary, None)
    if not valid_threshold(threshold):
        why = f"{where}: link_threshold {json.dumps(threshold)[:40]} is not {THRESHOLD_RULE}"
        return Announced(summary | {"link_threshold": None}, None, why)
    return Announced(summary, float(threshold))


def announced_model(client: Client, keys: Keys, model_id: str) -> dict | None:
    """The summary a worker announced for ``model_id``, or None; a ``link_threshold`` that is not a threshold
    reads as None (logged)."""
    announced = read_announced(client, keys, model_id)
    if announced.problem is not None:
        log.warning("ignored: %s", announced.problem)
    return announced.summary
