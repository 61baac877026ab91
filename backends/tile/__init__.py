"""Tile-accelerator backend: an integer graph mapped onto a grid of tiles, simulated for every
degree of parallelism, and scheduled with other networks under deadlines.

:class:`TileBackend` is the backend contract (:class:`edgec.backend.Backend`) for ``tile``
targets over these modules:

* :mod:`.layers` turns the graph into a chain of layers (matrix products on the tiles'
  systolic arrays, vector work, views) and names the first node it cannot take;
* :mod:`.regions` says which input slices a block of a layer's output reads;
* :mod:`.mapping` splits each layer across ``k`` tiles and cuts each tile's share into blocks
  that fit its SRAM, in a loop order; :mod:`.timing` is the analytic model of the units;
* :mod:`.simulator` simulates the DMA and compute schedule (discrete events at cycle
  resolution) and :mod:`.functional` runs the graph tile by tile, block by block, bit-exact
  with the integer reference;
* :mod:`.project` writes the project (report, schedule, per-layer table, :mod:`.gantt` chart);
* :mod:`.scalesim_check` compares the array timing with SCALE-Sim;
* several networks under deadlines (``edgec schedule``): :mod:`.workload` (the TOML file),
  :mod:`.latency_model` (latency, resident weights and reload cost per degree of
  parallelism, execution-time spread), :mod:`.scheduler` (the discrete-event simulation), :mod:`.policies`
  (reservation, work-conserving, ADS-Tile), :mod:`.schedule_run` and :mod:`.schedule_plot`.

The functional model is what ``run`` executes: there is no tile hardware to run on, so the
latency a run reports is the simulator's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec.api import PROJECT_MODEL
from edgec.backend import Backend, Project, RunResult, read_manifest
from edgec.backends.tile.functional import run_tiled
from edgec.backends.tile.layers import check_model, plan_layers
from edgec.backends.tile.mapping import map_network
from edgec.backends.tile.project import SCHEDULE, compile_project
from edgec.errors import EdgecError
from edgec.target import Target, project_target
from edgec.widths import check_widths, require_int8_activations


class TileBackend(Backend):
    """The backend contract for ``tile`` targets (see the module docstring)."""

    kind = "tile"
    name = "tile accelerator"
    options = {"tiles": None}

    def check(self, model: ir.Model, target: Target) -> None:
        require_int8_activations(model, "the tile backend")
        check_model(model)
        check_widths(model)

    def compile(self, model: ir.Model, target: Target, out_dir: Path, *, name: str, **options) -> dict:
        return compile_project(model, target, out_dir, name, tiles=options["tiles"])

    def compile_summary(self, manifest: dict, target: Target, out_dir: Path) -> list[str]:
        tiles, used = manifest["tiles"], manifest["tiles_used"]
        chosen = "" if tiles == used else f" (its fastest mapping uses {used})"
        by_tiles = manifest["latency_ms_by_tiles"]
        curve = ", ".join(f"{k}: {by_tiles[str(k)]:.3f}" for k in sorted({1, 2, 4, 8, tiles, len(by_tiles)})
                          if str(k) in by_tiles)
        weights = (f"weights resident ({manifest['resident_bytes_per_tile']:,} B per tile, "
                   f"{manifest['weight_load_cycles']:,} cycles to load)" if manifest["resident_weights"]
                   else "weights streamed from DRAM every inference")
        return [f"wrote {out_dir}: {target.name}, {len(manifest['layers'])} layers, {manifest['macs']:,} MACs, "
                f"on {tiles} of {manifest['tiles_available']} tiles{chosen}",
                f"  latency {manifest['latency_cycles']:,} cycles = {manifest['latency_ms']:.3f} ms; "
                f"utilisation {manifest['utilisation']:.0%}; {weights}",
                f"  ms by tiles: {curve} (all in report.json latency_ms_by_tiles; --tiles K to choose)",
                f"  schedule {out_dir}/{SCHEDULE}, Gantt chart {out_dir}/gantt.png",
                f"  run the functional model: edgec run {out_dir} --input x.npy --check"]

    def is_project(self, directory: Path) -> bool:
        manifest = read_manifest(directory, required=False)
        return (manifest.get("backend") == "tile" and (directory / PROJECT_MODEL).is_file()
                and (directory / SCHEDULE).is_file())

    def load_project(self, directory: Path) -> Project:
        manifest = read_manifest(directory)
        return Project(Path(directory).resolve(), manifest, project_target(directory, manifest["target"]),
                       ir.load(Path(directory) / PROJECT_MODEL))

    def _mapping(self, project: Project):
        return map_network(plan_layers(project.model), project.target, project.manifest["tiles_used"])

    def run(self, project: Project, rows: np.ndarray, *, variant: str | None = None,
            trace: bool = False) -> RunResult:
        mapping = self._mapping(project)
        outputs, recorded = [], []
        for row in rows:
            output, recorded = run_tiled(project.model, mapping, row, trace=trace)
            outputs.append(output)
        manifest = project.manifest
        summary = (f"{project.target.name}: functional model run tile by tile on {manifest['tiles_used']} tiles, "
                   f"{len(rows)} samples; simulated latency {manifest['latency_cycles']:,} cycles "
                   f"({manifest['latency_ms']:.3f} ms) per inference")
        return RunResult(np.stack(outputs), {"latency_cycles": [manifest["latency_cycles"]] * len(rows)},
                         recorded, summary)

    def schedule(self, workload: Path, target: Target, *, tiles: int | None = None, frames: int | None = None,
                 policies: list[str] | None = None, json_path: Path | None = None,
                 plot_path: Path | None = None) -> list[str]:
        from edgec.backends.tile.schedule_run import schedule_workload, summary_lines, write_json
        from edgec.backends.tile.workload import load_workload

        report = schedule_workload(load_workload(workload), target, tiles, frames, policies)
        lines = summary_lines(report)
        if json_path:
            write_json(report, json_path)
            lines.append(f"wrote {json_path}")
        if plot_path:
            from edgec.backends.tile.schedule_plot import plot_report

            plot_report(report, plot_path)
            lines.append(f"wrote {plot_path}")
        return lines

    def profile(self, project: Project, row: np.ndarray, advance):
        raise EdgecError("per-layer profiles of tile projects are written at compile time",
                         f"read {project.path}/layers.csv (per-layer tiles, blocks and simulated cycles)")


__all__ = ["TileBackend", "check_model", "compile_project"]
