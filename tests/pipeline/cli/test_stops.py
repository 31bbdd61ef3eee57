"""Stopping the long-running verbs with SIGINT and SIGTERM, as real processes: ``worker`` and ``run`` publish what
waits, mark their cameras ``stopped``, print their summary and exit 0; the matcher releases its lease to its
standby; ``api`` leaves no embedded redis-server behind; ``--max-seconds`` ends a worker whose camera is down;
a second signal exits 130 at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import cv2
import pytest
import yaml

from pipeline.bus import records
from pipeline.bus.publisher import camera_status
from pipeline.camera.sources import open_source
from pipeline.keys import Keys
from pipeline.site import SOURCE_TYPES
from pipeline.types import closing_time
from tests.support.cli import site_args
from tests.support.paths import REPO, VTEST, YOLO_OPENVINO
from tests.support.processes import Verb
from tests.support.redis_process import RedisProcess, free_port
from tests.support.redis_servers import run_servers, stop
from tests.support.waiting import wait_for

SCENE = "synth://?cameras=1&people=4&seconds=12&seed=1&camera=0&arrivals=0.2"
GUARD = 60.0  # seconds: a hang guard, never a speed test
TRACKLETS = ["--set", "tracklets.min_box_height=30", "--set", "tracklets.max_seconds=1"]  # some close soon


@pytest.fixture(scope="module")
def scene_video(tmp_path_factory):
    """A 12 s synthetic scene (people walking, 10 frames/s) as a video file, for ``replay://`` (live, looped)."""
    frames = list(open_source("scene", SCENE, types=SOURCE_TYPES).frames())
    path = tmp_path_factory.mktemp("scene") / "scene.avi"
    h, w = frames[0].image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture
def embedder_file(tiny_checkpoints):
    return tiny_checkpoints["tiny_attention"]


def _motion_worker(scene_video, embedder_file, *args: str) -> Verb:
    """``crosscam worker`` on camera ``door``: the scene replayed live, the motion detector, some tracklets closing
    soon, ``--json``; ``args`` say where Redis is and anything else."""
    return Verb(
        "worker",
        "--camera",
        "door",
        "--source",
        f"replay://{scene_video}",
        "--detector",
        "motion",
        "--embedder",
        str(embedder_file),
        *TRACKLETS,
        "--json",
        *args,
    )


def _published(client, keys) -> list:
    return [records.decode(f) for _, f in client.xrange(keys.tracklets)]


def _processing(client, keys, camera: str) -> bool:
    """Whether the camera's process has processed frames (its watermark is written once it has)."""
    return client.hget(keys.camera(camera), "watermark") is not None


def test_ctrl_c_on_a_worker_publishes_what_waits_marks_its_camera_stopped_and_exits_0(
    redis_client, bus_keys, embedder_file, scene_video
):
    worker = _motion_worker(scene_video, embedder_file, *site_args(redis_client, bus_keys))
    try:
        assert wait_for(lambda: redis_client.xlen(bus_keys.tracklets) >= 1, GUARD), worker.stderr
        worker.signal(signal.SIGINT)
        code, data = worker.answer()
    finally:
        worker.kill()
    assert code == 0 and data is not None, worker.stderr
    assert data["stopped_by"] == "SIGINT" and data["final_state"] == "stopped" and data["unpublished"] == 0
    published = _published(redis_client, bus_keys)
    assert data["published"] == data["tracklets"] == len(published) >= 1  # the tracklets open at the stop too
    assert camera_status(redis_client, bus_keys, "door")["state"] == "stopped"
    assert "stopped by SIGINT" in worker.stderr


@pytest.mark.slow  # three cameras in a process of their own
def test_sigterm_stops_every_camera_of_a_run(tmp_path, redis_client, bus_keys, embedder_file, scene_video):
    site = {
        "site": bus_keys.site,
        "redis": {"prefix": bus_keys.prefix},
        "embedder": {"path": str(embedder_file)},
        "detector": {"weights": "motion"},
        "tracklets": {"min_box_height": 30, "max_seconds": 1},
        "cameras": [
            {"id": "hall", "source": f"replay://{scene_video}"},
            {"id": "door", "source": f"replay://{scene_video}?start=6"},
            {"id": "dead", "source": f"rtsp://127.0.0.1:{free_port()}/nothing"},  # reconnecting when stopped
        ],
    }
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    run = Verb("run", str(tmp_path / "site.yaml"), *site_args(redis_client, bus_keys)[:2], "--json")
    try:
        assert wait_for(
            lambda: (
                _processing(redis_client, bus_keys, "hall")
                and _processing(redis_client, bus_keys, "door")
                and redis_client.xlen(bus_keys.tracklets) >= 1
            ),
            GUARD,
        ), run.stderr
        run.signal(signal.SIGTERM)
        code, data = run.answer()
    finally:
        run.kill()
    assert code == 0 and data is not None, run.stderr
    assert {c["camera"]: c["final_state"] for c in data["cameras"]} == dict.fromkeys(
        ("hall", "door", "dead"), "stopped"
    )
    assert data["published"] == sum(c["tracklets"] for c in data["cameras"]) == len(_published(redis_client, bus_keys))
    for camera in ("hall", "door", "dead"):
        assert camera_status(redis_client, bus_keys, camera)["state"] == "stopped"
    assert "stopped by SIGTERM" in run.stderr


