"""TensorRT runtime over crosscam engine files, with device buffers from PyTorch.

Written against the TensorRT 10 Python API; NOT run on this project's development machines, where
TensorRT cannot be installed (tests/models/test_tensorrt.py runs wherever ``tensorrt`` imports).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.artifacts import ArtifactKind
from models.embedder import Embedder
from models.engine import EngineOptions, build_engine, engine_spec, import_tensorrt, read_engine_file
from models.errors import BackendUnavailableError, ClipError, ModelFileError
from models.export import INPUT_NAME, OUTPUT_NAMES, cached_onnx


class TensorRTEmbedder(Embedder):
    backend = "tensorrt"

    def __init__(self, engine_path: Path, device: str = "auto") -> None:
        import torch

        trt = import_tensorrt()
        if device == "cpu" or not torch.cuda.is_available():
            raise BackendUnavailableError("the tensorrt backend runs on a CUDA GPU only; use --backend onnxruntime")
        device = "cuda" if device == "auto" else device
        header, blob = read_engine_file(engine_path)
        spec = engine_spec(header, str(engine_path))
        self._torch = torch
        with torch.cuda.device(device):
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = self._runtime.deserialize_cuda_engine(blob)
            if self._engine is None:
                raise ModelFileError(
                    f"{engine_path}: TensorRT could not load this engine (built with TensorRT "
                    f"{header.get('tensorrt')} on {header.get('gpu')}); rebuild it on this machine"
                )
            self._context = self._engine.create_execution_context()
        self._max_frames = int(header.get("max_frames", spec.input.frames))
        self.precision = "fp16" if header.get("fp16", True) else "fp32"
        super().__init__(spec, device, frames=None, max_batch=int(header.get("max_batch", 32)))

    def _forward(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        b, t = clips.shape[:2]
        if t > self._max_frames:
            raise ClipError(
                f"this engine takes at most {self._max_frames} frames per clip, got {t}; "
                "rebuild it with a larger max_frames"
            )
        with torch.cuda.device(self.device):
            stream = torch.cuda.current_stream()
            x = torch.from_numpy(clips).to(self.device, non_blocking=True)
            feature = torch.empty((b, self.feature_dim), dtype=torch.float32, device=self.device)
            attention = torch.empty((b, t), dtype=torch.float32, device=self.device)
            self._context.set_input_shape(INPUT_NAME, tuple(x.shape))
            for name, tensor in zip((INPUT_NAME, *OUTPUT_NAMES), (x, feature, attention), strict=True):
                self._context.set_tensor_address(name, tensor.data_ptr())
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise BackendUnavailableError("TensorRT execution failed; see its log above")
            stream.synchronize()
        return feature.cpu().numpy(), attention.cpu().numpy()


def open_tensorrt(
    path: Path,
    kind: ArtifactKind,
    device: str,
    cache_dir: Path | None = None,
    max_batch: int | None = None,
    fp16: bool | None = None,
    **_: object,
) -> TensorRTEmbedder:
    if kind is not ArtifactKind.ENGINE:
        onnx_path = cached_onnx(path, cache_dir=cache_dir) if kind is ArtifactKind.CHECKPOINT else path
        options = EngineOptions(fp16=True if fp16 is None else fp16, max_batch=max_batch or 32)
        path = build_engine(onnx_path, options=options, cache_dir=cache_dir)
    return TensorRTEmbedder(path, device=device)
