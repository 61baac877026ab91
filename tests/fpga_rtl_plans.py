"""Hand-made layer plans for the FPGA dataflow RTL tests (``test_fpga_rtl``,
``test_fpga_rtl_synthesis``), this suite's own numpy evaluation of them, and the tool checks
those tests share.

The plans use random weights of their type and random sorted thresholds inside the reachable
accumulator range (so that every output level occurs): :func:`plan` covers FC, convolutions
(3x3 pad 1 stride 1 and 2, 1x1), max pools, a conv -> pool -> conv -> fc chain, PE/SIMD
foldings, signed and unsigned inputs and 2/4/8-bit types; :func:`packed_plan` the same kind of
plans whose MVUs carry the lane planner's packing (SDV lanes on DSP48E2/E1, dual 8x8 on
SB_MAC16; PE not a multiple of the lanes, SIMD > 1). :func:`evaluate` computes every layer's
output independently of the backend's model.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.backends.fpga.lanes import plan_packing
from edgec.backends.fpga.layers import MvuLayer, PoolLayer, Window, apply_thresholds
from edgec.backends.fpga.thresholds import accumulator_range
from edgec.inttype import IntType

I2, U2, I4, U4, I8, U8 = (IntType(b, s) for b in (2, 4, 8) for s in (True, False))
I4N, I8N = IntType(4, True, narrow=True), IntType(8, True, narrow=True)
needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")
needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")


def mvu(index, rng, in_type, w_type, out_type, out_channels, k, pe=1, simd=1, window=None) -> MvuLayer:
    """An MVU layer of random weights and random sorted thresholds inside the reachable range
    (so that every output level occurs)."""
    weights = rng.integers(w_type.min, w_type.max + 1, size=(out_channels, k))
    lo, hi = accumulator_range(weights, in_type)
    spread = (hi - lo) // 4
    thresholds = np.sort(rng.integers((lo + spread)[:, None], (hi - spread + 1)[:, None],
                                      size=(out_channels, out_type.levels - 1)), axis=1)
    return MvuLayer(index, f"layer{index}", "FullyConnected" if window is None else "Conv", f"v{index}",
                    in_type, w_type, out_type, weights, thresholds, window, pe, simd)


def patches(x: np.ndarray, window: Window, pad: int) -> np.ndarray:
    """``x [N, in_h*in_w*c]`` (NHWC) -> ``[N, out_h, out_w, kh*kw*c]`` windows, padding with ``pad``."""
    top, left, bottom, right = window.pads
    image = x.reshape(-1, window.in_h, window.in_w, window.channels)
    padded = np.pad(image, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad)
    kh, kw = window.kernel
    out = [[padded[:, i * window.stride[0]:i * window.stride[0] + kh, j * window.stride[1]:j * window.stride[1] + kw]
            .reshape(x.shape[0], -1) for j in range(window.out_w)] for i in range(window.out_h)]
    return np.stack([np.stack(row, axis=1) for row in out], axis=1)


def evaluate(layers, rows: np.ndarray) -> list[np.ndarray]:
    """Each layer's output ``[N, elements]`` (this test's own evaluation of the plan)."""
    x, outputs = rows.astype(np.int64), []
    for layer in layers:
        if isinstance(layer, PoolLayer):
            w = layer.window
            windows = patches(x, w, layer.input_type.min).reshape(x.shape[0], w.out_h, w.out_w, -1, w.channels)
            x = windows.max(axis=3).reshape(x.shape[0], -1)
        else:
            vectors = x if layer.window is None else patches(x, layer.window, layer.window.pad_value)
            acc = vectors @ layer.weights.astype(np.int64).T
            x = apply_thresholds(acc, layer.thresholds, layer.output_type).reshape(x.shape[0], -1)
        outputs.append(x)
    return outputs


def plan(name: str) -> list:
    """The plain (unpacked) plan ``name`` of :data:`PLANS`."""
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "fc":  # unsigned input, two folded layers, signed output
        return [mvu(0, rng, U4, I4, U4, 8, 12, pe=2, simd=3), mvu(1, rng, U4, I4N, I4, 6, 8, pe=3, simd=4)]
    if name == "fc_int8":  # signed 8-bit, 255 thresholds a channel
        return [mvu(0, rng, I8, I8N, I8, 4, 10, pe=2, simd=5), mvu(1, rng, I8, I8, U8, 3, 4)]
    if name == "fc_2bit":
        return [mvu(0, rng, I2, I2, U2, 5, 9, simd=3), mvu(1, rng, U2, I2, I2, 4, 5, pe=4)]
    if name == "conv_s1":  # 3x3 pad 1, signed input, a non-zero padding value
        return [mvu(0, rng, I4, I4, U4, 4, 27, pe=2, simd=3, window=Window(5, 6, 3, (3, 3), (1, 1), (1, 1, 1, 1), -3))]
    if name == "conv_s2":  # 3x3 pad 1 stride 2, odd sizes
        return [mvu(0, rng, U4, I4, I4, 3, 18, simd=2, window=Window(7, 5, 2, (3, 3), (2, 2), (1, 1, 1, 1), 5))]
    if name == "conv_1x1":
        return [mvu(0, rng, U8, I4, U4, 6, 4, pe=3, simd=4, window=Window(3, 4, 4, (1, 1), (1, 1), (0, 0, 0, 0), 0))]
    if name == "pool":  # 3x3 stride 2 pad 1 on signed values, then 2x2 on what remains
        return [PoolLayer(0, "pool0", "MaxPool", "p0", I4, Window(7, 6, 2, (3, 3), (2, 2), (1, 1, 1, 1), 0)),
                PoolLayer(1, "pool1", "MaxPool", "p1", I4, Window(4, 3, 2, (2, 2), (2, 2), (0, 0, 0, 0), 0))]
    if name == "chain":  # conv -> pool -> conv -> fc
        return [mvu(0, rng, U4, I4, U4, 4, 18, pe=2, simd=2, window=Window(6, 6, 2, (3, 3), (1, 1), (1, 1, 1, 1), 0)),
                PoolLayer(1, "pool", "MaxPool", "p", U4, Window(6, 6, 4, (2, 2), (2, 2), (0, 0, 0, 0), 0)),
                mvu(2, rng, U4, I4, I4, 4, 36, simd=4, window=Window(3, 3, 4, (3, 3), (1, 1), (1, 1, 1, 1), 0)),
                mvu(3, rng, I4, I4, I4, 3, 36, pe=3, simd=2)]
    raise KeyError(name)


PLANS = ["fc", "fc_int8", "fc_2bit", "conv_s1", "conv_s2", "conv_1x1", "pool", "chain"]


def packed(layer: MvuLayer, primitive: str) -> MvuLayer:
    """``layer`` carrying the lane planner's MVU packing on ``primitive``."""
    packing = plan_packing(primitive, layer.weight_type, layer.input_type, accumulation=layer.vector_length)
    assert packing.scheme != "none"
    return dataclasses.replace(layer, packing=packing)


