"""TensorRT engines: built from a crosscam ONNX file, fp16, with a dynamic batch (and frames) profile.

Written against the TensorRT 10 Python API. NOTE: TensorRT cannot be installed on the machines this
project is developed and tested on, so this module has not run there (docs/models.md, "TensorRT: written,
not run").

An engine file is crosscam's container: ``ENGINE_MAGIC``, a little-endian u32 header length, a JSON
header (the model spec and how the engine was built), then TensorRT's serialized engine. Engines are
cached by ONNX sha256 + GPU name + TensorRT version + build options, so a restart never rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import BackendUnavailableError, ModelFileError
from models.export import INPUT_NAME, default_cache_dir, read_onnx_spec
from models.formats import ENGINE_MAGIC, sha256_file
from models.spec import ModelSpec


@dataclass(frozen=True)
class EngineOptions:
    """How to build: fp16 kernels, batch range 1..max_batch, frames range 1..max_frames."""

    fp16: bool = True
    max_batch: int = 32
    max_frames: int = 16
    workspace_gib: float = 4.0


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as e:
        raise BackendUnavailableError(
            "TensorRT is not installed. On a machine with an NVIDIA GPU and CUDA 12/13: "
            "pip install 'crosscam[tensorrt]' --extra-index-url https://pypi.nvidia.com "
            "(or use --backend onnxruntime / torch)"
        ) from e
    return tensorrt


def gpu_name() -> str:
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError("building or running a TensorRT engine needs a CUDA GPU; none is visible")
    return torch.cuda.get_device_name()


def engine_cache_key(onnx_sha256: str, gpu: str, trt_version: str, options: EngineOptions) -> str:
    """The identity of a built engine: the same key means the same engine can be reused."""
    text = json.dumps([onnx_sha256, gpu, trt_version, options.fp16, options.max_batch, options.max_frames])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def write_engine_file(path: Path, header: dict[str, Any], engine: bytes) -> None:
    blob = json.dumps(header).encode()
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        f.write(ENGINE_MAGIC + struct.pack("<I", len(blob)) + blob)
        f.write(engine)
    os.replace(tmp, path)


def read_engine_file(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    if not data.startswith(ENGINE_MAGIC) or len(data) < len(ENGINE_MAGIC) + 4:
        raise ModelFileError(
            f"{path}: not a crosscam TensorRT engine; build one with `crosscam export --format engine`"
        )
    start = len(ENGINE_MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(ENGINE_MAGIC) : start])
    try:
        header = json.loads(data[start : start + size])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: corrupt engine header ({e}); build the engine again") from e
    engine = data[start + size :]
    if not engine:
        raise ModelFileError(f"{path}: the engine file is truncated; build the engine again")
    return header, engine


def _profile_shapes(spec: ModelSpec, options: EngineOptions) -> tuple[tuple[int, ...], ...]:
    h, w, t = spec.input.height, spec.input.width, spec.input.frames
    opt_batch = max(1, options.max_batch // 2)
    return (1, 1, 3, h, w), (opt_batch, t, 3, h, w), (options.max_batch, max(t, options.max_frames), 3, h, w)


def build_engine(
    onnx_path: Path, out: Path | None = None, options: EngineOptions | None = None, cache_dir: Path | None = None
) -> Path:
    """Build (or find in the cache) the engine of a crosscam ONNX file; returns its path.

    With ``out`` the engine is also written there.
    """
    trt = import_tensorrt()
    options = options or EngineOptions()
    spec = read_onnx_spec(onnx_path)
    onnx_hash = sha256_file(onnx_path)
    gpu = gpu_name()
    key = engine_cache_key(onnx_hash, gpu, trt.__version__, options)
    cached = Path(cache_dir or default_cache_dir()) / "engines" / f"{key}.engine"
    if not cached.is_file():
        engine = _build_serialized(trt, onnx_path, spec, options)
        header = {
            "spec": spec.to_dict(),
            "onnx_sha256": onnx_hash,
            "gpu": gpu,
            "tensorrt": trt.__version__,
            "fp16": options.fp16,
            "max_batch": options.max_batch,
            "max_frames": options.max_frames,
            "cache_key": key,
        }
        write_engine_file(cached, header, engine)
    if out is not None and Path(out) != cached:
        header, engine = read_engine_file(cached)
        write_engine_file(Path(out), header, engine)
        return Path(out)
    return cached


def _build_serialized(trt, onnx_path: Path, spec: ModelSpec, options: EngineOptions) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"{onnx_path}: TensorRT cannot parse this ONNX file: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    if options.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *_profile_shapes(spec, options))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx_path}; see its log above")
    return bytes(serialized)


def engine_spec(header: dict[str, Any], source: str) -> ModelSpec:
    if "spec" not in header:
        raise ModelFileError(f"{source}: engine header has no crosscam model spec; build the engine again")
    return ModelSpec.from_dict(header["spec"], source=source)
