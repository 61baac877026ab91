"""What the ``edgec`` commands show: the consoles, the rich tables of targets, layers, outputs
and profiles, and the progress shown while work runs.

Results go to :data:`console` (stdout); warnings, errors and progress to :data:`error_console`
(stderr), so that a command's output can be piped. Progress shows only on a terminal.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgec import api, progress
from edgec.cli_options import parse_input_shapes
from edgec.control_flow import path_words
from edgec.delta import DeltaScheme
from edgec.files import atomic_write
from edgec.passes.delta_encode import LayerDeltaReport
from edgec.passes.delta_encode import total as delta_total
from edgec.target import KINDS, Target

#: Wide enough for layer tables when the output is a pipe or a CI log rather than a terminal.
_PIPE_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A :func:`warnings.showwarning` printing one line ``warning: <message>`` on stderr."""
    error_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def print_targets(listed: list[Target]) -> None:
    """One table per target kind of the ``listed`` targets, with the kind's columns."""
    for kind in KINDS.values():
        of_kind = [target for target in listed if target.kind == kind.name]
        if not of_kind:
            continue
        table = Table(title=f"{kind.name} targets")
        for header in ("target", *(header for header, _ in kind.columns)):
            table.add_column(header)
        for target in of_kind:
            table.add_row(escape(target.name), *(escape(figure(target)) for _, figure in kind.columns))
        console.print(table)


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape) if shape else "-"


def print_summary(title: str, summary) -> None:
    """The layer table of a :class:`edgec.summary.ModelSummary`, with its totals; for a graph
    that branches, a branch column and a table of what each path reads and computes."""
    caption = "✗ edgec does not support this operator" if summary.unsupported else None
    table = Table(title=f"{title} ({summary.kind} graph)", caption=caption, show_footer=True)
    table.add_column("#", justify="right", footer="")
    table.add_column("layer", footer="total", overflow="ellipsis", max_width=48, no_wrap=True)
    if summary.paths:
        table.add_column("branch")
    table.add_column("op")
    table.add_column("input")
    table.add_column("output")
    typed = any(layer.types for layer in summary.layers)
    if typed:
        table.add_column("types")
    table.add_column("params", justify="right", footer=f"{summary.total_params:,}")
    table.add_column("MACs", justify="right", footer=f"{summary.total_macs:,}")
    for index, layer in enumerate(summary.layers):
        table.add_row(str(index), escape(layer.name), *([path_words(layer.branch)] if summary.paths else []),
                      f"{layer.op} ✗" if layer.unsupported else layer.op,
                      _shape(layer.input_shape), _shape(layer.output_shape), *([layer.types] if typed else []),
                      f"{layer.params:,}" if layer.params else "", f"{layer.macs:,}" if layer.macs else "")
    console.print(table)
    packed = (f", {summary.total_packed_bytes:,} packed at their widths"
              if summary.total_packed_bytes != summary.total_param_bytes else "")
    console.print(f"parameters: {summary.total_params:,} ({summary.total_param_bytes:,} bytes{packed})   "
                  f"MACs: {summary.total_macs:,}{' (every branch)' if summary.paths else ''}")
    if summary.paths:
        paths = Table(title="one inference per path")
        for column in ("path", "branches", "params", "of all", "MACs"):
            paths.add_column(column, justify="left" if column in ("path", "branches") else "right")
        for index, path in enumerate(summary.paths):
            paths.add_row(str(index), path_words(path.path), f"{path.params:,}",
                          f"{path.params / max(summary.total_params, 1):.0%}", f"{path.macs:,}")
        console.print(paths)


def print_outputs(outputs: dict[str, np.ndarray]) -> None:
    """Each output's name, dtype and shape, and its values (abbreviated past 64)."""
    for name, array in outputs.items():
        console.print(f"[bold]{name}[/] {array.dtype} {list(array.shape)}")
        console.print(np.array2string(array, threshold=64, precision=5, suppress_small=True), highlight=False)


