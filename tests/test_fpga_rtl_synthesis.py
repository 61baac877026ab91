"""yosys synthesis of the FPGA backend's generated dataflow RTL (slow): a W4A4 MLP synthesises for
iCE40 and its netlist simulates bit-exact; a packed W4A4 MVU maps to ceil(PE / lanes) * SIMD
DSP48E2 (the plain one to PE * SIMD or none); a packed iCE40 design maps its dual 8x8 cores to
SB_MAC16s through the flow's synthesis, and its netlist simulates bit-exact. The plans and the
numpy evaluation are :mod:`fpga_rtl_plans`'.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.backends.fpga import flow_ice40
from edgec.backends.fpga.rtl import generate_rtl
from edgec.backends.fpga.simulate import simulate

from fpga_rtl_plans import (
    I4,
    I4N,
    I8,
    U4,
    evaluate,
    mvu,
    needs_iverilog,
    needs_yosys,
    packed,
    packed_plan,
    random_rows,
    yosys_datdir,
)


@needs_yosys
@needs_iverilog
@pytest.mark.slow
def test_a_w4a4_mlp_synthesises_for_ice40_and_its_netlist_simulates_bit_exact(tmp_path):
    rng = np.random.default_rng(3)
    layers = [mvu(0, rng, I8, I4N, U4, 32, 64, pe=2, simd=2), mvu(1, rng, U4, I4N, I8, 10, 32)]
    directory = tmp_path / "design"
    design = generate_rtl(layers, directory, name="mlp")
    netlist = tmp_path / "netlist.v"
    script = f"read_verilog {' '.join(design.sources)}; synth_ice40 -dsp -top edgec_top; stat; write_verilog -noattr {netlist}"
    done = subprocess.run(["yosys", "-q", "-p", script], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = random_rows(layers, 2)
    result = simulate(directory, design, rows, netlist=[netlist, yosys_datdir() / "ice40" / "cells_sim.v"],
                      defines=("NO_ICE40_DEFAULT_ASSIGNMENTS",))
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])


def xilinx_cells(directory: Path, design, top: str) -> dict:
    """yosys ``synth_xilinx -family xcup`` cell counts of module ``top`` of ``design`` (flattened)."""
    script = (f"read_verilog {' '.join(design.sources)}; synth_xilinx -family xcup -flatten -noiopad -top {top}; "
              "tee -q -o stat.json stat -tech xilinx -json")
    done = subprocess.run(["yosys", "-q", "-p", script], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads((directory / "stat.json").read_text())["modules"][f"\\{top}"]["num_cells_by_type"]


@needs_yosys
@pytest.mark.slow
def test_a_packed_w4a4_mvu_uses_ceil_pe_over_lanes_times_simd_dsp48e2_and_the_plain_one_pe_times_simd(tmp_path):
    rng = np.random.default_rng(9)
    layer = packed(mvu(0, rng, U4, I4, U4, 6, 12, pe=6, simd=2), "DSP48E2")
    assert layer.packing.lanes == 4
    counts = {}
    for kind in ("packed", "plain"):
        design = generate_rtl([layer], tmp_path / kind, name="mvu", packed=kind == "packed")
        counts[kind] = xilinx_cells(tmp_path / kind, design, "edgec_l0_mvu")
    assert counts["packed"].get("DSP48E2") == 2 * 2, counts["packed"]   # ceil(6 / 4) * 2
    # the plain core's 4x4 products are narrower than synth_xilinx's 9-bit DSP threshold (LUTs):
    # it maps none or one DSP per multiplier, never fewer than the packed core's
    assert counts["plain"].get("DSP48E2", 0) in (0, 6 * 2), counts["plain"]


@needs_yosys
@needs_iverilog
@pytest.mark.slow
def test_a_packed_ice40_design_synthesises_to_sb_mac16s_and_its_netlist_simulates_bit_exact(tmp_path):
    layers = packed_plan("dual_w4a4")
    directory = tmp_path / "design"
    design = generate_rtl(layers, directory, name="dual")
    # the flow's synthesis (synth_ice40 -dsp, with the design's own SB_MAC16s kept as written)
    synthesis = flow_ice40.synthesize([directory / s for s in design.sources], "edgec_top", tmp_path / "synth")
    assert synthesis.cells.get("SB_MAC16") == 2 * 2 + 2 * 3, synthesis.cells   # ceil(3/2) * 2 + ceil(4/2) * 3
    rows = random_rows(layers, 2)
    result = simulate(directory, design, rows, netlist=[synthesis.netlist, yosys_datdir() / "ice40" / "cells_sim.v"],
                      defines=("NO_ICE40_DEFAULT_ASSIGNMENTS",))
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])
