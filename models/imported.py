"""Foreign frame-level re-ID models (an OpenVINO IR, or an ONNX file without crosscam's spec) made crosscam
artifacts.

A foreign model maps frames ``float[N,3,H,W]`` to features ``float[N,D]``. Importing wraps its graph so the
artifact takes crosscam's clips ``float[B,T,3,H,W]`` and returns ``feature float[B,D]`` (the mean of the T
frame features) and ``attention float[B,T]`` (uniform, 1/T): temporal pooling sits inside the file, so every
runtime runs it unchanged. The artifact carries the spec the user states (input size, channel order,
normalisation, frames); nothing is read from file names. Written as ONNX (onnxruntime, OpenVINO, TensorRT) or
as an OpenVINO IR (OpenVINO), and checked against the source model before it is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.artifacts import IR_SPEC_PATH, ArtifactKind, detect_artifact, ir_weights, read_spec
from models.errors import ModelFileError
from models.export import INPUT_NAME, OUTPUT_NAMES
from models.formats import METADATA_KEY, MissingSpecError, sha256_file
from models.spec import ArchSpec, InputSpec, ModelSpec

Format = Literal["onnx", "ir"]
IMPORTED_BACKBONE = "imported"  # ArchSpec.backbone of every imported model: its network is the foreign graph
IMPORT_MIN_COSINE = 0.9999  # the written artifact against the source model, frame features averaged
_FRAME_EMBEDDER = "crosscam imports frame-level re-ID models: frames [N,3,H,W] -> features [N,D]"


@dataclass(frozen=True)
class ForeignModel:
    """A foreign model read and checked: its source files, format and frame-level graph (an ``openvino.Model``
    with a dynamic batch), and its feature size."""

    path: Path
    kind: ArtifactKind  # ONNX or OPENVINO
    graph: Any
    feature_dim: int

    @property
    def weights(self) -> Path:
        return ir_weights(self.path) if self.kind is ArtifactKind.OPENVINO else self.path


def read_foreign(path: Path, height: int, width: int) -> ForeignModel:
    """Read a foreign IR or ONNX model and check it is a frame-level embedder for ``height`` x ``width`` input:
    one float input ``[N,3,H,W]`` (H, W fixed ones must equal the given size), one output ``[N,D]``."""
    from models.backends.ov_runtime import import_openvino, read_model

    path = Path(path)
    kind = detect_artifact(path)
    if kind not in (ArtifactKind.ONNX, ArtifactKind.OPENVINO):
        raise ModelFileError(f"{path}: a crosscam {kind.value}, not a foreign model; use it as it is")
    if _has_crosscam_spec(path, kind):
        raise ModelFileError(f"{path}: already carries a crosscam spec; use it as it is (`crosscam model info`)")
    ov = import_openvino()
    graph = read_model(ov.Core(), path)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelFileError(
            f"{path}: the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; {_FRAME_EMBEDDER}"
        )
    shape = graph.input(0).get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        raise ModelFileError(f"{path}: the model's input {shape} is not an image batch; {_FRAME_EMBEDDER}")
    channels, h, w = (shape[i] for i in (1, 2, 3))
    if channels.is_static and channels.get_length() != 3:
        raise ModelFileError(
            f"{path}: the model takes {channels.get_length()}-channel input; crosscam feeds 3-channel colour crops"
        )
    if (h.is_static and h.get_length() != height) or (w.is_static and w.get_length() != width):
        raise ModelFileError(
            f"{path}: the model takes 3x{_dim(h)}x{_dim(w)} input, --input says {height}x{width}; "
            f"import it with --input {_dim(h)}x{_dim(w)}"
        )
    if graph.input(0).get_element_type().get_type_name() not in ("f32", "f16"):
        raise ModelFileError(
            f"{path}: the model's input is {graph.input(0).get_element_type()}, not float; {_FRAME_EMBEDDER}"
        )
    try:
        graph.reshape({graph.input(0): ov.PartialShape([-1, 3, height, width])})
    except Exception as e:
        raise ModelFileError(
            f"{path}: the model does not accept a variable number of frames per call ({str(e).splitlines()[-1]}); "
            "export it with a dynamic batch dimension"
        ) from e
    out = graph.output(0).get_partial_shape()
    if out.rank.is_dynamic or out.rank.get_length() != 2 or out[1].is_dynamic:
        raise ModelFileError(f"{path}: the model's output {out} is not one feature vector per frame; {_FRAME_EMBEDDER}")
    return ForeignModel(path, kind, graph, out[1].get_length())


def _dim(d: Any) -> str:
    return str(d.get_length()) if d.is_static else "?"


def _has_crosscam_spec(path: Path, kind: ArtifactKind) -> bool:
    try:
        read_spec(path)
    except MissingSpecError:
        return False
    except ModelFileError as e:
        if kind is ArtifactKind.ONNX:
            raise ModelFileError(
                f"{path}: not a readable ONNX file; it is truncated or corrupt: download it again"
            ) from e
        raise
    return True


def imported_spec(
    model: ForeignModel, input_spec: InputSpec, name: str, licence: str | None, command: str | None
) -> ModelSpec:
    """The spec an imported model carries: its input as stated, feature size from the graph, the weights' hash as
    model id, and where it came from."""
    files = [model.path] + ([model.weights] if model.weights != model.path else [])
    hashes = {f.name: sha256_file(f) for f in files}
    provenance: dict[str, Any] = {
        "imported_from": str(model.path),
        "source_format": "openvino-ir" if model.kind is ArtifactKind.OPENVINO else "onnx",
        "sha256": hashes,
        "pooling": "mean of the frame features; attention uniform",
        "trained": True,  # by the source model's authors; crosscam did not train it
    }
    if licence:
        provenance["licence"] = licence
    if command:
        provenance["command"] = command
    arch = ArchSpec(name=name, backbone=IMPORTED_BACKBONE, head="avg", feature_dim=model.feature_dim)
    return ModelSpec(arch=arch, input=input_spec, model_id=hashes[model.weights.name][:16], provenance=provenance)


def import_model(
    source: str | Path,
    out: str | Path,
    input_spec: InputSpec,
    fmt: Format | None = None,
    name: str | None = None,
    licence: str | None = None,
    command: str | None = None,
) -> tuple[ModelSpec, float]:
    """Write ``source`` (a foreign IR .xml or ONNX file) as a crosscam artifact at ``out``; returns its spec and
    the check's min cosine.

    ``fmt``: ``onnx`` or ``ir`` (default: the source's own format); an IR is ``out`` (.xml) with its weights
    beside it (.bin). The artifact's features are checked against the source model's frame features,
    averaged, before it is kept (``ModelFileError`` below ``IMPORT_MIN_COSINE``)."""
    source, out = Path(source), Path(out)
    model = read_foreign(source, input_spec.height, input_spec.width)
    fmt = fmt or ("ir" if model.kind is ArtifactKind.OPENVINO else "onnx")
    if fmt == "ir" and out.suffix != ".xml":
        raise ModelFileError(f"{out}: an OpenVINO IR is written as NAME.xml with NAME.bin beside it; end --out in .xml")
    if out.resolve() in (source.resolve(), model.weights.resolve()):
        raise ModelFileError(f"{out}: would overwrite the source model; choose another --out")
    spec = imported_spec(model, input_spec, name or source.stem, licence, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".import-") as tmp:
        staged = Path(tmp) / out.name
        if fmt == "onnx":
            _save_onnx(_wrap_onnx(_frame_onnx(model), spec), staged)
        else:
            _save_ir(_wrap_ir(model, spec), staged)
        cosine = check_import(model, staged)
        if fmt == "ir":
            shutil.move(ir_weights(staged), ir_weights(out))
        os.replace(staged, out)
    return spec, cosine


def check_import(model: ForeignModel, artifact: Path, clips: int = 2) -> float:
    """Min cosine between the artifact's features and the source model's frame features averaged, on random
    image-like clips; ``ModelFileError`` below ``IMPORT_MIN_COSINE``."""
    from models.backends.ov_runtime import compile_config, import_openvino
    from models.embedder import load_embedder
    from models.export import min_cosine, random_clips
    from models.preprocess import preprocess

    embedder = load_embedder(artifact, device="cpu")
    spec = embedder.spec.input
    pixels = random_clips(clips, spec.frames, spec.height, spec.width, seed=1)
    frames = preprocess(pixels, spec).reshape(-1, 3, spec.height, spec.width)
    compiled = import_openvino().Core().compile_model(model.graph, "CPU", compile_config())
    reference = compiled(frames)[0].reshape(clips, spec.frames, -1).mean(axis=1)
    features, attention = embedder.embed(pixels)
    cosine = min_cosine(reference, features)
    if cosine < IMPORT_MIN_COSINE or not np.allclose(attention, 1.0 / spec.frames, atol=1e-6):
        raise ModelFileError(
            f"{model.path}: the imported model does not reproduce the source's averaged frame features "
            f"(min cosine {cosine:.6f} < {IMPORT_MIN_COSINE}); nothing was written"
        )
    return cosine


def _frame_onnx(model: ForeignModel) -> Any:
    """The frame-level graph as ONNX: the file itself, or the IR converted op by op."""
    import onnx

    if model.kind is ArtifactKind.ONNX:
        return onnx.load(str(model.path))
    from models.ir_onnx import ir_to_onnx

    return ir_to_onnx(model.graph, str(model.path))


def _opset(proto: Any) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _wrap_onnx(frame: Any, spec: ModelSpec) -> Any:
    """Clips ``[B,T,3,H,W]`` -> frames ``[B*T,3,H,W]`` -> the foreign graph -> ``[B,T,D]`` -> mean over T."""
    from onnx import TensorProto, helper, numpy_helper

    opset = _opset(frame)
    if opset < 11:
        raise ModelFileError(f"{spec.provenance['imported_from']}: ONNX opset {opset} is too old; export with >= 11")
    graph = frame.graph
    initializers = {t.name for t in graph.initializer}
    (frames_in,) = [i.name for i in graph.input if i.name not in initializers]
    (frame_out,) = [o.name for o in graph.output]
    taken = initializers | {n for node in graph.node for n in (*node.input, *node.output)} | {frames_in, frame_out}
    clash = taken & {INPUT_NAME, *OUTPUT_NAMES}
    if clash:
        raise ModelFileError(
            f"{spec.provenance['imported_from']}: the graph already names tensors {sorted(clash)}, which crosscam's "
            "input and outputs take; rename them in the source model"
        )
    h, w = spec.input.height, spec.input.width

    def const(name: str, value: list[int]) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), f"crosscam/{name}"))
        return f"crosscam/{name}"

    def reduce(op: str, x: str, out: str, keepdims: int) -> Any:
        uses_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
        if uses_input:
            return helper.make_node(op, [x, const(f"{out}_axes", [1])], [out], keepdims=keepdims)
        return helper.make_node(op, [x], [out], axes=[1], keepdims=keepdims)

    head = [
        helper.make_node("Reshape", [INPUT_NAME, const("frame_shape", [-1, 3, h, w])], [frames_in]),
    ]
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    tail = [
        helper.make_node("Shape", [INPUT_NAME], ["crosscam/clip_shape"]),
        helper.make_node("Slice", ["crosscam/clip_shape", const("zero", [0]), const("two", [2])], ["crosscam/bt"]),
        helper.make_node("Concat", ["crosscam/bt", const("minus_one", [-1])], ["crosscam/btd"], axis=0),
        helper.make_node("Reshape", [frame_out, "crosscam/btd"], ["crosscam/per_frame"]),
        reduce("ReduceMean", "crosscam/per_frame", OUTPUT_NAMES[0], keepdims=0),
        helper.make_node("ConstantOfShape", ["crosscam/bt"], ["crosscam/ones"], value=one),
        reduce("ReduceSum", "crosscam/ones", "crosscam/frames", keepdims=1),
        helper.make_node("Div", ["crosscam/ones", "crosscam/frames"], [OUTPUT_NAMES[1]]),
    ]
    nodes = [*head, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", "frames", 3, h, w]),
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(OUTPUT_NAMES[0], TensorProto.FLOAT, ["batch", spec.feature_dim]),
            helper.make_tensor_value_info(OUTPUT_NAMES[1], TensorProto.FLOAT, ["batch", "frames"]),
        ]
    )
    graph.name = spec.arch.name
    meta = {p.key: p.value for p in frame.metadata_props} | {METADATA_KEY: json.dumps(spec.to_dict())}
    del frame.metadata_props[:]
    for key, value in meta.items():
        frame.metadata_props.add(key=key, value=value)
    return frame


def _save_onnx(proto: Any, path: Path) -> None:
    import onnx

    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _wrap_ir(model: ForeignModel, spec: ModelSpec) -> Any:
    """The same wrapping as ``_wrap_onnx``, with OpenVINO's graph API; the spec goes into the model's rt_info."""
    from models.backends.ov_runtime import import_openvino

    ov = import_openvino()
    from openvino import opset13 as ops

    graph = model.graph.clone()
    h, w = spec.input.height, spec.input.width

    def i64(values: list[int]) -> Any:
        return ops.constant(np.array(values, np.int64))

    clips = ops.parameter([-1, -1, 3, h, w], ov.Type.f32, name=INPUT_NAME)
    clips.output(0).set_names({INPUT_NAME})
    frames = ops.reshape(clips, i64([-1, 3, h, w]), special_zero=False)
    if graph.input(0).get_element_type() != ov.Type.f32:
        frames = ops.convert(frames, graph.input(0).get_element_type())
    for target in list(graph.get_parameters()[0].output(0).get_target_inputs()):
        target.replace_source_output(frames.output(0))
    per_frame_feature = graph.get_results()[0].input_value(0)
    if per_frame_feature.get_element_type() != ov.Type.f32:
        per_frame_feature = ops.convert(per_frame_feature, ov.Type.f32).output(0)
    bt = ops.gather(ops.shape_of(clips, "i64"), i64([0, 1]), ops.constant(np.int64(0)))
    per_frame = ops.reshape(per_frame_feature, ops.concat([bt, i64([-1])], 0), special_zero=False)
    feature = ops.reduce_mean(per_frame, i64([1]), keep_dims=False)
    ones = ops.broadcast(ops.constant(np.array(1.0, np.float32)), bt)
    attention = ops.divide(ones, ops.reduce_sum(ones, i64([1]), keep_dims=True))
    results = []
    for name, node in zip(OUTPUT_NAMES, (feature, attention), strict=True):
        node.output(0).set_names({name})
        results.append(ops.result(node))
    wrapped = ov.Model(results, [clips], spec.arch.name)
    wrapped.set_rt_info(json.dumps(spec.to_dict()), list(IR_SPEC_PATH))
    return wrapped


def _save_ir(model: Any, path: Path) -> None:
    from models.backends.ov_runtime import import_openvino

    # compress_to_fp16=False: the weights are written as the source stores them (FP16 stays FP16, FP32 FP32)
    import_openvino().save_model(model, str(path), compress_to_fp16=False)
