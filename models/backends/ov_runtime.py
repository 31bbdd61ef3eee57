"""OpenVINO on the CPU: crosscam's ONNX exports (OpenVINO reads ONNX directly), checkpoints through their cached
ONNX export, and OpenVINO IR files written by ``crosscam model import``.

Arithmetic is fp32 (``INFERENCE_PRECISION_HINT``): OpenVINO would otherwise pick bf16 on CPUs that have it,
which moves features away from the other runtimes'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.artifacts import ArtifactKind, ir_weights, read_spec
from models.embedder import Embedder
from models.errors import BackendUnavailableError, ModelFileError
from models.export import INPUT_NAME, OUTPUT_NAMES, cached_onnx


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailableError("OpenVINO is not installed: pip install openvino") from e
    return openvino


def cpu_device(device: str) -> str:
    """OpenVINO runs crosscam's models on the CPU: ``auto`` and ``cpu`` are it; a CUDA device is an error."""
    if device in ("auto", "cpu"):
        return "cpu"
    if device.startswith("cuda"):
        raise BackendUnavailableError(
            f"device {device!r}: the openvino backend runs on the CPU (OpenVINO does not drive NVIDIA GPUs); "
            "use --backend onnxruntime or tensorrt on CUDA, or --device cpu"
        )
    raise BackendUnavailableError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def compile_config(threads: int | None = None) -> dict[str, Any]:
    """fp32 arithmetic, latency-oriented streams, and ``threads`` CPU threads (default: OpenVINO's, all cores)."""
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def read_model(core: Any, path: Path) -> Any:
    """``core.read_model`` with crosscam's errors: a missing .bin, and a truncated or corrupt file, name the file."""
    if _is_ir(path) and not ir_weights(path).is_file():
        raise ModelFileError(
            f"{path}: its weights file {ir_weights(path)} is missing; an OpenVINO IR is NAME.xml with NAME.bin "
            "beside it: copy or download both"
        )
    try:
        return core.read_model(str(path))
    except Exception as e:  # OpenVINO raises RuntimeError with a multi-line report
        reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1:] or [type(e).__name__]
        raise ModelFileError(
            f"{path}: OpenVINO cannot read this model ({reason[0]}); it is truncated or corrupt: download or "
            "export it again"
        ) from e


def _is_ir(path: Path) -> bool:
    with path.open("rb") as f:
        return b"<net" in f.read(512)


class OpenVINOEmbedder(Embedder):
    backend = "openvino"

    def __init__(
        self, path: Path, device: str = "auto", threads: int | None = None, max_batch: int | None = None
    ) -> None:
        ov = import_openvino()
        device = cpu_device(device)
        spec = read_spec(path)  # first: a foreign model without a spec gets the import hint, not a runtime error
        core = ov.Core()
        model = read_model(core, path)
        names = {name for output in model.outputs for name in output.get_names()}
        if not set(OUTPUT_NAMES) <= names:
            raise ModelFileError(
                f"{path}: the graph has no {' and '.join(OUTPUT_NAMES)} outputs (it has {sorted(names)}); "
                "import the model again with `crosscam model import`"
            )
        self.compiled = core.compile_model(model, "CPU", compile_config(threads))
        self.request = self.compiled.create_infer_request()
        frames = model.input(0).get_partial_shape()[1]
        super().__init__(spec, device, frames=frames.get_length() if frames.is_static else None, max_batch=max_batch)

    def _forward(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.request.infer({INPUT_NAME: clips})
        feature, attention = (self.request.get_tensor(name).data.copy() for name in OUTPUT_NAMES)
        return feature, attention


def open_openvino(
    path: Path,
    kind: ArtifactKind,
    device: str,
    threads: int | None = None,
    max_batch: int | None = None,
    cache_dir: Path | None = None,
    fp16: bool | None = None,
    **_: object,
) -> OpenVINOEmbedder:
    if fp16:
        raise BackendUnavailableError("the openvino backend computes in fp32 on the CPU; leave fp16 unset or false")
    if kind is ArtifactKind.CHECKPOINT:
        path = cached_onnx(path, cache_dir=cache_dir)
    elif kind is ArtifactKind.ENGINE:
        raise BackendUnavailableError(f"{path}: a TensorRT engine runs only with --backend tensorrt")
    return OpenVINOEmbedder(path, device=device, threads=threads, max_batch=max_batch)
