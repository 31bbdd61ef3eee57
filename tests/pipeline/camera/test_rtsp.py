"""Reading a real RTSP stream (GStreamer's RTSP server, H.264 over RTSP/TCP), and surviving a restart."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.camera.sources import Reconnect, SourceState, open_source
from tests.support.paths import needs_video
from tests.support.waiting import wait_for


@needs_video
def test_rtsp_stream_is_read(rtsp_server):
    source = open_source("pets", rtsp_server.url)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 40:
            break
    source.stop()
    assert source.spec.transport == "tcp" and frames[0].image.shape == (360, 480, 3)
    assert np.all(np.diff([f.timestamp for f in frames]) >= 0)
    assert source.state_history[:2] == [SourceState.CONNECTING, SourceState.STREAMING]


@needs_video
@pytest.mark.slow
def test_server_restart_reconnects_and_streams_again(rtsp_server):
    source = open_source("pets", rtsp_server.url, reconnect=Reconnect(initial=0.2, max_delay=1.0))
    counts = source.counts
    consumed = []

    def consume():  # drain the buffer as a worker would
        while (f := source.buffer.get(0.01)) is not None:
            consumed.append(f)

    assert wait_for(lambda: consume() or counts["frames"] >= 20, 30), "no frames before the restart"
    rtsp_server.stop()
    assert wait_for(lambda: consume() or source.state is SourceState.RECONNECTING, 30), "never noticed the outage"
    before = counts["frames"]
    rtsp_server.start()
    assert wait_for(lambda: consume() or (source.state is SourceState.STREAMING and counts["frames"] > before + 20), 60)
    source.stop()
    assert counts["reconnects"] >= 1
    history = source.state_history
    assert SourceState.STREAMING in history[history.index(SourceState.RECONNECTING) + 1 :]  # streaming again
