"""Scalar, exact (Python int / Fraction) models of the int8 arithmetic, for the tests only.

Written straight from the TFLite definitions, loop by loop, so that the vectorized numpy
reference executor can be checked against something independent of it.
"""

from __future__ import annotations

import math
from fractions import Fraction

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def round_half_away(value: Fraction) -> int:
    magnitude = abs(value)
    floor = magnitude.numerator // magnitude.denominator
    rounded = floor + (1 if magnitude - floor >= Fraction(1, 2) else 0)
    return rounded if value >= 0 else -rounded


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def wrap32(value: int) -> int:
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def srdhm(a: int, b: int) -> int:
    return INT32_MAX if a == b == INT32_MIN else round_half_up(Fraction(a * b, 1 << 31))


def mbqm(x: int, multiplier: int, shift: int, rounding: str = "double") -> int:
    if rounding == "single":
        return max(INT32_MIN, min(INT32_MAX, round_half_up(Fraction(x * multiplier, 1 << (31 - shift)))))
    left, right = max(shift, 0), max(-shift, 0)
    return round_half_away(Fraction(srdhm(wrap32(x << left), multiplier), 1 << right))


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
