"""edgec's tile backend: latency against degree of parallelism, and the array timing against SCALE-Sim.

Single networks: the four MLPerf Tiny int8 TFLite models (shared/models/tflite: visual wake
words, image classification, anomaly detection, keyword spotting), kept as they are, mapped
and simulated on every number of tiles of each tile target (``backends/tile``). Per model and
target it prints the simulated latency in ms at 1, 2, 4, ... tiles and on the whole grid, the
speed-up of the whole grid over one tile, the default degree of parallelism (the fewest tiles
within 5 % of the fastest) with its utilisation, and whether weights stay resident; with
``--plot FILE`` the latency-vs-tiles curves as a PNG. Every run of the tile-by-tile functional
model on the model's golden input is checked against the integer reference (``exact``).

SCALE-Sim cross-check: for three MAC-array layers (the first convolution of the image
classifier, a pointwise convolution of the wake-words net, the first fully connected layer of
the anomaly detector), the cycles of SCALE-Sim's weight-stationary compute model
(:mod:`edgec.backends.tile.scalesim_check`) beside edgec's analytic array timing and beside
the tile simulator's whole-layer latency on one tile (which adds DMA and the requantization
on the vector unit), with the differences.

Scheduling several networks (``edgec schedule``'s engine, ``backends/tile/policies.py``): the
tiles each policy needs to miss no deadline, and its reallocation waste there, on
``--schedule-target`` (default tile-8x8) for three workloads: the example
(examples/ads/workload.toml), ``ads-6cam`` (the same with six camera pipelines, 32 networks:
a dense chip) and ``ads-tight`` (the example with every deadline at 15 %: deadline-critical).
Beside them, ADS-Tile's published goal: at least 32 % fewer tiles than work-conserving and
under 1.2 % reallocation waste; ``--seeds N`` adds the range of ADS-Tile's share fewer tiles
over N seeds of the execution-time draws. Network profiles are cached (docs/tile.md); the
first run simulates the example's eight networks on every number of tiles (about a minute).

Usage: python benchmarks/tile.py [--shared DIR] [--targets tile-4x4,tile-8x8] [--schedule-target tile-8x8]
       [--no-schedule] [--seeds N] [--plot FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgec
from edgec.api import int8_output_names
from edgec.backends.tile import timing
from edgec.backends.tile.functional import run_tiled
from edgec.backends.tile.latency_model import network_profile
from edgec.backends.tile.layers import plan_layers
from edgec.backends.tile.mapping import map_network
from edgec.backends.tile.policies import POLICIES
from edgec.backends.tile.project import default_tiles, sweep
from edgec.backends.tile.schedule_run import tiles_needed_search
from edgec.backends.tile.simulator import simulate
from edgec.backends.tile.workload import Pipeline, load_workload
from edgec.reference import ReferenceExecutor
from edgec.target import get_target

MODELS = {"vww": "vww_mobilenetv1_025_int8", "resnet8": "ic_resnet8_int8", "ad": "ad_autoencoder_int8",
          "kws": "kws_dscnn_int8"}
#: (model, which MAC-array layer) for the SCALE-Sim cross-check.
CROSS_CHECK = (("resnet8", 0), ("vww", 2), ("ad", 0))
console = Console(highlight=False, width=170)
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ads" / "workload.toml"
#: ADS-Tile's published goal against work-conserving: this share fewer tiles, and at most this waste.
GOAL_FEWER, GOAL_WASTE = 0.32, 0.012


def load(shared: Path, key: str):
    """The int8 TFLite model and its golden input row."""
    model = edgec.load(shared / "models" / "tflite" / f"{MODELS[key]}.tflite")
    golden = np.load(shared / "benchmarks" / "tflm_golden" / f"{MODELS[key]}.npz")
    return model, golden["input"].reshape(-1)


def exact(model, mapping, row) -> bool:
    shape = [int(d) for d in model.graph.inputs[0].shape.numpy()]
    executor = ReferenceExecutor(model)
    expected = executor.run({executor.input_names[0]: row.reshape(shape).astype(np.int8)}, keep_intermediates=True)
    output, _ = run_tiled(model, mapping, row)
    return bool(np.array_equal(output, expected[int8_output_names(model)[0]].reshape(-1)))


def dop_rows(shared: Path, targets: list[str]) -> list[dict]:
    rows = []
    for key in MODELS:
        model, row = load(shared, key)
        layers = plan_layers(model)
        for name in targets:
            target = get_target(name)
            began = time.monotonic()
            runs = sweep(layers, target)
            latencies = [s.cycles for _, s in runs]
            knee = default_tiles(latencies)
            mapping, simulation = runs[knee - 1]
            checks = [exact(model, runs[k - 1][0], row) for k in sorted({1, knee, target.grid.tiles})]
            rows.append({"model": key, "target": name, "macs": sum(layer.macs for layer in layers),
                         "latency_ms": [c / target.grid.clock_hz * 1e3 for c in latencies], "knee": knee,
                         "utilisation": simulation.utilisation(mapping.tiles), "resident": mapping.resident,
                         "exact": all(checks), "seconds": time.monotonic() - began})
            console.print(f"{key} on {name}: {len(latencies)} degrees of parallelism in "
                          f"{rows[-1]['seconds']:.1f} s")
    return rows


def dop_table(rows: list[dict]) -> Table:
    table = Table(title="simulated latency (ms) against tiles (degree of parallelism)")
    columns = ["model", "target", "MACs", "1", "2", "4", "8", "16", "all", "speed-up", "default", "util.",
               "weights", "exact"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "target", "weights") else "right")
    for r in rows:
        ms = r["latency_ms"]
        at = [f"{ms[k - 1]:.4f}" if k <= len(ms) else "" for k in (1, 2, 4, 8, 16)]
        table.add_row(r["model"], r["target"], f"{r['macs']:,}", *at, f"{ms[-1]:.4f} ({len(ms)})",
                      f"{ms[0] / ms[-1]:.1f}x", str(r["knee"]), f"{r['utilisation']:.0%}",
                      "resident" if r["resident"] else "streamed", "yes" if r["exact"] else "NO")
    return table


def cross_check_rows(shared: Path, targets: list[str]) -> list[dict]:
    from edgec.backends.tile.scalesim_check import scalesim_cycles

    rows = []
    for key, which in CROSS_CHECK:
        model, _ = load(shared, key)
        layers = plan_layers(model)
        layer = [layer for layer in layers if layer.kind == "array"][which]
        for name in targets:
            target = get_target(name)
            positions = layer.output_bytes // layer.output_shape[-1]
            analytic = timing.array_cycles(target, positions, layer.reduction, layer.output_shape[-1])
            scalesim = scalesim_cycles(layer, target)
            alone = map_network([layer], target, 1)
            simulated = simulate(alone, target).cycles
            rows.append({"model": key, "layer": f"{layer.index} {layer.op} {layer.output_shape}", "target": name,
                         "scalesim": scalesim, "analytic": analytic, "simulated": simulated})
    return rows


def cross_check_table(rows: list[dict]) -> Table:
    table = Table(title="MAC-array cycles of one layer on one tile: SCALE-Sim 3 (weight stationary) vs edgec")
    for column in ("model", "layer", "target", "SCALE-Sim", "analytic", "diff", "simulated layer", "diff"):
        table.add_column(column, justify="left" if column in ("model", "layer", "target") else "right")
    for r in rows:
        table.add_row(r["model"], r["layer"], r["target"], f"{r['scalesim']:,}", f"{r['analytic']:,}",
                      f"{(r['analytic'] - r['scalesim']) / r['scalesim']:+.1%}", f"{r['simulated']:,}",
                      f"{(r['simulated'] - r['scalesim']) / r['scalesim']:+.1%}")
    return table


def workloads(target):
    """The three scheduling workloads (module docstring) with their networks' profiles."""
    example = load_workload(EXAMPLE)
    profiles = {name: network_profile(network, example, target) for name, network in example.networks.items()}
    camera, others = example.pipelines[0], example.pipelines[1:]
    networks, dense_profiles, pipelines = dict(example.networks), dict(profiles), list(others)
    for number in range(6):
        stages = {f"{s}{number}": tuple(f"{a}{number}" for a in after) for s, after in camera.stages.items()}
        for stage in camera.stages:
            networks[f"{stage}{number}"] = example.networks[stage]
            dense_profiles[f"{stage}{number}"] = profiles[stage]
        pipelines.insert(number, Pipeline(f"camera{number}", camera.rate_hz, camera.deadline_ms, stages))
    for stage in camera.stages:
        del networks[stage], dense_profiles[stage]
    dense = dataclasses.replace(example, name="ads-6cam", networks=networks, pipelines=tuple(pipelines))
    tight = dataclasses.replace(example, name="ads-tight", pipelines=tuple(
        dataclasses.replace(p, deadline_ms=p.deadline_ms * 0.15) for p in example.pipelines))
    return [(example, profiles), (dense, dense_profiles), (tight, profiles)]


