"""``crosscam data inspect`` and ``crosscam synth dataset``."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.cli import CROSSCAM, run_json
from tests.support.paths import REPO, SHARED_DATA


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent (a fresh clone without shared data)")
def test_acceptance_inspect_real_mars_info_verbatim():
    cmd = f"{CROSSCAM} data inspect --dataset mars --data-root ../shared/data/mars_info --json"
    done = subprocess.run(cmd, shell=True, cwd=REPO, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["train"]["tracklets"] == 8298 and data["train"]["identities"] == 625
    assert data["test_tracklets"] == 12180 and data["query"]["tracklets"] == 1980
    assert data["missing_images"] == data["images"] == 509914 + 681089  # every listed frame, none on disk


def test_synth_then_inspect(capsys, tmp_path):
    code, made, _ = run_json(
        capsys, "synth", "dataset", "--layout", "prid2011", "--root", str(tmp_path / "p"), "--ids", "10", "--seed", "2"
    )
    assert code == 0 and made["layout"] == "prid2011"
    code, data, _ = run_json(capsys, "data", "inspect", "--dataset", "prid2011", "--data-root", str(tmp_path / "p"))
    assert code == 0 and data["missing_images"] == 0 and data["splits"] == 10
    assert data["query"]["tracklets"] == data["gallery"]["tracklets"] > 0


def test_synth_refuses_a_non_empty_folder(capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    code, data, _ = run_json(capsys, "synth", "dataset", "--layout", "mars", "--root", str(tmp_path))
    assert code == 2 and "not an empty folder" in data["error"]
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_inspect_a_wrong_folder(capsys, tmp_path):
    code, data, err = run_json(capsys, "data", "inspect", "--dataset", "mars", "--data-root", str(tmp_path))
    assert code == 2 and "info/ folder not found" in data["error"] and "Expected layout" in err
