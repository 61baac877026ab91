"""gemmlowp's fixed-point transcendental functions, on int32 raw values held in int64 arrays.

TFLite's and TFLM's integer SOFTMAX, LOGISTIC and TANH kernels compute with gemmlowp's
``FixedPoint<int32_t, IntegerBits>``: a raw int32 ``r`` stands for ``r / 2^(31 - IntegerBits)``.
Each function below mirrors the gemmlowp function of the same name on such raw values (the
integer bits of the argument passed explicitly), operation for operation, so its results
are bit-identical to the C++ template: ``exp`` of a non-positive value by a Taylor polynomial
on [-1/4, 0) and a barrel shifter of the constants exp(-2^k); ``1/(1+x)`` and
``(1-x)/(1+x)`` by three Newton-Raphson steps in Q2.29; ``logistic`` and ``tanh`` from those.
Results are Q0.31 (``FixedPoint<int32_t, 0>``), whose ``One()`` is ``INT32_MAX``.
"""

from __future__ import annotations

import numpy as np

from edgec.fixedpoint import INT32_MAX, INT32_MIN, rounding_divide_by_pot
from edgec.fixedpoint import saturating_rounding_doubling_high_mul as srdhm

#: (k, exp(-2^k) in Q0.31): the barrel shifter of ``exp_on_negative_values``.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))
#: 48/17 and -32/17 in Q2.29: the Newton-Raphson start of the two divisions.
_CONSTANT_48_OVER_17 = 1515870810
_CONSTANT_NEG_32_OVER_17 = -1010580540
_ONE_Q2 = 1 << 29


def saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT for a positive exponent (a saturating left shift)."""
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


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """exp(a) for a non-positive fixed-point ``a`` with ``integer_bits``; result in Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    rescaled = saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits)
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


def rounding_half_sum(a: np.ndarray, b: int) -> np.ndarray:
    """(a + b) / 2 rounded half away from zero, computed in 64 bits (gemmlowp RoundingHalfSum)."""
    total = a + b
    sign = np.where(total >= 0, 1, -1)
    numerator = total + sign
    return np.where(numerator >= 0, numerator // 2, -((-numerator) // 2))


def _newton_reciprocal_of_half_denominator(a: np.ndarray) -> np.ndarray:
    """2/(1 + a) in Q2.29 for a Q0.31 ``a`` in [0, 1): the shared core of both divisions."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _CONSTANT_48_OVER_17 + srdhm(half_denominator, _CONSTANT_NEG_32_OVER_17)
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = _ONE_Q2 - half_denominator_times_x
        x = x + saturating_shift_left(srdhm(x, one_minus), 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a Q0.31 ``a`` in [0, 1); result Q0.31."""
    return saturating_shift_left(_newton_reciprocal_of_half_denominator(a), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """(1 - a) / (1 + a) for a Q0.31 ``a`` in [0, 1); result Q0.31."""
    return saturating_shift_left(_newton_reciprocal_of_half_denominator(a) - _ONE_Q2, 2)


def logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """1 / (1 + exp(-a)) for a fixed-point ``a`` with ``integer_bits``; result Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    positive = a > 0
    magnitude = np.where(positive, a, -a)
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-magnitude, integer_bits))
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, INT32_MAX - if_positive))


def tanh(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """tanh(a) for a fixed-point ``a`` with ``integer_bits``; result Q0.31.

    ``exp(-2|a|)`` reads the raw ``-|a|`` with one integer bit more (gemmlowp's
    ``ExactMulByPot<1>``)."""
    a = np.asarray(a, dtype=np.int64)
    negative = a < 0
    non_positive = np.where(negative, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(non_positive, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, -t, t))
