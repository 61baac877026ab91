"""Cortex-M backend: an integer graph becomes a self-contained C library, built and run on QEMU.

* :func:`compile_project` plans memory, emits the C project (library, Makefile, CMakeLists,
  QEMU harness, ``model.onnx`` and ``report.json``), builds the library with
  arm-none-eabi-gcc (unless ``emit_only``) and checks flash and RAM against the target's part.
* :func:`run_project` builds the harness if needed and runs int8 samples on the target's QEMU
  board (or on the host, under ASan/UBSan), returning outputs and instruction counts;
  :func:`first_difference` compares a per-layer trace with the integer reference.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec.api import PROJECT_MODEL, int8_output_names
from edgec.backends.cortex_m import emitter, project_dir, qemu, report, toolchain
from edgec.backends.cortex_m.layers import shape_of
from edgec.backends.cortex_m.network import build_network
from edgec.data import quantize_float
from edgec.errors import EdgecError, InputDataError
from edgec.passes.input_layout import int8_input
from edgec.passes.qparams import get_qparams
from edgec.reference import KERNELS, ReferenceExecutor
from edgec.reference.executor import node_attributes
from edgec.target import Target, project_target


def compile_project(model: ir.Model, target: Target, out_dir: Path, model_name: str = "model",
                    ignore_size_limits: bool = False, emit_only: bool = False, separate_io: bool = True) -> dict:
    """Emit, build and size-check the project for ``model``; returns the manifest (report.json).

    ``emit_only``: write the project without building it (no cross compiler needed; the
    report's flash, static RAM and stack are then ``null``). ``separate_io``: the C input and
    output never share arena bytes (see :mod:`backends.cortex_m.network`). Files a user added
    to an existing project in ``out_dir`` are kept (:mod:`backends.cortex_m.project_dir`).
    """
    if target.kind != "cortex-m":
        raise EdgecError(f"target '{target.name}' is a {target.kind} target", "pick a Cortex-M target")
    network = build_network(model, target.core.dsp, separate_io)
    files = emitter.render_sources(network, target, model_name)
    written = emitter.written_files(files)
    manifest = report.planned_report(network, target, model_name, written)
    with project_dir.staged_project(Path(out_dir), written) as staging:
        emitter.write_files(staging, files, model)
        if not emit_only:
            toolchain.make(staging)
            manifest = report.measured_report(manifest, staging)
        if not ignore_size_limits:
            report.check_limits(manifest, target)
        emitter.write_manifest(staging, manifest)
    return manifest


def load_project(out_dir: Path) -> tuple[dict, Target, ir.Model]:
    """Manifest, target and integer graph of a compiled project directory.

    A project compiled with ``emit_only`` is built and measured first (its report.json
    completed) when arm-none-eabi-gcc is installed; otherwise its report stays unmeasured.
    """
    manifest = emitter.read_manifest(Path(out_dir))
    if not manifest.get("built", True) and shutil.which(toolchain.CROSS_COMPILER):
        toolchain.make(Path(out_dir))
        manifest = report.measured_report(manifest, Path(out_dir))
        emitter.write_manifest(Path(out_dir), manifest)
    return manifest, project_target(out_dir, manifest["target"]), ir.load(Path(out_dir) / PROJECT_MODEL)


def executable_path(out_dir: Path, host: bool = False, variant: str = "") -> Path:
    """Where the Makefile puts the harness: ``build[-host][-variant]/`` (see Makefile.j2)."""
    build = ("build-host" if host else "build") + (f"-{variant}" if variant else "")
    return Path(out_dir) / build / ("edgec_host" if host else "edgec_app.elf")


def run_project(out_dir: Path, samples: np.ndarray, host: bool = False, variant: str = "") -> qemu.RunResult:
    """Build the harness (if needed) and run int8 ``samples`` (rows of the input size).

    ``variant``: ``""``, ``"trace"`` (per-layer output dump) or ``"profile"`` (per-layer counts).
    """
    out_dir = Path(out_dir).resolve()
    manifest = emitter.read_manifest(out_dir)
    toolchain.make(out_dir, "host" if host else "qemu", variant=variant)
    target = None if host else project_target(out_dir, manifest["target"])
    return qemu.run(executable_path(out_dir, host, variant), target, samples, math.prod(manifest["output"]["shape"]))


@dataclasses.dataclass(frozen=True)
class LayerMismatch:
    index: int
    name: str
    op: str
    differing: int
    elements: int


def first_difference(model: ir.Model, manifest: dict, sample: np.ndarray, trace: bytes) -> LayerMismatch | None:
    """The first layer whose traced output differs from the integer reference on ``sample``
    (an int8 row of the C input)."""
    executor = ReferenceExecutor(model)
    shape = shape_of(model.graph.inputs[0])
    reference = executor.run({executor.input_names[0]: np.asarray(sample, dtype=np.int8).reshape(shape)},
                             keep_intermediates=True)
    for index, data in qemu.parse_trace(trace):
        layer = manifest["layers"][index]
        expected = reference[layer["output"]].ravel()
        if not np.array_equal(data, expected):
            differing = int((data != expected).sum()) if data.size == expected.size else data.size
            return LayerMismatch(index, layer["name"], layer["op"], differing, expected.size)
    return None


def int8_inputs(model: ir.Model, samples: list[dict[str, np.ndarray]]) -> np.ndarray:
    """The C input (one int8 row per sample): int8 samples as they are, float samples quantized
    as the model's input Quantize does (an int8 graph input, a TFLite model's: with its own
    scale and zero point)."""
    graph_input = model.graph.inputs[0]
    qparams = get_qparams(int8_input(graph_input))
    rows = []
    for sample in samples:
        data = np.asarray(sample[graph_input.name])
        if data.dtype != np.int8:
            if qparams is None:
                raise InputDataError(f"input '{graph_input.name}' takes int8 data and records no scale to "
                                     f"quantize {data.dtype} data with", "pass int8 data")
            data = quantize_float(data, qparams)
        rows.append(data.ravel())
    return np.stack(rows)


def float_outputs(model: ir.Model, outputs: np.ndarray) -> np.ndarray:
    """Dequantize int8 C outputs with the model's output Dequantize (unchanged if there is none)."""
    producer = model.graph.outputs[0].producer()
    if producer is None or producer.op_type != "Dequantize":
        return outputs
    return KERNELS["Dequantize"](node_attributes(producer), "double", outputs)


def reference_outputs(model: ir.Model, inputs: np.ndarray) -> np.ndarray:
    """The integer reference's int8 outputs for int8 C input rows (the bit-exact oracle)."""
    executor = ReferenceExecutor(model)
    shape = shape_of(model.graph.inputs[0])
    name = int8_output_names(model)[0]
    return np.stack([executor.run({executor.input_names[0]: row.reshape(shape)}, keep_intermediates=True)[name].ravel()
                     for row in inputs])
