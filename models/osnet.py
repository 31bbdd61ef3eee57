"""OSNet (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification", ICCV 2019).

Module names follow deep-person-reid (torchreid), so its model-zoo files and BoxMOT's load as they are
(``--pretrained FILE``; the identity classifier they carry is dropped). The frame vector is torchreid's
eval-mode feature: ``fc(GAP(conv5))``, with ``fc`` = Linear + BatchNorm1d + ReLU to 512-d.

Layout at a 256x128 input (stride 16): conv1 7x7/2 + max-pool /2 -> conv2 (2 OS blocks, then 1x1 conv and
2x2 average pooling) -> conv3 (same) -> conv4 (2 OS blocks, no pooling) -> conv5 (1x1 conv): a 16x8 map.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.backbone_base import Backbone, WeightsUnavailableError, load_exact, read_state_dict
from models.errors import ModelFileError

log = logging.getLogger(__name__)

# backbone name -> channels of (conv1, conv2, conv3, conv4 = conv5)
OSNET_WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x0_25": (16, 64, 96, 128),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x1_0": (64, 256, 384, 512),
}
FEATURE_DIM = 512  # torchreid's fc output, the same at every width
# torchreid's ImageNet weights (deep-person-reid's osnet.py, ``pretrained_urls``)
IMAGENET_URLS = {
    "osnet_x0_25": "https://drive.google.com/uc?id=1rb8UN5ZzPKRc_xvtHlyDh-cSz88YX9hs",
    "osnet_x0_5": "https://drive.google.com/uc?id=16DGLbZukvVYgINws8u8deSaOqjybZ83i",
    "osnet_x0_75": "https://drive.google.com/uc?id=1uwA9fElHOk3ZogwbeY5GkLI6QPTX70Hq",
    "osnet_x1_0": "https://drive.google.com/uc?id=1LaG1EJpHrxdAxKnSCJ_i0u-nbxSAeiFY",
}


class ConvBN(nn.Module):
    """Convolution (no bias) + BatchNorm, then ReLU when ``relu``; keys ``conv.*``, ``bn.*``."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class LiteConv3x3(nn.Module):
    """1x1 pointwise (linear), then 3x3 depthwise + BatchNorm + ReLU: OSNet's "Lite 3x3"."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """The unified aggregation gate: ``x * sigmoid(fc2(relu(fc1(GAP(x)))))``, reduction 16, shared by all streams."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(g))))


def _stream(channels: int, depth: int) -> nn.Module:
    """``depth`` stacked Lite 3x3 layers: receptive field 3, 5, 7 or 9 (torchreid's conv2a holds one, unwrapped)."""
    layers = [LiteConv3x3(channels) for _ in range(depth)]
    return layers[0] if depth == 1 else nn.Sequential(*layers)


class OSBlock(nn.Module):
    """Omni-scale residual block: 1x1 reduce (x1/4) -> four streams of growing receptive field, each
    re-weighted by the shared gate and summed -> 1x1 expand (linear) -> + identity (1x1-projected when the
    channel count changes) -> ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = ConvBN(cin, mid)
        self.conv2a, self.conv2b, self.conv2c, self.conv2d = (_stream(mid, d) for d in (1, 2, 3, 4))
        self.gate = ChannelGate(mid)
        self.conv3 = ConvBN(mid, cout, relu=False)
        self.downsample = ConvBN(cin, cout, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        y = sum(self.gate(s(y)) for s in (self.conv2a, self.conv2b, self.conv2c, self.conv2d))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(y) + identity)


def _stage(cin: int, cout: int, pool: bool) -> nn.Sequential:
    """Two OS blocks, then (when ``pool``) a 1x1 conv and 2x2 average pooling halving the map."""
    layers: list[nn.Module] = [OSBlock(cin, cout), OSBlock(cout, cout)]
    if pool:
        layers.append(nn.Sequential(ConvBN(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNetBackbone(Backbone):
    """OSNet at one of ``OSNET_WIDTHS``; maps ``float[N,C,h,w]`` from conv5, frame vectors 512-d (fc)."""

    def __init__(self, name: str = "osnet_x0_25", last_stride: int = 1) -> None:
        super().__init__()
        if name not in OSNET_WIDTHS:
            raise ModelFileError(f"unknown OSNet width {name!r}; expected one of {', '.join(OSNET_WIDTHS)}")
        if last_stride != 1:
            raise ModelFileError(
                f"{name}: last_stride {last_stride} is not available; OSNet's last stage (conv4) never "
                "downsamples, its stride is 16: use last_stride 1"
            )
        c = OSNET_WIDTHS[name]
        self.name = name
        self.conv1 = ConvBN(3, c[0], kernel=7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c[0], c[1], pool=True)
        self.conv3 = _stage(c[1], c[2], pool=True)
        self.conv4 = _stage(c[2], c[3], pool=False)
        self.conv5 = ConvBN(c[3], c[3])
        self.fc = nn.Sequential(nn.Linear(c[3], FEATURE_DIM), nn.BatchNorm1d(FEATURE_DIM), nn.ReLU())
        self.out_channels = c[3]
        self.stride = 16
        self._init_weights()

    @property
    def vector_dim(self) -> int:
        return FEATURE_DIM

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """conv1 and the max-pool round up, the two average poolings round down."""

        def side(n: int) -> int:
            n = -(-n // 2)  # conv1
            n = -(-n // 2)  # max-pool
            return n // 4  # two 2x2 average poolings

        return side(height), side(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def frame_vectors(self, maps: torch.Tensor) -> torch.Tensor:
        """``float[N,C,h,w] -> float[N,512]``: ``fc(GAP(maps))``, torchreid's feature."""
        return self.fc(maps.mean(dim=(2, 3)))

    def load_pretrained(self, source: str) -> None:
        """Load a torchreid / BoxMOT OSNet file, its ``classifier.*`` dropped; ``"imagenet"`` is refused with the
        address of torchreid's ImageNet file, which needs a download.

        A file with no ``fc.*`` at all (a classification network without the re-ID feature layer) loads the
        trunk: ``fc`` keeps its fresh initialisation, which a warning says; any other missing key is an error.
        """
        if source == "imagenet":
            raise WeightsUnavailableError(
                f"{self.name}: no ImageNet weights are available offline; download torchreid's "
                f"{self.name}_imagenet.pth from {IMAGENET_URLS[self.name]} and pass that file instead of "
                "'imagenet' (or pass a torchreid / BoxMOT model-zoo file such as osnet_x0_25_msmt17.pth)"
            )
        state = read_state_dict(Path(source))
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        optional = () if any(k.startswith("fc.") for k in state) else ("fc.",)
        fresh = load_exact(self, state, source, self.name, hint=_width_hint(state, self.name), optional=optional)
        if fresh:
            log.warning(
                "%s: has no fc.* weights (the 512-d feature layer); %s's fc keeps its fresh initialisation: "
                "train the model before its features mean anything",
                source,
                self.name,
            )


def _width_hint(state: dict[str, torch.Tensor], own: str) -> str:
    """``"use an osnet_x1_0_<head> ..."`` when the file's first convolution has another width's channel count."""
    first = state.get("conv1.conv.weight")
    for name, channels in OSNET_WIDTHS.items():
        if name != own and first is not None and first.shape[0] == channels[0]:
            return f"use an {name}_<head> architecture (the file's conv1 has {channels[0]} channels, as {name})"
    return ""
