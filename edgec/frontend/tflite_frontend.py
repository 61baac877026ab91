"""TFLite frontend: an int8 (or 16x8) ``.tflite`` model becomes an edgec integer graph, as it is.

The flatbuffer is read with the schema bindings that ship with ``ai-edge-litert``. Every
operator maps to the edgec operator with TFLM's semantics, keeping the model's own scales,
zero points and per-channel quantization; layouts stay NHWC (no shuffles the model did not
have). Integer attributes are derived exactly as TFLM's "prepare" steps derive them
(:mod:`edgec.passes.multipliers`), so the reference executor reproduces TFLM bit for bit.

Each int8 value keeps the TFLite tensor's name and records its tensor index as
``metadata_props['edgec.tflite_tensor']`` (to compare with TFLM's intermediate tensors).
Contract of :func:`read_tflite_model`: an integer ``onnx_ir.Model`` or an
:class:`~edgec.errors.EdgecError` naming the file, the operator and its index. A corrupt
file (a flatbuffer that does not parse, names that are not UTF-8, indices of tensors,
buffers or operator codes out of range, buffers whose size disagrees with their tensor's
shape, non-positive or non-finite scales) is a :class:`~edgec.errors.ModelLoadError`
raised before any operator is converted (:func:`check_structure`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.errors import ModelLoadError, UnsupportedModelError
from edgec.frontend import tflite_ops, tflite_types
from edgec.frontend.tflite_types import ACTIVATION_TYPES
from edgec.inttype import INT8, INT16
from edgec.passes.multipliers import MultiplierRangeError
from edgec.passes.qparams import QParams, set_channel_scales, set_qparams

TFLITE_TENSOR_KEY = "edgec.tflite_tensor"

_TENSOR_TYPES = {0: (np.float32, ir.DataType.FLOAT), 2: (np.int32, ir.DataType.INT32),
                 4: (np.int64, ir.DataType.INT64), 7: (np.int16, ir.DataType.INT16), 9: (np.int8, ir.DataType.INT8)}
#: Bytes per element of the TFLite tensor types a model may hold (TensorType numbers).
_TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 12: 8, 15: 4, 16: 2}
CORRUPT_FIX = "pass an uncorrupted .tflite file (re-download or re-export it)"


def _schema():
    """ai-edge-litert's generated flatbuffer schema (imported on first use: it is large)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


