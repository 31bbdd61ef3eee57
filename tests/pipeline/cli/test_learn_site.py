"""Learning from a site's own store, through the CLI and a real Redis: ``crosscam calibrate --dataset site``
(and the matcher following the stored fit), ``crosscam topology learn``; and their bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from pipeline.bus.publisher import Publisher
from pipeline.config import load_config
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.matcher.thresholds import ModelThreshold
from pipeline.types import TrackletEmbedding
from tests.support.cli import run_json, site_args

THUMB = b"\xff\xd8\xff\xd9"


def scene_site(client, keys, people: int = 30, seconds: float = 200.0) -> None:
    """A synthetic scene's visits (today's layout: three views, 1.5-4.0 s between them) published as two
    tracklets each (one track) with a per-person look plus noise, and linked by a matcher."""
    from synth.scene import Scene, SceneSpec

    scene = Scene(SceneSpec(cameras=3, people=people, seconds=seconds, seed=4))
    rng = np.random.default_rng(0)
    looks = rng.normal(size=(people + 1, 32))
    records = []
    for track, v in enumerate(sorted(scene.visits, key=lambda v: v.t_enter), start=1):
        middle = (v.t_enter + v.t_exit) / 2
        for seq, (t0, t1) in enumerate(((v.t_enter, middle), (middle, v.t_exit))):
            f = looks[v.pid] + 0.15 * np.linalg.norm(looks[v.pid]) * rng.normal(size=32) / np.sqrt(32)
            f = (f / np.linalg.norm(f)).astype(np.float32)
            attention = np.full(4, 0.25, np.float32)
            records.append(
                TrackletEmbedding(keys.site, f"cam{v.camera}", track, seq, t0, t1, f, attention, THUMB, "m1")
            )
    publisher = Publisher(client, keys)
    for r in sorted(records, key=lambda r: r.t_end):
        publisher.publish(r)
    Matcher(client, keys, MatchPolicy(threshold=0.6), consumer="m", batch=64).start().run(idle_exit=0.3)


def test_self_calibration_stores_the_sites_fit_and_the_matcher_follows_it(redis_client, bus_keys, capsys, tmp_path):
    scene_site(redis_client, bus_keys)
    argv = ["calibrate", "--dataset", "site", *site_args(redis_client, bus_keys), "--out", str(tmp_path)]
    code, data, err = run_json(capsys, *argv, "--write")
    assert code == 0, err
    # different people's looks are independent (cosine about 0 +- 0.2), one person's tracklets agree (about 0.98)
    assert 0.15 < data["threshold"] < 0.6 and data["fit"]["pairs"]["negatives"] >= 20
    assert data["distributions"]["positives"]["quantiles"]["p50"] > 0.9 and data["written"]
    assert (tmp_path / "calibrate.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "calibrate.json").read_text())["threshold"] == data["threshold"]
    stored = json.loads(redis_client.hget(bus_keys.calibration, "m1"))
    assert stored["threshold"] == data["threshold"] and stored["rule"].startswith("95th percentile")
    # the matcher links at the site's fit before the model's own threshold (announced 0.7 here)
    redis_client.hset(bus_keys.models, "m1", json.dumps({"link_threshold": 0.7}))
    record = TrackletEmbedding(bus_keys.site, "cam0", 1, 0, 0.0, 1.0, np.ones(2), np.ones(1), THUMB, "m1")
    follower = ModelThreshold(redis_client, bus_keys, MatchPolicy(), "m", recheck=0.0)
    assert follower.follow([record]).threshold == data["threshold"]
    redis_client.hdel(bus_keys.calibration, "m1")  # taken up again at the next look
    assert follower.follow([record]).threshold == 0.7
    # a fit far below the model's own threshold (0.7 now announced) is written, with a warning
    code, data, err = run_json(capsys, *argv)
    assert code == 0 and "below the model's own calibrated threshold 0.7" in data["warning"] and "warning:" in err


def test_a_bad_stored_threshold_is_ignored_with_one_line(redis_client, bus_keys, caplog):
    redis_client.hset(bus_keys.models, "m1", json.dumps({"link_threshold": 0.7}))
    record = TrackletEmbedding(bus_keys.site, "cam0", 1, 0, 0.0, 1.0, np.ones(2), np.ones(1), THUMB, "m1")
    follower = ModelThreshold(redis_client, bus_keys, MatchPolicy(), "m", recheck=0.0)
    for bad in ('{"threshold": 7}', '{"threshold": NaN}', "not json", '{"margin": 0.1}'):
        redis_client.hset(bus_keys.calibration, "m1", bad)
        with caplog.at_level(logging.WARNING, logger="pipeline.matcher.thresholds"):
            caplog.clear()
            assert follower.follow([record]).threshold == 0.7 == follower.follow([record]).threshold
        assert len([r for r in caplog.records if "ignoring the site's stored fit" in r.getMessage()]) == 1, bad


def test_topology_learn_recovers_the_scenes_windows_and_writes_the_config_form(
    redis_client, bus_keys, capsys, tmp_path
):
    scene_site(redis_client, bus_keys)
    out = tmp_path / "topology.yaml"
    code, data, err = run_json(capsys, "topology", "learn", *site_args(redis_client, bus_keys), "--write", str(out))
    assert code == 0, err
    cameras = ["cam0", "cam1", "cam2"]
    assert [p["cameras"] for p in data["pairs"]] == [[a, b] for a in cameras for b in cameras if a != b]
    for entry in data["topology"]:  # true transit: 1.5-4.0 s, no overlapping views
        assert abs(entry["min"] - 1.5) <= 2 and abs(entry["max"] - 4.0) <= 2 and not entry["overlap"], entry
    config = load_config(out)  # the written file is a site config the matcher reads
    topology = config.matcher.policy().topology
    assert len(topology.windows) == 6 and not topology.overlaps


def test_topology_learn_without_confident_links_says_so(redis_client, bus_keys, capsys, tmp_path):
    publisher = Publisher(redis_client, bus_keys)
    rng = np.random.default_rng(1)
    for i in range(6):  # six different people, one sighting each: no one moved between cameras
        f = rng.normal(size=8)
        f = (f / np.linalg.norm(f)).astype(np.float32)
        publisher.publish(
            TrackletEmbedding(bus_keys.site, f"cam{i % 2}", i + 1, 0, 5.0 * i, 5.0 * i + 3, f, np.ones(1), THUMB, "m1")
        )
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.99), consumer="m").start().run(idle_exit=0.3)
    code, _, err = run_json(
        capsys, "topology", "learn", *site_args(redis_client, bus_keys), "--write", str(tmp_path / "t.yaml")
    )
    assert code == 2 and "no camera pair has 3 or more confident moves in 6 stored sightings" in err
    assert not (tmp_path / "t.yaml").exists()
    # and too few pairs to calibrate from: one line with the counts found and needed
    code, _, err = run_json(
        capsys, "calibrate", "--dataset", "site", *site_args(redis_client, bus_keys), "--out", str(tmp_path)
    )
    assert code == 2 and "0 pairs of people seen together" in err and "needs at least 20 and 5" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--data-root", "x"], ["--seeds", "2-3"]])
def test_site_calibration_takes_no_data_set_options(redis_client, bus_keys, capsys, argv):
    code, _, err = run_json(capsys, "calibrate", "--dataset", "site", *site_args(redis_client, bus_keys), *argv)
    assert code == 2 and "does not go with --dataset site" in err
