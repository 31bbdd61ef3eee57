"""Benchmark helpers: FLOP counts and the peak measurement (figures only; no timing assertions)."""

from __future__ import annotations

import pytest

from models.benchmark import gflops_per_tracklet, peak_matmul_gflops, time_embedder
from models.embedder import load_embedder
from models.export import random_clips
from tests.support.models import make_model


def test_flops_grow_linearly_with_frames():
    model = make_model("tiny_avg")
    spec = _spec(model)
    one, four = gflops_per_tracklet(model, spec, 1), gflops_per_tracklet(model, spec, 4)
    assert four == pytest.approx(4 * one, rel=0.01)


def test_tiny_flops_match_a_hand_count():
    """Convolutions of the tiny backbone at 128x64, counted by hand (2 FLOPs per multiply-add)."""
    model = make_model("tiny_avg")
    macs = 0
    h, w, cin = 128, 64, 3
    for cout, stride, repeat in (
        (32, 2, 1),
        (64, 2, 1),
        (64, 1, 1),
        (128, 2, 1),
        (128, 1, 1),
        (256, 2, 1),
        (256, 1, 1),
    ):
        h, w = -(-h // stride), -(-w // stride)
        macs += cin * cout * 9 * h * w * repeat
        cin = cout
    assert gflops_per_tracklet(model, _spec(model), 1) == pytest.approx(2 * macs / 1e9, rel=0.02)


def test_peak_and_timing_report_positive_figures(tiny_checkpoints):
    assert peak_matmul_gflops("cpu", seconds=0.2) > 0
    embedder = load_embedder(tiny_checkpoints["tiny_avg"], device="cpu")
    timing = time_embedder(embedder, random_clips(2, 4, 128, 64), min_iters=2, min_seconds=0.0)
    assert timing["iterations"] == 2 and timing["tracklets_per_s"] > 0


def _spec(model):
    from models.checkpoint import model_spec

    return model_spec(model)
