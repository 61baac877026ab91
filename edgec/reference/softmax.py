"""Softmax over the last axis (TFLite int8 SOFTMAX, gemmlowp fixed-point arithmetic).

Output quantization is fixed: scale 1/256, zero point -128. For each row:

1. ``diff = x - max(row)``; entries with ``diff < diff_min`` give -128 (exp underflows).
2. ``diff`` is rescaled to Q5.26 by ``SRDHM(diff * 2^input_left_shift, input_multiplier)``
   (this folds ``beta * input_scale``).
3. ``exp`` of the (non-positive) Q5.26 value by gemmlowp's ``exp_on_negative_values``
   (a Taylor polynomial on [-1/4, 0) and a barrel shifter of constants exp(-2^k)), a Q0.31.
4. Sum of the exps in Q12.19; its reciprocal by ``GetReciprocal`` (Newton-Raphson, three
   iterations, in Q2.29).
5. ``out = RDBPOT(reciprocal * exp, num_bits_over_unit + 23) - 128``, saturated to int8.

Every helper below mirrors the gemmlowp primitive of the same name on int32 raw values
held in int64 arrays.
"""

from __future__ import annotations

import numpy as np

from edgec.fixedpoint import INT32_MAX, INT32_MIN, rounding_divide_by_pot
from edgec.fixedpoint import saturating_rounding_doubling_high_mul as srdhm

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12

_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def _saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a Q0.31 ``a`` in [-1/4, 0): 4th-order Taylor expansion around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    one_third = 715827883  # 1/3 in Q0.31
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, one_third) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


def exp_on_negative_values(a: np.ndarray, integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> np.ndarray:
    """exp(a) for a non-positive fixed-point ``a`` with ``integer_bits``; result in Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    rescaled = _saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(rescaled)
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a: np.ndarray, b: int) -> np.ndarray:
    total = a + b
    sign = np.where(total >= 0, 1, -1)
    numerator = total + sign
    return np.where(numerator >= 0, numerator // 2, -((-numerator) // 2))


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a Q0.31 ``a`` in [0, 1); Newton-Raphson in Q2.29; result Q0.31."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    one_q2 = 1 << 29
    x = constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17)
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = one_q2 - half_denominator_times_x
        x = x + _saturating_shift_left(srdhm(x, one_minus), 2)
    return _saturating_shift_left(x, 1)


def _count_leading_zeros(x: np.ndarray) -> np.ndarray:
    """Leading zeros of ``x`` as a uint32 (32 for zero)."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    bits = np.zeros(x.shape, dtype=np.int64)
    nonzero = x > 0
    bits[nonzero] = np.floor(np.log2(x[nonzero].astype(np.float64))).astype(np.int64) + 1
    # log2 of values just below a power of two can round up in float64; correct exactly.
    too_big = nonzero & ((np.int64(1) << np.maximum(bits - 1, 0)) > x)
    bits[too_big] -= 1
    return 32 - bits


def get_reciprocal(x: np.ndarray, integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: ``(Q0.31 reciprocal of x scaled into [0.5, 1), num_bits_over_unit)``."""
    headroom_plus_one = _count_leading_zeros(x)
    num_bits_over_unit = integer_bits - headroom_plus_one
    shifted = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted), num_bits_over_unit


def softmax(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """TFLite int8 softmax over the last axis (see the module docstring)."""
    del rounding  # gemmlowp arithmetic; the same in every mode
    multiplier = int(attrs["input_multiplier"])
    left_shift = int(attrs["input_left_shift"])
    diff_min = int(attrs["diff_min"])
    values = x.astype(np.int64)
    diff = values - values.max(axis=-1, keepdims=True)
    active = diff >= diff_min
    scaled = srdhm(diff << left_shift, multiplier)
    exps = np.where(active, exp_on_negative_values(np.where(active, scaled, 0)), 0)
    total = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS).sum(axis=-1, keepdims=True)
    reciprocal, bits_over_unit = get_reciprocal(total, ACCUMULATION_INTEGER_BITS)
    unsaturated = rounding_divide_by_pot(srdhm(reciprocal, exps), bits_over_unit + 31 - 8)
    out = np.clip(unsaturated - 128, -128, 127)
    return np.where(active, out, -128).astype(np.int8)
