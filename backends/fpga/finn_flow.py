"""The FINN flow (``edgec compile MODEL --target zcu104 --flow finn``): the plan built by FINN.

edgec's integer graph is planned as for the edgec flow (:mod:`.planner`), written as the QONNX
graph FINN builds from (:mod:`.finn_graph`: integer MatMuls and MultiThresholds, widths kept)
and handed to FINN's build steps, which run in FINN's own environment through
:mod:`.finn_driver` (a subprocess of that environment's Python, exchanging ONNX, JSON and .npy
files). The environment is found through ``EDGEC_FINN_PYTHON`` (its Python) or at
``.venv-finn`` beside edgec's own virtual environment; ``scripts/setup-finn.sh`` creates it.

A FINN project directory::

    report.json, model.onnx, target.toml      as every project (the manifest's keys below)
    finn/model_qonnx.onnx                     the graph handed to FINN
    finn/report/                              FINN's estimate reports (cycles, resources, folding)
    finn/intermediate_models/<step>.onnx      the graph after each build step
    finn/codegen/                             FINN_BUILD_DIR: the generated RTL/HLS per layer
    finn/build.log, finn/result.json          FINN's log; the driver's result

FINN runs every step up to ``step_hw_codegen`` in Python. The steps after it (IP generation,
FIFO sizing, stitched IP, synthesis, bitfile, driver) need AMD's tools and run only when
``vivado`` and ``vitis_hls`` are on PATH with ``XILINX_VIVADO`` set; otherwise the manifest's
``finn.vendor_steps`` names each step left and the tool it needs.

report.json, beyond the common keys: ``flow: "finn"``, ``finn`` {``versions``, ``steps``
(name, seconds), ``stopped_after``, ``vendor_steps``, ``execution_graph`` (the graph ``run``
executes), ``input_offset`` (subtracted from the raw input values FINN is fed:
:func:`.finn_graph.stream_offsets`), ``folding``}, ``resources`` {``lut``, ``dsp``, ``bram_18k``, ``uram``} and per
layer ``finn_nodes`` (FINN's own estimates, ``estimated: true``), ``cycles_per_inference``
(FINN's slowest layer), ``latency_cycles`` (its critical path) and ``inferences_per_second``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from edgec import progress, project_dir
from edgec.api import PROJECT_MODEL
from edgec.backend import MANIFEST, Project, RunResult
from edgec.backends.fpga.finn_driver import VENDOR_STEPS
from edgec.backends.fpga.finn_graph import finn_model, stream_offsets
from edgec.backends.fpga.layers import Layer, MvuLayer
from edgec.backends.fpga.planner import plan_layers
from edgec.errors import EdgecError, ToolchainError
from edgec.target import PROJECT_FILE, Target, target_toml

FINN_DIR = "finn"
FINN_MODEL = f"{FINN_DIR}/model_qonnx.onnx"
PYTHON_VARIABLE = "EDGEC_FINN_PYTHON"
SETUP_SCRIPT = "scripts/setup-finn.sh"
DRIVER = Path(__file__).with_name("finn_driver.py")
#: The prefix of the FPGA families FINN builds for (its parts are AMD's: xilinx-7series, ...).
FINN_FAMILY_PREFIX = "xilinx"


def finn_python() -> Path:
    """The FINN environment's Python: ``$EDGEC_FINN_PYTHON``, or ``.venv-finn`` beside edgec's
    virtual environment (or beside the repository's ``edgec/``); an error naming the setup script."""
    given = os.environ.get(PYTHON_VARIABLE)
    if given:
        if not os.access(given, os.X_OK):
            raise ToolchainError(f"{PYTHON_VARIABLE}={given} is not an executable Python",
                                 f"point it at the FINN environment's python, or unset it and run {SETUP_SCRIPT}")
        return Path(given)
    candidates = [Path(sys.prefix).parent / ".venv-finn", Path(__file__).resolve().parents[2] / ".venv-finn"]
    for venv in candidates:
        if (venv / "bin" / "python").is_file():
            return venv / "bin" / "python"
    raise ToolchainError(f"the FINN flow needs FINN's environment, and there is none at {candidates[0]}",
                         f"create it with {SETUP_SCRIPT} (or set {PYTHON_VARIABLE} to its python)")


def vendor_tools_missing() -> list[str]:
    """What of AMD's tools the steps after ``step_hw_codegen`` need is missing (empty: all there)."""
    missing = [tool for tool in ("vivado", "vitis_hls") if shutil.which(tool) is None]
    return missing + ([] if os.environ.get("XILINX_VIVADO") else ["XILINX_VIVADO"])


def run_driver(command: str, request: dict, work: Path, log_name: str) -> dict:
    """Run the driver's ``command`` on ``request`` in the FINN environment; its result. Each
    ``step`` line it prints becomes a progress stage; its log goes to ``work/log_name``."""
    python = finn_python()
    request = {**request, "result": str(work / f"{command}-result.json")}
    (work / f"{command}-request.json").write_text(json.dumps(request, indent=1) + "\n")
    log_path = work / log_name
    with log_path.open("w") as log:
        process = subprocess.Popen([str(python), "-P", str(DRIVER), command, str(work / f"{command}-request.json")],
                                   stdout=subprocess.PIPE, stderr=log, text=True, cwd=work)
        for line in process.stdout:
            log.write(line)
            if line.startswith("step "):
                progress.stage(f"FINN {line.split()[1]} {line.split()[2]}")
        code = process.wait()
    result_path = Path(request["result"])
    if code or not result_path.is_file():
        tail = " ".join(log_path.read_text().split()[-40:])
        raise ToolchainError(f"FINN's driver failed (exit {code}): {tail[-400:]}",
                             f"see {log_path}; rerun {SETUP_SCRIPT} if the FINN environment is broken")
    result = json.loads(result_path.read_text())
    result_path.unlink()
    return result


def _group_nodes(layers: list[Layer], nodes: list[dict]) -> list[list[dict]]:
    """FINN's nodes per plan layer, in order: a layer's nodes end with its thresholds (an MVU)
    or its pool."""
    groups, rest = [], list(nodes)
    for layer in layers:
        ends = ("Thresholding",) if isinstance(layer, MvuLayer) else ("Pool", "StreamingMaxPool")
        group = []
        while rest:
            group.append(rest.pop(0))
            if group[-1]["op_type"].startswith(ends):
                break
        groups.append(group)
    groups[-1].extend(rest)
    return groups


def _layer_entries(layers: list[Layer], result: dict, reports: Path) -> list[dict]:
    cycles = _read_json(reports / "estimate_layer_cycles.json")
    resources = _read_json(reports / "estimate_layer_resources.json")
    entries = []
    for layer, group in zip(layers, _group_nodes(layers, result["nodes"])):
        finn_nodes = []
        for node in group:
            used = resources.get(node["name"], {})
            finn_nodes.append({**node, "cycles": cycles.get(node["name"]),
                               "lut": used.get("LUT"), "dsp": used.get("DSP"),
                               "bram_18k": used.get("BRAM_18K"), "uram": used.get("URAM")})
        mvau = next((n for n in group if n["op_type"].startswith("MVAU")), {})
        entry = {"index": layer.index, "name": layer.name, "op": layer.op, "output": layer.output,
                 "pe": mvau.get("PE"), "simd": mvau.get("SIMD"),
                 "cycles": max((n["cycles"] or 0 for n in finn_nodes), default=0), "finn_nodes": finn_nodes}
        if isinstance(layer, MvuLayer):
            entry["macs"] = layer.macs
        entries.append(entry)
    return entries


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _relocate_paths(finn_dir: Path, old: str, new: str) -> None:
    """Point the absolute paths FINN recorded in its graphs' attributes (generated-code
    directories, the partition's model) from the staging directory ``old`` to ``new``."""
    for path in finn_dir.rglob("*.onnx"):
        model = onnx.load(str(path), load_external_data=False)
        changed = False
        for node in model.graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.STRING and old.encode() in attribute.s:
                    attribute.s = attribute.s.replace(old.encode(), new.encode())
                    changed = True
        if changed:
            onnx.save(model, str(path))


def _folding_request(fps: float | None, folding_config: str | None, finn_dir: Path) -> tuple[dict, str]:
    if fps is not None and folding_config is not None:
        raise EdgecError("--fps and --folding-config both fold the FINN build", "give one of them")
    if folding_config is None:
        return {"target_fps": fps, "folding_config": None}, ("none (PE = SIMD = 1)" if fps is None
                                                             else f"target_fps {fps:g}")
    try:
        folding = json.loads(Path(folding_config).read_text())
    except (OSError, ValueError) as error:
        raise EdgecError(f"cannot read the folding configuration '{folding_config}': {error}",
                         "give a FINN folding JSON (e.g. a build's finn/report/auto_folding_config.json)") from None
    if not isinstance(folding, dict):
        raise EdgecError(f"the folding configuration '{folding_config}' is not a JSON object",
                         'give FINN\'s form: {"Defaults": {}, "MVAU_rtl_0": {"PE": 4, "SIMD": 8}}')
    copy = finn_dir / "folding_config.json"
    copy.write_text(json.dumps(folding, indent=1) + "\n")
    return {"target_fps": None, "folding_config": str(copy)}, f"file {Path(folding_config).name}"


def check_finn_target(target: Target) -> None:
    if not target.device.family.startswith(FINN_FAMILY_PREFIX):
        raise EdgecError(f"FINN builds for AMD parts, and {target.name} is a {target.device.family} part",
                         "compile for it with the edgec flow (drop --flow finn), or pick an AMD target (zcu104)")


def compile_finn_project(model: ir.Model, target: Target, out_dir: Path, name: str, *, fps: float | None,
                         folding_config: str | None, emit_only: bool) -> dict:
    """Write the FINN project of ``model`` for ``target`` into ``out_dir`` (module docstring);
    its manifest. ``emit_only``: stop after ``step_hw_codegen`` even where AMD's tools are."""
    check_finn_target(target)
    layers = plan_layers(model)
    graph = finn_model(layers, name)
    finn_python()  # the missing environment is an error before anything is written
    missing = vendor_tools_missing()
    vendor = not emit_only and not missing
    with project_dir.staged_project(Path(out_dir), [MANIFEST, PROJECT_MODEL, PROJECT_FILE],
                                    build_dirs=(FINN_DIR,)) as staging:
        finn_dir = staging / FINN_DIR
        finn_dir.mkdir()
        onnx.save(graph, str(staging / FINN_MODEL))
        folding, folding_note = _folding_request(fps, folding_config, finn_dir)
        request = {"model": str(staging / FINN_MODEL), "output_dir": str(finn_dir),
                   "build_dir": str(finn_dir / "codegen"), "fpga_part": target.device.part,
                   "clock_ns": 1e9 / target.device.clock_hz, "impl_style": "rtl",
                   "board": target.device.board, "vendor_steps": vendor, **folding}
        progress.stage("FINN: starting its environment")
        result = run_driver("build", request, finn_dir, "build.log")
        (finn_dir / "result.json").write_text(json.dumps(result, indent=1) + "\n")
        if result["error"]:
            error = result["error"]
            raise EdgecError(f"FINN's {error['step']} failed: {error['type']}: {error['message']}",
                             "compile with the edgec flow (drop --flow finn) if FINN cannot take the model")
        reports = finn_dir / "report"
        performance = _read_json(reports / "estimate_network_performance.json")
        totals = _read_json(reports / "estimate_layer_resources.json").get("total", {})
        entries = _layer_entries(layers, result, reports)
        left = {} if vendor else {step: VENDOR_STEPS[step] for step in VENDOR_STEPS}
        manifest = {
            "generator": "edgec", "backend": "fpga", "flow": "finn", "target": target.name, "model": name,
            "input": {"name": model.graph.inputs[0].name, "elements": layers[0].input_elements,
                      "type": layers[0].input_type.name,
                      "shape": [int(d) for d in model.graph.inputs[0].shape.numpy()]},
            "output": {"name": layers[-1].output, "elements": layers[-1].output_elements,
                       "type": layers[-1].output_type.name,
                       "shape": [int(d) for d in model.graph.outputs[0].shape.numpy()]},
            "layers": entries, "macs": sum(e.get("macs", 0) for e in entries), "estimated": True,
            "resources": {"lut": totals.get("LUT"), "dsp": totals.get("DSP"), "bram_18k": totals.get("BRAM_18K"),
                          "uram": totals.get("URAM")},
            "clock_mhz": target.device.clock_hz / 1e6,
            "cycles_per_inference": performance.get("max_cycles"),
            "latency_cycles": performance.get("critical_path_cycles"),
            "inferences_per_second": performance.get("estimated_throughput_fps"),
            "finn": {"versions": result.get("versions"),
                     "steps": [{"name": s["name"], "seconds": s["seconds"]} for s in result["steps"]],
                     "stopped_after": result["steps"][-1]["name"], "vendor_steps": left,
                     "vendor_tools_missing": missing, "folding": folding_note,
                     "execution_graph": result.get("execution_graph"), "input_offset": stream_offsets(layers)[0],
                     "execution_note": result.get("execution_note"),
                     "execution_model": (Path(result["execution_model"]).relative_to(staging).as_posix()
                                         if result.get("execution_model") else None)}}
        _relocate_paths(finn_dir, str(staging), str(Path(os.path.abspath(out_dir))))
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        manifest["files"] = sorted({*files, MANIFEST, PROJECT_MODEL, PROJECT_FILE})
        (staging / PROJECT_FILE).write_text(target_toml(target))
        ir.save(model, staging / PROJECT_MODEL)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def finn_summary(manifest: dict, target: Target, out_dir: Path) -> list[str]:
    """The lines ``compile`` prints for a FINN project."""
    r, finn = manifest["resources"], manifest["finn"]
    lines = [f"wrote {out_dir}: {target.name} ({target.device.part}) through FINN, {len(manifest['layers'])} layers, "
             f"{manifest['macs']:,} MACs, folding {finn['folding']}",
             f"  FINN's estimates: {r['lut']:,.0f} LUT, {r['dsp']:g} DSP, {r['bram_18k']:g} BRAM_18K, "
             f"{r['uram']:g} URAM; {manifest['cycles_per_inference']:,} cycles per inference "
             f"({manifest['inferences_per_second']:,.0f} inferences/s at {manifest['clock_mhz']:g} MHz)",
             f"  FINN's reports: {out_dir}/{FINN_DIR}/report, generated RTL: {out_dir}/{FINN_DIR}/codegen"]
    if finn["vendor_steps"]:
        why = (f"missing here: {', '.join(finn['vendor_tools_missing'])}" if finn["vendor_tools_missing"]
               else "--emit-only")
        lines.append(f"  stopped after {finn['stopped_after']} ({why}); the remaining steps need AMD's tools:")
        lines += [f"    {step}: {tool}" for step, tool in finn["vendor_steps"].items()]
    lines.append(f"  check: edgec run {out_dir} --input x.npy --check (FINN's numpy execution)")
    return lines


def is_finn_project(directory: Path, manifest: dict) -> bool:
    model = manifest.get("finn", {}).get("execution_model")
    return manifest.get("flow") == "finn" and model is not None and (directory / model).is_file()


def run_finn_project(project: Project, rows: np.ndarray) -> RunResult:
    """FINN's numpy execution of the project's built graph (``finn.execution_graph``) on ``rows``."""
    finn = project.manifest["finn"]
    with tempfile.TemporaryDirectory(prefix="edgec-finn-run-") as temp:
        work = Path(temp)
        np.save(work / "inputs.npy", np.asarray(rows, dtype=np.int64) - finn["input_offset"])
        progress.stage("FINN: numpy execution")
        result = run_driver("execute", {"model": str(project.path / finn["execution_model"]),
                                        "inputs": str(work / "inputs.npy"), "outputs": str(work / "outputs.npy")},
                            work, "execute.log")
        if result["error"]:
            raise EdgecError(f"FINN cannot execute the project: {result['error']['message']}",
                             "compile the project again with --flow finn")
        outputs = np.load(work / "outputs.npy")
    summary = (f"{project.target.name}: FINN's numpy execution of its {finn['execution_graph']} graph, "
               f"{len(rows)} samples; FINN estimates {project.manifest['cycles_per_inference']:,} cycles per inference")
    return RunResult(outputs, {}, [], summary)
