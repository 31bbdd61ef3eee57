"""The HTTP API over a real Redis: queries, search by upload, and its answers to bad requests."""

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

KEY = "test-key"


def person_crops(color, n=4):
    img = np.zeros((128, 64, 3), np.uint8)
    img[:] = (90, 90, 90)
    img[20:120, 16:48] = color
    return [img.copy() for _ in range(n)]


@pytest.fixture
def site_app(redis_client, bus_keys, tiny_checkpoints):
    """Three people each seen on two cameras, linked by a real matcher. The green one's feature is what
    the model makes of green crops; the others are random directions (the fixture's model is untrained)."""
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
    return create_app(redis_client, bus_keys, KEY, embedder)


@pytest.fixture
def site(site_app):
    return TestClient(site_app)


def test_queries_and_search(site):
    h = {"X-API-Key": KEY}
    persons = site.get("/api/persons", headers=h).json()["persons"]
    assert len(persons) == 3 and all(p["cameras"] == ["cam0", "cam1"] for p in persons)
    history = site.get(f"/api/persons/{persons[0]['person']}", headers=h).json()
    assert [s["camera"] for s in history["sightings"]] == ["cam0", "cam1"]
    sid = history["sightings"][1]["sighting"]
    assert site.get(f"/api/sightings/{sid}", headers=h).json()["decision"] == "link"
    thumb = site.get(f"/api/sightings/{sid}/thumbnail", headers=h)
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    assert site.get("/api/cameras", headers=h).json()["cameras"][0]["state"] == "streaming"
    files = [
        ("images", (f"g{i}.png", cv2.imencode(".png", c[:, :, ::-1])[1].tobytes(), "image/png"))
        for i, c in enumerate(person_crops((30, 220, 30), 2))
    ]
    results = site.post("/api/search?top_k=2", headers=h, files=files).json()["results"]
    green = next(p["person"] for p in persons if p["first_seen"] == 20.0)
    assert results[0]["person"] == green and results[0]["score"] > results[1]["score"]
    assert site.get("/").text.startswith("<!doctype html>")
    assert "/api/persons/{person}" in site.get("/openapi.json").json()["paths"]


def test_bad_requests(site):
    h = {"X-API-Key": KEY}
    assert site.get("/api/persons").status_code == 401
    assert site.get("/api/persons", headers={"X-API-Key": "wrong"}).status_code == 401
    r = site.get("/api/persons/4242", headers=h)
    assert r.status_code == 404 and "no person 4242" in r.json()["detail"]
    assert site.get("/api/sightings/nope:1:0", headers=h).status_code == 404
    r = site.post("/api/search", headers=h, files=[("images", ("notes.txt", b"not an image", "text/plain"))])
    assert r.status_code == 400 and "notes.txt: not an image" in r.json()["detail"]
