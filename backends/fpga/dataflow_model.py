"""The layer plan executed in numpy exactly as the dataflow hardware computes it.

Each stage reads the previous stage's element stream (raw stored integers, NHWC or vector
order) and writes its own: a sliding window over the padded feature map (padding holds the
window's ``pad_value``), the plain integer dot product with the stage's weights, and
:func:`edgec.backends.fpga.layers.apply_thresholds`; or a max pool over the padded window. No
zero point, bias or multiplier appears: they are all in the thresholds. The result must equal
edgec's integer reference executor bit for bit on the same input rows; it is the oracle the
generated RTL is checked against. Folding (``pe``/``simd``) changes when the hardware
computes a value, never the value, so it is ignored here. A residual add looks up each
input's term in its table, adds the two and thresholds the sum; its skip input is the stream
its ``skip_from`` stage wrote (or the plan's input rows).
"""

from __future__ import annotations

import numpy as np

from edgec.backends.fpga.layers import AddLayer, Layer, MvuLayer, Window, apply_thresholds, check_plan


def window_patches(x: np.ndarray, window: Window) -> np.ndarray:
    """``[N, out_h, out_w, kh, kw, C]`` windows of NHWC ``x [N, in_h, in_w, C]`` padded with
    ``window.pad_value`` (the order an MVU's weight columns follow: ``kh, kw, C``)."""
    top, left, bottom, right = window.pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=window.pad_value)
    views = np.lib.stride_tricks.sliding_window_view(padded, window.kernel, axis=(1, 2))
    views = views[:, ::window.stride[0], ::window.stride[1]]  # [N, out_h, out_w, C, kh, kw]
    return views[:, :window.out_h, :window.out_w].transpose(0, 1, 2, 4, 5, 3)


def _mvu(layer: MvuLayer, x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    weights = layer.weights.astype(np.int64)
    if layer.window is None:
        return apply_thresholds(x @ weights.T, layer.thresholds, layer.output_type)
    w = layer.window
    patches = window_patches(x.reshape(n, w.in_h, w.in_w, w.channels), w).reshape(n, w.out_h * w.out_w, -1)
    return apply_thresholds(patches @ weights.T, layer.thresholds, layer.output_type).reshape(n, -1)


def run_add(layer: AddLayer, x: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """An add on its main streams ``x`` and skip streams ``skip`` (both ``[N, elements]``)."""
    total = layer.table[x - layer.input_type.min] + layer.skip_table[skip - layer.skip_type.min]
    return apply_thresholds(total[..., None], layer.thresholds, layer.output_type)[..., 0].astype(np.int64)


def run_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One stage (not an add: :func:`run_add`) on input streams ``x [N, layer.input_elements]``
    (int64) -> ``[N, output_elements]``."""
    if isinstance(layer, MvuLayer):
        return _mvu(layer, x).astype(np.int64)
    w = layer.window
    patches = window_patches(x.reshape(x.shape[0], w.in_h, w.in_w, w.channels), w)
    return patches.max(axis=(3, 4)).reshape(x.shape[0], -1).astype(np.int64)


def run_plan(layers: list[Layer], rows: np.ndarray) -> tuple[np.ndarray, list[list[tuple[int, np.ndarray]]]]:
    """Execute ``layers`` on input rows ``[N, layers[0].input_elements]`` (integers).

    Returns the output rows ``[N, layers[-1].output_elements]`` (int64) and, per sample, the
    trace ``[(layer.index, flattened stage output), ...]`` in stage order.
    """
    check_plan(layers)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != layers[0].input_elements:
        raise ValueError(f"input rows of shape {list(rows.shape)}; the plan reads [N, {layers[0].input_elements}]")
    x, outputs = rows, []
    for layer in layers:
        if isinstance(layer, AddLayer):
            x = run_add(layer, x, rows if layer.skip_from < 0 else outputs[layer.skip_from])
        else:
            x = run_layer(layer, x)
        outputs.append(x)
    trace = [[(layer.index, out[i]) for layer, out in zip(layers, outputs)] for i in range(x.shape[0])]
    return x, trace
