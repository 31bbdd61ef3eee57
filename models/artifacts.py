"""Telling model artifacts apart by their content, never by their file name, and reading or rewriting the
crosscam spec each one carries (no runtime needed)."""

from __future__ import annotations

import enum
import json
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from models.errors import ModelFileError
from models.formats import ENGINE_MAGIC, METADATA_KEY, no_spec_error
from models.spec import ModelSpec

# Where an OpenVINO IR written by `crosscam model import` keeps its spec: model.rt_info["crosscam"]["spec"].
IR_SPEC_PATH = ("crosscam", "spec")


class ArtifactKind(enum.Enum):
    CHECKPOINT = "checkpoint"  # torch.save zip archive written by models.checkpoint
    ONNX = "onnx"  # ONNX protobuf (crosscam's spec in metadata_props)
    ENGINE = "engine"  # crosscam header + serialized TensorRT engine
    OPENVINO = "openvino"  # OpenVINO IR: the .xml graph (crosscam's spec in its rt_info) beside its .bin weights


def detect_artifact(path: Path) -> ArtifactKind:
    if not path.exists():
        raise ModelFileError(
            f"{path}: model file not found; pass a checkpoint (.pt), an ONNX file, an OpenVINO .xml or an engine"
        )
    if not path.is_file():
        raise ModelFileError(
            f"{path}: is not a file; pass a checkpoint (.pt), an ONNX file, an OpenVINO .xml or an engine"
        )
    with path.open("rb") as f:
        head = f.read(512)
    if not head:
        raise ModelFileError(f"{path}: the file is empty; export or download it again")
    if head.startswith(ENGINE_MAGIC):
        return ArtifactKind.ENGINE
    if zipfile.is_zipfile(path):
        return ArtifactKind.CHECKPOINT
    # A serialized ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if head[0] == 0x08:
        return ArtifactKind.ONNX
    if head.lstrip().startswith(b"<") and b"<net" in head:
        return ArtifactKind.OPENVINO
    raise ModelFileError(
        f"{path}: not a crosscam checkpoint, ONNX model, OpenVINO IR or TensorRT engine (unrecognised content); "
        "check the path; a truncated or corrupt file must be downloaded or exported again"
    )


def ir_weights(xml: Path) -> Path:
    """The weights file of an OpenVINO IR: OpenVINO's own rule, the .xml's name with .bin."""
    return xml.with_suffix(".bin")


def read_spec(path: str | Path) -> ModelSpec:
    """The spec stored in any crosscam model artifact (checkpoint, ONNX, OpenVINO IR, engine)."""
    path = Path(path)
    kind = detect_artifact(path)
    if kind is ArtifactKind.CHECKPOINT:
        from models.checkpoint import read_checkpoint

        return read_checkpoint(path)[0]
    if kind is ArtifactKind.ONNX:
        from models.export import read_onnx_spec

        return read_onnx_spec(path)
    if kind is ArtifactKind.OPENVINO:
        return _read_ir_spec(path)
    from models.engine import engine_spec, read_engine_file

    return engine_spec(read_engine_file(path)[0], str(path))


def write_spec(path: str | Path, spec: ModelSpec) -> None:
    """Replace the spec stored in an artifact, atomically, leaving its weights as they are.

    For a calibrated threshold or provenance: the architecture, input and model id must stay those of the
    weights (a different architecture is a ``ModelFileError``)."""
    path = Path(path)
    kind = detect_artifact(path)
    old = read_spec(path)
    if (old.arch, old.model_id) != (spec.arch, spec.model_id):
        raise ModelFileError(
            f"{path}: the new spec describes other weights ({spec.arch.name}:{spec.model_id}, the file holds "
            f"{old.arch.name}:{old.model_id}); only the threshold, provenance and input normalisation may change"
        )
    tmp = path.with_name(path.name + ".tmp")
    try:
        if kind is ArtifactKind.CHECKPOINT:
            _write_checkpoint_spec(path, tmp, spec)
        elif kind is ArtifactKind.ONNX:
            _write_onnx_spec(path, tmp, spec)
        elif kind is ArtifactKind.OPENVINO:
            _write_ir_spec(path, tmp, spec)
        else:
            from models.engine import read_engine_file, write_engine_file

            header, engine = read_engine_file(path)
            write_engine_file(path, header | {"spec": spec.to_dict()}, engine)
            return
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_checkpoint_spec(path: Path, tmp: Path, spec: ModelSpec) -> None:
    import io

    import torch

    data = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    data["spec"] = spec.to_dict()  # every other entry (weights, anything a trainer added) as it was
    torch.save(data, tmp)


def _write_onnx_spec(path: Path, tmp: Path, spec: ModelSpec) -> None:
    import onnx

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props} | {METADATA_KEY: json.dumps(spec.to_dict())}
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(tmp))


def _parse_ir(path: Path) -> ElementTree.ElementTree:
    try:
        return ElementTree.parse(path)
    except ElementTree.ParseError as e:
        raise ModelFileError(
            f"{path}: the OpenVINO IR is truncated or corrupt ({e}); download or import it again"
        ) from e


def _ir_spec_element(tree: ElementTree.ElementTree) -> ElementTree.Element | None:
    return tree.getroot().find("rt_info/" + "/".join(IR_SPEC_PATH))


def _read_ir_spec(path: Path) -> ModelSpec:
    element = _ir_spec_element(_parse_ir(path))
    if element is None or "value" not in element.attrib:
        raise no_spec_error(path, "OpenVINO IR")
    try:
        return ModelSpec.from_dict(json.loads(element.attrib["value"]), source=str(path))
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: corrupt crosscam spec in the IR's rt_info ({e}); import the model again") from e


def _write_ir_spec(path: Path, tmp: Path, spec: ModelSpec) -> None:
    tree = _parse_ir(path)
    element = _ir_spec_element(tree)
    if element is None:
        raise no_spec_error(path, "OpenVINO IR")
    element.set("value", json.dumps(spec.to_dict()))
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
