"""edgec's FPGA backend on Brevitas nets: resources, MACs per DSP, speed and exactness per target.

Trains the Brevitas nets of tests/brevitas_models.py on scikit-learn's digits (a linear MLP
and a small conv net by default, ``--models fullres`` two convolutions at 8x8, which at a high
``--fps`` the folding realises with row-packed convolutions; at W8A8, W4A4 and W2A2; trained
weights are cached under ``--cache``,
by default build/benchmarks/fpga in the repository, which git ignores), quantizes each with
``edgec.quantize(module)`` and compiles it for every target: ``ice40-up5k`` through the whole
open flow (yosys, nextpnr-ice40, icepack: a real bitstream), ``pynq-z2`` and ``zcu104`` to
yosys' ``synth_xilinx`` estimates. Per net and target it prints, all read from the project's
report.json:

* DSP, LUT, FF, BRAM and large-RAM (SPRAM) counts, and LUTs per MAC unit (LUTs over the sum
  of PE x SIMD of the matrix-vector layers);
* on AMD parts, the same net built unpacked (``packing="none"``, one product per DSP) for the
  same ``--fps``/``--max-dsp`` goal and synthesised alike: its DSPs, LUTs and LUTs per MAC
  unit and its modelled cycles per inference beside the packed build's (``--no-unpacked``
  skips it);
* MACs per DSP per matrix-vector layer (``a/b/c``, one figure a layer): what the generated
  RTL realises, what the lane planner packs on the target's DSP primitive (``planned``), and,
  on DSP48E2 targets, FINN's lane formula ``1 + floor((27 - !narrow - W) / (W + A - 1))`` with
  the layer's own weight and input widths (unpacked is 1 by definition);
* fmax (nextpnr's timing, iCE40 only), cycles per inference (measured in simulation) and
  inferences per second at the clock (or at fmax when lower);
* whether the RTL simulation (the backend's ``run``, iverilog) equals the integer reference
  bit for bit on ``--images`` test images (``--netlist``: the iCE40 placed-and-routed
  netlist as well).

With ``--finn``, each net on each AMD target is also built by FINN (``flow="finn"``, FINN's
environment from scripts/setup-finn.sh) at the same ``--fps``, and a second table sets FINN's
estimates (its estimate_layer_resources and estimate_network_performance reports: DSP, LUT,
BRAM_18K, cycles per inference of its slowest layer) beside edgec's yosys figures and simulated
cycles, with MACs per DSP per matrix-vector layer (FINN: PE x SIMD over its DSP estimate) and
whether FINN's numpy execution equals the integer reference bit for bit. FINN's DSP estimate
for its RTL MVU is ``ceil(PE/4) * SIMD`` whatever the widths (its RTL packs
``1 + (27 - W) // (W + A - 1)`` lanes: 4 only at W4A4), so at W8A8 it understates and at W2A2
overstates what FINN's own RTL would use; the LUT estimate of an RTL MVU is 0.

A net that does not fit a target, or that the backend cannot take, prints the one-line
reason in place of its row. One progress line per compile.

Usage: python benchmarks/fpga.py [--models mlp,conv] [--bits 8,4,2] [--targets ice40-up5k,pynq-z2,zcu104]
       [--images 20] [--netlist] [--fps F] [--max-dsp N] [--finn] [--epochs 8] [--cache DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import edgec
from edgec.backend import open_project
from edgec.backends.fpga.lanes import finn_lanes
from edgec.errors import EdgecError
from edgec.inttype import IntType
from edgec.trace_compare import reference_outputs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import brevitas_models  # noqa: E402

TARGETS = ("ice40-up5k", "pynq-z2", "zcu104")
DEFAULT_CACHE = REPO / "build" / "benchmarks" / "fpga"
#: The DSP FINN's lane formula is for.
FINN_PRIMITIVE = "DSP48E2"


def trained_net(kind: str, bits: int, data: brevitas_models.Digits, epochs: int, cache: Path) -> torch.nn.Module:
    """The ``kind`` net at ``bits`` trained for ``epochs`` (training is seeded, so a cached
    state dict is the same net), in eval mode."""
    path = cache / f"{kind}_w{bits}a{bits}_e{epochs}.pt"
    if path.is_file():
        net = brevitas_models.build(kind, bits)
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    net = brevitas_models.train(kind, bits, data, epochs=epochs)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net


def _per_layer(values: list | None) -> str:
    return "/".join(f"{v:g}" for v in values) if values else "-"


def check_project(project_dir: Path, images: np.ndarray, netlist: bool) -> dict:
    """Simulate the compiled project on ``images`` with the backend's run (and, with
    ``netlist``, the placed-and-routed netlist): whether every output equals the reference."""
    backend, project = open_project(project_dir)
    name = project.model.graph.inputs[0].name
    rows = backend.input_rows(project.model, [{name: image[None]} for image in images])
    expected = reference_outputs(project.model, rows)
    result = {"rtl_exact": bool(np.array_equal(backend.run(project, rows).outputs, expected)), "netlist_exact": None}
    if netlist and "netlist" in backend.run_variants and project.target.device.family == "ice40":
        outputs = backend.run(project, rows, variant="netlist").outputs
        result["netlist_exact"] = bool(np.array_equal(outputs, expected))
    return result


def _planned(layer: dict) -> dict:
    """The lane planner's packing of a report layer (the realised one when the report names no other)."""
    return layer["packing"].get("planned", layer["packing"])


