"""The FPGA backend's layer plan: what one streaming hardware stage computes, in integers.

An integer graph that the FPGA backend takes becomes a chain of stages, each reading one
element stream and writing one (:class:`MvuLayer`, :class:`PoolLayer`). Streams carry the
integer graph's values as they are (raw stored integers, no zero point removed), in the
graph's element order: NHWC for feature maps, row-major for vectors. The plan is the
contract between the planner (integer graph -> plan), the RTL generator (plan -> Verilog)
and :func:`run_plan` (plan -> numpy, which must equal the integer reference bit for bit).

Invariants, checked by :func:`check_layer`:

* an MVU's ``weights`` are ``[out_channels, k]`` integers of ``weight_type``, ``k`` in the
  order its input vector streams in (``kh, kw, cin`` for a convolution's window);
* its output is ``output_type.min + #{t in thresholds[c] : acc >= t}`` where ``acc`` is the
  plain dot product of ``weights[c]`` with the raw input vector (bias, zero points and the
  requantization are all folded into the thresholds); ``thresholds[c]`` is non-decreasing,
  ``output_type.levels - 1`` long;
* ``pe`` divides ``out_channels`` and ``simd`` divides the vector length ``k`` (for a
  convolution: divides ``in_channels``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgec.backends.fpga.lanes import Packing
from edgec.inttype import IntType


@dataclasses.dataclass(frozen=True)
class Window:
    """A 2-D sliding window over an NHWC feature map ``[in_h, in_w, channels]``."""

    in_h: int
    in_w: int
    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    pad_value: int  # the raw value padding holds (a convolution: its input's zero point; a max pool: the type's minimum)

    @property
    def out_h(self) -> int:
        return (self.in_h + self.pads[0] + self.pads[2] - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + self.pads[1] + self.pads[3] - self.kernel[1]) // self.stride[1] + 1


@dataclasses.dataclass(frozen=True)
class MvuLayer:
    """A matrix-vector stage: ``FullyConnected`` (``window`` None) or ``Conv`` (a sliding window
    unit in front of it), folded ``pe`` output channels by ``simd`` inputs per cycle."""

    index: int
    name: str
    op: str
    output: str  # the integer graph value this stage computes (for per-layer traces)
    input_type: IntType
    weight_type: IntType
    output_type: IntType
    weights: np.ndarray
    thresholds: np.ndarray
    window: Window | None = None
    pe: int = 1
    simd: int = 1
    packing: Packing | None = None  # what the RTL's multiply-accumulate core realises (None: plain)

    @property
    def out_channels(self) -> int:
        return self.weights.shape[0]

    @property
    def vector_length(self) -> int:
        return self.weights.shape[1]

    @property
    def input_elements(self) -> int:
        w = self.window
        return self.vector_length if w is None else w.in_h * w.in_w * w.channels

    @property
    def output_elements(self) -> int:
        w = self.window
        return self.out_channels if w is None else w.out_h * w.out_w * self.out_channels

    @property
    def macs(self) -> int:
        positions = 1 if self.window is None else self.window.out_h * self.window.out_w
        return positions * self.out_channels * self.vector_length


@dataclasses.dataclass(frozen=True)
class PoolLayer:
    """A max pool over ``window`` (values and type pass through unchanged)."""

    index: int
    name: str
    op: str
    output: str
    input_type: IntType
    window: Window

    @property
    def output_type(self) -> IntType:
        return self.input_type

    @property
    def input_elements(self) -> int:
        return self.window.in_h * self.window.in_w * self.window.channels

    @property
    def output_elements(self) -> int:
        return self.window.out_h * self.window.out_w * self.window.channels


Layer = MvuLayer | PoolLayer


def check_layer(layer: Layer) -> None:
    """Raise ``ValueError`` naming the first invariant (module docstring) ``layer`` breaks."""
    if isinstance(layer, PoolLayer):
        return
    w, t = layer.weights, layer.thresholds
    if w.ndim != 2 or w.min(initial=0) < layer.weight_type.min or w.max(initial=0) > layer.weight_type.max:
        raise ValueError(f"{layer.name}: weights are not a matrix of {layer.weight_type}")
    if t.shape != (layer.out_channels, layer.output_type.levels - 1) or np.any(np.diff(t, axis=1) < 0):
        raise ValueError(f"{layer.name}: thresholds are not {layer.output_type.levels - 1} non-decreasing "
                         f"values per output channel")
    if layer.window is not None and layer.vector_length != layer.window.kernel[0] * layer.window.kernel[1] \
            * layer.window.channels:
        raise ValueError(f"{layer.name}: weights do not cover the window")
    inner = layer.vector_length if layer.window is None else layer.window.channels
    if layer.out_channels % layer.pe or inner % layer.simd:
        raise ValueError(f"{layer.name}: pe {layer.pe} / simd {layer.simd} do not divide "
                         f"{layer.out_channels} outputs / {inner} inputs")


def apply_thresholds(acc: np.ndarray, thresholds: np.ndarray, output_type: IntType) -> np.ndarray:
    """``output_type.min + #{t : acc >= t}`` per channel: ``acc [..., C]``, ``thresholds [C, T]``."""
    counts = (acc[..., :, None] >= thresholds).sum(axis=-1)
    return output_type.min + counts
