"""An RTSP server for the soak and the tests: GStreamer's gst-rtsp-server serving a video file as H.264.

The server runs with the system Python (Debian packages gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{good,ugly}, gstreamer1.0-libav), not the project's virtual environment:

    /usr/bin/python3 pipeline/lab/rtsp_server.py --video vtest.avi --port 8554 --mount /stream

It prints "READY rtsp://127.0.0.1:PORT/MOUNT" on stdout once it listens and stops on SIGTERM / SIGINT.
``RtspServer`` starts and stops such a process from the project's Python. This file imports only the standard
library at its top, so both Pythons can load it.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
PACKAGES = (
    "GStreamer's RTSP server is not installed (Debian: gir1.2-gst-rtsp-server-1.0 python3-gi "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav)"
)


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
    return PACKAGES if probe.returncode else None


class RtspServer:
    """One server process on a fixed port, which can be stopped and started again."""

    def __init__(self, video: Path, port: int | None = None, mount: str = "/stream") -> None:
        self.video, self.port, self.mount = video, port or free_port(), mount
        self.url = f"rtsp://127.0.0.1:{self.port}{mount}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> RtspServer:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, __file__, "--video", str(self.video), "--port", str(self.port), "--mount", self.mount],
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
        raise RuntimeError(f"the RTSP server for {self.video} did not start: {err}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def serve() -> int:
    """The server process itself (run by the system Python)."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    p = argparse.ArgumentParser()
    p.add_argument("--video", required=True)
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--mount", default="/stream")
    args = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{args.video}" ! decodebin ! videoconvert ! video/x-raw,format=I420 '
        "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bframes=0 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.mount}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
