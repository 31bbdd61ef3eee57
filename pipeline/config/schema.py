"""The one typed configuration schema. Unknown keys are errors that name the key.

Only the CLI reads configuration; library classes take explicit arguments built from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class EmbedderConfig(Section):
    backend: Literal["auto", "torch", "onnxruntime", "tensorrt"] = Field(
        "auto", description="runtime; auto picks the model file's own (checkpoint: torch, ONNX: onnxruntime)"
    )
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:N")
    fp16: bool | None = Field(None, description="half precision; default: on for CUDA, off for the CPU")
    max_batch: int = Field(32, ge=1, le=4096, description="largest number of tracklets run at once")
    threads: int | None = Field(None, ge=1, description="CPU threads for onnxruntime; default: all cores")


class ExportConfig(Section):
    opset: int = Field(18, ge=17, le=23, description="ONNX opset of exported models")
    verify_batches: tuple[int, ...] = Field((1, 3), min_length=1, description="batch sizes checked after export")
    min_cosine: float = Field(0.9999, gt=0, le=1, description="ONNX export fails below this torch/ONNX cosine")
    engine_min_cosine: float = Field(0.99, gt=0, le=1, description="engine build fails below this (fp16) cosine")
    engine_max_batch: int = Field(32, ge=1, le=4096, description="largest batch of the engine's profile")
    engine_max_frames: int = Field(16, ge=1, le=256, description="longest clip of the engine's profile")
    engine_workspace_gib: float = Field(4.0, gt=0, description="TensorRT builder workspace")


class CrosscamConfig(Section):
    cache_dir: Path | None = Field(
        None, description="exported models and engines; default $CROSSCAM_CACHE_DIR or ~/.cache/crosscam"
    )
    embedder: EmbedderConfig = EmbedderConfig()
    export: ExportConfig = ExportConfig()
