"""Frame backbones: ``float[N,3,H,W] -> float[N,C,h,w]`` feature maps, and the frame vectors pooled from them.

ResNets follow the bag of tricks (Luo et al. 2019): the first block of ``layer4`` gets stride
``last_stride`` (1 by default), so a 256x128 crop gives a 16x8 map instead of 8x4. OSNet lives in
``models/osnet.py``, MobileNetV2 in ``models/mobilenet.py``.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import nn

from models.backbone_base import Backbone, WeightsUnavailableError, mismatches, read_state_dict
from models.errors import ModelFileError
from models.mobilenet import MobileNetV2Backbone
from models.osnet import OSNET_WIDTHS, OSNetBackbone


class ResNetBackbone(Backbone):
    """torchvision ResNet without its pooling and classifier."""

    def __init__(self, depth: int, last_stride: int = 1) -> None:
        super().__init__()
        import torchvision

        factory = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}[
            depth
        ]
        net = factory(weights=None)
        first = net.layer4[0]
        # BasicBlock strides in conv1, Bottleneck in conv2 (torchvision's "ResNet v1.5").
        strided = first.conv2 if depth == 50 else first.conv1
        strided.stride = (last_stride, last_stride)
        first.downsample[0].stride = (last_stride, last_stride)
        self.depth = depth
        self.name = f"resnet{depth}"
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = 2048 if depth == 50 else 512
        self.stride = 16 * last_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def load_pretrained(self, source: str) -> None:
        """Load ImageNet weights: ``source`` is ``"imagenet"`` (torchvision download) or a local torchvision file
        (its ``fc`` classifier dropped)."""
        state = _download_imagenet(self.depth) if source == "imagenet" else read_state_dict(Path(source))
        renamed = {}
        for k, v in state.items():
            head, _, rest = k.partition(".")
            if head == "fc":
                continue
            if head in ("conv1", "bn1"):
                k = f"stem.{0 if head == 'conv1' else 1}.{rest}"
            renamed[k] = v
        problems, _ = mismatches(self, renamed, self.name)
        if problems:
            raise ModelFileError(
                f"{source}: not a torchvision ResNet-{self.depth} state dict ({'; '.join(problems)}); pass "
                f"torchvision's {self.name} ImageNet weights, or choose the architecture these weights belong to"
            )
        self.load_state_dict(renamed, strict=False)


def _download_imagenet(depth: int) -> dict[str, torch.Tensor]:
    import torchvision

    weights = {
        18: torchvision.models.ResNet18_Weights,
        34: torchvision.models.ResNet34_Weights,
        50: torchvision.models.ResNet50_Weights,
    }[depth].IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise WeightsUnavailableError(
            f"could not download ImageNet weights for ResNet-{depth} ({e}). On a machine without "
            f"network access, download {weights.url} elsewhere and pass the file instead of 'imagenet'"
        ) from e


def _conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class TinyBackbone(Backbone):
    """A four-stage CNN (about 1.2 M parameters) that trains on two CPU cores in minutes.

    For demos, tests and synthetic data; not meant to reach the papers' accuracy.
    """

    name = "tiny"

    def __init__(self, last_stride: int = 2, width: int = 32) -> None:
        super().__init__()
        c = [width, width * 2, width * 4, width * 8]
        layers = _conv_bn_relu(3, c[0], 2)
        for cin, cout, s in ((c[0], c[1], 2), (c[1], c[2], 2), (c[2], c[3], last_stride)):
            layers += _conv_bn_relu(cin, cout, s) + _conv_bn_relu(cout, cout, 1)
        self.body = nn.Sequential(*layers)
        self.out_channels = c[3]
        self.stride = 8 * last_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "tiny",
    "osnet_x0_25",
    "osnet_x0_5",
    "osnet_x0_75",
    "osnet_x1_0",
    "mobilenetv2",
)


def build_backbone(name: str, last_stride: int) -> Backbone:
    """``name`` is one of ``BACKBONES``."""
    if name.startswith("resnet") and name[6:] in ("18", "34", "50"):
        return ResNetBackbone(int(name[6:]), last_stride)
    if name == "tiny":
        return TinyBackbone(last_stride)
    if name in OSNET_WIDTHS:
        return OSNetBackbone(name, last_stride)
    if name == "mobilenetv2":
        return MobileNetV2Backbone(last_stride)
    raise ModelFileError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
