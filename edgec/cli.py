"""The ``edgec`` command line (click).

Every command reports problems with the user's input as one line on stderr,
``error: <problem> (fix: <hint>)``, and exits with status 2; it writes nothing partial.
``--debug`` shows tracebacks of internal errors (status 1).
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
import warnings
from pathlib import Path

import click
import numpy as np
import onnx
import onnx_ir as ir
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgec import __version__, api, progress
from edgec.backend import backend_for_target, open_project
from edgec.calibration import METHODS
from edgec.errors import EdgecError
from edgec.files import atomic_write
from edgec.fixedpoint import ROUNDING_MODES
from edgec.inttype import VALUE_BITS
from edgec.passes.input_layout import LAYOUTS
from edgec.reference import ReferenceExecutor
from edgec.summary import summarize
from edgec.target import KINDS, all_targets, get_target, load_target_file, target_toml
from edgec.trace_compare import first_difference, reference_outputs

#: Wide enough for layer tables when the output is a pipe or a CI log rather than a terminal.
_PIPE_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)


def parse_input_shapes(specs: tuple[str, ...]) -> dict[str, list[int]] | None:
    """``("x=1,3,32,32", ...)`` or ``("1,3,32,32",)`` -> ``{"x": [1,3,32,32]}`` (``""`` for unnamed)."""
    shapes = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            shape = []
        if not shape or any(d <= 0 for d in shape):
            raise EdgecError(f"--input-shape '{spec}' is not a shape", "write NAME=1,3,32,32 or 1,3,32,32")
        shapes[name] = shape
    return shapes or None


class EdgecGroup(click.Group):
    """Turns exceptions into one-line errors and exit codes (see the module docstring)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgecError as error:
            error_console.print(f"[bold red]error:[/] {escape(error.one_line())}", highlight=False, soft_wrap=True)
            ctx.exit(error.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as error:  # a bug in edgec: say so, briefly, unless debugging
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            else:
                message = " ".join(f"{type(error).__name__}: {error}".split())
                error_console.print(f"[bold red]internal error:[/] {message} (rerun with --debug for the traceback "
                                    "and report it)", highlight=False, soft_wrap=True)
            ctx.exit(1)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    error_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


@click.group(cls=EdgecGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="edgec")
@click.option("--debug", is_flag=True, help="Show the traceback of internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """edgec: compile trained ONNX, TFLite, PyTorch and Brevitas models to bit-exact integer code for edge targets.

    MODEL arguments accept an .onnx file (float, QDQ, QONNX from Brevitas, or an edgec integer
    graph), an int8 .tflite file, or a PyTorch 'package.module:factory' spec (with --input-shape).
    """
    ctx.ensure_object(dict)["debug"] = debug
    warnings.showwarning = _show_warning


input_shape_option = click.option(
    "--input-shape", "input_shapes", multiple=True, metavar="[NAME=]D0,D1,...",
    help="Static shape of an input (repeat per input); needed for dynamic shapes and PyTorch specs.")


class PathParam(click.ParamType):
    """A file path (``kind="file"``) or directory path (``"directory"``). One that exists as
    the other kind is the one-line error of every input problem, where ``click.Path``'s
    check would print a usage block."""

    name = "path"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def convert(self, value, param, ctx):
        path = Path(value)
        option = param.opts[-1] if param is not None and param.opts else "path"
        if self.kind == "file" and path.is_dir():
            raise EdgecError(f"{option} '{value}' is a directory", "give a file name")
        if self.kind == "directory" and path.exists() and not path.is_dir():
            raise EdgecError(f"{option} '{value}' is a file, not a directory", "give a directory name")
        return value


@cli.command(epilog="Kinds and their tables (docs/targets.md describes every key):\n\n"
                     + "\n\n".join(f"{kind.name}: {kind.summary}." for kind in KINDS.values()))
@click.argument("files", nargs=-1, metavar="[FILE.toml]...")
@click.option("--show", metavar="TARGET", help="Print the TOML of TARGET (a name or a file) and exit.")
def targets(files: tuple[str, ...], show: str | None) -> None:
    """List the targets edgec knows, one table per kind, with each kind's key figures.

    Every target file has a header (name, kind, description) and the tables of its kind.
    Targets of a kind without a backend yet (tile, host) load and list; compiling for
    them says which backend is missing.

    Your own part: start from a packaged target of its kind (edgec targets --show
    cortex-m4 > my_board.toml), change the name and what differs (for a Cortex-M part:
    [part] name, clock_hz, flash_bytes, ram_bytes; [compiler] flags if needed), and pass the
    file's path wherever a target is taken (--target my_board.toml). Given FILEs, this
    validates them (an error names the file and the key) and lists them with the packaged
    targets.
    """
    if show is not None:
        click.echo(target_toml(get_target(show)), nl=False)
        return
    listed = [*all_targets().values(), *(load_target_file(path) for path in files)]
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


@cli.command()
@click.argument("model")
@input_shape_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
def inspect(model: str, input_shapes: tuple[str, ...], as_json: bool) -> None:
    """Show every layer of MODEL: operator, shapes, parameters and MACs, with totals.

    A float model is shown after canonicalization (BatchNorm folded, no-ops removed).
    Operators edgec cannot compile are marked ✗ and named in a final warning.
    """
    summary = summarize(api.load(model, input_shapes=parse_input_shapes(input_shapes)))
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        _print_summary(Path(model).name, summary)
    if summary.unsupported:
        warnings.warn(summary.unsupported_warning(), api.EdgecWarning, stacklevel=1)


def _print_summary(title: str, summary) -> None:
    caption = "✗ edgec does not support this operator" if summary.unsupported else None
    table = Table(title=f"{title} ({summary.kind} graph)", caption=caption, show_footer=True)
    table.add_column("#", justify="right", footer="")
    table.add_column("layer", footer="total", overflow="ellipsis", max_width=48, no_wrap=True)
    table.add_column("op")
    table.add_column("input")
    table.add_column("output")
    typed = any(layer.types for layer in summary.layers)
    if typed:
        table.add_column("types")
    table.add_column("params", justify="right", footer=f"{summary.total_params:,}")
    table.add_column("MACs", justify="right", footer=f"{summary.total_macs:,}")
    for index, layer in enumerate(summary.layers):
        table.add_row(str(index), escape(layer.name), f"{layer.op} ✗" if layer.unsupported else layer.op,
                      _shape(layer.input_shape), _shape(layer.output_shape), *([layer.types] if typed else []),
                      f"{layer.params:,}" if layer.params else "", f"{layer.macs:,}" if layer.macs else "")
    console.print(table)
    packed = (f", {summary.total_packed_bytes:,} packed at their widths"
              if summary.total_packed_bytes != summary.total_param_bytes else "")
    console.print(f"parameters: {summary.total_params:,} ({summary.total_param_bytes:,} bytes{packed})   "
                  f"MACs: {summary.total_macs:,}")


def _quantize_with_progress(model: str, calib: str | None, method: str, rounding: str | None, input_shapes,
                            dump_dir: str | None, input_layout: str | None = None,
                            widths: tuple[int, int] = (8, 8)) -> ir.Model:
    """Quantize, showing a progress bar (on stderr) once calibration starts. ``widths``: the
    ``(weight_bits, activation_bits)`` of post-training quantization."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=error_console, transient=True, disable=not error_console.is_terminal)
    task = None

    def advance() -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(f"calibrating ({method})", total=None)
        progress.advance(task)

    try:
        return api.quantize(model, calib, method=method, rounding=rounding,
                            input_shapes=parse_input_shapes(input_shapes), dump_dir=dump_dir, advance=advance,
                            input_layout=input_layout, weight_bits=widths[0], activation_bits=widths[1])
    finally:
        if task is not None:
            progress.stop()


calib_option = click.option(
    "--calib", metavar="FILE|random",
    help="Calibration samples (.npy/.npz, N samples of the input), or 'random' (uniform [0,1), with a warning).")
method_option = click.option("--method", type=click.Choice(sorted(METHODS)), default="minmax", show_default=True,
                             help="Calibration method (onnxruntime's calibrators).")
input_layout_option = click.option(
    "--input-layout", type=click.Choice(LAYOUTS), default=None,
    help="Layout of the integer graph's 3-D/4-D input (and of data given to 'edgec run'); default: the model's "
         "(ONNX/PyTorch nchw, TFLite nhwc). nhwc saves the input transpose; --calib stays in the model's layout.")
_BITS = click.IntRange(VALUE_BITS.start, VALUE_BITS.stop - 1)


weight_bits_option = click.option(
    "--weight-bits", type=_BITS, default=8, show_default=True,
    help="Width of post-training quantized weights: symmetric per output channel in [-(2^(b-1)-1), 2^(b-1)-1] "
         "(4: [-7, 7]; 2: ternary [-1, 1]); 4- and 2-bit weights are stored packed. Weights a QDQ/QONNX model "
         "quantized keep their own.")
activation_bits_option = click.option(
    "--activation-bits", type=_BITS, default=8, show_default=True,
    help="Width of post-training quantized activations: asymmetric per tensor, signed (4: [-8, 7]), stored as "
         "int8. Softmax outputs stay int8; tensors a QDQ/QONNX model quantized keep their own.")
ignore_size_limits_option = click.option(
    "--ignore-size-limits", is_flag=True, help="Go on even if the model exceeds the part's flash or RAM.")
rounding_option = click.option("--rounding", type=click.Choice(ROUNDING_MODES), default=None,
                               help="Requantization rounding: 'double' (TFLM/CMSIS-NN), 'single' (TFLITE_SINGLE_ROUNDING), "
                                    "'litert' (LiteRT's reference kernels: single in fully connected layers). "
                                    "Default: double, or what an integer model records.")


@cli.command()
@click.argument("model")
@calib_option
@click.option("-o", "--output", required=True, type=PathParam("file"), help="Integer graph to write (.onnx).")
@method_option
@rounding_option
@input_shape_option
@input_layout_option
@weight_bits_option
@activation_bits_option
@click.option("--dump-dir", type=PathParam("directory"), help="Save the model after every pass here.")
def quantize(model: str, calib: str | None, output: str, method: str, rounding: str | None,
             input_shapes: tuple[str, ...], input_layout: str | None, weight_bits: int, activation_bits: int,
             dump_dir: str | None) -> None:
    """Quantize MODEL to an edgec integer graph and write it to OUTPUT.

    Weights become int8 (or --weight-bits) per output channel, activations int8 (or
    --activation-bits, stored as int8) per tensor, biases int32; requantization follows the
    TFLite/CMSIS-NN int8 specification. A QDQ or QONNX (Brevitas) model keeps its own scales
    and widths and needs no --calib.
    """
    integer_model = _quantize_with_progress(model, calib, method, rounding, input_shapes, dump_dir, input_layout,
                                            (weight_bits, activation_bits))
    proto = ir.to_proto(integer_model)
    onnx.checker.check_model(proto)
    atomic_write(output, lambda tmp: onnx.save(proto, str(tmp)))
    summary = summarize(integer_model)
    console.print(f"wrote {output}: {len(summary.layers)} integer operators, "
                  f"{summary.total_packed_bytes:,} bytes of weights, {summary.total_macs:,} MACs")


@cli.command()
@click.argument("model")
@click.option("--target", "-t", "target_name", required=True,
              help="Target to compile for: a name from 'edgec targets', or the path of your own target .toml file.")
@click.option("-o", "--output", required=True, type=PathParam("directory"),
              help="Directory for the C project (created; an edgec project there is replaced, keeping files "
                   "you added).")
@calib_option
@method_option
@rounding_option
@input_shape_option
@input_layout_option
@click.option("--emit-only", is_flag=True,
              help="Write the C project without building it (for IAR, Keil or your own build): flash and stack "
                   "are then not measured.")
@click.option("--overlap-io", is_flag=True,
              help="Let the C input and output share arena bytes (saves report.json's ram.io_separation_bytes; "
                   "read the output before writing the next input).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True),
              help="FPGA targets: fold the dataflow design (PE x SIMD per layer) to reach this many inferences "
                   "per second at the target's clock, with the fewest multipliers.")
@click.option("--max-dsp", type=click.IntRange(min=0),
              help="FPGA targets: the fastest folding that uses at most this many DSP blocks.")
@click.option("--board", help="FPGA targets: the board whose pins the bitstream's constraints use "
                              "(default: the target's own board; see docs/fpga.md).")
@ignore_size_limits_option
@weight_bits_option
@activation_bits_option
def compile(model: str, target_name: str, output: str, calib: str | None, method: str, rounding: str | None,
            input_shapes: tuple[str, ...], input_layout: str | None, emit_only: bool, overlap_io: bool,
            fps: float | None, max_dsp: int | None, board: str | None, ignore_size_limits: bool,
            weight_bits: int, activation_bits: int) -> None:
    """Compile MODEL for TARGET into a project directory.

    Cortex-M targets: a C library with build files and a QEMU harness, built once with the
    target's cross compiler to check it and measure flash and RAM (OUTPUT/report.json),
    unless --emit-only. FPGA targets: a streaming dataflow design in Verilog, synthesised
    for its resources; on iCE40 placed, routed and packed into a bitstream (OUTPUT/*.bin),
    on AMD parts with a Vivado script. A float model is quantized first (needs --calib).
    """
    target = get_target(target_name)
    backend = backend_for_target(target)
    options = {"ignore_size_limits": True} if ignore_size_limits else {}  # only the flags given: backend options
    if emit_only:
        options["emit_only"] = True
    if overlap_io:
        options["separate_io"] = False
    options.update({key: value for key, value in (("fps", fps), ("max_dsp", max_dsp), ("board", board))
                    if value is not None})
    integer_model = _quantize_with_progress(model, calib, method, rounding, input_shapes, None, input_layout,
                                            (weight_bits, activation_bits))
    with _status(f"generating {'' if emit_only else 'and building '}for {target.name}"):
        manifest = api.compile_model(integer_model, target, output, name=Path(model).stem, **options)
    for line in backend.compile_summary(manifest, target, output):
        console.print(line)


@contextlib.contextmanager
def _status(what: str):
    """A spinner saying ``what`` is done, followed by the stage the work reports (:mod:`edgec.progress`)."""
    with error_console.status(f"{what} ...") as status, \
            progress.listening(lambda stage: status.update(f"{what}: {stage} ...")):
        yield


def _save_outputs(path: str, outputs: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            if len(outputs) == 1:
                np.save(handle, next(iter(outputs.values())))
            else:
                np.savez(handle, **outputs)
    atomic_write(path, write)


def _print_outputs(outputs: dict[str, np.ndarray]) -> None:
    for name, array in outputs.items():
        console.print(f"[bold]{name}[/] {array.dtype} {list(array.shape)}")
        console.print(np.array2string(array, threshold=64, precision=5, suppress_small=True), highlight=False)


def _run_reference(model: str, input_path: str, raw: bool, calib, method, rounding, input_shapes,
                   widths: tuple[int, int]) -> dict:
    loaded = _quantize_with_progress(model, calib, method, rounding, input_shapes, None, widths=widths)
    samples = api.input_samples(loaded, input_path)
    executor = ReferenceExecutor(loaded)
    names = api.int8_output_names(loaded) if raw else executor.output_names
    results = []
    for sample in samples:
        values = executor.run(sample, keep_intermediates=raw)
        results.append({name: values[name] for name in names})
    return {name: np.concatenate([r[name] for r in results]) for name in names}


def _run_compiled(directory: Path, input_path: str, raw: bool, check: bool, variant: str | None) -> dict:
    backend, project = open_project(directory)
    variant = backend.checked_variant(variant)
    model, manifest = project.model, project.manifest
    inputs = backend.input_rows(model, api.input_samples(model, input_path))
    where = backend.run_variants[variant] if variant else project.target.name
    with _status(f"building and running on {where}"):
        result = backend.run(project, inputs, variant=variant)
    if result.summary:
        console.print(result.summary)
    if check:
        expected = reference_outputs(model, inputs)
        bad = [i for i in range(len(inputs)) if not np.array_equal(result.outputs[i], expected[i])]
        if bad:
            traced = backend.run(project, inputs[bad[0]:bad[0] + 1], variant=variant, trace=True)
            mismatch = first_difference(model, manifest["layers"], inputs[bad[0]], traced.trace)
            where_bad = (f"layer {mismatch.index} ({mismatch.op} '{mismatch.name}'): {mismatch.differing} of "
                         f"{mismatch.elements} values differ") if mismatch else "the final output"
            raise EdgecError(f"{len(bad)} of {len(inputs)} samples differ from the integer reference; "
                             f"first at sample {bad[0]}, {where_bad}", "report this with the model and input")
        console.print(f"check: all {len(inputs)} outputs equal the integer reference bit for bit")
    shape = [len(inputs), *manifest["output"]["shape"][1:]]
    name = manifest["output"]["name"]
    if raw:
        return {name: result.outputs.reshape(shape)}
    return {model.graph.outputs[0].name: backend.float_outputs(model, result.outputs).reshape(shape)}


@cli.command()
@click.argument("model")
@click.option("--input", "input_path", required=True, type=PathParam("file"),
              help="Input samples (.npy/.npz): float, or int8 for the quantized input.")
@click.option("--output", "output_path", type=PathParam("file"),
              help="Write the outputs (.npy for one output, .npz for several).")
@click.option("--int8", "raw", is_flag=True, help="Output the int8 tensors instead of dequantized floats.")
@click.option("--check", is_flag=True, help="Compiled project: compare with the integer reference bit for bit.")
@click.option("--host", "variant", flag_value="host",
              help="Compiled Cortex-M project: run the host build (gcc, ASan + UBSan), not QEMU.")
@click.option("--netlist", "variant", flag_value="netlist",
              help="Compiled FPGA project: simulate the placed-and-routed netlist, not the RTL.")
@calib_option
@method_option
@rounding_option
@input_shape_option
@weight_bits_option
@activation_bits_option
def run(model: str, input_path: str, output_path: str | None, raw: bool, check: bool, variant: str | None,
        calib: str | None, method: str, rounding: str | None, input_shapes: tuple[str, ...], weight_bits: int,
        activation_bits: int) -> None:
    """Run MODEL on its inputs and print the outputs.

    MODEL is a compiled project directory (from 'edgec compile'): built if needed and run on
    the target's QEMU board, printing instructions per inference. Otherwise MODEL is a model
    file run with the integer reference executor on the host (a float model is quantized
    first, which needs --calib). Inputs hold N samples; outputs are stacked.
    """
    if Path(model).is_dir():
        outputs = _run_compiled(Path(model), input_path, raw, check, variant)
    else:
        if check or variant:
            raise EdgecError(f"--{'check' if check else variant} applies to compiled projects",
                             "compile first: edgec compile MODEL --target T -o DIR; then edgec run DIR --check")
        outputs = _run_reference(model, input_path, raw, calib, method, rounding, input_shapes,
                                 (weight_bits, activation_bits))
    _print_outputs(outputs)
    if output_path:
        _save_outputs(output_path, outputs)
        console.print(f"wrote {output_path}")


def _print_profile(result) -> None:
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


@cli.command()
@click.argument("model")
@click.option("--target", "-t", "targets", help="Targets, comma-separated (e.g. cortex-m3,cortex-m4,my_board.toml); "
              "not needed for a compiled project.")
@click.option("--input", "input_path", type=PathParam("file"),
              help="Input sample (.npy/.npz; the first sample is used). Default: fixed random data.")
@click.option("--json", "json_path", type=PathParam("file"), help="Also write the profile as JSON.")
@click.option("--csv", "csv_path", type=PathParam("file"), help="Also write the per-layer rows as CSV.")
@click.option("--plot", "plot_path", type=PathParam("file"),
              help="Also write a PNG: per-layer latency per target and the activation-memory timeline.")
@calib_option
@method_option
@rounding_option
@input_shape_option
@ignore_size_limits_option
@weight_bits_option
@activation_bits_option
def profile(model: str, targets: str | None, input_path: str | None, json_path: str | None, csv_path: str | None,
            plot_path: str | None, calib: str | None, method: str, rounding: str | None,
            input_shapes: tuple[str, ...], ignore_size_limits: bool, weight_bits: int, activation_bits: int) -> None:
    """Profile MODEL layer by layer on the emulated cores of TARGETS (or a compiled project).

    Per layer: MACs, instructions (measured on QEMU with a timer read around every layer),
    estimated cycles and milliseconds at the part's clock (a per-core cycle model over the
    instructions that ran), weight bytes and live activation bytes; totals, and a comparison
    across targets.
    """
    from edgec.profiling import profile as run_profile

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=error_console,
                  transient=True) as progress:
        task = progress.add_task("preparing", total=None)
        result = run_profile(model, targets, calib=calib, inputs=input_path, method=method, rounding=rounding,
                             input_shapes=parse_input_shapes(input_shapes), ignore_size_limits=ignore_size_limits,
                             weight_bits=weight_bits, activation_bits=activation_bits,
                             advance=lambda what: progress.update(task, description=what))
    _print_profile(result)
    if json_path:
        atomic_write(json_path, lambda tmp: tmp.write_text(result.to_json()))
        console.print(f"wrote {json_path}")
    if csv_path:
        atomic_write(csv_path, lambda tmp: tmp.write_text(result.to_csv()))
        console.print(f"wrote {csv_path}")
    if plot_path:
        from edgec.profile_plot import plot_profile

        plot_profile(result, plot_path)
        console.print(f"wrote {plot_path}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="edgec")


if __name__ == "__main__":
    sys.exit(main())
