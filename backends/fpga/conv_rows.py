"""Row-packed convolutions: a convolution whose multiply-accumulate core is the convolution
packing (:mod:`.lanes`, scheme ``conv``; the unit ``edgec_conv_mac``), the geometry of its
windows and its cost.

An MVU realises its convolution this way when its packing has scheme ``conv`` (with
``weights_per_word`` equal to the kernel width ``N``, ``inputs_per_word = M >= N - 1``), its
horizontal stride is 1, and it computes every output channel at once (``pe`` equals the
output channels, ``nf = 1``). Then, per output row:

* the row's padded input (``Wp = in_w + pad_left + pad_right`` columns) is cut into
  ``passes = ceil(Wp / M)`` *windows* of ``M`` columns at stride ``M`` (the last one padded on
  the right with the pad value); the sliding window unit (``edgec_swu_rows``, a line buffer
  in ``M`` banks by column) streams each window as its ``kh * C`` (kernel row, channel)
  *pairs* in that order, one pair a beat: the ``M`` consecutive activations of the window's
  columns;
* per pair, one DSP per output channel multiplies the kernel row's ``N`` taps, reversed
  (``w_i = tap[N - 1 - i]``), by the ``M`` activations: segment ``k`` (``k < N + M - 1``) sums
  the products of output column ``pass * M + k - (N - 1)``; the unit sums them over the
  window's ``kh * C`` pairs (``simd`` pairs a cycle, summed after the units);
* segments ``k < M`` finish outputs once the previous window's top segments ``M + k``
  (``k < N - 1``, the *carry*) are added; outputs outside ``[0, out_w)`` (the row's first
  ``N - 1``, and those past the row's end in its last window) are dropped. Every product the
  DSP computes is used: ``N * M`` MACs per DSP per cycle.

Invariant: each output is the same dot product as the layer's plain convolution (the
partial sums of a segment and its carry are sums of subsets of that output's products, so
they fit the layer's accumulator width and their modular sum is exact).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from edgec.backends.fpga.layers import Layer, MvuLayer, Window


def is_row_packed(layer: Layer) -> bool:
    """True when ``layer`` is an MVU realised with the convolution packing."""
    return (isinstance(layer, MvuLayer) and layer.window is not None and layer.packing is not None
            and layer.packing.scheme == "conv")


def row_packable(layer: Layer) -> bool:
    """True when ``layer`` is a convolution this scheme can realise (horizontal stride 1)."""
    return isinstance(layer, MvuLayer) and layer.window is not None and layer.window.stride[1] == 1


def inputs_per_window(layer: MvuLayer) -> int:
    """``M``: the consecutive input columns one window brings per pair."""
    return layer.packing.inputs_per_word


def padded_width(window: Window) -> int:
    return window.in_w + window.pads[1] + window.pads[3]


def passes(layer: MvuLayer) -> int:
    """Windows per output row."""
    return math.ceil(padded_width(layer.window) / inputs_per_window(layer))


def wide_window(layer: MvuLayer) -> Window:
    """The sliding window the unit in front of the MVU walks: ``kh x M`` at horizontal stride
    ``M``, the right pad extended to a whole number of windows."""
    w, m = layer.window, inputs_per_window(layer)
    extra = passes(layer) * m - padded_width(w)
    return dataclasses.replace(w, kernel=(w.kernel[0], m), stride=(w.stride[0], m),
                               pads=(w.pads[0], w.pads[1], w.pads[2], w.pads[3] + extra))


def pairs(layer: MvuLayer) -> int:
    """(kernel row, input channel) pairs of a window: the unit's cycles at ``simd = 1``."""
    return layer.window.kernel[0] * layer.window.channels


def kept_columns(layer: MvuLayer, pass_index: int) -> list[int]:
    """Segments ``k < M`` of window ``pass_index`` that are outputs of the row."""
    n, m, out_w = layer.window.kernel[1], inputs_per_window(layer), layer.window.out_w
    return [k for k in range(m) if 0 <= pass_index * m + k - (n - 1) < out_w]


def row_cycles(layer: MvuLayer, simd: int) -> int:
    """Cycles per inference at ``simd`` pairs a cycle: each window takes the largest of its
    compute (``pairs / simd``), its beats (``pairs``: the window unit streams one pair of ``M``
    activations a cycle, so ``simd > 1`` never shortens a window) and the sums its serialiser
    walks (``M`` per output channel, dropped ones included); never fewer than the layer's
    input elements."""
    m = inputs_per_window(layer)
    windows = layer.window.out_h * passes(layer)
    per_window = max(pairs(layer) // simd, pairs(layer), m * layer.out_channels)
    return max(windows * per_window, layer.input_elements)


def weight_words(layer: MvuLayer, channel: int) -> list[list[int]]:
    """The weight ROM of output ``channel`` at ``layer.simd``: per address, the ``simd`` pairs'
    reversed kernel rows, pair ``j``'s tap ``i`` at position ``j * N + i`` (pairs in ``(kh, c)``
    order; ``layer.weights`` is in ``(kh, kw, c)`` order)."""
    kh, n = layer.window.kernel
    c = layer.window.channels
    taps = np.asarray(layer.weights[channel]).reshape(kh, n, c)
    flat = [int(taps[q // c, n - 1 - i, q % c]) for q in range(kh * c) for i in range(n)]
    step = layer.simd * n
    return [flat[start:start + step] for start in range(0, len(flat), step)]
