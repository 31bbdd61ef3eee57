"""Fixtures of the API and page tests: a site of three people linked by a real matcher, served by the API."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from models.embedder import load_embedder
from pipeline.bus.publisher import Publisher
from pipeline.embedding import embed_images
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.rules import MatchPolicy
from pipeline.serve.api import create_app
from pipeline.types import TrackletEmbedding
from tests.support.api import KEY, person_crops


@pytest.fixture
def site_embedder(redis_client, bus_keys, tiny_checkpoints):
    """Three people each seen on two cameras, linked by a real matcher; returns the model. The green one's
    feature is what the model makes of green crops; the others are random directions (the fixture's model is
    untrained)."""
    embedder = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu")
    publisher = Publisher(redis_client, bus_keys)
    thumb = cv2.imencode(".jpg", person_crops((200, 30, 30))[0])[1].tobytes()
    rng = np.random.default_rng(0)
    green = embed_images(embedder, person_crops((30, 220, 30)))
    for i in range(3):
        f = green if i == 1 else rng.normal(size=green.shape).astype(np.float32)
        f = f / np.linalg.norm(f)
        for cam in range(2):
            t0 = 20.0 * i + 8.0 * cam
            publisher.publish(
                TrackletEmbedding(
                    bus_keys.site,
                    f"cam{cam}",
                    i + 1,
                    0,
                    t0,
                    t0 + 4,
                    f,
                    np.full(4, 0.25, np.float32),
                    thumb,
                    embedder.spec.model_id,
                )
            )
    publisher.camera_status("cam0", "streaming")
    Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.9)).start().run(idle_exit=0.3)
    return embedder


@pytest.fixture
def site_app(redis_client, bus_keys, site_embedder):
    """The API over that site, with the default bounds on search."""
    return create_app(redis_client, bus_keys, KEY, site_embedder)


@pytest.fixture
def site(site_app):
    return TestClient(site_app)