def _mvu_layers(report: dict) -> list[dict]:
    return [layer for layer in report["layers"] if layer["packing"] is not None]


def _lut_per_mac_unit(report: dict) -> float:
    return report["resources"]["lut"] / sum(layer["pe"] * layer["simd"] for layer in _mvu_layers(report))


def unpacked_figures(model, net_name: str, target: str, out: Path, options: dict) -> dict:
    """The same net, target and folding goal compiled with the plain multiply-accumulate core
    (``packing="none"``: one product per DSP), synthesised by the same yosys flow: its DSPs,
    LUTs, LUTs per MAC unit and cycles per inference (the fold model's: it is not simulated)."""
    report = edgec.compile(model, target, out, name=net_name, packing="none", **options)
    return {"unpacked_dsp": report["resources"]["dsp"], "unpacked_lut": report["resources"]["lut"],
            "unpacked_lut_per_mac_unit": _lut_per_mac_unit(report),
            "unpacked_cycles": report["modelled_cycles_per_inference"]}


def measure(model, net_name: str, bits: int, target: str, out: Path, images: np.ndarray, *, netlist: bool,
            fps: float | None, max_dsp: int | None, unpacked: bool) -> dict:
    """Compile ``model`` for ``target`` into ``out``, check it on ``images``: one benchmark row;
    with ``unpacked``, on AMD targets, the unpacked build's figures beside it."""
    options = {key: value for key, value in (("fps", fps), ("max_dsp", max_dsp)) if value is not None}
    report = edgec.compile(model, target, out, name=net_name, **options)
    mvu = _mvu_layers(report)
    primitive = mvu[0]["packing"]["primitive"]
    resources = report["resources"]
    plain = {"unpacked_dsp": None, "unpacked_lut": None, "unpacked_lut_per_mac_unit": None, "unpacked_cycles": None}
    if unpacked and primitive != "SB_MAC16":
        plain = unpacked_figures(model, net_name, target, out.with_name(out.name + "-unpacked"), options)
    return {"model": net_name, "bits": bits, "target": target, **resources, **plain,
            "lut_per_mac_unit": _lut_per_mac_unit(report),
            "macs_per_dsp": [layer["packing"]["macs_per_dsp"] for layer in mvu],
            "planned_macs_per_dsp": [_planned(layer)["macs_per_dsp"] for layer in mvu],
            "planned_schemes": [_planned(layer)["scheme"] for layer in mvu],
            "folding": [f"{layer['pe']}x{layer['simd']}" for layer in mvu],
            "finn_lanes": [finn_lanes(IntType.parse(layer["weights"]), IntType.parse(layer["inputs"]))
                           for layer in mvu] if primitive == FINN_PRIMITIVE else None,
            "primitive": primitive, "fmax_mhz": report["fmax_mhz"],
            "clock_mhz": report["clock_mhz"], "cycles_per_inference": report["cycles_per_inference"],
            "inferences_per_second": report["inferences_per_second"], "bitstream": report["bitstream"],
            "images": len(images), **check_project(out, images, netlist)}


