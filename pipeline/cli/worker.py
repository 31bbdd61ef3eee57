"""``crosscam worker`` (one camera) and ``crosscam run SITE.yaml`` (every camera of a site in one process,
a thread per camera, one batched embedder): from streams to tracklet embeddings on Redis.

The model is ``--embedder``, else ``embedder.path``, else the bundled real model
(``models.zoo.default_embedder``). The worker announces it to the site's matcher before it publishes
(``pipeline.bus.site_models.announce_model``), so the matcher links at the model's own calibrated threshold.

Both exit with code 3 (``EXIT_SOURCE_FAILED``) when a camera's source failed (it could not be opened, or it
gave up reconnecting), after publishing what the other cameras made.

SIGINT or SIGTERM stops them cleanly (``pipeline.cli.stopping``): the cameras stop reading (also while
reconnecting), their open tracklets are closed and published, their status says ``stopped``, and the summary is
printed (``stopped_by`` names the signal; ``spooled`` counts the tracklets Redis could not take in time, kept on
disk and published by the next start, ``from_spool`` those this start published); exit code 0. A second signal exits 130 at once."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.stopping import StopRequest, stop_signals
from pipeline.config import CrosscamConfig
from pipeline.ids import CAMERA_ID_RULE, is_camera_id

EXIT_SOURCE_FAILED = 3


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("worker", parents=[common], help="run one camera: detect, track, embed, publish to Redis")
    p.add_argument("--camera", required=True, help=f"camera id, unique within the site: {CAMERA_ID_RULE}")
    p.add_argument(
        "--source",
        help="rtsp://..., http(s)://..., a video file, a webcam index, replay://VIDEO, synth://..., or env:VARIABLE "
        "(the URL in that environment variable, out of process lists); default: the camera's source under "
        "`cameras:` in the config file",
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


def _process(args: argparse.Namespace, config: CrosscamConfig):
    """The site and the camera process the arguments name: Redis, the embedder, its service."""
    from pipeline.site import Site, open_embedder

    site = Site.open(config, args.site, args.redis_url)
    return site.cameras(open_embedder(config, args.embedder))


def _summary(process, stop: StopRequest) -> dict:
    """What the camera process published, and where; what it could not publish; the signal that stopped it."""
    return {
        "site": process.site.name,
        "published": process.service.counts["published"],
        "dropped_tracklets": process.service.counts["dropped"],
        "unpublished": process.service.counts["unpublished"],
        "spooled": process.service.counts["spooled"],
        "from_spool": process.replayed.published,
        "stream": process.site.keys.tracklets,
        "stopped_by": stop.by,
    }


def _stopped_text(data: dict) -> str:
    """The lines that say why the process stopped early and what it could not publish (none when neither)."""
    lines = [f"stopped by {data['stopped_by']}"] if data["stopped_by"] else []
    if data["spooled"]:
        lines.append(
            f"{data['spooled']} tracklets spooled to disk (Redis could not be reached at the stop): the next start "
            "publishes them"
        )
    if data["unpublished"]:
        lines.append(f"{data['unpublished']} tracklets not published: Redis could not be reached at the stop")
    return "".join(f"\n{line}" for line in lines)


def _exit_code(reports) -> int:
    return EXIT_SOURCE_FAILED if any(r.final_state == "failed" for r in reports) else 0


def cmd_worker(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    if not is_camera_id(args.camera):
        raise UsageError(f"--camera {args.camera!r}: not a valid camera id; use {CAMERA_ID_RULE}")
    with stop_signals() as stop:
        process = _process(args, config)
        worker = process.camera(args.camera, args.source, args.detector)
        report = process.run([worker], args.max_seconds, stop)[args.camera]
    data = report.as_dict() | _summary(process, stop)
    text = (
        f"{args.camera}: {report.frames} frames at {report.fps:.1f} fps, {report.tracklets} tracklets, "
        f"{data['published']} published to {data['stream']}; source {report.final_state}"
    ) + _stopped_text(data)
    return Result(data, text, _exit_code([report]))


def cmd_run(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline.config import load_config

    config = load_config(args.site_config, args.overrides)
    if not config.cameras:
        raise UsageError(f"{args.site_config}: no cameras; list them under `cameras:` (id, source, detector)")
    with stop_signals() as stop:
        process = _process(args, config)
        reports = process.run(process.configured(), args.max_seconds, stop)
    data = {"site": process.site.name, "cameras": [r.as_dict() for r in reports.values()]} | _summary(process, stop)
    lines = [f"site {data['site']}: {data['published']} tracklets published to {data['stream']}"]
    lines += [
        f"  {c['camera']:<12} {c['frames']:>6} frames {c['fps']:>6.1f} fps {c['tracklets']:>5} tracklets  "
        f"source {c['final_state']}"
        for c in data["cameras"]
    ]
    return Result(data, "\n".join(lines) + _stopped_text(data), _exit_code(reports.values()))
