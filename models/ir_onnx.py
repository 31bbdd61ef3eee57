"""An OpenVINO IR graph rewritten as ONNX, op by op, so a foreign IR model also runs on onnxruntime and TensorRT.

Covers the operations of CNN re-ID networks such as Intel's person-reidentification-retail-02xx (convolutions,
pooling, MVN, element-wise arithmetic, shape arithmetic); anything else is a ``ModelFileError`` that names
the file and the operation. Subgraphs computable ahead are folded into constants first. FP16 weights stay FP16
(cast to float inside the graph), so the ONNX file is the size of the IR's .bin. The result has one float
input and one float output; callers check it against OpenVINO on the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.errors import ModelFileError

OPSET = 18  # ReduceMean takes its axes as an input from 18 on, as OpenVINO's does
_USE_IR = "import the model with --format ir to run it on OpenVINO"


class _Builder:
    """Collects ONNX nodes and initializers; names every OpenVINO output ``<node name>:<port>``."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    @staticmethod
    def name(output: Any) -> str:
        return f"{output.get_node().get_name()}:{output.get_index()}"

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}/ir_onnx_{self._count}"

    def const(self, value: np.ndarray, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None, **attrs: Any) -> str:
        outputs = outputs or [self.fresh(op)]
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=self.fresh(op), **attrs))
        return outputs[0]


def _ins(b: _Builder, op: Any) -> list[str]:
    return [b.name(i.get_source_output()) for i in op.inputs()]


def _const_value(op: Any, port: int) -> np.ndarray:
    """The value of input ``port`` when it is a Constant (axes, perm, ...)."""
    node = op.input_value(port).get_node()
    if node.get_type_name() != "Constant":
        raise ModelFileError(
            f"operation {op.get_name()} ({op.get_type_name()}): input {port} is computed, not constant"
        )
    return np.asarray(node.get_data())


def _int64(b: _Builder, op: Any, port: int) -> str:
    """Input ``port`` as int64 (OpenVINO allows int32 shapes and axes; ONNX wants int64)."""
    name = b.name(op.input_value(port))
    if op.input_value(port).get_element_type().get_type_name() == "i64":
        return name
    return b.node("Cast", [name], to=7)  # TensorProto.INT64


def _pads(attrs: dict[str, Any], op: Any) -> list[int]:
    if attrs.get("auto_pad", "explicit") not in ("explicit", "notset"):
        raise ModelFileError(f"operation {op.get_name()}: auto_pad {attrs['auto_pad']!r} is not converted")
    return [int(p) for p in attrs["pads_begin"]] + [int(p) for p in attrs["pads_end"]]


def _conv(b: _Builder, op: Any, out: list[str]) -> None:
    a = op.get_attributes()
    x, w = _ins(b, op)
    common = {"strides": a["strides"], "dilations": a["dilations"], "pads": _pads(a, op)}
    b.node("Conv", [x, w], out, **common)


def _group_conv(b: _Builder, op: Any, out: list[str]) -> None:
    a = op.get_attributes()
    x, w = _ins(b, op)
    g, o, i, *k = (int(d) for d in op.input_value(1).get_shape())  # OpenVINO: [G, C_out/G, C_in/G, kh, kw]
    w = b.node("Reshape", [w, b.const(np.array([g * o, i, *k], np.int64), "shape")])
    b.node("Conv", [x, w], out, group=g, strides=a["strides"], dilations=a["dilations"], pads=_pads(a, op))


def _pool(onnx_op: str) -> Callable[[_Builder, Any, list[str]], None]:
    def convert(b: _Builder, op: Any, out: list[str]) -> None:
        a = op.get_attributes()
        attrs: dict[str, Any] = {
            "kernel_shape": a["kernel"],
            "strides": a["strides"],
            "pads": _pads(a, op),
            "ceil_mode": int(a.get("rounding_type", "floor").lower() == "ceil"),
        }
        if onnx_op == "AveragePool":
            attrs["count_include_pad"] = int(not a["exclude-pad"])
        elif a.get("dilations"):
            attrs["dilations"] = a["dilations"]
        b.node(onnx_op, _ins(b, op)[:1], out[:1], **attrs)

    return convert


def _mvn(b: _Builder, op: Any, out: list[str]) -> None:
    """MVN-6: ``(x - mean) / sqrt(var + eps)`` (inside) or ``/ (sqrt(var) + eps)`` (outside) over ``axes``."""
    a = op.get_attributes()
    x = _ins(b, op)[0]
    axes = _int64(b, op, 1)
    centred = b.node("Sub", [x, b.node("ReduceMean", [x, axes], keepdims=1)])
    if not a["normalize_variance"]:
        b.node("Identity", [centred], out)
        return
    var = b.node("ReduceMean", [b.node("Mul", [centred, centred]), axes], keepdims=1)
    eps = b.const(np.array(a["eps"], np.float32), "eps")
    if a["eps_mode"].lower() == "inside_sqrt":
        denominator = b.node("Sqrt", [b.node("Add", [var, eps])])
    else:
        denominator = b.node("Add", [b.node("Sqrt", [var]), eps])
    b.node("Div", [centred, denominator], out)