def test_max_seconds_ends_a_worker_whose_camera_is_down(redis_client, bus_keys, embedder_file):
    worker = Verb(
        "worker",
        "--camera",
        "dead",
        "--source",
        f"rtsp://127.0.0.1:{free_port()}/nothing",  # refused: the worker waits to reconnect
        "--detector",
        "motion",
        "--embedder",
        str(embedder_file),
        *site_args(redis_client, bus_keys),
        "--set",
        "source.reconnect_initial=600",  # one wait far longer than --max-seconds
        "--max-seconds",
        "1",
        "--json",
    )
    try:
        code, data = worker.answer(timeout=GUARD)
    finally:
        worker.kill()
    assert code == 0 and data is not None, worker.stderr
    assert data["final_state"] == "stopped" and data["frames"] == 0 and data["stopped_by"] is None
    assert camera_status(redis_client, bus_keys, "dead")["state"] == "stopped"


def test_a_worker_stopped_while_redis_is_down_spools_what_waits_and_the_next_start_publishes_it(
    tmp_path, embedder_file, scene_video
):
    server = RedisProcess(tmp_path / "redis").start()

    def worker(*extra: str) -> Verb:
        return _motion_worker(
            scene_video,
            embedder_file,
            *("--redis-url", server.url, "--site", "outage", "--set", "redis.stop_wait=0.5"),
            *("--set", f"redis.spool={tmp_path / 'spool'}", *extra),
        )

    first = worker()
    try:
        assert wait_for(lambda: _processing(server.client(), Keys("outage"), "door"), GUARD), first.stderr
        server.stop()
        # a tracklet embedded while Redis is down waits in the backlog
        assert first.wait_for_line(r"Redis unreachable .*keeping up to"), first.stderr
        first.signal(signal.SIGTERM)
        code, data = first.answer()
        assert code == 0 and data is not None, first.stderr
        assert data["stopped_by"] == "SIGTERM" and data["spooled"] >= 1 and data["unpublished"] == 0
        assert data["published"] + data["spooled"] == data["tracklets"]
        assert f"{data['spooled']} tracklets spooled to disk" in first.stderr
        server.start()
        stream = Keys("outage").tracklets
        before = {records.decode(f).tracklet_id for _, f in server.client().xrange(stream)}
        second = worker("--max-seconds", "0")  # publishes the spool before its camera starts
        code2, again = second.answer()
        after = [records.decode(f) for _, f in server.client().xrange(stream)]
    finally:
        first.kill()
        server.stop()
    assert code2 == 0 and again is not None and again["from_spool"] == data["spooled"], second.stderr
    spooled = [t for t in after if t.tracklet_id not in before]
    assert len(spooled) == data["spooled"] and all(t.camera_id == "door" for t in spooled)
    assert [closing_time(t) for t in spooled] == sorted(closing_time(t) for t in spooled)  # in the order they closed
    assert not list((tmp_path / "spool" / "outage").glob("*.spool"))


