"""What a backend is: the one contract between edgec's core and every code generator.

The command line, the API and the profiler talk to backends only through :class:`Backend`,
found by target kind with :func:`backend_for` / :func:`backend_for_target`, or from a compiled
project with :func:`open_project`. Backends are imported on first use, never by ``import
edgec``. A new backend is a package under ``backends/`` plus one entry in :data:`BACKENDS`
(or, outside edgec, an entry point of the group ``edgec.backends``: name the target kind, value
``package.module:BackendClass``); no command needs editing.

A compiled project is a directory holding at least (every backend writes them):

* ``report.json`` (:data:`MANIFEST`), the manifest ``compile`` returns: ``"generator":
  "edgec"``, ``target`` (the target's name), ``model`` (the model's name), ``input`` and
  ``output`` (``name``, ``shape``), and ``layers``: one entry per layer in execution order,
  ``{"index", "name", "op", "output", ...}``, ``output`` naming the integer graph's value the
  layer computes (what a per-layer trace is compared with, :mod:`edgec.trace_compare`);
* ``model.onnx``, the integer graph it was generated from, and ``target.toml``, a copy of
  its target (:data:`edgec.target.PROJECT_FILE`), from whose ``kind`` the backend is found.

Input rows (:meth:`Backend.input_rows`) are what a backend's ``run`` takes: one row per sample,
the integer graph's quantized input flattened in the graph's layout.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx_ir as ir

from edgec.data import quantize_float
from edgec.errors import EdgecError, InputDataError
from edgec.inttype import IntType, recorded_type
from edgec.passes.input_layout import int8_input
from edgec.passes.qparams import get_qparams
from edgec.reference import KERNELS
from edgec.reference.executor import node_attributes
from edgec.target import Target, project_target

if TYPE_CHECKING:
    from edgec.profiling import TargetProfile

#: The manifest of a compiled project (see the module docstring).
MANIFEST = "report.json"
#: :attr:`Backend.graph_level`: the edgec integer graph, lowered to int8-storage kernels.
INTEGER_GRAPH = "integer"
#: :attr:`Backend.graph_level`: the quantized float graph with QONNX ``Quant`` nodes.
QONNX_GRAPH = "qonnx"
#: The entry-point group through which other packages add backends.
ENTRY_POINT_GROUP = "edgec.backends"

#: The backends shipped with edgec: target kind -> ``module:Class``.
BACKENDS = {
    "cortex-m": "edgec.backends.cortex_m:CortexMBackend",
    "fpga": "edgec.backends.fpga:FpgaBackend",
    "tile": "edgec.backends.tile:TileBackend",
}
#: Target kinds edgec has targets for but no backend yet -> the fix naming the roadmap issue.
PLANNED_KINDS = {
    "host": "run the integer reference on the host instead: edgec run MODEL --input x.npy",
}


@dataclasses.dataclass(frozen=True)
class Project:
    """A compiled project directory: its manifest, its target and its integer graph."""

    path: Path
    manifest: dict
    target: Target
    model: ir.Model


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a backend's ``run`` returns.

    ``outputs``: integer outputs, one row per input row. ``costs``: figures per sample by name
    (e.g. ``instructions``, ``stack_bytes``; empty when the run measures none). ``trace``
    (``run(..., trace=True)``, one sample): ``(layer index, output values)`` per layer, in
    execution order. ``summary``: one line for the command line, ``""`` when there is none.
    """

    outputs: np.ndarray
    costs: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    trace: list[tuple[int, np.ndarray]] = dataclasses.field(default_factory=list)
    summary: str = ""


