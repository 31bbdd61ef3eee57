"""``detector.runtime``: which runtime ``auto`` picks (every branch, never TensorRT by itself), ``auto`` loading the
weights as they are when its export fails, the errors of a runtime asked for by name that cannot apply,
a missing runtime package named without any install attempt, and a real export of a YOLOv8n ``.pt`` (random
weights, built offline from Ultralytics' model YAML) to OpenVINO and ONNX in a private cache: loaded, detecting
on a vtest.avi frame like the PyTorch original, reused the second time, and exported again when damaged."""

from __future__ import annotations

import itertools
import logging
import re
import sys

import cv2
import numpy as np
import pytest
import torch

from pipeline.camera.detection import DetectorError
from pipeline.camera.runtimes import (
    MANIFEST,
    _no_install,
    choose_runtime,
    is_cuda,
    resolve_weights,
    weights_kind,
)
from pipeline.camera.sources import open_source
from pipeline.camera.tracking import DetectorOptions
from tests.support.paths import VTEST, YOLO_ONNX, YOLO_OPENVINO, needs_video

ALL = {"tensorrt", "openvino", "onnxruntime"}


@pytest.mark.parametrize(
    ("kind", "device", "available", "expected"),
    [
        ("pt", "0", ALL, "as-is"),  # CUDA: the .pt on CUDA, even with TensorRT (an engine only when asked for)
        ("pt", "cuda:1", {"tensorrt"}, "as-is"),
        ("pt", "0,1", ALL, "as-is"),
        ("pt", "cuda", {"openvino", "onnxruntime"}, "as-is"),
        ("pt", "cpu", ALL, "openvino"),  # CPU with OpenVINO
        ("pt", "cpu", {"onnxruntime"}, "onnx"),  # CPU without OpenVINO: ONNX Runtime
        ("pt", "cpu", set(), "as-is"),  # neither: PyTorch
        ("pt", "mps", ALL, "as-is"),  # another device: PyTorch
        ("onnx", "cpu", ALL, "as-is"),  # exports run as they are
        ("openvino", "cpu", ALL, "as-is"),
        ("engine", "0", ALL, "as-is"),
        ("other", "cpu", ALL, "as-is"),
    ],
)
def test_auto_picks_the_fastest_runtime_there_is(kind, device, available, expected):
    assert choose_runtime(kind, device, available) == expected


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_auto_loads_the_weights_as_they_are_when_its_export_fails(tmp_path, monkeypatch, caplog, no_pip):
    caplog.set_level(logging.WARNING, logger="pipeline.camera.runtimes")
    pt = tmp_path / "y.pt"
    pt.write_bytes(b"no checkpoint: the exporter fails on it")

    # an unwritable cache
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache folder should be")
    assert resolve_weights(str(pt), "auto", cache_dir=blocker) == str(pt)
    [warning] = warnings_of(caplog)
    assert "runtime auto could not export" in warning and "cannot write the detector export cache" in warning

    # the exporter's own failure
    caplog.clear()
    assert resolve_weights(str(pt), "auto", imgsz=320, cache_dir=tmp_path / "cache") == str(pt)
    assert any(re.search(r"(?s)could not export to \w+ .*exporting to \w+ failed", w) for w in warnings_of(caplog))
    assert [p for p in (tmp_path / "cache" / "detectors").iterdir() if p.is_dir()] == []  # nothing half-written

    # a missing package (OpenVINO absent, so ONNX, whose exporter needs onnx)
    caplog.clear()
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert resolve_weights(str(pt), "auto", cache_dir=tmp_path / "cache") == str(pt)
    assert any("needs onnx" in w and "pip install onnx" in w for w in warnings_of(caplog))
    assert no_pip == []


def test_an_export_asked_for_by_name_that_fails_is_an_error(tmp_path):
    pt = tmp_path / "y.pt"
    pt.write_bytes(b"no checkpoint: the exporter fails on it")
    with pytest.raises(DetectorError, match=r"(?s)exporting to openvino failed.*set detector.runtime to as-is"):
        resolve_weights(str(pt), "openvino", imgsz=320, cache_dir=tmp_path / "cache")


