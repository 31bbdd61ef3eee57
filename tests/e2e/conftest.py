"""Fixtures of the end-to-end tests: the crosscam cache that holds the trained demo model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


def demo_model_key() -> str:
    """A digest of what decides the demo model: its recipe file's bytes, the training set (recipe name,
    identities, the synthetic renderer's version) and the torch version that trains it."""
    import torch

    from pipeline.lab.demo import DEMO_IDS, DEMO_RECIPE
    from synth.people import RENDERER_VERSION
    from trainer.recipe import RECIPES

    digest = hashlib.sha256((RECIPES / f"{DEMO_RECIPE}.yaml").read_bytes())
    digest.update(f"{DEMO_RECIPE}|{DEMO_IDS}|r{RENDERER_VERSION}|torch {torch.__version__}".encode())
    return digest.hexdigest()[:16]


def persistent_cache_root() -> Path:
    """``$CROSSCAM_TEST_CACHE``, else ``test-cache`` in crosscam's user cache (``$XDG_CACHE_HOME/crosscam``,
    else ``~/.cache/crosscam``): a cache the tests keep across runs."""
    if os.environ.get("CROSSCAM_TEST_CACHE"):
        return Path(os.environ["CROSSCAM_TEST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crosscam" / "test-cache"


@pytest.fixture(scope="session")
def demo_cache(request, tmp_path_factory) -> Path:
    """The crosscam cache of the end-to-end tests (use it as ``$CROSSCAM_CACHE_DIR``): the first test to need
    the demo model trains it into this cache (minutes on two cores) and the others reuse it.

    By default the cache persists across test runs, so a second run on the same machine reuses the trained
    model: ``$CROSSCAM_TEST_CACHE``, else ``~/.cache/crosscam/test-cache``, in a folder keyed by a digest of
    what decides the model (``demo_model_key``), so a model trained on another recipe, renderer or torch is
    never reused. ``pytest --cold-cache`` gives a fresh, empty cache instead, as on a fresh machine's first
    ``crosscam demo``."""
    if request.config.getoption("cold_cache"):
        return tmp_path_factory.mktemp("crosscam-cache")
    path = persistent_cache_root() / f"demo-{demo_model_key()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
