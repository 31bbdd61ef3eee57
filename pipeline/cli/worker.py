"""``crosscam worker``: one camera, from its stream to tracklet embeddings on Redis."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("worker", parents=[common], help="run one camera: detect, track, embed, publish to Redis")
    p.add_argument("--camera", required=True, help="camera id (unique within the site)")
    p.add_argument("--source", required=True, help="rtsp://..., http(s)://..., a video file, or a webcam index")
    p.add_argument(
        "--detector", help="YOLO weights (.pt/.onnx/OpenVINO/.engine) or 'motion' (default: detector.weights)"
    )
    p.add_argument("--embedder", help="re-ID model: checkpoint, ONNX or engine (default: embedder.path)")
    p.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else redis.url, else an embedded server")
    p.add_argument("--site", help="site name (default: site)")
    p.add_argument("--max-seconds", type=float, help="stop after this long (default: until the source ends)")
    p.set_defaults(handler=cmd_worker)


def redis_url(args: argparse.Namespace, config: CrosscamConfig) -> str | None:
    return getattr(args, "redis_url", None) or os.environ.get("CROSSCAM_REDIS_URL") or config.redis.url


def embedded_db(config: CrosscamConfig) -> Path:
    from models.export import default_cache_dir

    return config.redis.embedded_db or Path(config.cache_dir or default_cache_dir()) / "redis" / "crosscam.db"


def cmd_worker(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.embedder import load_embedder
    from pipeline.bus import Keys, Publisher, connect
    from pipeline.embedding import EmbeddingService
    from pipeline.sources import Reconnect, open_source
    from pipeline.tracking import DetectorOptions, make_tracker
    from pipeline.tracklets import TrackletBuffer, TrackletPolicy
    from pipeline.worker import CameraWorker

    embedder_path = args.embedder or config.embedder.path
    if not embedder_path:
        raise UsageError(
            "no re-ID model: pass --embedder PATH (checkpoint, ONNX or engine) or set embedder.path; "
            "`crosscam model init --arch tiny_attention --out m.pt` makes an untrained one to try things"
        )
    site = args.site or config.site
    client = connect(redis_url(args, config), embedded_db(config))
    publisher = Publisher(client, Keys(site, config.redis.prefix), maxlen=config.redis.maxlen)
    e = config.embedder
    embedder = load_embedder(
        embedder_path,
        backend=e.backend,
        device=e.device,
        fp16=e.fp16,
        threads=e.threads,
        cache_dir=config.cache_dir,
        max_batch=e.max_batch,
    )
    d = config.detector
    tracker = make_tracker(
        args.camera,
        DetectorOptions(
            weights=args.detector or d.weights,
            conf=d.conf,
            iou=d.iou,
            imgsz=d.imgsz,
            device=d.device,
            half=d.half,
            every=d.every,
            tracker=d.tracker,
        ),
    )
    t = config.tracklets
    policy = TrackletPolicy(
        frames=embedder.spec.input.frames,
        crop_height=embedder.spec.input.height,
        crop_width=embedder.spec.input.width,
        max_length=t.max_length,
        max_seconds=t.max_seconds,
        lost_after=t.lost_after,
        min_crops=t.min_crops,
        min_box_height=t.min_box_height,
        min_sharpness=t.min_sharpness,
    )
    s = config.source
    source = open_source(
        args.camera,
        args.source,
        transport=s.transport,
        capacity=s.buffer,
        reconnect=Reconnect(initial=s.reconnect_initial, max_delay=s.reconnect_max, max_attempts=s.reconnect_attempts),
        on_state=lambda state, error: publisher.camera_status(args.camera, state.value, error),
    )
    service = EmbeddingService(embedder, site, publisher.publish, max_batch=e.max_batch, max_wait=e.max_wait).start()
    report = CameraWorker(source, tracker, TrackletBuffer(args.camera, policy), service, publisher).run(
        args.max_seconds
    )
    service.stop()
    data = {
        "camera": args.camera,
        "site": site,
        "frames": report.frames,
        "fps": report.fps,
        "boxes": report.boxes,
        "tracklets": report.tracklets,
        "published": service.counts["published"],
        "dropped_tracklets": service.counts["dropped"],
        "final_state": report.final_state,
        "counts": report.counts,
        "stream": publisher.keys.tracklets,
    }
    text = (
        f"{args.camera}: {report.frames} frames at {report.fps:.1f} fps, {report.tracklets} tracklets, "
        f"{service.counts['published']} published to {publisher.keys.tracklets}; source {report.final_state}"
    )
    return Result(data, text)
