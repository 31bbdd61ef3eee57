"""The API under hostile or mistaken requests: search bounds (bytes, images, pixels read from the header
before decoding), search off the event loop, security headers, id and number validation, key encoding."""

from __future__ import annotations

import struct
import threading
import zlib

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline import store
from pipeline.serve.api import create_app, serve
from pipeline.serve.gallery_cache import GalleryCache
from pipeline.serve.uploads import SearchLimits
from tests.support.api import KEY, person_crops

H = {"X-API-Key": KEY}


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` black pixels: a few hundred KB that would decode
    to width x height x 3 bytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed pixels
    z = zlib.compressobj(9)
    rows_per_block = max(1, (1 << 22) // len(row))
    block = row * rows_per_block
    parts, left = [], height
    while left:
        n = min(left, rows_per_block)
        parts.append(z.compress(block if n == rows_per_block else row * n))
        left -= n
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def uploads(*images: bytes) -> list:
    return [("images", (f"i{n}.png", data, "image/png")) for n, data in enumerate(images)]


def green(n: int = 1) -> list[bytes]:
    return [png(c[:, :, ::-1]) for c in person_crops((30, 220, 30), n)]


@pytest.fixture
def bounded(redis_client, bus_keys, site_embedder):
    limits = SearchLimits(max_images=3, max_image_bytes=250_000, max_request_bytes=600_000, max_pixels=4_000_000)
    return TestClient(create_app(redis_client, bus_keys, KEY, site_embedder, limits))


def test_a_decompression_bomb_gets_413_without_being_decoded(bounded):
    for width, height in ((3000, 3000), (40_000, 40_000)):  # 9 Mpx over the 4 Mpx bound; 1.6 Gpx
        bomb = png_bomb(width, height)
        assert len(bomb) < 250_000  # within the byte bounds: only its pixels are too many
        r = bounded.post("/api/search", headers=H, files=uploads(*green(), bomb))
        assert r.status_code == 413, r.text
        detail = r.json()["detail"]
        assert detail.startswith("i1.png: ") and "more than the 4000000 pixels" in detail and "api.max_pixels" in detail
        assert ("3000x3000 = 9000000 pixels" if width == 3000 else "1600000000 pixels") in detail
    # within the bounds, the same route answers
    assert bounded.post("/api/search", headers=H, files=uploads(*green(2))).status_code == 200


def test_too_many_images_or_bytes_get_413(bounded):
    r = bounded.post("/api/search", headers=H, files=uploads(*green(4)))
    assert r.status_code == 413 and "4 images: a search takes at most 3 (api.max_images)" in r.json()["detail"]
    noise = png(np.random.default_rng(0).integers(0, 256, (320, 300, 3), np.uint8))
    assert 250_000 < len(noise) < 600_000
    r = bounded.post("/api/search", headers=H, files=uploads(noise))
    assert r.status_code == 413 and f"i0.png: {len(noise)} bytes" in r.json()["detail"]
    assert "api.max_image_bytes" in r.json()["detail"]
    # a body over api.max_request_bytes: refused from its Content-Length, before it is read
    r = bounded.post("/api/search", headers=H, files=uploads(noise, noise, noise, noise))
    assert r.status_code == 413 and "api.max_request_bytes" in r.json()["detail"]
    # ... and counted as it arrives when it declares no length (chunked)
    body = b"--b\r\nContent-Disposition: form-data; name=images; filename=x.png\r\n\r\n" + bytes(700_000)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    headers = H | {"content-type": "multipart/form-data; boundary=b"}
    r = bounded.post("/api/search", headers=headers, content=chunks)
    assert r.status_code == 413 and "api.max_request_bytes" in r.json()["detail"]


class _Gate:
    """The site's model, held at ``embed`` until the test opens the gate."""

    def __init__(self, embedder):
        self.embedder, self.spec = embedder, embedder.spec
        self.entered, self.release = threading.Event(), threading.Event()

    def embed(self, clips):
        self.entered.set()
        assert self.release.wait(60)
        return self.embedder.embed(clips)


def test_a_slow_search_does_not_stall_other_requests(redis_client, bus_keys, site_embedder):
    gate = _Gate(site_embedder)
    server, thread, port = serve(create_app(redis_client, bus_keys, KEY, gate), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    answer = {}
    try:
        searching = threading.Thread(
            target=lambda: answer.setdefault(
                "search", httpx.post(f"{url}/api/search", headers=H, files=uploads(*green(2)), timeout=60)
            )
        )
        searching.start()
        assert gate.entered.wait(30)  # the search is embedding now, and waits there
        cameras = httpx.get(f"{url}/api/cameras", headers=H, timeout=20)
        assert cameras.status_code == 200 and cameras.json()["cameras"][0]["camera"] == "cam0"
        assert not answer  # the search still waits
        gate.release.set()
        searching.join(60)
        assert answer["search"].status_code == 200 and answer["search"].json()["results"]
    finally:
        gate.release.set()
        server.should_exit = True
        thread.join(timeout=10)


class _OtherSize:
    """A model of another feature size than the site's: the first half of the site model's feature."""

    def __init__(self, embedder):
        self.embedder, self.spec = embedder, embedder.spec

    def embed(self, clips):
        features, attention = self.embedder.embed(clips)
        half = features[:, : features.shape[1] // 2]
        return half / np.linalg.norm(half, axis=1, keepdims=True), attention


def test_search_with_a_model_of_another_feature_size_names_both(redis_client, bus_keys, site_embedder):
    client = TestClient(create_app(redis_client, bus_keys, KEY, _OtherSize(site_embedder)))
    r = client.post("/api/search", headers=H, files=uploads(*green(2)))
    dim = site_embedder.spec.feature_dim
    assert r.status_code == 409, r.text
    assert f"makes {dim // 2}-d features but the site's identities hold {dim}-d features" in r.json()["detail"]


def test_every_response_carries_the_security_headers(site):
    for r in (
        site.get("/"),
        site.get("/app.js"),
        site.get("/style.css"),
        site.get("/api/cameras", headers=H),
        site.get("/api/cameras"),
        site.get("/api/persons/4242", headers=H),
        site.get("/docs"),
    ):
        csp = r.headers["content-security-policy"]
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-frame-options"] == "DENY"
    page = site.get("/").headers["content-security-policy"]
    assert "script-src 'self';" in page and "unsafe-inline" not in page
    assert site.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert "<script>" not in site.get("/").text and "<style>" not in site.get("/").text  # nothing inline


@pytest.mark.parametrize(
    "path",
    [
        "/api/persons?camera=%3Cimg%20src%3Dx%3E",
        "/api/persons?camera=a%20b",
        "/api/sightings/%3Cimg%20src%3Dx%3E:1:0",
        "/api/sightings/cam0:1/thumbnail",
        "/api/sightings/cam0:x:0",
        "/api/persons?since=nan",
        "/api/persons?since=inf",
        "/api/persons?since=-Infinity",
    ],
)
def test_ids_and_numbers_outside_their_pattern_get_422(site, path):
    r = site.get(path, headers=H)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] in ("camera", "sighting", "since")


def test_a_key_outside_ascii_is_refused_with_401(site):
    r = site.get("/api/persons", headers={"X-API-Key": "schlüssel".encode()})
    assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
    assert site.get("/api/persons", headers={"X-API-Key": b"\xff\xfe"}).status_code == 401
    assert site.get("/api/persons", headers=H).status_code == 200


def test_the_gallery_reloads_in_the_background(redis_client, bus_keys, site_embedder):
    gate = threading.Event()
    gate.set()

    def load():
        assert gate.wait(60)
        return store.load_gallery(redis_client, bus_keys)

    cache = GalleryCache(load, lambda: tuple(redis_client.mget(bus_keys.version, bus_keys.epoch)))
    first = cache.get()
    assert len(first) == 3 and cache.get() is first  # loaded once, kept while the site does not change
    gate.clear()  # the next load hangs until the gate opens
    redis_client.incr(bus_keys.version)
    answered = {}
    asking = threading.Thread(target=lambda: answered.setdefault("gallery", cache.get()))
    asking.start()
    asking.join(30)
    assert answered["gallery"] is first  # answered from the last copy while the new one loads
    gate.set()
    cache.wait(30)
    assert cache.get() is not first and len(cache.get()) == 3
