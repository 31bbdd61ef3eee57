"""A site's own fit of a model's link threshold (``crosscam calibrate --dataset site --write``): stored under
``P:{S}:calibration`` by model id, read by the matcher (``pipeline.matcher.thresholds``), which links at it
before the model's own calibrated threshold. A stored value that is not a threshold (``valid_threshold``) is
ignored, with one logged line and a count of the matcher's ``bad_values``, never an error."""

from __future__ import annotations

import json
import logging
import math

import redis

from pipeline.bus.connect import Client
from pipeline.keys import Keys

log = logging.getLogger(__name__)


def store_site_fit(client: Client, keys: Keys, model_id: str, fit: dict) -> None:
    """Store ``fit`` (JSON-able, with a ``threshold``) as the site's fit of ``model_id``."""
    threshold = fit.get("threshold")
    if not valid_threshold(threshold):
        raise ValueError(f"site fit threshold {threshold!r} is not {THRESHOLD_RULE}")
    client.hset(keys.calibration, model_id, json.dumps(fit))


THRESHOLD_RULE = "a number above 0 and at most 1"
"""What a link threshold read from Redis must be: a cosine, and a positive one; at 0 or below, features at right
angles or opposed (unrelated people) would link."""


def valid_threshold(value: object) -> bool:
    """Whether ``value`` (as JSON decoded it) is a link threshold: a real number, not a bool, finite, in (0, 1]."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 1


def site_fit(client: Client, keys: Keys, model_id: str) -> tuple[float | None, str | None]:
    """``(threshold, None)`` for the site's stored fit of ``model_id``; ``(None, None)`` without one; ``(None,
    why)`` for a stored value that cannot be used (``why`` names the key and the value)."""
    try:
        raw = client.hget(keys.calibration, model_id)
    except redis.ResponseError as e:  # a key of another type
        return None, f"{keys.calibration}: unreadable ({e})"
    if raw is None:
        return None, None
    try:
        fit = json.loads(raw)
        threshold = fit["threshold"]
    except (ValueError, TypeError, KeyError):
        return None, f"{keys.calibration} {model_id[:64]!r}: unreadable fit {raw[:80]!r}"
    if not valid_threshold(threshold):
        return (
            None,
            f"{keys.calibration} {model_id[:64]!r}: threshold {json.dumps(threshold)[:40]} is not {THRESHOLD_RULE}",
        )
    return float(threshold), None
