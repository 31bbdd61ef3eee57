"""The HTTP API over a real Redis: queries, search by upload, and its answers to bad requests."""

from __future__ import annotations

import cv2

from tests.support.api import KEY, person_crops


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
