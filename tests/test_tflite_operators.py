"""Each TFLite operator edgec maps, in a one-operator model, against LiteRT's reference kernels.

LiteRT's reference kernels compute what TFLM computes (except FULLY_CONNECTED's single
rounding, covered by the ``litert`` mode), so these pin the operators the four MLPerf Tiny
models do not use: MEAN, MAX_POOL_2D, PAD, CONCATENATION, SUB, MUL, QUANTIZE, DEQUANTIZE.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgec
from edgec.reference import ReferenceExecutor

from tflite_builder import TfliteBuilder, options, reference_interpreter, schema

OP = schema.BuiltinOperator
OPTIONS = schema.BuiltinOptions


def run_both(tmp_path, data: bytes, inputs: list[np.ndarray], rounding="double"):
    path = tmp_path / "op.tflite"
    path.write_bytes(data)
    interpreter = reference_interpreter(path)
    for detail, x in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    theirs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    model = edgec.load(path)
    executor = ReferenceExecutor(model, rounding)
    ours = executor.run(dict(zip(executor.input_names, inputs)))[executor.output_names[0]]
    return ours, theirs


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def int8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("axes,keep,in_q,out_q", [
    ([1, 2], True, (0.05, 3), (0.02, -4)),
    ([1, 2], False, (0.05, 3), (0.05, 3)),
    ([2], True, (0.1, -10), (0.03, 7)),
])
def test_mean(tmp_path, rng, axes, keep, in_q, out_q):
    b = TfliteBuilder()
    x = b.tensor([1, 5, 7, 6], scale=in_q[0], zero_point=in_q[1])
    a = b.tensor([len(axes)], np.int32, data=np.array(axes, np.int32))
    out_shape = [1, 1 if 1 in axes else 5, 1 if 2 in axes else 7, 6]
    if not keep:
        out_shape = [d for i, d in enumerate(out_shape) if i not in axes]
    y = b.tensor(out_shape, scale=out_q[0], zero_point=out_q[1])
    b.operator(OP.MEAN, [x, a], [y], OPTIONS.ReducerOptions, options(schema.ReducerOptionsT, keepDims=keep))
    for _ in range(5):
        ours, theirs = run_both(tmp_path, b.build([x], [y]), [int8(rng, [1, 5, 7, 6])])
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("padding,activation", [(0, 0), (1, 1), (0, 3)])
def test_max_and_average_pool(tmp_path, rng, padding, activation):
    for builtin in (OP.MAX_POOL_2D, OP.AVERAGE_POOL_2D):
        b = TfliteBuilder()
        x = b.tensor([1, 7, 6, 3], scale=0.05, zero_point=-20)
        out_hw = [4, 3] if padding == 0 else [3, 2]
        y = b.tensor([1, *out_hw, 3], scale=0.05, zero_point=-20)
        b.operator(builtin, [x], [y], OPTIONS.Pool2DOptions,
                   options(schema.Pool2DOptionsT, padding=padding, strideW=2, strideH=2, filterWidth=3,
                           filterHeight=2, fusedActivationFunction=activation))
        ours, theirs = run_both(tmp_path, b.build([x], [y]), [int8(rng, [1, 7, 6, 3])])
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("builtin,options_type,options_cls", [
    (OP.ADD, OPTIONS.AddOptions, schema.AddOptionsT),
    (OP.SUB, OPTIONS.SubOptions, schema.SubOptionsT),
    (OP.MUL, OPTIONS.MulOptions, schema.MulOptionsT),
])
@pytest.mark.parametrize("broadcast", [False, True])
def test_binary_operators(tmp_path, rng, builtin, options_type, options_cls, broadcast):
    b = TfliteBuilder()
    x = b.tensor([1, 4, 5, 3], scale=0.07, zero_point=5)
    z_shape = [1, 1, 1, 3] if broadcast else [1, 4, 5, 3]
    z = b.tensor(z_shape, scale=0.031, zero_point=-9)
    y = b.tensor([1, 4, 5, 3], scale=0.09 if builtin != OP.MUL else 0.3, zero_point=2)
    b.operator(builtin, [x, z], [y], options_type, options(options_cls, fusedActivationFunction=1))
    for _ in range(3):
        ours, theirs = run_both(tmp_path, b.build([x, z], [y]), [int8(rng, [1, 4, 5, 3]), int8(rng, z_shape)])
        np.testing.assert_array_equal(ours, theirs)


def test_pad_and_concatenation(tmp_path, rng):
    b = TfliteBuilder()
    x = b.tensor([1, 3, 3, 2], scale=0.1, zero_point=4)
    paddings = b.tensor([4, 2], np.int32, data=np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32))
    padded = b.tensor([1, 6, 4, 2], scale=0.1, zero_point=4)
    other = b.tensor([1, 6, 4, 3], scale=0.1, zero_point=4)
    y = b.tensor([1, 6, 4, 5], scale=0.1, zero_point=4)
    b.operator(OP.PAD, [x, paddings], [padded], OPTIONS.PadOptions, schema.PadOptionsT())
    b.operator(OP.CONCATENATION, [padded, other], [y], OPTIONS.ConcatenationOptions,
               options(schema.ConcatenationOptionsT, axis=-1))
    ours, theirs = run_both(tmp_path, b.build([x, other], [y]), [int8(rng, [1, 3, 3, 2]), int8(rng, [1, 6, 4, 3])])
    np.testing.assert_array_equal(ours, theirs)


def test_quantize_requantize_dequantize(tmp_path, rng):
    b = TfliteBuilder()
    x = b.tensor([2, 10], np.float32)
    q = b.tensor([2, 10], scale=0.02, zero_point=-3)
    r = b.tensor([2, 10], scale=0.045, zero_point=11)
    y = b.tensor([2, 10], np.float32)
    b.operator(OP.QUANTIZE, [x], [q])
    b.operator(OP.QUANTIZE, [q], [r])
    b.operator(OP.DEQUANTIZE, [r], [y])
    x_data = (rng.normal(size=(2, 10)) * 2).astype(np.float32)
    x_data[0, :4] = [0.01, -0.01, 0.03, 1e6]  # ties of x/scale and saturation
    ours, theirs = run_both(tmp_path, b.build([x], [y]), [x_data])
    np.testing.assert_array_equal(ours, theirs)


def test_per_channel_fully_connected_and_depthwise(tmp_path, rng):
    b = TfliteBuilder()
    x = b.tensor([1, 5, 5, 2], scale=0.05, zero_point=1)
    dw_w = b.tensor([1, 3, 3, 4], scale=[0.01, 0.02, 0.015, 0.03], zero_point=0, axis=3,
                    data=rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8))
    dw_b = b.tensor([4], np.int32, data=rng.integers(-500, 500, 4).astype(np.int32))
    dw_y = b.tensor([1, 3, 3, 4], scale=0.04, zero_point=-2)
    b.operator(OP.DEPTHWISE_CONV_2D, [x, dw_w, dw_b], [dw_y], OPTIONS.DepthwiseConv2DOptions,
               options(schema.DepthwiseConv2DOptionsT, padding=1, strideW=1, strideH=1, depthMultiplier=2,
                       dilationWFactor=1, dilationHFactor=1, fusedActivationFunction=3))
    fc_w = b.tensor([6, 36], scale=np.linspace(0.01, 0.03, 6), zero_point=0, axis=0,
                    data=rng.integers(-127, 128, (6, 36)).astype(np.int8))
    y = b.tensor([1, 6], scale=0.2, zero_point=3)
    b.operator(OP.FULLY_CONNECTED, [dw_y, fc_w, -1], [y], OPTIONS.FullyConnectedOptions,
               schema.FullyConnectedOptionsT())
    for _ in range(5):
        ours, theirs = run_both(tmp_path, b.build([x], [y]), [int8(rng, [1, 5, 5, 2])], rounding="litert")
        np.testing.assert_array_equal(ours, theirs)
