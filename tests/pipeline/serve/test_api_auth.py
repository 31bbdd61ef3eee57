"""The API key is checked before a request's body is read, and each client has a bounded number of uploads in
flight: a real uvicorn server, spoken to over a real socket with bodies that never finish arriving."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from pathlib import Path

import pytest

from pipeline.serve.api import create_app, serve
from pipeline.serve.uploads import SearchLimits
from tests.support.api import KEY
from tests.support.waiting import wait_for

BOUNDARY = "b0undary"
PART = (
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=images; filename=big.png\r\nContent-Type: image/png\r\n\r\n"
).encode() + bytes(32_000)
END = f"\r\n--{BOUNDARY}--\r\n".encode()  # what completes the body


class BodyCounter:
    """ASGI wrapper around the app: counts the request body bytes the app has read."""

    def __init__(self, app) -> None:
        self.app, self.read = app, 0

    async def __call__(self, scope, receive, send) -> None:
        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


def start_upload(port: int, key: str | None, declared: int = 31_000_000, admitted: bool = False) -> socket.socket:
    """A search whose headers declare ``declared`` body bytes, of which only the first part is sent. With
    ``admitted``, it asks ``Expect: 100-continue`` and sends that part once the server, reading the body,
    answers ``100 Continue``: the request has then passed every check before the route."""
    head = f"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {declared}\r\n"
    head += f"X-API-Key: {key}\r\n" if key is not None else ""
    head += "Expect: 100-continue\r\n" if admitted else ""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)  # a server that waits for the body: no answer
    if admitted:
        sock.sendall(head.encode() + b"\r\n")
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        sock.sendall(PART)
    else:
        sock.sendall(head.encode() + b"\r\n" + PART)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the response"
        body += chunk
    return int(status_line.split()[1]), headers, body


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """The folder uploads are spooled to (Python's temporary folder, in this process), with Starlette spooling
    every part over 1 KB to a file there (its default is 1 MB)."""
    from starlette.formparsers import MultiPartParser

    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 1024)
    return folder


def spooled(folder: Path) -> list[str]:
    """The files under ``folder`` this process (the server's) has open: a temporary file is deleted as soon as
    it is made, so it shows only here (Linux ``/proc/self/fd``)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd).startswith(f"{folder}/"):
                found.append(os.readlink(fd))
    return found


@pytest.fixture
def server(redis_client, bus_keys, spool):
    """The API (without a model: a search that gets past the bounds answers 503) on a real uvicorn server, at
    most two uploads per client; yields (port, body counter)."""
    app = BodyCounter(create_app(redis_client, bus_keys, KEY, limits=SearchLimits(uploads_per_client=2)))
    server, thread, port = serve(app, "127.0.0.1", 0)
    yield port, app
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("key", [None, "wrong", "schlüssel"])
def test_a_search_without_the_key_gets_401_before_its_body_is_read(server, spool, key):
    port, counter = server
    with start_upload(port, key) as sock:
        status, headers, body = read_response(sock)  # the other 30,968,000 bytes are never sent
    assert status == 401 and "X-API-Key" in json.loads(body)["detail"]
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert counter.read == 0  # not one byte of the body was read
    assert spooled(spool) == []  # nor spooled to a temporary file


def test_every_api_route_needs_the_key_and_the_page_does_not(redis_client, bus_keys):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(redis_client, bus_keys, KEY))
    for path in ("/api/cameras", "/api/persons", "/api/persons/1", "/api/sightings/cam0:1:0", "/api/nothing"):
        r = client.get(path)
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"], path
        assert client.get(path, headers={"X-API-Key": KEY}).status_code in (200, 404), path
    assert client.post("/api/search", files=[("images", ("a.png", b"x", "image/png"))]).status_code == 401
    assert client.get("/").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_a_client_past_its_uploads_in_flight_gets_429(server, spool):
    port, _ = server
    whole = len(PART) + len(END)
    with start_upload(port, KEY, admitted=True), start_upload(port, KEY, whole, admitted=True) as second:
        assert wait_for(lambda: len(spooled(spool)) == 2, 30)  # with the key, a body is read and spooled
        with start_upload(port, KEY) as third:  # two uploads of this client wait for their bodies
            status, headers, body = read_response(third)
        assert status == 429 and int(headers["retry-after"]) >= 1 and headers["connection"] == "close"
        assert "2 uploads in flight" in json.loads(body)["detail"] and "api.uploads_per_client" in body.decode()
        with start_upload(port, None) as keyless:  # refused before it counts
            assert read_response(keyless)[0] == 401
        second.sendall(END)  # its body complete, the search reaches the route (no model here: 503)
        status, _, body = read_response(second)
        assert status == 503 and "re-ID model" in json.loads(body)["detail"]
        # the second's slot was freed as it was answered; the first still holds its own
        with start_upload(port, KEY, admitted=True), start_upload(port, KEY) as over:
            assert read_response(over)[0] == 429
