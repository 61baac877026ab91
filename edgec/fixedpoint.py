"""Fixed-point integer arithmetic of the TFLite/CMSIS-NN int8 specification.

These functions are the single definition of edgec's requantization arithmetic; every
operator of the reference executor and every backend kernel must agree with them bit for
bit. Arrays are numpy ``int64`` holding values in the int32 range (as the C code holds
them in ``int32_t``); products of two int32 values fit in int64 exactly.

Rounding modes (the only ambiguity in "int8", see DESIGN.md):

* ``"double"`` (default): TFLM + CMSIS-NN. ``SaturatingRoundingDoublingHighMul`` (round
  half up, toward +infinity, of ``a*b / 2^31``) followed by ``RoundingDivideByPOT`` (round
  half away from zero of ``x / 2^n``): two roundings.
* ``"single"``: LiteRT's ``TFLITE_SINGLE_ROUNDING``: ``(x*m + 2^(s-1)) >> s`` once, with
  ``s = 31 - shift``: round half up, one rounding.

A model's rounding *mode* says which of the two each operator uses
(:func:`operator_rounding`): ``"double"`` and ``"single"`` everywhere, or ``"litert"``,
which reproduces LiteRT's reference interpreter (``BUILTIN_REF``): single rounding in
FULLY_CONNECTED, double rounding in every other operator.

A *quantized multiplier* is a pair ``(multiplier, shift)`` with ``multiplier`` in
``[2^30, 2^31)`` (or 0) standing for the real number ``multiplier * 2^(shift - 31)``.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
ROUNDING_MODES = ("double", "single", "litert")


def operator_rounding(mode: str, op_type: str) -> str:
    """The rounding (``"double"``/``"single"``) operator ``op_type`` uses under a model's ``mode``."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; expected one of {ROUNDING_MODES}")
    if mode == "litert":
        return "single" if op_type == "FullyConnected" else "double"
    return mode


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Encode a non-negative real multiplier as ``(multiplier, shift)`` like TFLite.

    Contract: ``real == multiplier * 2**(shift - 31)`` up to the rounding of the 31-bit
    mantissa (round half away from zero). ``real == 0`` and reals below ``2^-32`` give
    ``(0, 0)``. The multiplier is never ``2^31``: a mantissa that rounds up to it is
    halved and the shift incremented.
    """
    if real < 0:
        raise ValueError(f"quantize_multiplier needs a non-negative real, got {real}")
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    fixed = math.floor(mantissa * (1 << 31) + 0.5)
    if fixed == (1 << 31):
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(fixed), int(shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`: int64 arrays of multipliers and shifts."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    multipliers = np.array([p[0] for p in pairs], dtype=np.int64)
    shifts = np.array([p[1] for p in pairs], dtype=np.int64)
    return multipliers, shifts


def truncating_divide_by_pot(x: np.ndarray, bits: int) -> np.ndarray:
    """``x / 2^bits`` truncated toward zero, as C's integer division does."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Reduce to the int32 range with two's-complement wrap-around (int64 in, int64 out)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values.

    Returns ``a*b / 2^31`` rounded half up (toward +infinity: the negative nudge
    ``1 - 2^30`` with C's truncating division makes ``-0.5`` round to 0); the one
    overflowing case ``a == b == INT32_MIN`` saturates to ``INT32_MAX``.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    product = a * b
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    result = truncating_divide_by_pot(product + nudge, 31)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, result)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: ``x / 2^exponent`` rounded half away from zero.

    ``exponent`` is in ``[0, 31]`` (scalar or array broadcasting against ``x``).
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(
    x: np.ndarray,
    multiplier: np.ndarray | int,
    shift: np.ndarray | int,
    rounding: str = "double",
) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier: ``x * multiplier * 2^(shift-31)``, rounded.

    ``x`` holds int32 values; ``multiplier``/``shift`` are a quantized multiplier (scalars
    or arrays broadcasting against ``x``, e.g. per output channel on the last axis).

    * ``"double"``: ``RoundingDivideByPOT(SRDHM(x * 2^max(shift,0), multiplier),
      max(-shift,0))``. ``x * 2^left`` wraps like 32-bit two's complement (the C code's
      overflow there is undefined; the quantizer keeps it from happening).
    * ``"single"``: ``(x * multiplier + 2^(30-shift)) >> (31-shift)`` computed in 64 bits
      and saturated to int32.
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "double":
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        scaled = wrap_int32(x << left)
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)
    if rounding == "single":
        total_shift = 31 - shift
        rounded = (x * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift
        return np.clip(rounded, INT32_MIN, INT32_MAX)
    raise ValueError(f"unknown rounding {rounding!r}; expected 'double' or 'single'")


def multiply_by_quantized_multiplier_wide(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier for 64-bit accumulators (the 16x8 scheme's int64
    bias): the multiplier reduced to 16 bits, ``r = min((m + 2^15) >> 16, 2^15 - 1)`` (``0x7FFF``
    from ``m >= 0x7FFF0000``), then one rounding ``(x r + 2^(14-shift)) >> (15-shift)``, the
    result cut to int32 as the C code's conversion does. The same in every rounding mode
    (TFLite has only this form); ``x`` is within ``±2^47``.
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    total_shift = 15 - np.asarray(shift, dtype=np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    return wrap_int32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


def round_half_away_from_zero(x: np.ndarray) -> np.ndarray:
    """C's ``round()`` (TfLiteRound) on floating-point values, exactly, as float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def divide_round_half_away(numerator: np.ndarray, denominator: np.ndarray | int) -> np.ndarray:
    """Integer ``numerator / denominator`` rounded half away from zero (positive denominator).

    TFLite's average-pool rounding: ``(n + d/2) / d`` for ``n > 0`` and ``(n - d/2) / d``
    otherwise, with C's truncating division.
    """
    n = np.asarray(numerator, dtype=np.int64)
    d = np.asarray(denominator, dtype=np.int64)
    half = d // 2
    positive = (n + half) // d
    negative = -((half - n) // d)
    return np.where(n > 0, positive, negative)
