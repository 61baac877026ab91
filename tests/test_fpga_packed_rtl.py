"""The packed MAC units' Verilog: lint-clean, and bit-exact in iverilog and Verilator on the same
vectors as the Python model (every weight/activation pair per lane up to 4 bits, a random
1,024 of them at 8 bits, corner
accumulations as long as the plan allows, bubbles, clock-enable stalls and back-to-back
accumulations), edgec's SB_MAC16 simulation model against yosys' cell model on the dual 8x8
vectors, and one DSP48E2 per SDV unit in yosys. Each tool's tests skip, saying so, when the tool is absent.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.backends.fpga import packed_datapath as pd
from edgec.backends.fpga import packed_rtl
from edgec.backends.fpga.lanes import Packing, plan_packing
from edgec.inttype import IntType

from fpga_units_helpers import (
    assert_lint_clean,
    decode,
    run_iverilog,
    run_verilator,
    tool,
    vector_lines,
    write_testbench,
    xilinx_cells,
)

#: Above this many (w, x) pairs (8-bit widths) a random sample of them is simulated.
PAIR_LIMIT = 1024
#: How often a bubble, and a stall, falls before a beat (twice per beat).
GAP_RATE = 0.1


def ice40_cells() -> Path:
    """yosys' own iCE40 cell models (``yosys-config --datdir``, else next to the yosys binary)."""
    config = shutil.which("yosys-config")
    datdir = (Path(subprocess.run([config, "--datdir"], capture_output=True, text=True, check=True).stdout.strip())
              if config else Path(tool("yosys")).resolve().parents[1] / "share" / "yosys")
    cells = datdir / "ice40" / "cells_sim.v"
    if not cells.exists():
        pytest.skip(f"yosys' iCE40 cell models are not at {cells}")
    return cells


def accumulations(packing: Packing, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (w, x) pair in every lane (other lanes random) in accumulations of random length,
    then the corner accumulations of the plan's full length."""
    wt, it = packing.weight_type, packing.input_type
    n = packing.weights_per_word
    pairs = list(itertools.product(range(wt.min, wt.max + 1), range(it.min, it.max + 1)))
    if len(pairs) > PAIR_LIMIT:
        pairs = [pairs[i] for i in rng.choice(len(pairs), PAIR_LIMIT, replace=False)]
    w = rng.integers(wt.min, wt.max + 1, (len(pairs) * n, n))
    x = np.empty((len(pairs) * n, 1), dtype=np.int64)
    for lane in range(n):
        rows = slice(lane * len(pairs), (lane + 1) * len(pairs))
        w[rows, lane] = [p[0] for p in pairs]
        x[rows, 0] = [p[1] for p in pairs]
    out, start = [], 0
    while start < len(w):
        length = int(rng.integers(1, min(packing.accumulation, 24) + 1))
        out.append((w[start:start + length], x[start:start + length]))
        start += length
    k = packing.accumulation
    for wv, xv in itertools.product((wt.min, wt.max), (it.min, it.max)):
        out.append((np.full((k, n), wv), np.full((k, 1), xv)))
    return out


def expected(packing: Packing, sums) -> np.ndarray:
    rows = []
    for w, x in sums:
        ref = pd.reference(packing, w[None], x[None])
        np.testing.assert_array_equal(pd.run(packing, w[None], x[None]), ref)
        rows.append(ref[0])
    return np.array(rows)


def prepare(packing: Packing, directory: Path, seed: int, cells: str = "yosys") -> tuple[list[Path], np.ndarray]:
    """The testbench, the unit's files and the expected sums; a dual 8x8 unit's SB_MAC16 comes
    from yosys' cell models (``cells="yosys"``) or from edgec's simulation model (``"edgec"``)."""
    rng = np.random.default_rng(seed)
    sums = accumulations(packing, rng)
    lines = vector_lines(packing, sums, rng, GAP_RATE)
    (directory / "vectors.hex").write_text("\n".join(lines) + "\n")
    files = packed_rtl.render(packing, directory / "rtl")
    bench = write_testbench(directory, packing, len(lines), packed_rtl.module_name(packing),
                            packed_rtl.parameter_list(packing), "acc")
    if packing.scheme == "dual8x8" and cells == "yosys":
        files = [f for f in files if f.name != "edgec_sb_mac16_sim.v"] + [ice40_cells()]
    return [bench, *files], expected(packing, sums)


SDV_PLANS = {
    "w4_uint4_e2": ("DSP48E2", IntType(4, True), IntType(4, False), 64),
    "w4n_int4_e2": ("DSP48E2", IntType(4, True, True), IntType(4, True), 64),
    "w2_int2_e2": ("DSP48E2", IntType(2, True), IntType(2, True), 64),
    "w3_uint3_e1": ("DSP48E1", IntType(3, True), IntType(3, False), 32),
    "w8_int8_e2": ("DSP48E2", IntType(8, True), IntType(8, True), 16),
}
DUAL_PLANS = {
    "dual_w4_uint4": ("SB_MAC16", IntType(4, True), IntType(4, False), 64),
    "dual_w8_int8": ("SB_MAC16", IntType(8, True), IntType(8, True), 8),
}


def plan(spec) -> Packing:
    primitive, wt, it, k = spec
    return plan_packing(primitive, wt, it, accumulation=k)


@pytest.mark.parametrize("name", [*SDV_PLANS, *DUAL_PLANS])
def test_lint_clean(name: str, tmp_path: Path) -> None:
    packing = plan({**SDV_PLANS, **DUAL_PLANS}[name])
    files = packed_rtl.render(packing, tmp_path)
    assert all(f.read_text().startswith("// generated by edgec") for f in files)
    assert_lint_clean(tmp_path, files, packed_rtl.module_name(packing), packed_rtl.parameters(packing), packing)


@pytest.mark.parametrize("name", [*SDV_PLANS, *DUAL_PLANS])
def test_iverilog_bit_exact(name: str, tmp_path: Path) -> None:
    packing = plan({**SDV_PLANS, **DUAL_PLANS}[name])
    files, want = prepare(packing, tmp_path, seed=len(name))
    np.testing.assert_array_equal(decode(run_iverilog(tmp_path, files), packing), want)


@pytest.mark.parametrize("name", [*DUAL_PLANS])
def test_edgecs_sb_mac16_simulation_model_gives_the_same_sums_as_yosys_cells(name: str, tmp_path: Path) -> None:
    packing = plan(DUAL_PLANS[name])
    ice40_cells()  # the comparison needs yosys' models: skip without them, as the test above
    files, want = prepare(packing, tmp_path, seed=len(name), cells="edgec")
    np.testing.assert_array_equal(decode(run_iverilog(tmp_path, files), packing), want)


@pytest.mark.parametrize("name", ["w4_uint4_e2", "dual_w4_uint4"])
def test_verilator_bit_exact(name: str, tmp_path: Path) -> None:
    packing = plan({**SDV_PLANS, **DUAL_PLANS}[name])
    files, want = prepare(packing, tmp_path, seed=len(name))
    np.testing.assert_array_equal(decode(run_verilator(tmp_path, files), packing), want)


def test_sdv_unit_maps_to_one_dsp48e2(tmp_path: Path) -> None:
    packing = plan(SDV_PLANS["w4_uint4_e2"])
    files = packed_rtl.render(packing, tmp_path)
    cells = xilinx_cells(tmp_path, files, "edgec_sdv_mac", packed_rtl.parameters(packing))
    assert cells.get("DSP48E2") == 1, cells
