"""``crosscam synth scene``: a scene as one video per camera and MOTChallenge ground truth."""

from __future__ import annotations

import json

import cv2
import numpy as np

from pipeline.config.loader import load_config
from synth.scene import Scene, SceneSpec
from synth.truth import truth_boxes
from tests.support.cli import run_json

OPTIONS = ["--cameras", "2", "--people", "3", "--seconds", "2.5", "--seed", "2", "--seated", "2"]
SITE = ["--layout", "site", "--overlap", "0-1", "--width", "160", "--height", "96"]


def test_scene_files_decode_and_carry_the_ground_truth(capsys, tmp_path):
    out = tmp_path / "scene"
    code, info, err = run_json(capsys, "synth", "scene", "--out", str(out), *OPTIONS, *SITE)
    assert code == 0, err
    scene = Scene(SceneSpec.from_url(info["url"]))
    assert scene.spec == SceneSpec(
        cameras=2, people=3, seconds=2.5, seed=2, seated=2, layout="site", overlap=((0, 1),), width=160, height=96
    )
    assert sorted(p.name for p in out.iterdir()) == ["cam0.mp4", "cam1.mp4", "gt", "scene.json", "site.yaml"]
    assert json.loads((out / "scene.json").read_text())["overlapping_pairs"] == [[0, 1]]
    ground = json.loads((out / "scene.json").read_text())["ground_points"]
    assert ground == {f"cam{c}": [list(p) for p in scene.ground_points(c)] for c in range(2)}
    site = load_config(out / "site.yaml")  # a site config for the videos, its ground points valid
    assert [(c.id, c.source) for c in site.cameras] == [(f"cam{c}", str(out / f"cam{c}.mp4")) for c in range(2)]
    np.testing.assert_allclose(site.cameras[1].ground, scene.ground_points(1), atol=1e-4)
    assert info["stationary_people"] == [4, 5] and info["frames"] == 25
    for camera in range(2):
        video = cv2.VideoCapture(str(out / f"cam{camera}.mp4"))
        assert video.get(cv2.CAP_PROP_FPS) == 10.0
        frames = []
        while (read := video.read())[0]:
            frames.append(read[1])
        assert len(frames) == 25 and frames[0].shape == (96, 160, 3)
        expected, _ = scene.render(camera, 12)
        assert abs(frames[12].astype(int) - cv2.cvtColor(expected, cv2.COLOR_RGB2BGR)).mean() < 12  # lossy codec
        rows = [line.split(",") for line in (out / "gt" / f"cam{camera}.txt").read_text().splitlines()]
        truth = {(f, pid): (box, visible) for f, pid, box, visible in truth_boxes(scene, camera, tight=True)}
        assert len(rows) == len(truth) > 0  # each person's own pixels, as an annotator boxes them
        for row in rows:
            (x1, y1, x2, y2), visible = truth[(int(row[0]) - 1, int(row[1]))]  # MOTChallenge frames count from 1
            assert [float(v) for v in row[2:6]] == [x1, y1, x2 - x1, y2 - y1]
            assert row[6:8] == ["1", "1"] and abs(float(row[8]) - visible) < 1e-4
    ids = {int(line.split(",")[1]) for c in range(2) for line in (out / "gt" / f"cam{c}.txt").read_text().splitlines()}
    assert {4, 5} <= ids  # the people who stay put are in the ground truth like anyone else


def test_bad_scene_options_give_one_line_and_leave_nothing(capsys, tmp_path):
    out = tmp_path / "scene"
    code, data, _ = run_json(capsys, "synth", "scene", "--out", str(out), "--overlap", "0-1")
    assert code == 2 and "overlap needs layout=site" in data["error"] and "crosscam synth scene" in data["error"]
    code, data, _ = run_json(capsys, "synth", "scene", "--out", str(out), "--people", "many")
    assert code == 2 and "many" in data["error"]
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("user data")
    code, data, _ = run_json(capsys, "synth", "scene", "--out", str(tmp_path / "keep"), *OPTIONS)
    assert code == 2 and "not an empty folder" in data["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]  # no scene, no half-written folder
