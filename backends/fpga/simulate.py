"""Simulating a generated design (or a netlist of it) on input rows, with iverilog or Verilator.

:func:`simulate` renders one testbench (``templates/tb/edgec_tb.v.j2``) for both simulators:
it reads the rows from ``inputs.hex`` with ``$readmemh``, streams them into ``edgec_top``'s
``s_*`` one element a beat and back to back, takes every ``m_*`` beat, and writes each output
value and cycle stamp to a log the result is read from. With ``backpressure`` the
testbench leaves gaps in ``s_tvalid`` and holds ``m_tready`` low on fixed, uneven duty
cycles (deterministic, no random numbers). With ``trace`` it also logs every beat of each
layer's output stream (hierarchical references to ``edgec_top``'s ``l<i>_*`` wires; not
available on a netlist, which keeps only the top's ports). An undefined value (a bit x or z)
in the log is an :class:`EdgecError` saying where it appeared and its likely cause.

Measured timing: ``latency_cycles`` is from the cycle the first sample's first element is
taken to the cycle its last output element is given, inclusive; ``cycles_per_inference`` is
the steady-state initiation interval, the distance between the last two samples' last output
elements (the design has no data-dependent control, so it is the same for every later pair;
the latency when there is one sample).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgec.backends.fpga.rtl import RtlDesign, hex_file, load_design, template_environment
from edgec.errors import EdgecError, InputDataError, ToolchainError

#: The Debian package that provides each simulator.
SIMULATOR_PACKAGES = {"iverilog": "iverilog", "verilator": "verilator"}
TESTBENCH = "edgec_tb.v"
LOG = "edgec_sim.log"
TIMEOUT_S = 1800


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """``outputs [N, out_elements]`` int64 values of the output type; ``trace[n]``: per layer
    ``(layer index, flattened output)`` of sample ``n`` (None unless traced)."""

    outputs: np.ndarray
    cycles_per_inference: float
    latency_cycles: int
    trace: list[list[tuple[int, np.ndarray]]] | None


def _check_rows(design: RtlDesign, rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] != design.in_elements or rows.shape[0] == 0:
        raise InputDataError(f"input rows have shape {rows.shape}, the design takes [N, {design.in_elements}]",
                             "pass one flattened sample a row")
    lo = -(1 << (design.in_bits - 1)) if design.in_signed else 0
    hi = (1 << (design.in_bits - 1)) - 1 if design.in_signed else (1 << design.in_bits) - 1
    if rows.min() < lo or rows.max() > hi:
        raise InputDataError(f"input values lie outside [{lo}, {hi}], the design's {design.in_bits}-bit input",
                             "quantize the input to the model's input type")
    return rows.astype(np.int64)


def _to_values(raw: list[int], bits: int, signed: bool) -> np.ndarray:
    values = np.array(raw, dtype=np.int64)
    if signed:
        values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    return values


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0]


def _run(command: list[str], cwd: Path, what: str) -> None:
    tool = command[0]
    if shutil.which(tool) is None and not Path(cwd, tool).is_file():
        package = SIMULATOR_PACKAGES.get(tool, tool)
        raise ToolchainError(f"{tool} is not on PATH (needed to {what})", f"install it: apt-get install {package}")
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{tool} did not finish within {TIMEOUT_S} s (needed to {what})",
                             "simulate fewer samples, or check the design for a stall") from None
    if done.returncode != 0:
        raise ToolchainError(f"{tool} failed to {what}: {_first_error(done.stderr + done.stdout)}",
                             "check the generated design and the simulator's version")


def _build_and_run(simulator: str, sources: list[Path], work: Path, defines: tuple[str, ...]) -> None:
    flags = [f"-D{name}" for name in defines]
    if simulator == "iverilog":
        _run(["iverilog", "-g2012", *flags, "-s", "edgec_tb", "-o", "edgec_tb.vvp", TESTBENCH, *map(str, sources)],
             work, "compile the simulation")
        _run(["vvp", "-n", "edgec_tb.vvp"], work, "run the simulation")
    elif simulator == "verilator":
        _run(["verilator", "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-O1",
              "--top-module", "edgec_tb", "-Mdir", "obj", "-o", "edgec_tb", "-CFLAGS", "-O1", "-j", "0",
              *flags, TESTBENCH, *map(str, sources)], work, "build the simulation")
        _run([str(work / "obj" / "edgec_tb")], work, "run the simulation")
    else:
        raise EdgecError(f"unknown simulator '{simulator}'", "use iverilog or verilator")


def _undefined(design: RtlDesign, log: str, netlist: bool) -> EdgecError | None:
    """The error for output (or traced layer) beats the simulator logged as undefined (some
    bit x or z: iverilog prints x, X, z or Z for the value), or None when every value is a number."""
    lines = [line.split() for line in log.splitlines() if line.strip()]
    beats = [fields[2] for fields in lines if fields[0] == "O"]
    bad = [n for n, value in enumerate(beats) if not value.isdigit()]
    layers = sorted({int(fields[1]) for fields in lines if fields[0] == "T" and not fields[2].isdigit()})
    if bad:
        first = bad[0]
        where = (f"output {first % design.out_elements} of sample {first // design.out_elements} "
                 f"({len(bad)} of {len(beats)} output values)")
    elif layers:
        where = f"the traced output of layer {layers[0]}"
    else:
        return None
    if netlist:
        return EdgecError(f"the simulation produced undefined (x) values in {where}: the netlist reads a cell "
                          "input, register or RAM word that its cell models leave undefined",
                          "simulate the RTL (edgec run DIR --check) to tell a netlist modelling gap from a design "
                          "bug, and report it with the project directory")
    return EdgecError(f"the simulation produced undefined (x) values in {where}: the design reads a register or "
                      "memory word before anything sets it", "report a bug with the project directory")


def _parse(design: RtlDesign, log: str, samples: int, trace: bool, netlist: bool = False) -> SimulationResult:
    undefined = _undefined(design, log, netlist)
    if undefined is not None:
        raise undefined
    first_in, out_cycles, out_raw = {}, [], []
    traced: dict[int, list[int]] = {s.index: [] for s in design.layers}
    for line in log.splitlines():
        kind, *fields = line.split()
        if kind == "TIMEOUT":
            raise ToolchainError(f"the simulation stopped at cycle {fields[0]} with {len(out_raw)} of "
                                 f"{samples * design.out_elements} outputs", "the design stalls: report a bug")
        if kind == "I":
            first_in[int(fields[1])] = int(fields[0])
        elif kind == "O":
            out_cycles.append(int(fields[0]))
            out_raw.append(int(fields[1]))
        elif kind == "T":
            traced[int(fields[0])].append(int(fields[1]))
    if len(out_raw) != samples * design.out_elements:
        raise ToolchainError(f"the simulation gave {len(out_raw)} of {samples * design.out_elements} outputs",
                             "check the simulator's log")
    outputs = _to_values(out_raw, design.out_bits, design.out_signed).reshape(samples, design.out_elements)
    ends = [out_cycles[(n + 1) * design.out_elements - 1] for n in range(samples)]
    latency = ends[0] - first_in[0] + 1
    interval = float(ends[-1] - ends[-2]) if samples > 1 else float(latency)  # the last: steady state
    per_sample = None
    if trace:
        per_sample = [[] for _ in range(samples)]
        for stage in design.layers:
            values = _to_values(traced[stage.index], stage.bits, stage.signed).reshape(samples, stage.elements)
            for n in range(samples):
                per_sample[n].append((stage.index, values[n]))
    return SimulationResult(outputs, interval, latency, per_sample)


def simulate(design_dir: str | Path, design: RtlDesign | None, rows: np.ndarray, *, simulator: str = "iverilog",
             trace: bool = False, netlist: list[Path] | None = None, work_dir: Path | None = None,
             backpressure: bool = False, defines: tuple[str, ...] = ()) -> SimulationResult:
    """Run ``rows`` (``[N, in_elements]`` raw input integers) through the design in ``design_dir``
    (``design``: its :class:`RtlDesign`, read from its ``design.json`` when None), or through
    the ``netlist`` sources (a netlist of ``edgec_top`` plus the cell models it needs) with the
    same testbench. ``work_dir`` keeps the simulator's files (a temporary directory when None);
    ``defines`` are preprocessor macros for every source (e.g. ``NO_ICE40_DEFAULT_ASSIGNMENTS``,
    which yosys' iCE40 cell models need under iverilog)."""
    design_dir = Path(design_dir)
    design = design if design is not None else load_design(design_dir)
    rows = _check_rows(design, rows)
    if trace and netlist is not None:
        raise EdgecError("a netlist keeps only edgec_top's ports: it cannot be traced per layer",
                         "trace the RTL, or simulate the netlist without a trace")
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="edgec-sim-") as temp:
            return simulate(design_dir, design, rows, simulator=simulator, trace=trace, netlist=netlist,
                            work_dir=Path(temp), backpressure=backpressure, defines=defines)
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    samples = rows.shape[0]
    (work / "inputs.hex").write_text(hex_file([int(v) for v in rows.ravel()], design.in_bits), encoding="utf-8")
    for memory in design.memories:
        shutil.copyfile(design_dir / memory, work / memory)
    bound = (samples + 2) * sum(s.cycles + 16 for s in design.layers) * (4 if backpressure else 1) + 1000
    testbench = template_environment().get_template("tb/edgec_tb.v.j2").render(
        samples=samples, in_elements=design.in_elements, out_elements=design.out_elements, in_bits=design.in_bits,
        out_bits=design.out_bits, max_cycles=bound, backpressure=int(backpressure), log=LOG,
        stages=design.layers if trace else [], trace=trace)
    (work / TESTBENCH).write_text(testbench, encoding="utf-8")
    sources = [Path(p).resolve() for p in netlist] if netlist is not None else \
        [(design_dir / s).resolve() for s in design.sources]
    (work / LOG).unlink(missing_ok=True)
    _build_and_run(simulator, sources, work, defines)
    if not (work / LOG).is_file():
        raise ToolchainError(f"{simulator} wrote no simulation log", "check the simulator's installation")
    return _parse(design, (work / LOG).read_text(encoding="utf-8"), samples, trace, netlist is not None)
