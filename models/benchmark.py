"""Embedder throughput, model cost and the machine's measured peak, compared within one run."""

from __future__ import annotations

import contextlib
import importlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.devices import host_info
from models.embedder import Embedder
from models.reidnet import ReIDNet
from models.spec import ModelSpec


def gflops_per_tracklet(model: ReIDNet, spec: ModelSpec, frames: int) -> float:
    """Forward-pass GFLOPs of one ``frames``-frame clip (a multiply-add counts as 2 FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, frames, 3, spec.input.height, spec.input.width)
    model = model.eval().float().cpu()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9


# Operations whose arithmetic the graph count below does not know; a graph holding one has no GFLOPs figure.
_UNCOUNTED_OPS = {
    "GRUSequence",
    "GRUCell",
    "LSTMSequence",
    "LSTMCell",
    "RNNSequence",
    "TensorIterator",
    "Loop",
    "Einsum",
}


def graph_gflops_per_tracklet(path: str | Path, frames: int) -> float | None:
    """Forward-pass GFLOPs of one ``frames``-frame clip through an ONNX or OpenVINO IR artifact, counted from its
    graph: convolutions and matrix products, a multiply-add as 2 FLOPs (the convention of ``gflops_per_tracklet``).
    None when the graph holds operations this count does not know (recurrent cells, loops)."""
    from models.backends.ov_runtime import import_openvino, read_model

    ov = import_openvino()
    model = read_model(ov.Core(), Path(path))
    shape = model.input(0).get_partial_shape()
    model.reshape(
        {model.input(0): ov.PartialShape([1, frames, *(shape[i] for i in range(2, shape.rank.get_length()))])}
    )
    flops = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in _UNCOUNTED_OPS:
            return None
        if kind in ("Convolution", "GroupConvolution", "MatMul"):
            out, weights = op.get_output_partial_shape(0), op.get_input_partial_shape(1)
            if out.is_dynamic or weights.is_dynamic:
                return None
            out_elems = int(np.prod(out.to_shape()))
            w = list(weights.to_shape())
            if kind == "Convolution":  # weights [C_out, C_in, kh, kw]: each output sums C_in*kh*kw products
                per_output = int(np.prod(w[1:]))
            elif kind == "GroupConvolution":  # weights [G, C_out/G, C_in/G, kh, kw]
                per_output = int(np.prod(w[2:]))
            else:  # the contracted dimension of the first input
                a = op.get_input_partial_shape(0).to_shape()
                per_output = a[-2] if op.get_attributes()["transpose_a"] else a[-1]
            flops += 2 * out_elems * per_output
    return flops / 1e9


def peak_matmul_gflops(device: str = "cpu", dtype: str = "float32", seconds: float = 2.0) -> float:
    """Measured dense matmul throughput: the practical peak of this device for ``dtype``, in GFLOP/s."""
    import torch

    n = 2048 if device == "cpu" else 8192
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device=device).to(dt)
    b = torch.randn(n, n, device=device).to(dt)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t = time.perf_counter()
        a @ b
        sync()
        dt_s = time.perf_counter() - t
        best, spent = min(best, dt_s), spent + dt_s
    return 2 * n**3 / best / 1e9


def time_embedder(
    embedder: Embedder,
    clips: np.ndarray,
    warmup: int = 1,
    min_iters: int = 3,
    min_seconds: float = 3.0,
    on_iter: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Time ``embedder.embed(clips)``, end to end as a caller sees it (preprocessing included)."""
    for _ in range(warmup):
        embedder.embed(clips)
    times: list[float] = []
    while len(times) < min_iters or sum(times) < min_seconds:
        t = time.perf_counter()
        embedder.embed(clips)
        times.append(time.perf_counter() - t)
        if on_iter:
            on_iter()
    median = statistics.median(times)
    return {"tracklets_per_s": len(clips) / median, "ms_per_batch": 1000 * median, "iterations": len(times)}


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = host_info() | {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    for runtime in ("onnxruntime", "openvino"):
        with contextlib.suppress(ImportError):
            info[runtime] = importlib.import_module(runtime).__version__
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info
