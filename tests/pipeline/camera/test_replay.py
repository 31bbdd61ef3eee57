"""replay:// (a video file played as a live camera), the frame-rate cap, and the hardware-decoding request."""

from __future__ import annotations

import itertools
import time

import cv2
import numpy as np
import pytest

from pipeline.camera.replay import parse_replay_url
from pipeline.camera.sources import BufferPolicy, Source, SourceError, SourceState, open_source, parse_source
from pipeline.site import SOURCE_TYPES
from tests.support.paths import VTEST, needs_video


def tiny_video(path, frames: int = 10, fps: float = 50.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


def grey_level(image: np.ndarray) -> int:
    """The frame number of a ``tiny_video`` picture (frame i is grey level 20 i, within MJPEG's loss)."""
    return round(int(image.mean()) / 20)


def frame_periods(t: float, fps: float = 50.0) -> int:
    """``t`` seconds of stream time as a whole number of frame periods (it must be one)."""
    periods = round(t * fps)
    assert abs(t * fps - periods) < 1e-3, f"{t} s is not a whole number of 1/{fps} s frame periods"
    return periods


def test_a_replay_is_live_paced_and_loops(tmp_path):
    """A loaded machine makes the reader late: it then skips frames (a camera's stream moves on) and the buffer
    drops the oldest, so the contract is checked, not exact gaps: stream time strictly increases by whole frame
    periods across the loops, each picture is the clip's frame at that time, indexes count the frames read."""
    video = tiny_video(tmp_path / "clip.avi")
    source = open_source("r", f"replay://{video}", types=SOURCE_TYPES)
    assert source.spec.live and source.policy is BufferPolicy.DROP_OLDEST
    start = time.monotonic()
    frames = list(itertools.islice(source.frames(), 25))  # 2.5 times through the clip, or more when frames skip
    elapsed = time.monotonic() - start
    source.stop()
    indexes = [f.index for f in frames]
    assert all(a < b for a, b in itertools.pairwise(indexes))  # the source's count of frames read
    assert indexes[-1] - indexes[0] + 1 - len(frames) <= source.buffer.dropped  # a gap is a dropped frame
    played = [frame_periods(f.timestamp - frames[0].timestamp) for f in frames]
    assert all(a < b for a, b in itertools.pairwise(played))  # stream time goes on, across the loops too
    first = grey_level(frames[0].image)
    assert [grey_level(f.image) for f in frames] == [(first + p) % 10 for p in played]  # the clip's frame then
    assert played[-1] >= 24 and elapsed >= 24 / 50  # paced at the clip's 50 frames/s, not as fast as it decodes
    assert source.state is not SourceState.FAILED


def test_a_replay_without_loop_ends(tmp_path):
    video = tiny_video(tmp_path / "clip.avi")
    source = open_source("r", f"replay://{video}?loop=0", types=SOURCE_TYPES)
    frames = list(source.frames())
    assert len(frames) == 10 and source.state is SourceState.ENDED


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("replay:///no/such/video.avi", "not found"),
        ("replay://{video}?loop=maybe", "loop must be 0 or 1"),
        ("replay://{video}?fps=-2", "fps must be a positive number"),
        ("replay://{video}?speed=2", "unknown replay option"),
        ("replay://{video}?start=-1", "start must be a number >= 0"),
    ],
)
def test_bad_replay_urls_are_refused_with_the_reason(tmp_path, url, message):
    video = tiny_video(tmp_path / "clip.avi")
    with pytest.raises(SourceError, match=message):
        parse_source("r", url.format(video=video), types=SOURCE_TYPES)


def test_replay_fps_overrides_the_header(tmp_path):
    video = tiny_video(tmp_path / "clip.avi")
    assert parse_replay_url(f"replay://{video}?fps=12.5&loop=1") == (video, True, 12.5, 0.0)


def test_a_replay_can_start_into_the_file_and_loops_from_its_beginning(tmp_path):
    from pipeline.camera.replay import ReplayCapture

    video = tiny_video(tmp_path / "clip.avi")  # frame i is grey level 20 i
    capture = ReplayCapture(f"replay://{video}?start=0.1")  # 5 frames in, at 50 frames/s
    reads = [capture.read() for _ in range(8)]
    capture.release()
    assert all(ok for ok, _, _ in reads)
    played = [frame_periods(t) for _, _, t in reads]  # 0, 1, ..., 7 unless a late reader skipped some
    assert played[0] == 0 and all(a < b for a, b in itertools.pairwise(played))
    assert [grey_level(image) for _, image, _ in reads] == [(5 + p) % 10 for p in played]


@needs_video
def test_the_frame_rate_cap_keeps_every_other_frame_of_a_10_fps_video():
    source = open_source("c", str(VTEST), max_fps=5)
    frames = list(itertools.islice(source.frames(), 20))
    source.stop()
    assert [f.index for f in frames] == list(range(0, 40, 2))
    assert source.counts["fps_skipped"] >= 19


def test_the_frame_rate_cap_keeps_the_asked_rate_of_a_25_fps_stream():
    source = Source(parse_source("c", "rtsp://127.0.0.1:1/x"), max_fps=10)
    kept = [t for t in (i / 25 for i in range(250)) if source._keep(t)]  # ten seconds at 25 frames/s
    assert len(kept) == 100
    assert [t for t in (30 + i / 25 for i in range(25)) if source._keep(t)][:1] == [30.0]  # a jump restarts


def test_a_cap_of_zero_is_refused():
    with pytest.raises(SourceError, match="max_fps must be positive"):
        Source(parse_source("c", "rtsp://127.0.0.1:1/x"), max_fps=0)


@needs_video
def test_asking_for_hardware_decoding_falls_back_to_the_cpu_where_there_is_none():
    source = open_source("c", str(VTEST), hardware=True)
    frames = list(itertools.islice(source.frames(), 5))
    source.stop()
    assert len(frames) == 5 and frames[0].image.shape == (360, 480, 3)


def test_a_file_that_is_not_a_video_is_refused_at_once(tmp_path):
    notes = tmp_path / "notes.avi"
    notes.write_text("not a video")
    with pytest.raises(SourceError, match="cannot decode"):
        parse_source("r", f"replay://{notes}", types=SOURCE_TYPES)


@pytest.mark.parametrize("option", ["start=inf", "fps=inf", "fps=nan"])
def test_infinite_replay_options_are_refused(tmp_path, option):
    video = tiny_video(tmp_path / "clip.avi")
    with pytest.raises(SourceError, match="must be"):
        parse_source("r", f"replay://{video}?{option}", types=SOURCE_TYPES)


def test_a_replay_that_falls_behind_skips_frames_as_a_camera_would(tmp_path):
    from pipeline.camera.replay import ReplayCapture

    capture = ReplayCapture(f"replay://{tiny_video(tmp_path / 'clip.avi', frames=10, fps=50.0)}")
    capture.read()
    time.sleep(0.2)  # the reader is held up for 10 frame periods
    ok, _, played = capture.read()
    capture.release()
    assert ok and capture.late >= 8 and played >= 0.18  # it skips what it missed instead of replaying late


def test_a_source_whose_reader_raises_fails_with_the_reason():
    from pipeline.camera.sources import SourceType

    def broken(url):
        raise OSError("disk gone")

    kind = {"boom": SourceType(check=lambda url: None, open=broken)}
    source = open_source("b", "boom://x", types=kind)
    assert list(source.frames()) == []
    assert source.state is SourceState.FAILED and "disk gone" in source.error
