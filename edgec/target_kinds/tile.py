"""The ``tile`` kind: an accelerator made of a grid of equal tiles joined by a network on chip,
with one shared DRAM.

Every rate is counted per cycle of the accelerator's clock (``grid.clock_hz``): a tile's
int8 multiply-accumulates (``grid.tile.array_rows`` x ``array_cols``: the tile's weight-stationary
systolic array), the bytes one NoC link carries each
way (``noc.link_bytes_per_cycle``) and the bytes the DRAM delivers to the whole grid
(``dram.bytes_per_cycle``). A NoC ``mesh`` links each tile to its four neighbours; a ``torus``
also wraps each row and column around.
"""

from __future__ import annotations

import dataclasses

from edgec.errors import EdgecError
from edgec.target_kinds.schema import Kind, Positive, Target

#: The NoC topologies a tile target may name.
TOPOLOGIES = ("mesh", "torus")


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: its MAC array (a weight-stationary systolic array of ``array_rows`` x
    ``array_cols`` int8 multiply-accumulators, rows along the reduction, columns along the
    output channels) and its local SRAM (weights, activations, partial sums)."""

    array_rows: Positive
    array_cols: Positive
    sram_bytes: Positive

    @property
    def macs_per_cycle(self) -> int:
        return self.array_rows * self.array_cols


@dataclasses.dataclass(frozen=True)
class Grid:
    rows: Positive
    cols: Positive
    clock_hz: Positive
    tile: Tile

    @property
    def tiles(self) -> int:
        return self.rows * self.cols


@dataclasses.dataclass(frozen=True)
class Noc:
    """The network between tiles: topology, bytes per cycle per link and direction, cycles per hop."""

    topology: str
    link_bytes_per_cycle: Positive
    hop_cycles: Positive


@dataclasses.dataclass(frozen=True)
class Dram:
    """The off-chip memory shared by all tiles: its size and its bandwidth per accelerator cycle."""

    bytes: Positive
    bytes_per_cycle: Positive


@dataclasses.dataclass(frozen=True)
class TileTarget(Target):
    """A tile accelerator target: the grid of tiles, the network between them and the DRAM."""

    grid: Grid
    noc: Noc
    dram: Dram

    @property
    def peak_macs_per_second(self) -> int:
        return self.grid.tiles * self.grid.tile.macs_per_cycle * self.grid.clock_hz


def check(target: TileTarget, source: str) -> None:
    """A NoC topology edgec knows."""
    if target.noc.topology not in TOPOLOGIES:
        raise EdgecError(f"target file {source}: noc.topology '{target.noc.topology}' is not one edgec knows",
                         f"use one of {', '.join(TOPOLOGIES)}")


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


KIND = Kind(
    name="tile",
    record=TileTarget,
    summary="a tile accelerator: [grid] rows, cols, clock_hz; [grid.tile] array_rows, array_cols, "
            "sram_bytes; "
            "[noc] topology, link_bytes_per_cycle, hop_cycles; [dram] bytes, bytes_per_cycle",
    columns=(
        ("grid", lambda t: f"{t.grid.rows}×{t.grid.cols} ({t.noc.topology})"),
        ("MAC array per tile", lambda t: f"{t.grid.tile.array_rows}×{t.grid.tile.array_cols}"),
        ("SRAM per tile", lambda t: _bytes(t.grid.tile.sram_bytes)),
        ("NoC link", lambda t: f"{t.noc.link_bytes_per_cycle} B/cycle"),
        ("DRAM", lambda t: f"{_bytes(t.dram.bytes)}, {t.dram.bytes_per_cycle} B/cycle"),
        ("clock", lambda t: f"{t.grid.clock_hz / 1e6:g} MHz"),
        ("peak", lambda t: f"{t.peak_macs_per_second / 1e9:g} GMAC/s"),
    ),
    check=check,
    replaced_keys={"grid.tile.macs_per_cycle": "give the MAC array's shape instead: array_rows = 8 and array_cols = 8 "
                                               "for 64 MACs per cycle"},
)
