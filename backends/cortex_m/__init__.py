"""Cortex-M backend: an integer graph becomes a self-contained C library, built and run on QEMU.

:class:`CortexMBackend` is the backend contract (:class:`edgec.backend.Backend`) over the
module functions:

* :func:`check_model` names the first node without a C kernel, or whose values int8 storage
  cannot hold; :meth:`CortexMBackend.check` adds the core's width rules
  (:func:`edgec.widths.check_widths`: the C kernels realise widths through clamps alone).
* :func:`compile_project` plans memory, emits the C project (library, Makefile, CMakeLists,
  QEMU harness, ``model.onnx`` and ``report.json``), builds the library with
  arm-none-eabi-gcc (unless ``emit_only``) and checks flash and RAM against the target's part.
* :func:`run_project` builds the harness if needed and runs int8 samples on the target's QEMU
  board (or on the host, under ASan/UBSan), returning outputs and instruction counts.
* :mod:`backends.cortex_m.profile` measures and estimates per-layer costs (loaded only when
  profiling: it needs capstone and pyelftools).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec import project_dir
from edgec.api import PROJECT_MODEL
from edgec.backend import Backend, Project, RunResult, dequantized_outputs, edge_nodes, int8_input_rows
from edgec.backends.cortex_m import emitter, qemu, report, toolchain
from edgec.backends.cortex_m.layers import KERNEL_OPS
from edgec.backends.cortex_m.network import build_network
from edgec.backends.cortex_m.packing import unsupported_width
from edgec.backends.cortex_m.s16_layers import S16_OPS, s16_unsupported, touches_int16
from edgec.control_flow import all_nodes, is_branching, path_words
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.target import Target, project_target
from edgec.trace_compare import reference_outputs, taken_paths
from edgec.widths import check_widths

#: The C input rows and dequantized outputs are the core's int8 conversions; the reference
#: outputs those rows must give, the core's oracle (:mod:`edgec.trace_compare`).
int8_inputs = int8_input_rows
float_outputs = dequantized_outputs
__all__ = ["CortexMBackend", "check_model", "compile_project", "executable_path", "float_outputs", "int8_inputs",
           "load_project", "reference_outputs", "run_project"]


def check_model(model: ir.Model) -> None:
    """Raise :class:`UnsupportedModelError` for the first node the backend cannot take: an
    operator without a C kernel (for int16 activations, without an int16 one), or a computed
    value whose type int8 storage cannot hold. Weights may have any type of 2 to 8 bits in int8
    storage, biases int32 (int64 in the 16x8 scheme)."""
    graph = model.graph
    edges = edge_nodes(model)
    for node in all_nodes(graph):
        if is_branching(node):  # a branch of edgec_invoke (backends/cortex_m/branching.py)
            continue
        if node.op_type not in KERNEL_OPS and node not in edges:  # Quantize/Dequantize only at the edges
            raise UnsupportedModelError(f"the Cortex-M backend has no kernel for {node.op_type} (node '{node.name}')",
                                        "Quantize/Dequantize are supported only at the model's input and output")
        if touches_int16(node) and node.op_type not in S16_OPS:
            raise s16_unsupported(node)
        problem = unsupported_width(node)
        if problem is not None:
            raise UnsupportedModelError(problem, "quantize activations and weights to 2 to 8 bits (biases int32)")


def compile_project(model: ir.Model, target: Target, out_dir: Path, model_name: str = "model",
                    ignore_size_limits: bool = False, emit_only: bool = False, separate_io: bool = True,
                    prefix: str = emitter.DEFAULT_PREFIX) -> dict:
    """Emit, build and size-check the project for ``model``; returns the manifest (report.json).

    ``emit_only``: write the project without building it (no cross compiler needed; the
    report's flash, static RAM and stack are then ``null``). ``separate_io``: no C input
    shares arena bytes with an output (see :mod:`backends.cortex_m.network`). ``prefix``
    starts every name of the generated interface (:func:`emitter.api_names`: ``kws_invoke``,
    ``include/kws_model.h``, ...), so several models link into one firmware, sharing the
    kernels. Files a user added to an existing project in ``out_dir`` are kept
    (:mod:`edgec.project_dir`).
    """
    if target.kind != "cortex-m":
        raise EdgecError(f"target '{target.name}' is a {target.kind} target", "pick a Cortex-M target")
    api = emitter.api_names(prefix)
    network = build_network(model, target.core.dsp, separate_io, "mve" in target.core.features)
    files = emitter.render_sources(network, target, model_name, prefix)
    written = emitter.written_files(files)
    manifest = report.planned_report(network, target, model_name, written, api)
    with project_dir.staged_project(Path(out_dir), written, emitter.BUILD_DIRS) as staging:
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
    """Build the harness (if needed) and run int8 ``samples`` (rows of the inputs, concatenated);
    the outputs are rows of the outputs, concatenated.

    ``variant``: ``""``, ``"trace"`` (per-layer output dump) or ``"profile"`` (per-layer counts).
    """
    out_dir = Path(out_dir).resolve()
    manifest = emitter.read_manifest(out_dir)
    toolchain.make(out_dir, "host" if host else "qemu", variant=variant)
    target = None if host else project_target(out_dir, manifest["target"])
    return qemu.run(executable_path(out_dir, host, variant), target, samples, qemu.row_layout(manifest["inputs"]),
                    qemu.row_layout(manifest["outputs"]))


class CortexMBackend(Backend):
    """The backend contract for ``cortex-m`` targets (see the module docstring)."""

    kind = "cortex-m"
    name = "Cortex-M"
    options = {"ignore_size_limits": False, "emit_only": False, "separate_io": True, "prefix": emitter.DEFAULT_PREFIX}
    branches = True
    run_variants = {"host": "the host (ASan/UBSan)"}

    def check(self, model: ir.Model, target: Target) -> None:
        check_model(model)
        check_widths(model)

    def compile(self, model: ir.Model, target: Target, out_dir: Path, *, name: str, **options) -> dict:
        return compile_project(model, target, out_dir, name, **options)

    def compile_summary(self, manifest: dict, target: Target, out_dir: Path) -> list[str]:
        flash, ram = manifest["flash"], manifest["ram"]
        inputs = manifest["inputs"]
        shapes = "; ".join(f"{b['layout'] or 'row-major'} {b['shape']}" for b in inputs)
        lines = [f"wrote {out_dir}: {target.name} ({target.part.name}), {len(manifest['layers'])} layers, "
                 f"{manifest['macs']:,} MACs, input{'s' if len(inputs) > 1 else ''} {shapes}; "
                 f"API {manifest['api']['header']}"]
        if manifest["built"]:
            return [*lines,
                    f"  flash {flash['total']:,} B (weights and parameters {flash['weights_and_parameters']:,}, "
                    f"code {flash['code']:,})   RAM {ram['total']:,} B (arena {ram['arena']:,}, "
                    f"stack {ram['stack_bound']:,})",
                    f"  build: make -C {out_dir}   run on QEMU: edgec run {out_dir} --input "
                    f"{'x.npz (one array per input name)' if len(inputs) > 1 else 'x.npy'}"]
        return [*lines,
                f"  not built: weights {flash['weights']:,} B, arena {ram['arena']:,} B; flash and stack not measured",
                f"  build: add {out_dir}/CMakeLists.txt or the sources in {out_dir}/src to your project "
                f"(or make -C {out_dir})"]

    def is_project(self, directory: Path) -> bool:
        return project_dir.is_edgec_project(directory) and (directory / PROJECT_MODEL).is_file()

    def load_project(self, directory: Path) -> Project:
        manifest, target, model = load_project(directory)
        return Project(Path(directory).resolve(), manifest, target, model)

    def run(self, project: Project, rows: np.ndarray, *, variant: str | None = None,
            trace: bool = False) -> RunResult:
        result = run_project(project.path, rows, host=variant == "host", variant="trace" if trace else "")
        summary = ""
        if result.instructions:
            counts = ", ".join(f"{n:,}" for n in result.instructions[:8])
            more = " ..." if len(result.instructions) > 8 else ""
            macs, of_path = project.manifest["macs"], ""
            if project.manifest.get("paths"):  # a model that branches: the MACs of the first input's path
                path = list(taken_paths(project.model, rows[:1])[0])
                macs = next(p["macs"] for p in project.manifest["paths"] if p["path"] == path)
                of_path = f" of its path ({path_words(path)})"
            per_mac = result.instructions[0] / max(macs, 1)
            summary = (f"{project.target.name} ({project.target.qemu.machine}): instructions per inference "
                       f"{counts}{more}; {per_mac:.2f} per MAC{of_path}; stack {max(result.stack_bytes):,} B")
        costs = {"instructions": result.instructions, "stack_bytes": result.stack_bytes} if result.instructions else {}
        return RunResult(result.outputs, costs, qemu.parse_trace(result.trace), summary)

    def profile(self, project: Project, row: np.ndarray, advance):
        from edgec.backends.cortex_m.profile import profile_project

        return profile_project(project, row, advance)
