"""docker-compose.yml without Docker: valid Compose, and every crosscam service's command valid for our CLI
with the site config it names, its model on a mounted folder, Redis persistent, the API on localhost.

``docker compose config`` is the full check where Docker is installed (not on the project's machines). Here
the file is interpolated the way Compose does it (``${X}``, ``${X:-default}``, ``${X:?message}``) and
validated against the Compose Specification's JSON schema, ``tests/support/compose_spec.json``: the
schema shipped in docker-compose 1.29.2 (Apache License 2.0, github.com/docker/compose).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's variable substitution over every string of a loaded file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.groups()
        if env.get(name):
            return env[name]
        if op == ":?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return _VAR.sub(one, value)


def compose(env: dict[str, str]) -> dict:
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()), env)


ENV = {"CROSSCAM_API_KEY": "test-key"}


def crosscam_services(doc: dict) -> dict[str, dict]:
    return {name: s for name, s in doc["services"].items() if s.get("image", "").startswith("crosscam")}


def host_path(container_path: str, service: dict) -> Path | None:
    """The host file behind a path in the container, through the service's bind mounts."""
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith(".") and container_path.startswith(target + "/"):
            return ROOT / source / container_path[len(target) + 1 :]
    return None


def test_compose_file_is_valid_compose():
    schema = json.loads((ROOT / "tests/support/compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose(ENV))


def test_compose_needs_an_api_key():
    with pytest.raises(ValueError, match="CROSSCAM_API_KEY"):
        compose({})


def test_redis_persists_and_the_api_stays_on_localhost():
    doc = compose(ENV)
    redis = doc["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert all(p.startswith("127.0.0.1:") for p in doc["services"]["api"]["ports"])
    assert {"worker-entrance", "worker-hall", "matcher", "api"} <= set(crosscam_services(doc))


@pytest.mark.parametrize("models", [None, "/srv/site-models"])
def test_every_crosscam_command_parses_and_its_config_loads(models):
    env = ENV | ({"CROSSCAM_MODELS": models} if models else {})
    doc = compose(env)
    parser = build_parser()
    for name, service in crosscam_services(doc).items():
        assert (ROOT / service["build"]["dockerfile"]).is_file(), name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
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
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
            assert embedder.startswith("/models/") and mounts["/models"] == (models or "./deploy/models"), name
            assert (ROOT / "deploy/models/README.md").is_file()
            assert shlex.quote(embedder) == embedder  # no spaces or quoting left from interpolation
