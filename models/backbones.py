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

from crosscam.errors import CrosscamError
from models.errors import ModelFileError


class WeightsUnavailableError(CrosscamError):
    """Pre-trained weights could not be downloaded or read."""


class Backbone(nn.Module):
    """A CNN trunk: ``forward(float[N,3,H,W]) -> float[N,out_channels,h,w]``.

    ``frame_vectors`` turns those maps into one ``vector_dim``-d vector per frame: global average pooling,
    unless the backbone has a frame head of its own (OSNet's fc). Temporal heads pool these vectors and
    may score frames on the maps.
    """

    name: str = ""
    out_channels: int
    stride: int

    @property
    def vector_dim(self) -> int:
        return self.out_channels

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` of the maps of a ``height`` x ``width`` input (every strided layer here rounds up)."""
        return -(-height // self.stride), -(-width // self.stride)

    def frame_vectors(self, maps: torch.Tensor) -> torch.Tensor:
        """``float[N,C,h,w] -> float[N,vector_dim]``: global average pooling."""
        return maps.mean(dim=(2, 3))

    def load_pretrained(self, source: str) -> None:
        """Load pre-trained weights: ``source`` is ``"imagenet"`` or a local weights file."""
        raise ModelFileError(f"backbone {self.name!r} has no pre-trained weights; drop --pretrained")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch weights file: a plain state dict, or a training checkpoint holding one under
    ``state_dict`` (torchreid, BoxMOT); a ``module.`` prefix (``DataParallel``) is removed."""
    if not path.is_file():
        raise ModelFileError(f"{path}: pre-trained weights file not found; pass an existing .pth file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(
            f"{path}: cannot read as a PyTorch state dict ({type(e).__name__}: {e}); "
            "the file may be truncated, download it again"
        ) from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(
            f"{path}: expected a state dict of tensors, found {type(state).__name__}; pass a PyTorch weights file "
            "(torch.save of a model's state_dict)"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _shape(t: torch.Tensor | torch.Size) -> str:
    return "[" + ",".join(str(s) for s in (t.shape if isinstance(t, torch.Tensor) else t)) + "]"


def _listed(keys: list[str], limit: int = 3) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_exact(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    expected: str,
    hint: str = "",
    optional: tuple[str, ...] = (),
) -> list[str]:
    """Load ``state`` into ``module``: every key present with its shape, nothing extra.

    A missing ``num_batches_tracked`` is allowed (files from before PyTorch 0.4.1 lack it), and so are missing
    keys under an ``optional`` prefix: those keep their initialisation and are returned. Anything else is a
    ``ModelFileError`` naming ``source``, the first mismatches, ``expected`` (the architecture) and ``hint``
    (what the file seems to hold, when the caller can tell).
    """
    problems, absent = _mismatches(module, state, expected, optional)
    if problems:
        advice = hint or "choose the architecture these weights belong to"
        raise ModelFileError(
            f"{source}: weights for another architecture: {'; '.join(problems)}; pass weights of {expected} or {advice}"
        )
    module.load_state_dict(state, strict=False)
    return absent


def _mismatches(
    module: nn.Module, state: dict[str, torch.Tensor], expected: str, optional: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """``(problems, absent)``: what keeps ``state`` from loading exactly into ``module`` (shapes that differ, keys
    missing or unexpected), and the missing keys under an ``optional`` prefix."""
    own = module.state_dict()
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape]
    not_in_file = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    absent = [k for k in not_in_file if k.startswith(optional)]
    missing = [k for k in not_in_file if k not in absent]
    unexpected = [k for k in state if k not in own]
    problems = [f"{k} has shape {_shape(state[k])}, {expected} expects {_shape(own[k])}" for k in mismatched[:3]]
    if len(mismatched) > 3:
        problems.append(f"{len(mismatched) - 3} more shapes differ")
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listed(unexpected)}")
    return problems, absent


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
        problems, _ = _mismatches(self, renamed, self.name)
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
    # osnet and mobilenet subclass Backbone, so they are imported here rather than at the top
    from models.mobilenet import MobileNetV2Backbone
    from models.osnet import OSNET_WIDTHS, OSNetBackbone

    if name.startswith("resnet") and name[6:] in ("18", "34", "50"):
        return ResNetBackbone(int(name[6:]), last_stride)
    if name == "tiny":
        return TinyBackbone(last_stride)
    if name in OSNET_WIDTHS:
        return OSNetBackbone(name, last_stride)
    if name == "mobilenetv2":
        return MobileNetV2Backbone(last_stride)
    raise ModelFileError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
