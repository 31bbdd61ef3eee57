"""Where ``crosscam worker`` finds its camera's URL: ``--source URL``, ``--source env:VARIABLE`` (the URL in the
environment, out of process lists), or, without ``--source``, the camera's entry under ``cameras:`` in the config
file (whose ``source`` may be ``env:VARIABLE`` too); real workers on a synthetic camera and a real Redis."""

from __future__ import annotations

import pytest

from pipeline.bus import records
from pipeline.camera.sources import SourceError, parse_source, source_from_env
from tests.support.cli import run_json, site_args

SCENE = "synth://?cameras=2&people=4&seconds=8&seed=5&camera=0"


def worker(capsys, redis_client, bus_keys, tiny_checkpoints, *argv: str) -> tuple[int, dict, str]:
    return run_json(
        capsys,
        "worker",
        "--camera",
        "hall",
        "--detector",
        "motion",
        "--embedder",
        str(tiny_checkpoints["tiny_attention"]),
        *site_args(redis_client, bus_keys),
        *argv,
    )


def published_cameras(redis_client, bus_keys) -> set[str]:
    return {records.decode(f).camera_id for _, f in redis_client.xrange(bus_keys.tracklets)}


def test_a_worker_reads_its_url_from_the_environment(capsys, monkeypatch, redis_client, bus_keys, tiny_checkpoints):
    monkeypatch.setenv("HALL_URL", SCENE)
    code, data, err = worker(capsys, redis_client, bus_keys, tiny_checkpoints, "--source", "env:HALL_URL")
    assert code == 0, err
    assert data["published"] > 0 and published_cameras(redis_client, bus_keys) == {"hall"}


def test_without_source_a_worker_runs_its_camera_from_the_config_file(
    capsys, monkeypatch, tmp_path, redis_client, bus_keys, tiny_checkpoints
):
    monkeypatch.setenv("HALL_URL", SCENE)
    config = tmp_path / "site.yaml"
    config.write_text("cameras:\n  - {id: door, source: 'synth://?cameras=1'}\n  - {id: hall, source: env:HALL_URL}\n")
    code, data, err = worker(capsys, redis_client, bus_keys, tiny_checkpoints, "--config", str(config))
    assert code == 0, err
    assert data["published"] > 0 and published_cameras(redis_client, bus_keys) == {"hall"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "env:CROSSCAM_TEST_UNSET"], "the environment variable CROSSCAM_TEST_UNSET is not set"),
        (["--source", "env:not a name"], "env: takes an environment variable's name"),
        ([], "camera hall: no source; pass --source URL (or env:VARIABLE)"),
    ],
)
def test_a_missing_source_is_one_clear_error(
    capsys, monkeypatch, redis_client, bus_keys, tiny_checkpoints, argv, message
):
    monkeypatch.delenv("CROSSCAM_TEST_UNSET", raising=False)
    code, data, err = worker(capsys, redis_client, bus_keys, tiny_checkpoints, *argv)
    assert code == 2 and message in data["error"] and "Traceback" not in err


def test_source_from_env_leaves_other_sources_alone():
    assert source_from_env(SCENE, {}) == SCENE
    assert source_from_env("env:CAM", {"CAM": " rtsp://u:p@cam/x\n"}) == "rtsp://u:p@cam/x"
    with pytest.raises(SourceError, match="CAM is not set or empty"):
        source_from_env("env:CAM", {"CAM": " "})


def test_a_password_with_a_raw_slash_is_refused_without_quoting_it():
    with pytest.raises(SourceError) as e:
        parse_source("door", "rtsp://admin:S3c/ret@10.0.0.2/x")
    assert "S3c" not in str(e.value) and "rtsp://***@10.0.0.2/x" in str(e.value) and "%2F" in str(e.value)
    assert parse_source("door", "rtsp://admin:S3c%2Fret@10.0.0.2/x").shown == "rtsp://***@10.0.0.2/x"