def _fewer(ads: int | None, wc: int | None) -> float | None:
    """ADS-Tile's share of tiles fewer than work-conserving's (negative: more)."""
    return (wc - ads) / wc if ads and wc else None


def schedule_rows(target_name: str, seeds: int = 1) -> list[dict]:
    """Per workload and policy, the tiles needed and the figures there for the workload's seed;
    with ``seeds`` > 1 also ADS-Tile's share fewer than work-conserving for seeds 0 to
    ``seeds - 1`` of the execution-time draws."""
    target = get_target(target_name)
    rows = []
    for workload, profiles in workloads(target):
        row = {"workload": workload.name, "networks": len(workload.networks), "target": target_name}
        for policy in POLICIES:
            began = time.monotonic()
            needed, result, _ = tiles_needed_search(workload, profiles, target, policy, None)
            row[policy] = {"tiles_needed": needed, "reallocation_waste": result.reallocation_waste if result else None,
                           "reallocations": result.reallocations if result else None,
                           "utilisation": result.utilisation if result else None}
            console.print(f"{workload.name}: {policy} needs {needed} tiles ({time.monotonic() - began:.1f} s)")
        if seeds > 1:
            row["fewer_by_seed"] = [_fewer(*(tiles_needed_search(dataclasses.replace(workload, seed=seed), profiles,
                                                                 target, policy, None)[0]
                                             for policy in ("ads-tile", "work-conserving")))
                                    for seed in range(seeds)]
            console.print(f"{workload.name}: seeds 0 to {seeds - 1} done")
        rows.append(row)
    return rows


def schedule_table(rows: list[dict]) -> Table:
    table = Table(title="tiles needed for 0 deadline misses, and reallocation waste there (share of held tile-time)")
    columns = ["workload", "networks", "target"]
    for policy in POLICIES:
        columns += [f"{policy} tiles", "waste"]
    columns += ["ads-tile vs work-conserving", "goal met (>= 32 % fewer, < 1.2 % waste)"]
    seeds = len(rows[0].get("fewer_by_seed", ())) if rows else 0
    if seeds:
        columns.append(f"fewer, seeds 0-{seeds - 1}")
    for column in columns:
        table.add_column(column, justify="left" if column in ("workload", "target") else "right")
    for r in rows:
        cells = [r["workload"], str(r["networks"]), r["target"]]
        for policy in POLICIES:
            figures = r[policy]
            cells += [str(figures["tiles_needed"] or "> grid"),
                      "" if figures["reallocation_waste"] is None else f"{figures['reallocation_waste']:.2%}"]
        fewer = _fewer(r["ads-tile"]["tiles_needed"], r["work-conserving"]["tiles_needed"])
        waste = r["ads-tile"]["reallocation_waste"]
        met = fewer is not None and fewer >= GOAL_FEWER and waste is not None and waste < GOAL_WASTE
        cells += ["" if fewer is None else f"{fewer:.0%} fewer" if fewer >= 0 else f"{-fewer:.0%} more",
                  "yes" if met else "no"]
        if seeds:
            known = [f for f in r["fewer_by_seed"] if f is not None]
            cells.append(f"{min(known):.0%} to {max(known):.0%}" if known else "")
        table.add_row(*cells)
    return table


def plot_curves(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target"] for r in rows})
    figure, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5), squeeze=False)
    for axis, name in zip(axes[0], targets):
        for r in (r for r in rows if r["target"] == name):
            axis.plot(range(1, len(r["latency_ms"]) + 1), r["latency_ms"], marker=".", label=r["model"])
        axis.set_yscale("log")
        axis.set_xlabel("tiles (degree of parallelism)")
        axis.set_ylabel("simulated latency (ms)")
        axis.set_title(name)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_shared = Path(os.environ.get("EDGEC_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--targets", default="tile-4x4,tile-8x8")
    parser.add_argument("--schedule-target", default="tile-8x8")
    parser.add_argument("--no-schedule", action="store_true", help="skip the multi-network scheduling table")
    parser.add_argument("--seeds", type=int, default=1,
                        help="also give ADS-Tile's share fewer tiles for this many execution-time seeds")
    parser.add_argument("--plot", help="write the latency-vs-tiles curves as a PNG")
    parser.add_argument("--json", help="write every figure as JSON")
    args = parser.parse_args()
    targets = args.targets.split(",")
    started = time.monotonic()
    dop = dop_rows(args.shared, targets)
    console.print(dop_table(dop))
    checks = cross_check_rows(args.shared, targets)
    console.print(cross_check_table(checks))
    scheduled = [] if args.no_schedule else schedule_rows(args.schedule_target, args.seeds)
    if scheduled:
        console.print(schedule_table(scheduled))
    if args.plot:
        plot_curves(dop, args.plot)
        console.print(f"wrote {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps({"dop": dop, "scalesim": checks, "schedule": scheduled}, indent=1))
        console.print(f"wrote {args.json}")
    console.print(f"{time.monotonic() - started:.0f} s in all")


if __name__ == "__main__":
    main()