class TfliteGraph:
    """The state of one subgraph's conversion: tensors as ``onnx_ir`` values, nodes so far."""

    def __init__(self, model, source: str) -> None:
        self.model = model
        self.source = source
        self.subgraph = model.subgraphs[0]
        self.values: dict[int, ir.Value] = {}
        self.nodes: list[ir.Node] = []
        self.initializers: list[ir.Value] = []
        self.operator_index = -1
        self.operator = None
        self._names: set[str] = set()

    # -- tensors ---------------------------------------------------------------------
    def tensor(self, index: int):
        return self.subgraph.tensors[index]

    def shape(self, index: int) -> list[int]:
        shape = self.tensor(index).shape
        return [int(d) for d in shape] if shape is not None else []

    def qparams(self, index: int) -> QParams:
        """Per-tensor quantization of tensor ``index`` (an error if it has none)."""
        q = self.tensor(index).quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            raise self.unsupported(f"tensor {index} ('{self.name(index)}') is not quantized",
                                   "edgec imports int8-quantized TFLite models")
        int_type = INT16 if self.tensor(index).type == tflite_types.INT16 else INT8
        return QParams(float(np.float32(q.scale[0])), int(q.zeroPoint[0]) if q.zeroPoint is not None else 0, int_type)

    def activation_dtype(self, index: int) -> ir.DataType:
        """The edgec storage of activation tensor ``index``: INT8, or INT16 (the 16x8 scheme)."""
        found = ACTIVATION_TYPES.get(self.tensor(index).type)
        if found is None:
            raise self.unsupported(f"tensor {index} ('{self.name(index)}') has TFLite type {self.tensor(index).type}",
                                   "edgec imports int8 and int16 activations")
        return found[0]

    def full_range(self, index: int) -> dict:
        """``activation_min``/``activation_max`` spanning activation tensor ``index``'s type."""
        _, low, high = ACTIVATION_TYPES[self.tensor(index).type]
        return {"activation_min": low, "activation_max": high}

    def channel_scales(self, index: int) -> np.ndarray:
        return np.asarray(self.tensor(index).quantization.scale, dtype=np.float32)

    def name(self, index: int) -> str:
        return _text(self.tensor(index).name, f"tensor {index}", self.source) or f"tensor_{index}"

    def constant(self, index: int) -> np.ndarray | None:
        """The data of a constant tensor (from its buffer), or ``None`` for activations."""
        tensor = self.tensor(index)
        buffer = self.model.buffers[tensor.buffer] if tensor.buffer < len(self.model.buffers) else None
        if buffer is None or buffer.data is None or len(buffer.data) == 0:
            return None
        dtype = _TENSOR_TYPES.get(tensor.type)
        if dtype is None:
            raise self.unsupported(f"constant tensor {index} has TFLite type {tensor.type}", "use int8/int32 tensors")
        return np.frombuffer(np.asarray(buffer.data, dtype=np.uint8).tobytes(), dtype=dtype[0]).reshape(
            self.shape(index))

    def _unique(self, name: str) -> str:
        unique, counter = name, 1
        while unique in self._names:
            unique, counter = f"{name}_{counter}", counter + 1
        self._names.add(unique)
        return unique

    def _new_value(self, index: int, dtype: ir.DataType, shape: list[int]) -> ir.Value:
        value = ir.Value(name=self._unique(self.name(index)), shape=ir.Shape(shape), type=ir.TensorType(dtype))
        value.metadata_props[TFLITE_TENSOR_KEY] = str(index)
        if dtype in (ir.DataType.INT8, ir.DataType.INT16):
            set_qparams(value, self.qparams(index))
        return value

    def graph_input(self, index: int) -> ir.Value:
        tensor_type = _TENSOR_TYPES.get(self.tensor(index).type)
        if tensor_type is None or tensor_type[1] not in (ir.DataType.INT8, ir.DataType.INT16, ir.DataType.FLOAT):
            raise UnsupportedModelError(f"'{self.source}': input tensor {index} has TFLite type "
                                        f"{self.tensor(index).type}", "edgec imports int8, int16 or float model inputs")
        value = self._new_value(index, tensor_type[1], self.shape(index))
        self.values[index] = value
        return value

    def value(self, index: int) -> ir.Value:
        """The value of an activation tensor, or a new initializer for a constant one."""
        if index in self.values:
            return self.values[index]
        data = self.constant(index)
        if data is None:
            raise self.unsupported(f"tensor {index} ('{self.name(index)}') is read before it is written",
                                   "the model's operators must be in execution order")
        value = self._new_value(index, _TENSOR_TYPES[self.tensor(index).type][1], list(data.shape))
        value.const_value = ir.tensor(np.ascontiguousarray(data), name=value.name)
        quantization = self.tensor(index).quantization
        if quantization is not None and quantization.scale is not None and len(quantization.scale) > 1:
            value.metadata_props.pop(ops.SCALE_KEY, None)
            value.metadata_props.pop(ops.ZERO_POINT_KEY, None)
            set_channel_scales(value, self.channel_scales(index), quantization.quantizedDimension)
        self.initializers.append(value)
        self.values[index] = value
        return value

    def constant_value(self, name: str, data: np.ndarray) -> ir.Value:
        """A new initializer holding ``data`` that is not a TFLite tensor (an activation's table)."""
        value = ir.Value(name=self._unique(name), shape=ir.Shape(list(data.shape)),
                         type=ir.TensorType(ir.DataType.from_numpy(data.dtype)))
        value.const_value = ir.tensor(np.ascontiguousarray(data), name=value.name)
        self.initializers.append(value)
        return value

    # -- building -------------------------------------------------------------------
    def emit(self, op_type: str, inputs: list[ir.Value | None], attrs: dict, output: int,
             dtype: ir.DataType | None = None) -> ir.Value:
        """Append an edgec node writing TFLite tensor ``output`` (of its activation type unless
        ``dtype`` says otherwise)."""
        value = self._new_value(output, dtype or self.activation_dtype(output), self.shape(output))
        node = ir.node(op_type, inputs, attrs, domain=ops.DOMAIN, outputs=[value],
                       name=f"{op_type}_{self.operator_index}")
        self.nodes.append(node)
        self.values[output] = value
        return value

    def emit_internal(self, op_type: str, inputs: list[ir.Value | None], attrs: dict, qparams: QParams,
                      shape: list[int], name: str) -> ir.Value:
        """Append an edgec node whose output is not a TFLite tensor (a reshape around FC, ...), of
        the converted operator's activation type (its first output's)."""
        node = ir.node(op_type, inputs, attrs, domain=ops.DOMAIN, name=f"{op_type}_{self.operator_index}_{name}")
        out = node.outputs[0]
        out.name = self._unique(name)
        out.shape = ir.Shape(shape)
        out.type = ir.TensorType(self.activation_dtype(int(self.operator.outputs[0])))
        set_qparams(out, qparams)
        self.nodes.append(node)
        return out

    def unsupported(self, problem: str, hint: str) -> UnsupportedModelError:
        where = f"operator {self.operator_index}" if self.operator_index >= 0 else "the model"
        return UnsupportedModelError(f"'{self.source}' {where}: {problem}", hint)

    def corrupt(self, problem: str) -> ModelLoadError:
        where = f"operator {self.operator_index}" if self.operator_index >= 0 else "the model"
        return ModelLoadError(f"'{self.source}' {where}: {problem}", CORRUPT_FIX)


