"""Accumulating operators: Conv, DepthwiseConv, TransposeConv, FullyConnected, BatchMatMul
(TFLite int8 semantics).

For every output element: ``acc = bias + sum((x - input_zero_point) * w)`` over the
window's in-bounds inputs (padding contributes nothing, exactly as if padded with the
input zero point), then ``requantize`` with the output channel's multiplier.
Accumulators are int32 in the C kernels; the quantizer keeps them from overflowing. With
int16 inputs (the 16x8 scheme) an int64 bias makes them 64-bit (TFLM's int16 kernels).
"""

from __future__ import annotations

import numpy as np

from edgec.reference.requant import requantize
from edgec.reference.windows import exact_int_matmul, pad_spatial, spatial_windows


def _centered_windows(x: np.ndarray, attrs: dict, kernel_hw) -> np.ndarray:
    """Windows of ``x - input_zero_point`` (int64) with zero padding, ``[N,Ho,Wo,C,kh,kw]``."""
    centered = x.astype(np.int64) - int(attrs["input_zero_point"])
    padded = pad_spatial(centered, attrs["pads"], 0)
    return spatial_windows(padded, kernel_hw, attrs["strides"], attrs["dilations"])


def finish(acc: np.ndarray, bias, attrs: dict, rounding: str) -> np.ndarray:
    """The output stage of an accumulating operator: ``acc`` plus ``bias``, requantized with the
    attributes' per-channel multipliers, offset and clamped. An int64 bias (the 16x8 scheme's)
    makes the accumulator 64-bit and its scaling TFLite's 64-bit form."""
    wide = bias is not None and bias.dtype == np.int64
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return requantize(
        acc, attrs["output_multiplier"], attrs["output_shift"], attrs["output_zero_point"],
        attrs["activation_min"], attrs["activation_max"], rounding, wide,
    )