def finn_figures(model, net_name: str, target: str, out: Path, images: np.ndarray, fps: float | None) -> dict:
    """The net built by FINN for ``target`` at ``fps`` (its estimates) and checked on ``images``
    with FINN's numpy execution."""
    report = edgec.compile(model, target, out, name=net_name, flow="finn", **({"fps": fps} if fps else {}))
    mvus = [layer for layer in report["layers"] if "macs" in layer]
    dsps = [sum(n["dsp"] or 0 for n in layer["finn_nodes"]) for layer in mvus]
    r = report["resources"]
    return {"finn_dsp": r["dsp"], "finn_lut": r["lut"], "finn_bram_18k": r["bram_18k"], "finn_uram": r["uram"],
            "finn_cycles": report["cycles_per_inference"], "finn_fps": report["inferences_per_second"],
            "finn_macs_per_dsp": [round(layer["pe"] * layer["simd"] / d, 2) if d else None
                                  for layer, d in zip(mvus, dsps)],
            "finn_folding": [f"{layer['pe']}x{layer['simd']}" for layer in mvus],
            "finn_exact": check_project(out, images, False)["rtl_exact"]}


def finn_table(rows: list[dict]) -> Table:
    table = Table(title="edgec vs FINN at the same --fps (edgec: yosys synth_xilinx and simulated cycles; "
                        "FINN: its own estimate reports)",
                  caption="BRAM: edgec counts the part's block RAMs (RAMB36 on these parts), FINN BRAM_18K halves; "
                          "MACs/DSP per matrix-vector layer; FINN's DSP estimate ignores the widths (see the docstring)")
    for header in ("model", "target", "DSP e/F", "LUT e/F", "BRAM e / BRAM18 F", "PE x SIMD e", "PE x SIMD F",
                   "MACs/DSP e", "MACs/DSP F", "cycles/inf e/F", "exact e/F"):
        table.add_column(header, justify="left" if header in ("model", "target") else "right")
    for row in rows:
        if row.get("finn_dsp") is None:
            continue
        table.add_row(row["model"], row["target"], f"{row['dsp']:g} / {row['finn_dsp']:g}",
                      f"{row['lut']:,} / {row['finn_lut']:,.0f}", f"{row['bram']:g} / {row['finn_bram_18k']:g}",
                      "/".join(row["folding"]), "/".join(row["finn_folding"]), _per_layer(row["macs_per_dsp"]),
                      "/".join("-" if v is None else f"{v:g}" for v in row["finn_macs_per_dsp"]),
                      f"{row['cycles_per_inference']:,} / {row['finn_cycles']:,}",
                      f"{'yes' if row['rtl_exact'] else 'NO'} / {'yes' if row['finn_exact'] else 'NO'}")
    return table


def _exact(row: dict) -> str:
    rtl = "yes" if row["rtl_exact"] else "NO"
    if row["netlist_exact"] is None:
        return rtl
    return f"{rtl} (netlist {'yes' if row['netlist_exact'] else 'NO'})"