def test_weights_kinds_and_cuda_devices(tmp_path):
    ir = tmp_path / "custom"
    ir.mkdir()
    (ir / "model.xml").write_text("<net/>")
    assert [
        weights_kind(p) for p in ("y.pt", "y.onnx", "y.engine", "y_openvino_model", "y.xml", ir, "y.torchscript")
    ] == [
        "pt",
        "onnx",
        "engine",
        "openvino",
        "openvino",
        "openvino",
        "other",
    ]
    assert [is_cuda(d) for d in ("0", "0,1", "cuda", "cuda:0", "cpu", "mps", "")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_exports_and_missing_files_load_as_they_are(tmp_path):
    assert resolve_weights(str(YOLO_OPENVINO), "auto") == str(YOLO_OPENVINO)
    assert resolve_weights(str(YOLO_OPENVINO), "openvino") == str(YOLO_OPENVINO)  # already that export
    assert resolve_weights(str(YOLO_ONNX), "auto") == str(YOLO_ONNX)
    missing = str(tmp_path / "absent.pt")
    assert resolve_weights(missing, "openvino") == missing  # the loader names the missing file
    assert not (tmp_path / "cache").exists()


def test_a_runtime_that_cannot_apply_is_a_clear_error(tmp_path):
    pt = tmp_path / "y.pt"
    pt.write_bytes(b"not read")
    with pytest.raises(DetectorError, match=r"exports PyTorch \.pt weights.*as-is"):
        resolve_weights(str(YOLO_ONNX), "openvino")
    with pytest.raises(DetectorError, match="needs a CUDA device"):
        resolve_weights(str(pt), "engine", device="cpu")
    with pytest.raises(DetectorError, match="runs on the CPU"):
        resolve_weights(str(pt), "openvino", device="cuda:0")
    with pytest.raises(DetectorError, match="unknown; use one of auto, as-is"):
        resolve_weights(str(pt), "tflite")


def test_an_unwritable_cache_is_a_clear_error(tmp_path):
    pt = tmp_path / "y.pt"
    pt.write_bytes(b"weights")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(DetectorError, match=r"cannot write the detector export cache.*writable folder"):
        resolve_weights(str(pt), "openvino", cache_dir=blocker)


@pytest.fixture
def no_pip(monkeypatch) -> list:
    """Fails the test if Ultralytics runs pip (or uv); records the attempts."""
    from ultralytics.utils import checks

    calls = []
    monkeypatch.setattr(checks.subprocess, "check_output", lambda *a, **k: calls.append(a) or "")
    return calls


def test_a_missing_runtime_package_names_the_install_and_downloads_nothing(tmp_path, monkeypatch, no_pip):
    pt = tmp_path / "y.pt"
    pt.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "openvino", None)  # not importable
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(DetectorError, match=r"runtime openvino needs openvino.*pip install openvino"):
        resolve_weights(str(pt), "openvino", cache_dir=tmp_path / "cache")
    with pytest.raises(DetectorError, match=r"needs tensorrt.*crosscam\[tensorrt\]"):
        resolve_weights(str(pt), "engine", device="0", cache_dir=tmp_path / "cache")
    assert no_pip == []
    assert not (tmp_path / "cache" / "detectors").exists() or not any((tmp_path / "cache" / "detectors").iterdir())


def test_ultralytics_requirement_checks_never_install_during_an_export(no_pip):
    from ultralytics.utils.checks import check_requirements

    with _no_install():
        assert check_requirements("crosscam-no-such-package>=1.0") is False
    assert no_pip == []


@pytest.fixture(scope="module")
def random_pt(tmp_path_factory) -> str:
    """A YOLOv8n with random weights, saved as a .pt (Ultralytics builds it from its YAML, offline)."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "yolov8n.pt"
    YOLO("yolov8n.yaml").save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    source = open_source("c", str(VTEST))
    image = next(itertools.islice(source.frames(), 40, None)).image
    source.stop()
    return image


def raw_output(detector, images: np.ndarray | list[np.ndarray], size: tuple[int, int] = (320, 320)) -> torch.Tensor:
    """The network's own output (boxes and class scores before NMS) on ``images`` resized to ``size`` (h, w)."""
    images = [images] if isinstance(images, np.ndarray) else images
    x = torch.stack([torch.from_numpy(cv2.resize(i, size[::-1])).permute(2, 0, 1) for i in images]).float() / 255
    y = detector.model.predictor.model(x)
    return y[0] if isinstance(y, (list, tuple)) else y


