"""The tile project directory: a network mapped and simulated for every degree of parallelism,
and the schedule of the chosen one.

:func:`compile_project` maps the network onto ``k`` tiles for every ``k`` from 1 to the grid's
tile count (:mod:`.mapping`), simulates each (:mod:`.simulator`) and writes:

* ``report.json``: the manifest (:mod:`edgec.backend`) with ``tiles`` (the chosen degree of
  parallelism), ``latency_cycles`` and ``latency_ms`` for it, ``latency_by_tiles`` and
  ``latency_ms_by_tiles`` (every ``k``), ``tiles_used_by_tiles`` (a network given ``k`` tiles
  runs the best mapping on at most ``k``, so latency never grows with ``k``), resident
  weights and the cycles to load them, DRAM traffic and utilisation, and per layer its split,
  block, loop order, SRAM and simulated span;
* ``schedule.json``: the chosen mapping (every tile's share and blocks) and every simulated
  operation (tile, load/compute/store, layer, block, start and end cycle, bytes);
* ``layers.csv``: the per-layer table; ``gantt.png``: the schedule per tile (:mod:`.gantt`);
* ``model.onnx`` and ``target.toml``.

Without ``tiles`` the project uses the fewest tiles whose latency is within
:data:`KNEE_TOLERANCE` of the fastest (more tiles would buy almost nothing).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import onnx_ir as ir

from edgec import progress, project_dir
from edgec.api import PROJECT_MODEL, int8_output_names
from edgec.backend import MANIFEST
from edgec.backends.tile import gantt
from edgec.backends.tile.layers import TileLayer, plan_layers
from edgec.backends.tile.mapping import NetworkMapping, map_network
from edgec.backends.tile.simulator import Simulation, simulate, weight_load_cycles
from edgec.errors import EdgecError
from edgec.passes.input_layout import int8_input
from edgec.target import PROJECT_FILE, Target, target_toml

SCHEDULE = "schedule.json"
LAYER_TABLE = "layers.csv"
GANTT = "gantt.png"
#: The default degree of parallelism is the fewest tiles within this share of the fastest latency.
KNEE_TOLERANCE = 0.05


def sweep(layers: list[TileLayer], target: Target) -> list[tuple[NetworkMapping, Simulation]]:
    """For every ``k`` from 1 to the grid's tiles, the fastest mapping on at most ``k`` tiles
    and its simulation (index ``k - 1``)."""
    best: list[tuple[NetworkMapping, Simulation]] = []
    for tiles in range(1, target.grid.tiles + 1):
        progress.stage(f"mapping and simulating on {tiles} of {target.grid.tiles} tiles")
        mapping = map_network(layers, target, tiles)
        simulation = simulate(mapping, target)
        if best and best[-1][1].cycles <= simulation.cycles:
            best.append(best[-1])
        else:
            best.append((mapping, simulation))
    return best


def default_tiles(latencies: list[int]) -> int:
    """The fewest tiles whose latency is within :data:`KNEE_TOLERANCE` of the fastest."""
    fastest = min(latencies)
    return next(k for k, cycles in enumerate(latencies, start=1) if cycles <= fastest * (1 + KNEE_TOLERANCE))


def _layer_entries(mapping: NetworkMapping, simulation: Simulation) -> list[dict]:
    entries = []
    for layer_mapping, (start, end) in zip(mapping.layers, simulation.layer_spans):
        layer = layer_mapping.layer
        entries.append({"index": layer.index, "name": layer.name, "op": layer.op, "output": layer.output,
                        "kind": layer.kind, "macs": layer.macs, "parameter_bytes": layer.parameter_bytes,
                        "output_shape": list(layer.output_shape), "tiles": layer_mapping.tiles,
                        "row_splits": layer_mapping.row_splits, "channel_splits": layer_mapping.channel_splits,
                        "block": list(layer_mapping.block_shape), "loop_order": layer_mapping.loop_order,
                        "sram_bytes": layer_mapping.sram_bytes, "estimated_cycles": layer_mapping.estimated_cycles,
                        "start_cycle": start, "end_cycle": end, "cycles": end - start})
    return entries


def _schedule(mapping: NetworkMapping, simulation: Simulation) -> dict:
    def span(value):
        return list(value) if value is not None else None

    layers = []
    for layer_mapping in mapping.layers:
        shares = [{"tile": s.tile, "rows": span(s.region.rows), "channels": span(s.region.channels),
                   "resident_bytes": s.resident_bytes,
                   "blocks": [{"rows": span(b.region.rows), "channels": span(b.region.channels),
                               "reduction_channels": span(b.region.reduction), "load_bytes": b.load_bytes,
                               "compute_cycles": b.compute_cycles, "store_bytes": b.store_bytes}
                              for b in s.blocks]}
                  for s in layer_mapping.shares]
        layers.append({"index": layer_mapping.layer.index, "name": layer_mapping.layer.name,
                       "loop_order": layer_mapping.loop_order, "shares": shares})
    return {"generator": "edgec", "tiles": list(range(mapping.tiles)), "resident_weights": mapping.resident,
            "cycles": simulation.cycles, "layers": layers, "events": [e.to_json() for e in simulation.events]}


def _layer_table(entries: list[dict]) -> str:
    columns = ["index", "name", "op", "kind", "macs", "tiles", "row_splits", "channel_splits", "block", "loop_order",
               "sram_bytes", "start_cycle", "end_cycle", "cycles", "estimated_cycles"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for entry in entries:
        writer.writerow(["x".join(map(str, entry[c])) if c == "block" else entry[c] for c in columns])
    return text.getvalue()


def plan(model: ir.Model, target: Target, tiles: int | None) -> tuple[list[TileLayer], list, int]:
    """The layers, the sweep over every degree of parallelism and the chosen one (checked)."""
    if tiles is not None and not 1 <= tiles <= target.grid.tiles:
        raise EdgecError(f"--tiles {tiles} is not a degree of parallelism of {target.name}",
                         f"give 1 to {target.grid.tiles} (its {target.grid.rows}x{target.grid.cols} tiles)")
    layers = plan_layers(model)
    runs = sweep(layers, target)
    return layers, runs, tiles or default_tiles([s.cycles for _, s in runs])


def compile_project(model: ir.Model, target: Target, out_dir: Path, name: str, tiles: int | None = None) -> dict:
    """Write the tile project of ``model`` for ``target`` into ``out_dir`` (module docstring);
    returns its manifest. ``tiles``: the degree of parallelism (default: the knee)."""
    layers, runs, tiles = plan(model, target, tiles)
    mapping, simulation = runs[tiles - 1]
    clock = target.grid.clock_hz
    entries = _layer_entries(mapping, simulation)
    first, last = int8_input(model.graph.inputs[0]), model.graph.outputs[0]  # a Dequantize keeps the shape
    manifest = {
        "generator": "edgec", "backend": "tile", "target": target.name, "model": name,
        "input": {"name": model.graph.inputs[0].name, "shape": [int(d) for d in first.shape.numpy()]},
        "output": {"name": int8_output_names(model)[0], "shape": [int(d) for d in last.shape.numpy()]},
        "layers": entries, "macs": sum(layer.macs for layer in layers),
        "tiles": tiles, "tiles_available": target.grid.tiles, "tiles_used": mapping.tiles,
        "latency_cycles": simulation.cycles, "latency_ms": simulation.cycles / clock * 1e3,
        "latency_by_tiles": {str(k): s.cycles for k, (_, s) in enumerate(runs, start=1)},
        "latency_ms_by_tiles": {str(k): s.cycles / clock * 1e3 for k, (_, s) in enumerate(runs, start=1)},
        "tiles_used_by_tiles": {str(k): m.tiles for k, (m, _) in enumerate(runs, start=1)},
        "resident_weights": mapping.resident, "resident_bytes_per_tile": mapping.resident_bytes,
        "weight_load_cycles": weight_load_cycles(mapping, target),
        "parameter_bytes": sum(layer.parameter_bytes for layer in layers),
        "dram_bytes_per_inference": simulation.dram_bytes,
        "utilisation": simulation.utilisation(mapping.tiles),
        "simulator": "edgec tile simulator: discrete-event at cycle resolution, analytic unit timing "
                     "(backends/tile/simulator.py, timing.py)",
    }
    written = [SCHEDULE, LAYER_TABLE, GANTT, MANIFEST, PROJECT_MODEL, PROJECT_FILE]
    manifest["files"] = sorted(written)
    with project_dir.staged_project(Path(out_dir), written) as staging:
        progress.stage("writing the schedule and its Gantt chart")
        (staging / SCHEDULE).write_text(json.dumps(_schedule(mapping, simulation)) + "\n")
        (staging / LAYER_TABLE).write_text(_layer_table(entries))
        gantt.plot(simulation, mapping, target, staging / GANTT, title=f"{name} on {target.name}, {tiles} tiles",
                   latency_by_tiles=[s.cycles for _, s in runs])
        (staging / PROJECT_FILE).write_text(target_toml(target))
        ir.save(model, staging / PROJECT_MODEL)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