def packed_plan(name: str) -> list:
    """Layer plans whose MVUs realise a packing: PE not a multiple of the lanes, SIMD > 1,
    signed and unsigned activations, 2/4/8-bit types, a convolution behind its window."""
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "sdv_w4a4":  # 4 lanes: PE 6 = a full group and a half one; then signed activations
        return [packed(mvu(0, rng, U4, I4, I4, 6, 12, pe=6, simd=3), "DSP48E2"),
                packed(mvu(1, rng, I4, I4N, U4, 4, 6, pe=4, simd=2), "DSP48E2")]
    if name == "sdv_w2a2":
        return [packed(mvu(0, rng, I2, I2, U2, 10, 9, pe=5, simd=3), "DSP48E2")]
    if name == "sdv_w8a8":
        return [packed(mvu(0, rng, I8, I8N, I8, 6, 8, pe=3, simd=2), "DSP48E2")]
    if name == "sdv_e1":
        return [packed(mvu(0, rng, U4, I4, U4, 6, 10, pe=3, simd=5), "DSP48E1")]
    if name == "sdv_conv":
        return [packed(mvu(0, rng, U4, I4, U4, 6, 18, pe=6, simd=2,
                           window=Window(5, 5, 2, (3, 3), (1, 1), (1, 1, 1, 1), 3)), "DSP48E2")]
    if name == "dual_w4a4":
        return [packed(mvu(0, rng, U4, I4, I4, 6, 12, pe=3, simd=2), "SB_MAC16"),
                packed(mvu(1, rng, I4, I4N, U4, 4, 6, pe=4, simd=3), "SB_MAC16")]
    if name == "dual_w8a8":
        return [packed(mvu(0, rng, I8, I8, U8, 4, 6, pe=2, simd=3), "SB_MAC16")]
    raise KeyError(name)


PACKED_PLANS = ["sdv_w4a4", "sdv_w2a2", "sdv_w8a8", "sdv_e1", "sdv_conv", "dual_w4a4", "dual_w8a8"]


def random_rows(layers, count: int, seed: int = 7) -> np.ndarray:
    """``count`` random input rows of the first layer's type."""
    t = layers[0].input_type
    return np.random.default_rng(seed).integers(t.min, t.max + 1, size=(count, layers[0].input_elements))


def yosys_datdir() -> Path:
    """yosys' data directory (cell models): ``yosys-config --datdir``, else ``share/yosys`` next to
    the yosys executable's ``bin`` (Debian ships yosys-config only in yosys-dev)."""
    if shutil.which("yosys-config"):
        return Path(subprocess.run(["yosys-config", "--datdir"], capture_output=True, text=True).stdout.strip())
    return Path(shutil.which("yosys")).resolve().parent.parent / "share" / "yosys"
