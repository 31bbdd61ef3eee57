"""Embedders: the contract, preprocessing, parity between runtimes, and bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from models.backends.torch_runtime import TorchEmbedder
from models.embedder import load_embedder
from models.errors import BackendUnavailableError, ClipError, ModelFileError
from models.export import random_clips
from models.parity import compare_embedders
from models.preprocess import preprocess
from models.spec import InputSpec
from tests.support.models import TINY_ARCHS
from tests.support.paths import REPO


@pytest.mark.parametrize("frames", [1, 4, 8])
def test_embed_contract(tiny_checkpoints, frames):
    embedder = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu")
    assert embedder.backend == "torch" and embedder.device == "cpu"
    features, attention = embedder.embed(random_clips(5, frames, 128, 64))
    assert features.dtype == np.float32 and features.shape == (5, embedder.feature_dim)
    assert attention.dtype == np.float32 and attention.shape == (5, frames)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("arch", TINY_ARCHS)
@pytest.mark.parametrize("frames", [1, 4, 8])
def test_torch_and_onnxruntime_agree(tiny_checkpoints, tiny_onnx, arch, frames):
    reference = load_embedder(tiny_checkpoints[arch], device="cpu")
    candidate = load_embedder(tiny_onnx[arch])
    assert candidate.backend == "onnxruntime" and candidate.spec == reference.spec
    parity = compare_embedders(reference, candidate, batches=(1, 3), frames=(frames,))
    assert parity["min_cosine"] >= 0.9999
    assert parity["max_attention_diff"] < 1e-4


def test_crops_of_another_size_are_resized_once_in_preprocessing(tiny_checkpoints):
    embedder = load_embedder(tiny_checkpoints["tiny_avg"], device="cpu")
    clips = random_clips(2, 4, 128, 64)
    bigger = np.repeat(np.repeat(clips, 3, axis=2), 3, axis=3)  # the same crops at 3x
    f_small, _ = embedder.embed(clips)
    f_big, _ = embedder.embed(bigger)
    assert (f_small * f_big).sum(axis=1).min() > 0.98


def test_preprocess_normalises_with_the_spec():
    spec = InputSpec(height=2, width=2, frames=1, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.125))
    clips = np.full((1, 1, 2, 2, 3), 255, np.uint8)
    x = preprocess(clips, spec)
    assert x.shape == (1, 1, 3, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, :, 0, 0], [1.0, 2.0, 4.0], rtol=1e-6)


def test_gpu_side_normalisation_equals_preprocess():
    """The CUDA path uploads uint8 pixels and normalises with ``to_input``: the same numbers as NumPy's."""
    import torch

    from models.backends.torch_runtime import to_input
    from models.preprocess import resize_clips

    spec = InputSpec(height=64, width=32, frames=4)
    clips = random_clips(3, 4, 100, 40)  # resized first, on the host
    pixels = torch.from_numpy(resize_clips(clips, spec))
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 4, 64, 32, 3)
    x = to_input(pixels, spec, torch.float32)
    assert x.is_contiguous() and x.shape == (3, 4, 3, 64, 32)
    np.testing.assert_allclose(x.numpy(), preprocess(clips, spec), rtol=1e-6, atol=1e-6)
    assert to_input(pixels, spec, torch.float16).dtype == torch.float16


def test_the_uint8_path_embeds_like_the_float_path(tiny_checkpoints):
    """The CUDA path (uint8 upload, ``to_input``) run on the CPU: the same features as the NumPy path, also
    for a BGR-to-RGB view with negative strides, as callers often pass."""
    embedder = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu", max_batch=2)
    h, w = embedder.spec.input.height, embedder.spec.input.width
    for clips in (random_clips(3, 4, h, w)[..., ::-1], random_clips(3, 4, 96, 48)):  # as is, and resized
        embedder.on_cuda = False
        reference = embedder.embed(clips)
        embedder.on_cuda = True  # what a CUDA device selects; the arithmetic is the same on the CPU
        uint8_path = embedder.embed(clips)
        np.testing.assert_allclose(uint8_path[0], reference[0], atol=1e-5)
        np.testing.assert_allclose(uint8_path[1], reference[1], atol=1e-6)


def test_large_batches_are_split_without_changing_results(tiny_checkpoints):
    clips = random_clips(7, 4, 128, 64)
    whole = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu").embed(clips)
    split = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu", max_batch=3).embed(clips)
    np.testing.assert_allclose(whole[0], split[0], atol=1e-5)
    np.testing.assert_allclose(whole[1], split[1], atol=1e-6)


