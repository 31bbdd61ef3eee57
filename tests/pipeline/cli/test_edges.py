"""The CLI's answers to hostile or mistaken input at its edges: camera ids, ports, API keys, YAML files, and a
worker whose source failed."""

from __future__ import annotations

import pytest

from pipeline.cli import main
from pipeline.cli.worker import EXIT_SOURCE_FAILED
from tests.support.cli import run_json, site_args


@pytest.fixture
def embedder_file(tiny_checkpoints):
    """A saved tiny re-ID model (the checkpoint the whole test run shares)."""
    return tiny_checkpoints["tiny_attention"]


@pytest.mark.parametrize("camera", ["<img src=x onerror=alert(1)>", "a b", "cam:1", "", "x" * 129])
def test_worker_refuses_a_camera_id_outside_the_pattern(capsys, camera):
    code, data, err = run_json(capsys, "worker", "--camera", camera, "--source", "synth://?cameras=1")
    assert code == 2 and "Traceback" not in err
    assert f"--camera {camera!r}: not a valid camera id" in data["error"]
    assert "letters, digits" in data["error"]


def test_a_site_config_refuses_a_camera_id_outside_the_pattern(capsys, tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("site: s\ncameras:\n  - id: '<img src=x>'\n    source: synth://?cameras=1\n")
    code, data, err = run_json(capsys, "run", str(site))
    assert code == 2 and "cameras.0.id" in data["error"] and "Traceback" not in err


def test_a_worker_whose_source_failed_exits_non_zero(capsys, redis_client, bus_keys, embedder_file):
    code, data, err = run_json(
        capsys,
        "worker",
        "--camera",
        "door",
        "--source",
        "rtsp://127.0.0.1:9/nothing-listens-here",
        "--detector",
        "motion",
        "--embedder",
        str(embedder_file),
        *site_args(redis_client, bus_keys),
        "--set",
        "source.reconnect_attempts=1",
        "--set",
        "source.reconnect_initial=0.1",
    )
    assert code == EXIT_SOURCE_FAILED == 3
    assert data["final_state"] == "failed" and "source failed" in err


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_api_refuses_a_port_out_of_range(capsys, port):
    with pytest.raises(SystemExit) as exit_:
        main(["api", "--port", port])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert f"argument --port: {port!r} is not a TCP port: give a number from 1 to 65535" in err


def test_api_refuses_a_key_a_browser_cannot_send(capsys, monkeypatch):
    monkeypatch.setenv("CROSSCAM_API_KEY", "schlüssel")
    code, data, _ = run_json(capsys, "api", "--redis-url", "redis://127.0.0.1:9/0")
    assert code == 2 and "$CROSSCAM_API_KEY" in data["error"] and "printable ASCII" in data["error"]
    code, data, _ = run_json(capsys, "config", "show", "--set", "api.key=schlüssel")
    assert code == 2 and "api.key" in data["error"]


def test_invalid_yaml_is_one_line_naming_file_line_and_column(capsys, tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text("site: a\ncameras:\n  - id: x\n   source: y\n")
    code, data, err = run_json(capsys, "config", "show", "--config", str(bad))
    assert code == 2
    message = err.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"crosscam: error: {bad}: not valid YAML: line 4, column 4: ")
    assert "expected <block end>" in message and data["error"] == message.removeprefix("crosscam: error: ")
    bad.write_bytes(b"site: \xff\n")
    code, data, _ = run_json(capsys, "config", "show", "--config", str(bad))
    assert code == 2 and data["error"] == f"{bad}: not UTF-8 text (byte 6); save the file as UTF-8"


def test_search_with_a_model_of_another_feature_size_names_both_sizes(
    capsys, redis_client, bus_keys, embedder_file, tmp_path
):
    import cv2
    import numpy as np

    key = bus_keys.identity(1)
    redis_client.hset(key, mapping={"exemplars": np.ones((1, 7), np.float16).tobytes(), "dim": 7, "recent": "[]"})
    redis_client.zadd(bus_keys.identities, {"1": 1.0})
    image = tmp_path / "person.png"
    cv2.imwrite(str(image), np.full((128, 64, 3), 90, np.uint8))
    code, data, err = run_json(
        capsys, "search", str(image), "--embedder", str(embedder_file), *site_args(redis_client, bus_keys)
    )
    assert code == 2 and "Traceback" not in err
    assert "-d features" in data["error"] and "7-d" in data["error"] and str(embedder_file) in data["error"]


@pytest.mark.parametrize("site", ["}x", "a*", "a b", "{s}"])
def test_a_site_name_outside_the_pattern_is_refused(capsys, site):
    """A site name is the hash tag of its keys: a brace would split them over cluster slots, ``*`` would make
    its key pattern match other sites' keys."""
    code, data, err = run_json(capsys, "persons", "--site", site)
    assert code == 2 and "not a site name" in data["error"] and "Traceback" not in err


def test_a_key_of_another_type_under_the_prefix_is_a_clear_error(capsys, redis_client, bus_keys):
    common = site_args(redis_client, bus_keys)
    redis_client.set(bus_keys.tracklets, "written by another program")
    code, data, err = run_json(capsys, "matcher", "--idle-exit", "0.3", *common)
    assert code == 2 and "Traceback" not in err
    assert f"{bus_keys.tracklets} holds a string, not a stream" in data["error"]
    redis_client.delete(bus_keys.tracklets)
    redis_client.set(bus_keys.identities, "written by another program")
    code, data, err = run_json(capsys, "persons", *common)
    assert code == 2 and "Traceback" not in err and "holds another type" in data["error"]
