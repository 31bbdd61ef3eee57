"""``crosscam run SITE.yaml``: every camera of a site in one process; a dead camera never stops the others."""

from __future__ import annotations

import yaml

from pipeline.bus import records
from pipeline.bus.publisher import camera_status
from pipeline.cli.worker import EXIT_SOURCE_FAILED
from tests.support.cli import redis_url, run_json

SCENE = "synth://?cameras=3&people=6&seconds=12&seed=3"


def test_site_with_a_dead_camera(capsys, tmp_path, redis_client, bus_keys):
    from models.architectures import arch_spec
    from models.checkpoint import build_model, save_checkpoint

    arch, input_spec = arch_spec("tiny_avg")
    save_checkpoint(build_model(arch, input_spec), tmp_path / "m.pt")
    site = {
        "site": bus_keys.site,
        "redis": {"prefix": bus_keys.prefix},
        "embedder": {"path": str(tmp_path / "m.pt")},
        "detector": {"weights": "motion"},
        "source": {"reconnect_initial": 0.05, "reconnect_attempts": 2},
        "tracklets": {"max_seconds": 3.0, "min_box_height": 30},
        "cameras": [
            {"id": "hall", "source": f"{SCENE}&camera=0"},
            {"id": "dead", "source": "rtsp://127.0.0.1:9/nothing"},
            {"id": "door", "source": f"{SCENE}&camera=1"},
        ],
    }
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    code, data, err = run_json(capsys, "run", str(tmp_path / "site.yaml"), "--redis-url", redis_url(redis_client))
    assert code == EXIT_SOURCE_FAILED, err  # the others ran to their end; the exit code says one camera failed
    states = {c["camera"]: c["final_state"] for c in data["cameras"]}
    assert states == {"hall": "ended", "dead": "failed", "door": "ended"}
    published = [records.decode(f) for _, f in redis_client.xrange(bus_keys.tracklets)]
    assert {t.camera_id for t in published} == {"hall", "door"} and data["published"] == len(published)
    assert camera_status(redis_client, bus_keys, "dead")["state"] == "failed"


def test_site_file_errors_name_the_key(capsys, tmp_path):
    (tmp_path / "site.yaml").write_text("cameras:\n  - id: a\n    sorce: x.mp4\n")
    code, data, _ = run_json(capsys, "run", str(tmp_path / "site.yaml"))
    assert code == 2 and "cameras.0.sorce: unknown key" in data["error"]
    (tmp_path / "dup.yaml").write_text("cameras:\n  - {id: a, source: x.mp4}\n  - {id: a, source: y.mp4}\n")
    code, data, _ = run_json(capsys, "run", str(tmp_path / "dup.yaml"))
    assert code == 2 and "repeated: ['a']" in data["error"]


def test_the_embedder_batch_defaults_to_eight_on_the_cpu_and_follows_the_config(redis_client):
    from pipeline.config import CrosscamConfig
    from pipeline.site import CPU_BATCH, Site, open_embedder

    default = open_embedder(CrosscamConfig())  # the bundled model, on the CPU here
    assert default.device == "cpu" and default.max_batch == CPU_BATCH == 8
    config = CrosscamConfig().model_copy(
        update={"embedder": CrosscamConfig().embedder.model_copy(update={"max_batch": 3})}
    )
    chosen = open_embedder(config)
    assert chosen.max_batch == 3
    assert Site(config, redis_client, "batch").cameras(chosen).service.max_batch == 3
    assert Site(CrosscamConfig(), redis_client, "batch-default").cameras(default).service.max_batch == CPU_BATCH
