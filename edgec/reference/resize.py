"""Resize of NHWC feature maps over their two spatial axes, as TFLite's int8 kernels.

``nearest`` is RESIZE_NEAREST_NEIGHBOR: a gather (:func:`edgec.reference.gather.nearest_index`).
``bilinear`` is RESIZE_BILINEAR's integer form (``ResizeBilinearInteger``): each axis has a
10-bit scale ``scale_10 = round_half_up(1024 * in / out)`` (``(in - 1) / (out - 1)`` with
``align_corners``); output position ``v`` samples the input at ``s = v * scale_10`` (plus
``scale_10 / 2 - 512`` with ``half_pixel_centers``), between indices ``lo = max(s / 1024, 0)``
and ``hi = min(ceil(s / 1024), in - 1)`` with weight ``w = s - 1024 lo`` on ``hi``. The four
neighbours' weighted sum ``o`` (2^20 times the interpolated value, within int32) is rounded to
the output: half away from zero (``"double"`` rounding, TFLM's default) or half up
(``"single"``, ``TFLITE_SINGLE_ROUNDING``). Values stay on the input's scale.
"""

from __future__ import annotations

import numpy as np

from edgec.reference.gather import gather, nearest_maps

RESIZE_MODES = ("nearest", "bilinear")
WEIGHT_BITS = 10


def bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """``(lo, hi, w)`` per output position of one axis (int64 arrays; see the module docstring)."""
    one = 1 << WEIGHT_BITS
    if align_corners and out_size > 1:
        scale = (one * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (one * in_size + out_size // 2) // out_size
    position = np.arange(out_size, dtype=np.int64) * scale
    if half_pixel_centers:
        position += scale // 2 - one // 2
    lo = np.maximum(position // one, 0)  # C's truncation differs only below zero, which max() removes
    hi = np.minimum((position + one - 1) // one, in_size - 1)
    return lo, hi, position - one * lo


def round_weighted_sum(total: np.ndarray, rounding: str) -> np.ndarray:
    """``total / 2^20`` rounded as TFLM's ResizeBilinearInteger rounds (module docstring)."""
    half = 1 << (2 * WEIGHT_BITS - 1)
    if rounding == "single":
        return (total + half) >> (2 * WEIGHT_BITS)
    magnitude = (np.abs(total) + half) >> (2 * WEIGHT_BITS)
    return np.where(total < 0, -magnitude, magnitude)


def bilinear(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    out_h, out_w = (int(s) for s in attrs["size"])
    align, half = bool(attrs["align_corners"]), bool(attrs["half_pixel_centers"])
    y0, y1, wy = bilinear_axis(x.shape[1], out_h, align, half)
    x0, x1, wx = bilinear_axis(x.shape[2], out_w, align, half)
    one = 1 << WEIGHT_BITS
    v = x.astype(np.int64)
    wx, wy = wx[None, None, :, None], wy[None, :, None, None]
    top = v[:, y0][:, :, x0] * (one - wx) + v[:, y0][:, :, x1] * wx
    bottom = v[:, y1][:, :, x0] * (one - wx) + v[:, y1][:, :, x1] * wx
    return round_weighted_sum(top * (one - wy) + bottom * wy, rounding).astype(x.dtype)


def resize(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Resize (``mode`` nearest or bilinear) of NHWC ``x`` to ``size`` = [out_h, out_w]."""
    if attrs["mode"] == "nearest":
        return gather(x, nearest_maps(attrs, x.shape))
    if attrs["mode"] != "bilinear":
        raise ValueError(f"Resize mode {attrs['mode']!r} is not one of {RESIZE_MODES}")
    return bilinear(attrs, rounding, x)
