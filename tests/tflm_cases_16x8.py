"""One-operator TFLite models of the 16x8 scheme (int16 activations, int8 weights) for the TFLM goldens.

As the TFLite converter writes them: int16 activations with zero point 0, int8 weights with
per-channel scales, int64 biases (int32 where asked; CONV_2D and FULLY_CONNECTED also without
one: TFLM's depthwise kernel needs it). Inputs are random
int16 values over the whole range; output scales are chosen so that results both fill int16
and saturate. The cases' operators are named ``NAME/16x8`` so that the per-operator tests run
one of each beside the int8 ones.
"""

from __future__ import annotations

import numpy as np

from tflite_builder import TfliteBuilder, options, schema

OP = schema.BuiltinOperator
OPTIONS = schema.BuiltinOptions


def int16_input(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-(1 << 15), 1 << 15, size=shape, dtype=np.int16)


def _conv_weights(b: TfliteBuilder, rng, shape, channels: int, axis: int) -> int:
    return b.tensor(shape, scale=rng.uniform(0.004, 0.02, channels), zero_point=0, axis=axis,
                    data=rng.integers(-127, 128, shape).astype(np.int8))


def _bias(b: TfliteBuilder, rng, channels: int, bias: str | None) -> list[int]:
    if bias is None:
        return []
    dtype = {"int64": np.int64, "int32": np.int32}[bias]
    return [b.tensor([channels], dtype, data=rng.integers(-400_000, 400_000, channels).astype(dtype))]


