"""Folding: how many output channels (``pe``) and inputs (``simd``) each MVU computes per cycle.

Cost model (what the choice optimises; the RTL follows it, measured figures may add a few
cycles of pipeline overhead per layer):

* an MVU of ``positions`` window positions takes
  ``positions * (out_channels / pe) * (vector_length / simd)`` cycles per inference
  (``simd`` divides the vector length, or a convolution's ``in_channels``; ``pe`` divides
  ``out_channels``), and never fewer than the elements it reads or writes, since streams
  carry one element per cycle, nor, behind a sliding-window unit, than the
  ``positions * vector_length`` window elements that unit emits one per cycle; a max pool
  takes the larger of its input elements and its window elements
  (``positions * kh * kw * channels``), for the same reasons;
* a row-packed convolution (:mod:`.conv_rows`) takes :func:`.conv_rows.row_cycles` (its
  windows times the largest of its pairs over ``simd``, the pairs and its ``M`` columns'
  outputs) and uses ``pe * simd`` DSPs with ``pe`` the output channels; ``variants`` offers
  it beside the layer's SDV form, and the candidates of both compete on the same terms;
* stages run concurrently, so the design's initiation interval (:func:`cycles_per_inference`)
  is its slowest stage's cycle count;
* an MVU uses ``ceil(pe / macs_per_dsp(layer)) * simd`` DSPs (a packed DSP's lanes are PEs
  sharing one activation; the ``simd`` inputs of a cycle have an activation each); a pool none.

Algorithm: a stage's candidates are every pair of divisors ``(pe, simd)``; the cheapest
candidate meeting an interval ``ii`` is the one with the fewest DSPs, then the fewest
multipliers ``pe * simd``, then the smaller ``pe``, then the plain core over a packed one
(the folding is offered both: a packing that saves no DSP only costs LUTs). The cost is a sum over stages and the
interval a maximum, so meeting ``ii`` at least cost is separable: each stage takes its own
cheapest candidate. With ``fps`` the interval is ``floor(clock_hz / fps)``. With ``max_dsp``
the achievable intervals (every candidate's cycle count) are tried in increasing order by
binary search (the least cost of an interval never grows as the interval grows), and the
first whose least cost fits is taken: the fastest design within the budget, at its least
cost. Both are optimal for this cost model.

Delta-encoded weights (``MvuLayer.delta``, :mod:`.delta_rtl`) take only a ``simd`` whose
words do not straddle the scheme's blocks (:func:`.delta_rtl.simd_fits`), and no row packing.

Limits: the model counts DSPs and multipliers only, not LUTs, memory ports or routing; it
assumes a packed unit's ``macs_per_dsp`` does not depend on ``pe``/``simd``; it folds only
by divisors (no padding of channel counts); and it does not model FIFO depths or the first
inference's latency.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from edgec.backends.fpga import conv_rows, delta_rtl
from edgec.backends.fpga.layers import AddLayer, Layer, MvuLayer
from edgec.errors import EdgecError


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _inner(layer: MvuLayer) -> int:
    """What ``simd`` divides: the vector length, or a convolution's input channels."""
    return layer.vector_length if layer.window is None else layer.window.channels


