"""One small interface over the network's runtimes.

``Embedder.embed(clips uint8[B,T,H,W,3] RGB) -> (features float32[B,D] L2-normalised, attention float32[B,T])``.
The base class validates, preprocesses, splits big batches and normalises; a backend only loads its
model and runs a forward pass. Backends are found through a lazy table, so ``import models`` imports
none of onnxruntime, OpenVINO and TensorRT.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from models.artifacts import ArtifactKind, detect_artifact
from models.errors import BackendUnavailableError
from models.preprocess import check_clips, l2_normalize, preprocess
from models.spec import ModelSpec


class Embedder(ABC):
    """Base of every runtime. Subclasses set ``backend``, ``device`` and implement ``_forward``."""

    backend: str = ""
    precision: str = "fp32"  # of the arithmetic inside the runtime: fp32 or fp16

    def __init__(self, spec: ModelSpec, device: str, frames: int | None = None, max_batch: int | None = None) -> None:
        self.spec = spec
        self.device = device
        self.frames = frames  # fixed clip length of the artifact, or None for any
        self.max_batch = max_batch  # largest batch the artifact runs at once, or None

    @property
    def feature_dim(self) -> int:
        return self.spec.feature_dim

    def embed(self, clips: np.ndarray, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(features float32[B,D], attention float32[B,T])``; features L2-normalised unless ``normalize`` is
        False (the raw network output, for evaluation protocols that average raw features)."""
        clips = check_clips(clips, self.frames)
        b, t = clips.shape[:2]
        if b == 0:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, t), np.float32)
        x = self._prepare(clips)
        step = self.max_batch or b
        parts = [self._forward(x[i : i + step]) for i in range(0, b, step)]
        features = np.concatenate([p[0] for p in parts]).astype(np.float32)
        attention = np.concatenate([p[1] for p in parts]).astype(np.float32)
        return (l2_normalize(features) if normalize else features), attention

    def _prepare(self, clips: np.ndarray) -> np.ndarray:
        """Checked ``uint8[B,T,H,W,3]`` clips as ``_forward`` takes them: ``float32[B,T,3,H,W]``, normalised."""
        return preprocess(clips, self.spec.input)

    @abstractmethod
    def _forward(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What ``_prepare`` made of a batch -> raw ``(feature [B,D], attention [B,T])``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.spec.arch.name}:{self.spec.model_id}, device={self.device})"


# name -> "module:factory". A factory takes (path, kind, device, **options) and returns an Embedder.
BACKENDS: dict[str, str] = {
    "torch": "models.backends.torch_runtime:open_torch",
    "onnxruntime": "models.backends.ort_runtime:open_onnxruntime",
    "tensorrt": "models.backends.trt_runtime:open_tensorrt",
    "openvino": "models.backends.ov_runtime:open_openvino",
}

_DEFAULT_BACKEND = {
    ArtifactKind.CHECKPOINT: "torch",
    ArtifactKind.ONNX: "onnxruntime",
    ArtifactKind.ENGINE: "tensorrt",
    ArtifactKind.OPENVINO: "openvino",
}


def load_embedder(path: str | Path, backend: str = "auto", device: str = "auto", **options) -> Embedder:
    """Open a checkpoint, an ONNX file, an OpenVINO IR (.xml) or a crosscam TensorRT engine with a runtime.

    ``backend``: ``auto`` (the artifact's own: torch / onnxruntime / openvino / tensorrt) or a name of
    ``BACKENDS``; a checkpoint also opens with onnxruntime, openvino or tensorrt (exported and cached first),
    and an ONNX file with openvino or tensorrt. ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    ``options`` go to the backend (``fp16``, ``cache_dir``, ``max_batch``, ``threads``).
    """
    kind = detect_artifact(Path(path))
    name = _DEFAULT_BACKEND[kind] if backend == "auto" else backend
    if name not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {name!r}; choose auto or one of {', '.join(BACKENDS)}")
    module, _, factory = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), factory)(Path(path), kind, device, **options)
