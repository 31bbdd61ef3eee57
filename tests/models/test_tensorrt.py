"""TensorRT: the engine container and cache key everywhere; building and parity where TensorRT imports.

TensorRT cannot be installed on this project's development and CI machines (its wheels come from
NVIDIA's index), so the tests marked ``gpu`` below have not run there; they run wherever
``import tensorrt`` works and a CUDA GPU is visible.
"""

from __future__ import annotations

import importlib.util

import pytest

from models.artifacts import ArtifactKind, detect_artifact
from models.embedder import load_embedder
from models.engine import EngineOptions, engine_cache_key, engine_spec, read_engine_file, write_engine_file
from models.errors import BackendUnavailableError, ModelFileError
from models.export import read_onnx_spec

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_engine_file_round_trip(tiny_onnx, tmp_path):
    spec = read_onnx_spec(tiny_onnx["tiny_attention"])
    header = {"spec": spec.to_dict(), "gpu": "test", "tensorrt": "10.0", "max_batch": 8, "fp16": True}
    path = tmp_path / "m.engine"
    write_engine_file(path, header, b"\x01serialized-engine-bytes")
    assert detect_artifact(path) is ArtifactKind.ENGINE
    read_header, blob = read_engine_file(path)
    assert read_header == header and blob == b"\x01serialized-engine-bytes"
    assert engine_spec(read_header, str(path)) == spec


def test_truncated_or_corrupt_engine_files(tmp_path):
    path = tmp_path / "m.engine"
    write_engine_file(path, {"spec": {}}, b"x")
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ModelFileError, match="truncated"):
        read_engine_file(path)
    data = bytearray(path.read_bytes() + b"x")
    data[20] = 0xFF  # inside the JSON header
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt engine header"):
        read_engine_file(path)


def test_cache_key_changes_with_every_input():
    base = engine_cache_key("abc", "NVIDIA H100", "10.9", EngineOptions())
    assert base == engine_cache_key("abc", "NVIDIA H100", "10.9", EngineOptions())
    others = [
        engine_cache_key("abd", "NVIDIA H100", "10.9", EngineOptions()),
        engine_cache_key("abc", "NVIDIA A100", "10.9", EngineOptions()),
        engine_cache_key("abc", "NVIDIA H100", "10.10", EngineOptions()),
        engine_cache_key("abc", "NVIDIA H100", "10.9", EngineOptions(fp16=False)),
        engine_cache_key("abc", "NVIDIA H100", "10.9", EngineOptions(max_batch=64)),
    ]
    assert base not in others and len(set(others)) == len(others)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here; the missing-TensorRT message does not apply")
def test_without_tensorrt_the_error_says_what_to_install(tiny_onnx, tmp_path):
    with pytest.raises(BackendUnavailableError, match=r"pip install 'crosscam\[tensorrt\]'"):
        load_embedder(tiny_onnx["tiny_attention"], backend="tensorrt")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installed (not installable on the CI machine)")
def test_tensorrt_engine_matches_torch_and_is_cached(tiny_checkpoints, tiny_onnx, tmp_path):
    import torch

    from models.engine import build_engine
    from models.parity import compare_embedders

    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but no CUDA GPU is visible")
    options = EngineOptions(max_batch=8, max_frames=8)
    path = build_engine(tiny_onnx["tiny_attention"], options=options, cache_dir=tmp_path)
    stamp = path.stat().st_mtime_ns
    assert build_engine(tiny_onnx["tiny_attention"], options=options, cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # the cache answered; nothing was rebuilt
    engine = load_embedder(path)
    assert engine.backend == "tensorrt" and engine.precision == "fp16"
    reference = load_embedder(tiny_checkpoints["tiny_attention"], device="cuda", fp16=False)
    parity = compare_embedders(reference, engine, batches=(1, 5, 8), frames=(1, 4, 8))
    assert parity["min_cosine"] >= 0.99