def layer_cycles(layer: Layer, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per inference of ``layer`` at its own folding, or at ``pe``/``simd`` when given."""
    if isinstance(layer, AddLayer):  # one element of each input a cycle
        return layer.elements
    w = layer.window
    positions = 1 if w is None else w.out_h * w.out_w
    if not isinstance(layer, MvuLayer):
        return max(layer.input_elements, positions * w.kernel[0] * w.kernel[1] * w.channels)
    pe = layer.pe if pe is None else pe
    simd = layer.simd if simd is None else simd
    if conv_rows.is_row_packed(layer):
        return conv_rows.row_cycles(layer, simd)
    compute = positions * (layer.out_channels // pe) * (layer.vector_length // simd)
    window_elements = 0 if w is None else positions * layer.vector_length
    return max(compute, layer.input_elements, window_elements, layer.output_elements)


def cycles_per_inference(layers: list[Layer]) -> int:
    """The design's initiation interval: the slowest stage's cycles per inference."""
    return max(layer_cycles(layer) for layer in layers)


def layer_dsps(layer: Layer, macs_per_dsp: Callable[[Layer], int] = lambda layer: 1) -> int:
    """DSPs ``layer`` uses at its folding."""
    if not isinstance(layer, MvuLayer):
        return 0
    return math.ceil(layer.pe / macs_per_dsp(layer)) * layer.simd


@dataclasses.dataclass(frozen=True)
class _Candidate:
    layer: Layer  # the variant (its packing) this folding applies to
    pe: int
    simd: int
    cycles: int
    dsps: int

    @property
    def cost(self) -> tuple[int, int, int, bool]:
        """Fewest DSPs, then multipliers, then PEs, then the plain core (a packed unit's
        sideband and canaries cost LUTs, so it is only worth the DSPs it saves)."""
        return self.dsps, self.pe * self.simd, self.pe, self.layer.packing is not None


def _candidates(layer: Layer, macs_per_dsp: Callable[[Layer], int],
                variants: Callable[[Layer], list[Layer]]) -> list[_Candidate]:
    if not isinstance(layer, MvuLayer):
        return [_Candidate(layer, 1, 1, layer_cycles(layer), 0)]
    found = []
    for variant in variants(layer):
        if conv_rows.is_row_packed(variant):  # every output channel at once, one DSP per channel and pair
            found += [_Candidate(variant, variant.out_channels, simd, layer_cycles(variant, variant.out_channels, simd),
                                 variant.out_channels * simd) for simd in _divisors(_inner(variant))]
            continue
        per_dsp = macs_per_dsp(variant)
        found += [_Candidate(variant, pe, simd, layer_cycles(variant, pe, simd), math.ceil(pe / per_dsp) * simd)
                  for pe in _divisors(variant.out_channels) for simd in _divisors(_inner(variant))
                  if delta_rtl.simd_fits(variant, simd)]
    return sorted(found, key=lambda c: c.cost)


def _cheapest(candidates: list[_Candidate], ii: int) -> _Candidate | None:
    """The least-cost candidate taking at most ``ii`` cycles (candidates are sorted by cost)."""
    return next((c for c in candidates if c.cycles <= ii), None)


def _apply(choice: list[_Candidate]) -> list[Layer]:
    return [dataclasses.replace(c.layer, pe=c.pe, simd=c.simd) if isinstance(c.layer, MvuLayer) else c.layer
            for c in choice]


def fold(layers: list[Layer], *, clock_hz: float, fps: float | None = None, max_dsp: int | None = None,
         macs_per_dsp: Callable[[Layer], int] = lambda layer: 1,
         variants: Callable[[Layer], list[Layer]] = lambda layer: [layer]) -> list[Layer]:
    """``layers`` with ``pe``/``simd`` chosen (module docstring): the cheapest folding reaching
    ``fps`` inferences per second at ``clock_hz``, or the fastest within ``max_dsp`` DSPs, or
    the least cost (``pe = simd = 1`` for a layer with one variant) when neither is given.
    With both, the cheapest folding reaching ``fps``, which must also fit ``max_dsp``.
    ``variants`` gives each layer's alternatives (the same layer with other packings, e.g. a
    row-packed convolution, :mod:`.conv_rows`, beside SDV lanes); the folding picks one of
    them with its ``pe``/``simd``.

    Raises :class:`EdgecError` when ``fps`` is out of reach (naming the best reachable rate)
    or ``max_dsp`` is below what the smallest folding needs.
    """
    table = [_candidates(layer, macs_per_dsp, variants) for layer in layers]
    if fps is not None:
        ii = math.floor(clock_hz / fps)
        choice = [_cheapest(candidates, ii) for candidates in table]
        if any(c is None for c in choice):
            best = max(min(c.cycles for c in candidates) for candidates in table)
            raise EdgecError(f"{fps:g} inferences/s is out of reach at {clock_hz / 1e6:g} MHz: the fastest "
                             f"folding takes {best} cycles, {clock_hz / best:.1f} inferences/s",
                             "ask for a lower --fps or a faster clock")
        dsps = sum(c.dsps for c in choice)
        if max_dsp is not None and dsps > max_dsp:
            raise EdgecError(f"{fps:g} inferences/s needs {dsps} DSPs, more than --max-dsp {max_dsp}",
                             "ask for a lower --fps or allow more DSPs")
        return _apply(choice)
    if max_dsp is None:
        return _apply([candidates[0] for candidates in table])
    intervals = sorted({c.cycles for candidates in table for c in candidates})
    floor_ii = max(min(c.cycles for c in candidates) for candidates in table)
    intervals = [ii for ii in intervals if ii >= floor_ii]

    def least_cost(ii: int) -> int:
        return sum(_cheapest(candidates, ii).dsps for candidates in table)

    if least_cost(intervals[-1]) > max_dsp:
        raise EdgecError(f"the smallest folding needs {least_cost(intervals[-1])} DSPs, more than "
                         f"--max-dsp {max_dsp}", "allow more DSPs")
    low, high = 0, len(intervals) - 1  # invariant: intervals[high] fits the budget
    while low < high:
        mid = (low + high) // 2
        if least_cost(intervals[mid]) <= max_dsp:
            high = mid
        else:
            low = mid + 1
    return _apply([_cheapest(candidates, intervals[high]) for candidates in table])
