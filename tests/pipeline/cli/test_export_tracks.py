"""``crosscam export-tracks`` against a real Redis: every stored sighting's boxes in every frame, with the identity
it has now (after a merge), one MOTChallenge file per camera; the tentative identities left out unless asked for;
bad input one line each, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bus.publisher import Publisher
from pipeline.tracks.mot import read_mot
from tests.support.cli import run_json, site_args
from tests.support.records import make_embedding


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def sighting(site: str, camera: str, track: int, first_frame: int, frames: int, feature, x: float = 10.0):
    """A tracklet seen from ``first_frame`` for ``frames`` frames at 10 frames/s, walking 2 px a frame."""
    rows = [
        [f, f / 10, x + 2 * (f - first_frame), 20.0, x + 40 + 2 * (f - first_frame), 120.0, 0.0 if f % 3 else 0.8]
        for f in range(first_frame, first_frame + frames)
    ]
    path = np.array(rows)
    return make_embedding(
        dim=len(feature),
        site=site,
        camera_id=camera,
        track_id=track,
        seq=0,
        t_start=float(path[0, 1]),
        t_end=float(path[-1, 1]),
        feature=unit(feature),
        path=path,
    )


@pytest.fixture
def site(capsys, redis_client, bus_keys):
    """One person walks from cam0 (frames 0-39) to cam1 (frames 60-99); a glimpse of someone else, 1 s, on cam1."""
    publisher = Publisher(redis_client, bus_keys)
    person, other = np.eye(8)[0] + 0.05, np.eye(8)[3]
    publisher.publish(sighting(bus_keys.site, "cam0", 1, 0, 40, person))
    publisher.publish(sighting(bus_keys.site, "cam1", 7, 60, 40, person + 0.02 * np.eye(8)[1]))
    publisher.publish(sighting(bus_keys.site, "cam1", 8, 70, 10, other, x=300))
    code, data, err = run_json(capsys, "matcher", "--idle-exit", "0.3", *site_args(redis_client, bus_keys))
    assert code == 0 and data["processed"] == 3, err
    return site_args(redis_client, bus_keys)


def test_every_frame_with_its_identity_and_the_glimpse_left_out(capsys, tmp_path, site):
    code, data, err = run_json(capsys, "export-tracks", "--out", str(tmp_path), *site)
    assert code == 0, err
    assert sorted(data["files"]) == ["cam0", "cam1"] and data["identities"] == 1
    cam0, cam1 = read_mot(tmp_path / "cam0.txt"), read_mot(tmp_path / "cam1.txt")
    assert [r.frame for r in cam0] == list(range(1, 41)) and [r.frame for r in cam1] == list(range(61, 101))
    assert {r.identity for r in cam0} == {r.identity for r in cam1}  # one person across both cameras
    first = cam0[0]
    assert (first.left, first.top, first.width, first.height, first.conf) == (
        10,
        20,
        40,
        100,
        pytest.approx(0.8, abs=1e-3),
    )  # float16 score
    assert cam0[1].conf == 0  # a filled-in frame
    assert data["left_out"] == {"tentative": 1}  # the 1 s glimpse on one camera
    code, data, err = run_json(capsys, "export-tracks", "--out", str(tmp_path / "all"), "--all", *site)
    assert code == 0 and data["identities"] == 2 and data["rows"] == {"cam0": 40, "cam1": 50}, err


def test_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, site):
    code, data, _ = run_json(capsys, "export-tracks", "--out", str(tmp_path), "--video", "cam0", *site)
    assert code == 2 and "give CAMERA=FILE" in data["error"]
    code, data, _ = run_json(capsys, "export-tracks", "--out", str(tmp_path), "--video", "cam0=/no/such.mp4", *site)
    assert code == 2 and "no such file /no/such.mp4" in data["error"]
    a_file = tmp_path / "out" / "notes.txt"
    a_file.parent.mkdir()
    a_file.write_text("a file, not a folder")
    code, data, _ = run_json(capsys, "export-tracks", "--out", str(a_file / "tracks"), *site)
    assert code == 2 and "cannot write tracks there" in data["error"]
    assert list(a_file.parent.iterdir()) == [a_file]  # nothing written


def test_a_site_without_sightings_is_a_usage_error(capsys, tmp_path, redis_client, bus_keys):
    code, data, _ = run_json(capsys, "export-tracks", "--out", str(tmp_path), *site_args(redis_client, bus_keys))
    assert code == 2 and "no cameras with sightings" in data["error"]
