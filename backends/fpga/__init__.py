"""FPGA backend: an integer graph becomes a streaming dataflow design, verified and synthesised.

:class:`FpgaBackend` is the backend contract (:class:`edgec.backend.Backend`) for ``fpga``
targets over these modules:

* :mod:`.planner` names the first node the design cannot take and turns the graph into a
  chain of stages (:mod:`.layers`): matrix-vector units (fully connected layers, and
  convolutions behind a sliding window unit) with exact thresholds in place of the
  requantization (:mod:`.thresholds`), and max pools;
* :mod:`.lanes` and :mod:`.packed_datapath`: DSP arithmetic packing, planned per layer and
  proven exact in integers; :mod:`.packed_rtl` (and :mod:`.conv_packed_rtl` on it) their Verilog units;
  :mod:`.folding` picks PE x SIMD per layer;
* :mod:`.rtl` writes the Verilog, :mod:`.simulate` runs it (iverilog, Verilator) and
  :mod:`.dataflow_model` is the plan in numpy, equal to the integer reference;
* :mod:`.flow_ice40` (yosys, nextpnr-ice40, icepack), :mod:`.flow_xilinx` (yosys estimates),
  :mod:`.vivado` (the script for AMD bitstreams) and :mod:`.boards` (pins, UART board top);
* :mod:`.project` writes the project directory and its report;
* :mod:`.finn_flow` is the FINN flow (option ``flow="finn"``): the same plan as a QONNX graph
  (:mod:`.finn_graph`) built by FINN in its own environment (:mod:`.finn_driver`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec import progress
from edgec.api import PROJECT_MODEL
from edgec.backend import Backend, Project, RunResult, read_manifest
from edgec.backends.fpga import finn_flow, flow_ice40, simulate
from edgec.backends.fpga.planner import check_model
from edgec.backends.fpga.project import BUILD_DIR, RTL_DIR, compile_project
from edgec.backends.fpga.rtl import load_design
from edgec.delta import get_scheme
from edgec.errors import EdgecError
from edgec.target import Target, project_target
from edgec.widths import require_int8_activations

#: The simulator ``run`` uses (iverilog starts at once; the tests run Verilator as well).
SIMULATOR = "iverilog"
NETLIST_DIR = f"{BUILD_DIR}/netlist"


def _netlist_sources(project: Project) -> list[Path]:
    """The placed-and-routed netlist of ``edgec_top`` with its cell models, built on first use.

    The bitstream's top is the board wrapper (UART), whose ports no testbench drives at speed;
    ``edgec_top`` is placed and routed alone for simulation, by the same yosys script and
    nextpnr seed, with its ports left for nextpnr to place.
    """
    if project.target.device.family != "ice40":
        raise EdgecError(f"netlist simulation needs a placed-and-routed netlist, and {project.target.name} has none "
                         "without Vivado", "simulate the RTL: edgec run DIR --input x.npy --check")
    work = project.path / NETLIST_DIR
    routed = work / "edgec_top_routed.v"
    if not routed.is_file():
        design = load_design(project.path / RTL_DIR)
        synthesis = flow_ice40.synthesize([project.path / RTL_DIR / s for s in design.sources], design.top, work,
                                          advance=progress.stage)
        flow_ice40.place_and_route(synthesis, None, work, project.target.device.clock_hz / 1e6,
                                   advance=progress.stage)
    return flow_ice40.netlist_simulation_sources(routed)


class FpgaBackend(Backend):
    """The backend contract for ``fpga`` targets (see the module docstring)."""

    kind = "fpga"
    name = "FPGA"
    options = {"fps": None, "max_dsp": None, "board": None, "emit_only": False, "packing": "auto", "flow": "edgec",
               "folding_config": None}
    #: ``flow``: who builds the design, edgec (:mod:`.project`) or FINN (:mod:`.finn_flow`).
    flows = ("edgec", "finn")
    run_variants = {"netlist": "the placed-and-routed netlist (iverilog)"}
    untraced_variants = {"netlist": "the RTL simulation"}  # a netlist keeps only edgec_top's ports

    def check(self, model: ir.Model, target: Target) -> None:
        require_int8_activations(model, "the FPGA backend")
        check_model(model)

    def compile(self, model: ir.Model, target: Target, out_dir: Path, *, name: str, **options) -> dict:
        flow, folding_config = options.pop("flow"), options.pop("folding_config")
        if flow not in self.flows:
            raise EdgecError(f"no FPGA flow '{flow}'", f"give --flow {' or --flow '.join(self.flows)}")
        if flow == "edgec":
            if folding_config is not None:
                raise EdgecError("--folding-config is a FINN folding file", "add --flow finn, or fold with --fps")
            return compile_project(model, target, out_dir, name, **options)
        encoded = next((node for node in model.graph if len(node.inputs) > 1 and node.inputs[1] is not None
                        and get_scheme(node.inputs[1]) is not None), None)
        if encoded is not None:
            raise EdgecError(f"layer {encoded.name}: the FINN flow does not take delta-encoded weights",
                             "compile with edgec's own flow (drop --flow finn), or without --delta-bits")
        for option, default in (("max_dsp", None), ("board", None), ("packing", "auto")):
            if options[option] != default:
                raise EdgecError(f"the FINN flow has no {option.replace('_', '-')} option",
                                 "fold FINN's build with --fps or --folding-config, or drop --flow finn")
        return finn_flow.compile_finn_project(model, target, out_dir, name, fps=options["fps"],
                                              folding_config=folding_config, emit_only=options["emit_only"])

    def compile_summary(self, manifest: dict, target: Target, out_dir: Path) -> list[str]:
        if manifest.get("flow") == "finn":
            return finn_flow.finn_summary(manifest, target, out_dir)
        r = manifest["resources"]
        used = ("not synthesised" if r is None else
                f"{r['lut']:,} LUT, {r['ff']:,} FF, {r['dsp']:g} DSP, {r['bram']:g} BRAM, {r['spram']:g} large RAM")
        fmax = "" if manifest["fmax_mhz"] is None else f", fmax {manifest['fmax_mhz']:g} MHz"
        if manifest["timing_met"] is False:
            fmax += (f" (TIMING FAILS at the target's {target.device.clock_hz / 1e6:g} MHz: the bitstream will not "
                     "run reliably at that clock)")
        bitstream = (f"bitstream {out_dir}/{manifest['bitstream']}" if manifest["bitstream"]
                     else manifest["bitstream_note"])
        return [f"wrote {out_dir}: {target.name} ({target.device.part}), {len(manifest['layers'])} layers, "
                f"{manifest['macs']:,} MACs",
                f"  {used}{fmax}",
                f"  {manifest['cycles_per_inference']:,} cycles per inference: "
                f"{manifest['inferences_per_second']:,.0f} inferences/s at {manifest['clock_mhz']:g} MHz",
                f"  {bitstream}",
                f"  simulate: edgec run {out_dir} --input x.npy --check"]

    def is_project(self, directory: Path) -> bool:
        manifest = read_manifest(directory, required=False)
        if manifest.get("flow") == "finn":
            return finn_flow.is_finn_project(directory, manifest)
        return (manifest.get("backend") == "fpga"
                and (directory / PROJECT_MODEL).is_file() and (directory / RTL_DIR / "design.json").is_file())

    def load_project(self, directory: Path) -> Project:
        manifest = read_manifest(directory)
        return Project(Path(directory).resolve(), manifest, project_target(directory, manifest["target"]),
                       ir.load(Path(directory) / PROJECT_MODEL))

    def run(self, project: Project, rows: np.ndarray, *, variant: str | None = None,
            trace: bool = False) -> RunResult:
        if project.manifest.get("flow") == "finn":
            if variant is not None:
                raise EdgecError(f"a FINN project has no {variant} run", "run it without --" + variant)
            return finn_flow.run_finn_project(project, rows)
        netlist = _netlist_sources(project) if variant == "netlist" else None
        trace = trace and netlist is None  # a netlist keeps only edgec_top's ports: no per-layer trace
        result = simulate.simulate(project.path / RTL_DIR, None, rows, simulator=SIMULATOR, trace=trace,
                                   netlist=netlist, defines=flow_ice40.SIMULATION_DEFINES if netlist else ())
        what = "placed-and-routed netlist" if netlist else "RTL"
        summary = (f"{project.target.name}: {what} simulated ({SIMULATOR}), {len(rows)} samples; "
                   f"{result.cycles_per_inference:,.0f} cycles per inference, latency {result.latency_cycles:,}")
        costs = {"latency_cycles": [result.latency_cycles] * len(rows)}
        return RunResult(result.outputs, costs, result.trace[0] if trace and result.trace else [], summary)

    def profile(self, project: Project, row: np.ndarray, advance):
        raise EdgecError("per-layer profiles of FPGA projects are not measured by simulation yet",
                         f"read the per-layer cycles and resources in {project.path}/report.json")


__all__ = ["FpgaBackend", "check_model", "compile_project"]
