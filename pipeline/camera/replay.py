"""``replay://PATH``: a video file played as if it were a live camera.

Frames are delivered at the file's own frame rate (the reader sleeps until each frame's time comes), the file
starts again from its first frame when it ends (``?loop=0`` plays it once, then the source ends), and the
source behaves as a live one: stamped with wall-clock time, the oldest waiting frame dropped when the
consumer falls behind. Use it to try a site on recorded footage at the pace its cameras would give, and in
``crosscam bench site``. ``?fps=N`` overrides a file whose header gives no (or a wrong) frame rate;
``?start=S`` begins S seconds into the file (a loop starts again from its first frame; a start past the end
wraps around), so several cameras playing one file show different moments of it. A reader that falls more than a frame behind the clock skips
frames, as a camera's stream moves on (counted ``source_replay_late``). Replays decode on the CPU.

    replay:///data/vtest.avi            an absolute path
    replay://videos/vtest.avi?loop=0    a path relative to the working folder, played once
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np

from pipeline.camera.sources import SourceError, SourceSpec, SourceType, VideoCapture

SCHEME = "replay://"


def _positive(url: str, options: dict[str, str], name: str, zero: bool = False) -> float | None:
    if name not in options:
        return None
    try:
        value = float(options[name])
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or not (value >= 0 if zero else value > 0):
        kind = "a number >= 0" if zero else "a positive number"
        raise SourceError(f"{url}: {name} must be {kind}, got {options[name]!r}")
    return value


def parse_replay_url(url: str) -> tuple[Path, bool, float | None, float]:
    """``(path, loop, fps, start)`` of a ``replay://`` URL; a missing file or a bad option is a ``SourceError``."""
    if not url.lower().startswith(SCHEME):
        raise SourceError(f"{url}: not a replay URL; use replay://PATH[?loop=0][&fps=N]")
    body, _, query = url[len(SCHEME) :].partition("?")
    path = Path(body)
    if not body or not path.is_file():
        raise SourceError(f"{url}: video file {body!r} not found (replay://PATH with an absolute or relative path)")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - {"loop", "fps", "start"})
    if unknown:
        raise SourceError(f"{url}: unknown replay option(s) {unknown}; use loop=0|1, fps=N and start=SECONDS")
    loop_text = options.get("loop", "1").lower()
    if loop_text not in ("0", "1", "true", "false"):
        raise SourceError(f"{url}: loop must be 0 or 1, got {loop_text!r}")
    fps = _positive(url, options, "fps")
    start = _positive(url, options, "start", zero=True) or 0.0
    return path, loop_text in ("1", "true"), fps, start


def check_replay_url(url: str) -> None:
    """``parse_replay_url``, and the file must decode (a file that is not a video is refused at once, not
    retried as a camera that will never connect)."""
    path = parse_replay_url(url)[0]
    video = VideoCapture(SourceSpec("replay", str(path), str(path), live=False))
    try:
        if not video.opened() or not video.read()[0]:
            raise SourceError(f"{url}: cannot decode {str(path)!r} as a video")
    finally:
        video.release()


class ReplayCapture:
    """Reads a video file at its frame rate (``Capture``): ``read`` sleeps until the frame is due and reports
    the time played since the first frame, loops included."""

    def __init__(self, url: str) -> None:
        self.path, self.loop, fps, start = parse_replay_url(url)
        self.spec = SourceSpec("replay", str(self.path), str(self.path), live=False)
        self.video = VideoCapture(self.spec)
        self.fps = fps or self.video.fps or 25.0
        self.frame_count = self.video.frame_count
        if start and self.video.opened():
            skip = round(start * self.fps)
            if self.frame_count:
                skip %= self.frame_count  # a start past the end wraps around, as the loop does
            for _ in range(skip):  # decoded, not seeked: exact for every codec
                self.video.cap.grab()
        self.index = 0  # frames delivered since the first, loops included
        self.ended = False
        self.late = 0  # frames skipped because the reader fell more than a frame behind the clock
        self.start: float | None = None  # monotonic clock at the first frame: paces the reads
        self.started_at: float | None = None  # wall clock at the first frame: stamps them (``Source``)

    def opened(self) -> bool:
        return self.video.opened()

    def read(self) -> tuple[bool, np.ndarray | None, float]:
        while True:
            ok, image, _ = self.video.read()
            if not ok and self.loop and self.index:
                self.video.release()
                self.video = VideoCapture(self.spec)
                ok, image, _ = self.video.read()
            if not ok:
                self.ended = True
                return False, None, self.index / self.fps
            if self.start is None:
                self.start, self.started_at = time.monotonic(), time.time()
            played = self.index / self.fps
            delay = self.start + played - time.monotonic()
            self.index += 1
            if delay < -1.0 / self.fps:  # more than a frame behind: a camera would have moved on; skip it
                self.late += 1
                continue
            if delay > 0:
                time.sleep(delay)
            return True, image, played

    def position(self) -> int:
        return self.index

    def release(self) -> None:
        self.video.release()


REPLAY = SourceType(check=check_replay_url, open=ReplayCapture, live=True)
"""``replay://`` sources for ``pipeline.camera.sources.open_source(..., types={"replay": REPLAY})``."""
