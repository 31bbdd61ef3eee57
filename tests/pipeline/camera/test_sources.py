"""Sources on real video files and a real (refused) RTSP address: states, buffer policies, bad input."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from pipeline.camera.sources import (
    BufferPolicy,
    FrameBuffer,
    Reconnect,
    SourceError,
    SourceState,
    open_source,
    parse_source,
)
from pipeline.types import Frame
from tests.support.paths import VTEST, needs_video
from tests.support.waiting import wait_for


@pytest.mark.parametrize(
    "url,message",
    [
        ("ftp://cam/stream", "unknown source scheme 'ftp'"),
        ("/no/such/video.mp4", "video file not found"),
        ("rtsp:///path-only", "no host"),
    ],
)
def test_bad_urls_are_named(url, message):
    with pytest.raises(SourceError, match=message) as err:
        parse_source("cam", url)
    assert url in str(err.value)


def test_url_kinds():
    assert parse_source("c", "0").target == 0 and parse_source("c", "0").live
    rtsp = parse_source("c", "rtsp://10.0.0.5:554/stream", transport="udp")
    assert rtsp.live and rtsp.transport == "udp"
    with pytest.raises(SourceError, match="tcp or udp"):
        parse_source("c", "rtsp://host/x", transport="quic")


@needs_video
def test_file_source_reads_every_frame_with_a_slow_consumer():
    states = []
    source = open_source("pets", str(VTEST), capacity=4, on_state=lambda s, e: states.append(s))
    assert source.policy is BufferPolicy.WAIT
    frames = []
    for f in source.frames():
        frames.append(f)
        if len(frames) < 20:
            time.sleep(0.01)  # slower than the reader: the reader must wait, not drop
    assert len(frames) == 795 and source.buffer.dropped == 0
    assert [f.index for f in frames] == list(range(795))
    stamps = np.array([f.timestamp for f in frames])
    assert np.all(np.diff(stamps) > 0) and stamps[10] - stamps[0] == pytest.approx(1.0, abs=0.05)  # 10 fps
    assert frames[0].image.shape == (360, 480, 3)
    assert states == [SourceState.CONNECTING, SourceState.STREAMING, SourceState.ENDED]


def test_drop_oldest_keeps_the_newest_frames():
    buf = FrameBuffer(3, BufferPolicy.DROP_OLDEST)
    stop = threading.Event()
    for i in range(10):
        buf.put(Frame("c", i, float(i), np.zeros((1, 1, 3), np.uint8)), stop)
    assert buf.dropped == 7 and [buf.get(0).index for _ in range(3)] == [7, 8, 9]
    assert buf.get(0.01) is None


def test_corrupt_file_fails_clearly_without_hanging(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not a video " * 100)
    source = open_source("cam", str(bad))
    assert list(source.frames()) == []
    assert source.state is SourceState.FAILED and "cannot decode" in source.error


@needs_video
def test_truncated_file_yields_what_decodes_and_ends(tmp_path):
    cut = tmp_path / "cut.avi"
    data = VTEST.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    source = open_source("cam", str(cut))
    frames = list(source.frames())
    assert 0 < len(frames) < 795 and source.state is SourceState.ENDED


def test_unreachable_camera_retries_then_fails():
    states = []
    t0 = time.monotonic()
    source = open_source(
        "cam",
        "rtsp://127.0.0.1:9/stream",
        reconnect=Reconnect(initial=0.05, max_attempts=2),
        on_state=lambda s, e: states.append(s),
    )
    assert list(source.frames()) == []
    assert time.monotonic() - t0 < 30
    assert states[0] is SourceState.CONNECTING and SourceState.RECONNECTING in states
    assert states[-1] is SourceState.FAILED and "gave up after 2 attempts" in source.error


def test_stop_ends_a_reconnect_wait_and_the_source_is_stopped():
    source = open_source("cam", "rtsp://127.0.0.1:9/stream", reconnect=Reconnect(initial=600.0))
    asked = threading.Event()
    frames = source.frames(poll=0.05, until=asked.is_set)  # no frame comes while it waits to reconnect
    assert wait_for(lambda: source.state is SourceState.RECONNECTING, 30)
    asked.set()
    assert list(frames) == []  # ``until`` ends the frames even though the buffer never closed
    source.stop()
    assert not source._thread.is_alive() and source.state is SourceState.STOPPED and source.buffer.closed


def test_backoff_grows_and_is_capped():
    policy = Reconnect(initial=0.5, max_delay=4.0, factor=2.0, jitter=0.2)
    rng = random.Random(0)
    delays = [policy.delay(n, rng) for n in range(8)]
    assert 0.4 <= delays[0] <= 0.6 and 0.8 <= delays[1] <= 1.2
    assert all(d <= 4.0 * 1.2 for d in delays) and delays[-1] >= 4.0 * 0.8


@needs_video
def test_http_source(tmp_path):
    """A video served over HTTP by a real (loopback) HTTP server, read through FFmpeg like a camera."""
    import functools
    import http.server
    import itertools

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(VTEST.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = open_source("web", f"http://127.0.0.1:{server.server_address[1]}/{VTEST.name}")
        frames = list(itertools.islice(source.frames(), 25))
        source.stop()
    finally:
        server.shutdown()
    assert len(frames) == 25 and frames[0].image.shape == (360, 480, 3)
    assert source.spec.live and source.state_history[:2] == [SourceState.CONNECTING, SourceState.STREAMING]


def test_a_live_streams_ffmpeg_options_apply_only_while_it_opens(monkeypatch):
    """The transport option is set for one open at a time and the user's own setting comes back after."""
    import os

    from pipeline.camera.sources import _ffmpeg_options

    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "stimeout;1000")
    with _ffmpeg_options("rtsp_transport;udp"):
        assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;udp"
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "stimeout;1000"
    with _ffmpeg_options(None):  # a file or webcam: the user's setting stands
        assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "stimeout;1000"
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS")
    with _ffmpeg_options("rtsp_transport;tcp"):
        pass
    assert "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ
