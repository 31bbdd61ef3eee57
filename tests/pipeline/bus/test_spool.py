"""The spool: tracklets a stopping camera process could not publish, kept on disk and published, in order, by the
next start, against a real Redis."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import redis

from pipeline.bus import records, spool
from pipeline.bus.backlog import transient
from pipeline.bus.publisher import Publisher, dead_letter
from tests.support.records import make_embedding


def _replay(folder, client, keys, publish=None):
    return spool.replay_spools(
        folder,
        "lobby",
        publish or Publisher(client, keys).publish,
        lambda source, fields, reason: dead_letter(client, keys, source, fields, reason),
        transient,
    )


def _on_stream(client, keys) -> list[tuple[str, int, int]]:
    return [(t.camera_id, t.track_id, t.seq) for t in (records.decode(f) for _, f in client.xrange(keys.tracklets))]


def test_a_spool_file_round_trips_every_field(tmp_path):
    waiting = [make_embedding(seq=i, t_end=103.5 + i) for i in range(3)]
    path = spool.write_spool(tmp_path, "lobby", waiting)
    assert path.parent == tmp_path / "lobby" and path.suffix == ".spool" and not list(path.parent.glob("*.tmp"))
    site, fields = spool.read_spool(path)
    back = [records.decode(f) for f in fields]
    assert site == "lobby" and [t.seq for t in back] == [0, 1, 2]
    for a, b in zip(waiting, back, strict=True):
        assert (a.camera_id, a.track_id, a.t_end, a.thumbnail) == (b.camera_id, b.track_id, b.t_end, b.thumbnail)
        np.testing.assert_allclose(a.feature, b.feature, atol=1e-3)  # float16 on the stream


def test_the_next_start_publishes_spooled_tracklets_in_order_and_removes_the_files(tmp_path, redis_client, bus_keys):
    spool.write_spool(tmp_path, "lobby", [make_embedding(track_id=3, seq=i) for i in range(2)])
    spool.write_spool(tmp_path, "lobby", [make_embedding(track_id=4, seq=0)])
    spool.write_spool(tmp_path, "other-site", [make_embedding(track_id=9, seq=0)])
    done = _replay(tmp_path, redis_client, bus_keys)
    assert (done.published, done.files, done.dead, done.interrupted) == (3, 2, 0, False)
    assert _on_stream(redis_client, bus_keys) == [("cam-1", 3, 0), ("cam-1", 3, 1), ("cam-1", 4, 0)]
    assert spool.pending(tmp_path, "lobby") == [] and len(spool.pending(tmp_path, "other-site")) == 1
    assert _replay(tmp_path, redis_client, bus_keys).published == 0  # nothing twice


def test_an_unreadable_spool_file_is_set_aside_named_and_the_rest_published(tmp_path, redis_client, bus_keys, caplog):
    caplog.set_level(logging.ERROR)
    first = spool.write_spool(tmp_path, "lobby", [make_embedding(track_id=1, seq=i) for i in range(2)])
    first.write_text("\n".join(first.read_text().splitlines()[:-1]) + "\n")  # truncated by a crash
    spool.write_spool(tmp_path, "lobby", [make_embedding(track_id=2)])
    done = _replay(tmp_path, redis_client, bus_keys)
    assert done.published == 1 and done.bad_files == [first.with_suffix(".bad")] and done.bad_files[0].is_file()
    assert _on_stream(redis_client, bus_keys) == [("cam-1", 2, 2)]
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(first) in line and "truncated" in line and ".bad" in line


def test_a_spooled_record_that_no_longer_decodes_is_dead_lettered(tmp_path, redis_client, bus_keys):
    path = spool.write_spool(tmp_path, "lobby", [make_embedding(track_id=1), make_embedding(track_id=2)])
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"v": "', '"v": "OTk=", "x": "')  # schema version 99
    path.write_text("\n".join(lines) + "\n")
    done = _replay(tmp_path, redis_client, bus_keys)
    assert (done.published, done.dead) == (1, 1) and not path.exists()
    ((_, dead),) = redis_client.xrange(bus_keys.dead)
    assert dead[b"source_id"].startswith(b"spool:") and b"spooled record" in dead[b"reason"]


def test_a_redis_outage_during_the_replay_keeps_the_file_for_the_next_start(tmp_path, redis_client, bus_keys):
    path = spool.write_spool(tmp_path, "lobby", [make_embedding(seq=i) for i in range(3)])
    publisher, calls = Publisher(redis_client, bus_keys), []

    def down_after_one(t):
        if calls:
            raise redis.ConnectionError("Connection refused")
        calls.append(publisher.publish(t))

    done = _replay(tmp_path, redis_client, bus_keys, down_after_one)
    assert done.interrupted and done.published == 1 and path.is_file()
    assert _replay(tmp_path, redis_client, bus_keys).published == 3 and not path.exists()
    # the first record went out twice; the matcher stores a camera, track and sequence number once
    assert _on_stream(redis_client, bus_keys) == [("cam-1", 7, 0), ("cam-1", 7, 0), ("cam-1", 7, 1), ("cam-1", 7, 2)]


@pytest.mark.parametrize("text", ["", "not json\n", '{"spool": 2, "site": "lobby", "records": 0}\n'])
def test_a_file_that_is_not_a_spool_is_refused_with_its_name(tmp_path, text):
    path = tmp_path / "x.spool"
    path.write_text(text)
    with pytest.raises(spool.SpoolError, match=r"x\.spool:1: not a crosscam spool file"):
        spool.read_spool(path)
