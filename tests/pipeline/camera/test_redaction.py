"""Camera credentials never leave the process: a dead camera's URL with a password, run by the real worker
(``crosscam worker``, a real embedder, a real Redis), appears nowhere in Redis, the HTTP API, the CLI's
output or the logs; and the redaction itself on the URLs and messages it meets."""

from __future__ import annotations

import logging
import socket

import pytest
from fastapi.testclient import TestClient

from crosscam.redact import redact
from models.embedder import load_embedder
from pipeline.camera.sources import SourceError, parse_source
from pipeline.cli import main
from pipeline.serve.api import create_app
from tests.support.api import KEY
from tests.support.cli import site_args
from tests.support.redis_scan import every_value

PASSWORD = "s3cret"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:s3cret@10.0.0.2:554/x: cannot connect", "rtsp://***@10.0.0.2:554/x: cannot connect"),
        ("rtsp://admin:p@ss@cam/x", "rtsp://***@cam/x"),  # a raw "@" in the password
        ("redis://:s3cret@host:6379/0", "redis://***@host:6379/0"),
        ("http://cam/snap?user=a&password=s3cret&token=t0k#f", "http://cam/snap?user=a&password=***&token=***#f"),
        ("https://cam/x?API_KEY=abc;sig=zz", "https://cam/x?API_KEY=***;sig=***"),
        ("rtsp://cam:554/stream1", "rtsp://cam:554/stream1"),
        ("/videos/a@b.mp4 and synth://?cameras=3&seed=1", "/videos/a@b.mp4 and synth://?cameras=3&seed=1"),
        ("rtsp://admin:S3c/ret@host/x", "rtsp://***@host/x"),  # a raw "/", "?", "#" or "@" in the password
        (
            "cannot open 'rtsp://admin:a@b/c?d#e@host:554/x?y=1' (timeout)",
            "cannot open 'rtsp://***@host:554/x?y=1' (timeout)",
        ),
        ("rtsp://admin:S3c%2Fret@host/x", "rtsp://***@host/x"),
        (
            "http://cam/a?pw=1&authbasic=2&Passphrase=3&X-Amz-Signature=4",
            "http://cam/a?pw=***&authbasic=***&Passphrase=***&X-Amz-Signature=***",
        ),
        (
            "http://cam/a?admin_pw=1&client_secret=2&sessionid=3&channel=1&pwr=on",
            "http://cam/a?admin_pw=***&client_secret=***&sessionid=***&channel=1&pwr=on",
        ),
        ("file:///videos/a@b.mp4 replay:///data/c@d.mp4", "file:///videos/a@b.mp4 replay:///data/c@d.mp4"),
        ("http://cam/snap?user=a@b", "http://***@b"),  # an "@" after the host hides the host too
    ],
)
def test_redact_hides_credentials_and_keeps_the_rest(text, expected):
    assert redact(text) == expected
    assert redact(redact(text)) == expected


def test_a_bad_source_url_error_does_not_quote_the_password():
    with pytest.raises(SourceError) as e:
        parse_source("door", f"rtsp://admin:{PASSWORD}@/x")
    assert PASSWORD not in str(e.value) and "rtsp://***@/x" in str(e.value)
    spec = parse_source("door", f"rtsp://admin:{PASSWORD}@cam/x")
    assert PASSWORD not in repr(spec) and spec.shown == "rtsp://***@cam/x"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_cameras_password_is_in_no_status_api_output_or_log(
    redis_client, bus_keys, tiny_checkpoints, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{closed_port()}/x"
    argv = ["worker", "--camera", "door", "--source", url, "--detector", "motion"]
    argv += ["--embedder", str(tiny_checkpoints["tiny_attention"]), *site_args(redis_client, bus_keys)]
    argv += ["--set", "source.reconnect_attempts=2"]
    argv += ["--set", "source.reconnect_initial=0.05", "--max-seconds", "60", "--json", "-vv"]
    main(argv)
    out, err = capfd.readouterr()

    status = redis_client.hgetall(bus_keys.camera("door"))
    assert status[b"state"] == b"failed" and b"rtsp://***@127.0.0.1" in status[b"error"]  # the error is kept
    assert not [v for v in every_value(redis_client) if PASSWORD.encode() in v]
    api = TestClient(create_app(redis_client, bus_keys, KEY, load_embedder(tiny_checkpoints["tiny_attention"])))
    answer = api.get("/api/cameras", headers={"X-API-Key": KEY})
    assert answer.status_code == 200 and "door" in answer.text and PASSWORD not in answer.text
    assert "rtsp://***@127.0.0.1" in out  # the --json summary names the source's error, redacted
    assert PASSWORD not in out and PASSWORD not in err
    assert caplog.records and not [r for r in caplog.records if PASSWORD in r.getMessage()]


@pytest.mark.parametrize("password", [PASSWORD, "S3c/ret", "p?ss#w@rd"])
def test_statuses_stored_before_are_redacted_when_read(redis_client, bus_keys, tiny_checkpoints, password):
    redis_client.sadd(bus_keys.cameras, "door")
    error = f"rtsp://u:{password}@cam/x?pw=hunter2&passphrase=opensesame"
    redis_client.hset(bus_keys.camera("door"), mapping={"state": "failed", "error": error})
    api = TestClient(create_app(redis_client, bus_keys, KEY, load_embedder(tiny_checkpoints["tiny_attention"])))
    answer = api.get("/api/cameras", headers={"X-API-Key": KEY})
    assert answer.status_code == 200 and "rtsp://***@cam/x?pw=***&passphrase=***" in answer.text
    assert not [s for s in (password, "hunter2", "opensesame") if s in answer.text]
