"""Plain, frozen descriptions of a model artifact.

They travel inside every artifact (checkpoint, ONNX ``metadata_props``, TensorRT engine header), so
a runtime never guesses input size, normalisation or feature size from a file name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from models.errors import ModelFileError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# 2: input.channels and link_threshold (a version-1 spec reads as RGB input with no calibrated threshold)
# 3: arch.neck (a version-1 or -2 spec reads as a BNNeck, the only neck those versions have)
SPEC_FORMAT_VERSION = 3


CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class InputSpec:
    """What the network expects: ``frames`` crops of ``height`` x ``width`` pixels.

    ``channels`` is the order the network's input planes are in (crops arrive RGB; ``bgr`` flips them in
    ``models.preprocess``). ``mean`` and ``std`` apply to pixel values scaled to [0, 1], in that order
    (R, G, B for ``rgb``; B, G, R for ``bgr``).
    """

    height: int = 256
    width: int = 128
    frames: int = 4
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channels: Literal["rgb", "bgr"] = "rgb"

    def __post_init__(self) -> None:
        if self.channels not in CHANNEL_ORDERS:
            raise ValueError(f"channels must be one of {CHANNEL_ORDERS}, got {self.channels!r}")


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to rebuild the network's modules (weights aside)."""

    name: str
    backbone: str
    head: str
    last_stride: int = 1
    feature_dim: int = 0  # filled in by the builder: the dimension of the returned feature
    num_classes: int = 0  # 0: no classifier (inference-only or not yet trained)
    head_options: dict[str, Any] = field(default_factory=dict)
    neck: str = "bnneck"  # "bnneck" (Luo et al. 2019) or "none" (the head's feature as it is)


@dataclass(frozen=True)
class ModelSpec:
    """An artifact's full description: architecture, input, identity, provenance and match threshold.

    ``link_threshold`` is the cosine similarity above which two tracklets are the same person, calibrated
    for this model (``crosscam calibrate``; how, in ``provenance["calibration"]``); None: not calibrated.
    """

    arch: ArchSpec
    input: InputSpec
    model_id: str = ""  # short hash of the weights; set when a checkpoint is saved
    provenance: dict[str, Any] = field(default_factory=dict)
    link_threshold: float | None = None

    @property
    def feature_dim(self) -> int:
        return self.arch.feature_dim

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format_version"] = SPEC_FORMAT_VERSION
        d["input"]["mean"] = list(self.input.mean)
        d["input"]["std"] = list(self.input.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "model file") -> ModelSpec:
        try:
            version = int(d.get("format_version", SPEC_FORMAT_VERSION))
            if version > SPEC_FORMAT_VERSION:
                raise ModelFileError(
                    f"{source}: model spec format {version} is newer than this crosscam understands "
                    f"({SPEC_FORMAT_VERSION}); upgrade crosscam"
                )
            inp = dict(d["input"])
            inp["mean"] = tuple(float(v) for v in inp["mean"])
            inp["std"] = tuple(float(v) for v in inp["std"])
            threshold = d.get("link_threshold")
            return cls(
                arch=ArchSpec(**d["arch"]),
                input=InputSpec(**inp),
                model_id=str(d.get("model_id", "")),
                provenance=dict(d.get("provenance", {})),
                link_threshold=None if threshold is None else float(threshold),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(
                f"{source}: malformed crosscam model spec ({type(e).__name__}: {e}); "
                "re-create the file with `crosscam export` or `crosscam model init`"
            ) from e
