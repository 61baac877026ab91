"""Build small int8 (and 16x8) TFLite models operator by operator (for tests), with the schema's object API;
run them with LiteRT's reference kernels."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

_TYPES = {np.dtype(np.int8): schema.TensorType.INT8, np.dtype(np.int16): schema.TensorType.INT16,
          np.dtype(np.int32): schema.TensorType.INT32, np.dtype(np.int64): schema.TensorType.INT64,
          np.dtype(np.float32): schema.TensorType.FLOAT32}


class TfliteBuilder:
    """Tensors and operators of one subgraph; :meth:`build` returns the flatbuffer bytes."""

    def __init__(self) -> None:
        self.tensors: list = []
        self.buffers: list = [schema.BufferT()]  # buffer 0 is the empty sentinel
        self.operators: list = []
        self.codes: list[int] = []

    def tensor(self, shape, dtype=np.int8, scale=None, zero_point=0, data=None, axis=0) -> int:
        tensor = schema.TensorT()
        tensor.shape = list(shape)
        tensor.type = _TYPES[np.dtype(dtype)]
        tensor.name = f"t{len(self.tensors)}".encode()
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = list(np.atleast_1d(np.asarray(scale, dtype=np.float32)))
            q.zeroPoint = [int(z) for z in np.atleast_1d(zero_point)] * (1 if np.ndim(zero_point) else len(q.scale))
            q.quantizedDimension = axis
            tensor.quantization = q
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def operator(self, builtin: int, inputs, outputs, options_type: int = 0, options=None) -> None:
        if builtin not in self.codes:
            self.codes.append(builtin)
        op = schema.OperatorT()
        op.opcodeIndex = self.codes.index(builtin)
        op.inputs, op.outputs = list(inputs), list(outputs)
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        self.operators.append(op)

    def build(self, inputs, outputs) -> bytes:
        subgraph = schema.SubGraphT()
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs, subgraph.outputs = list(inputs), list(outputs)
        model = schema.ModelT()
        model.version = 3
        model.subgraphs = [subgraph]
        model.buffers = self.buffers
        codes = []
        for builtin in self.codes:
            code = schema.OperatorCodeT()
            code.builtinCode = builtin
            code.deprecatedBuiltinCode = min(builtin, 127)
            code.version = 1
            codes.append(code)
        model.operatorCodes = codes
        return pack(model)


def pack(model: schema.ModelT) -> bytes:
    """The ``.tflite`` flatbuffer of ``model``."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def reference_interpreter(path: Path) -> Interpreter:
    """LiteRT's interpreter with its reference kernels (BUILTIN_REF) on ``path``, tensors
    allocated and every intermediate tensor kept for inspection."""
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    return interpreter


def options(cls, **fields):
    instance = cls()
    for name, value in fields.items():
        setattr(instance, name, value)
    return instance


__all__ = ["TfliteBuilder", "options", "pack", "reference_interpreter", "schema"]
