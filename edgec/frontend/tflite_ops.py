"""Per-operator conversion of int8 (and 16x8) TFLite operators to edgec operators.

Each function takes the :class:`~edgec.frontend.tflite_frontend.TfliteGraph` and one
TFLite operator (object API), and emits the edgec node(s) computing its output tensor with
TFLM's semantics: padding from ``ComputePaddingHeightWidth``, activation ranges from
``CalculateActivationRangeQuantized``, multipliers as the TFLM kernels' prepare steps.
Data-movement operators are in :mod:`edgec.frontend.tflite_layout`; :data:`LOWERINGS` and
:data:`OPERANDS` cover both.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from edgec.errors import UnsupportedModelError
from edgec.frontend import tflite_layout
from edgec.frontend.tflite_types import accumulator_bias
from edgec.passes.activation_tables import (
    LOGISTIC_OUTPUT,
    TANH_OUTPUT,
    hard_swish_table,
    leaky_relu_table,
    logistic_table,
    relu6_table,
    relu_table,
    tanh_table,
)
from edgec.passes.multipliers import (
    ADD_LEFT_SHIFT,
    INT16_ADD_LEFT_SHIFT,
    SOFTMAX_OUTPUT,
    add_attributes,
    channel_requant_attributes,
    mean_attributes,
    mul_attributes,
    per_tensor_fc_attributes,
    prelu_attributes,
    requantize_attributes,
    softmax_attributes,
)
from edgec.reference.conv import conv_groups

_NONE, _RELU, _RELU_N1_TO_1, _RELU6 = 0, 1, 2, 3
_SAME, _VALID = 0, 1


def activation_range(graph, output: int, fused: int) -> dict:
    """``activation_min``/``activation_max`` of a fused activation, in the output's quantization."""
    full = graph.full_range(output)
    if fused == _NONE:
        return full
    q = graph.qparams(output)
    bounds = {_RELU: (0.0, None), _RELU6: (0.0, 6.0), _RELU_N1_TO_1: (-1.0, 1.0)}.get(fused)
    if bounds is None:
        raise graph.unsupported(f"fused activation {fused} is not supported", "use NONE, RELU, RELU6 or RELU_N1_TO_1")
    low = q.quantize_bound(bounds[0])
    high = full["activation_max"] if bounds[1] is None else q.quantize_bound(bounds[1])
    return {"activation_min": low, "activation_max": high}


