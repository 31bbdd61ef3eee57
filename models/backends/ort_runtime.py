"""ONNX Runtime: the CPU provider, or the CUDA provider where onnxruntime-gpu is installed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.artifacts import ArtifactKind
from models.embedder import Embedder
from models.errors import BackendUnavailableError, ModelFileError
from models.export import INPUT_NAME, OUTPUT_NAMES, cached_onnx, onnx_spec_from_metadata


def _import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailableError("onnxruntime is not installed: pip install onnxruntime") from e
    return onnxruntime


def _providers(ort, device: str) -> tuple[list[str], str]:
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device == "cpu":
        return ["CPUExecutionProvider"], "cpu"
    if device.startswith("cuda"):
        if not has_cuda:
            raise BackendUnavailableError(
                f"device {device!r}: this onnxruntime has no CUDA provider (available: {available}); "
                "install onnxruntime-gpu instead of onnxruntime, or use --device cpu"
            )
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"], device
    raise BackendUnavailableError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


class OnnxRuntimeEmbedder(Embedder):
    backend = "onnxruntime"

    def __init__(
        self, onnx_path: Path, device: str = "auto", threads: int | None = None, max_batch: int | None = None
    ) -> None:
        ort = _import_ort()
        providers, device = _providers(ort, device)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"{onnx_path}: ONNX Runtime cannot load this file ({e})") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        spec = onnx_spec_from_metadata(meta, source=str(onnx_path))
        frames = self.session.get_inputs()[0].shape[1]
        super().__init__(spec, device, frames=frames if isinstance(frames, int) else None, max_batch=max_batch)

    def _forward(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feature, attention = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: clips})
        return feature, attention


def open_onnxruntime(
    path: Path,
    kind: ArtifactKind,
    device: str,
    threads: int | None = None,
    max_batch: int | None = None,
    cache_dir: Path | None = None,
    **_: object,
) -> OnnxRuntimeEmbedder:
    if kind is ArtifactKind.CHECKPOINT:
        path = cached_onnx(path, cache_dir=cache_dir)
    elif kind is ArtifactKind.OPENVINO:
        raise BackendUnavailableError(
            f"{path}: onnxruntime cannot read an OpenVINO IR; use --backend openvino, or import the source model "
            "with `crosscam model import ... --format onnx`"
        )
    elif kind is not ArtifactKind.ONNX:
        raise BackendUnavailableError(f"{path}: onnxruntime opens ONNX files and checkpoints, not {kind.value}s")
    return OnnxRuntimeEmbedder(path, device=device, threads=threads, max_batch=max_batch)
