"""``crosscam worker`` (one camera) and ``crosscam run SITE.yaml`` (every camera of a site in one process,
a thread per camera, one batched embedder): from streams to tracklet embeddings on Redis.

The model is ``--embedder``, else ``embedder.path``, else the bundled real model
(``models.zoo.default_embedder``). The worker announces it to the site's matcher before it publishes
(``pipeline.site_models.announce_model``), so the matcher links at the model's own calibrated threshold."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("worker", parents=[common], help="run one camera: detect, track, embed, publish to Redis")
    p.add_argument("--camera", required=True, help="camera id (unique within the site)")
    p.add_argument(
        "--source", required=True, help="rtsp://..., http(s)://..., a video file, a webcam index, synth://..."
    )
    p.add_argument(
        "--detector", help="YOLO weights (.pt/.onnx/OpenVINO/.engine) or 'motion' (default: detector.weights)"
    )
    _shared(p)
    p.set_defaults(handler=cmd_worker)

    r = verbs.add_parser("run", parents=[common], help="run every camera of a site config in one process")
    r.add_argument("site_config", type=Path, help="site YAML: site, cameras, detector, embedder, redis, ...")
    _shared(r)
    r.set_defaults(handler=cmd_run, set_applies_to="site")


def _shared(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--embedder",
        help="re-ID model: checkpoint, ONNX, OpenVINO IR or engine (default: embedder.path, else the bundled real model)",
    )
    p.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else redis.url, else an embedded server")
    p.add_argument("--site", help="site name (default: site)")
    p.add_argument("--max-seconds", type=float, help="stop after this long (default: until the sources end)")


def redis_url(args: argparse.Namespace, config: CrosscamConfig) -> str | None:
    return getattr(args, "redis_url", None) or os.environ.get("CROSSCAM_REDIS_URL") or config.redis.url


def embedded_db(config: CrosscamConfig) -> Path:
    from models.export import default_cache_dir

    return config.redis.embedded_db or Path(config.cache_dir or default_cache_dir()) / "redis" / "crosscam.db"


class _Site:
    """What the cameras of one process share: Redis, the publisher, the embedder and its service."""

    def __init__(self, args: argparse.Namespace, config: CrosscamConfig) -> None:
        from models.embedder import load_embedder
        from models.zoo import default_embedder
        from pipeline.bus import Keys, Publisher, connect
        from pipeline.embedding import EmbeddingService
        from pipeline.site_models import announce_model

        path = args.embedder or config.embedder.path or default_embedder()
        self.config, self.site = config, args.site or config.site
        client = connect(redis_url(args, config), embedded_db(config))
        keys = Keys(self.site, config.redis.prefix)
        self.publisher = Publisher(client, keys, maxlen=config.redis.maxlen)
        e = config.embedder
        self.embedder = load_embedder(
            path,
            backend=e.backend,
            device=e.device,
            fp16=e.fp16,
            threads=e.threads,
            cache_dir=config.cache_dir,
            max_batch=e.max_batch,
        )
        announce_model(client, keys, self.embedder.spec)  # before any record: the matcher learns its threshold
        self.service = EmbeddingService(
            self.embedder, self.site, self.publisher.publish, max_batch=e.max_batch, max_wait=e.max_wait
        )

    def worker(self, camera_id: str, source_url: str, detector: str | None):
        """A camera's worker; a bad URL or bad weights raise here, before any thread starts."""
        from pipeline.sources import Reconnect, open_source
        from pipeline.tracking import DetectorOptions, make_tracker
        from pipeline.tracklets import TrackletBuffer, TrackletPolicy
        from pipeline.worker import CameraWorker

        c, spec = self.config, self.embedder.spec.input
        d, t, s = c.detector, c.tracklets, c.source
        # the config sections carry exactly the options' fields, so they map across by name
        tracker = make_tracker(camera_id, DetectorOptions(**(d.model_dump() | {"weights": detector or d.weights})))
        policy = TrackletPolicy(frames=spec.frames, crop_height=spec.height, crop_width=spec.width, **t.model_dump())
        source = open_source(
            camera_id,
            source_url,
            transport=s.transport,
            capacity=s.buffer,
            reconnect=Reconnect(
                initial=s.reconnect_initial, max_delay=s.reconnect_max, max_attempts=s.reconnect_attempts
            ),
            on_state=lambda state, error: self.publisher.camera_status(camera_id, state.value, error),
        )
        return CameraWorker(source, tracker, TrackletBuffer(camera_id, policy), self.service, self.publisher)

    def report(self, report) -> dict:
        return {
            "camera": report.camera_id,
            "frames": report.frames,
            "fps": report.fps,
            "boxes": report.boxes,
            "tracklets": report.tracklets,
            "final_state": report.final_state,
            "counts": report.counts,
        }


def cmd_worker(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    site = _Site(args, config)
    worker = site.worker(args.camera, args.source, args.detector)
    site.service.start()
    report = worker.run(args.max_seconds)
    site.service.stop()
    data = site.report(report) | {
        "site": site.site,
        "published": site.service.counts["published"],
        "dropped_tracklets": site.service.counts["dropped"],
        "stream": site.publisher.keys.tracklets,
    }
    text = (
        f"{args.camera}: {report.frames} frames at {report.fps:.1f} fps, {report.tracklets} tracklets, "
        f"{site.service.counts['published']} published to {site.publisher.keys.tracklets}; "
        f"source {report.final_state}"
    )
    return Result(data, text)


def cmd_run(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline.config import load_config

    config = load_config(args.site_config, args.overrides)
    if not config.cameras:
        raise UsageError(f"{args.site_config}: no cameras; list them under `cameras:` (id, source, detector)")
    site = _Site(args, config)
    workers = [site.worker(c.id, c.source, c.detector) for c in config.cameras]
    site.service.start()
    reports: dict[str, object] = {}
    threads = [
        threading.Thread(
            target=lambda w=w: reports.__setitem__(w.camera_id, w.run(args.max_seconds)),
            name=f"worker-{w.camera_id}",
            daemon=True,
        )
        for w in workers
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    site.service.stop()
    cameras = [site.report(reports[w.camera_id]) for w in workers]
    data = {
        "site": site.site,
        "cameras": cameras,
        "published": site.service.counts["published"],
        "dropped_tracklets": site.service.counts["dropped"],
        "stream": site.publisher.keys.tracklets,
    }
    lines = [
        f"site {site.site}: {site.service.counts['published']} tracklets published to {site.publisher.keys.tracklets}"
    ]
    lines += [
        f"  {c['camera']:<12} {c['frames']:>6} frames {c['fps']:>6.1f} fps {c['tracklets']:>5} tracklets  "
        f"source {c['final_state']}"
        for c in cameras
    ]
    return Result(data, "\n".join(lines))
