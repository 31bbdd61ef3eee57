"""Threshold calibration (replaying labelled tracklets through the matcher's rules; link decisions on a labelled
data set) and the model's own threshold reaching the matcher through Redis."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from pipeline.lab.calibrate import (
    Labelled,
    distribution,
    link_outcomes,
    pair_f1_threshold,
    pair_scores,
    parse_thresholds,
    pick_threshold,
    plot,
    plot_links,
    replay,
    sweep,
    sweep_links,
)
from pipeline.matcher.rules import MatchPolicy
from pipeline.types import TrackletEmbedding
from tests.support.cli import redis_url
from tests.support.records import tracklet


def walks(people: int = 4, cameras: int = 3, noise: float = 0.15, seed: int = 0) -> list[Labelled]:
    """Each person in turn walks past every camera (3 s per camera, 1 s between), tracklets in time order."""
    rng = np.random.default_rng(seed)
    looks = rng.normal(size=(people, 32))
    items = []
    for p in range(people):
        for c in range(cameras):
            t0 = p * 15.0 + c * 4.0
            f = looks[p] + noise * np.linalg.norm(looks[p]) * rng.normal(size=32) / np.sqrt(32)
            items.append(Labelled(tracklet(f"c{c}", 10 * p + c, t0, t0 + 3.0, f / np.linalg.norm(f)), p, 3.0))
    return sorted(items, key=lambda x: x.record.t_end)


def test_parse_thresholds():
    assert parse_thresholds("0.5:0.6:0.05") == [0.5, 0.55, 0.6]
    assert parse_thresholds("0.7, 0.8") == [0.7, 0.8]
    with pytest.raises(ValueError):
        parse_thresholds("0.9:0.5:0.1")


def test_sweep_finds_the_separating_threshold():
    items = walks()
    rows = {r["threshold"]: r for r in sweep(items, MatchPolicy(margin=0.0), [-1.0, 0.6, 0.9999])}
    assert rows[0.6]["idf1"] == 1.0 and rows[0.6]["identities"] == 4  # every person one identity
    assert rows[0.9999]["identities"] == len(items) and rows[0.9999]["idf1"] < 0.5  # nothing links
    assert rows[-1.0]["identities"] == 1 and rows[-1.0]["idf1"] < 0.5  # one after the other, all are linked


def test_replay_follows_merges():
    items = walks(people=1, cameras=3, noise=0.0)
    # with a threshold above every score each tracklet opens an identity; the merge pass joins them
    persons = replay(items, MatchPolicy(threshold=1.01, merge_threshold=0.99), merge_every=1.0, batch=1)
    assert len(set(persons)) == 1


def test_plot_writes_a_png(tmp_path):
    rows = sweep(walks(), MatchPolicy(), [0.4, 0.6, 0.8])
    plot(rows, 0.6, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- a labelled data set: link decisions across cameras ---------------------------------------------------------
def clusters(people: int = 6, cameras: int = 3, spread: float = 0.35, seed: int = 0):
    """Each person seen once in each camera: ``features float[N,16]`` around the person's own axis."""
    rng = np.random.default_rng(seed)
    looks = np.eye(16)[:people]
    f, pids, camids = [], [], []
    for p in range(people):
        for c in range(cameras):
            v = looks[p] + spread * rng.normal(size=16) / 4
            f.append(v / np.linalg.norm(v))
            pids.append(p)
            camids.append(c)
    return np.array(f, np.float32), np.array(pids), np.array(camids)


def test_pair_scores_are_cross_camera_and_split_by_person():
    f, pids, camids = clusters(people=3, cameras=2)
    same, different = pair_scores(f, pids, camids)
    assert len(same) == 3 and len(different) == 6  # 3 people x 1 pair; 3 x 2 cross-camera pairs of others
    assert same.min() > different.max()  # well-separated clusters


