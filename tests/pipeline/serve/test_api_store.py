"""What the API answers from what Redis holds: stored bytes that are not UTF-8 or that clash with the response's
own fields, and a Redis that stops and comes back (a real redis-server on a TCP port)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipeline.bus.connect import connect
from pipeline.bus.publisher import Publisher
from pipeline.keys import Keys
from pipeline.serve.api import create_app
from tests.support.api import KEY
from tests.support.redis_process import RedisProcess

H = {"X-API-Key": KEY}


def test_cameras_shows_every_stored_value_as_text(redis_client, bus_keys):
    keys = bus_keys
    Publisher(redis_client, keys).camera_status("cam0", "streaming", error="rtsp://admin:pw@host/x refused")
    redis_client.hset(keys.camera("cam0"), mapping={"camera": "impostor", "model_config": "x", "frames": b"7\xff"})
    redis_client.sadd(keys.cameras, b"cam\xff\xfe", b"\xc3(")
    raw = keys.camera("").encode()  # a camera's status key is the prefix followed by its id's bytes
    redis_client.hset(raw + b"cam\xff\xfe", mapping={b"st\xffate": b"up\xe9", "error": b"\x80 bad"})
    client = TestClient(create_app(redis_client, keys, KEY))
    r = client.get("/api/cameras", headers=H)
    assert r.status_code == 200, r.text
    cameras = {c["camera"]: c for c in r.json()["cameras"]}
    assert list(cameras) == ["\\xc3(", "cam0", "cam\\xff\\xfe"]  # ids from the set, bytes outside UTF-8 escaped
    cam0 = cameras["cam0"]
    assert cam0["state"] == "streaming" and cam0["frames"] == "7\\xff" and cam0["model_config"] == "x"
    assert cam0["error"] == "rtsp://***@host/x refused"  # credentials redacted, as ever
    assert cameras["cam\\xff\\xfe"] == {"camera": "cam\\xff\\xfe", "st\\xffate": "up\\xe9", "error": "\\x80 bad"}
    assert cameras["\\xc3("] == {"camera": "\\xc3("}  # in the set, no status yet


@pytest.fixture
def redis_server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


def test_the_api_answers_503_while_redis_is_down_and_recovers(redis_server, caplog):
    keys = Keys(site="outage")
    client = connect(redis_server.url)
    Publisher(client, keys).camera_status("cam0", "streaming")
    api = TestClient(create_app(client, keys, KEY), raise_server_exceptions=False)
    assert api.get("/api/cameras", headers=H).json()["cameras"][0]["state"] == "streaming"
    redis_server.stop()
    for path in ("/api/cameras", "/api/persons", "/api/persons/1", "/api/sightings/cam0:1:0"):
        r = api.get(path, headers=H)
        assert r.status_code == 503, (path, r.text)
        assert r.json() == {"detail": "the site's Redis cannot be reached: try again shortly"}
        assert r.headers["retry-after"] == "5"
    assert caplog.text.count("answered 503: Redis cannot be reached") == 4 and "Traceback" not in caplog.text
    assert api.get("/api/cameras").status_code == 401  # the key is checked first, Redis or not
    redis_server.start()  # same port, same data
    r = api.get("/api/cameras", headers=H)
    assert r.status_code == 200 and r.json()["cameras"][0]["state"] == "streaming"
    assert api.get("/api/persons", headers=H).json()["persons"] == []
