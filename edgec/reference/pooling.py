"""Pooling over int8 (and int16) tensors: AVERAGE_POOL_2D / MAX_POOL_2D (NHWC) and MEAN (TFLite).

Pool windows count only in-bounds elements: padding is neither summed nor counted, and
never wins a maximum; pool output quantization equals the input's. MEAN rescales.
"""

from __future__ import annotations

import numpy as np

from edgec.fixedpoint import divide_round_half_away, wrap_int32
from edgec.reference.requant import clamp_to_storage, requantize
from edgec.reference.windows import pad_spatial, spatial_windows


def average_pool(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Sum of the valid elements of each window divided by their count, rounded half away from zero."""
    del rounding  # the division is exact integer rounding in every mode
    kernel, strides, pads = attrs["kernel_shape"], attrs["strides"], attrs["pads"]
    values = pad_spatial(x.astype(np.int64), pads, 0)
    valid = pad_spatial(np.ones((1, *x.shape[1:3], 1), dtype=np.int64), pads, 0)
    sums = spatial_windows(values, kernel, strides).sum(axis=(4, 5))
    counts = spatial_windows(valid, kernel, strides).sum(axis=(4, 5))
    averages = divide_round_half_away(sums, counts)
    return clamp_to_storage(averages, attrs["activation_min"], attrs["activation_max"])


def max_pool(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Maximum over the valid elements of each window, then the activation clamp."""
    del rounding
    padded = pad_spatial(x.astype(np.int32), attrs["pads"], np.iinfo(np.int32).min)
    maxima = spatial_windows(padded, attrs["kernel_shape"], attrs["strides"]).max(axis=(4, 5))
    return clamp_to_storage(maxima, attrs["activation_min"], attrs["activation_max"])


def mean(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """TFLite MEAN (QuantizedMeanOrSum): ``MBQM(sum - zp_in * n, m', s') + zp_out``, clamped.

    ``n`` is the number of reduced elements; ``(m', s')`` already include ``1/n`` (see
    :func:`edgec.passes.multipliers.mean_attributes`). The sum wraps like int32.
    """
    axes = tuple(int(a) % x.ndim for a in attrs["axes"])
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=bool(attrs["keepdims"]))
    centered = wrap_int32(total - int(attrs["input_zero_point"]) * count)
    return requantize(centered, attrs["output_multiplier"], attrs["output_shift"],
                              attrs["output_zero_point"], attrs["activation_min"], attrs["activation_max"], rounding)
