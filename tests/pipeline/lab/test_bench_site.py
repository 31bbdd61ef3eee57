"""The site benchmark (``crosscam bench site``): its figures, and a short real run of two cameras."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipeline.config import load_config
from pipeline.lab.bench_site import (
    MAX_P99_S,
    MIN_OFFERED,
    MIN_PROCESSED,
    SiteBenchError,
    SiteBenchOptions,
    camera_row,
    percentiles,
    run_site_bench,
    start_redis,
    verdict,
)
from tests.support.cli import run_json
from tests.support.paths import REPO, SHARED_DATA, VTEST, needs_video

YOLO_OPENVINO = SHARED_DATA / "weights" / "yolov8n_int8_openvino_model"


def test_frames_waiting_at_the_start_count_as_offered_in_the_window():
    # at the start: 40 offered, 3 dropped, 5 waiting, so 32 taken (the one being worked on included)
    start = {"offered": 40, "processed": 31, "dropped": 3, "waiting": 5}
    end = {"offered": 91, "processed": 85, "dropped": 4, "waiting": 2}
    row = camera_row("cam0", start, end, tracklets=3)
    assert row["offered"] == 56 and row["processed"] == 53 and row["dropped"] == 1 and row["waiting_at_end"] == 2
    assert row["processed"] + row["dropped"] + row["waiting_at_end"] == row["offered"]
    assert row["processed_fraction"] == pytest.approx(53 / 56, abs=1e-4)


def test_real_time_needs_every_camera_processed_and_a_p99_under_the_limit():
    fast = {"camera": "cam0", "processed_fraction": 1.0}
    slow = {"camera": "cam1", "processed_fraction": MIN_PROCESSED - 0.01}
    quick, late = percentiles([0.1, 0.2, 0.3]), percentiles([0.1] * 50 + [MAX_P99_S + 1] * 2)
    assert verdict([fast], quick, 0) == (True, [])
    held, why = verdict([fast, slow], late, 1)
    assert not held and len(why) == 3 and "cam1" in why[0] and "p99" in why[1] and "1 tracklets" in why[2]
    assert verdict([fast], percentiles([]), 0)[0] is False  # nothing timed: not shown to hold


def test_a_camera_offered_fewer_frames_than_expected_does_not_hold():
    # the source starved: 40 of 50 frames offered, every one processed; the fraction alone looks fine
    starved = {"camera": "cam0", "expected": 50, "offered": 40, "processed_fraction": 1.0}
    held, why = verdict([starved], percentiles([0.1, 0.2]), 0)
    assert not held and len(why) == 1 and "cam0" in why[0] and "40 of the 50 frames expected" in why[0]
    enough = starved | {"offered": math.ceil(MIN_OFFERED * 50)}
    assert verdict([enough], percentiles([0.1, 0.2]), 0) == (True, [])


def test_a_camera_offered_no_frames_is_named_not_a_crash():
    silent = {"camera": "cam1", "expected": 50, "offered": 0, "processed_fraction": None}
    held, why = verdict([silent], percentiles([0.1]), 0)
    assert not held and "cam1: no frames offered" in why
    held, why = verdict([{"camera": "cam2", "offered": 0, "processed_fraction": None}], percentiles([0.1]), 0)
    assert not held and why == ["cam2: no frames offered"]


def test_only_tracklets_closed_in_the_window_count_not_those_flushed_as_a_camera_stops():
    from pipeline.lab.bench_site import Closed, in_window

    closed = {
        "cam0:1:0": Closed(99.9, 99.0, "cam0"),  # before the window
        "cam0:2:0": Closed(100.0, 99.5, "cam0"),  # at its start
        "cam0:3:0": Closed(110.0, 109.0, "cam0"),  # at its end
        "cam0:4:0": Closed(110.1, 110.0, "cam0"),  # after it (the cameras run on past the end)
        "cam1:5:0": Closed(105.0, 104.9, "cam1", flushed=True),  # cam1 stopped early: its open tracks flushed
    }
    assert sorted(in_window(closed, 100.0, 110.0)) == ["cam0:2:0", "cam0:3:0"]


def _clip(path, fps: float, frames: int = 20):
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 24))
    for _ in range(frames):
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    return path


def test_fps_above_the_videos_own_rate_is_a_usage_error(capsys, tmp_path):
    clip = _clip(tmp_path / "ten.avi", 10.0)
    code, data, _ = run_json(capsys, "bench", "site", "--video", str(clip), "--fps", "12")
    assert code == 2 and "--fps 12" in data["error"] and "10 frames/s" in data["error"] and "ten.avi" in data["error"]


def test_a_redis_server_that_fails_to_start_is_named_with_its_output(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(
            SiteBenchError, match=r"(?s)redis-server exited with .*redis\.log.*[Aa]ddress already in use"
        ):
            start_redis(tmp_path, port=taken.getsockname()[1])


@needs_video
def test_sigterm_during_the_warm_up_leaves_no_redis_server_or_matcher_behind(tmp_path, tiny_checkpoints):
    """``crosscam bench site`` sent SIGTERM while its cameras warm up removes its redis-server and matcher."""
    import psutil
    import redis

    argv = [sys.executable, "-m", "pipeline", "bench", "site", "--cameras", "1", "--warmup", "120", "--seconds", "5",
            "--video", str(VTEST), "--detector", "motion", "--embedder", str(tiny_checkpoints["tiny_attention"]),
            "--json"]  # fmt: skip
    temp = tmp_path / "tmp"  # where the benchmark makes its work folder
    temp.mkdir()
    path = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = os.environ | {"PYTHONPATH": path, "TMPDIR": str(temp)}
    log = tmp_path / "out.log"
    with log.open("wb") as out:
        bench = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        children, streaming = [], False
        deadline = time.monotonic() + 120
        while not streaming and bench.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            children = psutil.Process(bench.pid).children(recursive=True)
            commands = {c.pid: " ".join(c.cmdline()) for c in children if c.is_running()}
            servers = [c for c in children if "redis-server" in commands.get(c.pid, "")]
            if not servers or not any("pipeline matcher" in line for line in commands.values()):
                continue
            ports = [c.laddr.port for c in servers[0].net_connections("tcp") if c.status == psutil.CONN_LISTEN]
            if not ports:
                continue
            client = redis.Redis(port=ports[0], socket_connect_timeout=1)
            with contextlib.suppress(redis.RedisError):  # a camera streaming: the warm-up has begun
                streaming = any(client.hget(k, "state") == b"streaming" for k in client.scan_iter(match="*:camera:*"))
            client.close()
        assert streaming, log.read_text()
        assert len(children) == 2  # the redis-server and the matcher
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(60) == 130, log.read_text()
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [], f"left running: {[c.cmdline() for c in alive]}"
        assert list(temp.iterdir()) == []  # the work folder removed
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(10)


def test_a_missing_or_unreadable_video_is_a_usage_error(capsys, tmp_path):
    code, data, _ = run_json(capsys, "bench", "site", "--video", str(tmp_path / "none.avi"))
    assert code == 2 and "none.avi" in data["error"]
    text = tmp_path / "notes.avi"
    text.write_text("not a video")
    code, data, _ = run_json(capsys, "bench", "site", "--video", str(text))
    assert code == 2 and "notes.avi" in data["error"] and "decode" in data["error"]
    code, data, _ = run_json(capsys, "bench", "site", "--cameras", "2,x")
    assert code == 2 and "--cameras" in data["error"]


@pytest.mark.slow
@needs_video
def test_two_cameras_through_a_real_site(capsys, tmp_path, tiny_checkpoints):
    """Two cameras replaying vtest.avi at 5 frames/s through a redis-server, a matcher process and this process
    as the camera process: every tracklet closed in the window is timed to queryable, and the verdict follows
    from the figures."""
    detector = str(YOLO_OPENVINO) if YOLO_OPENVINO.is_dir() else "motion"
    seconds = "6" if YOLO_OPENVINO.is_dir() else "12"  # the motion detector closes fewer tracklets
    plot = tmp_path / "site.png"
    code, r, _ = run_json(
        capsys, "bench", "site", "--cameras", "2", "--seconds", seconds, "--warmup", "3", "--fps", "5",
        "--video", str(VTEST), "--detector", detector, "--embedder", str(tiny_checkpoints["tiny_attention"]),
        "--plot", str(plot),
    )  # fmt: skip
    assert code == 0, r
    assert r["benchmark"] == "site" and r["detector"] == detector and r["fps"] == 5
    (n,) = r["results"]
    assert n["cameras"] == 2 and [c["camera"] for c in n["per_camera"]] == ["cam0", "cam1"]
    for c in n["per_camera"]:
        assert c["offered"] >= c["processed"] > 0 and c["offered"] >= c["processed"] + c["dropped"]
        assert c["processed_fraction"] == pytest.approx(c["processed"] / c["offered"], abs=1e-4)
        assert c["run_counts"]["source_frames"] >= c["offered"]  # the whole run, warm-up included
        assert abs(c["expected"] - 5 * n["seconds"]) <= 1  # 5 frames/s (the video plays 10) over the window
    assert n["tracklets"] == sum(c["tracklets"] for c in n["per_camera"]) > 0
    assert n["lost"] == 0 and n["queryable"] == n["tracklets"]  # every tracklet got a latency
    assert n["margin_s"] > 0  # the cameras ran past the window: their stop's flush is not in it
    assert sum(c["run_counts"]["tracklets"] for c in n["per_camera"]) >= n["tracklets"] + n["flushed"]
    close = n["latency_close_to_queryable"]
    assert close["n"] == n["tracklets"] and math.isfinite(close["p99_s"]) and 0 <= close["p50_s"] <= close["p99_s"]
    assert n["latency_last_frame_to_queryable"]["p50_s"] >= close["p50_s"]  # the last frame comes before closing
    expected = (
        min(c["processed_fraction"] for c in n["per_camera"]) >= MIN_PROCESSED
        and all(c["offered"] >= MIN_OFFERED * c["expected"] for c in n["per_camera"])
        and close["p99_s"] < MAX_P99_S
    )
    assert isinstance(n["holds"], bool) and n["holds"] == expected
    assert r["max_cameras_real_time"] == (2 if n["holds"] else 0)
    usage = n["usage"]
    assert usage["camera_process"]["cpu"] > 0 and usage["camera_process"]["rss_start_mb"] > 0
    assert usage["matcher"]["rss_end_mb"] > 0 and usage["redis"]["rss_end_mb"] > 0
    assert all(u["memory_flat"] is None for u in usage.values())  # a window this short is not judged
    rss = usage["camera_process"]["rss_mb"]
    assert rss[0][1] == usage["camera_process"]["rss_start_mb"] and all(mb > 0 for _, mb in rss)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and r["plot"] == str(plot)


def test_a_matcher_that_does_not_start_is_named_with_its_output(tmp_path):
    options = SiteBenchOptions(cameras=(1,), videos=(tmp_path / "unused.avi",), matcher_args=("--set", "no-value"))
    with pytest.raises(SiteBenchError, match=r"the matcher exited with 2:\n.*no-value"):
        run_site_bench(load_config(None, []), options, embedder=None)


def test_cameras_sharing_a_video_start_at_even_offsets_unless_together(tmp_path):
    import cv2
    import numpy as np

    from pipeline.lab.bench_site import replay_url

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for _ in range(40):  # 4 s
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    starts = [replay_url((video,), c, 4, together=False).rpartition("start=")[2] for c in range(4)]
    assert starts == ["0.00", "1.00", "2.00", "3.00"]
    assert {replay_url((video,), c, 4, together=True) for c in range(4)} == {f"replay://{video}?start=0.00"}
