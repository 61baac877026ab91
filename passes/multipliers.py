"""Integer attributes of edgec operators, derived from quantization parameters.

Each function mirrors the "prepare" step of the corresponding TFLM kernel, including the
precision in which the real multiplier is formed (double for most; float32 for SUB and
per-tensor FULLY_CONNECTED), so that graphs built from ONNX and from TFLite share exactly
the same integers.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.fixedpoint import quantize_multiplier, quantize_multipliers
from edgec.inttype import INT8, IntType
from edgec.passes.qparams import QParams

ADD_LEFT_SHIFT = 20
#: ADD/SUB's left shift on int16 tensors (TFLM's general int16 path).
INT16_ADD_LEFT_SHIFT = 15
SOFTMAX_OUTPUT = QParams(1.0 / 256.0, -128)
_SOFTMAX_INTEGER_BITS = 5


class MultiplierRangeError(ValueError):
    """The scales around an operator give a multiplier its int8 kernel cannot take.

    A model problem (scales or calibrated ranges that differ by many orders of magnitude),
    which the callers report naming the operator.
    """


def clamp_attributes(int_type: IntType) -> dict:
    """``activation_min``/``activation_max`` keeping a requantizing operator's results in
    ``int_type``; none for int8, whose range is the attributes' default (int8 nodes stay as
    they always were)."""
    if int_type == INT8:
        return {}
    return {"activation_min": int_type.min, "activation_max": int_type.max}


def channel_requant_attributes(input_scale: float, weight_scales: np.ndarray, output_scale: float) -> dict:
    """Per-channel multipliers of Conv/DepthwiseConv/per-channel FullyConnected.

    ``real[c] = double(s_in) * double(s_w[c]) / double(s_out)``.
    """
    real = np.float64(input_scale) * weight_scales.astype(np.float64) / np.float64(output_scale)
    multipliers, shifts = quantize_multipliers(real)
    return {"output_multiplier": multipliers.tolist(), "output_shift": shifts.tolist()}


def per_tensor_fc_attributes(input_scale: float, weight_scale: float, output_scale: float) -> dict:
    """Per-tensor FULLY_CONNECTED: the product ``s_in * s_w`` is rounded to float32 first."""
    product = np.float32(np.float32(input_scale) * np.float32(weight_scale))
    multiplier, shift = quantize_multiplier(float(np.float64(product) / np.float64(output_scale)))
    return {"output_multiplier": [multiplier], "output_shift": [shift]}


def _smaller_than_one(real: float, what: str) -> tuple[int, int]:
    if not 0.0 < real < 1.0:
        raise MultiplierRangeError(f"{what} multiplier {real} is outside (0, 1)")
    return quantize_multiplier(real)


def add_attributes(a: QParams, b: QParams, out: QParams, subtract: bool = False,
                   left_shift: int = ADD_LEFT_SHIFT) -> dict:
    """ADD (double precision) or SUB (float32 precision) parameters, left shift 20 (15 on int16)."""
    if subtract:
        twice_max = np.float32(2.0 * max(np.float32(a.scale), np.float32(b.scale)))
        real_a = float(np.float32(np.float32(a.scale) / twice_max))
        real_b = float(np.float32(np.float32(b.scale) / twice_max))
        real_out = float(np.float32(twice_max / np.float32((1 << left_shift) * np.float32(out.scale))))
    else:
        twice_max = 2.0 * max(a.scale, b.scale)
        real_a, real_b = a.scale / twice_max, b.scale / twice_max
        real_out = twice_max / ((1 << left_shift) * out.scale)
    m1, s1 = _smaller_than_one(real_a, "input 1")
    m2, s2 = _smaller_than_one(real_b, "input 2")
    mo, so = _smaller_than_one(real_out, "output")
    return {
        "input1_zero_point": a.zero_point, "input2_zero_point": b.zero_point,
        "output_zero_point": out.zero_point, "left_shift": left_shift,
        "input1_multiplier": m1, "input1_shift": s1, "input2_multiplier": m2, "input2_shift": s2,
        "output_multiplier": mo, "output_shift": so,
    }


def mul_attributes(a: QParams, b: QParams, out: QParams) -> dict:
    """MUL: ``real = s_a * s_b / s_out`` in double."""
    multiplier, shift = quantize_multiplier(a.scale * b.scale / out.scale)
    return {
        "input1_zero_point": a.zero_point, "input2_zero_point": b.zero_point,
        "output_zero_point": out.zero_point, "output_multiplier": multiplier, "output_shift": shift,
    }


def prelu_attributes(x: QParams, alpha: QParams, out: QParams) -> dict:
    """PRELU (TFLM's CalculatePreluParams): ``s_x / s_out`` and ``s_x s_alpha / s_out`` in double."""
    identity_multiplier, identity_shift = quantize_multiplier(x.scale / out.scale)
    alpha_multiplier, alpha_shift = quantize_multiplier(x.scale * alpha.scale / out.scale)
    return {"input_zero_point": x.zero_point, "alpha_zero_point": alpha.zero_point,
            "output_zero_point": out.zero_point, "identity_multiplier": identity_multiplier,
            "identity_shift": identity_shift, "alpha_multiplier": alpha_multiplier, "alpha_shift": alpha_shift}


def requantize_attributes(source: QParams, target: QParams) -> dict:
    """Requantize (TFLite QUANTIZE int8->int8): ``real = s_in / s_out`` in double."""
    multiplier, shift = quantize_multiplier(source.scale / target.scale)
    return {
        "input_zero_point": source.zero_point, "output_zero_point": target.zero_point,
        "output_multiplier": multiplier, "output_shift": shift,
    }


def softmax_attributes(input_scale: float, beta: float = 1.0) -> dict:
    """SOFTMAX: input rescaled to Q5.26 (``beta * s_in * 2^26``) and the exp underflow radius."""
    real = min(beta * input_scale * float(1 << (31 - _SOFTMAX_INTEGER_BITS)), float((1 << 31) - 1))
    if real <= 1.0:
        raise MultiplierRangeError(f"softmax input scale {input_scale} is too small (beta*scale*2^26 = {real} <= 1)")
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(((1 << _SOFTMAX_INTEGER_BITS) - 1) * float(1 << (31 - _SOFTMAX_INTEGER_BITS))
                        / float(1 << left_shift))
    return {"input_multiplier": multiplier, "input_left_shift": left_shift, "diff_min": -radius}


def mean_attributes(input_q: QParams, output_q: QParams, count: int) -> dict:
    """MEAN over ``count`` elements: ``s_in / s_out`` with ``1/count`` folded into the multiplier.

    As TFLM's QuantizedMeanOrSum: ``k = min(floor(log2 count), 32, 31 + shift)``,
    ``multiplier' = (multiplier << k) // count``, ``shift' = shift - k``.
    """
    multiplier, shift = quantize_multiplier(input_q.scale / output_q.scale)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return {
        "input_zero_point": input_q.zero_point, "output_zero_point": output_q.zero_point,
        "output_multiplier": (multiplier << k) // count, "output_shift": shift - k,
    }
