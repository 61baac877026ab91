"""The FPGA backend's layer plan: what one streaming hardware stage computes, in integers.

An integer graph that the FPGA backend takes becomes a chain of stages, each reading the
element stream of the stage before it and writing one (:class:`MvuLayer`, :class:`PoolLayer`);
a residual :class:`AddLayer` also reads a second, earlier stream (its ``skip_from``: the
output of an earlier stage, or the plan's input, forked to both the next stage and the
add). Streams carry the
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
  convolution: divides ``in_channels``);
* a ``delta`` scheme (delta-encoded weights) is one ``weights`` is exactly representable in,
  read in the order above (:mod:`edgec.backends.fpga.delta_rtl` checks it and the folding);
* an add's output element is ``output_type.min + #{t in thresholds[0] : sum >= t}`` with
  ``sum = table[main - input_type.min] + skip_table[skip - skip_type.min]``; its tables hold
  one term per input value, ``thresholds`` is ``[1, output_type.levels - 1]`` non-decreasing;
  its ``skip_from`` is ``-1`` (the plan's input) or an earlier stage, with at least one stage
  between it and the add (the main branch), and the skip stream has the add's element count.
  Residual blocks follow one another, never nest or overlap: an add's ``skip_from`` is not
  before the previous add (one fork open at a time, each forked stream read by two stages).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgec.backends.fpga.lanes import Packing
from edgec.delta import DeltaScheme
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
    delta: DeltaScheme | None = None  # how its weight memory stores ``weights`` (None: plain), :mod:`.delta_rtl`

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


@dataclasses.dataclass(frozen=True)
class AddLayer:
    """A residual addition of two streams of ``elements`` elements each, element by element:
    the main stream (the stage before it, ``input_type``) and the skip stream (the output of
    stage ``skip_from``, or the plan's input when ``-1``; ``skip_type``).

    The reference ADD rescales each input on its own (zero point, left shift, multiplier) and
    requantizes their sum; here each input's rescaled term is a lookup table over its type's
    values (``table[v - input_type.min]``, ``skip_table[v - skip_type.min]``) and the
    requantization of the sum is ``thresholds[0]`` (monotone in the sum, as in an MVU).
    """

    index: int
    name: str
    op: str
    output: str
    input_type: IntType
    skip_type: IntType
    output_type: IntType
    elements: int
    skip_from: int
    table: np.ndarray
    skip_table: np.ndarray
    thresholds: np.ndarray

    @property
    def input_elements(self) -> int:
        return self.elements

    @property
    def output_elements(self) -> int:
        return self.elements

    def sum_range(self) -> tuple[int, int]:
        """The smallest and largest sum of the two terms over every pair of input values."""
        return (int(self.table.min()) + int(self.skip_table.min()),
                int(self.table.max()) + int(self.skip_table.max()))


Layer = MvuLayer | PoolLayer | AddLayer


def _check_add(layer: AddLayer) -> None:
    if layer.table.shape != (layer.input_type.levels,) or layer.skip_table.shape != (layer.skip_type.levels,):
        raise ValueError(f"{layer.name}: its tables do not hold one term per input value")
    t = layer.thresholds
    if t.shape != (1, layer.output_type.levels - 1) or np.any(np.diff(t, axis=1) < 0):
        raise ValueError(f"{layer.name}: thresholds are not {layer.output_type.levels - 1} non-decreasing values")
    if not -1 <= layer.skip_from < layer.index - 1:
        raise ValueError(f"{layer.name}: its skip input (stage {layer.skip_from}) is not an earlier stream "
                         "with a stage between it and the add")


def check_plan(layers: list[Layer]) -> None:
    """Raise ``ValueError`` naming the first invariant of the plan as a whole that ``layers``
    break: stage ``i`` at index ``i``, every stage reading what the stage before it writes (the
    first: the plan's input), every add's skip stream as long as its main one, adds never
    nested. Each layer's own invariants are :func:`check_layer`'s."""
    last_add = -1  # the index of the last add seen (-1: none yet)
    for position, layer in enumerate(layers):
        if layer.index != position:
            raise ValueError(f"{layer.name}: stage {position} has index {layer.index}")
        check_layer(layer)
        before = layers[position - 1] if position else None
        if before is not None and (before.output_type.bits != layer.input_type.bits
                                   or before.output_elements != layer.input_elements):
            raise ValueError(f"{layer.name} does not take what {before.name} streams out "
                             f"({before.output_elements} x {before.output_type})")
        if isinstance(layer, AddLayer):
            source = layers[layer.skip_from] if layer.skip_from >= 0 else None
            elements = layers[0].input_elements if source is None else source.output_elements
            skip_type = layers[0].input_type if source is None else source.output_type
            if elements != layer.elements or skip_type.bits != layer.skip_type.bits:
                raise ValueError(f"{layer.name}: its skip stream is {elements} x {skip_type}, "
                                 f"not {layer.elements} x {layer.skip_type}")
            if layer.skip_from < last_add:
                raise ValueError(f"{layer.name}: its residual block overlaps the one ending at stage {last_add}")
            last_add = layer.index


def check_layer(layer: Layer) -> None:
    """Raise ``ValueError`` naming the first invariant (module docstring) ``layer`` breaks."""
    if isinstance(layer, PoolLayer):
        return
    if isinstance(layer, AddLayer):
        _check_add(layer)
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
