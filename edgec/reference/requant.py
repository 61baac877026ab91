"""The output stage shared by every accumulating operator: requantize, offset, clamp."""

from __future__ import annotations

import numpy as np

from edgec.fixedpoint import multiply_by_quantized_multiplier


def requantize_to_int8(
    acc: np.ndarray, multiplier, shift, output_zero_point: int, activation_min: int,
    activation_max: int, rounding: str,
) -> np.ndarray:
    """``clamp(MBQM(acc, multiplier, shift) + output_zero_point, min, max)`` as int8.

    ``multiplier``/``shift`` broadcast against the last axis of ``acc`` (one per output
    channel, or a single pair).
    """
    scaled = multiply_by_quantized_multiplier(acc, np.asarray(multiplier), np.asarray(shift), rounding)
    return np.clip(scaled + int(output_zero_point), int(activation_min), int(activation_max)).astype(np.int8)
