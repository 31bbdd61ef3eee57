"""A restarted worker numbers its tracks after the highest one its camera published, so its tracklets'
ids (``camera:track:seq``) are new to the site: a tracker numbers its tracks from 1 in every process, and
the matcher skips a tracklet id it holds already as a repeat."""

from __future__ import annotations

from pipeline.bus import records
from pipeline.bus.publisher import Publisher, last_track
from tests.support.cli import run_json, site_args
from tests.support.records import make_embedding

SCENE = "synth://?cameras=2&people=4&seconds=8&seed=5&camera=0"


def test_the_highest_published_track_is_kept_per_camera(redis_client, bus_keys):
    publisher = Publisher(redis_client, bus_keys)
    for camera, track in [("hall", 7), ("hall", 3), ("door", 2)]:  # tracks close out of order
        publisher.publish(make_embedding(site=bus_keys.site, camera_id=camera, track_id=track))
    assert last_track(redis_client, bus_keys, "hall") == 7 and last_track(redis_client, bus_keys, "door") == 2
    assert last_track(redis_client, bus_keys, "gate") == 0


def test_a_restarted_worker_publishes_tracklet_ids_the_site_has_not_seen(
    capsys, redis_client, bus_keys, tiny_checkpoints
):
    argv = ["worker", "--camera", "hall", "--source", SCENE, "--detector", "motion"]
    argv += ["--embedder", str(tiny_checkpoints["tiny_attention"]), *site_args(redis_client, bus_keys)]
    for _ in range(2):  # the same camera, started twice
        code, _, err = run_json(capsys, *argv)
        assert code == 0, err
    ids = [records.decode(f).tracklet_id for _, f in redis_client.xrange(bus_keys.tracklets)]
    assert len(ids) >= 4 and len(set(ids)) == len(ids)
