"""The versioned tracklet record: round trip and every way a record can be malformed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.bus import records
from pipeline.bus.records import RecordError
from tests.support.records import make_embedding


def test_round_trip():
    t = make_embedding(dim=2048)
    fields = records.encode(t)
    assert len(fields["feature"]) == 2048 * 2  # float16
    back = records.decode({k.encode(): v for k, v in fields.items()})  # as redis-py returns them
    assert (back.site, back.camera_id, back.track_id, back.seq, back.model_id) == ("lobby", "cam-1", 7, 2, t.model_id)
    assert (back.t_start, back.t_end) == (100.25, 103.5)
    np.testing.assert_allclose(back.feature, t.feature, atol=1e-3)
    np.testing.assert_allclose(back.attention, t.attention, atol=1e-3)
    assert back.thumbnail == t.thumbnail and back.tracklet_id == "cam-1:7:2"


PATH = np.array(
    [[120, 100.25, 10.5, 20, 40.25, 90, 0.875], [121, 100.35, 11, 20, 41, 90, 0.0], [123, 100.55, 12, 21, 42, 91, 0.5]]
)


def test_the_per_frame_path_travels_with_the_record_and_is_optional():
    fields = records.encode(make_embedding(path=PATH))
    assert len(fields["path"]) == 3 * records.PATH_ROW.itemsize
    back = records.decode(fields)
    assert back.path[:, 0].tolist() == [120, 121, 123]
    np.testing.assert_allclose(back.path, PATH, atol=1e-5)  # times relative to t_start in float32: microseconds
    assert records.decode(records.encode(make_embedding())).path is None  # a record without one is whole


def test_the_closing_time_travels_with_the_record_and_is_optional():
    back = records.decode(records.encode(make_embedding(t_closed=104.6)))
    assert back.t_closed == 104.6 and records.decode(records.encode(make_embedding())).t_closed is None
    with pytest.raises(RecordError, match="before t_end"):
        records.decode(records.encode(make_embedding()) | {"closed": b"100.0"})
    with pytest.raises(RecordError, match="'closed' holds b'inf', not a number of seconds"):
        records.decode(records.encode(make_embedding()) | {"closed": b"inf"})


def _path_rows(**changes) -> bytes:
    rows = np.frombuffer(records.encode(make_embedding(path=PATH))["path"], records.PATH_ROW).copy()
    for name, (i, value) in changes.items():
        rows[name][i] = value
    return rows.tobytes()


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"\x00" * 7, "not whole rows"),
        (b"", "1 to 4096"),
        (_path_rows(frame=(1, 120)), "increase"),
        (_path_rows(frame=(0, -1)), "non-negative"),
        (_path_rows(dt=(2, np.inf)), "non-finite"),
        (_path_rows(box=(0, [40, 20, 10, 90])), "x2 <= x1"),
    ],
)
def test_a_malformed_path_is_a_malformed_record(raw, message):
    fields = records.encode(make_embedding(path=PATH)) | {"path": raw}
    with pytest.raises(RecordError, match=message):
        records.decode(fields)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"v": b"2"}, "unknown schema version"),
        ({"dim": b"9"}, "expected 18"),
        ({"dim": b"x"}, "'dim' holds b'x', not an integer"),
        ({"t_start": b"nan"}, "not a number of seconds"),
        ({"t_end": b"1.0"}, "before t_start"),
        ({"thumb": b"PNG..."}, "not a JPEG"),
        ({"camera": b"\xff\xfe"}, "not UTF-8"),
        ({"feature": np.full(8, np.inf, np.float16).tobytes()}, "non-finite"),
        ({"frames": b"0"}, "implausible"),
        ({"camera": b"<img src=x onerror=alert(1)>"}, "not a camera id"),
        ({"camera": b"cam:1"}, "not a camera id"),
    ],
)
def test_malformed_records(change, message):
    fields = records.encode(make_embedding()) | change
    with pytest.raises(RecordError, match=message):
        records.decode(fields)


def test_missing_field():
    fields = records.encode(make_embedding())
    del fields["model"]
    with pytest.raises(RecordError, match="missing field 'model'"):
        records.decode(fields)


@pytest.mark.parametrize(
    "feature",
    [np.full(8, 10.0, np.float32), np.zeros(8, np.float32), np.full(8, 0.1, np.float32)],
    ids=["all-ten", "zero", "short"],
)
def test_a_feature_that_is_not_unit_length_is_refused(feature):
    """Features are L2-normalised by contract: an all-10.0 feature would score 23 against a real one."""
    with pytest.raises(RecordError, match="not L2-normalised"):
        records.decode(records.encode(make_embedding(feature=feature)))


def test_a_tracklet_whose_camera_id_is_not_one_is_not_published():
    t = dataclasses.replace(make_embedding(), camera_id="<img src=x>")
    with pytest.raises(RecordError, match="not a camera id"):
        records.encode(t)