def window_padding(graph, in_hw, kernel_hw, strides, dilations, padding: int, out_hw) -> list[int]:
    """``[top, left, bottom, right]`` as TFLite's ComputePaddingHeightWidth places them."""
    pads = []
    for size, kernel, stride, dilation in zip(in_hw, kernel_hw, strides, dilations):
        effective = (kernel - 1) * dilation + 1
        out = (size + stride - 1) // stride if padding == _SAME else (size + stride - effective) // stride
        if out != out_hw[len(pads)]:
            raise graph.unsupported(f"output size {out_hw} disagrees with the window arithmetic", "re-export the model")
        total = max(0, (out - 1) * stride + effective - size)
        pads.append((total // 2, total - total // 2))
    return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]


def _weights(graph, index: int) -> np.ndarray:
    data = graph.constant(index)
    if data is None or data.dtype != np.int8:
        raise graph.unsupported("weights are not a constant int8 tensor", "edgec imports int8 models with constant weights")
    graph.qparams(index)  # an error unless the weights carry scales
    zero_points = graph.tensor(index).quantization.zeroPoint
    if zero_points is not None and np.any(np.asarray(zero_points) != 0):
        raise graph.unsupported("weights have a non-zero zero point", "quantize weights symmetrically")
    return data


def _channel_attributes(graph, x: int, w: int, out: int, channels: int) -> dict:
    scales = graph.channel_scales(w)
    scales = np.broadcast_to(scales, (channels,)) if scales.size == 1 else scales
    return channel_requant_attributes(graph.qparams(x).scale, scales, graph.qparams(out).scale)


def conv_2d(graph, operator, depthwise: bool = False) -> None:
    x, w, out = int(operator.inputs[0]), int(operator.inputs[1]), int(operator.outputs[0])
    options = operator.builtinOptions
    weights = _weights(graph, w)
    in_shape, out_shape = graph.shape(x), graph.shape(out)
    strides, dilations = [options.strideH, options.strideW], [options.dilationHFactor, options.dilationWFactor]
    channels = weights.shape[3] if depthwise else weights.shape[0]
    if not depthwise:
        try:
            conv_groups(in_shape[3], weights.shape)
        except ValueError as error:
            raise graph.unsupported(str(error), "give CONV_2D weights whose depth divides the input channels") \
                from None
    attrs = {
        "input_zero_point": graph.qparams(x).zero_point, "output_zero_point": graph.qparams(out).zero_point,
        **_channel_attributes(graph, x, w, out, channels),
        **activation_range(graph, out, options.fusedActivationFunction),
        "strides": strides, "dilations": dilations,
        "pads": window_padding(graph, in_shape[1:3], weights.shape[1:3], strides, dilations, options.padding,
                               out_shape[1:3]),
    }
    if depthwise:
        attrs["depth_multiplier"] = channels // in_shape[3]
    bias = accumulator_bias(graph, "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", operator, channels)
    graph.emit("DepthwiseConv" if depthwise else "Conv", [graph.value(x), graph.value(w), bias], attrs, out)


def depthwise_conv_2d(graph, operator) -> None:
    conv_2d(graph, operator, depthwise=True)


def transpose_conv(graph, operator) -> None:
    """TRANSPOSE_CONV: inputs (output shape, weights, input[, bias]); padding as TFLM's
    Prepare computes it, ComputePaddingHeightWidth applied to the *output* size."""
    w, x, out = int(operator.inputs[1]), int(operator.inputs[2]), int(operator.outputs[0])
    options = operator.builtinOptions
    weights = _weights(graph, w)
    out_shape = graph.shape(out)
    strides = [options.strideH, options.strideW]
    if weights.shape[3] != graph.shape(x)[3] or weights.shape[0] != out_shape[3]:
        raise graph.corrupt(f"TRANSPOSE_CONV weights {list(weights.shape)} do not join input {graph.shape(x)} "
                            f"to output {out_shape}")
    totals = []
    for size, kernel, stride in zip(out_shape[1:3], weights.shape[1:3], strides):
        windows = (size + stride - 1) // stride if options.padding == _SAME else (size + stride - kernel) // stride
        totals.append(max(0, (windows - 1) * stride + kernel - size))
    pads = [totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2]
    bias = graph.value(int(operator.inputs[3])) if len(operator.inputs) > 3 and operator.inputs[3] >= 0 else None
    attrs = {"input_zero_point": graph.qparams(x).zero_point, "output_zero_point": graph.qparams(out).zero_point,
             **_channel_attributes(graph, x, w, out, weights.shape[0]),
             **activation_range(graph, out, options.fusedActivationFunction),
             "strides": strides, "pads": pads, "output_size": out_shape[1:3]}
    graph.emit("TransposeConv", [graph.value(x), graph.value(w), bias], attrs, out)


def fully_connected(graph, operator) -> None:
    x, w, out = int(operator.inputs[0]), int(operator.inputs[1]), int(operator.outputs[0])
    weights = _weights(graph, w)
    cout, depth = weights.shape
    qx, qw, qo = graph.qparams(x), graph.qparams(w), graph.qparams(out)
    if graph.channel_scales(w).size > 1:
        requant = _channel_attributes(graph, x, w, out, cout)
    else:
        requant = per_tensor_fc_attributes(qx.scale, qw.scale, qo.scale)
    attrs = {"input_zero_point": qx.zero_point, "output_zero_point": qo.zero_point, **requant,
             **activation_range(graph, out, operator.builtinOptions.fusedActivationFunction)}
    source = graph.value(x)
    rows = math.prod(graph.shape(x)) // depth
    if graph.shape(x)[-1] != depth:
        source = graph.emit_internal("Reshape", [source], {"shape": [rows, depth]}, qx, [rows, depth],
                                     f"{source.name}_rows")
    inputs = [source, graph.value(w), accumulator_bias(graph, "FULLY_CONNECTED", operator, cout)]
    fc_shape = list(source.shape.numpy())[:-1] + [cout]
    if fc_shape == graph.shape(out):
        graph.emit("FullyConnected", inputs, attrs, out)
        return
    result = graph.emit_internal("FullyConnected", inputs, attrs, qo, fc_shape, f"{graph.name(out)}_fc")
    graph.emit("Reshape", [result], {"shape": graph.shape(out)}, out)


def batch_matmul(graph, operator) -> None:
    a, b, out = int(operator.inputs[0]), int(operator.inputs[1]), int(operator.outputs[0])
    options = operator.builtinOptions
    attrs = {**mul_attributes(graph.qparams(a), graph.qparams(b), graph.qparams(out)),
             "activation_min": -128, "activation_max": 127,
             "adj_x": int(bool(options.adjX)), "adj_y": int(bool(options.adjY))}
    graph.emit("BatchMatMul", [graph.value(a), graph.value(b)], attrs, out)


def binary(op_type: str):
    def lower(graph, operator) -> None:
        a, b, out = int(operator.inputs[0]), int(operator.inputs[1]), int(operator.outputs[0])
        qa, qb, qo = graph.qparams(a), graph.qparams(b), graph.qparams(out)
        if op_type == "Mul":
            attrs = mul_attributes(qa, qb, qo)
        else:
            left_shift = INT16_ADD_LEFT_SHIFT if graph.activation_dtype(out) == ir.DataType.INT16 else ADD_LEFT_SHIFT
            attrs = add_attributes(qa, qb, qo, subtract=op_type == "Sub", left_shift=left_shift)
        attrs.update(activation_range(graph, out, operator.builtinOptions.fusedActivationFunction))
        graph.emit(op_type, [graph.value(a), graph.value(b)], attrs, out)
    return lower


def prelu(graph, operator) -> None:
    x, alpha, out = int(operator.inputs[0]), int(operator.inputs[1]), int(operator.outputs[0])
    attrs = {**prelu_attributes(graph.qparams(x), graph.qparams(alpha), graph.qparams(out)),
             "activation_min": -128, "activation_max": 127}
    graph.emit("PRelu", [graph.value(x), graph.value(alpha)], attrs, out)


def pool_2d(op_type: str):
    def lower(graph, operator) -> None:
        x, out = int(operator.inputs[0]), int(operator.outputs[0])
        options = operator.builtinOptions
        kernel, strides = [options.filterHeight, options.filterWidth], [options.strideH, options.strideW]
        attrs = {"kernel_shape": kernel, "strides": strides,
                 "pads": window_padding(graph, graph.shape(x)[1:3], kernel, strides, [1, 1], options.padding,
                                        graph.shape(out)[1:3]),
                 **activation_range(graph, out, options.fusedActivationFunction)}
        graph.emit(op_type, [graph.value(x)], attrs, out)
    return lower


def mean(graph, operator) -> None:
    x, axes_index, out = int(operator.inputs[0]), int(operator.inputs[1]), int(operator.outputs[0])
    axes = graph.constant(axes_index)
    if axes is None:
        raise graph.unsupported("MEAN axes are computed at run time", "use constant axes")
    shape = graph.shape(x)
    axes = sorted({int(a) % len(shape) for a in np.ravel(axes)})
    count = math.prod(shape[a] for a in axes)
    attrs = {"axes": axes, "keepdims": int(bool(operator.builtinOptions.keepDims)),
             **mean_attributes(graph.qparams(x), graph.qparams(out), count)}
    graph.emit("Mean", [graph.value(x)], attrs, out)


def softmax(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    if graph.qparams(out) != SOFTMAX_OUTPUT:
        raise graph.unsupported("SOFTMAX output is not quantized with scale 1/256 and zero point -128",
                                "use the TFLite converter's int8 softmax output quantization")
    attrs = softmax_attributes(graph.qparams(x).scale, float(operator.builtinOptions.beta))
    graph.emit("Softmax", [graph.value(x)], attrs, out)


def quantize(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    q = graph.qparams(out)
    bounds = graph.full_range(out)
    if graph.tensor(x).type == 0:  # float32 -> int8/int16
        graph.emit("Quantize", [graph.value(x)], {"scale": q.scale, "zero_point": q.zero_point,
                                                  "min": bounds["activation_min"], "max": bounds["activation_max"]}, out)
        return
    attrs = {**requantize_attributes(graph.qparams(x), q), **bounds}
    graph.emit("Requantize", [graph.value(x)], attrs, out)


def dequantize(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    q = graph.qparams(x)
    graph.emit("Dequantize", [graph.value(x)], {"scale": q.scale, "zero_point": q.zero_point}, out,
               dtype=ir.DataType.FLOAT)


def _table(graph, operator, function: str, entries) -> None:
    """Emit ``operator`` as a ``Table``: ``entries(q_in, q_out)`` gives its 256 values."""
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    try:
        values = entries(graph.qparams(x), graph.qparams(out))
    except UnsupportedModelError as error:
        raise graph.unsupported(error.problem, error.hint) from None
    table = graph.constant_value(f"{graph.name(out)}_{function}_table", values)
    graph.emit("Table", [graph.value(x), table], {"function": function}, out)


def _fixed_output(graph, operator, name: str, expected) -> None:
    if graph.qparams(int(operator.outputs[0])) != expected:
        raise graph.unsupported(
            f"{name} output is not quantized with scale 1/{round(1 / expected.scale)} and zero point "
            f"{expected.zero_point}", f"use the TFLite converter's int8 {name} output quantization")


def logistic(graph, operator) -> None:
    _fixed_output(graph, operator, "LOGISTIC", LOGISTIC_OUTPUT)
    _table(graph, operator, "logistic", lambda q_in, q_out: logistic_table(q_in))


def tanh(graph, operator) -> None:
    _fixed_output(graph, operator, "TANH", TANH_OUTPUT)
    _table(graph, operator, "tanh", lambda q_in, q_out: tanh_table(q_in))


def hard_swish(graph, operator) -> None:
    _table(graph, operator, "hard_swish", hard_swish_table)


def leaky_relu(graph, operator) -> None:
    alpha = float(np.float32(operator.builtinOptions.alpha))
    _table(graph, operator, "leaky_relu", lambda q_in, q_out: leaky_relu_table(q_in, q_out, alpha))


def relu(graph, operator) -> None:
    _table(graph, operator, "relu", relu_table)


def relu6(graph, operator) -> None:
    _table(graph, operator, "relu6", lambda q_in, q_out: relu6_table(q_in))


#: Per operator: the class of the builtin options its lowering reads (``None``: none) and how
#: many inputs it needs at least.
OPERANDS = {
    **tflite_layout.OPERANDS,
    "CONV_2D": ("Conv2DOptionsT", 2),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptionsT", 2),
    "FULLY_CONNECTED": ("FullyConnectedOptionsT", 2),
    "TRANSPOSE_CONV": ("TransposeConvOptionsT", 3),
    "BATCH_MATMUL": ("BatchMatMulOptionsT", 2),
    "ADD": ("AddOptionsT", 2),
    "SUB": ("SubOptionsT", 2),
    "MUL": ("MulOptionsT", 2),
    "PRELU": (None, 2),
    "AVERAGE_POOL_2D": ("Pool2DOptionsT", 1),
    "MAX_POOL_2D": ("Pool2DOptionsT", 1),
    "MEAN": ("ReducerOptionsT", 2),
    "SOFTMAX": ("SoftmaxOptionsT", 1),
    "QUANTIZE": (None, 1),
    "DEQUANTIZE": (None, 1),
    "LOGISTIC": (None, 1),
    "TANH": (None, 1),
    "HARD_SWISH": (None, 1),
    "LEAKY_RELU": ("LeakyReluOptionsT", 1),
    "RELU": (None, 1),
    "RELU6": (None, 1),
}
#: Window options that must be at least 1.
_POSITIVE_OPTIONS = ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "filterHeight", "filterWidth")


def check_operator(graph, name: str, operator) -> None:
    """The operands and options of ``operator`` (a supported ``name``) are what its lowering reads."""
    options_class, needed = OPERANDS[name]
    inputs = [int(i) for i in operator.inputs] if operator.inputs is not None else []
    outputs = [int(i) for i in operator.outputs] if operator.outputs is not None else []
    one_output = name not in tflite_layout.MULTI_OUTPUT
    if len(inputs) < needed or any(i < 0 for i in inputs[:needed]) or not outputs or (one_output and len(outputs) != 1):
        raise graph.corrupt(f"{name} has inputs {inputs} and outputs {outputs}; it takes {needed} inputs and "
                            f"{'1 output' if one_output else 'at least 1 output'}")
    options = operator.builtinOptions
    if options_class is not None and type(options).__name__ != options_class:
        found = "no options" if options is None else f"options {type(options).__name__[:-1]}"
        raise graph.corrupt(f"{name} has {found}, not {options_class[:-1]}")
    for field in _POSITIVE_OPTIONS:
        if getattr(options, field, 1) < 1:
            raise graph.corrupt(f"{name} has {field}={getattr(options, field)}")
    if getattr(options, "padding", _SAME) not in (_SAME, _VALID):
        raise graph.corrupt(f"{name} has padding {options.padding} (TFLite knows SAME=0 and VALID=1)")


LOWERINGS = {
    **tflite_layout.LOWERINGS,
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "FULLY_CONNECTED": fully_connected,
    "TRANSPOSE_CONV": transpose_conv,
    "BATCH_MATMUL": batch_matmul,
    "ADD": binary("Add"),
    "SUB": binary("Sub"),
    "MUL": binary("Mul"),
    "PRELU": prelu,
    "AVERAGE_POOL_2D": pool_2d("AveragePool"),
    "MAX_POOL_2D": pool_2d("MaxPool"),
    "MEAN": mean,
    "SOFTMAX": softmax,
    "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
    "LOGISTIC": logistic,
    "TANH": tanh,
    "HARD_SWISH": hard_swish,
    "LEAKY_RELU": leaky_relu,
    "RELU": relu,
    "RELU6": relu6,
}
