"""Elementwise operators (TFLite int8 semantics): Add, Sub, Mul, PRelu, Requantize, Clamp,
Table, and the model-boundary Quantize/Dequantize.

Binary operators broadcast like numpy. ``Add``/``Sub`` follow TFLite exactly: both inputs
are centred, shifted left by ``left_shift`` (20) and rescaled to a common scale with their
own multipliers, summed (or subtracted), then rescaled to the output. On int16 tensors
(the 16x8 scheme) the same arithmetic runs with ``left_shift`` 15, as TFLM's general path.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import multiply_by_quantized_multiplier, round_half_away_from_zero
from edgec.ops import QUANTIZE_ROUNDINGS
from edgec.reference import requant
from edgec.reference.requant import clamp_to_storage


def rescale_input(attrs: dict, rounding: str, index: int, x: np.ndarray) -> np.ndarray:
    """Operand ``index`` (1 or 2) of ADD/SUB on the common scale: ``MBQM((x - z) << left_shift)``."""
    centered = (x.astype(np.int64) - int(attrs[f"input{index}_zero_point"])) << int(attrs["left_shift"])
    return multiply_by_quantized_multiplier(centered, attrs[f"input{index}_multiplier"],
                                            attrs[f"input{index}_shift"], rounding)


def _rescaled_operands(attrs: dict, rounding: str, a: np.ndarray, b: np.ndarray):
    return rescale_input(attrs, rounding, 1, a), rescale_input(attrs, rounding, 2, b)


def _output(attrs: dict, rounding: str, raw: np.ndarray) -> np.ndarray:
    return requant.requantize(
        raw, attrs["output_multiplier"], attrs["output_shift"], attrs["output_zero_point"],
        attrs["activation_min"], attrs["activation_max"], rounding,
    )


def add(attrs: dict, rounding: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite ADD."""
    a2, b2 = _rescaled_operands(attrs, rounding, a, b)
    return _output(attrs, rounding, a2 + b2)


def sub(attrs: dict, rounding: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite SUB."""
    a2, b2 = _rescaled_operands(attrs, rounding, a, b)
    return _output(attrs, rounding, a2 - b2)


def mul(attrs: dict, rounding: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite MUL: ``(a - za) * (b - zb)`` rescaled to the output."""
    product = (a.astype(np.int64) - int(attrs["input1_zero_point"])) * (
        b.astype(np.int64) - int(attrs["input2_zero_point"])
    )
    return _output(attrs, rounding, product)


def prelu_identity(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """PRELU's result where ``x`` is at or above the input zero point (it needs no alpha)."""
    centered = x.astype(np.int64) - int(attrs["input_zero_point"])
    scaled = multiply_by_quantized_multiplier(centered, attrs["identity_multiplier"], attrs["identity_shift"], rounding)
    return clamp_to_storage(scaled + int(attrs["output_zero_point"]), attrs["activation_min"], attrs["activation_max"])


def prelu(attrs: dict, rounding: str, x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """TFLite PRELU: the identity branch at or above the zero point, ``x * alpha`` below it."""
    centered = x.astype(np.int64) - int(attrs["input_zero_point"])
    product = centered * (alpha.astype(np.int64) - int(attrs["alpha_zero_point"]))
    negative = requant.requantize(product, attrs["alpha_multiplier"], attrs["alpha_shift"], attrs["output_zero_point"],
                                  attrs["activation_min"], attrs["activation_max"], rounding)
    return np.where(centered >= 0, prelu_identity(attrs, rounding, x), negative)


def requantize(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """TFLite QUANTIZE int8/int16 -> int8/int16: ``MBQM(x - zin, m, s) + zout``, clamped."""
    centered = x.astype(np.int64) - int(attrs["input_zero_point"])
    return _output(attrs, rounding, centered)


def clamp(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Clamp to ``[min, max]`` (quantized values)."""
    del rounding
    return clamp_to_storage(x, attrs["min"], attrs["max"])


def table(attrs: dict, rounding: str, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``t[x + 128]``: the 256-entry table ``t`` read at each int8 value of ``x``."""
    del attrs, rounding
    return np.asarray(t, dtype=np.int8)[x.astype(np.int64) + 128]


def _round(quotient: np.ndarray, rounding: str) -> np.ndarray:
    """``quotient`` rounded as a ``Quantize`` node's ``rounding`` attribute says."""
    if rounding == "half_away":
        return round_half_away_from_zero(quotient)
    if rounding == "half_even":
        return np.rint(np.asarray(quotient, dtype=np.float64))
    raise UnsupportedModelError(f"Quantize rounding '{rounding}' is unknown",
                                f"use one of {', '.join(QUANTIZE_ROUNDINGS)}")


def quantize(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """QUANTIZE float32 -> int8 (int16): ``round(x / scale) + zero_point`` saturated to ``[min, max]``.

    The division is a float32 division, as in the C code; ``attrs["rounding"]`` is
    ``half_away`` (TFLite) or ``half_even`` (QONNX). The model's requantization ``rounding``
    plays no part.
    """
    del rounding
    quotient = np.asarray(x, dtype=np.float32) / np.float32(attrs["scale"])
    rounded = np.clip(_round(quotient, attrs["rounding"]), -(1 << 31), (1 << 31) - 1)
    return clamp_to_storage(rounded + int(attrs["zero_point"]), attrs["min"], attrs["max"])


def dequantize(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """TFLite DEQUANTIZE int8 (int16) -> float32: ``float(scale * (x - zero_point))`` in double."""
    del rounding
    centered = x.astype(np.float64) - int(attrs["zero_point"])
    return (np.float64(np.float32(attrs["scale"])) * centered).astype(np.float32)