@pytest.mark.slow  # three matcher processes
def test_a_signalled_matcher_hands_its_lease_to_a_standby_and_a_standby_stops_at_once(redis_client, bus_keys):
    holder = lambda: (redis_client.get(bus_keys.lease) or b"").decode()  # noqa: E731
    options = [*site_args(redis_client, bus_keys), "--set", "matcher.lease=60", "-v", "--json"]
    active = Verb("matcher", "--consumer", "active", *options)
    standbys = []
    try:
        assert wait_for(lambda: holder().startswith("active/"), GUARD), active.stderr
        standbys = [Verb("matcher", "--consumer", name, *options) for name in ("next", "spare")]
        for standby in standbys:
            assert standby.wait_for_line("standing by"), standby.stderr
        following, spare = standbys

        spare.signal(signal.SIGTERM)  # a standby asked to stop leaves at once, the lease untouched
        code, data = spare.answer()
        assert code == 0 and data is not None and data["stopped_by"] == "SIGTERM", spare.stderr
        assert holder().startswith("active/")

        active.signal(signal.SIGTERM)
        code, data = active.answer()
        assert code == 0 and data is not None and data["stopped_by"] == "SIGTERM", active.stderr
        # released on its way out: else the key would hold the active's token for up to 60 s more
        assert not holder().startswith("active/")
        assert wait_for(lambda: holder().startswith("next/"), GUARD), following.stderr

        following.signal(signal.SIGINT)
        code, data = following.answer()
        assert code == 0 and data is not None and data["stopped_by"] == "SIGINT", following.stderr
        assert not holder()
    finally:
        for verb in (active, *standbys):
            verb.kill()


def test_sigterm_stops_the_api_and_its_embedded_redis_server(tmp_path):
    data_dir = tmp_path / "embedded"
    api = Verb(
        "api",
        "--port",
        str(free_port()),
        "--set",
        f"redis.embedded_db={data_dir / 'crosscam.db'}",
        "--json",
        env={"CROSSCAM_API_KEY": "k"},
    )
    servers = []
    try:
        assert api.wait_for_line("Uvicorn running"), api.stderr
        servers = run_servers(data_dir, api.pid)
        assert len(servers) == 1, servers  # the embedded server it started
        api.signal(signal.SIGTERM)
        code, data = api.answer()
    finally:
        api.kill()
        left = [s.pid for s in run_servers(data_dir, api.pid)]
        stop(left)  # never leave one running, even when the test fails
    assert code == 0 and data is not None and data["stopped_by"] == "SIGTERM", api.stderr
    assert servers[0].pid not in left, f"the embedded redis-server (pid {servers[0].pid}) outlived the API"


SECOND = """
    import time
    from pipeline.cli.stopping import stop_signals

    with stop_signals() as stop:
        print("ready", flush=True)
        stop.wait(60)
        print("stopping", flush=True)
        time.sleep(60)  # a stop that takes long: the second signal must not wait for it
"""


def test_a_second_signal_exits_130_at_once(tmp_path):
    script = tmp_path / "second.py"
    script.write_text(textwrap.dedent(SECOND))
    proc = subprocess.Popen(
        [sys.executable, str(script)], env={"PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "stopping"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=GUARD) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow  # loads the OpenVINO detector in a process of its own
@pytest.mark.skipif(not (YOLO_OPENVINO.is_dir() and VTEST.is_file()), reason="the shared data is absent")
def test_ctrl_c_on_a_worker_with_the_openvino_detector_exits_0(redis_client, bus_keys, embedder_file):
    worker = Verb(
        "worker",
        "--camera",
        "street",
        "--source",
        f"replay://{VTEST}",
        "--detector",
        str(YOLO_OPENVINO),
        "--embedder",
        str(embedder_file),
        *site_args(redis_client, bus_keys),
        "--json",
    )
    try:
        assert wait_for(lambda: _processing(redis_client, bus_keys, "street"), GUARD), worker.stderr
        worker.signal(signal.SIGINT)
        code, data = worker.answer()
    finally:
        worker.kill()
    assert code == 0 and data is not None, worker.stderr  # not 134: no native thread left running at exit
    assert "terminate called" not in worker.stderr
    assert data["stopped_by"] == "SIGINT" and data["published"] == data["tracklets"]
    assert camera_status(redis_client, bus_keys, "street")["state"] == "stopped"


def test_ctrl_c_on_the_demo_reports_what_ran(tmp_path, embedder_file):
    out = tmp_path / "demo"
    demo = Verb(
        "demo",
        "--embedder",
        str(embedder_file),
        "--people",
        "4",
        "--out",
        str(out),
        "--json",
        "-v",
        env={"CROSSCAM_CACHE_DIR": str(tmp_path / "cache")},
    )
    try:
        assert demo.wait_for_line("gallery of"), demo.stderr  # the matcher has started: the site runs
        demo.signal(signal.SIGINT)
        code, data = demo.answer()
    finally:
        demo.kill()
    assert code == 0 and data is not None, demo.stderr
    assert data["stopped_by"] == "SIGINT" and (out / "report.html").is_file()
    assert "the figures are of what ran" in demo.stderr