def results_table(rows: list[dict]) -> Table:
    table = Table(title="edgec FPGA backend on Brevitas digits nets (resources: nextpnr on iCE40, yosys "
                        "synth_xilinx estimates on AMD parts)",
                  caption="unpacked: the same goal with one product per DSP (AMD parts; its MACs/DSP are 1); MACs/DSP per "
                          "matrix-vector layer; FINN: its lane formula, on DSP48E2 only; fmax: nextpnr (iCE40 only)")
    for header in ("model", "target", "DSP", "LUT", "FF", "BRAM", "SPRAM", "LUT/MAC unit", "unpacked DSP/LUT/per MAC/cycles",
                   "MACs/DSP", "planned", "FINN", "fmax MHz", "cycles/inf", "inf/s", "exact"):
        table.add_column(header, justify="left" if header in ("model", "target") else "right")
    for row in rows:
        plain = "-" if row["unpacked_dsp"] is None else (
            f"{row['unpacked_dsp']:g}/{row['unpacked_lut']:,}/{row['unpacked_lut_per_mac_unit']:.0f}/"
            f"{row['unpacked_cycles']:,}")
        table.add_row(row["model"], f"{row['target']} ({row['primitive']})", f"{row['dsp']:g}", f"{row['lut']:,}",
                      f"{row['ff']:,}", f"{row['bram']:g}", f"{row['spram']:g}", f"{row['lut_per_mac_unit']:.0f}", plain,
                      _per_layer(row["macs_per_dsp"]), _per_layer(row["planned_macs_per_dsp"]),
                      _per_layer(row["finn_lanes"]), "-" if row["fmax_mhz"] is None else f"{row['fmax_mhz']:.1f}",
                      f"{row['cycles_per_inference']:,}", f"{row['inferences_per_second']:,.0f}", _exact(row))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,conv",
                        help="net kinds: mlp, conv, fullres (two convolutions at 8x8, where row packing pays)")
    parser.add_argument("--bits", default="8,4,2", help="weight and activation widths")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--images", type=int, default=20, help="test images each simulation checks")
    parser.add_argument("--netlist", action="store_true", help="also simulate the iCE40 placed-and-routed netlist")
    parser.add_argument("--fps", type=float, help="folding goal: inferences per second")
    parser.add_argument("--max-dsp", type=int, help="folding goal: at most this many DSPs")
    parser.add_argument("--no-unpacked", action="store_true",
                        help="skip the unpacked builds on AMD targets (one more yosys run per row)")
    parser.add_argument("--finn", action="store_true",
                        help="also build each net on AMD targets with FINN (flow finn) and compare (second table)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per net (default 8)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where trained weights are cached")
    parser.add_argument("--keep", type=Path, help="keep the compiled projects under this directory")
    parser.add_argument("--json", type=Path, help="also write the rows and failures as JSON")
    args = parser.parse_args()
    console = Console(width=200)
    kinds, widths, targets = args.models.split(","), [int(b) for b in args.bits.split(",")], args.targets.split(",")
    data = brevitas_models.digits()
    images = data.test_x[:args.images]
    rows, failures = [], []
    started = time.monotonic()
    total, count = len(kinds) * len(widths) * len(targets), 0
    with tempfile.TemporaryDirectory(prefix="edgec-fpga-bench-") as temp:
        projects = args.keep or Path(temp)
        for kind in kinds:
            for bits in widths:
                net_name = f"{kind}_w{bits}a{bits}"
                model = brevitas_models.quantize(trained_net(kind, bits, data, args.epochs, args.cache))
                for target in targets:
                    count += 1
                    console.print(f"[{count}/{total}] {net_name} for {target} ...", highlight=False)
                    began = time.monotonic()
                    try:
                        row = measure(model, net_name, bits, target, projects / f"{net_name}-{target}", images,
                                      netlist=args.netlist, fps=args.fps, max_dsp=args.max_dsp,
                                      unpacked=not args.no_unpacked)
                    except EdgecError as error:
                        # The problem alone: the hint may name a log in the discarded project.
                        failures.append({"model": net_name, "bits": bits, "target": target,
                                         "reason": error.problem})
                        console.print(f"    does not build: {error.problem}", highlight=False)
                        continue
                    if args.finn and row["primitive"] != "SB_MAC16":
                        try:
                            row.update(finn_figures(model, net_name, target, projects / f"{net_name}-{target}-finn",
                                                    images, args.fps))
                        except EdgecError as error:
                            failures.append({"model": net_name, "bits": bits, "target": f"{target} (FINN)",
                                             "reason": error.problem})
                    rows.append(row)
                    console.print(f"    {time.monotonic() - began:.0f} s", highlight=False)
    console.print(results_table(rows))
    if args.finn:
        console.print(finn_table(rows))
    for failure in failures:
        console.print(f"{failure['model']} for {failure['target']}: {failure['reason']}", highlight=False)
    console.print(f"{len(rows)} built, {len(failures)} did not; {time.monotonic() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "failures": failures}, indent=1) + "\n")
    if not all(row["rtl_exact"] and row["netlist_exact"] is not False and row.get("finn_exact") is not False
               for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
