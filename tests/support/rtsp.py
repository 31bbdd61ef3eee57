"""The GStreamer RTSP server (``pipeline.lab.rtsp_server``) in tests: skipped where it cannot run."""

from __future__ import annotations

import os

import pytest

from pipeline.lab.rtsp_server import RtspServer, free_port, server_available

__all__ = ["RtspServer", "free_port", "require_server", "server_available"]


def require_server() -> None:
    """Skip on a user's machine without the packages; fail in CI, where .ci/run installs them."""
    reason = server_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(f"{reason}; .ci/run installs them")
