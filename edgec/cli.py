"""The ``edgec`` command line (click).

Every command reports problems with the user's input as one line on stderr,
``error: <problem> (fix: <hint>)``, and exits with status 2; it writes nothing partial.
``--debug`` shows tracebacks of internal errors (status 1).

The commands are defined here; the options they share are in :mod:`edgec.cli_options`, what
they print in :mod:`edgec.cli_output`, and what ``run`` does in :mod:`edgec.cli_run`. Nothing
here names a target kind: a backend added for a new kind needs no edit of the command line.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from pathlib import Path

import click
import onnx
import onnx_ir as ir
from rich.markup import escape
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from edgec import __version__, api
from edgec.backend import backend_for_target
from edgec.cli_options import (
    PathParam,
    activation_bits_option,
    calib_option,
    chosen_variant,
    delta_options,
    delta_scheme,
    host_option,
    ignore_size_limits_option,
    input_layout_option,
    input_shape_option,
    method_option,
    netlist_option,
    parse_input_shapes,
    rounding_option,
    weight_bits_option,
)
from edgec.cli_output import (
    console,
    error_console,
    print_delta_report,
    print_outputs,
    print_profile,
    print_summary,
    print_targets,
    quantize_with_progress,
    save_outputs,
    show_warning,
    status,
)
from edgec.cli_run import run_compiled, run_reference
from edgec.errors import EdgecError
from edgec.files import atomic_write
from edgec.passes.delta_encode import read_report as read_delta_report
from edgec.summary import summarize
from edgec.target import KINDS, all_targets, get_target, load_target_file, target_toml


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
    warnings.showwarning = show_warning


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
    print_targets([*all_targets().values(), *(load_target_file(path) for path in files)])


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
        print_summary(Path(model).name, summary)
    if summary.unsupported:
        warnings.warn(summary.unsupported_warning(), api.EdgecWarning, stacklevel=1)


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
@delta_options
@click.option("--dump-dir", type=PathParam("directory"), help="Save the model after every pass here.")
def quantize(model: str, calib: str | None, output: str, method: str, rounding: str | None,
             input_shapes: tuple[str, ...], input_layout: str | None, weight_bits: int, activation_bits: int,
             dump_dir: str | None, **delta) -> None:
    """Quantize MODEL to an edgec integer graph and write it to OUTPUT.

    Weights become int8 (or --weight-bits) per output channel, activations int8 (or
    --activation-bits, stored as int8) per tensor, biases int32; requantization follows the
    TFLite/CMSIS-NN int8 specification. A QDQ or QONNX (Brevitas) model keeps its own scales
    and widths and needs no --calib. With --delta-bits the weights are stored as references
    plus narrow deltas (a table gives per layer the bytes against int8 and the error introduced).
    """
    integer_model = quantize_with_progress(model, calib, method, rounding, input_shapes, dump_dir, input_layout,
                                           (weight_bits, activation_bits), delta_scheme(**delta))
    proto = ir.to_proto(integer_model)
    onnx.checker.check_model(proto)
    atomic_write(output, lambda tmp: onnx.save(proto, str(tmp)))
    print_delta_report(read_delta_report(integer_model))
    summary = summarize(integer_model)
    macs = f"{summary.total_macs:,} MACs"
    if summary.paths:  # a model that branches: what one inference computes
        macs += f" over {len(summary.paths)} paths, {max(p.macs for p in summary.paths):,} on the largest"
    console.print(f"wrote {output}: {len(summary.layers)} integer operators, "
                  f"{summary.total_packed_bytes:,} bytes of weights, {macs}")


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
@click.option("--name", "prefix",
              help="Cortex-M targets: the prefix of the generated C interface and files (default edgec): "
                   "NAME_invoke(), include/NAME_model.h, NAME_INPUT_SIZE. Give each model of one firmware its own; "
                   "they share the kernels.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True),
              help="FPGA targets: fold the dataflow design (PE x SIMD per layer) to reach this many inferences "
                   "per second at the target's clock, with the fewest multipliers.")
@click.option("--max-dsp", type=click.IntRange(min=0),
              help="FPGA targets: the fastest folding that uses at most this many DSP blocks.")
@click.option("--board", help="FPGA targets: the board whose pins the bitstream's constraints use "
                              "(default: the target's own board; see docs/fpga.md).")
@click.option("--flow", help="FPGA targets: who builds the design: edgec (default) or finn (FINN's build "
                             "steps, in the environment scripts/setup-finn.sh makes; docs/fpga.md).")
@click.option("--folding-config", type=PathParam("file"),
              help="FPGA targets, --flow finn: FINN's folding JSON (PE/SIMD per FINN layer, e.g. a build's "
                   "finn/report/auto_folding_config.json) instead of --fps.")
@click.option("--tiles", type=click.IntRange(min=1),
              help="Tile targets: the degree of parallelism, how many tiles the network holds (default: the "
                   "fewest within 5% of the fastest latency).")
@ignore_size_limits_option
@weight_bits_option
@activation_bits_option
@delta_options
def compile(model: str, target_name: str, output: str, calib: str | None, method: str, rounding: str | None,
            input_shapes: tuple[str, ...], input_layout: str | None, emit_only: bool, overlap_io: bool,
            prefix: str | None, fps: float | None, max_dsp: int | None, board: str | None, flow: str | None,
            folding_config: str | None, tiles: int | None, ignore_size_limits: bool, weight_bits: int,
            activation_bits: int, **delta) -> None:
    """Compile MODEL for TARGET into a project directory.

    Cortex-M targets: a C library with build files and a QEMU harness, built once with the
    target's cross compiler to check it and measure flash and RAM (OUTPUT/report.json),
    unless --emit-only. FPGA targets: a streaming dataflow design in Verilog, synthesised
    for its resources; on iCE40 placed, routed and packed into a bitstream (OUTPUT/*.bin),
    on AMD parts with a Vivado script; with --flow finn, FINN's build steps instead (its
    estimates and generated RTL under OUTPUT/finn). Tile targets: the network mapped onto
    every number of tiles and simulated (latency for each in OUTPUT/report.json), with the
    schedule, per-layer table and Gantt chart of --tiles K. A float model is quantized first
    (needs --calib).
    """
    target = get_target(target_name)
    backend = backend_for_target(target)
    options = {"ignore_size_limits": True} if ignore_size_limits else {}  # only the flags given: backend options
    if emit_only:
        options["emit_only"] = True
    if overlap_io:
        options["separate_io"] = False
    options.update({key: value for key, value in (("prefix", prefix), ("fps", fps), ("max_dsp", max_dsp), ("board", board),
                                                  ("flow", flow), ("folding_config", folding_config),
                                                  ("tiles", tiles))
                    if value is not None})
    integer_model = quantize_with_progress(model, calib, method, rounding, input_shapes, None, input_layout,
                                           (weight_bits, activation_bits), delta_scheme(**delta))
    print_delta_report(read_delta_report(integer_model))
    with status(f"generating {'' if emit_only else 'and building '}for {target.name}"):
        manifest = api.compile_model(integer_model, target, output, name=Path(model).stem, **options)
    for line in backend.compile_summary(manifest, target, output):
        console.print(line)


@cli.command()
@click.argument("model")
@click.option("--input", "input_path", required=True, type=PathParam("file"),
              help="Input samples (.npy/.npz): float (real values, quantized as the model does), or int8 (the "
                   "quantized input's raw values, e.g. 0..15 for a uint4 input).")
@click.option("--output", "output_path", type=PathParam("file"),
              help="Write the outputs (.npy for one output, .npz for several).")
@click.option("--int8", "raw", is_flag=True, help="Output the int8 tensors instead of dequantized floats.")
@click.option("--check", is_flag=True, help="Compiled project: compare with the integer reference bit for bit.")
@host_option
@netlist_option
@calib_option
@method_option
@rounding_option
@input_shape_option
@weight_bits_option
@activation_bits_option
def run(model: str, input_path: str, output_path: str | None, raw: bool, check: bool, host: bool, netlist: bool,
        calib: str | None, method: str, rounding: str | None, input_shapes: tuple[str, ...], weight_bits: int,
        activation_bits: int) -> None:
    """Run MODEL on its inputs and print the outputs.

    MODEL is a compiled project directory (from 'edgec compile'): built if needed and run on
    the target's QEMU board, printing instructions per inference. Otherwise MODEL is a model
    file run with the integer reference executor on the host (a float model is quantized
    first, which needs --calib). Inputs hold N samples; outputs are stacked.
    """
    variant = chosen_variant({"host": host, "netlist": netlist})
    if Path(model).is_dir():
        outputs = run_compiled(Path(model), input_path, raw, check, variant)
    else:
        if check or variant:
            raise EdgecError(f"--{'check' if check else variant} applies to compiled projects",
                             "compile first: edgec compile MODEL --target T -o DIR; then edgec run DIR --check")
        outputs = run_reference(model, input_path, raw, calib, method, rounding, input_shapes,
                                (weight_bits, activation_bits))
    print_outputs(outputs)
    if output_path:
        save_outputs(output_path, outputs)
        console.print(f"wrote {output_path}")


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
    print_profile(result)
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


@cli.command()
@click.argument("workload", type=PathParam("file"))
@click.option("--target", "-t", "target_name", required=True,
              help="The accelerator: a target of a kind that schedules several networks (tile-4x4, tile-8x8, or "
                   "your own .toml).")
@click.option("--tiles", type=click.IntRange(min=1),
              help="Tiles the miss rate, utilisation and waste are measured on (default: the whole grid); the "
                   "tiles each policy needs are searched over the whole grid anyway.")
@click.option("--frames", type=click.IntRange(min=1),
              help="Frames of the fastest pipeline to simulate (default: the workload's frames).")
@click.option("--policy", "policies", multiple=True, type=click.Choice(["reservation", "work-conserving", "ads-tile"]),
              help="A policy to run (repeat for several; default: all three).")
@click.option("--json", "json_path", type=PathParam("file"),
              help="Write per policy tiles_needed, miss_rate, reallocation_waste (and more) as JSON.")
@click.option("--plot", "plot_path", type=PathParam("file"),
              help="Write a PNG: tiles needed and waste per policy, and each policy's tile occupancy.")
def schedule(workload: str, target_name: str, tiles: int | None, frames: int | None, policies: tuple[str, ...],
             json_path: str | None, plot_path: str | None) -> None:
    """Schedule the networks of WORKLOAD (a .toml of networks and pipelines) on TARGET.

    Every network is mapped and simulated on every number of tiles; then each policy
    (reservation: fixed parallelism sized for the worst case; work-conserving: an elastic
    shared pool; ads-tile: isolation groups, elastic reservation and DAG-aware deadlines) is
    simulated over many frames with execution times that vary up to the workload's
    variability. Prints per policy the tiles it needs to miss no deadline, and its miss rate,
    utilisation and reallocation waste (docs/tile.md).
    """
    target = get_target(target_name)
    backend = backend_for_target(target)
    with status(f"scheduling {Path(workload).name} on {target.name}"):
        lines = backend.schedule(Path(workload), target, tiles=tiles, frames=frames, policies=list(policies) or None,
                                 json_path=Path(json_path) if json_path else None,
                                 plot_path=Path(plot_path) if plot_path else None)
    for line in lines:
        console.print(line, highlight=False)


@cli.command()
@click.argument("module")
@click.option("--delta", is_flag=True, help="Delta-Aware Training: weights that fit a delta encoding (docs/delta.md).")
@click.option("--sigma-branch", is_flag=True,
              help="Sigma-Branch: rebuild an nn.Sequential as a single-path tree of routed branches.")
@click.option("--data", required=True, type=PathParam("file"),
              help="Dataset .npz: x_train, y_train (class labels), optionally x_test, y_test.")
@click.option("-o", "--output", required=True, type=PathParam("file"),
              help="Trained model to write (.onnx); its log goes to OUTPUT.train.json.")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--scale", type=click.Choice(["fit", "int8", "pow2"]), default=None,
              help="--delta: fit (default): per-channel grids coarse enough for the deltas; int8: edgec's "
                   "max|w|/127 grid; pow2: 8-bit fixed point per layer (the paper's).")
@delta_options
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True,
              help="--sigma-branch: tree levels (2^depth leaves).")
@click.option("--split", default=None, metavar="I[,J...]",
              help="--sigma-branch: the layer index where each level starts (default: from the middle of the "
                   "network on).")
@click.option("--widths", default="0.5", show_default=True, metavar="W[,W...]",
              help="--sigma-branch: the fraction of channels each level's branches keep (one, or one per level).")
@click.option("--balance", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="--sigma-branch: weight of the load-balancing term (no leaf starves).")
def train(module: str, delta: bool, sigma_branch: bool, data: str, output: str, epochs: int, lr: float,
          batch_size: int, seed: int, scale: str | None, depth: int, split: str | None, widths: str, balance: float,
          **delta_flags) -> None:
    """Train the PyTorch MODULE (package.module:factory) for a compiler pass and write it as ONNX.

    --delta fine-tunes every Conv/Linear layer through a delta encoding (straight-through
    estimator): the result compiles with that encoding and zero reconstruction error (edgec
    compile OUTPUT --target ...); --delta-bits defaults to 4 here. --sigma-branch rebuilds a
    dense nn.Sequential as a tree (spherical 2-means routers, branches narrowed to the channels
    their samples use), fine-tunes it with soft routing and writes it routing hard, an ONNX If
    per router; the log holds parameters per path, leaf shares and accuracy.
    """
    from edgec.cli_train import train_delta, train_sigma_branch
    from edgec.frontend.torch_frontend import load_module_spec

    if delta == sigma_branch:
        raise EdgecError("edgec train needs one kind of training",
                         "give --delta (Delta-Aware Training) or --sigma-branch (Sigma-Branch)")
    common = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    if delta:
        delta_flags["delta_bits"] = delta_flags["delta_bits"] or 4
        scheme = delta_scheme(**delta_flags)
        train_delta(load_module_spec(module), data, output, scheme, scale=scale or "fit", **common)
        return
    if scale is not None or delta_flags["delta_bits"] is not None:
        raise EdgecError("--scale and --delta-* are options of --delta training", "leave them out with --sigma-branch")
    train_sigma_branch(load_module_spec(module), data, output, depth=depth, split=split, widths=widths,
                       balance=balance, **common)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="edgec")


if __name__ == "__main__":
    sys.exit(main())
