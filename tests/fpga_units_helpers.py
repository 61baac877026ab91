"""What the packed MAC unit tests share (``test_fpga_packed_rtl``, ``test_fpga_conv_unit``): the
testbench that replays vectors through one unit, the vectors' encoding, the simulators, the
decoding of the unit's sums, the lint and the yosys cell count of one unit.

A vector line is one cycle, ``{en, in_valid, in_first, in_last, w, x}`` in hex, with ``w`` the
packing's weights (weight ``i`` at ``[i*W +: W]``) and ``x`` its activations (activation ``j``
at ``[j*A +: A]``; one for the SDV and dual 8x8 units). The testbench writes the unit's output
word at every edge where a consumer takes it (``en`` and ``out_valid`` high) to
``results.hex``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgec.backends.fpga.lanes import Packing
from edgec.backends.fpga.packed_rtl import carry_low_literal

TESTBENCH = """`timescale 1ns/1ps
module tb;
  localparam integer N = {n};
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg [{vb}-1:0] mem [0:N-1];
  reg en, in_valid, in_first, in_last;
  reg [{wb}-1:0] w;
  reg [{xb}-1:0] x;
  wire out_valid;
  wire [{ob}-1:0] sums;
  {module} #({params}) dut (.clk(clk), .rst(rst), .en(en), .in_valid(in_valid), .in_first(in_first),
    .in_last(in_last), .w(w), .x(x), .out_valid(out_valid), .{port}(sums));
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
      // a consumer takes the sums at an edge with en and out_valid high
      #4 if (out_valid && en) $fwrite(f, "%h\\n", sums);
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


def tool(name: str) -> str:
    """The path of ``name``; skips the test, saying so, when it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH (scripts/setup.sh installs it)")
    return path


def operand_bits(packing: Packing) -> tuple[int, int]:
    """The widths of the unit's ``w`` and ``x`` ports."""
    return (packing.weights_per_word * packing.weight_type.bits,
            packing.inputs_per_word * packing.input_type.bits)


def write_testbench(directory: Path, packing: Packing, lines: int, module: str, params: str, port: str) -> Path:
    """``directory/tb.v``: ``lines`` vector lines through ``module #(params)``, whose sums leave
    through output ``port``."""
    wb, xb = operand_bits(packing)
    path = directory / "tb.v"
    path.write_text(TESTBENCH.format(n=lines, vb=4 + wb + xb, wb=wb, xb=xb, ob=packing.lanes * packing.acc_bits,
                                     module=module, params=params, port=port))
    return path


def pack(values: np.ndarray, bits: int) -> int:
    """``values`` as one word, value ``i`` at ``[i*bits +: bits]`` (two's complement)."""
    word = 0
    for value in reversed(values.tolist()):
        word = (word << bits) | (int(value) & ((1 << bits) - 1))
    return word


def vector_lines(packing: Packing, sums, rng: np.random.Generator, gap_rate: float) -> list[str]:
    """One line a cycle for the accumulations ``sums`` (``(w [cycles, N], x [cycles, M])``
    each); before each beat, twice, a bubble (en high, no valid, junk operands) and a stall (en
    low, junk everywhere else) each fall with probability ``gap_rate``."""
    w_bits, x_bits = operand_bits(packing)
    data = w_bits + x_bits
    lines = []
    for w, x in sums:
        for t in range(len(w)):
            for _ in range(2):
                junk = int(rng.integers(0, 1 << 62)) | (int(rng.integers(0, 1 << 62)) << 62)
                junk &= (1 << (data + 3)) - 1
                if rng.random() < gap_rate:
                    lines.append(f"{(0b1000 << data) | (junk & ((1 << data) - 1)):x}")
                if rng.random() < gap_rate:
                    lines.append(f"{junk:x}")
            word = (pack(w[t], packing.weight_type.bits) << x_bits) | pack(x[t], packing.input_type.bits)
            flags = 0b1100 | (0b0010 if t == 0 else 0) | (0b0001 if t == len(w) - 1 else 0)
            lines.append(f"{(flags << data) | word:x}")
    return lines


def decode(text: str, packing: Packing) -> np.ndarray:
    """``results.hex`` as ``[outputs, lanes]`` signed sums; fails on unknown bits."""
    acc = packing.acc_bits
    rows = []
    for line in text.split():
        if not all(c in "0123456789abcdef" for c in line):
            pytest.fail(f"the unit's output has unknown bits: {line}")
        word = int(line, 16)
        lanes = [(word >> (acc * k)) & ((1 << acc) - 1) for k in range(packing.lanes)]
        rows.append([v - (1 << acc) if v >> (acc - 1) else v for v in lanes])
    return np.array(rows, dtype=np.int64).reshape(-1, packing.lanes)


def run_iverilog(directory: Path, files: list[Path]) -> str:
    """Simulate ``files`` (the testbench first) in iverilog; ``results.hex``'s text."""
    subprocess.run([tool("iverilog"), "-g2012", CELL_DEFINE, "-o", "sim", *map(str, files)], cwd=directory, check=True,
                   capture_output=True)
    subprocess.run([tool("vvp"), "-n", "sim"], cwd=directory, check=True, capture_output=True)
    return (directory / "results.hex").read_text()


def run_verilator(directory: Path, files: list[Path]) -> str:
    """Build and run ``files`` (top ``tb``) with ``verilator --binary``; ``results.hex``'s text."""
    build = subprocess.run([tool("verilator"), "--binary", "-j", "2", CELL_DEFINE, "-Wno-fatal", "-Wno-lint",
                            "-Wno-style", "--top-module", "tb", "-o", "sim", *map(str, files)], cwd=directory,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run(["obj_dir/sim"], cwd=directory, check=True, capture_output=True)
    return (directory / "results.hex").read_text()


def assert_lint_clean(directory: Path, files: list[Path], top: str, parameters: dict[str, int],
                      packing: Packing) -> None:
    """``verilator --lint-only -Wall`` on the unit ``top`` with ``parameters`` (``CARRY_LOW``,
    when there is one, as the packing's sized literal) prints nothing and passes."""
    overrides = [f"-G{key}={value}" for key, value in parameters.items() if key != "CARRY_LOW"]
    if "CARRY_LOW" in parameters:
        overrides.append(f"-GCARRY_LOW={carry_low_literal(packing)}")
    lint = subprocess.run([tool("verilator"), "--lint-only", "-Wall", "--top-module", top, *overrides,
                           *map(str, files)], capture_output=True, text=True, cwd=directory)
    assert lint.returncode == 0 and lint.stderr == "", lint.stderr


def xilinx_cells(directory: Path, files: list[Path], top: str, parameters: dict[str, int]) -> dict[str, int]:
    """yosys ``synth_xilinx -family xcup -flatten`` cell counts by type of the unit ``top``."""
    sets = " ".join(f"-set {key} {value}" for key, value in parameters.items())
    script = (f"read_verilog {' '.join(f.name for f in files)}; chparam {sets} {top}; "
              f"synth_xilinx -family xcup -flatten -top {top}; tee -q -o stat.json stat -tech xilinx -json")
    subprocess.run([tool("yosys"), "-q", "-p", script], cwd=directory, check=True, capture_output=True)
    return json.loads((directory / "stat.json").read_text())["modules"][f"\\{top}"]["num_cells_by_type"]
