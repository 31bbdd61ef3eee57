"""The openvino backend: it agrees with onnxruntime on the same ONNX files (crosscam's exports, a real OSNet
export, the bundled model), opens checkpoints and IR artifacts, loads lazily, and refuses what it cannot run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models.embedder import load_embedder
from models.errors import BackendUnavailableError
from models.export import export_onnx
from models.parity import compare_embedders
from models.zoo import default_embedder
from tests.support.models import TINY_ARCHS
from tests.support.paths import REPO, SHARED_DATA

MSMT17 = SHARED_DATA / "reid_weights" / "torchreid" / "osnet_x0_25_msmt17.pth"
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")


@pytest.mark.parametrize("arch", TINY_ARCHS)
@pytest.mark.parametrize("frames", [1, 4, 8])
def test_openvino_agrees_with_onnxruntime_on_crosscam_exports(tiny_onnx, arch, frames):
    reference = load_embedder(tiny_onnx[arch], backend="onnxruntime")
    candidate = load_embedder(tiny_onnx[arch], backend="openvino")
    assert candidate.backend == "openvino" and candidate.device == "cpu" and candidate.spec == reference.spec
    parity = compare_embedders(reference, candidate, batches=(1, 3), frames=(frames,))
    assert parity["min_cosine"] >= 0.9999
    assert parity["max_attention_diff"] < 1e-4


@pytest.mark.slow
@needs_shared_data
def test_openvino_agrees_with_onnxruntime_on_the_osnet_export(tmp_path):
    """osnet_x0_25_attention with torchreid's MSMT17 weights, exported by crosscam: the acceptance check."""
    from models.architectures import arch_spec
    from models.checkpoint import build_model, model_spec

    arch, input_spec = arch_spec("osnet_x0_25_attention")
    model = build_model(arch, input_spec, pretrained=str(MSMT17)).eval()
    path = export_onnx(model, model_spec(model), tmp_path / "osnet.onnx")
    parity = compare_embedders(load_embedder(path), load_embedder(path, backend="openvino"), frames=(1, 4))
    assert parity["min_cosine"] >= 0.9999


def test_openvino_agrees_with_onnxruntime_on_the_bundled_model():
    path = default_embedder()
    reference, candidate = load_embedder(path), load_embedder(path, backend="openvino")
    assert reference.backend == "onnxruntime" and candidate.spec == reference.spec
    parity = compare_embedders(reference, candidate, batches=(1, 3), frames=(1, 4))
    assert parity["min_cosine"] >= 0.9999 and parity["max_attention_diff"] < 1e-6


def test_checkpoint_opens_with_openvino_through_the_cached_export(tiny_checkpoints, cache_dir):
    embedder = load_embedder(tiny_checkpoints["tiny_attention"], backend="openvino")
    assert embedder.backend == "openvino" and len(list((cache_dir / "onnx").glob("*.onnx"))) == 1
    reference = load_embedder(tiny_checkpoints["tiny_attention"], device="cpu")
    assert compare_embedders(reference, embedder, frames=(4,))["min_cosine"] >= 0.9999


def test_openvino_refuses_cuda_fp16_and_engines(tiny_onnx, tmp_path):
    with pytest.raises(BackendUnavailableError, match="runs on the CPU"):
        load_embedder(tiny_onnx["tiny_avg"], backend="openvino", device="cuda")
    with pytest.raises(BackendUnavailableError, match="fp32"):
        load_embedder(tiny_onnx["tiny_avg"], backend="openvino", fp16=True)
    from models.engine import write_engine_file

    engine = tmp_path / "m.engine"
    write_engine_file(engine, {"spec": {}}, b"serialized")
    with pytest.raises(BackendUnavailableError, match="--backend tensorrt"):
        load_embedder(engine, backend="openvino")


def test_graph_gflops_equal_the_pytorch_count(tiny_checkpoints, tiny_onnx):
    from models.benchmark import gflops_per_tracklet, graph_gflops_per_tracklet
    from models.checkpoint import load_checkpoint

    model, spec = load_checkpoint(tiny_checkpoints["tiny_attention"])
    for frames in (1, 4):
        expected = gflops_per_tracklet(model, spec, frames)
        assert graph_gflops_per_tracklet(tiny_onnx["tiny_attention"], frames) == pytest.approx(expected, rel=1e-6)
    assert graph_gflops_per_tracklet(tiny_onnx["tiny_gru_rank"], 4) is None  # a GRU: not counted, not guessed
    assert graph_gflops_per_tracklet(default_embedder(), 4) == pytest.approx(4 * 1.96, rel=0.01)


def test_bench_embedder_runs_a_foreign_model_on_both_cpu_runtimes(capsys, cache_dir):
    from pipeline.cli import main

    argv = ["bench", "embedder", "--model", str(default_embedder()), "--backends", "torch,onnxruntime,openvino"]
    code = main([*argv, "--batch", "1", "--min-seconds", "0", "--json"])
    out, err = capsys.readouterr()
    data = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and [r["backend"] for r in data["results"]] == ["onnxruntime", "openvino"]
    assert "not a crosscam checkpoint" in data["skipped"]["torch"] and "torch: skipped" in err
    assert data["model"]["kind"] == "onnx" and data["gflops_per_tracklet"] == pytest.approx(7.83, rel=0.01)
    assert all(r["tracklets_per_s"] > 0 and r["achieved_gflops"] > 0 for r in data["results"])


def test_importing_models_does_not_import_openvino():
    code = (
        "import sys, models, models.embedder, models.artifacts, models.imported, models.zoo, models.ir_onnx, "
        "models.benchmark, models.backends.ov_runtime, models.backends.ort_runtime;"
        "heavy = [m for m in ('openvino', 'onnxruntime', 'tensorrt') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_missing_openvino_is_a_clear_error(tiny_onnx):
    """Where openvino is not installed (``sys.modules`` entry None makes its import fail as it would)."""
    code = (
        "import sys; sys.modules['openvino'] = None\n"
        "from models.embedder import load_embedder\n"
        "from models.errors import BackendUnavailableError\n"
        "try:\n"
        f"    load_embedder({str(tiny_onnx['tiny_avg'])!r}, backend='openvino')\n"
        "except BackendUnavailableError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True).stdout
    assert "OpenVINO is not installed: pip install openvino" in out
