"""A site's own fit of a model's link threshold (``crosscam calibrate --dataset site --write``): stored under
``P:{S}:calibration`` by model id, read by the matcher (``pipeline.matcher.thresholds``), which links at it
before the model's own calibrated threshold. A stored value that is not a finite cosine in [-1, 1] is
ignored, with one logged line, never an error."""

from __future__ import annotations

import json
import logging
import math

from pipeline.bus.connect import Client
from pipeline.keys import Keys

log = logging.getLogger(__name__)


def store_site_fit(client: Client, keys: Keys, model_id: str, fit: dict) -> None:
    """Store ``fit`` (JSON-able, with a ``threshold``) as the site's fit of ``model_id``."""
    threshold = fit.get("threshold")
    if not valid_threshold(threshold):
        raise ValueError(f"site fit threshold {threshold!r} is not a cosine in [-1, 1]")
    client.hset(keys.calibration, model_id, json.dumps(fit))


def valid_threshold(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and -1 <= value <= 1


def site_fit(client: Client, keys: Keys, model_id: str) -> tuple[float | None, str | None]:
    """``(threshold, None)`` for the site's stored fit of ``model_id``; ``(None, None)`` without one; ``(None,
    why)`` for a stored value that cannot be used (``why`` names the key and the value)."""
    raw = client.hget(keys.calibration, model_id)
    if raw is None:
        return None, None
    try:
        fit = json.loads(raw)
        threshold = fit["threshold"]
    except (ValueError, TypeError, KeyError):
        return None, f"{keys.calibration} {model_id}: unreadable fit {raw[:80]!r}"
    if not valid_threshold(threshold):
        return None, f"{keys.calibration} {model_id}: threshold {threshold!r} is not a finite cosine in [-1, 1]"
    return float(threshold), None
