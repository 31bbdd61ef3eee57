"""Every field of a tracklet record is bounded: the publisher refuses an oversized tracklet naming the field
and the limit, the consumer dead-letters an oversized record a rogue producer wrote (real Redis, the real
matcher), and a dead letter never stores the oversized values."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bus import records
from pipeline.bus.publisher import DEAD_MAXLEN, Publisher, dead_letter
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from tests.support.records import make_embedding

TEN_MB_JPEG = b"\xff\xd8" + bytes(10 * 1024 * 1024)  # passes the old JPEG prefix check


def test_the_publisher_refuses_a_10mb_thumbnail_naming_the_field_and_limit(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    with pytest.raises(records.RecordTooLarge, match=rf"'thumb' holds {len(TEN_MB_JPEG)} bytes; the limit is 262144"):
        publisher.publish(make_embedding(thumbnail=TEN_MB_JPEG))
    assert redis_client.xlen(bus_keys.tracklets) == 0 and publisher.counts["refused"] == 1
    assert redis_client.hget(bus_keys.stats, "refused") == b"1"
    publisher.publish(make_embedding(seq=1))  # the next one goes through
    assert redis_client.xlen(bus_keys.tracklets) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"camera_id": "c" * 1000}, "'camera'"),
        ({"model_id": "m" * 1000}, "'model'"),
        ({"site": "s" * 1000}, "'site'"),
        ({"feature": np.ones(20_000, np.float32) / np.sqrt(20_000)}, "feature of 20000 values"),
        ({"attention": np.ones(5000, np.float32) / 5000}, "attention of 5000"),
    ],
)
def test_every_field_is_bounded_when_encoded(overrides, field):
    with pytest.raises(records.RecordTooLarge, match=field):
        records.encode(make_embedding(**overrides))


def good_fields(**changes) -> dict:
    return records.encode(make_embedding()) | changes


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (good_fields(thumb=TEN_MB_JPEG), "field 'thumb' holds 10485762 bytes; the limit is 262144"),
        (good_fields(camera=b"c" * 300), "field 'camera' holds 300 bytes; the limit is 256"),
        (good_fields(extra=b"x" * 10_000), "field 'extra' holds 10000 bytes; the limit is 256"),
        (good_fields(**{f"x{i}": b"1" for i in range(40)}), "53 fields; at most 32"),
        (good_fields(**{"n" * 300: b"1"}), "field name of 300 bytes"),
        (good_fields(dim=b"9" * 40), "field 'dim' holds 40 bytes; the limit is 32"),
    ],
)
def test_the_consumer_rejects_an_oversized_record_before_reading_it(fields, message):
    with pytest.raises(records.RecordTooLarge, match=message):
        records.decode(fields)


def test_the_matcher_dead_letters_oversized_records_and_stores_only_their_small_fields(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    publisher.publish(make_embedding(site=bus_keys.site, seq=0))
    rogue = records.encode(make_embedding(site=bus_keys.site, seq=1)) | {"thumb": TEN_MB_JPEG}
    redis_client.xadd(bus_keys.tracklets, rogue)  # a producer that skips the publisher's check
    publisher.publish(make_embedding(site=bus_keys.site, seq=2))

    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.9)).start()
    matcher.run(idle_exit=0.3)
    assert matcher.counts["processed"] == 2 and matcher.counts["dead_letters"] == 1
    (_, dead), *rest = redis_client.xrange(bus_keys.dead)
    assert not rest
    assert b"'thumb' holds 10485762 bytes" in dead[b"reason"]
    assert dead[b"thumb"] == b"<omitted: 10485762 bytes, over the limit of 262144>"
    assert dead[b"camera"] == b"cam-1" and dead[b"seq"] == b"1"  # the small fields are kept
    assert sum(len(k) + len(v) for k, v in dead.items()) < records.MAX_RECORD_BYTES
    sighting = redis_client.hget(bus_keys.sighting("cam-1:7:1"), "thumb")
    assert sighting is None  # nothing of it was stored


def test_a_dead_letter_is_bounded_in_fields_and_bytes_and_the_stream_in_length(redis_client, bus_keys):
    fields = {f"f{i}".encode(): b"v" * (i * 100) for i in range(1000)}
    dead_letter(redis_client, bus_keys, "1-0", fields, "too many fields")
    (_, entry), *_ = redis_client.xrange(bus_keys.dead)
    assert entry[b"reason"] == b"too many fields" and entry[b"omitted_fields"] == b"968"
    assert entry[b"f2"] == b"v" * 200 and entry[b"f3"].startswith(b"<omitted: 300 bytes")
    assert len(entry) == records.MAX_FIELDS + 3
    for i in range(DEAD_MAXLEN + 500):
        dead_letter(redis_client, bus_keys, f"{i + 2}-0", {b"v": b"1"}, "bad")
    assert redis_client.xlen(bus_keys.dead) < DEAD_MAXLEN + 500  # trimmed (approximately) to DEAD_MAXLEN
