"""The layer plan executed in numpy exactly as the dataflow hardware computes it.

Each stage reads the previous stage's element stream (raw stored integers, NHWC or vector
order) and writes its own: a sliding window over the padded feature map (padding holds the
window's ``pad_value``), the plain integer dot product with the stage's weights, and
:func:`edgec.backends.fpga.layers.apply_thresholds`; or a max pool over the padded window. No
zero point, bias or multiplier appears: they are all in the thresholds. The result must equal
edgec's integer reference executor bit for bit on the same input rows; it is the oracle the
generated RTL is checked against. Folding (``pe``/``simd``) changes when the hardware
computes a value, never the value, so it is ignored here.
"""

from __future__ import annotations

import numpy as np

from edgec.backends.fpga.layers import Layer, MvuLayer, Window, apply_thresholds


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


def run_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One stage on input streams ``x [N, layer.input_elements]`` (int64) -> ``[N, output_elements]``."""
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
    x = np.asarray(rows, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != layers[0].input_elements:
        raise ValueError(f"input rows of shape {list(x.shape)}; the plan reads [N, {layers[0].input_elements}]")
    outputs = []
    for layer in layers:
        if x.shape[1] != layer.input_elements:
            raise ValueError(f"layer {layer.index} ({layer.name}) reads {layer.input_elements} elements, "
                             f"the stage before it writes {x.shape[1]}")
        x = run_layer(layer, x)
        outputs.append(x)
    trace = [[(layer.index, out[i]) for layer, out in zip(layers, outputs)] for i in range(x.shape[0])]
    return x, trace
