"""The tracklet record on the Redis stream: a versioned, flat mapping of bytes (pure functions).

Schema version 1, every field required:

| field | value |
|---|---|
| ``v`` | ``1`` |
| ``site``, ``camera``, ``model`` | UTF-8 text |
| ``track``, ``seq``, ``dim``, ``frames`` | decimal integers |
| ``t_start``, ``t_end`` | decimal seconds |
| ``feature`` | ``dim`` little-endian float16 values, an L2-normalised vector (norm 1 within ``NORM_TOLERANCE``) |
| ``attention`` | ``frames`` little-endian float16 values |
| ``thumb`` | a JPEG image |

A consumer that meets another version or a malformed record gets ``RecordError`` and moves the
entry to the dead-letter stream (``pipeline.bus.publisher.dead_letter``); it never stops on one.
"""

from __future__ import annotations

import math

import numpy as np

from crosscam.errors import CrosscamError
from pipeline.types import TrackletEmbedding

SCHEMA_VERSION = 1
_F16 = np.dtype("<f2")
NORM_TOLERANCE = 0.01  # float16 storage moves a unit vector's norm by well under 1e-3


class RecordError(CrosscamError):
    """A stream record that cannot be decoded: unknown version, missing or malformed field."""


def encode(t: TrackletEmbedding) -> dict[str, bytes]:
    feature = np.asarray(t.feature, dtype=np.float32).ravel()
    attention = np.asarray(t.attention, dtype=np.float32).ravel()
    return {
        "v": str(SCHEMA_VERSION).encode(),
        "site": t.site.encode(),
        "camera": t.camera_id.encode(),
        "track": str(int(t.track_id)).encode(),
        "seq": str(int(t.seq)).encode(),
        "t_start": repr(float(t.t_start)).encode(),
        "t_end": repr(float(t.t_end)).encode(),
        "dim": str(feature.size).encode(),
        "feature": feature.astype(_F16).tobytes(),
        "frames": str(attention.size).encode(),
        "attention": attention.astype(_F16).tobytes(),
        "model": t.model_id.encode(),
        "thumb": bytes(t.thumbnail),
    }


_NAMES = (
    "v",
    "site",
    "camera",
    "track",
    "seq",
    "t_start",
    "t_end",
    "dim",
    "feature",
    "frames",
    "attention",
    "model",
    "thumb",
)
_KEYS = {name: name.encode() for name in _NAMES}  # Redis gives bytes keys; callers may pass str keys


def _field(fields: dict, name: str) -> bytes:
    value = fields.get(_KEYS[name])
    if value is None:
        value = fields.get(name)
        if value is None:
            raise RecordError(f"missing field {name!r}")
    return value if isinstance(value, bytes) else str(value).encode()


def _int(fields: dict, name: str) -> int:
    try:
        return int(_field(fields, name))
    except ValueError:
        raise RecordError(f"field {name!r} is not an integer") from None


def _float(fields: dict, name: str) -> float:
    try:
        value = float(_field(fields, name))
    except ValueError:
        raise RecordError(f"field {name!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError(f"field {name!r} is not finite")
    return value


def _vector(fields: dict, name: str, count: int) -> np.ndarray:
    raw = _field(fields, name)
    if len(raw) != 2 * count:
        raise RecordError(f"field {name!r} holds {len(raw)} bytes, expected {2 * count} ({count} float16 values)")
    values = np.frombuffer(raw, dtype=_F16).astype(np.float32)
    if not np.isfinite(values).all():
        raise RecordError(f"field {name!r} holds non-finite values")
    return values


def _text(fields: dict, name: str) -> str:
    try:
        return _field(fields, name).decode()
    except UnicodeDecodeError:
        raise RecordError(f"field {name!r} is not UTF-8 text") from None


def decode(fields: dict) -> TrackletEmbedding:
    """The record's tracklet, or ``RecordError`` saying what is wrong with it."""
    version = _field(fields, "v")
    if version != str(SCHEMA_VERSION).encode():
        raise RecordError(f"unknown schema version {version[:16]!r}; this consumer reads version {SCHEMA_VERSION}")
    dim, frames = _int(fields, "dim"), _int(fields, "frames")
    if not 0 < dim <= 65536 or not 0 < frames <= 4096:
        raise RecordError(f"implausible dim {dim} or frames {frames}")
    t_start, t_end = _float(fields, "t_start"), _float(fields, "t_end")
    if t_end < t_start:
        raise RecordError(f"t_end {t_end} is before t_start {t_start}")
    thumb = _field(fields, "thumb")
    if not thumb.startswith(b"\xff\xd8"):
        raise RecordError("field 'thumb' is not a JPEG image")
    feature = _vector(fields, "feature", dim)
    norm = float(np.linalg.norm(feature))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise RecordError(
            f"field 'feature' is not L2-normalised (norm {norm:.4g}); a producer must publish unit-length features"
        )
    return TrackletEmbedding(
        site=_text(fields, "site"),
        camera_id=_text(fields, "camera"),
        track_id=_int(fields, "track"),
        seq=_int(fields, "seq"),
        t_start=t_start,
        t_end=t_end,
        feature=feature,
        attention=_vector(fields, "attention", frames),
        thumbnail=thumb,
        model_id=_text(fields, "model"),
    )
