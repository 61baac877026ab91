"""An FPGA project: plan, fold, generate the RTL, measure it, run the vendor-neutral flow.

:func:`compile_project` turns an integer graph into a project directory (written whole or
not at all, :mod:`edgec.project_dir`)::

    report.json     the manifest (keys below)      model.onnx, target.toml
    rtl/            the dataflow design: Verilog, ROM images, design.json
    board/          iCE40: the UART board top and the board's pin constraints (.pcf)
    <name>.bin      iCE40: the bitstream (yosys -> nextpnr-ice40 -> icepack)
    vivado/         AMD parts: build.tcl, and <name>.bit where Vivado ran
    build/          tool logs and netlists (build products: not kept on a recompile)

Steps: the planner (:mod:`.planner`), the lane planner (:mod:`.lanes`) for each layer's
packing on the target's DSP primitive, folding (:mod:`.folding`) to ``fps`` or ``max_dsp``,
the RTL (:mod:`.rtl`), a short simulation that measures cycles per inference, then synthesis:
on iCE40 yosys, nextpnr-ice40 (fmax from its own timing report) and icepack; on AMD parts
yosys' ``synth_xilinx`` (resources per layer and in total) and a Vivado script, run when
``vivado`` is on PATH and otherwise left for the user with one line saying so.

report.json, beyond the keys every backend writes (:mod:`edgec.backend`): ``resources``
{``lut``, ``ff``, ``dsp``, ``bram``, ``spram``} (the synthesis tool's own counts: nextpnr's
placement on iCE40, yosys on AMD parts), ``fmax_mhz`` (null where no timing was analysed),
``clock_mhz``, ``cycles_per_inference`` (measured in simulation: the steady-state interval
between inferences), ``latency_cycles``, ``inferences_per_second`` (at the clock, or at fmax
when that is lower), ``bitstream`` (a relative path, or null with ``bitstream_note`` saying
why), and per layer ``pe``, ``simd``, ``macs``, ``cycles`` and ``packing`` {``primitive``,
``scheme``, ``lanes``, ``macs_per_dsp``, ``dsps`` (multipliers the layer's core uses),
``description``, ``planned``: the lane planner's densest choice for the layer, which the
folding may not take when another packing meets the rate with fewer DSPs}, and for a layer
with delta-encoded weights ``delta`` (:func:`.delta_rtl.memory_bits`: the bits of its delta
and base ROMs against the weights stored plain and as int8, and ``decoder_resources``, yosys'
figures for its decoder module on AMD parts, null on iCE40, whose synthesis is flattened). The ``packing``
option is ``"auto"`` (packed cores where the planner packs: SDV lanes, the dual 8x8 mode, and
for a convolution of horizontal stride 1 also the row-packed convolution, :mod:`.conv_rows`,
the folding choosing whichever meets the goal with the fewest DSPs) or ``"none"`` (one
product per multiplier, for comparison).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec import progress, project_dir
from edgec.api import PROJECT_MODEL
from edgec.backend import MANIFEST
from edgec.backends.fpga import boards, conv_rows, delta_rtl, flow_ice40, flow_xilinx, rtl, simulate, vivado
from edgec.backends.fpga.folding import cycles_per_inference, fold, layer_cycles, layer_dsps
from edgec.backends.fpga.lanes import Packing, plan_packing
from edgec.backends.fpga.layers import Layer, MvuLayer
from edgec.backends.fpga.planner import plan_layers
from edgec.errors import EdgecError, ToolchainError
from edgec.target import PROJECT_FILE, Target, target_toml

RTL_DIR, BOARD_DIR, VIVADO_DIR, BUILD_DIR = "rtl", "board", "vivado", "build"
#: Samples of the cycle measurement: the interval between the second and third inference is the steady state.
MEASURE_SAMPLES = 3
VIVADO_TIMEOUT_S = 4 * 3600
#: ``packing``: "auto" realises the lane planner's packing where it has RTL, "none" the plain core.
PACKING_CHOICES = ("auto", "none")


def layer_packing(layer: Layer, target: Target, packing: str = "auto") -> Packing | None:
    """The packing the generated MVU's multiply-accumulate core realises for ``layer`` on the
    target's DSP: with ``packing`` ``"auto"``, the lane planner's densest scheme that has RTL
    (SDV lanes on DSP48E2/DSP48E1, for a convolution too, behind its sliding window; the dual
    8x8 mode on SB_MAC16), planned over the layer's whole vector (so it holds for every
    folding); None for a pool, for ``packing`` ``"none"`` (the plain core), or when the planner
    packs nothing."""
    if packing not in PACKING_CHOICES:
        raise EdgecError(f"unknown packing '{packing}'", f"use one of {', '.join(PACKING_CHOICES)}")
    if not isinstance(layer, MvuLayer) or packing == "none":
        return None
    realised = plan_packing(target.dsp.primitive, layer.weight_type, layer.input_type, kind="mvu",
                            accumulation=layer.vector_length)
    return None if realised.scheme == "none" else realised


def conv_row_packing(layer: Layer, target: Target, packing: str = "auto") -> Packing | None:
    """The row-packed convolution's packing (:mod:`.conv_rows`) of ``layer`` on the target's
    DSP: the convolution packing of one kernel row's taps, accumulated over the window's
    (kernel row, channel) pairs; None when ``layer`` is not such a convolution, ``packing`` is
    ``"none"``, the layer's weights are delta-encoded (the row-packed core has no decoder), or
    the primitive cannot hold a kernel row."""
    if packing == "none" or not conv_rows.row_packable(layer) or layer.delta is not None:
        return None
    kh, kw = layer.window.kernel
    row = plan_packing(target.dsp.primitive, layer.weight_type, layer.input_type, kind="conv", taps=kw,
                       accumulation=kh * layer.window.channels)
    return None if row.scheme == "none" else row


def layer_variants(layer: Layer, target: Target, packing: str = "auto") -> list[Layer]:
    """``layer`` as the folding may realise it: with the plain core, with :func:`layer_packing`
    where it packs, and for a convolution the row packing can take also with
    :func:`conv_row_packing`."""
    if not isinstance(layer, MvuLayer):
        return [layer]
    plain = dataclasses.replace(layer, packing=None)
    lanes, row = layer_packing(layer, target, packing), conv_row_packing(layer, target, packing)
    return [plain, *(dataclasses.replace(layer, packing=p) for p in (lanes, row) if p is not None)]


def _packing_entry(layer: Layer, target: Target) -> dict | None:
    """What the generated MVU realises (``layer.packing``, or one product per multiplier for the
    plain core), and beside it the lane planner's densest choice (``planned``)."""
    if not isinstance(layer, MvuLayer):
        return None
    planned = plan_packing(target.dsp.primitive, layer.weight_type, layer.input_type, kind="mvu",
                           accumulation=layer.vector_length)
    row = conv_row_packing(layer, target)
    if row is not None and row.macs_per_dsp > planned.macs_per_dsp:
        planned = row
    realised, dsps = layer.packing, layer_dsps(layer, _lanes)
    entry = {"primitive": target.dsp.primitive, "scheme": "none", "lanes": 1, "macs_per_dsp": 1, "dsps": dsps}
    if realised is not None:
        # Products per DSP per cycle at this folding: a row-packed DSP computes all of its
        # packing's products; lanes beyond the PEs of a group sit on zero weights.
        used = realised.macs_per_dsp if conv_rows.is_row_packed(layer) else round(layer.pe * layer.simd / dsps, 2)
        entry.update(scheme=realised.scheme, lanes=realised.lanes, macs_per_dsp=used,
                     description=realised.describe())
    entry["planned"] = {"scheme": planned.scheme, "lanes": planned.lanes, "macs_per_dsp": planned.macs_per_dsp,
                        "description": planned.describe()}
    return entry


