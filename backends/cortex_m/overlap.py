"""How far a window layer's output may overlap its input: the lag that keeps it bit-exact.

The Conv and DepthwiseConv kernels walk output pixels in raster order (batch, row, column).
Every pixel reads only its window of the input, and writes only its own output bytes, after
it has read its window (a Conv reads a pair of pixels' columns before writing the pair:
``group`` 2; a DepthwiseConv one pixel's taps per block of channels before writing those
channels: ``group`` 1, and the M3's pairs walk all of a chunk's inputs before writing any of its
outputs, which needs no more). So when the input dies at the layer, the output may start ``lag``
bytes *before* the input in the arena and overwrite input bytes no later pixel still reads:

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

#: Output pixels of a row the M3's depthwise pairs walk stages at most at once (EDGEC_DWP_CHUNK).
PAIRS_CHUNK = 8


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


def rows_walk(x_shape: list[int], y_shape: list[int], k_h: int, k_w: int, attrs: dict) -> bool:
    """Whether a DepthwiseConv takes the rows walk of edgec_depthwise.c on a DSP core: a 3x3
    window, dilation 1, depth multiplier 1, channels in fours, one batch."""
    return (k_h == k_w == 3 and list(attrs["dilations"]) == [1, 1] and int(attrs["depth_multiplier"]) == 1
            and y_shape[3] % 4 == 0 and x_shape[0] == 1)


def depthwise_pairs(weight_shape, attrs: dict) -> bool:
    """Whether a DepthwiseConv of int8 weights ``[1, k_h, k_w, out_c]`` takes the pairs walk of
    edgec_depthwise.c (edgec_depthwise_pairs.h) on a core without the DSP extension: it runs when
    the layer's ``chunk`` is set and its output stage has the full int8 range."""
    _, k_h, k_w, out_c = weight_shape
    return (k_h == k_w == 3 and list(attrs["dilations"]) == [1, 1] and int(attrs["depth_multiplier"]) == 1
            and int(attrs["strides"][1]) in (1, 2) and out_c >= 4)


def pairs_chunk(out_c: int, out_w: int, stride_w: int) -> int:
    """Output pixels per chunk of the pairs walk (even, 2 to ``PAIRS_CHUNK``): the most whose
    staged inputs (:func:`pairs_stage_bytes`) fit in 4,096 bytes, or 2, and no more than the row
    (rounded up to even) needs."""
    fitting = [chunk for chunk in range(PAIRS_CHUNK, 0, -2) if pairs_stage_bytes(out_c, chunk, stride_w) <= 4096]
    return min(fitting[0] if fitting else 2, out_w + out_w % 2)


def pairs_stage_bytes(out_c: int, chunk: int, stride_w: int) -> int:
    """The pairs walk's scratch: the staged chunk (per group of sixteen of the blocks' channels,
    three rows of the ``(chunk - 1) * stride_w + 3`` columns under the chunk, sixteen bytes
    each), then a word per channel of the blocks (its B term)."""
    groups = -(-(out_c // 4 * 4) // 16)
    return 48 * ((chunk - 1) * stride_w + 3) * groups + 4 * (out_c // 4 * 4)


def depthwise_memory(x_shape: list[int], y_shape: list[int], k_h: int, k_w: int, attrs: dict, rows: bool,
                     chunk: int) -> dict[str, int]:
    """A DepthwiseConv's ``scratch_bytes`` and ``lag`` under its walk: the rows walk's ring and
    lag; else a border pixel's window (``k_h * k_w * in_c``) or, for the pairs walk (``chunk``
    pixels a chunk, 0 when not taken), at least its staged chunk, and the raster lag of single
    pixels (a chunk reads all its inputs before writing an output)."""
    if rows:
        return {"scratch_bytes": rows_scratch_bytes(y_shape, attrs), "lag": rows_lag(x_shape, y_shape, attrs)}
    window = k_h * k_w * x_shape[3]
    staged = pairs_stage_bytes(y_shape[3], chunk, int(attrs["strides"][1])) if chunk else 0
    return {"scratch_bytes": max(window, staged), "lag": output_lag(x_shape, y_shape, k_h, k_w, attrs, 1)}


def rows_scratch_bytes(y_shape: list[int], attrs: dict) -> int:
    """The rows walk's ring: three widened rows of (out_w - 1) * stride_w + 3 pixels, eight
    bytes (four channels as int16) each."""
    return 3 * 8 * ((y_shape[2] - 1) * int(attrs["strides"][1]) + 3)


def rows_lag(x_shape: list[int], y_shape: list[int], attrs: dict, alignment: int = 8) -> int:
    """The lag of a DepthwiseConv's output under the rows walk (a multiple of the channel count,
    so that an output byte only ever lands on an input byte of its own channel).

    The walk goes block of four channels by block; within a block, output row ``oy`` is written
    after input rows up to ``oy * stride - top + 2`` were widened, after which no later output
    of the block reads them, and later blocks read other channels. With lag ``k * C`` the byte
    of output pixel ``p`` lands on input pixel ``p - k``, which must lie in those rows."""
    _, in_h, in_w, channels = x_shape
    _, out_h, out_w, _ = y_shape
    top, stride = int(attrs["pads"][0]), int(attrs["strides"][0])
    rows = np.minimum(np.arange(out_h) * stride - top + 2, in_h - 1)
    last_pixel = (np.arange(out_h) + 1) * out_w - 1  # the last output pixel of each row
    pixels = int(np.max(last_pixel - (rows + 1) * in_w + 1, initial=0))
    step = alignment // int(np.gcd(channels, alignment))  # pixels per aligned multiple of the channels
    return max(0, -(-pixels // step) * step) * channels