def _matmul(b: _Builder, op: Any, out: list[str]) -> None:
    a = op.get_attributes()
    names = _ins(b, op)
    for port, flag in ((0, "transpose_a"), (1, "transpose_b")):
        rank = op.input_value(port).get_partial_shape().rank.get_length()
        if a[flag] and rank >= 2:
            perm = [*range(rank - 2), rank - 1, rank - 2]
            names[port] = b.node("Transpose", [names[port]], perm=perm)
    b.node("MatMul", names, out)


def _prelu(b: _Builder, op: Any, out: list[str]) -> None:
    x, slope = _ins(b, op)
    rank = op.input_value(0).get_partial_shape().rank.get_length()
    slope_shape = list(op.input_value(1).get_shape())
    if len(slope_shape) == 1 and slope_shape[0] > 1 and rank > 2:  # OpenVINO: per channel (axis 1)
        slope = b.node("Reshape", [slope, b.const(np.array([slope_shape[0]] + [1] * (rank - 2), np.int64), "shape")])
    b.node("PRelu", [x, slope], out)


def _reshape(b: _Builder, op: Any, out: list[str]) -> None:
    special_zero = op.get_attributes()["special_zero"]
    b.node("Reshape", [_ins(b, op)[0], _int64(b, op, 1)], out, allowzero=int(not special_zero))


def _gather(b: _Builder, op: Any, out: list[str]) -> None:
    if op.get_attributes().get("batch_dims", 0):
        raise ModelFileError(f"operation {op.get_name()}: Gather with batch_dims is not converted")
    data, indices = _ins(b, op)[:2]
    b.node("Gather", [data, indices], out, axis=int(_const_value(op, 2).reshape(-1)[0]))


def _shape_of(b: _Builder, op: Any, out: list[str]) -> None:
    if op.get_attributes().get("output_type", "i64") == "i64":
        b.node("Shape", _ins(b, op), out)
    else:
        b.node("Cast", [b.node("Shape", _ins(b, op))], out, to=6)  # TensorProto.INT32


def _reduce(onnx_op: str) -> Callable[[_Builder, Any, list[str]], None]:
    def convert(b: _Builder, op: Any, out: list[str]) -> None:
        keep = int(op.get_attributes()["keep_dims"])
        b.node(onnx_op, [_ins(b, op)[0], _int64(b, op, 1)], out, keepdims=keep)

    return convert


def _simple(onnx_op: str) -> Callable[[_Builder, Any, list[str]], None]:
    def convert(b: _Builder, op: Any, out: list[str]) -> None:
        if op.get_attributes().get("auto_broadcast", "numpy") not in ("numpy", "none"):
            mode = op.get_attributes()["auto_broadcast"]
            raise ModelFileError(f"operation {op.get_name()} ({op.get_type_name()}): {mode} broadcast is not converted")
        b.node(onnx_op, _ins(b, op), out)

    return convert


def _axes_op(onnx_op: str) -> Callable[[_Builder, Any, list[str]], None]:
    """Squeeze / Unsqueeze: the axes input, when there is one, as int64."""

    def convert(b: _Builder, op: Any, out: list[str]) -> None:
        inputs = _ins(b, op)[:1] + ([_int64(b, op, 1)] if op.get_input_size() > 1 else [])
        b.node(onnx_op, inputs, out)

    return convert


def _transpose(b: _Builder, op: Any, out: list[str]) -> None:
    b.node("Transpose", _ins(b, op)[:1], out, perm=[int(v) for v in _const_value(op, 1)])


def _softmax(b: _Builder, op: Any, out: list[str]) -> None:
    b.node("Softmax", _ins(b, op), out, axis=int(op.get_attributes()["axis"]))


def _clamp(b: _Builder, op: Any, out: list[str]) -> None:
    a = op.get_attributes()
    low, high = (b.const(np.array(a[k], np.float32), k) for k in ("min", "max"))
    b.node("Clip", [_ins(b, op)[0], low, high], out)


def _swish(b: _Builder, op: Any, out: list[str]) -> None:
    x = _ins(b, op)[0]
    scaled = b.node("Mul", [x, _ins(b, op)[1]]) if op.get_input_size() > 1 else x
    b.node("Mul", [x, b.node("Sigmoid", [scaled])], out)


def _normalize_l2(b: _Builder, op: Any, out: list[str]) -> None:
    """``x / sqrt(max(sum(x^2), eps))`` (eps_mode max) or ``x / sqrt(sum(x^2) + eps)`` (add) over ``axes``."""
    a = op.get_attributes()
    x = _ins(b, op)[0]
    total = b.node("ReduceSum", [b.node("Mul", [x, x]), _int64(b, op, 1)], keepdims=1)
    eps = b.const(np.array(a["eps"], np.float32), "eps")
    total = b.node("Max" if a["eps_mode"].lower() == "max" else "Add", [total, eps])
    b.node("Div", [x, b.node("Sqrt", [total])], out)