def _lanes(layer: Layer) -> int:
    """Output channels one DSP serves in ``layer``'s multiply-accumulate core (1 unpacked, and
    in a row-packed convolution, whose DSPs pack one channel's taps and columns)."""
    return 1 if layer.packing is None or conv_rows.is_row_packed(layer) else layer.packing.lanes


def _layer_entries(layers: list[Layer], target: Target) -> list[dict]:
    entries = []
    for position, layer in enumerate(layers):
        entry = {"index": position, "name": layer.name, "op": layer.op, "output": layer.output,
                 "cycles": layer_cycles(layer), "packing": _packing_entry(layer, target)}
        if isinstance(layer, MvuLayer):
            entry.update(pe=layer.pe, simd=layer.simd, macs=layer.macs,
                         weights=layer.weight_type.name, inputs=layer.input_type.name,
                         outputs=layer.output_type.name)
            if layer.delta is not None:
                entry["delta"] = {**delta_rtl.memory_bits(layer), "decoder_resources": None}
        entries.append(entry)
    return entries


def _measure_cycles(design_dir: Path, design: rtl.RtlDesign, work_dir: Path) -> simulate.SimulationResult:
    """Simulate :data:`MEASURE_SAMPLES` inferences of an all-minimum input (any input takes the
    same number of cycles: the design has no data-dependent control)."""
    low = -(1 << (design.in_bits - 1)) if design.in_signed else 0
    rows = np.full((MEASURE_SAMPLES, design.in_elements), low, dtype=np.int64)
    return simulate.simulate(design_dir, design, rows, work_dir=work_dir)


