"""Mapping each layer onto ``k`` tiles: how its output is split across tiles, and how each
tile's share is cut into blocks that fit its SRAM, in which loop order.

For one layer and ``k`` tiles, :func:`map_layer` tries every split of the output into
``row_splits x channel_splits`` near-equal parts, ``row_splits = min(rows, k //
channel_splits)`` for each ``channel_splits`` up to ``min(k, channels)`` that is the largest
giving its quotient ``k // channel_splits`` (a smaller one would idle tiles for the same
rows); each part is one tile's share. A share is cut into blocks of ``rows x channels x reduction channels``: the
largest block that fits the SRAM budget, preferring the whole reduction (no partial sums),
then whole channels, then as many rows as fit (a binary search: a block's bytes grow with its
rows). A block fits when it does wherever it may sit on the layer (at its start, middle and
end: a window's halo is widest away from the padded edges). Blocks run in one of two loop
orders, rows outer or channels outer, whichever loads fewer bytes: a block loads an operand
(an input's slice, a weight slice) unless the block before it on the tile read the same slice,
which its buffer still holds.

A block's SRAM is its loads double-buffered (the next block's arrive while it computes), its
output double-buffered (the last one drains while it computes) and, when the reduction is cut,
an int32 partial sum per output element. With resident weights (:func:`map_network`) weights
are not loaded per inference and the budget is what the resident weights leave.

Each split is priced by the analytic model of :mod:`.timing` (the tile with the largest share
bounds the layer, and so does the DRAM's total traffic); the cheapest wins, the one with fewer
tiles on a tie. The choice is greedy per layer: it does not weigh moving data between
differently split layers, which goes through DRAM anyway (:mod:`.simulator`).
"""

from __future__ import annotations

import dataclasses
import math

from edgec.backends.tile import timing
from edgec.backends.tile.layers import TileLayer
from edgec.backends.tile.regions import Region, input_slices, output_bytes, read_bytes, slice_bytes
from edgec.errors import UnsupportedModelError
from edgec.target_kinds.tile import TileTarget

ROWS_OUTER = "rows-outer"
CHANNELS_OUTER = "channels-outer"


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of a tile's share: what it loads (after reuse), computes and stores."""

    region: Region
    load_bytes: int
    compute_cycles: int
    store_bytes: int


@dataclasses.dataclass(frozen=True)
class TileShare:
    """The part of a layer's output one tile of the group computes (``tile``: its index in the group)."""

    tile: int
    region: Region
    blocks: tuple[Block, ...]
    resident_bytes: int


@dataclasses.dataclass(frozen=True)
class LayerMapping:
    """A layer on a group of tiles (see the module docstring); a view layer has no shares."""

    layer: TileLayer
    row_splits: int
    channel_splits: int
    block_shape: tuple[int, int, int]
    loop_order: str
    shares: tuple[TileShare, ...]
    sram_bytes: int
    estimated_cycles: int

    @property
    def tiles(self) -> int:
        return len(self.shares)


@dataclasses.dataclass(frozen=True)
class NetworkMapping:
    """Every layer of a network on ``tiles`` tiles; ``resident``: weights stay in SRAM."""

    tiles: int
    resident: bool
    layers: tuple[LayerMapping, ...]

    @property
    def resident_bytes_by_tile(self) -> list[int]:
        """The weight bytes each tile of the group keeps resident (zeros when weights stream)."""
        per_tile = [0] * self.tiles
        for mapping in self.layers if self.resident else ():
            for share in mapping.shares:
                per_tile[share.tile] += share.resident_bytes
        return per_tile

    @property
    def resident_bytes(self) -> int:
        """The most weight bytes one tile keeps resident (0 when weights stream)."""
        return max(self.resident_bytes_by_tile, default=0)


def split_ranges(total: int, parts: int) -> list[tuple[int, int]]:
    """``total`` cut into ``parts`` contiguous near-equal ranges, the larger ones first."""
    base, extra = divmod(total, parts)
    ranges, start = [], 0
    for part in range(parts):
        size = base + (1 if part < extra else 0)
        ranges.append((start, start + size))
        start += size
    return ranges


def _region(layer: TileLayer, rows, channels, reduction) -> Region:
    return Region(rows if layer.row_axis is not None else None,
                  channels if layer.channel_axis is not None else None,
                  reduction if layer.kind == "array" else None)