class Backend(abc.ABC):
    """A code generator for the targets of one kind.

    Class attributes: ``kind`` (the target kind it compiles for), ``name`` (for messages),
    ``graph_level`` (:data:`INTEGER_GRAPH` or :data:`QONNX_GRAPH`: the graph ``compile``
    takes), ``options`` (the keyword options ``compile`` takes, with their defaults) and
    ``run_variants`` (the other ways ``run`` can execute a project than on the target's own
    runner: variant name -> what it runs, e.g. ``{"host": "the host build (gcc, ASan + UBSan)"}``;
    the command line offers each as a flag ``--<name>``), ``untraced_variants`` (those of
    them whose ``run(..., trace=True)`` records no per-layer values -> the run that does, in
    words for messages; the target's own runner always records them) and ``branches``
    (whether ``compile`` takes graphs with control flow, ONNX ``If``; the core refuses such a
    graph for a backend without it, naming the ``If``).

    The core calls, in this order: :meth:`passes` (run on the graph), :meth:`check`, then
    :meth:`compile`; later :meth:`load_project`, :meth:`run` and :meth:`profile` on the project.
    """

    kind: str
    name: str
    graph_level: str = INTEGER_GRAPH
    options: Mapping[str, object] = {}
    run_variants: Mapping[str, str] = {}
    untraced_variants: Mapping[str, str] = {}
    branches: bool = False

    def passes(self, target: Target) -> list[ir.passes.PassBase]:
        """Passes the backend wants run on the graph before :meth:`check` (default: none)."""
        return []

    @abc.abstractmethod
    def check(self, model: ir.Model, target: Target) -> None:
        """Raise :class:`~edgec.errors.UnsupportedModelError` naming the first node (operator
        and name) of ``model`` the backend cannot take: an operator, or an integer type it
        cannot hold. Return ``None`` when it takes every node."""

    @abc.abstractmethod
    def compile(self, model: ir.Model, target: Target, out_dir: Path, *, name: str, **options) -> dict:
        """Write the project for ``model`` into ``out_dir`` and return its manifest (the module
        docstring says what it holds). ``options`` are those of :attr:`options`, all given."""

    def compile_summary(self, manifest: dict, target: Target, out_dir: Path) -> list[str]:
        """Lines the command line prints after compiling (default: one naming the project)."""
        return [f"wrote {out_dir}: {target.name}, {len(manifest['layers'])} layers"]

    def is_project(self, directory: Path) -> bool:
        """True when ``directory`` holds a project of this backend (default: an edgec manifest
        naming a target)."""
        return "target" in read_manifest(directory, required=False)

    @abc.abstractmethod
    def load_project(self, directory: Path) -> Project:
        """The project in ``directory`` (one :meth:`is_project` accepts), ready to run."""

    @abc.abstractmethod
    def run(self, project: Project, rows: np.ndarray, *, variant: str | None = None,
            trace: bool = False) -> RunResult:
        """Run the project on input ``rows`` (:meth:`input_rows`); with ``trace``, on one row,
        recording each layer's output. ``variant``: one of :attr:`run_variants`, or None for the
        target's own runner (the core checks the name before calling)."""

    @abc.abstractmethod
    def profile(self, project: Project, row: np.ndarray, advance: Callable[[str], None]) -> TargetProfile:
        """Per-layer profile of the project on one input row; ``advance(stage)`` as each stage starts."""

    def schedule(self, workload: Path, target: Target, *, tiles: int | None = None, frames: int | None = None,
                 policies: list[str] | None = None, json_path: Path | None = None,
                 plot_path: Path | None = None) -> list[str]:
        """Schedule the several networks of the workload file ``workload`` on ``target`` (the
        policies named, default all), write ``json_path`` and ``plot_path`` where given, and
        return the lines the command line prints. Default: this backend does not."""
        raise EdgecError(f"the {self.name} backend does not schedule several networks",
                         "schedule on a tile target: edgec schedule WORKLOAD --target tile-8x8")

    def input_rows(self, model: ir.Model, samples: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Input rows for ``samples`` (feeds of ``model``'s input; default: :func:`int8_input_rows`)."""
        return int8_input_rows(model, samples)

    def float_outputs(self, model: ir.Model, outputs: np.ndarray) -> np.ndarray:
        """``outputs`` of :meth:`run` as the float model's (default: :func:`dequantized_outputs`)."""
        return dequantized_outputs(model, outputs)

    def checked_options(self, options: Mapping[str, object]) -> dict[str, object]:
        """:attr:`options` updated with ``options``; an unknown one is an error naming the known ones."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise EdgecError(f"the {self.name} backend has no option {', '.join(unknown)}",
                             f"its options: {known}")
        return {**self.options, **options}

    def checked_variant(self, variant: str | None) -> str | None:
        """``variant`` if it is None or one of :attr:`run_variants`; otherwise an error naming them."""
        if variant is None or variant in self.run_variants:
            return variant
        others = ", ".join(f"--{name}" for name in self.run_variants) or "none"
        raise EdgecError(f"the {self.name} backend has no {variant} run",
                         f"run the project without --{variant} (its other runs: {others})")


def edge_nodes(model: ir.Model) -> set[ir.Node]:
    """The host's part of an integer graph: the ``Quantize`` reading each float input and the
    ``Dequantize`` writing each float output (any may be absent). Backends take int8 input
    rows (:func:`int8_input_rows`) and return int8 outputs, so they leave these out."""
    graph = model.graph
    edges = {node for value in graph.inputs for node in value.consumers() if node.op_type == "Quantize"}
    for value in graph.outputs:
        producer = value.producer()
        if producer is not None and producer.op_type == "Dequantize":
            edges.add(producer)
    return edges


def _static_size(value: ir.Value) -> int:
    return math.prod(int(d) for d in value.shape.numpy())


def split_row(values: Sequence[ir.Value], row: np.ndarray) -> list[np.ndarray]:
    """``row`` (the values' data concatenated, each flattened) cut into one array per value,
    in its shape: how a backend's input or output row holds several tensors."""
    parts, start = [], 0
    for value in values:
        size = _static_size(value)
        parts.append(np.asarray(row[start:start + size]).reshape([int(d) for d in value.shape.numpy()]))
        start += size
    return parts


def input_parts(model: ir.Model, row: np.ndarray) -> list[np.ndarray]:
    """An input row (:func:`int8_input_rows`) cut into one array per graph input, each in the
    storage of its quantized value (int8, or int16 in the 16x8 scheme)."""
    parts = split_row(model.graph.inputs, row)
    return [np.asarray(part).astype(int8_input(value).dtype.numpy()) for part, value in zip(parts, model.graph.inputs)]


def int8_input_rows(model: ir.Model, samples: list[dict[str, np.ndarray]]) -> np.ndarray:
    """One integer row per sample: the integer graph's quantized inputs, each flattened, in input
    order; int8, or int16 when an input is int16 (the 16x8 scheme). What a sample holds is told
    by its dtype alone, never by its values:

    * float: real values, quantized as the model's input Quantize does (for an int8 graph
      input, a TFLite model's: with its recorded scale and zero point);
    * signed integer (int8, int16, int32, int64): the quantized input's raw values, of its
      integer type (uint4: 0..15, int8: -128..127), fed as they are;
    * unsigned integer (uint8, ...): raw values too, but only where the input's type is
      unsigned (uint4, uint2). For a signed type (int8; an unsigned 8-bit quantizer's input is
      int8 too, its values shifted by -128) an unsigned array, an 8-bit image most likely, is
      ambiguous and refused, saying how to give floats or raw values instead.

    Raw values outside the input type's range, and other dtypes, are an
    :class:`~edgec.errors.InputDataError` naming the range and the fix.
    """
    columns = [_input_values(graph_input, samples) for graph_input in model.graph.inputs]
    return np.stack([np.concatenate([column[number] for column in columns]) for number in range(len(samples))])


def _input_values(graph_input: ir.Value, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Each sample's integer data for ``graph_input``, flattened (see :func:`int8_input_rows`)."""
    quantize = next((n for n in graph_input.consumers() if n.op_type == "Quantize"), None)
    quantized = int8_input(graph_input)
    storage = quantized.dtype.numpy() if quantized.dtype in (ir.DataType.INT8, ir.DataType.INT16) else np.int8
    int_type = recorded_type(quantized.metadata_props, storage)
    qparams = get_qparams(quantized)
    values = []
    for number, sample in enumerate(samples):
        data = np.asarray(sample[graph_input.name])
        if data.dtype.kind in "iu":
            data = _raw_values(graph_input.name, int_type, data, number, storage)
        elif data.dtype.kind != "f":
            raise InputDataError(f"input '{graph_input.name}' got {data.dtype} data",
                                 f"pass float data, or integers: the input's raw {int_type} values")
        elif quantize is not None:  # its own rounding and type bounds
            data = KERNELS["Quantize"](node_attributes(quantize), "double", data)
        elif qparams is None:
            raise InputDataError(f"input '{graph_input.name}' takes {int_type} data and records no scale to "
                                 f"quantize {data.dtype} data with", f"pass its raw {int_type} values as integers")
        else:
            data = quantize_float(data, qparams)
        values.append(data.ravel())
    return values


def _raw_values(name: str, int_type: IntType, data: np.ndarray, number: int, storage) -> np.ndarray:
    """Integer sample ``data`` (sample ``number``) of input ``name`` in its ``storage`` (int8,
    int16), when it holds raw values of ``int_type`` (see :func:`int8_input_rows`)."""
    span = f"[{int_type.min}, {int_type.max}]"
    if data.dtype.kind == "u" and int_type.signed:
        raise InputDataError(f"{data.dtype} data for input '{name}' is ambiguous: its quantized values are "
                             f"{int_type} in {span}, so the data may be real values to quantize (an image's pixels) "
                             "or raw values", "pass floats (x.astype(np.float32)) to have them quantized, or raw "
                             f"values as a signed integer array in {span}")
    low, high = int(data.min()), int(data.max())
    if low < int_type.min or high > int_type.max:
        outside = low if low < int_type.min else high
        raise InputDataError(f"input '{name}' takes raw {int_type} values in {span} as integer data; sample "
                             f"{number} holds {outside}",
                             f"pass values in {span}, or floats (x.astype(np.float32)) to have them quantized")
    return data.astype(storage)


def dequantized_outputs(model: ir.Model, outputs: np.ndarray) -> np.ndarray:
    """Integer output rows (every graph output's int8 tensor flattened, in output order) with
    each output dequantized by its Dequantize (unchanged where there is none)."""
    rows = []
    for row in np.atleast_2d(outputs):
        parts = split_row(model.graph.outputs, row)
        for index, value in enumerate(model.graph.outputs):
            producer = value.producer()
            if producer is not None and producer.op_type == "Dequantize":
                parts[index] = KERNELS["Dequantize"](node_attributes(producer), "double", parts[index])
        rows.append(np.concatenate([part.ravel() for part in parts]))
    return np.stack(rows).reshape(np.shape(outputs)) if rows else np.asarray(outputs, dtype=np.float32)


def read_manifest(directory: str | Path, required: bool = True) -> dict:
    """The manifest of the compiled project in ``directory``; when it has none (or not one
    written by edgec), an error, or ``{}`` unless ``required``."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict) or manifest.get("generator") != "edgec":
        if required:
            raise EdgecError(f"'{directory}' is not a compiled edgec project (no {MANIFEST})",
                             "compile one with: edgec compile MODEL --target TARGET -o DIR")
        return {}
    return manifest


def _registered() -> dict[str, object]:
    """Target kind -> ``module:Class`` string or entry point, shipped ones first."""
    found: dict[str, object] = dict(BACKENDS)
    found.update({entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)})
    return found


def _load_class(kind: str, where) -> type[Backend]:
    if isinstance(where, str):
        module, _, attribute = where.partition(":")
        backend_class = getattr(importlib.import_module(module), attribute)
    else:
        backend_class = where.load()
    if not (isinstance(backend_class, type) and issubclass(backend_class, Backend)):
        raise EdgecError(f"the backend registered for '{kind}' targets is not an edgec.backend.Backend",
                         "register a Backend subclass (entry point value 'package.module:Class')")
    return backend_class


def backend_for(kind: str) -> Backend:
    """The backend compiling for targets of ``kind`` (imported now if it was not); an error
    naming the roadmap issue for a planned kind, or the known kinds for an unknown one."""
    registered = _registered()
    if kind in registered:
        return _load_class(kind, registered[kind])()
    if kind in PLANNED_KINDS:
        raise EdgecError(f"no backend for {kind} targets yet", PLANNED_KINDS[kind])
    raise EdgecError(f"no backend compiles for targets of kind '{kind}'",
                     f"backends exist for: {', '.join(sorted(registered))}")


def backend_for_target(target: Target) -> Backend:
    """The backend for ``target`` (by its ``kind``; see :func:`backend_for`)."""
    return backend_for(target.kind)


def open_project(directory: str | Path) -> tuple[Backend, Project]:
    """The backend of the compiled project in ``directory`` (found by its target's kind) and the
    project, loaded by it; an error if ``directory`` is not a project."""
    manifest = read_manifest(directory)
    backend = backend_for_target(project_target(directory, manifest["target"]))
    if not backend.is_project(Path(directory)):
        raise EdgecError(f"'{directory}' is not a complete {backend.name} project",
                         "compile it again with: edgec compile MODEL --target TARGET -o DIR")
    return backend, backend.load_project(Path(directory))
