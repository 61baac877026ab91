"""Requantization arithmetic against an exact rational-arithmetic model (hypothesis)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgec.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    divide_round_half_away,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away_from_zero,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

from exact_arith import mbqm, round_half_away, srdhm

int32s = st.integers(INT32_MIN, INT32_MAX)
multipliers = st.integers(1 << 30, INT32_MAX)
shifts = st.integers(-31, 30)


@given(int32s, int32s)
@example(-1, 1 << 30)
@example(1, 1 << 30)
@example(INT32_MIN, INT32_MIN)
@example(-3, 1 << 30)
def test_srdhm_is_exact_rounding_of_the_doubled_high_product(a, b):
    expected = srdhm(a, b)
    assert int(saturating_rounding_doubling_high_mul(np.int64(a), np.int64(b))) == expected


@given(int32s, st.integers(0, 31))
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x, exponent):
    assert int(rounding_divide_by_pot(np.int64(x), exponent)) == round_half_away(Fraction(x, 1 << exponent))


@given(int32s, multipliers, shifts)
@example(-1, 1 << 30, 0)
@example(-3, 1 << 30, -1)
def test_double_rounding_multiplier_is_two_exact_roundings(x, multiplier, shift):
    expected = mbqm(x, multiplier, shift, "double")
    assert int(multiply_by_quantized_multiplier(np.int64(x), multiplier, shift, "double")) == expected


@given(int32s, multipliers, shifts)
def test_single_rounding_multiplier_is_one_exact_rounding(x, multiplier, shift):
    expected = mbqm(x, multiplier, shift, "single")
    assert int(multiply_by_quantized_multiplier(np.int64(x), multiplier, shift, "single")) == expected


@given(st.integers(-(1 << 24), 1 << 24), multipliers, st.integers(-31, 0))
def test_double_and_single_rounding_differ_by_at_most_one(x, multiplier, shift):
    double = int(multiply_by_quantized_multiplier(np.int64(x), multiplier, shift, "double"))
    single = int(multiply_by_quantized_multiplier(np.int64(x), multiplier, shift, "single"))
    assert abs(double - single) <= 1


@given(st.floats(min_value=1e-9, max_value=1e4, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_encodes_the_real_to_31_bits(real):
    multiplier, shift = quantize_multiplier(real)
    assert (1 << 30) <= multiplier <= INT32_MAX
    encoded = Fraction(multiplier) * Fraction(2) ** (shift - 31)
    assert abs(encoded - Fraction(real)) <= Fraction(2) ** (shift - 32)


@given(st.floats(min_value=1e-6, max_value=0.99, allow_nan=False), st.integers(-(1 << 20), 1 << 20))
@settings(max_examples=300)
def test_requantization_is_within_one_of_the_exact_product(real, x):
    multiplier, shift = quantize_multiplier(real)
    result = int(multiply_by_quantized_multiplier(np.int64(x), multiplier, shift))
    assert abs(Fraction(result) - Fraction(x) * Fraction(real)) <= 1


def test_quantize_multiplier_edge_cases():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-12) == (0, 0)
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    # a mantissa that rounds up to 2^31 is halved and the shift incremented
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: float(np.float32(v))))
def test_round_half_away_matches_c_round(value):
    assert float(round_half_away_from_zero(np.float32(value))) == round_half_away(Fraction(value))


@given(st.integers(-(1 << 20), 1 << 20), st.integers(1, 1000))
def test_average_divide_rounds_half_away(numerator, denominator):
    assert int(divide_round_half_away(numerator, denominator)) == round_half_away(Fraction(numerator, denominator))
