"""Pipeline benchmarks: the worker's frame rate against bare detection + tracking on the same frames (its
own stages alone, and with the embedder working beside it on the same cores, as in production), and memory
over a long synthetic stream. Figures only; compared within one run."""

from __future__ import annotations

import itertools
import resource
import time
from pathlib import Path
from typing import Any

from models.embedder import Embedder
from pipeline.bus.connect import Client, scratch_redis
from pipeline.camera.runtimes import resolve_weights
from pipeline.camera.sources import open_source
from pipeline.camera.tracking import DetectorOptions, load_yolo
from pipeline.config import CrosscamConfig
from pipeline.config.schema import DetectorConfig
from pipeline.site import SOURCE_TYPES, CameraProcess, Site
from pipeline.types import Frame


def read_frames(url: str, count: int) -> list[Frame]:
    source = open_source("bench", url)
    frames = list(itertools.islice(source.frames(), count))
    source.stop()
    return frames


def bare_track_fps(frames: list[Frame], options: DetectorOptions) -> float:
    """Ultralytics ``YOLO.track`` alone, the way its users call it, on the same frames."""
    import cv2

    weights = resolve_weights(options.weights, options.runtime, imgsz=options.imgsz, device=options.device)
    model = load_yolo(weights)  # the runtime the worker gets (a .pt runs as its export by default)
    bgr = [cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR) for f in frames]
    model.track(bgr[0], persist=True, tracker=options.tracker, classes=[0], conf=options.conf, verbose=False)  # warm-up
    t = time.perf_counter()
    for image in bgr:
        model.track(image, persist=True, tracker=options.tracker, classes=[0], conf=options.conf, verbose=False)
    return len(frames) / (time.perf_counter() - t)


def _process(client: Client, embedder: Embedder, site: str, detector: str) -> CameraProcess:
    """A camera process of a default-configured site on ``client``, detecting with ``detector``."""
    # gate 0: every frame detected, as bare YOLO.track does, so the two rates compare like for like
    config = CrosscamConfig().model_copy(update={"detector": DetectorConfig(weights=detector, gate=0)})
    return Site(config, client, site).cameras(embedder)


def stages_fps(frames: list[Frame], detector: str, embedder: Embedder, client: Client) -> float:
    """The worker's own stages (detect through the process's detection service, gate, track, cut tracklets) on
    the same frames, the tracklets kept aside instead of embedded: what crosscam adds to ``YOLO.track``."""
    process = _process(client, embedder, "bench-stages", detector)
    elapsed = _timed(process.stages("bench", on_tracklet=lambda tracklet: None), frames)
    process.stop()
    return len(frames) / elapsed


def _timed(stages, frames: list[Frame]) -> float:
    """Seconds ``stages`` take over ``frames``, after one warm-up frame (as for the bare run)."""
    stages.tracker.update(frames[0])
    t = time.perf_counter()
    for frame in frames:
        stages.process(frame)
    return time.perf_counter() - t


def worker_fps(frames: list[Frame], detector: str, embedder: Embedder, client: Client) -> dict[str, Any]:
    """The worker's stages (track, cut tracklets, hand them to the embedding service) on the same frames;
    the service embeds and publishes to a real (embedded) Redis concurrently, as in production."""
    process = _process(client, embedder, "bench", detector)
    stages = process.stages("bench")
    process.service.start()
    elapsed = _timed(stages, frames)
    stages.finish()
    t_drain = time.perf_counter()
    process.stop()
    return {
        "fps": len(frames) / elapsed,
        "tracklets": process.service.counts["submitted"],
        "published": process.service.counts["published"],
        "drain_s": time.perf_counter() - t_drain,
    }


def peak_rss_mb() -> float:
    """The largest resident memory this process has had so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory of this process now, from /proc (peak on systems without it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def memory_over_stream(embedder: Embedder, minutes: float, client: Client) -> dict[str, Any]:
    """Run a worker (motion detector) over ``minutes`` of a synthetic stream; resident memory after
    1 minute of stream time and at the end: flat means nothing grows with time."""
    checkpoints = (min(1.0, minutes), minutes)
    # people keep arriving over the whole stream, so tracks open and close until the last checkpoint
    url = (
        f"synth://?cameras=2&people={max(12, int(minutes * 12))}&seconds={minutes * 60:g}&seed=5&arrivals=0.9&camera=0"
    )
    process = _process(client, embedder, "bench-memory", "motion")
    stages = process.stages("mem")
    process.service.start()
    marks, pending = {}, sorted(set(checkpoints))
    source = open_source("mem", url, types=SOURCE_TYPES)
    for frame in source.frames():
        stages.process(frame)
        if pending and frame.timestamp >= pending[0] * 60 - 0.2:  # the last frame is at (N - 1) / fps
            minute = pending.pop(0)
            marks[f"rss_mb_at_{minute:g}min"] = rss_mb()
            marks[f"peak_mb_at_{minute:g}min"] = peak_rss_mb()
    process.stop()
    return marks | {"published": process.service.counts["published"]}


def bench_pipeline(
    source: str, detector: str, embedder: Embedder, frames: int = 300, memory_minutes: float = 5.0
) -> dict[str, Any]:
    options = DetectorOptions(weights=detector)
    clip = read_frames(source, frames)
    with scratch_redis("crosscam-bench-") as client:  # a real (embedded) Redis, as in production
        bare = bare_track_fps(clip, options)
        own = stages_fps(clip, detector, embedder, client)
        worker = worker_fps(clip, detector, embedder, client)
        result: dict[str, Any] = {
            "frames": len(clip),
            "bare_track_fps": bare,
            "stages_fps": own,
            "stages_ratio": own / bare,
            "worker_fps": worker["fps"],
            "ratio": worker["fps"] / bare,
            "worker": worker,
        }
        if memory_minutes > 0:
            result["memory"] = memory_over_stream(embedder, memory_minutes, client)
    return result
