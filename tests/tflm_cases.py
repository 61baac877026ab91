"""One-operator TFLite models whose TFLM outputs are edgec's operator goldens.

``scripts/tflm/make_goldens.py`` runs every case of :func:`cases` with TFLM's kernels (the
host build of ``scripts/tflm/operator_driver.cc``) and stores the outputs in
``tests/data/tflm_operators.npz``, keyed by case name, beside the SHA-256 of the model the
output belongs to; the tests rebuild each model from here and compare. Element-wise cases
feed all 256 int8 values, so they pin the operator on every input.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import numpy as np
from tflm_cases_16x8 import int16_cases

from tflite_builder import TfliteBuilder, options, schema

OP = schema.BuiltinOperator
OPTIONS = schema.BuiltinOptions
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
GOLDENS = Path(__file__).parent / "data" / "tflm_operators.npz"


@dataclasses.dataclass(frozen=True)
class Case:
    """A model (``.tflite`` bytes), its inputs, the name its golden is stored under, and the
    TFLite operator it tests."""

    name: str
    operator: str
    model: bytes
    inputs: tuple[np.ndarray, ...]
    output_dtype: type = np.int8

    @classmethod
    def of_outputs(cls, name: str, operator: str, model: bytes, inputs: tuple[np.ndarray, ...]) -> Case:
        """A case whose outputs have the model's output type (int16 in the 16x8 scheme)."""
        return cls(name, operator, model, inputs, _output_dtype(model))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.model).hexdigest()


@functools.cache
def goldens():
    """The stored goldens (``tests/data/tflm_operators.npz``)."""
    return np.load(GOLDENS)


def golden(case: Case) -> np.ndarray:
    """TFLM's output for ``case``: every output's values (of ``case.output_dtype``), in output
    order (an assertion error when the stored golden belongs to another model)."""
    assert str(goldens()[f"{case.name}.sha256"]) == case.digest, \
        f"the golden of {case.name} is of another model: run scripts/tflm/make_goldens.py"
    return goldens()[case.name]


def _output_dtype(model: bytes) -> type:
    parsed = schema.ModelT.InitFromPackedBuf(model, 0)
    graph = parsed.subgraphs[0]
    return np.int16 if graph.tensors[graph.outputs[0]].type == schema.TensorType.INT16 else np.int8


def unary_model(builtin: int, q_in, q_out, options_type: int = 0, builtin_options=None) -> bytes:
    """A model of one element-wise ``builtin`` from a [1, 256] input quantized ``q_in`` to ``q_out``."""
    b = TfliteBuilder()
    x = b.tensor(ALL_INT8.shape, scale=q_in[0], zero_point=q_in[1])
    y = b.tensor(ALL_INT8.shape, scale=q_out[0], zero_point=q_out[1])
    b.operator(builtin, [x], [y], options_type, builtin_options)
    return b.build([x], [y])


#: Input quantizations of the fixed-output activations: typical, saturating, coarse, fine.
_ACTIVATION_INPUTS = ((0.05, 3), (0.1, -128), (0.0078125, 0), (0.3, 20), (0.002, -5), (0.0625, 127))
#: (input, output) quantizations of HARD_SWISH and LEAKY_RELU.
_REQUANTIZING_PAIRS = (((0.05, 3), (0.04, -100)), ((0.1, -20), (0.06, -90)), ((0.02, 0), (0.02, -120)),
                       ((0.2, 10), (0.5, -10)), ((0.03, -128), (0.1, 50)))
_LEAKY_ALPHAS = (0.1, 0.2, 0.01, -0.3, 1.5)


