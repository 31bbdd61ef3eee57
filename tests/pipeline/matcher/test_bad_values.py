"""What workers can write never stops the matcher or changes what it links: a model's ``link_threshold`` that is
not a threshold, watermarks and camera ids that are not ones, counters that hold no integer and keys of another
type are ignored, each logged once and counted in ``bad_values`` (real Redis, the real matcher)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from pipeline import store
from pipeline.bus.publisher import Publisher, write_watermarks
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from tests.support.records import make_embedding

PEOPLE = 12


def publish_strangers(client, keys) -> None:
    """One tracklet each of ``PEOPLE`` unrelated people (random 32-d features: cosines near 0), in turn on two
    cameras, none at the same time."""
    v = np.random.default_rng(5).normal(size=(PEOPLE, 32))
    faces = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    publisher = Publisher(client, keys)
    for i, face in enumerate(faces):
        t0 = 10.0 * i
        publisher.publish(
            make_embedding(
                site=keys.site, camera_id=f"cam{i % 2}", track_id=i + 1, seq=0, t_start=t0, t_end=t0 + 3, feature=face
            )
        )


def run_matcher(client, keys, **options) -> Matcher:
    matcher = Matcher(client, keys, MatchPolicy(), consumer="m", batch=3, model_threshold=True, **options)
    matcher.start()
    if matcher.thresholds is not None:
        matcher.thresholds.recheck = 0.0  # read the stored thresholds at every batch: still logged once
    matcher.run(idle_exit=0.3)
    return matcher


def ignored_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]


MODEL = "a224a664b219357a"  # make_embedding's model id


@pytest.mark.parametrize(
    "summary",
    [
        '{"link_threshold": "abc"}',
        '{"link_threshold": "0.3"}',
        '{"link_threshold": -1}',
        '{"link_threshold": NaN}',
        '{"link_threshold": Infinity}',
        '{"link_threshold": 0}',
        '{"link_threshold": 1.5}',
        '{"link_threshold": true}',
        '{"link_threshold": [0.1]}',
        '{"link_threshold": {"v": 0.1}}',
        "[0.1]",
        "{not json",
    ],
)
def test_a_models_entry_that_is_not_a_threshold_is_ignored_logged_once_and_counted(
    redis_client, bus_keys, caplog, summary
):
    redis_client.hset(bus_keys.models, MODEL, summary)
    publish_strangers(redis_client, bus_keys)
    with caplog.at_level(logging.WARNING):
        matcher = run_matcher(redis_client, bus_keys)
    assert matcher.counts["processed"] == PEOPLE and matcher.counts["linked"] == 0
    assert len(store.persons(redis_client, bus_keys, everyone=True)) == PEOPLE  # no stranger joined another
    assert matcher.active.threshold == MatchPolicy().threshold
    assert matcher.counts["bad_values"] == 1
    (line,) = ignored_lines(caplog)
    assert f"{bus_keys.models} '{MODEL}'" in line


def test_a_site_fit_that_is_not_a_threshold_is_ignored_and_counted(redis_client, bus_keys, caplog):
    redis_client.hset(bus_keys.models, MODEL, json.dumps({"link_threshold": 0.6}))
    redis_client.hset(bus_keys.calibration, MODEL, json.dumps({"threshold": -1}))
    publish_strangers(redis_client, bus_keys)
    with caplog.at_level(logging.WARNING):
        matcher = run_matcher(redis_client, bus_keys)
    assert matcher.counts["linked"] == 0 and matcher.counts["bad_values"] == 1
    (line,) = ignored_lines(caplog)
    assert bus_keys.calibration in line and "threshold -1 is not a number above 0" in line


def test_a_models_key_of_another_type_is_ignored(redis_client, bus_keys, caplog):
    redis_client.xadd(bus_keys.models, {"link_threshold": "-1"})
    publish_strangers(redis_client, bus_keys)
    with caplog.at_level(logging.WARNING):
        matcher = run_matcher(redis_client, bus_keys)
    assert matcher.counts["processed"] == PEOPLE and matcher.counts["linked"] == 0
    assert matcher.counts["bad_values"] == 1 and "WRONGTYPE" in ignored_lines(caplog)[0]


def test_watermarks_and_camera_ids_that_are_not_ones_are_ignored(redis_client, bus_keys, caplog):
    write_watermarks(redis_client, bus_keys, {"cam0": float("inf")})
    bad = {"cam1": "-5", "cam2": "nan", "cam3": " 5 ", "cam4": "1e308", "cam5": "1_0"}
    for camera, mark in bad.items():
        redis_client.sadd(bus_keys.cameras, camera)
        redis_client.hset(bus_keys.camera(camera), "watermark", mark)
    redis_client.sadd(bus_keys.cameras, "<img src=x>", b"\xff\xfe")
    redis_client.sadd(bus_keys.cameras, "cam6")
    redis_client.xadd(bus_keys.camera("cam6"), {"watermark": "1"})  # a key of another type
    publish_strangers(redis_client, bus_keys)
    with caplog.at_level(logging.WARNING):
        matcher = run_matcher(redis_client, bus_keys, reorder_window=60.0)
    # nothing held back by a watermark below any time: every tracklet linked before the matcher went idle
    assert matcher.counts["processed"] == PEOPLE
    assert matcher.counts["bad_values"] == len(bad) + 3
    lines = ignored_lines(caplog)
    assert len(lines) == len(bad) + 3 and any("WRONGTYPE" in line for line in lines)
    assert any("'<img src=x>' is not a camera id" in line for line in lines)


@pytest.mark.parametrize("broken", ["a field that is not an integer", "a key of another type"])
def test_site_counters_a_worker_broke_do_not_stop_the_matcher(redis_client, bus_keys, caplog, broken):
    publish_strangers(redis_client, bus_keys)
    if broken == "a key of another type":
        redis_client.delete(bus_keys.stats)
        redis_client.xadd(bus_keys.stats, {"matched": "x"})
    else:
        redis_client.hset(bus_keys.stats, mapping={"matched": "abc", "dead_letters": "9" * 30})
    redis_client.xadd(bus_keys.tracklets, {"v": "1"})  # a dead letter: counted too
    with caplog.at_level(logging.WARNING):
        matcher = run_matcher(redis_client, bus_keys, maxlen=1000)  # with the backlog figures in the stats
    assert matcher.counts["processed"] == PEOPLE and matcher.counts["dead_letters"] == 1
    assert len(store.persons(redis_client, bus_keys, everyone=True)) == PEOPLE
    assert matcher.counts["bad_values"] >= 1 and ignored_lines(caplog)
    if broken == "a field that is not an integer":  # the counters start again from the batch that met them
        assert 0 < int(redis_client.hget(bus_keys.stats, "matched")) <= PEOPLE
        assert int(redis_client.hget(bus_keys.stats, "dead_letters")) == 1
