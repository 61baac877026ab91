"""TFLM's int8 element-wise activations as 256-entry tables (the ``Table`` operator's data).

An int8 activation whose result depends on one input value only is, exactly, a table of
its 256 results: entry ``i`` holds the output for input ``i - 128``. Each function here
computes that table by TFLM's own integer algorithm for the operator (its Prepare step's
multipliers, then its reference kernel, in numpy, operation for operation), so a ``Table``
node reproduces TFLM bit for bit on every input:

* LOGISTIC and TANH: the input is rescaled to gemmlowp Q4.27 by
  ``MultiplyByQuantizedMultiplier`` (the multiplier is ``input_scale * 2^27`` split by
  ``frexp``); inputs at or beyond the radius ``floor(15 * 2^27 / 2^shift)`` saturate;
  gemmlowp's ``logistic``/``tanh`` (:mod:`edgec.gemmlowp`) then give Q0.31, divided by
  ``2^23`` (output scale 1/256, zero point -128) or ``2^24`` (scale 1/128, zero point 0).
* HARD_SWISH: TFLM's int16 fixed-point kernel, with its float32 Prepare arithmetic.
* LEAKY_RELU: the identity and the alpha multipliers of TFLM's ``QuantizeLeakyRelu``.
* RELU: TFLM's ``ReluQuantized`` (requantized to the output, clamped below at its zero point);
  RELU6: TFLM's ``Relu6Quantized``, a clamp to [zero point, quantized 6] in the *input's*
  quantization (TFLM reads no output parameters for it).

Every table is int8 (entries in [-128, 127]); the quantizer uses the same functions for ONNX
``Sigmoid``/``Tanh``/``HardSwish``/``LeakyRelu``, so both frontends share one semantics.
"""

from __future__ import annotations

import math

import numpy as np

from edgec import gemmlowp
from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    truncating_divide_by_pot,
)
from edgec.passes.qparams import QParams

#: The int8 values, in table order: entry ``i`` is the result for ``INPUTS[i] = i - 128``.
INPUTS = np.arange(-128, 128, dtype=np.int64)
#: The output quantizations TFLM's int8 LOGISTIC and TANH kernels produce.
LOGISTIC_OUTPUT = QParams(1.0 / 256.0, -128)
TANH_OUTPUT = QParams(1.0 / 128.0, 0)
_Q4_INTEGER_BITS = 4
_INT16_MIN, _INT16_MAX = -(1 << 15), (1 << 15) - 1


def _int8(values: np.ndarray) -> np.ndarray:
    return np.clip(values, -128, 127).astype(np.int8)


