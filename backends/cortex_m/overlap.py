"""How far a window layer's output may overlap its input: the lag that keeps it bit-exact.

The Conv and DepthwiseConv kernels walk output pixels in raster order (batch, row, column).
Every pixel reads only its window of the input, and writes only its own output bytes, after
it has read its window (a Conv reads a pair of pixels' columns before writing the pair:
``group`` 2; a DepthwiseConv one pixel's taps per block of channels before writing those
channels: ``group`` 1). So when the input dies at the layer, the output may start ``lag`` bytes
*before* the input in the arena and overwrite input bytes no later pixel still reads:

    lag = max over groups s of  (end of the outputs written up to group s)
                                - (first input byte any pixel from s on still reads),

both measured from the start of their tensors (NHWC, one byte per value). The first byte a
pixel reads is its window's top-left in-bounds tap, channel 0; a pixel whose window lies
wholly in the padding reads nothing. The pair of tensors then needs ``lag + input size`` bytes
(at least the output's), instead of their sum: TinyEngine-style in-place execution, without
a kernel change. The lag is rounded up to the arena alignment.
"""

from __future__ import annotations

import numpy as np


def output_lag(x_shape: list[int], y_shape: list[int], k_h: int, k_w: int, attrs: dict, group: int,
               alignment: int = 8) -> int:
    """The smallest lag (bytes, a multiple of ``alignment``) at which the NHWC output ``y_shape``
    of a window layer over ``x_shape`` may start before its input (see the module docstring)."""
    batches, in_h, in_w, in_c = x_shape
    _, out_h, out_w, out_c = y_shape
    (stride_h, stride_w), (dilation_h, dilation_w) = attrs["strides"], attrs["dilations"]
    top, left = int(attrs["pads"][0]), int(attrs["pads"][1])
    oy, ox = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    rows = oy * stride_h - top + dilation_h * np.arange(k_h)[:, None, None]
    columns = ox * stride_w - left + dilation_w * np.arange(k_w)[:, None, None]
    first_row = np.where((rows >= 0) & (rows < in_h), rows, in_h).min(axis=0)
    first_column = np.where((columns >= 0) & (columns < in_w), columns, in_w).min(axis=0)
    reads = (first_row < in_h) & (first_column < in_w)
    image = np.where(reads, (first_row * in_w + first_column) * in_c, np.inf).ravel()
    pixels = out_h * out_w
    first = np.concatenate([image + b * in_h * in_w * in_c for b in range(batches)])
    still_read = np.minimum.accumulate(first[::-1])[::-1]  # from pixel q on
    starts = np.arange(0, batches * pixels, group)
    written = np.minimum(starts + group, batches * pixels) * out_c
    needed = still_read[starts]
    lag = np.max(np.where(np.isfinite(needed), written - needed, -np.inf), initial=0.0)
    return int(max(0, -(-int(lag) // alignment) * alignment))