def conv_model(x_shape, w_shape, out_hw, padding: int, stride: int, dilation: int, fused: int, bias: str | None,
               depthwise: bool, out_scale: float, seed: int) -> bytes:
    """CONV_2D (weights OHWI) or DEPTHWISE_CONV_2D (weights 1HWC) on an int16 input."""
    rng = np.random.default_rng(seed)
    b = TfliteBuilder()
    x = b.tensor(x_shape, np.int16, scale=0.0005, zero_point=0)
    cout = w_shape[3] if depthwise else w_shape[0]
    w = _conv_weights(b, rng, w_shape, cout, 3 if depthwise else 0)
    y = b.tensor([x_shape[0], *out_hw, cout], np.int16, scale=out_scale, zero_point=0)
    common = dict(padding=padding, strideW=stride, strideH=stride, dilationWFactor=dilation,
                  dilationHFactor=dilation, fusedActivationFunction=fused)
    if depthwise:
        builtin, options_type = OP.DEPTHWISE_CONV_2D, OPTIONS.DepthwiseConv2DOptions
        builtin_options = options(schema.DepthwiseConv2DOptionsT, depthMultiplier=cout // x_shape[3], **common)
    else:
        builtin, options_type = OP.CONV_2D, OPTIONS.Conv2DOptions
        builtin_options = options(schema.Conv2DOptionsT, **common)
    b.operator(builtin, [x, w, *_bias(b, rng, cout, bias)], [y], options_type, builtin_options)
    return b.build([x], [y])


def fully_connected_model(rows: int, depth: int, cout: int, per_channel: bool, bias: str | None, fused: int,
                          seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    b = TfliteBuilder()
    x = b.tensor([rows, depth], np.int16, scale=0.0005, zero_point=0)
    w = b.tensor([cout, depth], scale=rng.uniform(0.004, 0.02, cout) if per_channel else 0.01, zero_point=0,
                 data=rng.integers(-127, 128, (cout, depth)).astype(np.int8))
    y = b.tensor([rows, cout], np.int16, scale=0.002, zero_point=0)
    b.operator(OP.FULLY_CONNECTED, [x, w, *_bias(b, rng, cout, bias)], [y], OPTIONS.FullyConnectedOptions,
               options(schema.FullyConnectedOptionsT, fusedActivationFunction=fused))
    return b.build([x], [y])


def binary_model(builtin: int, options_type: int, options_class, b_shape, scales, fused: int) -> bytes:
    b = TfliteBuilder()
    x = b.tensor((1, 8, 32), np.int16, scale=scales[0])
    y = b.tensor(b_shape, np.int16, scale=scales[1])
    out = b.tensor((1, 8, 32), np.int16, scale=scales[2])
    b.operator(builtin, [x, y], [out], options_type, options(options_class, fusedActivationFunction=fused))
    return b.build([x, y], [out])


def pool_model(builtin: int, x_shape, kernel: int, stride: int, padding: int, out_hw, fused: int) -> bytes:
    b = TfliteBuilder()
    x = b.tensor(x_shape, np.int16, scale=0.001)
    y = b.tensor([x_shape[0], *out_hw, x_shape[3]], np.int16, scale=0.001)
    b.operator(builtin, [x], [y], OPTIONS.Pool2DOptions,
               options(schema.Pool2DOptionsT, padding=padding, strideW=stride, strideH=stride, filterWidth=kernel,
                       filterHeight=kernel, fusedActivationFunction=fused))
    return b.build([x], [y])


def quantize_model(shape, source, target) -> bytes:
    """QUANTIZE from ``source`` to ``target``, each ``(dtype, scale, zero point)``."""
    b = TfliteBuilder()
    x = b.tensor(shape, source[0], scale=source[1], zero_point=source[2])
    y = b.tensor(shape, target[0], scale=target[1], zero_point=target[2])
    b.operator(OP.QUANTIZE, [x], [y])
    return b.build([x], [y])


def layout_model(x_shape, builtin: int, constants, out_shape, options_type: int = 0, builtin_options=None,
                 second_scale: float | None = None) -> bytes:
    """``builtin`` on an int16 input (``"x"`` among the int32 ``constants``); with
    ``second_scale``, CONCATENATION of the input and a second int16 input on that scale."""
    b = TfliteBuilder()
    x = b.tensor(x_shape, np.int16, scale=0.001)
    inputs, model_inputs = [], [x]
    for c in constants:
        if c == "x":
            inputs.append(x)
        elif c == "x2":
            inputs.append(b.tensor(x_shape, np.int16, scale=second_scale))
            model_inputs.append(inputs[-1])
        else:
            inputs.append(b.tensor(np.shape(c), np.int32, data=np.asarray(c, dtype=np.int32)))
    y = b.tensor(out_shape, np.int16, scale=0.001)
    b.operator(builtin, inputs, [y], options_type, builtin_options)
    return b.build(model_inputs, [y])


def int16_cases(case) -> list:
    """Every 16x8 case, built with ``case(name, operator, model, inputs)``."""
    x = int16_input((1, 9, 8, 5), 100)
    found = []
    convs = (  # weights, output, padding, stride, dilation, fused, bias, depthwise, output scale
        ((6, 3, 3, 5), (9, 8), 0, 1, 1, 0, "int64", False, 0.004),
        ((7, 3, 2, 5), (4, 4), 1, 2, 1, 1, "int32", False, 0.002),
        ((4, 1, 1, 5), (9, 8), 1, 1, 1, 0, None, False, 0.001),
        ((6, 3, 3, 5), (5, 4), 1, 1, 2, 3, "int64", False, 0.0002),
        ((1, 3, 3, 5), (9, 8), 0, 1, 1, 0, "int64", True, 0.001),
        ((1, 3, 3, 10), (5, 4), 0, 2, 1, 1, "int64", True, 0.0005),
        ((1, 2, 2, 5), (8, 7), 1, 1, 1, 0, "int64", True, 0.0003),
    )
    for i, (w, out_hw, padding, stride, dilation, fused, bias, depthwise, scale) in enumerate(convs):
        name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        model = conv_model(x.shape, w, out_hw, padding, stride, dilation, fused, bias, depthwise, scale, 110 + i)
        found.append(case(f"{name.lower()}_16x8_{i}", f"{name}/16x8", model, (x,)))
    wide = int16_input((1, 6, 7, 8), 120)  # channels in fours: the DSP and Helium paths
    for i, (w, depthwise) in enumerate((((8, 3, 3, 8), False), ((1, 3, 3, 8), True), ((12, 1, 1, 8), False))):
        name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        model = conv_model(wide.shape, w, (6, 7), 0, 1, 1, 1, "int64", depthwise, 0.003, 125 + i)
        found.append(case(f"{name.lower()}_16x8_by4_{i}", f"{name}/16x8", model, (wide,)))
    fcs = ((3, 40, 10, True, "int64", 0), (2, 64, 7, False, "int32", 1), (1, 33, 5, True, None, 0))
    for i, (rows, depth, cout, per_channel, bias, fused) in enumerate(fcs):
        found.append(case(f"fully_connected_16x8_{i}", "FULLY_CONNECTED/16x8",
                          fully_connected_model(rows, depth, cout, per_channel, bias, fused, 130 + i),
                          (int16_input((rows, depth), 135 + i),)))
    a = int16_input((1, 8, 32), 140)
    for builtin, name, options_type, options_class in (
            (OP.ADD, "add", OPTIONS.AddOptions, schema.AddOptionsT),
            (OP.SUB, "sub", OPTIONS.SubOptions, schema.SubOptionsT),
            (OP.MUL, "mul", OPTIONS.MulOptions, schema.MulOptionsT)):
        out_scale = 0.5 if builtin == OP.MUL else 0.0005
        for i, (b_shape, scales, fused) in enumerate((((1, 8, 32), (0.0003, 0.0007, out_scale), 0),
                                                      ((1, 1, 32), (0.0005, 0.0002, out_scale / 4), 1))):
            found.append(case(f"{name}_16x8_{i}", f"{name.upper()}/16x8",
                              binary_model(builtin, options_type, options_class, b_shape, scales, fused),
                              (a, int16_input(b_shape, 141 + i))))
    for builtin, name in ((OP.AVERAGE_POOL_2D, "average_pool_2d"), (OP.MAX_POOL_2D, "max_pool_2d")):
        found.append(case(f"{name}_16x8_0", f"{name.upper()}/16x8", pool_model(builtin, x.shape, 3, 2, 0, (5, 4), 0),
                          (x,)))
        found.append(case(f"{name}_16x8_1", f"{name.upper()}/16x8", pool_model(builtin, x.shape, 2, 1, 1, (8, 7), 1),
                          (x,)))
    int8 = np.random.default_rng(150).integers(-128, 128, size=(1, 64), dtype=np.int8)
    for i, (source, target, data) in enumerate((
            ((np.int16, 0.001, 0), (np.int8, 0.1, -5), int16_input((1, 64), 151)),
            ((np.int8, 0.05, 3), (np.int16, 0.0001, 0), int8),
            ((np.int16, 0.001, 0), (np.int16, 0.0007, 0), int16_input((1, 64), 152)))):
        found.append(case(f"quantize_16x8_{i}", "QUANTIZE/16x8", quantize_model((1, 64), source, target), (data,)))
    layouts = (
        ("reshape", OP.RESHAPE, ["x", [1, 72, 5]], (1, 72, 5), 0, None, None),
        ("pad", OP.PAD, ["x", [[0, 0], [1, 2], [0, 1], [0, 0]]], (1, 12, 9, 5), 0, None, None),
        ("strided_slice", OP.STRIDED_SLICE, ["x", [0, 1, 0, 1], [1, 9, 8, 5], [1, 2, 3, 1]], (1, 4, 3, 4),
         OPTIONS.StridedSliceOptions, options(schema.StridedSliceOptionsT), None),
        ("concatenation", OP.CONCATENATION, ["x", "x2"], (1, 9, 8, 10), OPTIONS.ConcatenationOptions,
         options(schema.ConcatenationOptionsT, axis=3), 0.001),
    )
    for name, builtin, constants, out_shape, options_type, builtin_options, second in layouts:
        inputs = (x,) if second is None else (x, int16_input(x.shape, 160))
        found.append(case(f"{name}_16x8", f"{name.upper()}/16x8",
                          layout_model(x.shape, builtin, constants, out_shape, options_type, builtin_options, second),
                          inputs))
    return found