def exports(caplog) -> int:
    return sum("exporting to" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
@needs_video
def test_a_pt_is_exported_once_to_openvino_and_runs_like_the_original(random_pt, frame, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="pipeline.camera.runtimes")
    cache = tmp_path / "cache"
    options = DetectorOptions(weights=random_pt, runtime="openvino", imgsz=320)
    original = DetectorOptions(weights=random_pt, runtime="as-is", imgsz=320).detector(cache)
    assert original.weights == random_pt and not cache.exists()

    exported = options.detector(cache)
    assert exports(caplog) == 1
    folder = cache / "detectors"
    [entry] = [p for p in folder.iterdir() if p.is_dir()]  # no temporary folder left behind
    assert exported.weights == str(entry / "yolov8n_openvino_model")
    [boxes] = exported.detect([frame])
    assert boxes.dtype == np.float32 and boxes.shape[1] == 6
    want, got = raw_output(original, frame), raw_output(exported, frame)
    assert got.shape == want.shape == (1, 84, 2100)
    assert torch.allclose(got, want, atol=1e-2, rtol=1e-3)  # the same network, fp32

    # a dynamic export: a batch is one inference, at the frames' own aspect (768 x 576 -> 320 x 256, as the .pt
    # runs), each frame's output as when run alone and as the original's
    assert exported.model.predictor.model.dynamic
    pair = [frame, np.ascontiguousarray(frame[:, ::-1])]
    got2 = raw_output(exported, pair, (256, 320))
    assert got2.shape == (2, 84, 1680)
    assert torch.allclose(got2, raw_output(original, pair, (256, 320)), atol=1e-2, rtol=1e-3)
    assert torch.allclose(got2[1:], raw_output(exported, pair[1], (256, 320)), atol=1e-4, rtol=1e-4)
    assert len(exported.detect(pair)) == 2  # (random weights score no person: the raw outputs above are the check)

    # reused: the same folder, untouched, no second export; auto picks OpenVINO for a .pt on this CPU
    manifest = entry / MANIFEST
    stamp = manifest.stat().st_mtime_ns
    again = DetectorOptions(weights=random_pt, runtime="auto", imgsz=320).detector(cache)
    assert again.weights == exported.weights and exports(caplog) == 1
    assert manifest.stat().st_mtime_ns == stamp

    # a damaged export (a truncated weights file) is found and exported again; what an export killed midway
    # left behind is cleared
    killed = folder / f"{entry.name}.tmp-killed"
    killed.mkdir()
    (killed / "yolov8n.bin").write_bytes(b"partial")
    [weights_bin] = (entry / "yolov8n_openvino_model").glob("*.bin")
    weights_bin.write_bytes(weights_bin.read_bytes()[:1000])
    repaired = options.detector(cache)
    assert exports(caplog) == 2 and any("is damaged" in r.getMessage() for r in caplog.records)
    assert not killed.exists()
    assert torch.allclose(raw_output(repaired, frame), want, atol=1e-2, rtol=1e-3)

    # so is one without its manifest (an export cut short, copied in by hand)
    manifest.unlink()
    options.detector(cache)
    assert exports(caplog) == 3 and manifest.is_file()
    assert [p.name for p in folder.iterdir() if p.is_dir()] == [entry.name]


@pytest.mark.slow
@needs_video
def test_a_pt_is_exported_to_onnx(random_pt, frame, tmp_path, no_pip):
    original = DetectorOptions(weights=random_pt, runtime="as-is", imgsz=320).detector()
    exported = DetectorOptions(weights=random_pt, runtime="onnx", imgsz=320).detector(tmp_path / "cache")
    assert exported.weights.endswith("yolov8n.onnx")
    assert exported.model.predictor.model.dynamic  # a batch is one inference
    assert torch.allclose(raw_output(exported, frame), raw_output(original, frame), atol=1e-2, rtol=1e-3)
    assert no_pip == []  # onnxslim is not installed here: the export does without it


@pytest.mark.slow
def test_a_site_exports_into_its_cache_dir_and_shares_the_detector(random_pt, tiny_checkpoints, redis_client, tmp_path):
    from models.embedder import load_embedder
    from pipeline.config import CrosscamConfig
    from pipeline.site import Site

    config = CrosscamConfig.model_validate(
        {"cache_dir": str(tmp_path / "site-cache"), "detector": {"weights": random_pt, "imgsz": 320}}
    )
    assert config.detector.runtime == "auto"
    process = Site(config, redis_client, "lobby").cameras(load_embedder(tiny_checkpoints["tiny_attention"]))
    try:
        a, b = process.stages("a"), process.stages("b")
        [service] = process.detectors.values()  # one detector for both cameras
        assert a.tracker.detect == b.tracker.detect == service.detect
        assert service.detector.weights.startswith(str(tmp_path / "site-cache" / "detectors"))
        assert service.detector.weights.endswith("_openvino_model")  # auto, on this CPU
    finally:
        process.stop()
