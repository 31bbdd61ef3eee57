"""Starting and stopping the GStreamer RTSP test server (tests/support/rtsp_server.py) from tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_available() -> str | None:
    """None when the server can run here, else why not."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return (
            "GStreamer's RTSP server is not installed (Debian: gir1.2-gst-rtsp-server-1.0 python3-gi "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav; .ci/run installs them)"
        )
    return None


def require_server() -> None:
    """Skip on a user's machine without the packages; fail in CI, where .ci/run installs them."""
    reason = server_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class RtspServer:
    """One server process on a fixed port, which tests can stop and start again."""

    def __init__(self, video: Path, port: int | None = None, mount: str = "/stream") -> None:
        self.video, self.port, self.mount = video, port or free_port(), mount
        self.url = f"rtsp://127.0.0.1:{self.port}{mount}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> RtspServer:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), "--video", str(self.video), "--port", str(self.port), "--mount", self.mount],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return self
            if self.proc.poll() is not None:
                break
        err = self.proc.stderr.read() if self.proc.poll() is not None else "no READY line in time"
        self.stop()
        raise RuntimeError(f"RTSP test server did not start: {err}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