def activation_cases() -> list[Case]:
    """LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU and RELU6 on every int8 input."""
    found = []
    for q_in in _ACTIVATION_INPUTS:
        tag = f"{q_in[0]}_{q_in[1]}"
        found.append(Case(f"logistic_{tag}", "LOGISTIC", unary_model(OP.LOGISTIC, q_in, (1 / 256, -128)), (ALL_INT8,)))
        found.append(Case(f"tanh_{tag}", "TANH", unary_model(OP.TANH, q_in, (1 / 128, 0)), (ALL_INT8,)))
        found.append(Case(f"relu6_{tag}", "RELU6", unary_model(OP.RELU6, q_in, q_in), (ALL_INT8,)))
    for q_in, q_out in _REQUANTIZING_PAIRS:
        tag = f"{q_in[0]}_{q_in[1]}_{q_out[0]}_{q_out[1]}"
        found.append(Case(f"hard_swish_{tag}", "HARD_SWISH", unary_model(OP.HARD_SWISH, q_in, q_out), (ALL_INT8,)))
        found.append(Case(f"relu_{tag}", "RELU", unary_model(OP.RELU, q_in, q_out), (ALL_INT8,)))
        for alpha in _LEAKY_ALPHAS:
            model = unary_model(OP.LEAKY_RELU, q_in, q_out, OPTIONS.LeakyReluOptions,
                           options(schema.LeakyReluOptionsT, alpha=alpha))
            found.append(Case(f"leaky_relu_{alpha}_{tag}", "LEAKY_RELU", model, (ALL_INT8,)))
    return found


