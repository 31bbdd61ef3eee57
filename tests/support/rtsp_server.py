"""A real RTSP server for tests: GStreamer's gst-rtsp-server serving a video file as H.264 over RTSP.

Runs with the system Python (Debian packages gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{good,ugly}, gstreamer1.0-libav), not the project's virtual environment:

    /usr/bin/python3 tests/support/rtsp_server.py --video vtest.avi --port 8554 --mount /stream

Prints "READY rtsp://127.0.0.1:PORT/MOUNT" on stdout once it listens; stops on SIGTERM / SIGINT.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
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
    sys.exit(main())
