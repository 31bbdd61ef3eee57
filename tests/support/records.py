"""Tracklet embeddings built by hand, as the bus and the matcher receive them."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.types import TrackletEmbedding


def make_embedding(dim: int = 8, frames: int = 4, **overrides) -> TrackletEmbedding:
    rng = np.random.default_rng(0)
    feature = rng.normal(size=dim).astype(np.float32)
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (32, 16, 3), dtype=np.uint8))
    assert ok
    values = dict(
        site="lobby",
        camera_id="cam-1",
        track_id=7,
        seq=2,
        t_start=100.25,
        t_end=103.5,
        feature=feature / np.linalg.norm(feature),
        attention=np.full(frames, 1 / frames, np.float32),
        thumbnail=jpeg.tobytes(),
        model_id="a224a664b219357a",
    )
    return TrackletEmbedding(**(values | overrides))


def tracklet(camera: str, track: int, t0: float, t1: float, feature, seq: int = 0) -> TrackletEmbedding:
    return TrackletEmbedding("s", camera, track, seq, t0, t1, np.asarray(feature, np.float32), np.ones(2) / 2, b"", "m")