def _compute_cycles(layer: TileLayer, target: TileTarget, region: Region) -> int:
    elements = output_bytes(layer, region)
    if layer.kind == "vector":
        return timing.vector_cycles(target, elements, layer.work)
    channels = region.channels[1] - region.channels[0] if region.channels else layer.output_shape[-1]
    span = region.reduction[1] - region.reduction[0] if region.reduction else layer.reduction_channels
    reduction = span * (layer.reduction // layer.reduction_channels)
    cycles = timing.array_cycles(target, elements // max(1, channels), reduction, channels)
    last = region.reduction is None or region.reduction[1] == layer.reduction_channels
    return cycles + (timing.vector_cycles(target, elements, 1) if last else 0)  # bias and requantization


def _blocks(layer: TileLayer, target: TileTarget, share: Region, shape: tuple[int, int, int], order: str,
            resident: bool) -> list[Block]:
    """The blocks of ``share`` in ``order``, each loading what the block before it did not read."""
    rows_b, channels_b, reduction_b = shape
    full = (0, 1)
    rows = split_by(share.rows or full, rows_b)
    channels = split_by(share.channels or full, channels_b)
    reductions = split_by((0, layer.reduction_channels), reduction_b) if layer.kind == "array" else [full]
    pairs = [(r, c) for r in rows for c in channels] if order == ROWS_OUTER else [(r, c) for c in channels for r in rows]
    constant = [v is not None and v.const_value is not None for v in layer.node.inputs]
    blocks, previous = [], None
    for r, c in pairs:
        for k in reductions:
            region = _region(layer, r if share.rows else None, c if share.channels else None,
                             k if len(reductions) > 1 else None)
            slices = input_slices(layer, region)
            loaded = sum(slice_bytes(value, where) for index, (value, where) in enumerate(zip(layer.node.inputs, slices))
                         if value is not None and not (previous is not None and previous[index] == where)
                         and not (resident and constant[index]))
            last = len(reductions) == 1 or k[1] == layer.reduction_channels
            blocks.append(Block(region, loaded, _compute_cycles(layer, target, region),
                                output_bytes(layer, region) if last else 0))
            previous = slices
    return blocks


def split_by(span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """``span`` cut into consecutive ranges of ``size`` (the last one shorter)."""
    return [(start, min(start + size, span[1])) for start in range(span[0], span[1], size)]


def block_sram(layer: TileLayer, block: Region, resident: bool) -> int:
    """SRAM a block holds (see the module docstring)."""
    activations, parameters = read_bytes(layer, block)
    out = output_bytes(layer, block)
    partial = 4 * out if block.reduction is not None else 0
    return 2 * (activations + (0 if resident else parameters)) + 2 * out + partial


def _candidates(total: int) -> list[int]:
    """Block sizes to try along an axis of ``total``: whole, then halving."""
    sizes, size = [], total
    while size >= 1:
        sizes.append(size)
        if size == 1:
            break
        size = math.ceil(size / 2)
    return sizes


def _placements(span: tuple[int, int] | None, size: int, total: int) -> list[tuple[int, int] | None]:
    """Where a block of ``size`` along an axis of ``total`` may sit: at the start, the middle and
    the end of the axis (a window's halo is clipped least in the middle), or ``None`` (whole)."""
    if span is None:
        return [None]
    starts = {0, max(0, (total - size) // 2), max(0, total - size)}
    return [(start, start + size) for start in sorted(starts)]


def _fits(layer: TileLayer, rows: int, channels: int, cut, budget: int, resident: bool) -> bool:
    """Whether a block of ``rows x channels`` (reduction ``cut``) fits ``budget`` wherever it sits."""
    share_rows = (0, rows) if layer.row_axis is not None else None
    share_channels = (0, channels) if layer.channel_axis is not None else None
    return all(block_sram(layer, _region(layer, r, c, cut), resident) <= budget
               for r in _placements(share_rows, rows, layer.rows)
               for c in _placements(share_channels, channels, layer.channels))


def _fit(layer: TileLayer, share: Region, budget: int, resident: bool) -> tuple[int, int, int] | None:
    """The largest block shape of ``share`` whose SRAM fits ``budget`` (module docstring)."""
    rows = share.rows[1] - share.rows[0] if share.rows else 1
    channels = share.channels[1] - share.channels[0] if share.channels else 1
    reductions = _candidates(layer.reduction_channels) if layer.kind == "array" else [1]
    for reduction in reductions:
        cut = (0, reduction) if reduction < layer.reduction_channels else None
        for channel_size in _candidates(channels):
            if not _fits(layer, 1, channel_size, cut, budget, resident):
                continue
            low, high = 1, rows
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (middle, high) if _fits(layer, middle, channel_size, cut, budget, resident) \
                    else (low, middle - 1)
            return low, channel_size, reduction
    return None


def _share_cycles(target: TileTarget, blocks: list[Block], hops: int, sharing: int) -> int:
    """Analytic time of one tile's blocks: loads overlap the previous block's compute."""
    loads = [timing.transfer_cycles(target, b.load_bytes, hops, sharing) for b in blocks]
    total = loads[0] if loads else 0
    for index, block in enumerate(blocks):
        following = loads[index + 1] if index + 1 < len(blocks) else 0
        total += max(block.compute_cycles, following)
    return total + (timing.transfer_cycles(target, blocks[-1].store_bytes, hops, sharing) if blocks else 0)


def _channel_splits(tiles: int, channels: int) -> list[int]:
    """The channel splits worth trying: for each row split ``q = tiles // c`` the most channel
    splits ``c`` that leave it (fewer would leave tiles idle for the same rows)."""
    return sorted({min(channels, tiles // quotient) for quotient in range(1, tiles + 1)} - {0})


def map_layer(layer: TileLayer, target: TileTarget, tiles: int, budget: int, resident: bool) -> LayerMapping:
    """The cheapest mapping of ``layer`` on at most ``tiles`` tiles (module docstring)."""
    if layer.kind == "view":
        return LayerMapping(layer, 1, 1, (0, 0, 0), "-", (), 0, 0)
    best = None
    for channel_splits in _channel_splits(tiles, layer.channels):
        row_splits = min(layer.rows, tiles // channel_splits)
        row_ranges = split_ranges(layer.rows, row_splits)
        channel_ranges = split_ranges(layer.channels, channel_splits)
        largest = _region(layer, row_ranges[0], channel_ranges[0], None)
        shape = _fit(layer, largest, budget, resident)
        if shape is None:
            continue
        used = row_splits * channel_splits
        hops = timing.dram_hops(target, used - 1)
        orders = {}
        for order in (ROWS_OUTER, CHANNELS_OUTER):
            blocks = _blocks(layer, target, largest, shape, order, resident)
            orders[order] = (sum(b.load_bytes for b in blocks), blocks)
        order = min(orders, key=lambda o: orders[o][0])
        blocks = orders[order][1]
        tile_bound = _share_cycles(target, blocks, hops, used)
        traffic = used * (orders[order][0] + sum(b.store_bytes for b in blocks))
        cycles = max(tile_bound, math.ceil(traffic / target.dram.bytes_per_cycle))
        if best is None or cycles < best[0]:
            best = (cycles, row_ranges, channel_ranges, shape, order)
    if best is None:
        raise UnsupportedModelError(f"layer {layer.name} ({layer.op}) does not fit one tile's "
                                    f"{budget:,} B of SRAM even in its smallest block",
                                    "pick a target with more SRAM per tile")
    cycles, row_ranges, channel_ranges, shape, order = best
    shares = []
    for rows in row_ranges:
        for channels in channel_ranges:
            region = _region(layer, rows, channels, None)
            blocks = tuple(_blocks(layer, target, region, shape, order, resident))
            kept = read_bytes(layer, region)[1] if resident else 0
            shares.append(TileShare(len(shares), region, blocks, kept))
    sram = max(block_sram(layer, b.region, resident) for share in shares for b in share.blocks)
    return LayerMapping(layer, len(row_ranges), len(channel_ranges), shape, order, tuple(shares), sram, cycles)


def resident_capacity(target: TileTarget) -> int:
    """The SRAM bytes of a tile that hold resident weights: half of it (the other half holds
    the blocks being computed)."""
    return target.grid.tile.sram_bytes // 2


def map_network(layers: list[TileLayer], target: TileTarget, tiles: int) -> NetworkMapping:
    """Every layer on ``tiles`` tiles. Weights stay resident in SRAM when every tile's share of
    them fits its :func:`resident_capacity`; otherwise they stream from DRAM with each layer,
    and the blocks may use the whole SRAM."""
    sram, capacity = target.grid.tile.sram_bytes, resident_capacity(target)
    try:
        resident = NetworkMapping(tiles, True, tuple(map_layer(layer, target, tiles, capacity, True)
                                                     for layer in layers))
        if resident.resident_bytes <= capacity:
            return resident
    except UnsupportedModelError:
        pass
    return NetworkMapping(tiles, False, tuple(map_layer(layer, target, tiles, sram, False) for layer in layers))