def save_outputs(path: str, outputs: dict[str, np.ndarray]) -> None:
    """Write ``outputs`` to ``path`` whole or not at all: ``.npy`` for one output, ``.npz`` for several."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            if len(outputs) == 1:
                np.save(handle, next(iter(outputs.values())))
            else:
                np.savez(handle, **outputs)
    atomic_write(path, write)


def print_profile(result) -> None:
    """The per-layer table of each target of a :class:`edgec.profiling.Profile`, and a
    comparison table when it holds several."""
    from edgec.profiling import ESTIMATE_NOTE

    for target in result.targets:
        table = Table(title=f"{result.model} on {target.target} ({target.part} @ {target.clock_hz / 1e6:g} MHz)",
                      show_footer=True)
        columns = [("#", "", True), ("layer", "total", False), ("op", "", False),
                   ("MACs", f"{target.macs:,}", True), ("instructions", f"{target.instructions:,}", True),
                   ("instr/MAC", f"{target.instructions / max(target.macs, 1):.2f}", True),
                   ("est. cycles", f"{target.estimated_cycles:,.0f}", True),
                   ("est. ms", f"{target.estimated_ms:.2f}", True), ("weights B", "", True),
                   ("live B", f"peak {target.arena_bytes:,}", True)]
        for name, footer, right in columns:
            table.add_column(name, footer=footer, justify="right" if right else "left",
                             overflow="ellipsis", max_width=40 if name == "layer" else None, no_wrap=name == "layer")
        for layer in target.layers:
            per_mac = f"{layer.instructions_per_mac:.2f}" if layer.macs else ""
            table.add_row(str(layer.index), escape(layer.name), layer.op, f"{layer.macs:,}" if layer.macs else "",
                          f"{layer.instructions:,}", per_mac, f"{layer.estimated_cycles:,.0f}",
                          f"{layer.estimated_ms:.3f}", f"{layer.weight_bytes:,}" if layer.weight_bytes else "",
                          f"{layer.live_bytes:,}")
        console.print(table)
        console.print(f"  whole model, uninstrumented: {target.uninstrumented_instructions:,} instructions "
                      f"(per-layer sum differs by {target.instrumentation_error:.3%}); flash {target.flash_total:,} B; "
                      f"cycle model: {target.cycle_model}")
        if target.path is not None:
            console.print(f"  path {path_words(target.path)}: the layers this input runs (every path's layers and "
                          "MACs are in the project's report.json)")
    if len(result.targets) > 1:
        table = Table(title="comparison (est. ms per layer)")
        table.add_column("layer")
        for target in result.targets:
            table.add_column(target.target, justify="right")
        for number, layer in enumerate(result.targets[0].layers):
            table.add_row(f"{layer.index} {layer.op}", *(f"{t.layers[number].estimated_ms:.3f}" for t in result.targets))
        table.add_row("total instructions", *(f"{t.instructions:,}" for t in result.targets))
        table.add_row("total est. ms", *(f"{t.estimated_ms:.2f}" for t in result.targets))
        console.print(table)
    console.print(f"[dim]{ESTIMATE_NOTE}; instructions are measured (QEMU -icount, CMSDK timer).[/]")


@contextlib.contextmanager
def status(what: str):
    """A spinner saying ``what`` is done, followed by the stage the work reports (:mod:`edgec.progress`)."""
    with error_console.status(f"{what} ...") as spinner, \
            progress.listening(lambda stage: spinner.update(f"{what}: {stage} ...")):
        yield


def quantize_with_progress(model: str, calib: str | None, method: str, rounding: str | None, input_shapes,
                           dump_dir: str | None, input_layout: str | None = None,
                           widths: tuple[int, int] = (8, 8), delta: DeltaScheme | None = None) -> ir.Model:
    """:func:`edgec.api.quantize`, showing a progress bar (on stderr) once calibration starts.
    ``input_shapes``: the ``--input-shape`` strings; ``widths``: the ``(weight_bits,
    activation_bits)`` of post-training quantization; ``delta``: the weights' delta encoding."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=error_console, transient=True, disable=not error_console.is_terminal)
    task = None

    def advance() -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(f"calibrating ({method})", total=None)
        bar.advance(task)

    try:
        return api.quantize(model, calib, method=method, rounding=rounding,
                            input_shapes=parse_input_shapes(input_shapes), dump_dir=dump_dir, advance=advance,
                            input_layout=input_layout, weight_bits=widths[0], activation_bits=widths[1],
                            delta=delta)
    finally:
        if task is not None:
            bar.stop()


def print_delta_report(report: list[LayerDeltaReport]) -> None:
    """The delta encoding per layer and in total: weights, bytes against int8, error introduced."""
    if not report:
        return
    table = Table(title="delta-encoded weights", title_justify="left")
    for column in ("layer", "op", "weights", "int8 bytes", "stored bytes", "ratio", "changed", "max error"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for layer in report:
        table.add_row(escape(layer.layer), layer.op_type, f"{layer.weights:,}", f"{layer.int8_bits // 8:,}",
                      f"{layer.stored_bits / 8:,.0f}" + ("" if layer.encoded else " (kept)"), f"{layer.ratio:.1%}",
                      f"{layer.changed:,}", str(layer.max_error))
    totals = delta_total(report)
    table.add_row("total", "", f"{totals['weights']:,}", f"{totals['int8_bits'] // 8:,}",
                  f"{totals['stored_bits'] / 8:,.0f}", f"{totals['ratio']:.1%}", f"{totals['changed']:,}",
                  str(totals["max_error"]), style="bold")
    console.print(table)
