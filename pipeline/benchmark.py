"""Pipeline benchmarks: the worker's frame rate against bare detection + tracking on the same frames,
and memory over a long synthetic stream. Figures only; compared within one run."""

from __future__ import annotations

import itertools
import resource
import time
from pathlib import Path
from typing import Any

from models.embedder import Embedder
from pipeline.bus import Keys, Publisher, scratch_redis
from pipeline.embedding import EmbeddingService
from pipeline.sources import open_source
from pipeline.tracking import DetectorOptions, YoloTracker, load_yolo, make_tracker
from pipeline.tracklets import TrackletBuffer, TrackletPolicy
from pipeline.types import Frame


def _policy(embedder: Embedder) -> TrackletPolicy:
    spec = embedder.spec.input
    return TrackletPolicy(frames=spec.frames, crop_height=spec.height, crop_width=spec.width)


def read_frames(url: str, count: int) -> list[Frame]:
    source = open_source("bench", url)
    frames = list(itertools.islice(source.frames(), count))
    source.stop()
    return frames


def bare_track_fps(frames: list[Frame], options: DetectorOptions) -> float:
    """Ultralytics ``YOLO.track`` alone, the way its users call it, on the same frames."""
    import cv2

    model = load_yolo(options.weights)
    bgr = [cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR) for f in frames]
    model.track(bgr[0], persist=True, tracker=options.tracker, classes=[0], conf=options.conf, verbose=False)  # warm-up
    t = time.perf_counter()
    for image in bgr:
        model.track(image, persist=True, tracker=options.tracker, classes=[0], conf=options.conf, verbose=False)
    return len(frames) / (time.perf_counter() - t)


def worker_fps(frames: list[Frame], options: DetectorOptions, embedder: Embedder, client) -> dict[str, Any]:
    """The worker's loop (track, cut tracklets, hand them to the embedding service) on the same frames;
    the service embeds and publishes to a real (embedded) Redis concurrently, as in production."""
    publisher = Publisher(client, Keys("bench"))
    service = EmbeddingService(embedder, "bench", publisher.publish).start()
    tracker = YoloTracker("bench", options)
    buffer = TrackletBuffer("bench", _policy(embedder))
    tracker.update(frames[0])  # warm-up, as for the bare run
    t = time.perf_counter()
    for frame in frames:
        for tracklet in buffer.add(frame, tracker.update(frame)):
            service.submit(tracklet)
    elapsed = time.perf_counter() - t
    for tracklet in buffer.flush():
        service.submit(tracklet)
    t_drain = time.perf_counter()
    service.stop()
    return {
        "fps": len(frames) / elapsed,
        "tracklets": service.counts["submitted"],
        "published": service.counts["published"],
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


def memory_over_stream(embedder: Embedder, minutes: float, client) -> dict[str, Any]:
    """Run a worker (motion detector) over ``minutes`` of a synthetic stream; resident memory after
    1 minute of stream time and at the end: flat means nothing grows with time."""
    checkpoints = (min(1.0, minutes), minutes)
    # people keep arriving over the whole stream, so tracks open and close until the last checkpoint
    url = (
        f"synth://?cameras=2&people={max(12, int(minutes * 12))}&seconds={minutes * 60:g}&seed=5&arrivals=0.9&camera=0"
    )
    publisher = Publisher(client, Keys("bench-memory"))
    service = EmbeddingService(embedder, "bench-memory", publisher.publish).start()
    tracker = make_tracker("mem", DetectorOptions(weights="motion"))
    buffer = TrackletBuffer("mem", _policy(embedder))
    marks, pending = {}, sorted(set(checkpoints))
    source = open_source("mem", url)
    for frame in source.frames():
        for tracklet in buffer.add(frame, tracker.update(frame)):
            service.submit(tracklet)
        if pending and frame.timestamp >= pending[0] * 60 - 0.2:  # the last frame is at (N - 1) / fps
            minute = pending.pop(0)
            marks[f"rss_mb_at_{minute:g}min"] = rss_mb()
            marks[f"peak_mb_at_{minute:g}min"] = peak_rss_mb()
    service.stop()
    return marks | {"published": service.counts["published"]}


def bench_pipeline(
    source: str, detector: str, embedder: Embedder, frames: int = 300, memory_minutes: float = 5.0
) -> dict[str, Any]:
    options = DetectorOptions(weights=detector)
    clip = read_frames(source, frames)
    with scratch_redis("crosscam-bench-") as client:  # a real (embedded) Redis, as in production
        bare = bare_track_fps(clip, options)
        worker = worker_fps(clip, options, embedder, client)
        result: dict[str, Any] = {
            "frames": len(clip),
            "bare_track_fps": bare,
            "worker_fps": worker["fps"],
            "ratio": worker["fps"] / bare,
            "worker": worker,
        }
        if memory_minutes > 0:
            result["memory"] = memory_over_stream(embedder, memory_minutes, client)
    return result