def _text(raw, what: str, source: str) -> str:
    """A flatbuffer string as text; a corrupt name is an error."""
    try:
        return raw.decode() if isinstance(raw, bytes) else str(raw or "")
    except UnicodeDecodeError:
        raise ModelLoadError(f"'{source}' is corrupt: the name of {what} is not valid UTF-8 ({raw[:40]!r})",
                             CORRUPT_FIX) from None


def _check_quantization(label: str, tensor, shape: list[int], source: str) -> None:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return
    scales = np.asarray(q.scale, dtype=np.float64)
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ModelLoadError(f"'{source}': {label} has quantization scales that are not finite and positive",
                             CORRUPT_FIX)
    zero_points = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(scales), dtype=np.int64)
    bounds = ACTIVATION_TYPES.get(tensor.type)
    outside = bounds is not None and np.any((zero_points < bounds[1]) | (zero_points > bounds[2]))
    if len(zero_points) != len(scales) or outside:
        raise ModelLoadError(f"'{source}': {label} has zero points {zero_points.tolist()[:8]} for "
                             f"{len(scales)} scales", CORRUPT_FIX)
    if len(scales) > 1 and not (0 <= q.quantizedDimension < len(shape) and shape[q.quantizedDimension] == len(scales)):
        raise ModelLoadError(f"'{source}': {label} of shape {shape} has {len(scales)} scales along axis "
                             f"{q.quantizedDimension}", CORRUPT_FIX)


def _check_tensor(index: int, tensor, buffers: list, source: str) -> None:
    label = f"tensor {index} ('{_text(tensor.name, f'tensor {index}', source)}')"
    shape = [int(d) for d in tensor.shape] if tensor.shape is not None else []
    if tensor.type not in _TYPE_SIZES:
        raise ModelLoadError(f"'{source}': {label} has TFLite type {tensor.type}", CORRUPT_FIX)
    if any(d < 1 for d in shape):
        raise ModelLoadError(f"'{source}': {label} has shape {shape}", CORRUPT_FIX)
    if not 0 <= tensor.buffer < len(buffers):
        raise ModelLoadError(f"'{source}': {label} refers to buffer {tensor.buffer}; the model has {len(buffers)}",
                             CORRUPT_FIX)
    data = buffers[tensor.buffer].data
    size = math.prod(shape) * _TYPE_SIZES[tensor.type]
    if data is not None and len(data) not in (0, size):
        raise ModelLoadError(f"'{source}': {label} has shape {shape} ({size} bytes) but its buffer holds "
                             f"{len(data)} bytes", CORRUPT_FIX)
    _check_quantization(label, tensor, shape, source)


