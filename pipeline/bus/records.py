"""The tracklet record on the Redis stream: a versioned, flat mapping of bytes (pure functions).

Schema version 1, every field required:

| field | value |
|---|---|
| ``v`` | ``1`` |
| ``site``, ``camera``, ``model`` | UTF-8 text |
| ``track``, ``seq``, ``dim``, ``frames`` | canonical decimal integers (``INTEGER``: 1 to 19 digits, no sign, no leading zero) |
| ``t_start``, ``t_end`` | decimal seconds (``SECONDS``), from 0 to ``MAX_SECONDS`` |
| ``feature`` | ``dim`` little-endian float16 values, an L2-normalised vector (norm 1 within ``NORM_TOLERANCE``) |
| ``attention`` | ``frames`` little-endian float16 values |
| ``thumb`` | a JPEG image |

Optional (a record without it is valid; a consumer that does not know it ignores it):

| field | value |
|---|---|
| ``closed`` | decimal seconds (as ``t_end``): the stream time of the frame the tracklet closed at (at or after ``t_end``), by which the matcher orders tracklets |
| ``path`` | the tracklet's per-frame boxes (``pipeline.types.PATH_COLUMNS``), ``PATH_ROW`` rows: frame index (int64), seconds after ``t_start`` (float32), x1, y1, x2, y2 (float32 pixels), score (float16; 0: filled in), frames strictly increasing, at most ``MAX_PATH_ROWS`` |

A consumer that meets another version or a malformed record gets ``RecordError`` and moves the
entry to the dead-letter stream (``pipeline.bus.publisher.dead_letter``); it never stops on one.

Numbers have one spelling each, so two spellings of one number can never name two tracklets (or one tracklet
twice): an integer is what ``str(int)`` writes and the API's sighting ids accept (``pipeline.ids``): ``7``, never
``07``, ``+7``, ``-7``, `` 7 `` or ``7_0``; seconds are what ``repr(float)`` writes for a finite value
(``12.5``, ``1e-05``), never ``nan``, ``inf`` or padded text, and lie between 0 and ``MAX_SECONDS`` (the start of
the year 2100 in Unix seconds: stream times are Unix seconds for live sources and seconds from the start for
files).

Sizes are bounded (``FIELD_LIMITS``, ``MAX_FIELDS``, ``MAX_RECORD_BYTES``): ``encode`` refuses a tracklet
with an oversized field and ``decode`` rejects such a record, both with ``RecordTooLarge`` naming the field
and its limit. The limits leave ample room for what a worker makes (a thumbnail is one crop at the
embedder's input size, JPEG quality 85: 5-30 KB; features have at most a few thousand values) while a
batch of the matcher's records stays far below Redis's 512 MB limit on one argument.
"""

from __future__ import annotations

import re

import numpy as np

from crosscam.errors import CrosscamError
from pipeline.ids import CAMERA_ID_RULE, is_camera_id
from pipeline.types import MAX_PATH_ROWS, TrackletEmbedding

SCHEMA_VERSION = 1
_F16 = np.dtype("<f2")
NORM_TOLERANCE = 0.01  # float16 storage moves a unit vector's norm by well under 1e-3


