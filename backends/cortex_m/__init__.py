"""Cortex-M backend: an integer graph becomes a self-contained C library, built and run on QEMU.

* :func:`compile_project` plans memory, emits the C project (library, Makefile, CMakeLists,
  QEMU harness, ``model.onnx`` and ``report.json``), builds the library with
  arm-none-eabi-gcc and checks flash and RAM against the target's part.
* :func:`run_project` builds the harness if needed and runs int8 samples on the target's QEMU
  board (or on the host, under ASan/UBSan), returning outputs and instruction counts;
  :func:`first_difference` compares a per-layer trace with the integer reference.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec import __version__
from edgec.api import int8_output_names
from edgec.backends.cortex_m import emitter, qemu, toolchain
from edgec.backends.cortex_m.layers import shape_of
from edgec.backends.cortex_m.network import Network, build_network
from edgec.errors import EdgecError, SizeLimitError
from edgec.reference import KERNELS, ReferenceExecutor
from edgec.reference.executor import node_attributes
from edgec.target import Target, get_target


def _manifest(network: Network, target: Target, sizes: toolchain.Sizes, stack: int, model_name: str) -> dict:
    layers = []
    for index, layer in enumerate(network.layers):
        node = layer.node
        layers.append({
            "index": index, "name": node.name, "op": node.op_type, "output": node.outputs[0].name,
            "output_bytes": math.prod(shape_of(node.outputs[0])),
            "macs": emitter.layer_macs(layer), "weight_bytes": sum(a.values.nbytes for a in layer.arrays),
            "scratch_bytes": layer.scratch_bytes, "kernel": layer.call.split("(")[0] if layer.call else "alias",
            "live_bytes": network.live_bytes[index],
        })
    return {
        "generator": "edgec", "version": __version__, "model": model_name, "target": target.name,
        "part": target.part.name, "rounding": network.rounding,
        "input": {"shape": network.input.shape, "scale": network.input.qparams.scale,
                  "zero_point": network.input.qparams.zero_point, "name": network.input.value.name},
        "output": {"shape": network.output.shape, "scale": network.output.qparams.scale,
                   "zero_point": network.output.qparams.zero_point, "name": network.output.value.name},
        "macs": sum(layer["macs"] for layer in layers),
        "flash": {"code": sizes.code, "weights_and_parameters": sizes.model_constants,
                  "kernel_tables": sizes.kernel_constants, "data": sizes.data, "total": sizes.flash},
        "ram": {"arena": network.plan.size, "arena_live_bound": network.live_bound,
                "static_total": sizes.static_ram, "stack_bound": stack, "total": sizes.static_ram + stack},
        "notes": ["flash and static RAM: the library built with arm-none-eabi-gcc (harness excluded)",
                  "arena: every tensor (input and output included) and kernel scratch",
                  "stack_bound: deepest edgec_invoke call chain from -fcallgraph-info, C library calls excluded"],
        "layers": layers,
    }


def _check_limits(manifest: dict, target: Target) -> None:
    flash, ram = manifest["flash"]["total"], manifest["ram"]["total"]
    problems = []
    if flash > target.part.flash_bytes:
        problems.append(f"flash {flash:,} B > {target.part.flash_bytes:,} B")
    if ram > target.part.ram_bytes:
        problems.append(f"RAM {ram:,} B > {target.part.ram_bytes:,} B")
    if problems:
        raise SizeLimitError(f"the model does not fit {target.part.name} ({target.name}): {', '.join(problems)}",
                             "choose a larger target, shrink the model, or pass --ignore-size-limits")


def compile_project(model: ir.Model, target: Target, out_dir: Path, model_name: str = "model",
                    ignore_size_limits: bool = False) -> dict:
    """Emit, build and size-check the project for ``model``; returns the manifest (report.json)."""
    if target.kind != "cortex-m":
        raise EdgecError(f"target '{target.name}' is a {target.kind} target", "pick a Cortex-M target")
    network = build_network(model, target.core.dsp)
    files = emitter.render_sources(network, target, model_name)
    with emitter.staged_project(Path(out_dir)) as staging:
        emitter.write_files(staging, files, model)
        toolchain.make(staging)
        manifest = _manifest(network, target, toolchain.library_sizes(staging),
                             toolchain.stack_bound(staging, "edgec_invoke"), model_name)
        if not ignore_size_limits:
            _check_limits(manifest, target)
        emitter.write_manifest(staging, manifest)
    return manifest


def load_project(out_dir: Path) -> tuple[dict, Target, ir.Model]:
    """Manifest, target and integer graph of a compiled project directory."""
    manifest = emitter.read_manifest(Path(out_dir))
    return manifest, get_target(manifest["target"]), ir.load(Path(out_dir) / "model.onnx")


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
    target = None if host else get_target(manifest["target"])
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
    """The C input (one int8 row per sample): float samples through the model's input Quantize."""
    graph_input = model.graph.inputs[0]
    quantize = next((n for n in graph_input.consumers() if n.op_type == "Quantize"), None)
    rows = []
    for sample in samples:
        data = np.asarray(sample[graph_input.name])
        if data.dtype != np.int8:
            data = KERNELS["Quantize"](node_attributes(quantize), "double", data)
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