def _check_indices(indices, what: str, count: int, source: str, optional: bool = False) -> None:
    for index in indices if indices is not None else []:
        if not (-1 if optional else 0) <= index < count:
            raise ModelLoadError(f"'{source}': {what} refers to tensor {index}; the model has {count}", CORRUPT_FIX)


def check_structure(model, source: str) -> None:
    """Every name, index, buffer size and scale of the (single) subgraph is consistent."""
    subgraph, buffers, codes = model.subgraphs[0], model.buffers or [], model.operatorCodes or []
    for index, code in enumerate(codes):
        _text(code.customCode, f"operator code {index}", source)
    tensors = subgraph.tensors or []
    for index, tensor in enumerate(tensors):
        _check_tensor(index, tensor, buffers, source)
    for what, indices in (("the model's inputs", subgraph.inputs), ("the model's outputs", subgraph.outputs)):
        if indices is None or len(indices) == 0:
            raise ModelLoadError(f"'{source}': {what} are missing", CORRUPT_FIX)
        _check_indices(indices, what, len(tensors), source)
    for index, operator in enumerate(subgraph.operators or []):
        if not 0 <= operator.opcodeIndex < len(codes):
            raise ModelLoadError(f"'{source}': operator {index} has operator code {operator.opcodeIndex}; the model "
                                 f"has {len(codes)}", CORRUPT_FIX)
        _check_indices(operator.inputs, f"operator {index}'s input", len(tensors), source, optional=True)
        _check_indices(operator.outputs, f"operator {index}'s output", len(tensors), source)


def _operator_name(schema, names: dict[int, str], model, operator) -> str:
    """The BUILTIN_OPERATOR name of ``operator`` (``names``: number -> name), or its custom code."""
    code = model.operatorCodes[operator.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)
    return names.get(number, f"builtin {number}") if number != schema.BuiltinOperator.CUSTOM else (
        f"custom '{code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode}'")


def read_tflite_model(path: str | Path) -> ir.Model:
    """Convert an int8 TFLite model file to an edgec integer graph (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file '{path}' does not exist", "check the path")
    schema = _schema()
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelLoadError(f"'{path}' is not a TFLite model (no TFL3 identifier)",
                             "pass a complete .tflite flatbuffer; a truncated download fails this way")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as error:  # flatbuffers raises assorted errors on corrupt data
        raise ModelLoadError(f"'{path}' is a corrupt TFLite flatbuffer ({type(error).__name__})",
                             "re-export or re-download the model") from None
    if not model.subgraphs:
        raise ModelLoadError(f"'{path}' has no subgraph", "pass a complete .tflite model")
    if len(model.subgraphs) > 1:
        raise UnsupportedModelError(f"'{path}' has {len(model.subgraphs)} subgraphs (control flow)",
                                    "edgec imports single-subgraph TFLite models")
    check_structure(model, str(path))
    graph = TfliteGraph(model, str(path))
    subgraph = graph.subgraph
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    inputs = [graph.graph_input(int(i)) for i in subgraph.inputs]
    for index, operator in enumerate(subgraph.operators or []):
        graph.operator_index, graph.operator = index, operator
        name = _operator_name(schema, names, model, operator)
        lowering = tflite_ops.LOWERINGS.get(name)
        if lowering is None:
            raise graph.unsupported(f"TFLite operator {name} is not supported",
                                    f"supported operators: {', '.join(sorted(tflite_ops.LOWERINGS))}")
        tflite_ops.check_operator(graph, name, operator)
        tflite_types.check_activation_types(graph, name, operator)
        try:
            lowering(graph, operator)
        except MultiplierRangeError as error:
            raise graph.unsupported(f"{name} cannot be requantized: {error}",
                                    "the model's scales around this operator are out of range; re-export it") from None
    outputs = [graph.values[int(i)] for i in subgraph.outputs]
    new_graph = ir.Graph(inputs, outputs, nodes=graph.nodes, initializers=graph.initializers,
                         opset_imports={"": 13, ops.DOMAIN: ops.OPSET_VERSION}, name=path.stem)
    integer_model = ir.Model(new_graph, ir_version=10, producer_name="edgec")
    integer_model.metadata_props[ops.ROUNDING_KEY] = "double"
    return integer_model
