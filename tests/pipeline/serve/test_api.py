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


RESPONSES = {  # (method, path) -> the response model OpenAPI names
    ("get", "/api/cameras"): "CamerasResponse",
    ("get", "/api/persons"): "PersonsResponse",
    ("get", "/api/persons/{person}"): "History",
    ("get", "/api/sightings/{sighting}"): "Explanation",
    ("post", "/api/search"): "SearchResponse",
}
SIGHTING = {"sighting", "camera", "model", "decision", "reason", "stream_id", "identity", "track", "seq", "excluded"}
SIGHTING |= {"best", "runner_up", "t_start", "t_end", "score", "runner_up_score", "ingested"}


def test_openapi_names_each_routes_response_and_its_fields(site):
    h = {"X-API-Key": KEY}
    spec = site.get("/openapi.json").json()
    routes = {(m, p) for p, ops in spec["paths"].items() if p.startswith("/api/") for m in ops}
    assert routes == set(RESPONSES) | {("get", "/api/sightings/{sighting}/thumbnail")}
    for (method, path), name in RESPONSES.items():
        answers = spec["paths"][path][method]["responses"]
        assert answers["200"]["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
        assert answers["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    thumbnail = spec["paths"]["/api/sightings/{sighting}/thumbnail"]["get"]["responses"]
    assert list(thumbnail["200"]["content"]) == ["image/jpeg"] and "404" in thumbnail
    schemas = spec["components"]["schemas"]

    def fields(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    def items(name: str, field: str) -> str:
        return schemas[name]["properties"][field]["items"]["$ref"].rsplit("/", 1)[1]

    assert fields("CamerasResponse") == {"site", "cameras"} and items("CamerasResponse", "cameras") == "CameraStatus"
    counters = {"frames", "fps", "tracklets", "dropped_frames", "watermark"}
    assert fields("CameraStatus") == {"camera", "state", "since", "heartbeat", "error"} | counters
    assert fields("PersonsResponse") == {"site", "persons"} and items("PersonsResponse", "persons") == "PersonSummary"
    assert fields("PersonSummary") == {
        "person",
        "first_seen",
        "last_seen",
        "sightings",
        "cameras",
        "thumb",
        "tentative",
    }
    assert fields("History") == {"person", "asked", "first_seen", "last_seen", "cameras", "thumb", "sightings"}
    assert items("History", "sightings") == "SightingView" and fields("SightingView") == SIGHTING
    assert schemas["SightingView"]["properties"]["decision"]["enum"] == [
        "link",
        "new",
        "continuity",
        "colocated",
        "unlinked",
    ]
    assert fields("Explanation") == SIGHTING | {"merges", "person"} and items("Explanation", "merges") == "MergeStep"
    assert fields("MergeStep") == {"from", "into", "score"}
    assert fields("SearchResponse") == {"results"} and items("SearchResponse", "results") == "SearchHit"
    assert fields("SearchHit") == {"person", "score", "history"}

    # what the routes answer has the documented fields
    camera = site.get("/api/cameras", headers=h).json()["cameras"][0]
    assert {"camera", "state", "heartbeat"} <= set(camera) <= fields("CameraStatus")
    person = site.get("/api/persons", headers=h).json()["persons"][0]
    assert set(person) == fields("PersonSummary")
    history = site.get(f"/api/persons/{person['person']}", headers=h).json()
    assert set(history) == fields("History") and set(history["sightings"][0]) == SIGHTING
    explanation = site.get(f"/api/sightings/{history['sightings'][0]['sighting']}", headers=h).json()
    assert set(explanation) == fields("Explanation")