def test_link_outcomes_on_hand_made_scores():
    """Person 0 in cameras 1 and 2, person 1 in camera 1 only; person 1's look is near person 0's."""
    a = np.array([1.0, 0.0, 0.0])
    near = np.array([0.8, 0.6, 0.0])
    f = np.array([a, a * 0.95 + np.array([0, 0.312, 0]), near], np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    o = link_outcomes(f, np.array([0, 0, 1]), np.array([1, 2, 1]))
    assert o.seen.tolist() == [True, True, False]  # person 1 is nowhere else
    assert o.right.tolist()[:2] == [True, True]
    assert o.best[2] == pytest.approx(float(f[2] @ f[1]))  # camera 2 holds only person 0
    assert o.first_best[0] == -np.inf  # without person 0, camera 1's tracklet has no one in camera 2
    assert o.first_weight.tolist() == [0.5, 0.5, 1.0]


def test_sweep_links_and_the_chosen_threshold():
    f, pids, camids = clusters()
    same, different = pair_scores(f, pids, camids)
    o = link_outcomes(f, pids, camids)
    rows = {r["threshold"]: r for r in sweep_links(o, same, different, [-1.0, 0.5, 1.01], margin=0.0)}
    assert rows[0.5]["f1"] == 1.0 and rows[0.5]["missed"] == 0 and rows[0.5]["wrong_links_first"] == 0
    assert rows[1.01]["right_links"] == 0 and rows[1.01]["f1"] == 0.0  # nothing links
    low = rows[-1.0]  # everything links: every first sighting is a false link (6 people, each counted once)
    assert low["wrong_links_first"] == pytest.approx(6.0) and low["first_sighting_false_link_rate"] == 1.0
    assert pick_threshold(list(rows.values()))["threshold"] == 0.5
    # a tie on F1 goes to the higher threshold (fewer false links)
    assert pick_threshold([{"threshold": 0.4, "f1": 0.9}, {"threshold": 0.5, "f1": 0.9}])["threshold"] == 0.5
    assert pair_f1_threshold(same, different, [-1.0, 0.5, 1.01]) == 0.5


def test_the_margin_turns_a_close_call_into_a_new_identity():
    """Two people who look alike in camera 2: with a margin, the tracklet of camera 1 links to neither."""
    f = np.array([[1.0, 0.0], [0.99, 0.141], [0.99, -0.141]], np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    o = link_outcomes(f, np.array([0, 0, 1]), np.array([1, 2, 2]))
    same, different = pair_scores(f, np.array([0, 0, 1]), np.array([1, 2, 2]))
    (no_margin,) = sweep_links(o, same, different, [0.5], margin=0.0)
    (margin,) = sweep_links(o, same, different, [0.5], margin=0.03)
    assert no_margin["right_links"] >= 1 and margin["right_links"] < no_margin["right_links"]


def test_plot_links_writes_a_png(tmp_path):
    f, pids, camids = clusters()
    same, different = pair_scores(f, pids, camids)
    rows = sweep_links(link_outcomes(f, pids, camids), same, different, [0.3, 0.5, 0.7], 0.03)
    plot_links(same, different, rows, 0.5, tmp_path / "c.png", "test")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert distribution(same, np.linspace(-1, 1, 5))["count"] == len(same)


# --- the model's own threshold, through Redis -------------------------------------------------------------------
THUMB = cv2.imencode(".jpg", np.full((16, 8, 3), 128, np.uint8))[1].tobytes()


def two_sightings(site: str, cosine: float, model: str) -> list[TrackletEmbedding]:
    """One tracklet on camera a, a later one on camera b whose features have this cosine."""
    a = np.array([1.0, 0.0], np.float32)
    b = np.array([cosine, np.sqrt(1 - cosine**2)], np.float32)
    attention = np.full(4, 0.25, np.float32)
    return [
        TrackletEmbedding(site, "a", 1, 0, 0.0, 3.0, a, attention, THUMB, model),
        TrackletEmbedding(site, "b", 1, 0, 10.0, 13.0, b, attention, THUMB, model),
    ]


def identities_after(client, bus_keys, records, **matcher_options) -> tuple[int, float]:
    from pipeline import store
    from pipeline.bus.publisher import Publisher
    from pipeline.matcher.consumer import Matcher

    publisher = Publisher(client, bus_keys)
    for r in records:
        publisher.publish(r)
    matcher = Matcher(client, bus_keys, MatchPolicy(threshold=0.6), consumer="m", **matcher_options).start()
    matcher.run(idle_exit=0.3)
    return len(store.persons(client, bus_keys)), matcher.active.threshold


def spec_with(threshold: float | None, model_id: str = "m1"):
    from models.spec import ArchSpec, InputSpec, ModelSpec

    return ModelSpec(
        ArchSpec("frame", "imported", "mean", feature_dim=2), InputSpec(), model_id, {}, link_threshold=threshold
    )


def test_the_matcher_links_at_the_threshold_its_workers_model_announced(redis_client, bus_keys):
    """Cosine 0.55: below the site default 0.6, above the model's calibrated 0.5."""
    from pipeline.bus.site_models import announce_model

    announce_model(redis_client, bus_keys, spec_with(0.5))
    records = two_sightings(bus_keys.site, 0.55, "m1")
    assert identities_after(redis_client, bus_keys, records, model_threshold=True) == (1, 0.5)


def test_without_an_announced_threshold_the_matcher_keeps_its_own(redis_client, bus_keys):
    from pipeline.bus.site_models import announce_model

    announce_model(redis_client, bus_keys, spec_with(None))  # an uncalibrated model
    assert identities_after(redis_client, bus_keys, two_sightings(bus_keys.site, 0.55, "m1"), model_threshold=True) == (
        2,
        0.6,
    )


def test_a_site_threshold_overrides_the_models(redis_client, bus_keys):
    from pipeline.bus.site_models import announce_model

    announce_model(redis_client, bus_keys, spec_with(0.5))
    records = two_sightings(bus_keys.site, 0.55, "m1")
    assert identities_after(redis_client, bus_keys, records, model_threshold=False) == (2, 0.6)


def test_announced_models_round_trip_through_redis(redis_client, bus_keys):
    from pipeline.bus.site_models import announce_model, announced_model

    spec = spec_with(0.42, "abc123")
    spec = replace(spec, provenance={"calibration": {"dataset": "market1501"}})
    announce_model(redis_client, bus_keys, spec)
    assert announced_model(redis_client, bus_keys, "abc123") == {
        "arch": "frame",
        "feature_dim": 2,
        "link_threshold": 0.42,
        "calibration": {"dataset": "market1501"},
    }
    assert announced_model(redis_client, bus_keys, "other") is None
    redis_client.hset(bus_keys.models, "broken", "{not json")
    assert announced_model(redis_client, bus_keys, "broken") is None


def test_the_config_threshold_wins_over_the_models():
    from pipeline.config import load_config

    default = load_config()
    assert not default.matcher.threshold_is_set
    assert default.matcher.policy().threshold == MatchPolicy().threshold  # no model threshold: the default
    model = default.matcher.policy(0.9)
    assert model.threshold == 0.9 and model.merge_threshold == 0.9  # a merge is at least as sure as a link
    assert default.matcher.policy(0.5).merge_threshold == default.matcher.merge_threshold
    told = load_config(overrides=["matcher.threshold=0.55"])
    assert told.matcher.threshold_is_set and told.matcher.policy(0.9).threshold == 0.55


@pytest.mark.slow
def test_calibrate_on_real_market_crops_writes_the_threshold_into_the_model(capsys, tmp_path, cache_dir):
    """``crosscam calibrate --dataset market1501 --write`` on 30 real Market-1501 identities (10 test ones) with
    the bundled real model: a threshold inside the sweep, the score distributions, and the model file carrying
    the threshold and its provenance afterwards."""
    from models.artifacts import read_spec
    from models.zoo import default_embedder
    from tests.support.cli import run_json
    from tests.support.paths import SHARED_DATA

    source = SHARED_DATA / "market1501" / "bounding_box_train"
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a fresh clone without the shared data)")
    root = tmp_path / "market" / "bounding_box_train"
    root.mkdir(parents=True)
    people = sorted({p.name[:4] for p in source.glob("*.jpg")})[:30]
    for image in source.glob("*.jpg"):
        if image.name[:4] in people:
            (root / image.name).symlink_to(image)
    model = tmp_path / "model.onnx"
    model.write_bytes(default_embedder().read_bytes())
    argv = ["calibrate", "--dataset", "market1501", "--data-root", str(root.parent), "--embedder", str(model)]
    code, data, err = run_json(capsys, *argv, "--out", str(tmp_path / "out"), "--write")
    assert code == 0, err
    c = data["calibration"]
    assert c["dataset"] == "market1501" and c["identities"] == 10 and c["pairs"]["same"] > 10
    assert data["distributions"]["same"]["quantiles"]["p50"] > data["distributions"]["different"]["quantiles"]["p50"]
    assert 0.2 <= data["threshold"] <= 0.95 and data["at_threshold"]["f1"] > 0.5
    spec = read_spec(model)
    assert data["written"] and spec.link_threshold == data["threshold"]
    assert spec.provenance["calibration"] == c and spec.model_id == read_spec(default_embedder()).model_id
    assert (tmp_path / "out" / "calibrate.png").stat().st_size > 10_000


def test_calibrate_write_needs_a_dataset(capsys):
    from pipeline.cli import main

    assert main(["calibrate", "--write"]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_a_worker_announces_the_bundled_model_when_no_embedder_is_given(redis_client, bus_keys, capsys):
    from models.artifacts import read_spec
    from models.zoo import default_embedder
    from pipeline.bus.site_models import announced_model
    from pipeline.cli import main

    site = ["--redis-url", redis_url(redis_client), "--site", bus_keys.site, "--set", f"redis.prefix={bus_keys.prefix}"]
    source = "synth://?cameras=1&people=1&seconds=1&seed=1&camera=0"
    code = main(["worker", "--camera", "c", "--source", source, "--detector", "motion", *site, "--json"])
    assert code == 0, capsys.readouterr().err
    spec = read_spec(default_embedder())
    summary = announced_model(redis_client, bus_keys, spec.model_id)
    assert summary is not None and summary["link_threshold"] == spec.link_threshold
    assert summary["feature_dim"] == spec.feature_dim == 256


@pytest.mark.parametrize("site_threshold, persons", [(None, 1), ("0.6", 2)])
def test_the_matcher_command_follows_the_model_unless_the_config_sets_a_threshold(
    redis_client, bus_keys, capsys, site_threshold, persons
):
    from pipeline import store
    from pipeline.bus.publisher import Publisher
    from pipeline.bus.site_models import announce_model
    from pipeline.cli import main

    announce_model(redis_client, bus_keys, spec_with(0.5))
    publisher = Publisher(redis_client, bus_keys)
    for r in two_sightings(bus_keys.site, 0.55, "m1"):
        publisher.publish(r)
    argv = ["matcher", "--redis-url", redis_url(redis_client), "--site", bus_keys.site, "--idle-exit", "0.3"]
    argv += ["--set", f"redis.prefix={bus_keys.prefix}"]
    argv += ["--set", f"matcher.threshold={site_threshold}"] if site_threshold else []
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    assert len(store.persons(redis_client, bus_keys)) == persons
