"""The tile simulator's timing: a discrete-event simulation, at cycle resolution, of a network
mapping on a group of physical tiles.

Every block of every tile's share (:mod:`.mapping`) becomes up to three operations:

* **load** (the block's inputs and, unless resident, its weights, from DRAM), on the DRAM
  (busy ``ceil(bytes / dram.bytes_per_cycle)``, shared by all tiles, first come first
  served) and on the tile's NoC port (busy ``ceil(bytes / noc.link_bytes_per_cycle)``) from the
  same start; it completes when both are done plus ``hops * hop_cycles`` from the row's DRAM
  controller (:func:`.timing.dram_hops`);
* **compute** (:mod:`.timing`'s array or vector cycles), on the tile's compute unit;
* **store** (the block's output, once its reduction is complete) back to DRAM, like a load.

Dependencies: a block's compute waits for its load and the tile's previous compute; its load
waits for the compute two blocks back (two buffers); a layer's loads wait for every store
and compute of the layer before it (its input is in DRAM then; a ``Reshape`` moves nothing).
The network's input is in DRAM at cycle 0. Operations start in order of the cycle they
become ready (ties: in program order) as soon as their units are free: list scheduling on
exclusive units, so no unit ever runs two operations at once (:func:`check_no_overlap`).

This models the NoC by port bandwidth and hop latency, not per-link contention, and the DRAM
as one first-come-first-served channel without bank or page effects.
"""

from __future__ import annotations

import dataclasses
import heapq
import math

from edgec.backends.tile import timing
from edgec.backends.tile.mapping import NetworkMapping
from edgec.target_kinds.tile import TileTarget

LOAD, COMPUTE, STORE = "load", "compute", "store"


@dataclasses.dataclass(frozen=True)
class Event:
    """One operation as it ran: on physical ``tile``, for block ``block`` of layer ``layer``."""

    tile: int
    kind: str
    layer: int
    block: int
    start: int
    end: int
    size: int  # bytes moved (load, store) or 0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Simulation:
    """A simulated inference: ``cycles`` from the input in DRAM to the output in DRAM."""

    cycles: int
    events: tuple[Event, ...]
    layer_spans: tuple[tuple[int, int], ...]
    dram_bytes: int
    busy_cycles: int  # compute cycles summed over tiles

    def utilisation(self, tiles: int) -> float:
        """The share of the group's compute-unit cycles spent computing."""
        return self.busy_cycles / (tiles * self.cycles) if self.cycles else 0.0


@dataclasses.dataclass
class _Op:
    kind: str
    tile: int
    layer: int
    block: int
    size: int
    cycles: int
    successors: list[int] = dataclasses.field(default_factory=list)
    waiting: int = 0
    ready: int = 0


def _build(mapping: NetworkMapping, tiles: list[int]) -> list[_Op]:
    ops: list[_Op] = []

    def add(op: _Op, deps: list[int | None]) -> int:
        ops.append(op)
        index = len(ops) - 1
        for dep in {d for d in deps if d is not None}:
            ops[dep].successors.append(index)
            op.waiting += 1
        return index

    barrier: list[int] = []
    for layer_mapping in mapping.layers:
        finished: list[int] = []
        for share in layer_mapping.shares:
            tile = tiles[share.tile]
            computes: list[int] = []
            for number, block in enumerate(share.blocks):
                two_back = computes[number - 2] if number >= 2 else None
                load = None
                if block.load_bytes:
                    load = add(_Op(LOAD, tile, layer_mapping.layer.index, number, block.load_bytes, 0),
                               [*barrier, two_back])
                deps = [load, computes[-1] if computes else None] + ([] if load is not None else barrier)
                compute = add(_Op(COMPUTE, tile, layer_mapping.layer.index, number, 0, block.compute_cycles), deps)
                computes.append(compute)
                finished.append(compute)
                if block.store_bytes:
                    finished.append(add(_Op(STORE, tile, layer_mapping.layer.index, number, block.store_bytes, 0),
                                        [compute]))
        if finished:
            barrier = finished
    return ops


def simulate(mapping: NetworkMapping, target: TileTarget, tiles: list[int] | None = None) -> Simulation:
    """Simulate one inference of ``mapping`` on physical ``tiles`` (default: the first
    ``mapping.tiles`` in raster order); see the module docstring."""
    tiles = list(range(mapping.tiles)) if tiles is None else list(tiles)
    ops = _build(mapping, tiles)
    free: dict[tuple[str, int], int] = {}
    heap = [(0, index) for index, op in enumerate(ops) if op.waiting == 0]
    heapq.heapify(heap)
    events: list[Event] = []
    dram_rate, link_rate = target.dram.bytes_per_cycle, target.noc.link_bytes_per_cycle
    while heap:
        ready, index = heapq.heappop(heap)
        op = ops[index]
        if op.kind == COMPUTE:
            start = max(ready, free.get(("pe", op.tile), 0))
            end = start + op.cycles
            free[("pe", op.tile)] = end
        else:
            start = max(ready, free.get(("dram", 0), 0), free.get(("port", op.tile), 0))
            dram_busy, port_busy = math.ceil(op.size / dram_rate), math.ceil(op.size / link_rate)
            free[("dram", 0)] = start + dram_busy
            free[("port", op.tile)] = start + port_busy
            end = start + max(dram_busy, port_busy) + timing.dram_hops(target, op.tile) * target.noc.hop_cycles
        events.append(Event(op.tile, op.kind, op.layer, op.block, start, end, op.size))
        for successor in op.successors:
            following = ops[successor]
            following.ready = max(following.ready, end)
            following.waiting -= 1
            if following.waiting == 0:
                heapq.heappush(heap, (following.ready, successor))
    events.sort(key=lambda e: (e.start, e.tile, e.kind))
    spans = []
    for layer_mapping in mapping.layers:
        mine = [e for e in events if e.layer == layer_mapping.layer.index]
        spans.append((min(e.start for e in mine), max(e.end for e in mine)) if mine else (0, 0))
    return Simulation(max((e.end for e in events), default=0), tuple(events), tuple(spans),
                      sum(e.size for e in events), sum(e.end - e.start for e in events if e.kind == COMPUTE))


def check_no_overlap(simulation: Simulation, target: TileTarget) -> None:
    """Raise AssertionError if a compute unit or a NoC port ran two operations at once (a
    port is busy ``ceil(bytes / link_bytes_per_cycle)`` cycles from a transfer's start)."""
    by_unit: dict[tuple[str, int], list[Event]] = {}
    for event in simulation.events:
        unit = "pe" if event.kind == COMPUTE else "port"
        by_unit.setdefault((unit, event.tile), []).append(event)
    for unit, events in by_unit.items():
        events.sort(key=lambda e: e.start)
        for before, after in zip(events, events[1:]):
            busy_end = (before.end if unit[0] == "pe"
                        else before.start + math.ceil(before.size / target.noc.link_bytes_per_cycle))
            assert after.start >= busy_end, f"{unit} runs two operations at cycle {after.start}"


def weight_load_cycles(mapping: NetworkMapping, target: TileTarget) -> int:
    """Cycles to bring resident weights into the group's SRAM before the first inference (0
    when weights stream): every tile loads its share at once over the shared DRAM."""
    if not mapping.resident:
        return 0
    per_tile = mapping.resident_bytes_by_tile
    total = sum(per_tile)
    slowest = max(timing.transfer_cycles(target, size, timing.dram_hops(target, tile))
                  for tile, size in enumerate(per_tile))
    return max(slowest, math.ceil(total / target.dram.bytes_per_cycle))
