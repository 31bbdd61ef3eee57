"""Fixtures of the pipeline tests."""

from __future__ import annotations

import pytest

from tests.support.paths import VTEST
from tests.support.rtsp import RtspServer, require_server


@pytest.fixture
def rtsp_server():
    """GStreamer's RTSP server streaming vtest.avi as H.264; tests may stop and start it."""
    require_server()
    server = RtspServer(VTEST).start()
    yield server
    server.stop()
