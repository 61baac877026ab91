"""Sliding windows over NHWC tensors: the shared index arithmetic of convolution and pooling."""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedModelError


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int) -> int:
    """Number of window positions along one spatial axis (ONNX/TFLite floor formula)."""
    effective = dilation * (kernel - 1) + 1
    out = (size + pad_begin + pad_end - effective) // stride + 1
    if out < 1:
        raise UnsupportedModelError(
            f"a window of {kernel} (dilation {dilation}) does not fit an axis of {size} "
            f"with padding {pad_begin}+{pad_end}",
            "check the model's input shape",
        )
    return out


def pad_spatial(x: np.ndarray, pads, value) -> np.ndarray:
    """Pad axes 1 and 2 of an NHWC array; ``pads`` is ``[top, left, bottom, right]``."""
    top, left, bottom, right = (int(p) for p in pads)
    if not (top or left or bottom or right):
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def spatial_windows(
    x_padded: np.ndarray, kernel_shape, strides, dilations=(1, 1)
) -> np.ndarray:
    """Windows of an already padded NHWC array.

    Returns a read-only view of shape ``[N, Ho, Wo, C, kh, kw]`` where element
    ``[n, i, j, c, u, v]`` is ``x_padded[n, i*sh + u*dh, j*sw + v*dw, c]``.
    """
    kh, kw = (int(k) for k in kernel_shape)
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(d) for d in dilations)
    eff_h, eff_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    view = np.lib.stride_tricks.sliding_window_view(x_padded, (eff_h, eff_w), axis=(1, 2))
    return view[:, ::sh, ::sw, :, ::dh, ::dw]


def exact_int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for integer arrays, computed through float64 BLAS and returned as int64.

    Exact as long as every partial sum stays below 2^53 in magnitude, which holds for
    int8×int8 products (< 2^15 each) over any reduction shorter than 2^38 terms.
    """
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