def conv_groups(x_channels: int, w_shape) -> int:
    """The groups of a Conv (TFLM's rule: input channels over the weights' input depth);
    ``ValueError`` unless both channel counts divide evenly."""
    cout, depth = int(w_shape[0]), int(w_shape[3])
    if depth < 1 or x_channels % depth or cout % (x_channels // depth):
        raise ValueError(f"Conv weights {list(w_shape)} do not divide {x_channels} input channels into groups")
    return x_channels // depth


def conv_accumulators(attrs: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Conv's exact accumulators before bias and requantization, int64 ``[N,Ho,Wo,Cout]``.

    With ``g`` groups (:func:`conv_groups`), output channels ``[j Cout/g, (j+1) Cout/g)`` read
    input channels ``[j Cin/g, (j+1) Cin/g)``."""
    cout, kh, kw, depth = w.shape
    groups = conv_groups(x.shape[3], w.shape)
    windows = _centered_windows(x, attrs, (kh, kw))
    n, ho, wo = windows.shape[:3]
    per_group = cout // groups
    parts = []
    for g in range(groups):
        group = windows[:, :, :, g * depth:(g + 1) * depth]
        patches = group.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * depth)
        weights = w[g * per_group:(g + 1) * per_group].reshape(per_group, -1)
        parts.append(exact_int_matmul(patches, weights.T).reshape(n, ho, wo, per_group))
    return np.concatenate(parts, axis=3)


def conv(attrs: dict, rounding: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Conv: ``x`` int8 ``[N,H,W,Cin]``, ``w`` int8 ``[Cout,kh,kw,Cin/groups]``, ``b`` int32 ``[Cout]``."""
    return finish(conv_accumulators(attrs, x, w), b, attrs, rounding)


def depthwise_conv(attrs: dict, rounding: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """DepthwiseConv: ``w`` int8 ``[1,kh,kw,C*M]``; output channel ``c*M + m`` reads input channel ``c``."""
    _, kh, kw, cout = w.shape
    multiplier = int(attrs["depth_multiplier"])
    windows = _centered_windows(x, attrs, (kh, kw)).astype(np.float64)
    cin = windows.shape[3]
    weights = w.reshape(kh, kw, cin, multiplier).astype(np.float64)
    acc = np.einsum("nhwcyx,yxcm->nhwcm", windows, weights, optimize=True)
    acc = np.rint(acc).astype(np.int64).reshape(*windows.shape[:3], cout)
    return finish(acc, b, attrs, rounding)


def transpose_conv_accumulators(attrs: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TransposeConv's exact accumulators, int64 ``[N, out_h, out_w, Cout]``: input pixel
    ``(y, x)`` adds ``w[:, ky, kx, :] . (x - zp)`` to output ``(y s_h + ky - top, x s_w + kx - left)``
    where that lies inside ``output_size`` (TFLM's scatter, gathered here per tap)."""
    cout, kh, kw, cin = w.shape
    n, h, width, _ = x.shape
    (s_h, s_w), top, left = attrs["strides"], int(attrs["pads"][0]), int(attrs["pads"][1])
    out_h, out_w = (int(v) for v in attrs["output_size"])
    canvas = np.zeros((n, (h - 1) * s_h + kh, (width - 1) * s_w + kw, cout), dtype=np.int64)
    centered = (x.astype(np.int64) - int(attrs["input_zero_point"])).reshape(-1, cin)
    for ky in range(kh):
        for kx in range(kw):
            tap = exact_int_matmul(centered, w[:, ky, kx, :].T).reshape(n, h, width, cout)
            canvas[:, ky:ky + (h - 1) * s_h + 1:s_h, kx:kx + (width - 1) * s_w + 1:s_w] += tap
    rows, columns = np.arange(out_h) + top, np.arange(out_w) + left
    inside = np.zeros((n, out_h, out_w, cout), dtype=np.int64)
    keep_rows, keep_columns = (rows >= 0) & (rows < canvas.shape[1]), (columns >= 0) & (columns < canvas.shape[2])
    inside[:, np.flatnonzero(keep_rows)[:, None], np.flatnonzero(keep_columns)] = \
        canvas[:, rows[keep_rows][:, None], columns[keep_columns]]
    return inside


def transpose_conv(attrs: dict, rounding: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """TransposeConv: ``x`` int8 ``[N,H,W,Cin]``, ``w`` int8 ``[Cout,kh,kw,Cin]``, ``b`` int32 ``[Cout]``."""
    return finish(transpose_conv_accumulators(attrs, x, w), b, attrs, rounding)


def fully_connected_accumulators(attrs: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """FullyConnected's exact accumulators before bias and requantization, int64 ``[..., Cout]``."""
    cout, k = w.shape
    centered = x.astype(np.int64).reshape(-1, k) - int(attrs["input_zero_point"])
    return exact_int_matmul(centered, w.T).reshape(*x.shape[:-1], cout)


def fully_connected(attrs: dict, rounding: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """FullyConnected: ``x`` int8 ``[..., K]``, ``w`` int8 ``[Cout, K]`` → ``[..., Cout]``."""
    return finish(fully_connected_accumulators(attrs, x, w), b, attrs, rounding)


def batch_matmul(attrs: dict, rounding: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """BatchMatMul: ``(a - za) @ (b - zb)`` over the last two axes (each swapped first when its
    ``adj_*`` is set), batch axes broadcast, requantized with one multiplier."""
    left = a.astype(np.int64) - int(attrs["input1_zero_point"])
    right = b.astype(np.int64) - int(attrs["input2_zero_point"])
    if attrs["adj_x"]:
        left = np.swapaxes(left, -1, -2)
    if attrs["adj_y"]:
        right = np.swapaxes(right, -1, -2)
    return finish(np.matmul(left, right), None, attrs, rounding)


def router(attrs: dict, rounding: str, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Router: the boolean ``bias + sum_c w[0, c] sum_p (x[p, c] - zp) >= 0`` (``> 0`` when
    ``strict``) of ``x`` int8 ``[1, ..., C]`` (a vector, or a feature map summed over its
    positions), ``w`` int8 ``[1, C]``, ``b`` int32 ``[1]``, in exact integers."""
    del rounding
    channels = w.size
    sums = (x.astype(np.int64).reshape(-1, channels) - int(attrs["input_zero_point"])).sum(axis=0)
    acc = int(b.reshape(-1)[0]) + int(np.dot(sums, w.reshape(-1).astype(np.int64)))
    return np.array(acc > 0 if attrs["strict"] else acc >= 0)