def _convert(b: _Builder, op: Any, out: list[str]) -> None:
    from onnx import helper

    to = helper.np_dtype_to_tensor_dtype(np.dtype(op.get_output_element_type(0).to_dtype()))
    b.node("Cast", _ins(b, op), out, to=to)


def _concat(b: _Builder, op: Any, out: list[str]) -> None:
    b.node("Concat", _ins(b, op), out, axis=int(op.get_attributes()["axis"]))


CONVERTERS: dict[str, Callable[[_Builder, Any, list[str]], None]] = {
    "Convolution": _conv,
    "GroupConvolution": _group_conv,
    "MaxPool": _pool("MaxPool"),
    "AvgPool": _pool("AveragePool"),
    "MVN": _mvn,
    "MatMul": _matmul,
    "PRelu": _prelu,
    "Reshape": _reshape,
    "Gather": _gather,
    "ShapeOf": _shape_of,
    "ReduceMean": _reduce("ReduceMean"),
    "ReduceSum": _reduce("ReduceSum"),
    "ReduceMax": _reduce("ReduceMax"),
    "Concat": _concat,
    "Convert": _convert,
    "Squeeze": _axes_op("Squeeze"),
    "Unsqueeze": _axes_op("Unsqueeze"),
    "Transpose": _transpose,
    "Softmax": _softmax,
    "Clamp": _clamp,
    "Swish": _swish,
    "NormalizeL2": _normalize_l2,
    "HSigmoid": lambda b, op, out: b.node("HardSigmoid", _ins(b, op), out, alpha=1 / 6, beta=0.5),
    "HSwish": lambda b, op, out: b.node("HardSwish", _ins(b, op), out),
    "Power": _simple("Pow"),
    "Abs": _simple("Abs"),
    "Negative": _simple("Neg"),
    "Add": _simple("Add"),
    "Subtract": _simple("Sub"),
    "Multiply": _simple("Mul"),
    "Divide": _simple("Div"),
    "Maximum": _simple("Max"),
    "Minimum": _simple("Min"),
    "Relu": _simple("Relu"),
    "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"),
    "Floor": _simple("Floor"),
    "Sqrt": _simple("Sqrt"),
    "Exp": _simple("Exp"),
}


def _constant(b: _Builder, value: np.ndarray, name: str) -> None:
    """An initializer; float32 weights that FP16 holds exactly (an FP16 model's, decompressed by constant
    folding) are stored as FP16 and cast back, which loses nothing and halves the file."""
    if value.dtype == np.float32 and value.size >= 64 and np.array_equal(value.astype(np.float16), value):
        half = b.fresh("fp16")
        b.initializers.append(b.numpy_helper.from_array(value.astype(np.float16), half))
        b.node("Cast", [half], [name], to=1)  # TensorProto.FLOAT
    else:
        b.initializers.append(b.numpy_helper.from_array(value, name))


def _folded(model: Any) -> Any:
    """A copy of ``model`` with every computable-ahead subgraph (shape arithmetic on static ranks, ranges) made a
    constant. OpenVINO leaves the FP16 weights' decompression alone, so they stay FP16."""
    try:
        from openvino.passes import ConstantFolding, Manager
    except ImportError:  # OpenVINO before 2024.2
        from openvino.runtime.passes import ConstantFolding, Manager

    model = model.clone()
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    return model


def ir_to_onnx(model: Any, source: str, input_name: str = "frames", output_name: str = "frame_feature") -> Any:
    """An ``openvino.Model`` with one float input and one output -> an ``onnx.ModelProto`` computing the same.

    ``source`` names the file in errors. Shapes stay as the model has them (reshape it first for a dynamic
    batch)."""
    from onnx import TensorProto, helper

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{source}: converting to ONNX needs one input and one output; {_USE_IR}")
    model = _folded(model)
    b = _Builder()
    inputs, outputs = [], []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        out = [b.name(o) for o in op.outputs()]
        if kind == "Parameter":
            b.node("Identity", [input_name], out)
            shape = [d.get_length() if d.is_static else "batch" for d in op.get_output_partial_shape(0)]
            inputs.append(helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape))
        elif kind == "Constant":
            _constant(b, np.asarray(op.get_data()).copy(), out[0])
        elif kind == "Result":
            b.node("Identity", _ins(b, op), [output_name])
            rank = op.get_output_partial_shape(0).rank.get_length()
            outputs.append(helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None] * rank))
        elif kind in CONVERTERS:
            try:
                CONVERTERS[kind](b, op, out)
            except ModelFileError as e:
                raise ModelFileError(f"{source}: {e}; {_USE_IR}") from e
        else:
            raise ModelFileError(f"{source}: operation {kind} ({op.get_name()}) has no ONNX conversion here; {_USE_IR}")
    used = {name for node in b.nodes for name in node.input}
    initializers = [t for t in b.initializers if t.name in used]  # axes read into attributes are dropped
    graph = helper.make_graph(b.nodes, "ir_to_onnx", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
