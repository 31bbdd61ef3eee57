"""The network: shapes, attention, heads, BNNeck, backbones."""

from __future__ import annotations

import pytest
import torch

from models.architectures import ARCHITECTURES, arch_spec
from models.backbones import ResNetBackbone, TinyBackbone
from models.checkpoint import build_model
from models.errors import ClipError, ModelFileError
from tests.support.models import TINY_ARCHS, make_model


@pytest.mark.parametrize("arch", TINY_ARCHS)
@pytest.mark.parametrize("frames", [1, 4, 8])
def test_eval_shapes_and_attention(arch, frames):
    model = make_model(arch)
    spec = model.input_spec
    out = model(torch.randn(3, frames, 3, spec.height, spec.width))
    assert out.feature.shape == (3, model.arch.feature_dim)
    assert out.attention.shape == (3, frames)
    assert out.logits is None and out.intermediate is None
    if not arch.endswith("gru_rank"):  # All for One's frame weights are signed (Eq. 6b)
        assert torch.all(out.attention >= 0)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(3))


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_training_outputs(arch):
    model = make_model(arch, num_classes=7).train()
    spec = model.input_spec
    out = model(torch.randn(4, 4, 3, spec.height, spec.width))
    assert out.logits.shape == (4, 7)
    assert out.feature.shape == (4, model.arch.feature_dim)
    if arch.endswith("gru_rank"):
        assert out.intermediate.shape == (4, 4, model.arch.feature_dim)
        # the clip feature is the last fused feature f_T
        torch.testing.assert_close(out.intermediate[:, -1], out.feature)
    else:
        assert out.intermediate is None


def test_eval_feature_is_the_bnneck_output():
    model = make_model("tiny_attention")
    x = torch.randn(2, 4, 3, 128, 64)
    maps = model.backbone(x.flatten(0, 1))
    raw = model.head(maps.reshape(2, 4, *maps.shape[1:])).feature
    torch.testing.assert_close(model(x).feature, model.neck.bn(raw))


def test_bnneck_bias_is_frozen_and_classifier_has_no_bias():
    model = make_model("tiny_attention", num_classes=5)
    assert model.neck.bn.bias.requires_grad is False
    assert model.neck.classifier.bias is None
    assert "neck.bn.bias" not in {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ["tiny_attention", "tiny_avg"])
def test_repeated_frame_gives_the_single_frame_feature(arch):
    """Attention and average pooling are weighted means: T copies of a frame pool to that frame."""
    model = make_model(arch)
    frame = torch.randn(1, 1, 3, 128, 64)
    one = model(frame).feature
    many = model(frame.expand(1, 6, 3, 128, 64).contiguous()).feature
    torch.testing.assert_close(one, many, rtol=1e-4, atol=1e-5)


def test_attention_head_weights_frames_unequally():
    model = make_model("tiny_attention")
    out = model(torch.randn(2, 8, 3, 128, 64) * torch.linspace(0.1, 3, 8).view(1, 8, 1, 1, 1))
    assert out.attention.max() - out.attention.min() > 1e-3


def test_avg_head_attention_is_uniform():
    out = make_model("tiny_avg")(torch.randn(2, 5, 3, 128, 64))
    torch.testing.assert_close(out.attention, torch.full((2, 5), 0.2))


@pytest.mark.parametrize("depth,channels", [(18, 512), (34, 512), (50, 2048)])
def test_resnet_last_stride_one(depth, channels):
    backbone = ResNetBackbone(depth, last_stride=1).eval()
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 256, 128)).shape == (1, channels, 16, 8)
    assert backbone.stride == 16


def test_resnet_last_stride_two_is_the_torchvision_default():
    with torch.no_grad():
        assert ResNetBackbone(18, last_stride=2).eval()(torch.zeros(1, 3, 256, 128)).shape[2:] == (8, 4)


def test_tiny_backbone_is_small():
    backbone = TinyBackbone()
    assert sum(p.numel() for p in backbone.parameters()) < 2_000_000
    assert backbone(torch.zeros(1, 3, 128, 64)).shape == (1, 256, 8, 4)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_named_architecture_builds(arch):
    spec, input_spec = arch_spec(arch)
    model = build_model(spec, input_spec).eval()
    assert model.arch.feature_dim > 0
    with torch.no_grad():
        out = model(torch.randn(1, 2, 3, input_spec.height, input_spec.width))
    assert out.feature.shape == (1, model.arch.feature_dim)


def test_bad_clip_shape_is_a_clear_error():
    model = make_model("tiny_attention")
    with pytest.raises(ClipError, match=r"\[B,T,3,H,W\]"):
        model(torch.randn(4, 3, 128, 64))


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(ModelFileError, match="tiny_attention"):
        arch_spec("resnet51_attention")


def test_imagenet_weights_from_a_local_file(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    spec, input_spec = arch_spec("resnet18_attention")
    model = build_model(spec, input_spec, pretrained=str(tmp_path / "r18.pth"))
    torch.testing.assert_close(model.backbone.stem[0].weight, reference.conv1.weight)
    torch.testing.assert_close(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_imagenet_weights_from_a_wrong_file_are_refused(tmp_path):
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    spec, input_spec = arch_spec("resnet18_attention")
    with pytest.raises(ModelFileError, match="not a torchvision ResNet-18"):
        build_model(spec, input_spec, pretrained=str(tmp_path / "other.pth"))
    with pytest.raises(ModelFileError, match="not found"):
        build_model(spec, input_spec, pretrained=str(tmp_path / "missing.pth"))


def test_imagenet_download_loads_or_fails_with_advice(tmp_path, monkeypatch):
    """With a network the weights load; without one (CI, this project's machines) the error says
    which URL to fetch elsewhere and how to pass the file."""
    from models.backbone_base import WeightsUnavailableError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec, input_spec = arch_spec("resnet18_attention")
    try:
        model = build_model(spec, input_spec, pretrained="imagenet")
    except WeightsUnavailableError as e:
        assert "download.pytorch.org" in str(e) and "pass the file" in str(e)
    else:
        assert model.backbone.stem[0].weight.abs().sum() > 0


def test_attention_projection_equals_the_full_map_convolution():
    """The head's matrix multiply computes exactly the seed code's Conv2d with a whole-map kernel."""
    import torch.nn.functional as F

    head = make_model("tiny_attention").head
    maps = torch.randn(2, 3, 256, 8, 4)
    via_conv = F.relu(head.spatial(maps.flatten(0, 1))).reshape(2, 3, -1)
    via_gemm = F.relu(F.linear(maps.flatten(2), head.spatial.weight.flatten(1), head.spatial.bias))
    torch.testing.assert_close(via_gemm, via_conv, rtol=1e-4, atol=1e-5)
    with pytest.raises(ClipError, match="feed frames of the model's input size"):
        head(torch.randn(2, 3, 256, 9, 4))
