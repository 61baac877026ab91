"""The packed MAC units' Verilog: lint-clean, and bit-exact in iverilog and Verilator on the same
vectors as the Python model (every weight/activation pair per lane up to 4 bits, a random
1,024 of them at 8 bits, corner
accumulations as long as the plan allows, bubbles, clock-enable stalls and back-to-back
accumulations), edgec's SB_MAC16 simulation model against yosys' cell model on the dual 8x8
vectors, and one DSP48E2 per SDV unit in yosys. Each tool's tests skip, saying so, when the tool is absent.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.backends.fpga import packed_datapath as pd
from edgec.backends.fpga import packed_rtl
from edgec.backends.fpga.lanes import Packing, plan_packing
from edgec.inttype import IntType

TESTBENCH = """`timescale 1ns/1ps
module tb;
  localparam integer N = {n};
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg [{vb}-1:0] mem [0:N-1];
  reg en, in_valid, in_first, in_last;
  reg [{lw}-1:0] w;
  reg [{a}-1:0] x;
  wire out_valid;
  wire [{ob}-1:0] acc;
  {module} #({params}) dut (.clk(clk), .rst(rst), .en(en), .in_valid(in_valid), .in_first(in_first),
    .in_last(in_last), .w(w), .x(x), .out_valid(out_valid), .acc(acc));
  integer i, f;
  initial begin
    $readmemh("vectors.hex", mem);
    f = $fopen("results.hex", "w");
    {{en, in_valid, in_first, in_last, w, x}} = 0;
    repeat (2) begin #5 clk = 1'b1; #5 clk = 1'b0; end
    rst = 1'b0;
    for (i = 0; i < N + 8; i = i + 1) begin
      if (i < N) {{en, in_valid, in_first, in_last, w, x}} = mem[i];
      else {{en, in_valid, in_first, in_last, w, x}} = 1 << ({vb} - 1);
      // a consumer takes acc at an edge with en and out_valid high
      #4 if (out_valid && en) $fwrite(f, "%h\\n", acc);
      #1 clk = 1'b1;
      #5 clk = 1'b0;
    end
    $fclose(f);
    $finish;
  end
endmodule
"""


# yosys' cell models give ports default values unless told not to; neither simulator takes those.
CELL_DEFINE = "-DNO_ICE40_DEFAULT_ASSIGNMENTS"
#: Above this many (w, x) pairs (8-bit widths) a random sample of them is simulated.
PAIR_LIMIT = 1024


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH (scripts/setup.sh installs it)")
    return path


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


def vector_lines(packing: Packing, sums: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator) -> list[str]:
    """One line a cycle: ``{en, in_valid, in_first, in_last, w, x}``; bubbles (en high, no
    valid) and stalls (en low, junk everywhere else) fall between the beats at random."""
    w_bits, a_bits = packing.weight_type.bits, packing.input_type.bits
    data = packing.weights_per_word * w_bits + a_bits
    lines = []
    for w, x in sums:
        for t in range(len(w)):
            for _ in range(2):
                junk = int(rng.integers(0, 1 << 62)) & ((1 << (data + 3)) - 1)
                if rng.random() < 0.1:  # a bubble, with junk operands
                    lines.append(f"{(0b1000 << data) | (junk & ((1 << data) - 1)):x}")
                if rng.random() < 0.1:  # a stall: en low, junk control and operands
                    lines.append(f"{junk:x}")
            word = 0
            for lane in reversed(range(packing.weights_per_word)):
                word = (word << w_bits) | (int(w[t, lane]) & ((1 << w_bits) - 1))
            word = (word << a_bits) | (int(x[t, 0]) & ((1 << a_bits) - 1))
            flags = 0b1100 | (0b0010 if t == 0 else 0) | (0b0001 if t == len(w) - 1 else 0)
            lines.append(f"{(flags << data) | word:x}")
    return lines


def expected(packing: Packing, sums) -> np.ndarray:
    rows = []
    for w, x in sums:
        ref = pd.reference(packing, w[None], x[None])
        np.testing.assert_array_equal(pd.run(packing, w[None], x[None]), ref)
        rows.append(ref[0])
    return np.array(rows)


def decode(text: str, packing: Packing) -> np.ndarray:
    acc = packing.acc_bits
    rows = []
    for line in text.split():
        word = int(line, 16)
        lanes = [(word >> (acc * k)) & ((1 << acc) - 1) for k in range(packing.lanes)]
        rows.append([v - (1 << acc) if v >> (acc - 1) else v for v in lanes])
    return np.array(rows, dtype=np.int64)


def prepare(packing: Packing, directory: Path, seed: int, cells: str = "yosys") -> tuple[list[Path], np.ndarray]:
    """The testbench, the unit's files and the expected sums; a dual 8x8 unit's SB_MAC16 comes
    from yosys' cell models (``cells="yosys"``) or from edgec's simulation model (``"edgec"``)."""
    rng = np.random.default_rng(seed)
    sums = accumulations(packing, rng)
    lines = vector_lines(packing, sums, rng)
    (directory / "vectors.hex").write_text("\n".join(lines) + "\n")
    files = packed_rtl.render(packing, directory / "rtl")
    (directory / "tb.v").write_text(TESTBENCH.format(
        n=len(lines), vb=4 + packing.weights_per_word * packing.weight_type.bits + packing.input_type.bits,
        lw=packing.weights_per_word * packing.weight_type.bits, a=packing.input_type.bits,
        ob=packing.lanes * packing.acc_bits, module=packed_rtl.module_name(packing),
        params=packed_rtl.parameter_list(packing)))
    if packing.scheme == "dual8x8" and cells == "yosys":
        files = [f for f in files if f.name != "edgec_sb_mac16_sim.v"] + [ice40_cells()]
    return [directory / "tb.v", *files], expected(packing, sums)


def run_iverilog(directory: Path, files: list[Path]) -> str:
    subprocess.run([tool("iverilog"), "-g2012", CELL_DEFINE, "-o", "sim", *map(str, files)], cwd=directory, check=True,
                   capture_output=True)
    subprocess.run([tool("vvp"), "-n", "sim"], cwd=directory, check=True, capture_output=True)
    return (directory / "results.hex").read_text()


def run_verilator(directory: Path, files: list[Path]) -> str:
    build = subprocess.run([tool("verilator"), "--binary", "-j", "4", CELL_DEFINE, "-Wno-fatal", "-Wno-lint", "-Wno-style",
                            "--top-module", "tb", "-o", "sim", *map(str, files)], cwd=directory, capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run(["obj_dir/sim"], cwd=directory, check=True, capture_output=True)
    return (directory / "results.hex").read_text()


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
    overrides = [f"-G{k}={v}" for k, v in packed_rtl.parameters(packing).items() if k != "CARRY_LOW"]
    if packing.scheme == "sdv":
        overrides.append(f"-GCARRY_LOW={8 * (packing.lanes - 1)}'h{packed_rtl.parameters(packing)['CARRY_LOW']:x}")
    lint = subprocess.run([tool("verilator"), "--lint-only", "-Wall", "--top-module", packed_rtl.module_name(packing),
                           *overrides, *map(str, files)], capture_output=True, text=True, cwd=tmp_path)
    assert lint.returncode == 0, lint.stderr


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
    script = (f"read_verilog {' '.join(f.name for f in files)}; "
              f"chparam {' '.join(f'-set {k} {v}' for k, v in packed_rtl.parameters(packing).items())} edgec_sdv_mac; "
              "synth_xilinx -family xcup -flatten -top edgec_sdv_mac; tee -o stat.json stat -tech xilinx -json")
    subprocess.run([tool("yosys"), "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True)
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\edgec_sdv_mac"]["num_cells_by_type"]
    assert cells.get("DSP48E2") == 1, cells
