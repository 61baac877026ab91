"""The options several ``edgec`` commands share, and the parameter types behind them.

Each ``*_option`` is a click decorator; a command lists the ones it takes, so that an option
reads the same (name, metavar, default, help) wherever it appears.
"""

from __future__ import annotations

from pathlib import Path

import click

from edgec.calibration import METHODS
from edgec.delta import DELTA_BITS, SCHEMES, DeltaScheme
from edgec.errors import EdgecError
from edgec.fixedpoint import ROUNDING_MODES
from edgec.inttype import ACTIVATION_BITS, VALUE_BITS
from edgec.passes.input_layout import LAYOUTS


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


input_shape_option = click.option(
    "--input-shape", "input_shapes", multiple=True, metavar="[NAME=]D0,D1,...",
    help="Static shape of an input (repeat per input); needed for dynamic shapes and PyTorch specs.")
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
    "--activation-bits", type=click.Choice([str(b) for b in ACTIVATION_BITS]), default="8", show_default=True,
    callback=lambda context, parameter, value: int(value),
    help="Width of post-training quantized activations: asymmetric per tensor, signed (4: [-8, 7]), stored as "
         "int8; or 16, TFLite's 16x8 scheme (symmetric int16 activations, int64 biases; convolutions, fully "
         "connected, add/sub/mul, pools, clamps and data movement). Softmax outputs stay int8; tensors a "
         "QDQ/QONNX model quantized keep their own.")


def delta_options(command):
    """``--delta-bits``, ``--delta-scheme``, ``--delta-scope`` and ``--delta-exact``; read them
    back with :func:`delta_scheme`."""
    for option in reversed((
        click.option("--delta-bits", type=click.IntRange(DELTA_BITS.start, DELTA_BITS.stop - 1), default=None,
                     help="Store Conv/FullyConnected weights as full-width references plus deltas of this many "
                          "bits (Delta-Aware Training, docs/delta.md). A model trained for it (edgec train "
                          "--delta) is encoded exactly; any other is saturated, with a warning giving the error."),
        click.option("--delta-scheme", type=click.Choice(SCHEMES), default="closed-loop", show_default=True,
                     help="fixed: each weight is its group's reference plus a delta; consecutive: a running sum "
                          "of deltas (errors accumulate); closed-loop: a running sum whose deltas correct the "
                          "reconstruction so far."),
        click.option("--delta-scope", default="channel", show_default=True, metavar="tensor|channel|block:N",
                     help="Weights sharing one reference: the whole tensor, one output channel, or blocks of N."),
        click.option("--delta-exact", is_flag=True,
                     help="Fail when a weight does not fit the deltas instead of saturating it."),
    )):
        command = option(command)
    return command


def delta_scheme(delta_bits: int | None, delta_scheme: str, delta_scope: str, delta_exact: bool) -> DeltaScheme | None:
    """The :class:`DeltaScheme` the ``--delta-*`` options ask for, or None without ``--delta-bits``."""
    if delta_bits is None:
        return None
    return DeltaScheme.parse(delta_bits, delta_scheme, delta_scope, saturate=not delta_exact)


ignore_size_limits_option = click.option(
    "--ignore-size-limits", is_flag=True, help="Go on even if the model exceeds the part's flash or RAM.")
rounding_option = click.option("--rounding", type=click.Choice(ROUNDING_MODES), default=None,
                               help="Requantization rounding: 'double' (TFLM/CMSIS-NN), 'single' (TFLITE_SINGLE_ROUNDING), "
                                    "'litert' (LiteRT's reference kernels: single in fully connected layers). "
                                    "Default: double, or what an integer model records.")

# The run variants of 'edgec run' are flags of their own, not flag_values of one destination
# (where the last one given would silently win), so that chosen_variant can refuse two at once.
# A backend's run_variants name those it takes; the others are refused once the project is open.
host_option = click.option("--host", is_flag=True,
                           help="Compiled Cortex-M project: run the host build (gcc, ASan + UBSan), not QEMU.")
netlist_option = click.option("--netlist", is_flag=True,
                              help="Compiled FPGA project: simulate the placed-and-routed netlist, not the RTL.")


def chosen_variant(flags: dict[str, bool]) -> str | None:
    """The run variant the flags given turn on (``flags``: variant -> given), or None when none
    is; two or more at once is an error naming them."""
    given = [f"--{name}" for name, on in flags.items() if on]
    if len(given) > 1:
        named = " and ".join(given)
        raise EdgecError(f"{named} choose different runs of the project", f"pick one of {named}")
    return given[0][2:] if given else None
