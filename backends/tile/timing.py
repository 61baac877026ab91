"""Closed-form cycle counts of the tile accelerator's units: the analytic latency model.

All counts are cycles of the target's clock (``grid.clock_hz``); every formula is an upper
bound of its unit's busy time with no overlap inside the unit:

* **MAC array** (:func:`array_cycles`): a weight-stationary systolic array of ``R`` rows x
  ``C`` columns computes an ``M x K x N`` matrix product (``M`` output positions, ``K`` the
  reduction, ``N`` output channels) in ``ceil(K/R) * ceil(N/C)`` folds; each fold loads its
  weights (``R`` cycles), streams ``M`` input vectors through and drains, ``2R + C + M - 2``
  cycles (SCALE-Sim's weight-stationary runtime, Samajdar et al., ISPASS 2020, eq. for WS).
  :mod:`.scalesim_check` compares this with SCALE-Sim itself.
* **vector unit** (:func:`vector_cycles`): as many lanes as the array has columns, one
  operation per lane per cycle, ``ceil(elements * work / lanes)`` cycles plus a pipeline fill
  of :data:`VECTOR_FILL`.
* **transfers** (:func:`transfer_cycles`): ``ceil(bytes / rate)`` at the slower of the DRAM's
  share and the tile's NoC port, plus ``hops * hop_cycles`` to or from the DRAM controller.
  The DRAM controllers sit on the grid's west edge, one per row (:func:`dram_hops`).
"""

from __future__ import annotations

import math

from edgec.target_kinds.tile import TileTarget

#: Cycles the vector unit needs before its first result (read, operate, write back).
VECTOR_FILL = 4


def array_cycles(target: TileTarget, positions: int, reduction: int, channels: int) -> int:
    """Cycles of an ``positions x reduction x channels`` product on one tile's MAC array."""
    if positions == 0 or reduction == 0 or channels == 0:
        return 0
    rows, cols = target.grid.tile.array_rows, target.grid.tile.array_cols
    folds = math.ceil(reduction / rows) * math.ceil(channels / cols)
    return folds * (2 * rows + cols + positions - 2)


def vector_cycles(target: TileTarget, elements: int, work: int) -> int:
    """Cycles of ``elements`` outputs of ``work`` operations each on one tile's vector unit."""
    if elements == 0:
        return 0
    return VECTOR_FILL + math.ceil(elements * work / target.grid.tile.array_cols)


def dram_hops(target: TileTarget, tile: int) -> int:
    """NoC hops between physical tile ``tile`` (raster order) and its row's DRAM controller,
    which sits west of the row's first tile (a torus also reaches it from the east end)."""
    column = tile % target.grid.cols
    hops = column + 1
    if target.noc.topology == "torus":
        hops = min(hops, target.grid.cols - column)
    return hops


def transfer_cycles(target: TileTarget, size: int, hops: int, sharing: int = 1) -> int:
    """Cycles to move ``size`` bytes between DRAM and a tile ``hops`` away while ``sharing``
    tiles stream at once (each gets an equal share of the DRAM's bandwidth)."""
    if size == 0:
        return 0
    rate = min(target.noc.link_bytes_per_cycle, target.dram.bytes_per_cycle / max(1, sharing))
    return math.ceil(size / rate) + hops * target.noc.hop_cycles