MAX_DIM = 8192  # feature values: re-ID features have 128-4096
MAX_FRAMES = 4096  # attention values: one per crop of a tracklet
MAX_THUMB_BYTES = 256 * 1024  # a JPEG crop at the embedder's input size is 5-30 KB
MAX_TEXT_BYTES = 256  # site, camera and model ids
MAX_NUMBER_BYTES = 32  # decimal integers and seconds
INTEGER = re.compile(rb"0|[1-9][0-9]{0,18}")
"""An integer field's one spelling: the ``[0-9]{1,19}`` of sighting ids (``pipeline.ids``) without leading zeros."""
SECONDS = re.compile(rb"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
"""A time field's spelling: decimal or exponent notation as ``repr(float)`` writes it, no padding or ``_``."""
MAX_SECONDS = 4_102_444_800.0  # 2100-01-01T00:00:00Z in Unix seconds: no stream time lies beyond it
PATH_ROW = np.dtype([("frame", "<i8"), ("dt", "<f4"), ("box", "<f4", (4,)), ("score", "<f2")])
FIELD_LIMITS = {
    "v": MAX_NUMBER_BYTES,
    "site": MAX_TEXT_BYTES,
    "camera": MAX_TEXT_BYTES,
    "model": MAX_TEXT_BYTES,
    "track": MAX_NUMBER_BYTES,
    "seq": MAX_NUMBER_BYTES,
    "t_start": MAX_NUMBER_BYTES,
    "t_end": MAX_NUMBER_BYTES,
    "dim": MAX_NUMBER_BYTES,
    "frames": MAX_NUMBER_BYTES,
    "feature": 2 * MAX_DIM,
    "attention": 2 * MAX_FRAMES,
    "thumb": MAX_THUMB_BYTES,
    "path": MAX_PATH_ROWS * PATH_ROW.itemsize,
    "closed": MAX_NUMBER_BYTES,
}
"""The most bytes each field's value may hold."""
MAX_FIELDS = 32  # a record has 13 to 15; a few more are tolerated (and ignored) for forward compatibility
MAX_RECORD_BYTES = 448 * 1024  # names and values together: every field at its limit fits (about 411 KiB)


class RecordError(CrosscamError):
    """A stream record that cannot be decoded: unknown version, missing or malformed field."""


class RecordTooLarge(RecordError):
    """A record, or one of its fields, over its size limit (``FIELD_LIMITS``, ``MAX_RECORD_BYTES``)."""


def _size(value: object) -> int:
    return len(value) if isinstance(value, (bytes, bytearray, memoryview, str)) else len(str(value))


def field_name(name: bytes | str) -> str:
    """A field name as text; bytes that are not UTF-8 are kept as backslash escapes."""
    return name.decode(errors="backslashreplace") if isinstance(name, (bytes, bytearray)) else str(name)


def check_size(fields: dict) -> None:
    """``RecordTooLarge`` naming the first field over its limit (``FIELD_LIMITS``; other fields:
    ``MAX_TEXT_BYTES``), or the record over ``MAX_FIELDS`` fields or ``MAX_RECORD_BYTES`` in all."""
    if len(fields) > MAX_FIELDS:
        raise RecordTooLarge(f"record has {len(fields)} fields; at most {MAX_FIELDS} are accepted")
    total = 0
    for name, value in fields.items():
        size, key = _size(value), field_name(name)
        limit = FIELD_LIMITS.get(key, MAX_TEXT_BYTES)
        if _size(name) > MAX_TEXT_BYTES:
            raise RecordTooLarge(f"a field name of {_size(name)} bytes; the limit is {MAX_TEXT_BYTES}")
        if size > limit:
            raise RecordTooLarge(f"field {key!r} holds {size} bytes; the limit is {limit}")
        total += size + _size(name)
    if total > MAX_RECORD_BYTES:
        raise RecordTooLarge(f"record of {total} bytes; the limit is {MAX_RECORD_BYTES}")


def bounded(fields: dict) -> dict[str, object]:
    """``fields`` as a dead letter keeps them: text names, the first ``MAX_FIELDS`` fields, and each value over
    its limit (``FIELD_LIMITS``; other fields: ``MAX_TEXT_BYTES``) replaced by a note of its size, so a dead
    letter is never larger than a valid record."""
    kept: dict[str, object] = {}
    for i, (name, value) in enumerate(fields.items()):
        if i == MAX_FIELDS:
            kept["omitted_fields"] = str(len(fields) - MAX_FIELDS)
            break
        key = field_name(name)[:MAX_TEXT_BYTES]
        limit = FIELD_LIMITS.get(key, MAX_TEXT_BYTES)
        size = _size(value)
        kept[key] = value if size <= limit else f"<omitted: {size} bytes, over the limit of {limit}>"
    return kept


def encode(t: TrackletEmbedding) -> dict[str, bytes]:
    """The tracklet's record; ``RecordTooLarge`` when a field is over its limit (``FIELD_LIMITS``), ``RecordError``
    for a negative id or a time outside 0 to ``MAX_SECONDS``."""
    feature = np.asarray(t.feature, dtype=np.float32).ravel()
    attention = np.asarray(t.attention, dtype=np.float32).ravel()
    if feature.size > MAX_DIM or attention.size > MAX_FRAMES:
        raise RecordTooLarge(
            f"feature of {feature.size} values or attention of {attention.size}; the limits are {MAX_DIM} and "
            f"{MAX_FRAMES} values"
        )
    fields = {
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
    if t.path is not None:
        fields["path"] = encode_path(t.path, t.t_start)
    if t.t_closed is not None:
        fields["closed"] = repr(float(t.t_closed)).encode()
    check_size(fields)
    if not is_camera_id(t.camera_id):
        raise RecordError(f"camera {t.camera_id[:64]!r} is not a camera id ({CAMERA_ID_RULE})")
    for name in ("track", "seq"):  # what the matcher would dead-letter is refused here
        _int(fields, name)
    for name in ("t_start", "t_end", "closed") if "closed" in fields else ("t_start", "t_end"):
        _float(fields, name)
    return fields


def encode_path(path: np.ndarray, t_start: float) -> bytes:
    """A tracklet's ``path`` (``float64[N,7]``, ``PATH_COLUMNS``) as the record's ``path`` bytes (``PATH_ROW`` rows)."""
    path = np.asarray(path, np.float64).reshape(-1, 7)
    rows = np.zeros(len(path), PATH_ROW)
    rows["frame"] = path[:, 0]
    rows["dt"] = path[:, 1] - t_start
    rows["box"] = path[:, 2:6]
    rows["score"] = path[:, 6]
    return rows.tobytes()


def decode_path(raw: bytes, t_start: float) -> np.ndarray:
    """The ``path`` bytes back as ``float64[N,7]``; ``RecordError`` when they are not whole ``PATH_ROW`` rows with
    increasing frames, finite values and boxes of positive size."""
    if len(raw) % PATH_ROW.itemsize:
        raise RecordError(f"field 'path' holds {len(raw)} bytes, not whole rows of {PATH_ROW.itemsize}")
    rows = np.frombuffer(raw, PATH_ROW)
    if not 0 < len(rows) <= MAX_PATH_ROWS:
        raise RecordError(f"field 'path' holds {len(rows)} rows; 1 to {MAX_PATH_ROWS} are accepted")
    out = np.empty((len(rows), 7), np.float64)
    out[:, 0] = rows["frame"]
    out[:, 1] = t_start + rows["dt"].astype(np.float64)
    out[:, 2:6] = rows["box"]
    out[:, 6] = rows["score"]
    if not np.isfinite(out).all():
        raise RecordError("field 'path' holds non-finite values")
    if (rows["frame"] < 0).any() or (np.diff(rows["frame"]) <= 0).any():
        raise RecordError("field 'path': frame indexes must be non-negative and increase")
    if (out[:, 4] <= out[:, 2]).any() or (out[:, 5] <= out[:, 3]).any():
        raise RecordError("field 'path': a box with x2 <= x1 or y2 <= y1")
    return out


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
    "path",
    "closed",
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
    raw = _field(fields, name)
    if not INTEGER.fullmatch(raw):
        raise RecordError(
            f"field {name!r} holds {raw[:40]!r}, not an integer (1 to 19 digits, no sign, padding or leading zero)"
        )
    return int(raw)


def _float(fields: dict, name: str) -> float:
    raw = _field(fields, name)
    if not SECONDS.fullmatch(raw):
        raise RecordError(f"field {name!r} holds {raw[:40]!r}, not a number of seconds in decimal notation")
    value = float(raw)
    if not 0.0 <= value <= MAX_SECONDS:  # also refuses what overflowed to inf
        raise RecordError(f"field {name!r} holds {raw[:40]!r}, outside 0 to {MAX_SECONDS:.0f} seconds (2100-01-01)")
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
    """The record's tracklet, or ``RecordError`` saying what is wrong with it (``RecordTooLarge`` for a field
    over its limit, checked before anything else is read)."""
    check_size(fields)
    version = _field(fields, "v")
    if version != str(SCHEMA_VERSION).encode():
        raise RecordError(f"unknown schema version {version[:16]!r}; this consumer reads version {SCHEMA_VERSION}")
    dim, frames = _int(fields, "dim"), _int(fields, "frames")
    if not 0 < dim <= MAX_DIM or not 0 < frames <= MAX_FRAMES:
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
    camera = _text(fields, "camera")
    if not is_camera_id(camera):
        raise RecordError(f"field 'camera' {camera[:64]!r} is not a camera id ({CAMERA_ID_RULE})")
    return TrackletEmbedding(
        site=_text(fields, "site"),
        camera_id=camera,
        track_id=_int(fields, "track"),
        seq=_int(fields, "seq"),
        t_start=t_start,
        t_end=t_end,
        feature=feature,
        attention=_vector(fields, "attention", frames),
        thumbnail=thumb,
        model_id=_text(fields, "model"),
        path=_path(fields, t_start),
        t_closed=_closed(fields, t_end),
    )


def _closed(fields: dict, t_end: float) -> float | None:
    if fields.get(_KEYS["closed"], fields.get("closed")) is None:
        return None
    closed = _float(fields, "closed")
    if closed < t_end:
        raise RecordError(f"field 'closed' {closed} is before t_end {t_end}: a tracklet closes after its last frame")
    return closed


def _path(fields: dict, t_start: float) -> np.ndarray | None:
    raw = fields.get(_KEYS["path"], fields.get("path"))
    if raw is None:
        return None
    return decode_path(raw if isinstance(raw, bytes) else str(raw).encode(), t_start)
