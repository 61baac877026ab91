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

The gemmlowp functions are :mod:`edgec.gemmlowp`'s; the helpers below mirror TFLite's of
the same name, on int32 raw values held in int64 arrays.
"""

from __future__ import annotations

import numpy as np

from edgec.fixedpoint import rounding_divide_by_pot
from edgec.fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from edgec.gemmlowp import exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


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
    exps = np.where(active, exp_on_negative_values(np.where(active, scaled, 0), SCALED_DIFF_INTEGER_BITS), 0)
    total = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS).sum(axis=-1, keepdims=True)
    reciprocal, bits_over_unit = get_reciprocal(total, ACCUMULATION_INTEGER_BITS)
    unsaturated = rounding_divide_by_pot(srdhm(reciprocal, exps), bits_over_unit + 31 - 8)
    out = np.clip(unsaturated - 128, -128, 127)
    return np.where(active, out, -128).astype(np.int8)
