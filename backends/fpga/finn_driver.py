"""The driver edgec runs inside FINN's environment: FINN's build steps and its numpy execution.

This file is run as a script by the FINN environment's Python (``scripts/setup-finn.sh``), never
imported by edgec: it imports only the standard library, numpy, qonnx and finn-plus, and talks
to edgec through files (:mod:`edgec.backends.fpga.finn_flow` is the other side; run it with ``python -P``, so that
this directory does not shadow packages)::

    python finn_driver.py build REQUEST.json      FINN's build steps on a QONNX model
    python finn_driver.py execute REQUEST.json    FINN's numpy execution of a built graph
    python finn_driver.py versions                finn-plus and qonnx versions, as JSON

A request is a JSON object (keys below); the driver writes its result as JSON to the request's
``result`` path and exits 0, also when a step failed (the result's ``error`` says which step
and why); it exits non-zero only when it could not write a result. Progress goes to stdout, one
line per step (``step I/N NAME``); FINN's own log to stderr.

``build`` keys: ``model`` (QONNX file), ``output_dir`` (FINN's output directory: reports,
intermediate models), ``build_dir`` (FINN_BUILD_DIR: generated code), ``fpga_part``,
``clock_ns``, ``target_fps`` or ``folding_config`` (either may be null), ``impl_style``
(``"rtl"``, ``"hls"`` or ``""`` for FINN's own choice), ``board`` and ``vendor_steps`` (true: go
on past ``step_hw_codegen`` with the steps that need AMD's tools). The result holds per step
its seconds and the graph's operator types, the final graph's path and per node its folding
attributes, and the path of the graph ``execute`` runs (see below).

``execute`` keys: ``model``, ``inputs`` (an .npy of integer rows, one per sample, in the
model's input element order) and ``outputs`` (the .npy to write, one row per sample).

Two things make FINN usable without AMD's tools: ``FINN_BUILD_DIR`` and ``FINN_SETTINGS`` are set
before finn is imported (no ``~/.finn`` is created), and ``finn.xsi.SimEngine`` is bound to None
when Vivado is absent: ``build_dataflow_steps`` imports that name for a type hint only, and its
lazy lookup would otherwise demand Vivado's simulator at import time (docs/finn-internals.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

#: The steps that follow step_hw_codegen in FINN's default build and the AMD tools they need.
VENDOR_STEPS = {
    "step_hw_ipgen": "Vitis HLS (vitis_hls) and Vivado (vivado), with XILINX_VIVADO set",
    "step_set_fifo_depths": "Vivado's simulator (XSI), with XILINX_VIVADO set",
    "step_create_stitched_ip": "Vivado (vivado)",
    "step_measure_rtlsim_performance": "Vivado's simulator (XSI)",
    "step_out_of_context_synthesis": "Vivado (vivado)",
    "step_synthesize_bitfile": "Vivado (vivado) and the board's Vivado board files",
    "step_make_driver": "the bitfile of step_synthesize_bitfile",
    "step_deployment_package": "the bitfile and driver",
}


def _prepare_environment(build_dir: str | None) -> None:
    """Settings FINN reads from the environment, set before it is imported."""
    if build_dir:
        Path(build_dir).mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(Path(build_dir).resolve())
        os.environ.setdefault("FINN_SETTINGS", str(Path(build_dir).resolve() / "finn-settings.yaml"))
    os.environ.setdefault("NUM_DEFAULT_WORKERS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import finn.xsi

    if "XILINX_VIVADO" not in os.environ:
        finn.xsi.SimEngine = None


def _node_summary(model) -> list[dict]:
    """Per node of ``model``: name, op type and its folding attributes (where it has them)."""
    from qonnx.custom_op.registry import getCustomOp

    nodes = []
    for node in model.graph.node:
        entry = {"name": node.name, "op_type": node.op_type}
        if node.domain.startswith("finn.custom_op.fpgadataflow"):
            op = getCustomOp(node)
            for attribute in ("PE", "SIMD", "MW", "MH", "inputDataType", "weightDataType", "outputDataType",
                              "accDataType", "numSteps", "ram_style", "mem_mode"):
                try:
                    value = op.get_nodeattr(attribute)
                except Exception:  # qonnx raises AttributeError, some ops their own errors, for an absent one
                    continue
                entry[attribute] = value.decode() if isinstance(value, bytes) else value
        nodes.append(entry)
    return nodes


def _finn_board(board: str | None) -> str | None:
    """FINN's name for ``board`` (edgec's ``PYNQ-Z2`` is FINN's ``Pynq-Z2``, ``KV260`` its
    ``KV260_SOM``); None when FINN knows no such board (only the bitfile step needs one)."""
    from finn.util.basic import pynq_part_map

    if board is None:
        return None
    folded = {name.casefold(): name for name in pynq_part_map}
    return folded.get(board.casefold()) or next(
        (name for key, name in folded.items() if key.startswith(board.casefold())), None)


def _config(request: dict, steps: list[str]):
    import finn.builder.build_dataflow_config as bc

    outputs = [bc.DataflowOutputType.ESTIMATE_REPORTS]
    if request.get("vendor_steps"):
        outputs += [bc.DataflowOutputType.STITCHED_IP, bc.DataflowOutputType.BITFILE,
                    bc.DataflowOutputType.PYNQ_DRIVER, bc.DataflowOutputType.DEPLOYMENT_PACKAGE]
    return bc.DataflowBuildConfig(
        output_dir=str(Path(request["output_dir"]).resolve()), synth_clk_period_ns=float(request["clock_ns"]),
        fpga_part=request["fpga_part"], board=_finn_board(request.get("board")), target_fps=request.get("target_fps"),
        folding_config_file=request.get("folding_config"), standalone_thresholds=True,
        generate_outputs=outputs, steps=steps, shell_flow_type=bc.ShellFlowType.VIVADO_ZYNQ,
        save_intermediate_models=True)


def _preferred_style(model, style: str):
    """Every HW node that may be RTL or HLS set to ``style`` before specialisation."""
    from qonnx.custom_op.registry import getCustomOp

    if not style:
        return model
    for node in model.graph.node:
        if node.domain == "finn.custom_op.fpgadataflow":
            getCustomOp(node).set_nodeattr("preferred_impl_style", style)
    return model


def build(request: dict) -> dict:
    """Run FINN's build steps (module docstring); the result, with ``error`` when a step failed."""
    _prepare_environment(request["build_dir"])
    import finn.builder.build_dataflow_config as bc
    import finn.builder.build_dataflow_steps as steps_module
    from qonnx.core.modelwrapper import ModelWrapper

    steps = list(bc.hw_codegen_dataflow_steps)
    if request.get("vendor_steps"):
        steps += [s for s in bc.default_build_dataflow_steps if s in VENDOR_STEPS]
    cfg = _config(request, steps)
    models_dir = Path(cfg.get_intermediate_models_directory())
    model = ModelWrapper(request["model"])
    result: dict = {"steps": [], "error": None, "execution_model": None, "versions": versions()}
    for number, name in enumerate(steps, 1):
        print(f"step {number}/{len(steps)} {name}", flush=True)
        start = time.monotonic()
        try:
            if name == "step_specialize_layers":
                model = _preferred_style(model, request.get("impl_style", ""))
            model = getattr(steps_module, name)(model, cfg)
        except Exception as error:  # FINN raises plain Exceptions as well as its own
            traceback.print_exc()
            result["error"] = {"step": name, "type": type(error).__name__,
                               "message": " ".join(str(error).split())[:600]}
            break
        path = models_dir / f"{name}.onnx"
        model.save(str(path))
        result["steps"].append({"name": name, "seconds": round(time.monotonic() - start, 3),
                                "nodes": [n.op_type for n in model.graph.node]})
        if name == "step_create_dataflow_partition":
            result["partition_model"] = _partition_path(model)
        result["model"] = str(path)
    result["nodes"] = _node_summary(model)
    result.update(_execution_graph(model, result, models_dir))
    return result


