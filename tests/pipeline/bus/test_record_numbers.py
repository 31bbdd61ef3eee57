"""Numbers in a tracklet record have one spelling: integers as the API's sighting ids spell them (1 to 19 digits,
no sign, padding or leading zero), seconds finite, in decimal notation and between 0 and ``MAX_SECONDS``. Anything
else is dead-lettered with its reason by the real matcher on a real Redis, and never shadows a valid tracklet."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline import store
from pipeline.bus import records
from pipeline.bus.publisher import Publisher
from pipeline.bus.records import RecordError
from pipeline.ids import is_sighting_id
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from tests.support.records import make_embedding

BAD_INTEGERS = [b"-7", b" 1_0 ", b"1_0", b"+7", b"07", b"7 ", b"\xd9\xa7", b"1" * 20, b"9" * 32, b"", b"1e3", b"7.0"]
BAD_SECONDS = [b"nan", b"NaN", b"inf", b"-inf", b"1e308", b"-1e308", b"1e400", b"-5.0", b" 100.5", b"1_00.5", b"0x10"]


@pytest.mark.parametrize("raw", BAD_INTEGERS)
@pytest.mark.parametrize("name", ["track", "seq", "dim", "frames"])
def test_an_integer_with_another_spelling_is_refused_naming_the_field(name, raw):
    with pytest.raises(RecordError, match=rf"field '{name}' holds .*not an integer \(1 to 19 digits"):
        records.decode(records.encode(make_embedding()) | {name: raw})


@pytest.mark.parametrize("raw", BAD_SECONDS)
@pytest.mark.parametrize("name", ["t_start", "t_end", "closed"])
def test_a_time_that_is_not_finite_seconds_in_range_is_refused_naming_the_field(name, raw):
    with pytest.raises(RecordError, match=rf"field '{name}' holds"):
        records.decode(records.encode(make_embedding(t_start=1.0, t_end=2.0, t_closed=3.0)) | {name: raw})


@pytest.mark.parametrize(
    ("track", "seq", "start", "end"),
    [(0, 0, 0.0, 0.0), (9_999_999_999_999_999_999, 10, 1e-05, 2.5), (12, 3, 1_700_000_000.125, 4_102_444_800.0)],
)
def test_canonical_numbers_at_their_bounds_round_trip_and_make_sighting_ids(track, seq, start, end):
    t = make_embedding(track_id=track, seq=seq, t_start=start, t_end=end)
    back = records.decode(records.encode(t))
    assert (back.track_id, back.seq, back.t_start, back.t_end) == (track, seq, start, end)
    assert is_sighting_id(back.tracklet_id)


@pytest.mark.parametrize(
    "change", [{"track_id": -7}, {"seq": -1}, {"t_start": -1.0}, {"t_end": 1e308}, {"t_closed": float("inf")}]
)
def test_the_publisher_refuses_what_the_matcher_would_dead_letter(change):
    with pytest.raises(RecordError, match="holds"):
        records.encode(dataclasses.replace(make_embedding(t_start=1.0, t_end=2.0), **change))


def test_the_matcher_dead_letters_other_spellings_and_keeps_the_tracklet_they_would_shadow(redis_client, bus_keys):
    site = bus_keys.site
    good = records.encode(make_embedding(site=site, track_id=10, seq=0))
    rogue = {  # written straight to the stream, as a producer that skips the publisher could
        "track ' 1_0 '": good | {"track": b" 1_0 "},  # int() reads it as 10: it would take track 10's place
        "track '-7'": good | {"track": b"-7"},
        "seq of 32 digits": good | {"seq": b"1" * 32},
        "t_end 1e308": good | {"t_end": b"1e308"},
        "t_start -1e308": good | {"t_start": b"-1e308"},
        "t_start NaN": good | {"t_start": b"NaN"},
        "closed inf": good | {"closed": b"inf"},
    }
    for fields in rogue.values():
        redis_client.xadd(bus_keys.tracklets, fields)
    Publisher(redis_client, bus_keys).publish(make_embedding(site=site, track_id=10, seq=0))

    matcher = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.9), consumer="m").start()
    matcher.run(idle_exit=0.3)

    assert matcher.counts["dead_letters"] == len(rogue) and matcher.counts["processed"] == 1
    reasons = [entry[b"reason"].decode() for _, entry in redis_client.xrange(bus_keys.dead)]
    assert len(reasons) == len(rogue)
    assert "field 'track' holds b' 1_0 ', not an integer" in reasons[0]
    assert "field 'track' holds b'-7'" in reasons[1] and "field 'seq' holds b'1111" in reasons[2]
    assert "field 't_end' holds b'1e308', outside 0 to 4102444800 seconds" in reasons[3]
    assert "field 't_start' holds b'-1e308'" in reasons[4] and "field 't_start' holds b'NaN'" in reasons[5]
    assert "field 'closed' holds b'inf'" in reasons[6]
    # the valid track 10 was stored, not dropped as a duplicate of ' 1_0 '
    assert store.explain(redis_client, bus_keys, "cam-1:10:0").camera == "cam-1"
    assert redis_client.zcard(bus_keys.ingested) == 1
