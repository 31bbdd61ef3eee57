"""Camera workers end to end: a real RTSP server, the real YOLO detector, a real embedder, a real Redis."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from pipeline.bus import records
from pipeline.bus.publisher import camera_status
from pipeline.cli import main
from pipeline.keys import Keys
from tests.support.cli import redis_url
from tests.support.paths import VTEST, YOLO_ONNX, needs_video
from tests.support.waiting import wait_for


@pytest.fixture
def embedder_file(tiny_checkpoints):
    """A saved tiny re-ID model (the checkpoint the whole test run shares)."""
    return tiny_checkpoints["tiny_attention"]


def read_tracklets(client, keys: Keys) -> list:
    return [records.decode(fields) for _, fields in client.xrange(keys.tracklets)]


@needs_video
@pytest.mark.slow
def test_worker_publishes_tracklets_from_rtsp(rtsp_server, embedder_file, redis_client, bus_keys, capsys):
    """Acceptance: RTSP (H.264 over TCP) -> YOLOv8n INT8 ONNX + ByteTrack -> tiny_attention -> Redis stream."""
    code = main(
        [
            "worker",
            "--camera",
            "pets",
            "--source",
            rtsp_server.url,
            "--detector",
            str(YOLO_ONNX),
            "--embedder",
            str(embedder_file),
            "--redis-url",
            redis_url(redis_client),
            "--site",
            bus_keys.site,
            "--max-seconds",
            "35",
            "--set",
            f"redis.prefix={bus_keys.prefix}",
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    tracklets = read_tracklets(redis_client, bus_keys)
    assert len({t.track_id for t in tracklets}) >= 5
    for t in tracklets:
        assert t.camera_id == "pets" and t.feature.shape == (256,) and t.attention.shape == (4,)
        assert abs(np.linalg.norm(t.feature) - 1) < 1e-2 and abs(t.attention.sum() - 1) < 1e-2
        image = cv2.imdecode(np.frombuffer(t.thumbnail, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (128, 64, 3)
        assert t.t_end >= t.t_start
    status = camera_status(redis_client, bus_keys, "pets")
    assert float(status["frames"]) > 50


@needs_video
@pytest.mark.slow
def test_worker_survives_a_server_restart(rtsp_server, embedder_file, redis_client, bus_keys):
    """Acceptance: stop the RTSP server mid-stream and start it again: the worker reports reconnecting,
    then streaming, and publishes again; no crash, no hang. Stopped for good, the server is retried
    ``source.reconnect_attempts`` times, then the source fails and the worker ends (exit 3)."""
    argv = [
        "worker",
        "--camera",
        "door",
        "--source",
        rtsp_server.url,
        "--detector",
        "motion",
        "--embedder",
        str(embedder_file),
        "--redis-url",
        redis_url(redis_client),
        "--site",
        bus_keys.site,
        "--max-seconds",
        "60",
        "--set",
        f"redis.prefix={bus_keys.prefix}",
        "--set",
        "source.reconnect_initial=0.2",
        "--set",
        "source.reconnect_max=1.0",
        "--set",
        "tracklets.max_seconds=2.0",
        "--set",
        "source.reconnect_attempts=15",  # about 13 s of retries, then the source gives up
    ]
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(argv)), daemon=True)
    thread.start()

    def state() -> str:
        return camera_status(redis_client, bus_keys, "door").get("state", "")

    assert wait_for(lambda: state() == "streaming" and redis_client.xlen(bus_keys.tracklets) > 0, 40)
    rtsp_server.stop()
    assert wait_for(lambda: state() == "reconnecting", 30)
    published = redis_client.xlen(bus_keys.tracklets)
    rtsp_server.start()
    assert wait_for(lambda: state() == "streaming", 30)
    assert wait_for(lambda: redis_client.xlen(bus_keys.tracklets) > published, 40)  # publishing again
    rtsp_server.stop()  # for good: the source gives up, and the worker ends before its --max-seconds
    thread.join(90)
    assert not thread.is_alive() and result["code"] == 3
    assert state() == "failed"


@needs_video
def test_bench_pipeline_reports_both_rates_and_memory(capsys, embedder_file):
    from tests.support.cli import run_json

    code, data, err = run_json(
        capsys,
        "bench",
        "pipeline",
        "--source",
        str(VTEST),
        "--detector",
        str(YOLO_ONNX),
        "--embedder",
        str(embedder_file),
        "--frames",
        "15",
        "--memory-minutes",
        "0.2",
    )
    assert code == 0, err
    assert data["frames"] == 15 and data["bare_track_fps"] > 0 and data["worker_fps"] > 0
    assert data["ratio"] == pytest.approx(data["worker_fps"] / data["bare_track_fps"])
    assert data["stages_ratio"] == pytest.approx(data["stages_fps"] / data["bare_track_fps"])
    assert 0 < data["memory"]["rss_mb_at_0.2min"] <= data["memory"]["peak_mb_at_0.2min"]