def _execution_graph(model, result: dict, models_dir: Path) -> dict:
    """Which graph ``execute`` runs: the last one built when all its layers are RTL (their
    Python models), else the dataflow partition before specialisation, whose generic HW layers
    (MVAU, Thresholding, Pool, ...) all execute in numpy."""
    from finn.util.fpgadataflow import is_hls_node

    hls = [n.name for n in model.graph.node if is_hls_node(n)]
    built = [s["name"] for s in result["steps"]]
    if not hls and result.get("model") and "step_specialize_layers" in built:
        return {"execution_model": result["model"], "execution_graph": built[-1]}
    partition = models_dir / "step_create_dataflow_partition.onnx"
    if partition.is_file():
        why = f"HLS layers ({', '.join(hls)}) run only compiled with Vitis HLS" if hls else "not specialised"
        return {"execution_model": str(partition), "execution_graph": "step_create_dataflow_partition",
                "execution_note": why}
    return {"execution_model": None, "execution_graph": None}


def _partition_path(model) -> str | None:
    """The dataflow partition's own model file, which the parent graph's node names."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if node.op_type == "StreamingDataflowPartition":
            return getCustomOp(node).get_nodeattr("model")
    return None


def execute(request: dict) -> dict:
    """FINN's numpy execution (``finn.core.onnx_exec.execute_onnx``) of the request's model on
    each input row. RTL layers run their Python model (exec_mode ``cppsim``, which for an RTL
    node is its numpy ``execute_node``); an HLS layer would need its C++ compiled with Vitis HLS'
    headers, so a graph holding one is refused in the result's ``error``."""
    _prepare_environment(None)
    import numpy as np
    from finn.core.onnx_exec import execute_onnx
    from finn.util.fpgadataflow import is_hls_node
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    model = ModelWrapper(request["model"])
    hls = [n.name for n in model.graph.node if is_hls_node(n)]
    if hls:
        return {"error": {"step": "execute", "type": "HlsLayer",
                          "message": f"HLS layers ({', '.join(hls)}) run only as C++ compiled with Vitis HLS"}}
    for node in model.graph.node:
        if node.domain.startswith("finn.custom_op.fpgadataflow"):
            getCustomOp(node).set_nodeattr("exec_mode", "cppsim")
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    shape = model.get_tensor_shape(name_in)
    rows = np.load(request["inputs"])
    outputs = []
    for row in rows:
        context = execute_onnx(model, {name_in: row.astype(np.float32).reshape(shape)})
        outputs.append(np.asarray(context[name_out]).reshape(-1))
    np.save(request["outputs"], np.rint(np.stack(outputs)).astype(np.int64))
    return {"error": None, "samples": int(len(rows))}


def versions() -> dict:
    from importlib.metadata import version

    return {"finn-plus": version("finn-plus"), "qonnx": version("qonnx"), "python": sys.version.split()[0]}


def main(argv: list[str]) -> int:
    if argv[1:] == ["versions"]:
        print(json.dumps(versions()))
        return 0
    if len(argv) != 3 or argv[1] not in ("build", "execute"):
        print(f"usage: {argv[0]} build|execute REQUEST.json | versions", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[2]).read_text())
    result = build(request) if argv[1] == "build" else execute(request)
    Path(request["result"]).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
