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
    # Issue #5 asks for IDF1 >= 0.8; this model and matcher measure 0.795 on this scene (docs/benchmarks.md).
    # The floor below guards against regressions; it is not the target.
    assert data["idf1"] >= 0.7, data["metrics"]
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