def _random_input(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


def layout_model(shape, out_shape, builtin: int, constants, options_type: int = 0, builtin_options=None,
                  parts: int = 1, join: bool = True) -> bytes:
    """``builtin`` on an int8 ``shape`` input and int32 ``constants`` (``"x"`` marks where the
    input goes among them); with ``parts`` > 1 its outputs (``out_shape`` each, or a list of
    shapes) are the model's outputs, or with ``join`` concatenated in reverse order along the
    first axis that differs."""
    b = TfliteBuilder()
    q = (0.05, -3)
    x = b.tensor(shape, scale=q[0], zero_point=q[1])
    inputs = [x if c == "x" else b.tensor(np.shape(c), dtype=np.int32, data=np.asarray(c, dtype=np.int32))
              for c in constants]
    shapes = out_shape if parts > 1 and isinstance(out_shape[0], list | tuple) else [out_shape] * parts
    outs = [b.tensor(s, scale=q[0], zero_point=q[1]) for s in shapes]
    b.operator(builtin, inputs, outs, options_type, builtin_options)
    if parts == 1 or not join:
        return b.build([x], outs)
    axis = next(a for a in range(len(shape)) if shapes[0][a] != shape[a])
    joined = list(shape)
    y = b.tensor(joined, scale=q[0], zero_point=q[1])
    b.operator(OP.CONCATENATION, outs[::-1], [y], OPTIONS.ConcatenationOptions,
               options(schema.ConcatenationOptionsT, axis=axis))
    return b.build([x], [y])


def strided_options(begin_mask=0, end_mask=0, shrink=0):
    return options(schema.StridedSliceOptionsT, beginMask=begin_mask, endMask=end_mask, shrinkAxisMask=shrink)


def layout_cases() -> list[Case]:
    """SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, MIRROR_PAD and the two resizes on random inputs."""
    found = []
    x = _random_input((1, 5, 6, 7), 1)
    found.append(Case("slice", "SLICE", layout_model(x.shape, (1, 3, 4, 2), OP.SLICE,
                                                       ["x", [0, 1, 2, 3], [1, 3, -1, 2]]), (x,)))
    strided = (  # begin, end, strides, options, output shape
        ([0, 1, 0, 6], [1, 5, 6, 0], [1, 2, 1, -2], strided_options(), (1, 2, 6, 3)),
        ([0, -1, 5, 1], [1, 0, 0, 7], [1, -1, -2, 3], strided_options(begin_mask=0b0010, end_mask=0b0100), (1, 4, 3, 2)),
        ([0, 2, 0, 0], [1, 3, 6, 7], [1, 1, 1, 1], strided_options(shrink=0b0011), (6, 7)),
        ([0, -10, 1, -3], [1, 10, -1, 100], [1, 1, 2, 1], strided_options(), (1, 5, 2, 3)),
    )
    for i, (begin, end, stride, opts, out_shape) in enumerate(strided):
        model = layout_model(x.shape, out_shape, OP.STRIDED_SLICE, ["x", begin, end, stride],
                              OPTIONS.StridedSliceOptions, opts)
        found.append(Case(f"strided_slice_{i}", "STRIDED_SLICE", model, (x,)))
    y = _random_input((1, 4, 6, 9), 2)
    found.append(Case("split", "SPLIT", layout_model(y.shape, (1, 4, 6, 3), OP.SPLIT, [[3], "x"],
                                                       OPTIONS.SplitOptions, options(schema.SplitOptionsT, numSplits=3),
                                                       parts=3), (y,)))
    found.append(Case("split_outputs", "SPLIT", layout_model(y.shape, (1, 2, 6, 9), OP.SPLIT, [[1], "x"],
                                                               OPTIONS.SplitOptions,
                                                               options(schema.SplitOptionsT, numSplits=2),
                                                               parts=2, join=False), (y,)))
    found.append(Case("split_v", "SPLIT_V", layout_model(
        y.shape, [(1, 1, 6, 9), (1, 2, 6, 9), (1, 1, 6, 9)], OP.SPLIT_V, ["x", [1, -1, 1], [1]],
        OPTIONS.SplitVOptions, options(schema.SplitVOptionsT, numSplits=3), parts=3), (y,)))
    z = _random_input((1, 4, 5, 3), 3)
    for mode, pads in ((0, [[0, 0], [1, 3], [2, 4], [0, 2]]), (1, [[0, 0], [4, 2], [5, 1], [3, 0]])):
        out_shape = tuple(d + sum(p) for d, p in zip(z.shape, pads))
        model = layout_model(z.shape, out_shape, OP.MIRROR_PAD, ["x", pads], OPTIONS.MirrorPadOptions,
                              options(schema.MirrorPadOptionsT, mode=mode))
        found.append(Case(f"mirror_pad_{('reflect', 'symmetric')[mode]}", "MIRROR_PAD", model, (z,)))
    r = _random_input((1, 3, 4, 5), 4)
    for builtin, name, options_type, options_class in (
            (OP.RESIZE_NEAREST_NEIGHBOR, "resize_nearest", OPTIONS.ResizeNearestNeighborOptions,
             schema.ResizeNearestNeighborOptionsT),
            (OP.RESIZE_BILINEAR, "resize_bilinear", OPTIONS.ResizeBilinearOptions, schema.ResizeBilinearOptionsT)):
        for size in ((7, 9), (2, 3), (3, 8)):
            for align, half in ((False, False), (True, False), (False, True)):
                model = layout_model(r.shape, (1, *size, 5), builtin, ["x", list(size)], options_type,
                                      options(options_class, alignCorners=align, halfPixelCenters=half))
                tag = f"{size[0]}x{size[1]}{'_align' if align else ''}{'_half' if half else ''}"
                found.append(Case(f"{name}_{tag}", builtin_name(builtin), model, (r,)))
    return found


def prelu_model(shape, alpha: np.ndarray, q_in, q_alpha, q_out) -> bytes:
    """PRELU of an int8 ``shape`` input by the constant int8 ``alpha`` (broadcast)."""
    b = TfliteBuilder()
    x = b.tensor(shape, scale=q_in[0], zero_point=q_in[1])
    a = b.tensor(alpha.shape, scale=q_alpha[0], zero_point=q_alpha[1], data=alpha)
    y = b.tensor(shape, scale=q_out[0], zero_point=q_out[1])
    b.operator(OP.PRELU, [x, a], [y])
    return b.build([x], [y])


#: (input, alpha, output) quantizations of PRELU: typical, output finer than input, coarse alpha.
_PRELU_QUANTIZATIONS = (((0.05, -3), (0.01, 5), (0.04, 10)), ((0.1, 20), (0.004, -128), (0.02, -100)),
                        ((0.02, 0), (0.05, 0), (0.03, -128)))


def prelu_cases() -> list[Case]:
    """PRELU with per-channel and single alphas; every int8 input meets every alpha."""
    found = []
    x = ALL_INT8.reshape(1, 32, 8)
    for i, (q_in, q_alpha, q_out) in enumerate(_PRELU_QUANTIZATIONS):
        channel_alpha = _random_input((8,), 10 + i)
        found.append(Case(f"prelu_channels_{i}", "PRELU", prelu_model(x.shape, channel_alpha, q_in, q_alpha, q_out),
                          (x,)))
        single = _random_input((1, 1, 1), 20 + i)
        found.append(Case(f"prelu_single_{i}", "PRELU", prelu_model(x.shape, single, q_in, q_alpha, q_out), (x,)))
    return found


def grouped_conv_model(x_shape, w_shape, out_hw, padding: int, stride: int, fused: int, seed: int) -> bytes:
    """CONV_2D whose weights' depth is a fraction of the input's channels (a grouped conv),
    per-channel weight scales and an int32 bias."""
    rng = np.random.default_rng(seed)
    b = TfliteBuilder()
    x = b.tensor(x_shape, scale=0.05, zero_point=-4)
    cout = w_shape[0]
    w = b.tensor(w_shape, scale=rng.uniform(0.005, 0.02, cout), zero_point=0, axis=0,
                 data=rng.integers(-127, 128, w_shape).astype(np.int8))
    bias = b.tensor([cout], np.int32, data=rng.integers(-2000, 2000, cout).astype(np.int32))
    y = b.tensor([x_shape[0], *out_hw, cout], scale=0.08, zero_point=6)
    b.operator(OP.CONV_2D, [x, w, bias], [y], OPTIONS.Conv2DOptions,
               options(schema.Conv2DOptionsT, padding=padding, strideW=stride, strideH=stride, dilationWFactor=1,
                       dilationHFactor=1, fusedActivationFunction=fused))
    return b.build([x], [y])


def grouped_conv_cases() -> list[Case]:
    """CONV_2D with 2 groups (3x3, SAME, RELU) and with 4 (1x1, stride 2, VALID)."""
    x = _random_input((1, 6, 7, 8), 30)
    return [Case("conv_2d_groups_2", "CONV_2D", grouped_conv_model(x.shape, (12, 3, 3, 4), (6, 7), 0, 1, 1, 31), (x,)),
            Case("conv_2d_groups_4", "CONV_2D", grouped_conv_model(x.shape, (8, 1, 1, 2), (3, 4), 1, 2, 0, 32), (x,))]


def transpose_conv_model(x_shape, w_shape, out_hw, padding: int, stride: int, fused: int, bias: bool,
                         seed: int) -> bytes:
    """TRANSPOSE_CONV (inputs: output shape, weights, input[, bias]) with per-channel weight scales."""
    rng = np.random.default_rng(seed)
    b = TfliteBuilder()
    cout = w_shape[0]
    out_shape = [x_shape[0], *out_hw, cout]
    shape = b.tensor([4], np.int32, data=np.asarray(out_shape, dtype=np.int32))
    w = b.tensor(w_shape, scale=rng.uniform(0.005, 0.02, cout), zero_point=0, axis=0,
                 data=rng.integers(-127, 128, w_shape).astype(np.int8))
    x = b.tensor(x_shape, scale=0.05, zero_point=7)
    inputs = [shape, w, x]
    if bias:
        inputs.append(b.tensor([cout], np.int32, data=rng.integers(-3000, 3000, cout).astype(np.int32)))
    y = b.tensor(out_shape, scale=0.1, zero_point=-5)
    b.operator(OP.TRANSPOSE_CONV, inputs, [y], OPTIONS.TransposeConvOptions,
               options(schema.TransposeConvOptionsT, padding=padding, strideW=stride, strideH=stride,
                       fusedActivationFunction=fused))
    return b.build([x], [y])


def transpose_conv_cases() -> list[Case]:
    """TRANSPOSE_CONV: SAME and VALID, odd and even kernels, strides 2 and 1, with and without bias."""
    x = _random_input((1, 4, 5, 6), 40)
    shapes = (  # weights, output size, padding, stride, fused activation, bias
        ((8, 3, 3, 6), (8, 10), 0, 2, 1, True), ((8, 3, 3, 6), (9, 11), 1, 2, 0, False),
        ((5, 4, 4, 6), (8, 10), 0, 2, 0, True), ((3, 2, 2, 6), (5, 6), 1, 1, 3, True))
    return [Case(f"transpose_conv_{i}", "TRANSPOSE_CONV",
                 transpose_conv_model(x.shape, w, out_hw, padding, stride, fused, bias, 41 + i), (x,))
            for i, (w, out_hw, padding, stride, fused, bias) in enumerate(shapes)]


def batch_matmul_model(a_shape, b_shape, out_shape, adj_x: bool, adj_y: bool, constant_b: bool, seed: int) -> bytes:
    """BATCH_MATMUL of an int8 input by a constant int8 tensor (or a second input)."""
    rng = np.random.default_rng(seed)
    b = TfliteBuilder()
    a = b.tensor(a_shape, scale=0.05, zero_point=-9)
    data = rng.integers(-128, 128, b_shape).astype(np.int8) if constant_b else None
    right = b.tensor(b_shape, scale=0.03, zero_point=4, data=data)
    y = b.tensor(out_shape, scale=0.2, zero_point=2)
    b.operator(OP.BATCH_MATMUL, [a, right], [y], OPTIONS.BatchMatMulOptions,
               options(schema.BatchMatMulOptionsT, adjX=adj_x, adjY=adj_y))
    return b.build([a] if constant_b else [a, right], [y])


def batch_matmul_cases() -> list[Case]:
    """BATCH_MATMUL: per-batch and broadcast batches, each operand transposed (adj)."""
    shapes = (  # a, b, output, adj_x, adj_y
        ((2, 3, 4, 5), (2, 3, 5, 6), (2, 3, 4, 6), False, False),
        ((1, 3, 4, 5), (2, 1, 5, 6), (2, 3, 4, 6), False, False),
        ((2, 5, 4), (2, 6, 5), (2, 4, 6), True, True),
        ((3, 4, 7), (7, 2), (3, 4, 2), False, False))
    found = [Case(f"batch_matmul_{i}", "BATCH_MATMUL", batch_matmul_model(a, b, out, adj_x, adj_y, True, 50 + i),
                  (_random_input(a, 60 + i),))
             for i, (a, b, out, adj_x, adj_y) in enumerate(shapes)]
    a, b, out, adj_x, adj_y = shapes[2]  # two inputs: the model's second operand is computed elsewhere
    found.append(Case("batch_matmul_two_inputs", "BATCH_MATMUL", batch_matmul_model(a, b, out, adj_x, adj_y, False, 54),
                      (_random_input(a, 64), _random_input(b, 65))))
    return found


def binary_model(builtin: int, options_type: int, builtin_options, b_shape, q_a, q_b, q_out) -> bytes:
    """``builtin`` (ADD, SUB, MUL) of two int8 inputs, [1, 16, 16] and ``b_shape`` (broadcast)."""
    b = TfliteBuilder()
    x = b.tensor((1, 16, 16), scale=q_a[0], zero_point=q_a[1])
    y = b.tensor(b_shape, scale=q_b[0], zero_point=q_b[1])
    out = b.tensor((1, 16, 16), scale=q_out[0], zero_point=q_out[1])
    b.operator(builtin, [x, y], [out], options_type, builtin_options)
    return b.build([x, y], [out])


#: (a, b, output) quantizations: typical, an output finer than both inputs (MUL: a left
#: shift), coarse inputs, a narrow output range.
_BINARY_QUANTIZATIONS = (((0.05, -3), (0.04, 10), (0.08, 2)), ((0.2, 0), (0.3, -20), (0.01, -5)),
                         ((0.5, 100), (0.1, -128), (0.6, 0)), ((0.02, 7), (0.02, -7), (0.03, -128)))


def binary_cases() -> list[Case]:
    """ADD, SUB and MUL with every int8 value of the first input against random second ones, in
    four quantizations, same-shaped and broadcast along the last axis."""
    a = ALL_INT8.reshape(1, 16, 16)
    found = []
    for builtin, name, options_type, options_class in (
            (OP.ADD, "add", OPTIONS.AddOptions, schema.AddOptionsT),
            (OP.SUB, "sub", OPTIONS.SubOptions, schema.SubOptionsT),
            (OP.MUL, "mul", OPTIONS.MulOptions, schema.MulOptionsT)):
        for i, (q_a, q_b, q_out) in enumerate(_BINARY_QUANTIZATIONS):
            for shape, tag in (((1, 16, 16), ""), ((1, 1, 16), "_broadcast")):
                model = binary_model(builtin, options_type, options_class(), shape, q_a, q_b, q_out)
                found.append(Case(f"{name}_{i}{tag}", builtin_name(builtin), model, (a, _random_input(shape, 70 + i))))
    return found


def builtin_name(builtin: int) -> str:
    return next(name for name, value in vars(OP).items() if value == builtin)


def cases() -> list[Case]:
    """Every case with a stored golden."""
    return (activation_cases() + layout_cases() + prelu_cases() + grouped_conv_cases() + transpose_conv_cases()
            + batch_matmul_cases() + binary_cases() + int16_cases(Case.of_outputs))
