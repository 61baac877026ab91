"""The output stage shared by every accumulating operator: requantize, offset, clamp.

Results come in the narrowest activation storage holding their clamp interval
(:func:`activation_storage`): int8 for an int8 graph, int16 where the clamp spans int16
values (the 16x8 scheme); the executor then stores each result in its output's dtype.
"""

from __future__ import annotations

import numpy as np

from edgec.fixedpoint import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_wide


def activation_storage(low: int, high: int) -> type[np.signedinteger]:
    """``np.int8`` when ``[low, high]`` lies in the int8 range, ``np.int16`` otherwise (the
    widest activation storage; a wider interval is a caller's error)."""
    if -128 <= low and high <= 127:
        return np.int8
    if -(1 << 15) <= low and high < (1 << 15):
        return np.int16
    raise ValueError(f"an activation clamp of [{low}, {high}] exceeds int16")


def clamp_to_storage(values: np.ndarray, low: int, high: int) -> np.ndarray:
    """``values`` clipped to ``[low, high]`` in :func:`activation_storage`'s dtype."""
    low, high = int(low), int(high)
    return np.clip(values, low, high).astype(activation_storage(low, high))


def requantize(
    acc: np.ndarray, multiplier, shift, output_zero_point: int, activation_min: int,
    activation_max: int, rounding: str, wide: bool = False,
) -> np.ndarray:
    """``clamp(MBQM(acc, multiplier, shift) + output_zero_point, min, max)``.

    ``multiplier``/``shift`` broadcast against the last axis of ``acc`` (one per output
    channel, or a single pair). ``wide``: ``acc`` is a 64-bit accumulator (an int64 bias) and
    is scaled by TFLite's 64-bit form (:func:`multiply_by_quantized_multiplier_wide`), in
    every rounding mode.
    """
    if wide:
        scaled = multiply_by_quantized_multiplier_wide(acc, np.asarray(multiplier), np.asarray(shift))
    else:
        scaled = multiply_by_quantized_multiplier(acc, np.asarray(multiplier), np.asarray(shift), rounding)
    return clamp_to_storage(scaled + int(output_zero_point), activation_min, activation_max)
