"""``crosscam demo`` end to end, as the README runs it: train the demo model (into a fresh cache), run the
3-camera synthetic scene through workers, embedder and matcher on an embedded Redis, score and report."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA
from tests.pipeline.test_cli import run_json


@pytest.mark.slow
def test_demo_end_to_end(capsys, tmp_path, monkeypatch, demo_cache):
    monkeypatch.setenv("CROSSCAM_CACHE_DIR", str(demo_cache))
    code, data, err = run_json(capsys, "demo", "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert data["ground_truth_people"] == 8 and data["cameras"] == 3
    assert data["metrics"]["passages_covered"] >= 0.9 * data["metrics"]["passages"]
    # Issue #5 asks for IDF1 >= 0.8; the demo measures 0.824 on this scene, but about 0.63 over scenes 2-8
    # (docs/benchmarks.md). The floor below guards against regressions with room for thread timing.
    assert data["idf1"] >= 0.78, data["metrics"]
    assert 5 <= data["identities"] <= 12
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count("<img src='data:image/jpeg;base64,") >= data["tracklets"] * 0.9
    assert (demo_cache / "demo").is_dir()  # the trained model is cached for the next run


@pytest.mark.slow
def test_calibrate_end_to_end(capsys, tmp_path, monkeypatch, demo_cache):
    monkeypatch.setenv("CROSSCAM_CACHE_DIR", str(demo_cache))
    code, data, err = run_json(capsys, "calibrate", "--thresholds", "0.3:0.9:0.1", "--out", str(tmp_path))
    assert code == 0, err
    assert [r["threshold"] for r in data["rows"]] == [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert data["ground_truth_people"] == 8 and data["tracklets"] >= 20  # 26 with the measured model
    best = data["best"]
    assert best["idf1"] == max(r["idf1"] for r in data["rows"]) and best["idf1"] > 0.6
    # too strict a threshold splits people into many identities
    assert data["rows"][-1]["identities"] > best["identities"]
    assert (tmp_path / "calibrate.png").stat().st_size > 10_000 and (tmp_path / "calibrate.json").is_file()


def test_the_demo_model_links_at_its_calibrated_threshold_unless_told_otherwise():
    from argparse import Namespace

    from pipeline.cli.demo import demo_policy
    from pipeline.config import load_config
    from pipeline.demo import DEMO_THRESHOLD

    assert demo_policy(Namespace(embedder=None), load_config()).threshold == DEMO_THRESHOLD
    told = load_config(overrides=["matcher.threshold=0.55"])
    assert demo_policy(Namespace(embedder=None), told).threshold == 0.55
    other_model = demo_policy(Namespace(embedder="m.pt"), load_config())
    assert other_model.threshold == load_config().matcher.threshold != DEMO_THRESHOLD


def test_calibrate_seeds_and_averages():
    from pipeline.cli.app import UsageError
    from pipeline.cli.calibrate import average, parse_seeds

    assert parse_seeds("2-4") == [2, 3, 4] and parse_seeds("1, 5-6") == [1, 5, 6] and parse_seeds("7") == [7]
    for bad in ("a-b", "", "2-", "5-3"):
        with pytest.raises(UsageError, match="--seeds"):
            parse_seeds(bad)
    row = lambda th, f, n: {"threshold": th, "idf1": f, "idp": f, "idr": f, "identities": n}  # noqa: E731
    mean = average([{"rows": [row(0.5, 0.6, 8), row(0.7, 0.8, 9)]}, {"rows": [row(0.5, 0.8, 10), row(0.7, 0.6, 9)]}])
    assert mean == [
        {"threshold": 0.5, "idf1": 0.7, "idp": 0.7, "idr": 0.7, "identities": 9.0, "per_scene": [0.6, 0.8]},
        {"threshold": 0.7, "idf1": 0.7, "idp": 0.7, "idr": 0.7, "identities": 9.0, "per_scene": [0.8, 0.6]},
    ]


def test_video_camera_ids():
    from pathlib import Path

    from pipeline.cli.demo import video_camera_ids

    assert video_camera_ids([Path("a/cam1.mp4"), Path("b/cam2.mp4")]) == ["cam1", "cam2"]
    assert video_camera_ids([Path("x/front door.avi")]) == ["front_door"]
    assert video_camera_ids([Path("a/v.mp4"), Path("b/v.mp4")]) == ["cam0", "cam1"]  # would collide


@pytest.mark.slow
def test_demo_on_real_videos_links_the_person_across_cameras(capsys, tmp_path, monkeypatch, demo_cache):
    """The two-camera indoor clip (one person walks from cam1 to cam2) with the YOLOv8n INT8 detector and
    the demo model: both cameras publish tracklets and one identity holds sightings from both."""
    clips = SHARED_DATA / "videos" / "chuyko_2cam_indoor"
    detector = SHARED_DATA / "weights" / "yolov8n_int8_onnx" / "yolov8n_int8.onnx"
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a fresh clone without the shared data)")
    monkeypatch.setenv("CROSSCAM_CACHE_DIR", str(demo_cache))
    videos = [a for c in ("cam1", "cam2") for a in ("--video", str(clips / f"{c}.mp4"))]
    code, data, err = run_json(capsys, "demo", *videos, "--detector", str(detector), "--out", str(tmp_path))
    assert code == 0, err
    assert data["idf1"] is None and data["cameras"] == 2 and data["matcher"]["dead_letters"] == 0
    assert {"cam1", "cam2"} <= {c for p in data["persons"] for c in p["cameras"]}  # both cameras saw people
    assert any(set(p["cameras"]) == {"cam1", "cam2"} for p in data["persons"]), data["persons"]
    report = (tmp_path / "report.html").read_text()
    assert report.count("<img src='data:image/jpeg;base64,") >= data["tracklets"]  # a thumbnail per sighting
