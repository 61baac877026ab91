"""The open iCE40 flow: yosys synthesis, nextpnr-ice40 place and route, icepack bitstream.

* :func:`synthesize` runs ``synth_ice40 -dsp`` (multipliers onto SB_MAC16; the sources' own
  SB_MAC16 instances kept as they are written), writes the JSON
  netlist nextpnr reads and a post-synthesis Verilog netlist for simulation, and counts the
  cells from ``stat -json`` (yosys 0.23 has it): ``lut`` = SB_LUT4, ``ff`` = every SB_DFF*
  flip-flop, ``dsp`` = SB_MAC16, ``bram`` = SB_RAM40_4K (and its NR/NW variants), ``spram`` =
  SB_SPRAM256KA. SB_CARRY cells are counted in ``cells`` but not as LUTs (they sit beside the
  LUT in a logic cell).
* :func:`place_and_route` runs nextpnr-ice40 with the target clock as ``--freq`` and takes fmax
  and utilisation from its ``--report`` JSON (nextpnr 0.4): fmax is the slowest clock's
  achieved frequency; a design slower than the clock is placed and routed anyway
  (``--timing-allow-fail``) and comes back with ``timing_met`` False. It also writes the
  routed netlist as Verilog (``<top>_routed.v``, the top module keeps its name) for
  simulation, after :func:`repair_routed_json` has put back what nextpnr's JSON leaves
  implicit.
* :func:`pack` runs icepack (``.asc`` -> ``.bin``).
* :func:`netlist_simulation_sources` lists what a simulator needs besides the testbench:
  the netlist, yosys' own iCE40 cell models (``<datdir>/ice40/cells_sim.v``) and, for a routed
  netlist, edgec's models of the two cells nextpnr renames and of its plain pads
  (``templates/board/``). Compile
  with every macro of :data:`SIMULATION_DEFINES` defined (iverilog does not take the port
  default values cells_sim.v otherwise declares). Both the post-synthesis and the routed
  netlist simulate bit for bit like the RTL (the tests check a toy, a W4A4 MLP and a CNN).

Every step takes an ``advance(stage)`` callback, called once as it starts. A tool that is
missing is a :class:`ToolchainError` naming its Debian package; a tool that fails is one
quoting its first error line and naming its log.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from edgec.errors import ToolchainError

#: The Debian package of each tool of the flow.
PACKAGES = {"yosys": "yosys", "nextpnr-ice40": "nextpnr-ice40", "icepack": "fpga-icestorm",
            "iverilog": "iverilog", "vvp": "iverilog", "verilator": "verilator"}
SIMULATION_DEFINES = ("NO_ICE40_DEFAULT_ASSIGNMENTS",)
ROUTED_CELL_MODELS = Path(__file__).parent / "templates" / "board" / "edgec_ice40_routed_cells.v"
RESOURCE_KEYS = ("lut", "ff", "dsp", "bram", "spram")
#: nextpnr's bel types, as its report names them, for the utilisation of a routed design.
BELS = {"logic_cells": "ICESTORM_LC", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
        "io": "SB_IO", "global_buffers": "SB_GB"}
TIMEOUT_S = 3600
#: The cell type that SB_MAC16 instances of the sources carry while yosys maps multipliers.
KEPT_MAC = "edgec_kept_SB_MAC16"
#: A logic cell's place as nextpnr-ice40 names it: tile X, Y and cell 0..7 in the tile.
LOGIC_CELL_BEL = re.compile(r"X(\d+)/Y(\d+)/lc([0-7])")
#: The I/O cell that stands in for a plain (unregistered) SB_IO pad in a simulated routed
#: netlist (``templates/board/edgec_ice40_routed_cells.v``), and the pins such a pad uses.
PLAIN_PAD = "edgec_ice40_pad"
PLAIN_PAD_PINS = {"PACKAGE_PIN", "D_IN_0", "D_OUT_0"}

Advance = Callable[[str], None] | None


@dataclasses.dataclass(frozen=True)
class Synthesis:
    """What synthesis wrote (``json`` for nextpnr, ``netlist`` in Verilog) and what it used."""

    top: str
    json: Path
    netlist: Path
    log: Path
    cells: dict[str, int]
    resources: dict[str, int]


@dataclasses.dataclass(frozen=True)
class PlaceRoute:
    """A placed and routed design: the ``.asc`` to pack, fmax, and nextpnr's utilisation
    as ``{name: (used, available)}`` over :data:`BELS`."""

    asc: Path
    report: Path
    log: Path
    netlist: Path
    clock_mhz: float
    fmax_mhz: float
    utilisation: dict[str, tuple[int, int]]

    @property
    def timing_met(self) -> bool:
        return self.fmax_mhz >= self.clock_mhz


def require(tool: str) -> str:
    """The path of ``tool`` on PATH, or a :class:`ToolchainError` naming its Debian package."""
    path = shutil.which(tool)
    if path is None:
        package = PACKAGES.get(tool, tool)
        raise ToolchainError(f"{tool} is not installed", f"sudo apt-get install {package}")
    return path


def _run(command: list[str], log: Path, what: str, timeout: int = TIMEOUT_S) -> None:
    """Run ``command``; on failure a :class:`ToolchainError` quoting its first error line."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=log.parent)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what} did not finish within {timeout} s", f"see {log}") from None
    if result.returncode != 0:
        text = (log.read_text(errors="replace") if log.exists() else "") + result.stdout + result.stderr
        lines = [line.strip() for line in text.splitlines()
                 if "ERROR" in line or line.lstrip().lower().startswith("error")]
        detail = lines[0] if lines else (text.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise ToolchainError(f"{what} failed: {detail}", f"see the whole log in {log}")


def _quoted(path: Path) -> str:
    """``path`` made absolute for a yosys script, which splits its arguments at white space."""
    text = str(Path(path).resolve())
    if any(c.isspace() for c in text):
        raise ToolchainError(f"yosys cannot take the path '{text}' (it contains white space)",
                             "use a work directory and sources without spaces in their paths")
    return text


def cell_resources(cells: dict[str, int]) -> dict[str, int]:
    """iCE40 cell counts (by type, as yosys names them) -> ``lut, ff, dsp, bram, spram``."""
    return {"lut": cells.get("SB_LUT4", 0),
            "ff": sum(n for name, n in cells.items() if name.startswith("SB_DFF")),
            "dsp": cells.get("SB_MAC16", 0),
            "bram": sum(n for name, n in cells.items() if name.startswith("SB_RAM40_4K")),
            "spram": cells.get("SB_SPRAM256KA", 0)}


def synthesize(sources: Iterable[Path], top: str, work_dir: Path, advance: Advance = None) -> Synthesis:
    """Synthesise ``sources`` (Verilog/SystemVerilog) for iCE40 with ``top`` as top level, in ``work_dir``.

    SB_MAC16 cells the sources instantiate themselves (the packed dual 8x8 MACs) are hidden
    from yosys' DSP packer under the type :data:`KEPT_MAC` and given their type back after
    synthesis: yosys 0.23's ``ice40_dsp`` matches every SB_MAC16, not only the multipliers
    it maps, and rewrites each one as a 16x16 multiplier (MODE_8x8, the registers and the
    output selects reset), a wrong netlist and bitstream (seen on the W4A4 CNN of the tests).
    """
    require("yosys")
    if advance:
        advance("synthesis")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    json_path, netlist, stat = work_dir / f"{top}.json", work_dir / f"{top}_synth.v", work_dir / "synth_stat.json"
    script = work_dir / "synth.ys"
    script.write_text("\n".join([
        "# generated by edgec: iCE40 synthesis",
        "read_verilog -sv " + " ".join(_quoted(s) for s in sources),
        f"synth_ice40 -dsp -top {top} -run :flatten",
        f"copy SB_MAC16 {KEPT_MAC}",
        f"chtype -map SB_MAC16 {KEPT_MAC}",
        f"synth_ice40 -dsp -top {top} -run flatten:",
        f"chtype -map {KEPT_MAC} SB_MAC16",
        f"delete ={KEPT_MAC}",
        f"write_json {_quoted(json_path)}",
        f"tee -q -o {_quoted(stat)} stat -json",
        f"write_verilog -noattr {_quoted(netlist)}",
        "",
    ]))
    log = work_dir / "synth.log"
    _run(["yosys", "-q", "-l", str(log), "-s", str(script)], log, "yosys synthesis")
    cells = dict(json.loads(stat.read_text())["design"].get("num_cells_by_type", {}))
    return Synthesis(top=top, json=json_path, netlist=netlist, log=log, cells=cells, resources=cell_resources(cells))


def parse_report(report: dict) -> tuple[float, dict[str, tuple[int, int]]]:
    """fmax in MHz (the slowest clock's) and the utilisation of a nextpnr ``--report`` JSON."""
    clocks = report.get("fmax", {})
    if not clocks:
        raise ToolchainError("nextpnr found no clock in the design", "give the design a clock input driving its registers")
    fmax = min(float(clock["achieved"]) for clock in clocks.values())
    used = report.get("utilization", {})
    utilisation = {name: (int(used.get(bel, {}).get("used", 0)), int(used.get(bel, {}).get("available", 0)))
                   for name, bel in BELS.items()}
    return fmax, utilisation


def place_and_route(synthesis: Synthesis, pcf: str | None, work_dir: Path, clock_mhz: float, package: str = "sg48",
                    device: str = "up5k", seed: int = 1, advance: Advance = None) -> PlaceRoute:
    """Place and route ``synthesis`` on the iCE40 ``device`` in ``package`` at ``clock_mhz``.

    ``pcf`` is the text of the pin constraint file; None lets nextpnr place the I/O itself
    (for a design that is simulated, not put on a board). The seed is fixed, so a rerun
    gives the same placement.
    """
    require("nextpnr-ice40")
    require("yosys")
    if advance:
        advance("place and route")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    asc, report, log = work_dir / f"{synthesis.top}.asc", work_dir / "pnr_report.json", work_dir / "pnr.log"
    routed_json = work_dir / "routed.json"
    command = ["nextpnr-ice40", f"--{device}", "--package", package, "--json", str(synthesis.json.resolve()),
               "--freq", f"{clock_mhz:g}", "--timing-allow-fail", "--seed", str(seed), "--asc", str(asc.resolve()),
               "--report", str(report.resolve()), "--write", str(routed_json.resolve()), "-q", "-l", str(log.resolve())]
    if pcf is None:
        command.append("--pcf-allow-unconstrained")
    else:
        pcf_path = work_dir / f"{synthesis.top}.pcf"
        pcf_path.write_text(pcf)
        command += ["--pcf", str(pcf_path.resolve())]
    _run(command, log, "nextpnr-ice40 place and route")
    fmax, utilisation = parse_report(json.loads(report.read_text()))
    netlist = work_dir / f"{synthesis.top}_routed.v"
    simulated_json = work_dir / "routed_sim.json"
    routed = json.loads(routed_json.read_text())
    repair_routed_json(routed)
    simulated_json.write_text(json.dumps(routed))
    convert_log = work_dir / "routed_netlist.log"
    _run(["yosys", "-q", "-l", str(convert_log), "-p",
          f"read_json {_quoted(simulated_json)}; rename top {synthesis.top}; write_verilog -noattr {_quoted(netlist)}"],
         convert_log, "yosys (routed netlist to Verilog)")
    return PlaceRoute(asc=asc, report=report, log=log, netlist=netlist, clock_mhz=clock_mhz, fmax_mhz=fmax,
                      utilisation=utilisation)


def _number(value) -> int:
    """A cell parameter as nextpnr's JSON writes it (a string of binary digits, or an int)."""
    return value if isinstance(value, int) else int(str(value).replace("x", "0"), 2)


def _is_plain_pad(cell: dict) -> bool:
    """An SB_IO that is a plain input (PIN_TYPE 000001) or plain output (011001): no
    registers, enables or DDR, only the pins of :data:`PLAIN_PAD_PINS` connected."""
    used = {pin for pin, bits in cell.get("connections", {}).items() if bits}
    pin_type = _number(cell.get("parameters", {}).get("PIN_TYPE", 0)) & 0b111111
    return cell["type"] == "SB_IO" and used <= PLAIN_PAD_PINS and pin_type in (0b000001, 0b011001)


def repair_routed_json(routed: dict) -> int:
    """Make nextpnr-ice40's routed JSON netlist (its ``--write``) say what the bitstream does,
    in place, for simulation with yosys' cell models; returns the number of carry inputs connected.

    Three repairs (without the first the toy of the tests reads x, without the second the
    W4A4 MLP does; the third keeps undefined RAM bits from reaching a register as x):

    * Plain pads. The plain I/O pads nextpnr puts on the top's ports become
      :data:`PLAIN_PAD` cells (pin and fabric joined by continuous assignments): yosys'
      SB_IO model drives its pin from an ``always @*`` block, which misses the values set
      at time 0, so a pad whose value never changes afterwards (a high output bit of small
      values, an input bit that stays 0) reads x for the whole simulation.
    * Carry inputs (implicit in the JSON). A logic cell's carry input is hard-wired to the
      carry output of the cell below it (cell ``lc<i-1>`` of its tile, or ``lc7`` of the
      tile below for ``lc0``). Where nextpnr splits a carry chain or feeds a carry out into
      a LUT, it writes that wire only as the ``I3`` input of the cell above and leaves the
      cell's ``CIN`` unconnected, though the cell passes the carry on (``I1`` tied high:
      ``COUT = CIN``); yosys' ICESTORM_LC model then gives x on ``COUT``. Every cell with
      the carry enabled, a carry input that is neither constant (``CIN_CONST``) nor
      connected, and a connected ``COUT`` gets the carry output of the cell below it as
      ``CIN``, when that cell has one.
    * RAM contents (implicit in the JSON). The ``INIT_*`` bits that synthesis leaves
      undefined (x: words the design writes before it reads, bits of a word it never reads)
      are 0 in the bitstream (nextpnr writes the defined 1 bits alone), and are made 0 here.
    """
    connected = 0
    for module in routed.get("modules", {}).values():
        cells = module.get("cells", {})
        by_bel = {cell.get("attributes", {}).get("NEXTPNR_BEL"): cell for cell in cells.values()}
        for cell in cells.values():
            parameters, connections = cell.get("parameters", {}), cell.get("connections", {})
            if _is_plain_pad(cell):
                cell["type"] = PLAIN_PAD
                cell["parameters"] = {"PIN_TYPE": parameters["PIN_TYPE"]}
            if cell["type"] == "ICESTORM_RAM":
                for name, value in parameters.items():
                    if name.startswith("INIT_") and isinstance(value, str):
                        parameters[name] = value.replace("x", "0")
            hidden_carry_in = (cell["type"] == "ICESTORM_LC" and _number(parameters.get("CARRY_ENABLE", 0))
                               and not _number(parameters.get("CIN_CONST", 0)) and not connections.get("CIN"))
            if not hidden_carry_in or not connections.get("COUT"):
                continue
            place = LOGIC_CELL_BEL.fullmatch(cell.get("attributes", {}).get("NEXTPNR_BEL", ""))
            if place is None:
                continue
            x, y, index = (int(v) for v in place.groups())
            below = by_bel.get(f"X{x}/Y{y}/lc{index - 1}" if index else f"X{x}/Y{y - 1}/lc7")
            if below is not None and below.get("connections", {}).get("COUT"):
                connections["CIN"] = list(below["connections"]["COUT"])
                connected += 1
    return connected


def pack(asc: Path, out_bin: Path, advance: Advance = None) -> Path:
    """Pack the routed ``asc`` into the bitstream ``out_bin`` (icepack); returns ``out_bin``."""
    require("icepack")
    if advance:
        advance("bitstream")
    out_bin = Path(out_bin)
    out_bin.parent.mkdir(parents=True, exist_ok=True)
    log = Path(asc).parent / "icepack.log"  # beside the other tools' logs
    try:
        result = subprocess.run(["icepack", str(asc), str(out_bin)], capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"icepack did not finish within {TIMEOUT_S} s", f"check {asc}") from None
    if result.returncode != 0:
        log.write_text(result.stdout + result.stderr)
        detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[0]
        raise ToolchainError(f"icepack failed: {detail}", f"see {log}")
    return out_bin


def yosys_datdir() -> Path:
    """yosys' data directory (``yosys-config --datdir``, else ``share/yosys`` beside the binary)."""
    config = shutil.which("yosys-config")
    if config is not None:
        result = subprocess.run([config, "--datdir"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return Path(require("yosys")).resolve().parent.parent / "share" / "yosys"


def netlist_simulation_sources(netlist: Path) -> list[Path]:
    """The files that simulate ``netlist`` (post-synthesis or routed): the netlist, yosys'
    iCE40 cell models and edgec's models of nextpnr's renamed cells (compile with
    :data:`SIMULATION_DEFINES`)."""
    models = yosys_datdir() / "ice40" / "cells_sim.v"
    if not models.exists():
        raise ToolchainError(f"yosys' iCE40 cell models are missing ({models.name} not in {models.parent})",
                             "sudo apt-get install yosys")
    return [Path(netlist), models, ROUTED_CELL_MODELS]
