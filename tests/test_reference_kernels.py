"""Each vectorized reference kernel against a scalar loop written from the TFLite definition."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from edgec.passes.multipliers import add_attributes, mul_attributes, softmax_attributes
from edgec.passes.qparams import QParams
from edgec.reference import conv, elementwise, layout, pooling, softmax

from exact_arith import clamp, mbqm, round_half_away


def random_requant(rng, channels):
    return {"output_multiplier": rng.integers(1 << 30, (1 << 31) - 1, channels).tolist(),
            "output_shift": rng.integers(-12, -6, channels).tolist()}


def loop_conv(x, w, b, a, depthwise=False):
    n, h, wd, cin = x.shape
    kh, kw = w.shape[1:3]
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    top, left, bottom, right = a["pads"]
    ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    cout = w.shape[3] if depthwise else w.shape[0]
    out = np.zeros((n, ho, wo, cout), dtype=np.int8)
    for bi, oy, ox, oc in itertools.product(range(n), range(ho), range(wo), range(cout)):
        acc = 0
        for fy, fx in itertools.product(range(kh), range(kw)):
            iy, ix = oy * sh - top + fy * dh, ox * sw - left + fx * dw
            if not (0 <= iy < h and 0 <= ix < wd):
                continue
            if depthwise:
                ic = oc // a["depth_multiplier"]
                acc += int(w[0, fy, fx, oc]) * (int(x[bi, iy, ix, ic]) - a["input_zero_point"])
            else:
                for ic in range(cin):
                    acc += int(w[oc, fy, fx, ic]) * (int(x[bi, iy, ix, ic]) - a["input_zero_point"])
        acc += int(b[oc])
        value = mbqm(acc, a["output_multiplier"][oc], a["output_shift"][oc]) + a["output_zero_point"]
        out[bi, oy, ox, oc] = clamp(value, a["activation_min"], a["activation_max"])
    return out


@pytest.mark.parametrize("kernel,strides,dilations,pads", [
    ((3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((3, 2), (2, 1), (1, 1), (0, 1, 1, 0)),   # non-square kernel, stride 2, asymmetric padding
    ((2, 3), (2, 2), (2, 1), (2, 0, 1, 2)),   # dilation
    ((1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
])
def test_conv_matches_the_loop(rng, kernel, strides, dilations, pads):
    x = rng.integers(-128, 128, (1, 7, 6, 5), dtype=np.int8)
    w = rng.integers(-127, 128, (3, *kernel, 5), dtype=np.int8)
    b = rng.integers(-5000, 5000, 3).astype(np.int32)
    a = {"input_zero_point": -7, "output_zero_point": 3, "activation_min": -100, "activation_max": 120,
         "strides": list(strides), "dilations": list(dilations), "pads": list(pads), **random_requant(rng, 3)}
    np.testing.assert_array_equal(conv.conv(a, "double", x, w, b), loop_conv(x, w, b, a))


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_conv_matches_the_loop(rng, multiplier):
    x = rng.integers(-128, 128, (1, 6, 5, 3), dtype=np.int8)
    w = rng.integers(-127, 128, (1, 3, 3, 3 * multiplier), dtype=np.int8)
    b = rng.integers(-3000, 3000, 3 * multiplier).astype(np.int32)
    a = {"input_zero_point": 12, "output_zero_point": -20, "activation_min": -128, "activation_max": 127,
         "strides": [2, 1], "dilations": [1, 1], "pads": [1, 0, 1, 1], "depth_multiplier": multiplier,
         **random_requant(rng, 3 * multiplier)}
    np.testing.assert_array_equal(conv.depthwise_conv(a, "double", x, w, b), loop_conv(x, w, b, a, depthwise=True))


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_fully_connected_matches_the_loop(rng, rounding):
    x = rng.integers(-128, 128, (2, 17), dtype=np.int8)
    w = rng.integers(-127, 128, (5, 17), dtype=np.int8)
    b = rng.integers(-3000, 3000, 5).astype(np.int32)
    a = {"input_zero_point": -3, "output_zero_point": 9, "activation_min": -128, "activation_max": 127,
         **random_requant(rng, 5)}
    expected = np.zeros((2, 5), dtype=np.int8)
    for i, o in itertools.product(range(2), range(5)):
        acc = sum(int(w[o, k]) * (int(x[i, k]) + 3) for k in range(17)) + int(b[o])
        expected[i, o] = clamp(mbqm(acc, a["output_multiplier"][o], a["output_shift"][o], rounding) + 9, -128, 127)
    np.testing.assert_array_equal(conv.fully_connected(a, rounding, x, w, b), expected)


def test_average_pool_counts_only_valid_elements_and_rounds_half_away(rng):
    x = rng.integers(-128, 128, (1, 5, 4, 3), dtype=np.int8)
    a = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "activation_min": -128, "activation_max": 127}
    got = pooling.average_pool(a, "double", x)
    for oy, ox, c in itertools.product(range(got.shape[1]), range(got.shape[2]), range(3)):
        window = [int(x[0, iy, ix, c]) for iy in range(oy * 2 - 1, oy * 2 + 2) for ix in range(ox * 2, ox * 2 + 2)
                  if 0 <= iy < 5 and 0 <= ix < 4]
        assert got[0, oy, ox, c] == round_half_away(Fraction(sum(window), len(window)))


def test_max_pool_ignores_padding(rng):
    x = rng.integers(-128, -100, (1, 4, 4, 2), dtype=np.int8)
    a = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "activation_min": -128, "activation_max": 127}
    got = pooling.max_pool(a, "double", x)
    padded = np.pad(x.astype(int), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-1000)
    for oy, ox, c in itertools.product(range(4), range(4), range(2)):
        assert got[0, oy, ox, c] == padded[0, oy:oy + 3, ox:ox + 3, c].max()


@pytest.mark.parametrize("op", ["Add", "Sub"])
def test_add_and_sub_match_the_tflite_formula_with_broadcasting(rng, op):
    qa, qb, qy = QParams(0.05, -3), QParams(0.021, 10), QParams(0.08, 2)
    a_attrs = {**add_attributes(qa, qb, qy, subtract=op == "Sub"), "activation_min": -128, "activation_max": 127}
    x = rng.integers(-128, 128, (1, 3, 2, 4), dtype=np.int8)
    y = rng.integers(-128, 128, (1, 1, 1, 4), dtype=np.int8)
    got = (elementwise.add if op == "Add" else elementwise.sub)(a_attrs, "double", x, y)
    s = a_attrs
    for idx in itertools.product(range(1), range(3), range(2), range(4)):
        a1 = mbqm((int(x[idx]) - s["input1_zero_point"]) << 20, s["input1_multiplier"], s["input1_shift"])
        b1 = mbqm((int(y[0, 0, 0, idx[3]]) - s["input2_zero_point"]) << 20, s["input2_multiplier"], s["input2_shift"])
        raw = a1 + b1 if op == "Add" else a1 - b1
        assert got[idx] == clamp(mbqm(raw, s["output_multiplier"], s["output_shift"]) + s["output_zero_point"], -128, 127)
        real = qa.scale * (int(x[idx]) + 3) + (1 if op == "Add" else -1) * qb.scale * (int(y[0, 0, 0, idx[3]]) - 10)
        assert abs(qy.dequantize(got[idx]) - np.clip(real, qy.dequantize(-128), qy.dequantize(127))) <= qy.scale


def test_mul_matches_the_tflite_formula(rng):
    qa, qb, qy = QParams(0.05, -3), QParams(0.021, 10), QParams(0.01, 2)
    attrs = {**mul_attributes(qa, qb, qy), "activation_min": -128, "activation_max": 127}
    x, y = rng.integers(-128, 128, (2, 5), dtype=np.int8), rng.integers(-128, 128, (2, 5), dtype=np.int8)
    got = elementwise.mul(attrs, "double", x, y)
    for i, j in itertools.product(range(2), range(5)):
        product = (int(x[i, j]) + 3) * (int(y[i, j]) - 10)
        assert got[i, j] == clamp(mbqm(product, attrs["output_multiplier"], attrs["output_shift"]) + 2, -128, 127)


@pytest.mark.parametrize("scale", [1 / 16, 0.1, 0.37, 0.02])
def test_softmax_is_the_float_softmax_within_one_output_step(rng, scale):
    """Tolerance: the fixed-point exp/reciprocal are accurate to < 1 LSB of the 1/256 output."""
    x = rng.integers(-128, 128, (6, 10), dtype=np.int8)
    got = softmax.softmax(softmax_attributes(scale), "double", x)
    real = np.exp(scale * (x.astype(np.float64) - x.max(axis=1, keepdims=True)))
    real /= real.sum(axis=1, keepdims=True)
    assert np.abs((got.astype(int) + 128) / 256 - real).max() <= 1 / 256


def test_quantize_rounds_half_away_in_float32_and_saturates():
    attrs = {"scale": 0.5, "zero_point": -1, "min": -128, "max": 127, "rounding": "half_away"}
    x = np.array([0.25, -0.25, 0.75, 1000.0, -1000.0, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(elementwise.quantize(attrs, "double", x), [0, -2, 1, 127, -128, -1])
    half_even = {**attrs, "rounding": "half_even", "min": -3, "max": 2}
    np.testing.assert_array_equal(elementwise.quantize(half_even, "double", x), [-1, -1, 1, 2, -3, -1])
    np.testing.assert_array_equal(elementwise.dequantize(attrs, "double", np.array([-1, 1], np.int8)), [0.0, 1.0])


def test_requantize_and_clamp(rng):
    x = rng.integers(-128, 128, 50, dtype=np.int8)
    attrs = {"input_zero_point": 4, "output_zero_point": -9, "output_multiplier": 1518500250, "output_shift": 1,
             "activation_min": -100, "activation_max": 100}
    got = elementwise.requantize(attrs, "double", x)
    np.testing.assert_array_equal(got, [clamp(mbqm(int(v) - 4, 1518500250, 1) - 9, -100, 100) for v in x])
    np.testing.assert_array_equal(elementwise.clamp({"min": -5, "max": 7}, "double", x), np.clip(x, -5, 7))


def test_layout_kernels(rng):
    x = rng.integers(-128, 128, (1, 2, 3, 4), dtype=np.int8)
    np.testing.assert_array_equal(layout.transpose({"perm": [0, 3, 1, 2]}, "double", x), x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(layout.reshape({"shape": [1, 24]}, "double", x), x.reshape(1, 24))
    np.testing.assert_array_equal(layout.concat({"axis": 3}, "double", x, x), np.concatenate([x, x], axis=3))
    padded = layout.pad({"pads": [0, 1, 0, 0, 0, 0, 2, 0], "value": -5, "mode": "constant"}, "double", x)
    assert padded.shape == (1, 3, 5, 4) and padded.dtype == np.int8
    assert (padded[0, 0] == -5).all() and (padded[0, :, 3:] == -5).all()
    np.testing.assert_array_equal(padded, np.pad(x, [(0, 0), (1, 0), (0, 2), (0, 0)], constant_values=-5))
