"""Activation types of an imported TFLite model: int8, and int16 with int8 weights (the 16x8 scheme).

A TFLite 16x8 model (the converter's ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``)
has int16 activations with zero point 0, int8 weights, and int64 biases (int32 where the
converter was asked for them). edgec imports the operators TFLM runs in that scheme and edgec
has the semantics of (:data:`INT16_OPERATORS`); any other operator on an int16 tensor is a
one-line error naming it. Every operator but QUANTIZE and DEQUANTIZE reads and writes one
activation type.

Biases (:func:`accumulator_bias`) decide the accumulator as in TFLM: an int64 bias makes
CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED accumulate in 64 bits and scale with TFLite's
64-bit MultiplyByQuantizedMultiplier; an int16 operator without a bias gets an int64 bias of
zeros, which is TFLM's choice for a missing one.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

INT8, INT16, INT32, INT64 = 9, 7, 2, 4
#: The TFLite activation types edgec imports, with their edgec storage and range.
ACTIVATION_TYPES = {INT8: (ir.DataType.INT8, -128, 127), INT16: (ir.DataType.INT16, -(1 << 15), (1 << 15) - 1)}
#: Operators edgec imports with int16 activations.
INT16_OPERATORS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "QUANTIZE", "DEQUANTIZE", "RESHAPE", "PAD", "PADV2", "CONCATENATION", "SLICE", "STRIDED_SLICE", "SPLIT",
    "SPLIT_V",
})
_CONVERTING = frozenset({"QUANTIZE", "DEQUANTIZE"})
#: Bias types TFLM's int16 kernels read, per operator.
_INT16_BIASES = {"CONV_2D": (INT64, INT32), "FULLY_CONNECTED": (INT64, INT32), "DEPTHWISE_CONV_2D": (INT64,)}
_TYPE_NAMES = {INT8: "int8", INT16: "int16", INT32: "int32", INT64: "int64", 0: "float32"}


def _activations(graph, operator) -> list[int]:
    """The operator's tensors that are not constants (inputs and outputs)."""
    indices = [int(i) for i in operator.inputs if i >= 0] + [int(i) for i in operator.outputs]
    return [i for i in indices if graph.constant(i) is None]


def check_activation_types(graph, name: str, operator) -> None:
    """An :class:`~edgec.errors.UnsupportedModelError` unless ``operator``'s activations are
    int8 (or float at the model's edges), or int16 as the 16x8 scheme has them."""
    tensors = _activations(graph, operator)
    types = {graph.tensor(i).type for i in tensors}
    if INT16 not in types:
        return
    if name not in INT16_OPERATORS:
        raise graph.unsupported(f"{name} with int16 activations is not supported (edgec's 16x8 operators: "
                                f"{', '.join(sorted(INT16_OPERATORS))})",
                                "quantize this part of the model with int8 activations")
    if name not in _CONVERTING and len(types) > 1:
        found = ", ".join(sorted(_TYPE_NAMES.get(t, str(t)) for t in types))
        raise graph.unsupported(f"{name} mixes activation types ({found})",
                                "give its inputs and outputs one type, with QUANTIZE between int8 and int16")
    for index in tensors:
        if graph.tensor(index).type == INT16 and graph.qparams(index).zero_point != 0:
            raise graph.unsupported(f"int16 tensor {index} ('{graph.name(index)}') has zero point "
                                    f"{graph.qparams(index).zero_point}",
                                    "the 16x8 scheme's activations are symmetric: re-export with zero point 0")


def accumulator_bias(graph, name: str, operator, channels: int) -> ir.Value | None:
    """The bias input of CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED (input 2), checked
    against the input's type; for an int16 input without one, an int64 bias of zeros."""
    inputs = list(operator.inputs)
    x = int(inputs[0])
    present = len(inputs) > 2 and inputs[2] >= 0
    int16 = graph.tensor(x).type == INT16
    allowed = _INT16_BIASES[name] if int16 else (INT32,)
    if present:
        bias_type = graph.tensor(int(inputs[2])).type
        if bias_type not in allowed:
            kinds = " or ".join(_TYPE_NAMES[t] for t in allowed)
            raise graph.unsupported(f"{name} on {'int16' if int16 else 'int8'} input has a "
                                    f"{_TYPE_NAMES.get(bias_type, str(bias_type))} bias",
                                    f"give it a {kinds} bias, as the TFLite converter does")
        return graph.value(int(inputs[2]))
    if not int16:
        return None
    return graph.constant_value(f"{graph.name(int(operator.outputs[0]))}_bias", np.zeros(channels, dtype=np.int64))
