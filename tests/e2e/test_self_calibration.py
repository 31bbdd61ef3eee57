"""Self-calibration on a synthetic site: the threshold fitted from the site's own stored sightings, without
labels, against the one the ground truth gives on the same scene (``crosscam calibrate`` replays its tracklets
at every threshold and scores IDF1). One 24-person, 2-minute scene through workers, embedder and matcher."""

from __future__ import annotations

import pytest

from tests.support.cli import run_json


@pytest.mark.slow
def test_self_calibration_recovers_the_ground_truth_threshold(capsys, tmp_path, monkeypatch, demo_cache):
    monkeypatch.setenv("CROSSCAM_CACHE_DIR", str(demo_cache))
    argv = ["calibrate", "--people", "24", "--seconds", "120", "--seed", "9", "--thresholds", "0.5:0.95:0.025"]
    code, data, err = run_json(capsys, *argv, "--out", str(tmp_path))
    assert code == 0, err
    (scene,) = data["scenes"]
    assert scene["self_pairs"]["negatives"] >= 100 and scene["self_pairs"]["positives"] >= 20
    fitted, truth = data["self_calibration"]["mean"], data["best"]["threshold"]
    assert abs(fitted - truth) <= 0.05, data["self_calibration"]  # 0.796 against 0.825 on an AMD EPYC
    assert len(data["with_learned_topology"]["rows"]) == len(data["rows"])