def check_fits(resources: dict, target: Target) -> None:
    """An :class:`EdgecError` naming the first resource ``resources`` (synthesis' counts) needs
    more of than ``target`` has."""
    available = {"lut": target.logic.luts, "ff": target.logic.ffs, "dsp": target.dsp.count,
                 "bram": target.block_ram.count, "spram": target.large_ram.count if target.large_ram else 0}
    names = {"lut": "LUTs", "ff": "flip-flops", "dsp": f"{target.dsp.primitive} DSPs",
             "bram": f"{target.block_ram.primitive} block RAMs",
             "spram": f"{target.large_ram.primitive if target.large_ram else 'large'} RAMs"}
    for key, count in available.items():
        if resources[key] > count:
            raise EdgecError(f"the design does not fit {target.name}: it needs {resources[key]:g} {names[key]}, "
                             f"the device has {count:,}",
                             "fold it smaller (a lower --fps or --max-dsp), quantize to fewer bits (an 8-bit "
                             "output keeps 255 thresholds per channel in block RAM), or pick a larger target")


def _ice40_flow(staging: Path, design: rtl.RtlDesign, target: Target, name: str, board: str) -> dict:
    build, spec = staging / BUILD_DIR, boards.get_board(board)
    sources = [staging / RTL_DIR / s for s in design.sources]
    board_sources = boards.board_top_sources(staging / BOARD_DIR, board, design.in_bits, design.out_bits,
                                             design.out_signed, clock_hz=spec.clock_hz)
    pcf = boards.pcf_for(board)
    (staging / BOARD_DIR / f"{spec.name}.pcf").write_text(pcf)
    synthesis = flow_ice40.synthesize([*sources, *board_sources], "edgec_board_top", build, advance=progress.stage)
    check_fits(synthesis.resources, target)
    routed = flow_ice40.place_and_route(synthesis, pcf, build, target.device.clock_hz / 1e6,
                                        package=spec.package, device=spec.device, advance=progress.stage)
    bitstream = flow_ice40.pack(routed.asc, staging / f"{name}.bin", advance=progress.stage)
    used = {key: routed.utilisation[bel][0] for key, bel in (("dsp", "dsp"), ("bram", "bram"), ("spram", "spram"))}
    resources = {"lut": synthesis.resources["lut"], "ff": synthesis.resources["ff"], **used}
    return {"resources": resources, "fmax_mhz": round(routed.fmax_mhz, 2), "timing_met": routed.timing_met,
            "board": spec.name, "bitstream": bitstream.name, "bitstream_note": None}


