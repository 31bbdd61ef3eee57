"""What marks a crosscam model file: the engine container's magic bytes, the ONNX metadata key that holds the
spec, content hashes, and the error for a model file without a spec. No runtime needed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from models.errors import ModelFileError

ENGINE_MAGIC = b"CROSSCAM-TRT\x00"  # the first bytes of a crosscam TensorRT engine file (models.engine)
METADATA_KEY = "crosscam"  # the ONNX metadata_props key that holds the spec as JSON (models.export)


class MissingSpecError(ModelFileError):
    """A model file that carries no crosscam spec: a foreign model, to be imported first."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def no_spec_error(path: Path | str, what: str) -> MissingSpecError:
    """The error for a model file without crosscam's spec, saying how to import it."""
    return MissingSpecError(
        f"{path}: has no crosscam spec (this {what} carries no crosscam metadata: input size, channels, "
        f"normalisation, feature size); import it with `crosscam model import {path} --input HxW --channels rgb|bgr "
        "--mean imagenet|none|R,G,B --out MODEL`, or export a crosscam checkpoint with `crosscam export`"
    )
