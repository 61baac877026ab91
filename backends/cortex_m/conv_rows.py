"""How the Cortex-M dot products want int8 Conv/FullyConnected weight rows.

On cores with the DSP extension (and not Helium's kernels), every group of four k of a row,
``[w0 w1 w2 w3]``, is stored ``[w0 + 128, w1, w2 + 128, w3]`` (the first and third bytes read
as uint8). Each 16-bit half of the stored word then reads as the int16 ``256 * w1 + w0 + 128``
and one SXTB16 gives ``[w1, w3]``, so four weights cost one load and one SXTB16 (edgec_dot.h
states the arithmetic). The sums come out as::

    sum_k w[k] x[k] + 128 * sum(x at k = 0, 2 mod 4) - 128 * sum(w at k = 1, 3 mod 4)

The input term is each column's correction, computed where the column is prepared; the
weight term is :func:`offset_pair_bias`, added to the layer's stored bias (the output stage's
``bias_offset``). Both are exact in int32 (the sums wrap modulo 2^32, and the corrected total
is the layer's true sum).

Rows may also be blocked by four channels, so that one pointer walks four channels' weights:
on DSP cores those of a single-pixel layer (:func:`blocked_rows`), on the others those of every
layer with more pixels (:func:`scalar_blocked_rows`) and, in a form that gives two channels per
multiply, of a single-pixel one (:func:`lane_pair_rows`).
"""

from __future__ import annotations

import numpy as np


def offset_pair_rows(rows: np.ndarray) -> np.ndarray:
    """``[out_c][k_padded]`` int8 rows (k_padded a multiple of 4) in the offset-pair form: the
    bytes at k = 0, 2 mod 4 have 128 added modulo 256 (their top bit flipped)."""
    if rows.shape[1] % 4:
        raise ValueError(f"offset-pair rows need k padded to a multiple of 4, got {rows.shape[1]}")
    stored = np.ascontiguousarray(rows, dtype=np.int8).view(np.uint8).copy()
    stored[:, 0::2] ^= 0x80
    return stored.view(np.int8)


def offset_pair_bias(rows: np.ndarray) -> np.ndarray:
    """Per row, what the offset-pair sums lack of the true sums apart from the column's
    correction: 128 * the sum of the weights at k = 1, 3 mod 4."""
    return 128 * rows[:, 1::2].astype(np.int64).sum(axis=1)


def blocked_rows(rows: np.ndarray) -> np.ndarray:
    """``[out_c][k]`` rows (out_c a multiple of 4, k of 8) laid out ``[out_c / 4][k / 4][4][4]``:
    per block of four channels, per group of four k, each channel's four weights (edgec_conv.c's
    ``blocked`` layout, read by edgec_dot_1x4_blocked)."""
    out_c, k = rows.shape
    return np.ascontiguousarray(rows.reshape(out_c // 4, 4, k // 4, 4).transpose(0, 2, 1, 3)).reshape(out_c, k)


def scalar_blocked_rows(rows: np.ndarray) -> np.ndarray:
    """``[out_c][k]`` rows (out_c >= 4) laid out for cores without the DSP extension: per block of
    four channels ``[k][4]`` (each k's four weights together), the ``out_c % 4`` channels after
    the last block as plain rows (edgec_conv.c's ``blocked`` there, read by
    edgec_dot_packed_2x4 and edgec_dot_1x4_blocked_s8)."""
    out_c, k = rows.shape
    blocked = out_c // 4 * 4
    blocks = rows[:blocked].reshape(out_c // 4, 4, k).transpose(0, 2, 1).reshape(blocked, k)
    return np.ascontiguousarray(np.concatenate([blocks, rows[blocked:]]))


def lane_pair_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`scalar_blocked_rows` with each k's four bytes of a block (channels c0..c3) stored
    ``[w0 + 128, w3, w2 + 128, w1]`` (w0 and w2 as uint8), the form edgec_dot_lanes.h reads two
    channels per SMLAL from: ``word & 0xFF0000FF`` is ``w0 + 128 + 2^24 * w1`` and the same of
    the word rotated by 16 is ``w2 + 128 + 2^24 * w3``."""
    stored = scalar_blocked_rows(rows).view(np.uint8).copy()
    quads = stored[: rows.shape[0] // 4 * 4].reshape(-1, 4)
    quads[:] = quads[:, [0, 3, 2, 1]] ^ np.array([0x80, 0, 0x80, 0], dtype=np.uint8)
    return stored.view(np.int8)


def core_rows(rows: np.ndarray, pixels: int, dsp: bool, mve: bool) -> tuple[np.ndarray, int]:
    """``[out_c][k_padded]`` int8 rows of a layer of ``pixels`` output pixels as the core's dot
    products read them, and the layout's ``edgec_conv_params.blocked``: offset pairs on DSP cores
    (blocked, 1, for a single pixel of k % 8 == 0 and out_c % 4 == 0), Helium's plain rows (0),
    and elsewhere (out_c >= 4) channel blocks (1) or, for a single pixel, lane-pair blocks
    (2, EDGEC_BLOCKED_LANE_PAIRS)."""
    if dsp and not mve:
        blocked = pixels == 1 and rows.shape[1] % 8 == 0 and rows.shape[0] % 4 == 0
        return offset_pair_rows(blocked_rows(rows) if blocked else rows), int(blocked)
    if mve or rows.shape[0] < 4:
        return rows, 0
    return (scalar_blocked_rows(rows), 1) if pixels > 1 else (lane_pair_rows(rows), 2)
