"""Plain, frozen descriptions of a model artifact.

They travel inside every artifact (checkpoint, ONNX ``metadata_props``, TensorRT engine header), so
a runtime never guesses input size, normalisation or feature size from a file name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from models.errors import ModelFileError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SPEC_FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """What the network expects: ``frames`` RGB crops of ``height`` x ``width`` pixels.

    ``mean`` and ``std`` apply to pixel values scaled to [0, 1].
    """

    height: int = 256
    width: int = 128
    frames: int = 4
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


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


@dataclass(frozen=True)
class ModelSpec:
    """An artifact's full description: architecture, input, identity and provenance."""

    arch: ArchSpec
    input: InputSpec
    model_id: str = ""  # short hash of the weights; set when a checkpoint is saved
    provenance: dict[str, Any] = field(default_factory=dict)

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
            return cls(
                arch=ArchSpec(**d["arch"]),
                input=InputSpec(**inp),
                model_id=str(d.get("model_id", "")),
                provenance=dict(d.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(
                f"{source}: malformed crosscam model spec ({type(e).__name__}: {e}); "
                "re-create the file with `crosscam export` or `crosscam model init`"
            ) from e