def _mbqm(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    return multiply_by_quantized_multiplier(x, multiplier, shift, "double")


def _q4_rescaling(input_scale: float) -> tuple[int, int, int]:
    """TFLM's int8 LOGISTIC/TANH Prepare: ``(multiplier, left_shift, radius)`` to Q4.27."""
    mantissa, left_shift = math.frexp(float(np.float32(input_scale)) * (1 << (31 - _Q4_INTEGER_BITS)))
    multiplier = math.floor(mantissa * (1 << 31) + 0.5)
    if multiplier >= 1 << 31 or left_shift < 0:
        raise UnsupportedModelError(f"input scale {input_scale} is outside what TFLM's int8 LOGISTIC/TANH take",
                                    "quantize the input with a scale between 1e-8 and 1e3")
    radius = math.floor(((1 << _Q4_INTEGER_BITS) - 1) * float(1 << (31 - _Q4_INTEGER_BITS)) / float(1 << left_shift))
    return multiplier, left_shift, radius


def _q4_function(q_in: QParams, function, output_bits: int, output_zero_point: int) -> np.ndarray:
    multiplier, left_shift, radius = _q4_rescaling(q_in.scale)
    x = INPUTS - q_in.zero_point
    inside = (x > -radius) & (x < radius)
    q4 = _mbqm(np.where(inside, x, 0), multiplier, left_shift)
    result = rounding_divide_by_pot(function(q4, _Q4_INTEGER_BITS), 31 - output_bits) + output_zero_point
    return _int8(np.where(inside, result, np.where(x > 0, 127, -128)))


def logistic_table(q_in: QParams) -> np.ndarray:
    """TFLM int8 LOGISTIC (output :data:`LOGISTIC_OUTPUT`)."""
    return _q4_function(q_in, gemmlowp.logistic, 8, LOGISTIC_OUTPUT.zero_point)


def tanh_table(q_in: QParams) -> np.ndarray:
    """TFLM int8 TANH (output :data:`TANH_OUTPUT`)."""
    return _q4_function(q_in, gemmlowp.tanh, 7, TANH_OUTPUT.zero_point)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, then TFLM's DownScaleInt32ToInt16Multiplier: ``(int16, exponent)``."""
    multiplier, exponent = quantize_multiplier(real)
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return _INT16_MAX, exponent
    return (multiplier + (1 << 15)) >> 16, exponent


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's int16 SaturatingRoundingDoublingHighMul."""
    product = a * b
    nudged = product + np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    quotient = truncating_divide_by_pot(nudged, 15)
    return np.where((a == _INT16_MIN) & (b == _INT16_MIN), _INT16_MAX, quotient)


def _saturating_left_shift16(a: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(a << amount, _INT16_MIN, _INT16_MAX)


def _wrap16(a: np.ndarray) -> np.ndarray:
    return ((a + (1 << 15)) & 0xFFFF) - (1 << 15)


def hard_swish_table(q_in: QParams, q_out: QParams) -> np.ndarray:
    """TFLM int8 HARD_SWISH: ``x * relu6(x + 3) / 6`` in int16 fixed point."""
    f32 = np.float32
    hires_input_scale = f32(1.0 / 128.0) * f32(q_in.scale)
    output_multiplier, output_exponent = _int16_multiplier(float(f32(hires_input_scale / f32(q_out.scale))))
    if output_exponent > 0:
        raise UnsupportedModelError(
            f"HARD_SWISH output scale {q_out.scale:g} is below the input scale / 128 ({q_in.scale / 128:g})",
            "TFLM requires output_scale >= input_scale / 128; widen the output range")
    reluish_multiplier, reluish_exponent = _int16_multiplier(
        float(f32(hires_input_scale / (f32(3.0) / f32(32768.0)))))
    hires = (INPUTS - q_in.zero_point) * 128
    preshift = _srdhm16(hires, output_multiplier)
    reluish = hires
    if reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, reluish_exponent - 1)
    reluish = _srdhm16(reluish, reluish_multiplier)
    if reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if reluish_exponent < 0:
        reluish = rounding_divide_by_pot(reluish, -reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    preshift_output = truncating_divide_by_pot(reluish * preshift, 15)
    output = _wrap16(rounding_divide_by_pot(preshift_output, -output_exponent) + q_out.zero_point)
    return _int8(output)


def leaky_relu_table(q_in: QParams, q_out: QParams, alpha: float) -> np.ndarray:
    """TFLM int8 LEAKY_RELU: ``x`` for ``x >= 0``, ``alpha * x`` below, each requantized once."""
    f32 = np.float32
    alpha_real = float(f32(f32(q_in.scale) * f32(alpha)) / f32(q_out.scale))
    alpha_multiplier, alpha_shift = quantize_multiplier(abs(alpha_real))
    identity_multiplier, identity_shift = quantize_multiplier(float(f32(q_in.scale) / f32(q_out.scale)))
    x = INPUTS - q_in.zero_point
    scaled_alpha = _mbqm(x, alpha_multiplier, alpha_shift)
    negative_part = -scaled_alpha if alpha_real < 0 else scaled_alpha
    return _int8(q_out.zero_point + np.where(x >= 0, _mbqm(x, identity_multiplier, identity_shift), negative_part))


def relu_table(q_in: QParams, q_out: QParams) -> np.ndarray:
    """TFLM int8 RELU: ``max(x, 0)`` requantized to the output."""
    multiplier, shift = quantize_multiplier(float(np.float32(q_in.scale) / np.float32(q_out.scale)))
    requantized = q_out.zero_point + _mbqm(INPUTS - q_in.zero_point, multiplier, shift)
    return _int8(np.maximum(requantized, max(-128, q_out.zero_point)))


def relu6_table(q_in: QParams) -> np.ndarray:
    """TFLM int8 RELU6: the input clamped to [its zero point, its quantized 6.0]."""
    six = min(127, max(-128, math.floor(float(np.float32(6.0) / np.float32(q_in.scale)) + 0.5) + q_in.zero_point))
    return _int8(np.clip(INPUTS, q_in.zero_point, six))