def _xilinx_flow(staging: Path, design: rtl.RtlDesign, target: Target, name: str, layers: list[dict]) -> dict:
    progress.stage(f"synthesis estimate (yosys synth_xilinx, {target.device.family})")
    estimate = flow_xilinx.estimate([staging / RTL_DIR / s for s in design.sources], design.top,
                                    target.device.family, staging / BUILD_DIR)
    check_fits(estimate["total"], target)
    for entry, stage in zip(layers, design.layers):
        used = [estimate["instances"][i] for i in stage.instances if i in estimate["instances"]]
        entry["resources"] = {key: sum(u[key] for u in used) for key in flow_ice40.RESOURCE_KEYS}
        if "delta" in entry:  # the decoder is a module of its own inside the layer's MVU
            entry["delta"]["decoder_resources"] = estimate["modules"].get(f"edgec_l{stage.index}_dec")
    script_dir = staging / VIVADO_DIR
    script_dir.mkdir()
    sources = [f"../{RTL_DIR}/{s}" for s in design.sources]
    (script_dir / "build.tcl").write_text(vivado.vivado_tcl(sources, design.top, target.device.part,
                                                            target.device.clock_hz, name))
    for memory in design.memories:  # $readmemh reads them from the directory Vivado runs in
        shutil.copyfile(staging / RTL_DIR / memory, script_dir / memory)
    result = {"resources": estimate["total"], "fmax_mhz": None, "timing_met": None, "board": target.device.board}
    if not vivado.vivado_available():
        return {**result, "bitstream": None,
                "bitstream_note": f"Vivado is not on PATH: run 'vivado -mode batch -source build.tcl' in "
                                  f"{VIVADO_DIR}/ to build {name}.bit (the resources are yosys' estimate)"}
    progress.stage("Vivado implementation and bitstream")
    log = staging / BUILD_DIR / "vivado.log"
    try:
        run = subprocess.run(["vivado", "-mode", "batch", "-nojournal", "-log", str(log.resolve()),
                              "-source", "build.tcl"], cwd=script_dir, capture_output=True, text=True,
                             timeout=VIVADO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"Vivado did not finish within {VIVADO_TIMEOUT_S} s", f"see {log}") from None
    bit = script_dir / f"{name}.bit"
    if run.returncode != 0 or not bit.is_file():
        detail = next((line for line in (run.stdout + run.stderr).splitlines() if line.startswith("ERROR")),
                      f"exit status {run.returncode}")
        raise ToolchainError(f"Vivado failed: {detail}", f"see {log}")
    return {**result, "bitstream": f"{VIVADO_DIR}/{name}.bit", "bitstream_note": None}


def _synthesise(staging: Path, design: rtl.RtlDesign, target: Target, name: str, board: str | None,
                entries: list[dict], emit_only: bool) -> dict:
    """The synthesis flow's part of the manifest. When a tool fails, its logs are copied out of
    the staging directory (which is removed) and the error's hint names the copy."""
    if emit_only:
        return {"resources": None, "fmax_mhz": None, "timing_met": None, "board": board, "bitstream": None,
                "bitstream_note": "compiled with --emit-only: no synthesis"}
    try:
        if target.device.family == "ice40":
            return _ice40_flow(staging, design, target, name, board)
        return _xilinx_flow(staging, design, target, name, entries)
    except ToolchainError as error:
        build = staging / BUILD_DIR
        named = [path for path in {str(build), str(build.resolve())} if path in error.hint]
        if not named:  # e.g. a missing tool: no log to keep
            raise
        kept = Path(tempfile.mkdtemp(prefix=f"edgec-{name}-logs-"))
        shutil.copytree(build, kept, dirs_exist_ok=True)
        raise ToolchainError(error.problem, error.hint.replace(named[0], str(kept))) from None


def _throughput(manifest: dict, clock_hz: float) -> dict:
    clock_mhz = clock_hz / 1e6
    if manifest["fmax_mhz"] is not None:
        clock_mhz = min(clock_mhz, manifest["fmax_mhz"])
    return {"clock_mhz": round(clock_mhz, 2),
            "inferences_per_second": round(clock_mhz * 1e6 / manifest["cycles_per_inference"], 1)}


def _checked_board(target: Target, board: str | None, emit_only: bool) -> str | None:
    """The board the bitstream's pins and clock come from (iCE40: ``board`` or the target's;
    checked against the target's clock); ``--board`` on other families is an error."""
    if target.device.family != "ice40":
        if board is not None:
            raise EdgecError(f"--board applies to iCE40 targets; {target.name} builds edgec_top without a "
                             "board top level", "drop --board (constrain the pins in your own Vivado project)")
        return target.device.board
    board = board or target.device.board
    if board is None:
        if emit_only:
            return None
        raise EdgecError(f"target '{target.name}' names no board for the bitstream's pins",
                         f"pass --board ({', '.join(boards.BOARDS)})")
    spec = boards.get_board(board)
    if spec.clock_hz != target.device.clock_hz:
        raise EdgecError(f"board {spec.name}'s oscillator runs at {spec.clock_hz / 1e6:g} MHz, target "
                         f"{target.name} at {target.device.clock_hz / 1e6:g} MHz (the design has no PLL)",
                         f"set device.clock_hz = {spec.clock_hz} in the target file, or pick another board")
    return spec.name