def test_empty_batch(tiny_checkpoints):
    embedder = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu")
    features, attention = embedder.embed(np.zeros((0, 4, 128, 64, 3), np.uint8))
    assert features.shape == (0, embedder.feature_dim) and attention.shape == (0, 4)


@pytest.mark.parametrize(
    "clips,message",
    [
        (np.zeros((2, 4, 128, 64, 3), np.float32), "dtype uint8"),
        (np.zeros((4, 128, 64, 3), np.uint8), r"shape \[B,T,H,W,3\]"),
        (np.zeros((2, 4, 128, 64, 4), np.uint8), r"shape \[B,T,H,W,3\]"),
        (np.zeros((2, 0, 128, 64, 3), np.uint8), r"T,H,W >= 1"),
        ([[0]], "NumPy array"),
    ],
)
def test_bad_clips_are_clear_errors(tiny_checkpoints, tiny_onnx, clips, message):
    for embedder in (load_embedder(tiny_checkpoints["tiny_avg"], device="cpu"), load_embedder(tiny_onnx["tiny_avg"])):
        with pytest.raises(ClipError, match=message):
            embedder.embed(clips)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"nothing\.onnx: model file not found"):
        load_embedder(tmp_path / "nothing.onnx")


def test_empty_and_unrecognised_model_files(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_embedder(tmp_path / "empty.onnx")
    (tmp_path / "junk.bin").write_bytes(b"\xff\x00 not a model at all")
    with pytest.raises(ModelFileError, match="unrecognised content"):
        load_embedder(tmp_path / "junk.bin")
    with pytest.raises(ModelFileError, match="is not a file"):
        load_embedder(tmp_path)


def test_corrupt_onnx_file(tiny_onnx, tmp_path):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(tiny_onnx["tiny_avg"].read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="ONNX Runtime cannot load"):
        load_embedder(bad)


def test_onnx_without_crosscam_metadata(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    plain = tmp_path / "plain.onnx"
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 4, 3, 128, 64]) for n in ("clips", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["clips"], ["y"])], "plain", io[:1], io[1:])
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 18)]), plain)
    with pytest.raises(ModelFileError, match="no crosscam metadata"):
        load_embedder(plain)


def test_backend_must_fit_the_artifact(tiny_onnx):
    with pytest.raises(BackendUnavailableError, match="needs a crosscam checkpoint"):
        load_embedder(tiny_onnx["tiny_avg"], backend="torch")
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        load_embedder(tiny_onnx["tiny_avg"], backend="nonesuch")


def test_checkpoint_opens_with_onnxruntime_through_a_cached_export(tiny_checkpoints, cache_dir):
    first = load_embedder(tiny_checkpoints["tiny_attention"], backend="onnxruntime")
    exported = list((cache_dir / "onnx").glob("*.onnx"))
    assert first.backend == "onnxruntime" and len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    load_embedder(tiny_checkpoints["tiny_attention"], backend="onnxruntime")
    assert exported[0].stat().st_mtime_ns == stamp  # reused, not exported again


def test_cuda_and_fp16_requests_on_a_cpu_only_machine(tiny_checkpoints):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU; the CPU-only error paths do not apply")
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
        load_embedder(tiny_checkpoints["tiny_avg"], device="cuda")
    with pytest.raises(BackendUnavailableError, match="fp16 needs a CUDA device"):
        load_embedder(tiny_checkpoints["tiny_avg"], device="cpu", fp16=True)
    with pytest.raises(BackendUnavailableError, match="unknown device"):
        load_embedder(tiny_checkpoints["tiny_avg"], device="tpu")


@pytest.mark.gpu
def test_torch_fp16_on_cuda_agrees_with_fp32(tiny_checkpoints):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    fp32 = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu")
    fp16 = load_embedder(tiny_checkpoints["tiny_attention"], device="cuda")
    assert isinstance(fp16, TorchEmbedder) and fp16.precision == "fp16"
    assert compare_embedders(fp32, fp16, batches=(1, 8))["min_cosine"] >= 0.999


def test_importing_models_loads_no_heavy_runtime():
    code = (
        "import sys, models, models.embedder, models.checkpoint, models.export, models.engine, models.benchmark;"
        "heavy = [m for m in ('onnxruntime', 'tensorrt', 'pycuda') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_models_makes_openmp_threads_wait_passively(preset, expected):
    """Set before torch loads (OpenMP reads it then), unless the user chose a policy."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = "import os, sys, models; assert 'torch' not in sys.modules; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == expected


def test_the_torch_backbone_runs_channels_last_and_the_head_keeps_its_layout(tiny_checkpoints):
    import torch

    embedder = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu")
    convs = [m for m in embedder.model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert embedder.model.head.spatial.weight.is_contiguous()  # flattened at every call: a view, not a copy
