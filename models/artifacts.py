"""Telling model artifacts apart by their content, never by their file name."""

from __future__ import annotations

import enum
import zipfile
from pathlib import Path

from models.errors import ModelFileError

ENGINE_MAGIC = b"CROSSCAM-TRT\x00"


class ArtifactKind(enum.Enum):
    CHECKPOINT = "checkpoint"  # torch.save zip archive written by models.checkpoint
    ONNX = "onnx"  # ONNX protobuf with crosscam metadata_props
    ENGINE = "engine"  # crosscam header + serialized TensorRT engine


def detect_artifact(path: Path) -> ArtifactKind:
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found; pass a checkpoint (.pt), an ONNX file or an engine")
    if not path.is_file():
        raise ModelFileError(f"{path}: is not a file; pass a checkpoint (.pt), an ONNX file or an engine")
    with path.open("rb") as f:
        head = f.read(len(ENGINE_MAGIC))
    if not head:
        raise ModelFileError(f"{path}: the file is empty; export or download it again")
    if head == ENGINE_MAGIC:
        return ArtifactKind.ENGINE
    if zipfile.is_zipfile(path):
        return ArtifactKind.CHECKPOINT
    # A serialized ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if head[0] == 0x08:
        return ArtifactKind.ONNX
    raise ModelFileError(
        f"{path}: not a crosscam checkpoint, ONNX model or TensorRT engine (unrecognised content); "
        "check the path, or re-create the file with `crosscam export`"
    )