def compile_project(model: ir.Model, target: Target, out_dir: Path, name: str, *, fps: float | None = None,
                    max_dsp: int | None = None, board: str | None = None, emit_only: bool = False,
                    packing: str = "auto") -> dict:
    """Write the FPGA project of ``model`` for ``target`` into ``out_dir``; returns its manifest.

    ``fps`` / ``max_dsp``: the folding's goal (:func:`.folding.fold`); ``board``: the iCE40
    board whose pins the bitstream uses (default: the target's); ``emit_only``: stop after the
    RTL and its cycle measurement (no synthesis); ``packing``: ``"auto"`` (packed DSP units where
    the lane planner packs, :func:`layer_packing`) or ``"none"`` (one product per multiplier).
    """
    board = _checked_board(target, board, emit_only)
    # A layer's packings depend on its types and shape only; the folding picks one of them.
    layers = fold(plan_layers(model), clock_hz=target.device.clock_hz, fps=fps, max_dsp=max_dsp,
                  macs_per_dsp=_lanes, variants=lambda layer: layer_variants(layer, target, packing))
    with tempfile.TemporaryDirectory(prefix="edgec-fpga-") as temp:
        progress.stage("dataflow RTL")
        design = rtl.generate_rtl(layers, Path(temp) / RTL_DIR, name=name)
        written = [f"{RTL_DIR}/{p.name}" for p in sorted((Path(temp) / RTL_DIR).iterdir())]
        if target.device.family == "ice40" and not emit_only:
            written += [f"{BOARD_DIR}/{f}" for f in (*boards.UART_SOURCES, "edgec_board_top.v", f"{board}.pcf")]
            written.append(f"{name}.bin")
        elif not emit_only:
            written += [f"{VIVADO_DIR}/{f}" for f in ("build.tcl", *design.memories, f"{name}.bit")]
        with project_dir.staged_project(Path(out_dir), [*written, MANIFEST, PROJECT_MODEL, PROJECT_FILE],
                                        build_dirs=(BUILD_DIR,)) as staging:
            shutil.copytree(Path(temp) / RTL_DIR, staging / RTL_DIR)
            progress.stage("measuring cycles per inference (iverilog)")
            measured = _measure_cycles(staging / RTL_DIR, design, staging / BUILD_DIR / "measure")
            entries = _layer_entries(layers, target)
            manifest = {"generator": "edgec", "backend": "fpga", "target": target.name, "model": name,
                        "input": {"name": model.graph.inputs[0].name, "elements": design.in_elements,
                                  "type": layers[0].input_type.name,
                                  "shape": [int(d) for d in model.graph.inputs[0].shape.numpy()]},
                        "output": {"name": layers[-1].output, "elements": design.out_elements,
                                   "type": layers[-1].output_type.name,
                                   "shape": [int(d) for d in model.graph.outputs[0].shape.numpy()]},
                        "layers": entries, "macs": sum(e.get("macs", 0) for e in entries),
                        "cycles_per_inference": int(round(measured.cycles_per_inference)),
                        "modelled_cycles_per_inference": cycles_per_inference(layers),
                        "latency_cycles": measured.latency_cycles}
            manifest.update(_synthesise(staging, design, target, name, board, entries, emit_only))
            manifest.update(_throughput(manifest, target.device.clock_hz))
            files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                           if p.is_file() and p.relative_to(staging).parts[0] != BUILD_DIR)
            manifest["files"] = sorted({*files, MANIFEST, PROJECT_MODEL, PROJECT_FILE})
            (staging / PROJECT_FILE).write_text(target_toml(target))
            ir.save(model, staging / PROJECT_MODEL)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
