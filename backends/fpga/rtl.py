"""Layer plan -> a streaming dataflow design in Verilog (one top module, ``edgec_top``).

Every stage of the plan (:mod:`edgec.backends.fpga.layers`) becomes hardware reading one
element stream and writing one, with AXI-Stream-style ``tdata``/``tvalid``/``tready``
handshakes between stages:

* a convolution: a sliding window unit (``edgec_l<i>_swu``: a line buffer of ``R`` input rows,
  padding with ``Window.pad_value``) feeding a matrix-vector unit; a fully connected layer: the
  matrix-vector unit alone. ``R`` is the power of two at least kernel height + stride (the
  next output row's rows arrive while one is read) and at least the rows from the last output
  row's first to the image's end plus the next image's first window rows (the next image
  streams in while the last output row is read), so back-to-back images never wait on space;
* a matrix-vector unit (``edgec_l<i>_mvu``): a two-bank input buffer of ``simd``-element words
  (one vector written while the other is computed on), one weight ROM per PE (``pe`` output
  channels by ``simd`` inputs per cycle, ``$readmemh``-initialised, registered read so yosys
  maps it to block RAM), the multiply-accumulate core, a serialiser of the PE sums and the
  thresholding stage ``edgec_l<i>_thr``. The core is the plain ``edgec_mac`` (one multiplier a
  product), or, where the layer carries a packing (``MvuLayer.packing``, scheme ``sdv`` or
  ``dual8x8``), the packed core ``edgec_l<i>_mac`` (``templates/edgec_packed_mac.v.j2``, same
  ports): PEs in groups of ``lanes``, one packed unit (:mod:`.packed_rtl`) per group and SIMD
  input, so ``ceil(pe / lanes) * simd`` DSPs; a PE count that is not a multiple of ``lanes``
  leaves the last group's spare lanes on zero weights. ``generate_rtl(..., packed=False)``
  keeps the plain core everywhere (to compare packed with unpacked);
* a row-packed convolution (:mod:`.conv_rows`, built when the layer's packing has scheme
  ``conv`` and ``generate_rtl(..., packed=True)``): the window unit ``edgec_l<i>_swu`` streams
  ``M`` input columns of one (kernel row, channel) pair a beat (``templates/edgec_swu_rows.v.j2``),
  the core ``edgec_l<i>_mac`` (``templates/edgec_conv_core.v.j2``) has one ``edgec_conv_mac``
  per output channel and SIMD pair, and the MVU adds each pass's carry segments into the next
  and drops the output columns outside the row, giving ``pe * M`` outputs per pass;
* thresholding: a pipelined binary search, one pipeline level per output bit, each level's
  thresholds in a ROM of its own (level ``j`` holds, per channel, the ``2**j`` thresholds it may
  compare with). It takes one element a cycle at every width with ``bits`` comparators (parallel
  comparators would need ``levels - 1``: 255 at 8 bits), latency ``bits + 1``;
* a max pool: a sliding window unit (padding with the type's minimum, which never wins) and a
  reducer ``edgec_l<i>_pool`` keeping one running maximum per channel;
* a residual add (``edgec_l<i>_add``): the stream its skip input comes from (``l<k>``, or
  ``l_in`` for the plan's input) is forked (``edgec_<stream>_fork``: both readers must take a
  beat) to the next stage and to a skip FIFO (``edgec_<stream>_fifo``); the add takes one main
  and one skip element together, looks up each one's rescaled term in a ROM (one entry per
  input value), adds them and thresholds the sum (the same ``edgec_l<i>_thr`` unit, one
  channel). The FIFO holds ``depth`` >= the ``E`` elements of the skip stream per inference
  (a power of two), which suffices for the main branch never to deadlock: if the fork waits
  on a full FIFO, the add has taken every skip element before ``j`` (the FIFO's head) and the
  fork has sent element ``j + depth - 1 >= j + E - 1``, so the main branch has been given
  every input element of ``j``'s inference; a stage emits an inference's outputs from that
  inference's inputs alone, so main element ``j`` reaches the add, which takes it with skip
  element ``j`` and frees a FIFO word. Nothing else waits on the FIFO, so every wait ends.

Stream contract: one beat is one element (raw stored integer, two's complement of its type's
bits), in the plan's element order (NHWC, row-major); the top's ``s_*`` takes the first
layer's input, ``m_*`` gives the last layer's output; inferences run back to back without a
reset (``rst`` is synchronous, active high). Element-serial streams bound each stage at one
element a cycle, so a stage's initiation interval is the largest of its input elements, its
window elements (``positions * k`` for a sliding window), its compute (``positions * (out/pe) *
(k/simd)``) and its output elements (:func:`edgec.backends.fpga.folding.layer_cycles`, the
cost model the folding follows); measured, the design's interval equals the slowest stage's.
No FIFOs sit between stages: every stage registers its output and stalls as a whole while
it is not taken (``en = !out_valid || ready``), and the buffers inside the stages (two input
banks, ``R`` line-buffer rows) already decouple a stage's input from its output.

Memory files are read by ``$readmemh`` relative to the working directory: simulate and
synthesise with the design's directory (or a copy of its ``.hex`` files) as the working one.

The accumulator width is the smallest two's complement width holding the exact reachable
range ``sum_k min/max(w * x_min, w * x_max)`` over the layer's channels (plus one for the
padding threshold); thresholds are clamped to that range, which changes no comparison.

Verilog comes from Jinja2 templates (``templates/*.v.j2``, ``StrictUndefined``) rather than an
HDL library such as Amaranth: the output is readable, hand-style Verilog with the plan's
constants written in, no extra toolchain is needed to build or read it, and the C backend
generates its sources the same way. Output is deterministic: the same plan gives
byte-identical files, each starting with a generated-by-edgec header.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jinja2
import numpy as np

from edgec import __version__
from edgec.backends.fpga import conv_packed_rtl, conv_rows, delta_rtl, packed_rtl
from edgec.backends.fpga.folding import layer_cycles
from edgec.backends.fpga.lanes import Packing
from edgec.backends.fpga.layers import AddLayer, Layer, MvuLayer, PoolLayer, Window, check_plan
from edgec.backends.fpga.thresholds import accumulator_range, signed_bits
from edgec.errors import EdgecError

PACKAGE = Path(__file__).resolve().parent
#: The design description :func:`generate_rtl` writes next to the sources.
DESIGN_FILE = "design.json"
TOP = "edgec_top"
#: Library modules every design uses (no layer constants in them).
LIBRARY = ("edgec_rom", "edgec_mac")


@dataclasses.dataclass(frozen=True)
class StageInstance:
    """One plan layer in the design: its instances in ``edgec_top`` and its output stream
    (``<stream>_tdata/_tvalid/_tready`` in ``edgec_top``, for traces)."""

    index: int
    name: str
    instances: tuple[str, ...]
    stream: str
    elements: int
    bits: int
    signed: bool
    cycles: int  # the stage's modelled cycles per inference (:func:`folding.layer_cycles`)


@dataclasses.dataclass(frozen=True)
class RtlDesign:
    """A generated design: ``sources`` and ``memories`` are paths relative to its directory."""

    top: str
    sources: tuple[str, ...]
    memories: tuple[str, ...]
    in_bits: int
    out_bits: int
    in_signed: bool
    out_signed: bool
    in_elements: int
    out_elements: int
    layers: tuple[StageInstance, ...]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RtlDesign:
        data = json.loads(text)
        data["layers"] = tuple(StageInstance(**{**s, "instances": tuple(s["instances"])}) for s in data["layers"])
        return cls(**{**data, "sources": tuple(data["sources"]), "memories": tuple(data["memories"])})


def load_design(design_dir: Path) -> RtlDesign:
    """The :class:`RtlDesign` that :func:`generate_rtl` wrote into ``design_dir``."""
    path = Path(design_dir) / DESIGN_FILE
    if not path.is_file():
        raise EdgecError(f"{path} is missing: not a design generated by edgec", "generate the RTL again")
    return RtlDesign.from_json(path.read_text(encoding="utf-8"))


def bits_for(count: int) -> int:
    """Bits of a counter or address taking ``count`` values (at least 1)."""
    return max(1, (count - 1).bit_length())


def mask(value: int, bits: int) -> int:
    return int(value) & ((1 << bits) - 1)


def hex_file(words: list[int], width: int, header: str = "") -> str:
    """``$readmemh`` text: one word a line, ``width`` bits, two's complement, after an optional
    ``//`` comment line ``header``."""
    digits = (width + 3) // 4
    return (f"// {header}\n" if header else "") + "".join(f"{mask(w, width):0{digits}x}\n" for w in words)


def pack(values, bits: int) -> int:
    """``values`` as one word, element ``j`` at bits ``[j*bits +: bits]``."""
    return sum(mask(v, bits) << (j * bits) for j, v in enumerate(values))


def ulit(value: int, width: int) -> str:
    """An unsigned Verilog literal of ``width`` bits."""
    if not 0 <= value < (1 << width):
        raise ValueError(f"{value} does not fit {width} unsigned bits")
    return f"{width}'d{value}"


def slit(value: int, width: int) -> str:
    """A signed Verilog literal of ``width`` bits."""
    if not -(1 << (width - 1)) <= value < (1 << (width - 1)):
        raise ValueError(f"{value} does not fit {width} signed bits")
    return f"{width}'sd{value}" if value >= 0 else f"-{width}'sd{-value}"


def zext(signal: str, width: int, to: int) -> str:
    """``signal`` (``width`` bits) zero-extended to ``to`` bits, as a Verilog expression."""
    return signal if width == to else f"{{{ulit(0, to - width)}, {signal}}}"


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals.update(ulit=ulit, slit=slit, zext=zext, bits_for=bits_for, version=__version__)
    return env


def _window_view(window: Window, bits: int, pad_raw: int) -> dict:
    """Constants of a sliding window unit over ``window`` (see ``edgec_swu.v.j2``)."""
    kh, kw = window.kernel
    last_top = (window.out_h - 1) * window.stride[0] - window.pads[0]  # first row of the last output row
    rows = 1 << bits_for(max(kh + window.stride[0], window.in_h - last_top + max(kh - window.pads[0], 0)))
    row = window.in_w * window.channels
    depth = rows * row
    span = max(window.in_h + rows + kh + window.stride[0], window.in_w + kw + window.stride[1], depth) + 1
    return {"in_h": window.in_h, "in_w": window.in_w, "c": window.channels, "kh": kh, "kw": kw,
            "sh": window.stride[0], "sw": window.stride[1], "pt": window.pads[0], "pl": window.pads[1],
            "oh": window.out_h, "ow": window.out_w, "x": bits, "pad": mask(pad_raw, bits),
            "rows": rows, "rw": bits_for(rows), "row": row, "depth": depth, "aw": bits_for(depth),
            "pw": signed_bits(-span, span), "cw": bits_for(window.channels), "khw": bits_for(kh),
            "kww": bits_for(kw), "ohw": bits_for(window.out_h), "oww": bits_for(window.out_w),
            "colw": bits_for(row)}


def _rows_window_view(layer: MvuLayer) -> dict:
    """Constants of the banked sliding window unit of a row-packed convolution
    (``edgec_swu_rows.v.j2``): the element-serial unit's over the wide window, with ``m`` banks
    of ``rows x passes x channels`` elements each."""
    window = conv_rows.wide_window(layer)
    view = _window_view(window, layer.input_type.bits, window.pad_value)
    depth = view["rows"] * window.out_w * window.channels
    span = max(window.in_h + view["rows"] + window.kernel[0] + window.stride[0],
               window.in_w + 2 * window.kernel[1] + window.pads[1], depth) + 1
    view.update(m=window.kernel[1], bw=bits_for(window.kernel[1]), depth=depth, aw=bits_for(depth),
                pw=signed_bits(-span, span), colw=bits_for(window.in_w))
    return view


def _threshold_files(thresholds: np.ndarray, lo: int, hi: int, accw: int, module: str,
                     header: str) -> tuple[int, dict[str, str]]:
    """The search levels and the per-level ROM files of ``edgec_thr.v.j2`` for ``thresholds
    [channels, levels - 1]`` over sums in ``[lo, hi]`` (padded with, and clamped to, ``hi + 1``)."""
    channels = thresholds.shape[0]
    levels = thresholds.shape[1].bit_length()
    padded = np.full((channels, (1 << levels) - 1), hi + 1, dtype=np.int64)
    padded[:, :thresholds.shape[1]] = np.clip(thresholds.astype(np.int64), lo, hi + 1)
    files = {}
    for j in range(levels):
        step = 1 << (levels - j)
        table = padded[:, step // 2 - 1::step]  # [channels, 2**j]: index p*step + step/2 - 1
        files[f"{module}_t{j}.hex"] = hex_file([int(v) for v in table.ravel()], accw,
                                               f"{header}, thresholds of search level {j}")
    return levels, files


def _mvu_files(layer: MvuLayer, module: str, design: str, rows_packed: bool = False) -> tuple[dict, dict[str, str]]:
    """The view of ``edgec_mvu.v.j2``/``edgec_thr.v.j2`` and the memory files of one MVU
    (``rows_packed``: of a row-packed convolution, :mod:`.conv_rows`)."""
    header = f"generated by edgec {__version__} for {design}: layer {layer.index} ({layer.name})"
    a, w, o = layer.input_type.bits, layer.weight_type.bits, layer.output_type.bits
    pe, simd, channels, k = layer.pe, layer.simd, layer.out_channels, layer.vector_length
    low, high = accumulator_range(layer.weights, layer.input_type)
    lo, hi = int(low.min()), int(high.max())
    accw = signed_bits(lo, hi + 1)
    files = {}
    rows = rows_view(layer) if rows_packed else {"rows": False, "segs": 1}
    if rows_packed:  # a beat is a pair's M activations, a weight word a pair's N taps
        if layer.delta is not None:
            raise EdgecError(f"layer {layer.name}: a row-packed convolution does not decode delta-encoded weights",
                             "build it with SDV lanes or the plain core (the folding does for such layers)")
        a, w, k = a * rows["m"], w * rows["taps"], conv_rows.pairs(layer)
    nf, sf = channels // pe, k // simd
    decoder, rom_bits = None, w
    if layer.delta is not None:  # the ROMs hold deltas, the decoder gives the core weights
        encoded = delta_rtl.check_layer(layer)
        bases = delta_rtl.base_words(layer, encoded)
        decoder = delta_rtl.decoder_view(layer, f"{module[:-4]}_dec", bases, f"{module}_b.hex")
        if decoder["const_base"] is None:
            files[f"{module}_b.hex"] = hex_file(bases, pe * w, f"{header}, delta bases")
        rom_bits = layer.delta.bits
    for p in range(pe):
        if rows_packed:
            words = [pack(word, layer.weight_type.bits) for word in conv_rows.weight_words(layer, p)]
        elif decoder is not None:
            words = delta_rtl.delta_words(layer, encoded, p)
        else:
            words = [pack(layer.weights[n * pe + p, s * simd:(s + 1) * simd], w) for n in range(nf) for s in range(sf)]
        files[f"{module}_w{p}.hex"] = hex_file(words, simd * rom_bits, f"{header}, "
                                               f"{'deltas' if decoder else 'weights'} of PE {p}")
    levels, thresholds = _threshold_files(layer.thresholds, lo, hi, accw, module, header)
    files.update(thresholds)
    view = {"module": module, "name": layer.name, "index": layer.index, "a": a, "w": w, "o": o,
            "a_signed": int(layer.input_type.signed), "w_signed": int(layer.weight_type.signed),
            "pe": pe, "simd": simd, "channels": channels, "k": k, "nf": nf, "sf": sf,
            "nfw": bits_for(nf), "sfw": bits_for(sf), "waw": bits_for(nf * sf), "siw": bits_for(simd),
            "outs": pe * rows.get("m", 1), "pcw": bits_for(pe * rows.get("m", 1) + 1), "chw": bits_for(channels),
            "accw": accw, "acc_lo": lo, "acc_hi": hi, "levels": levels, "out_min": mask(layer.output_type.min, o),
            "thr": f"{module[:-4]}_thr", "dec": decoder, "rw": rom_bits, **rows}
    return view, files


def rows_view(layer: MvuLayer) -> dict:
    """The row-combine constants of a row-packed MVU (``edgec_mvu.v.j2``): ``m`` columns a
    window, ``taps``, ``segs`` segments, ``passes`` windows a row, and per segment ``k < m`` the
    Verilog condition (on the window counter ``ps``) that keeps it (:func:`conv_rows.kept_columns`)."""
    m, taps, count = conv_rows.inputs_per_window(layer), layer.window.kernel[1], conv_rows.passes(layer)
    keep = []
    for k in range(m):
        kept = [ps for ps in range(count) if k in conv_rows.kept_columns(layer, ps)]
        dropped = [ps for ps in range(count) if ps not in kept]
        keep.append("1'b1" if not dropped else "1'b0" if not kept else
                    " && ".join(f"ps != {ulit(ps, bits_for(count))}" for ps in dropped))
    return {"rows": True, "m": m, "taps": taps, "segs": m + taps - 1, "passes": count,
            "out_w": layer.window.out_w, "keep": keep}


def _add_files(layer: AddLayer, module: str, design: str) -> tuple[dict, dict[str, str]]:
    """The view of ``edgec_add.v.j2``/``edgec_thr.v.j2`` and the memory files of one add: the
    two term tables (at the width of the sum, two's complement: a term may wrap, the sum of
    two never does) and the thresholds, written as two equal channels so that the unit's
    channel address has its one bit (the add always reads channel 0)."""
    header = f"generated by edgec {__version__} for {design}: layer {layer.index} ({layer.name})"
    lo, hi = layer.sum_range()
    sw = signed_bits(lo, hi + 1)
    files = {f"{module}_a.hex": hex_file([int(v) for v in layer.table], sw, f"{header}, main input terms"),
             f"{module}_b.hex": hex_file([int(v) for v in layer.skip_table], sw, f"{header}, skip input terms")}
    levels, thresholds = _threshold_files(np.repeat(layer.thresholds, 2, axis=0), lo, hi, sw, module, header)
    files.update(thresholds)
    view = {"module": module, "name": layer.name, "index": layer.index, "a": layer.input_type.bits,
            "b": layer.skip_type.bits, "o": layer.output_type.bits, "a_signed": int(layer.input_type.signed),
            "b_signed": int(layer.skip_type.signed), "sw": sw, "accw": sw, "channels": 2, "chw": 1,
            "levels": levels, "out_min": mask(layer.output_type.min, layer.output_type.bits),
            "thr": f"{module[:-4]}_thr"}
    return view, files


def fifo_depth(layer: AddLayer) -> int:
    """Words of an add's skip FIFO: the power of two at least its elements per inference (the
    module docstring says why that never deadlocks)."""
    return 1 << bits_for(layer.elements)


def _stage_cycles(layer: Layer) -> int:
    """Modelled cycles per inference: an add takes one element pair a cycle."""
    return layer.elements if isinstance(layer, AddLayer) else layer_cycles(layer)


def _packed_core(layer: MvuLayer, packing: Packing, view: dict) -> dict:
    """The view of ``edgec_packed_mac.v.j2`` for ``layer`` realised with ``packing`` (checked
    against the layer: same types, a unit for the scheme, long enough accumulations)."""
    if packing.scheme not in packed_rtl.UNITS:
        raise EdgecError(f"layer {layer.name}: no packed MAC unit for the '{packing.scheme}' packing",
                         f"attach a packing with RTL ({', '.join(packed_rtl.UNITS)}) or none")
    if (packing.weight_type, packing.input_type) != (layer.weight_type, layer.input_type) \
            or packing.accumulation < view["sf"]:
        raise EdgecError(f"layer {layer.name}: its packing ({packing.describe()}) is not planned for "
                         f"{layer.weight_type} x {layer.input_type} over {view['sf']} cycles", "plan its packing again")
    return {"module": f"{view['module'][:-4]}_mac", "name": layer.name, "index": layer.index, "pe": layer.pe,
            "simd": layer.simd, "w": view["w"], "a": view["a"], "accw": view["accw"], "lanes": packing.lanes,
            "groups": -(-layer.pe // packing.lanes), "unit": packed_rtl.module_name(packing),
            "unit_params": packed_rtl.parameter_list(packing), "unit_acc": packing.acc_bits,
            "primitive": packing.primitive, "description": packing.describe(),
            "latency": packed_rtl.LATENCY + 1}


def _conv_core(layer: MvuLayer, view: dict) -> dict:
    """The view of ``edgec_conv_core.v.j2`` for a row-packed ``layer`` (checked: a unit for its
    packing, planned for the layer's types, taps and accumulation)."""
    packing = layer.packing
    if (packing.weight_type, packing.input_type) != (layer.weight_type, layer.input_type) \
            or packing.weights_per_word != layer.window.kernel[1] or packing.accumulation < view["sf"] \
            or layer.pe != layer.out_channels or not conv_rows.row_packable(layer):
        raise EdgecError(f"layer {layer.name}: its packing ({packing.describe()}) is not planned for a row of "
                         f"{layer.window.kernel[1]} taps of {layer.weight_type} x {layer.input_type} over "
                         f"{view['sf']} cycles with every output channel at once", "plan its packing again")
    return {"module": f"{view['module'][:-4]}_mac", "name": layer.name, "index": layer.index, "pe": layer.pe,
            "simd": layer.simd, "n": packing.weights_per_word, "m": packing.inputs_per_word,
            "w": layer.weight_type.bits, "a": layer.input_type.bits, "accw": view["accw"], "segs": packing.lanes,
            "unit": conv_packed_rtl.MODULE, "unit_params": conv_packed_rtl.parameter_list(packing),
            "unit_acc": packing.acc_bits, "primitive": packing.primitive, "description": packing.describe(),
            "latency": conv_packed_rtl.LATENCY + 1}


def _check_chain(layers: list[Layer]) -> None:
    if not layers:
        raise EdgecError("the layer plan is empty", "compile a model with at least one layer")
    try:
        check_plan(layers)
    except ValueError as error:
        raise EdgecError(f"layer plan: {error}", "re-plan the model") from error


def generate_rtl(layers: list[Layer], out_dir: Path, *, name: str, packed: bool = True) -> RtlDesign:
    """Write the Verilog sources, memory files and ``design.json`` of ``layers`` into ``out_dir``.

    ``name`` (the model's name) appears in the headers only; the top module is always
    ``edgec_top`` with the ports of the module docstring's stream contract. Each MVU with a
    ``packing`` gets the packed core when ``packed`` (the plain one otherwise).
    """
    _check_chain(layers)
    env = template_environment()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts: dict[str, str] = {}
    memories: dict[str, str] = {}
    stages, instances = [], []
    for module in LIBRARY:
        texts[f"{module}.v"] = env.get_template(f"{module}.v.j2").render(design=name)
    forks = {}  # the index of the stage whose stream is forked (-1: the input) -> the fork's view
    for layer in layers:
        if isinstance(layer, AddLayer):
            stream = "l_in" if layer.skip_from < 0 else f"l{layer.skip_from}"
            depth = fifo_depth(layer)
            fork = {"stream": stream, "x": layer.skip_type.bits, "add": layer.index, "depth": depth,
                    "aw": bits_for(depth), "fork": f"edgec_{stream}_fork", "fifo": f"edgec_{stream}_fifo"}
            texts[f"{fork['fork']}.v"] = env.get_template("edgec_fork.v.j2").render(
                design=name, module=fork["fork"], **fork)
            texts[f"{fork['fifo']}.v"] = env.get_template("edgec_fifo.v.j2").render(
                design=name, module=fork["fifo"], **fork)
            forks[layer.skip_from] = fork
    for layer in layers:
        prefix = f"edgec_l{layer.index}"
        source = "l_in" if layer.index == 0 else f"l{layer.index - 1}"
        inst = {"index": layer.index, "name": layer.name, "stream": f"l{layer.index}",
                "in_bits": layer.input_type.bits, "out_bits": layer.output_type.bits, "swu": None,
                "src": f"{source}_main" if layer.index - 1 in forks else source, "skip": None,
                "fork": forks.get(layer.index), "win_bits": layer.input_type.bits}
        rows_packed = packed and conv_rows.is_row_packed(layer)
        if isinstance(layer, AddLayer):
            view, files = _add_files(layer, f"{prefix}_add", name)
            texts[f"{prefix}_add.v"] = env.get_template("edgec_add.v.j2").render(design=name, **view)
            texts[f"{prefix}_thr.v"] = env.get_template("edgec_thr.v.j2").render(design=name, **view)
            memories.update(files)
            inst.update(core=view["module"], kind="add", skip=f"{forks[layer.skip_from]['stream']}_skip")
        elif rows_packed:
            swu = {**_rows_window_view(layer), "module": f"{prefix}_swu", "name": layer.name, "index": layer.index}
            texts[f"{prefix}_swu.v"] = env.get_template("edgec_swu_rows.v.j2").render(design=name, **swu)
            inst.update(swu=swu["module"], win_bits=swu["m"] * layer.input_type.bits)
        elif layer.window is not None:
            pad = layer.window.pad_value if isinstance(layer, MvuLayer) else layer.input_type.min
            swu = {**_window_view(layer.window, layer.input_type.bits, pad), "module": f"{prefix}_swu",
                   "name": layer.name, "index": layer.index}
            texts[f"{prefix}_swu.v"] = env.get_template("edgec_swu.v.j2").render(design=name, **swu)
            inst["swu"] = swu["module"]
        if isinstance(layer, MvuLayer):
            view, files = _mvu_files(layer, f"{prefix}_mvu", name, rows_packed)
            view.update(mac="edgec_mac", packing="")
            if rows_packed:
                core = _conv_core(layer, view)
                texts[f"{core['module']}.v"] = env.get_template("edgec_conv_core.v.j2").render(design=name, **core)
                texts.update(conv_packed_rtl.unit_sources(layer.packing))
                view.update(mac=core["module"], packing=core["description"])
            elif packed and layer.packing is not None and layer.packing.scheme != "none":
                core = _packed_core(layer, layer.packing, view)
                texts[f"{core['module']}.v"] = env.get_template("edgec_packed_mac.v.j2").render(design=name, **core)
                texts.update(packed_rtl.unit_sources(layer.packing))
                view.update(mac=core["module"], packing=core["description"])
            if view["dec"] is not None:
                texts[f"{prefix}_dec.v"] = env.get_template("edgec_delta_dec.v.j2").render(design=name, **view["dec"])
            texts[f"{prefix}_mvu.v"] = env.get_template("edgec_mvu.v.j2").render(design=name, **view)
            texts[f"{prefix}_thr.v"] = env.get_template("edgec_thr.v.j2").render(design=name, **view)
            memories.update(files)
            inst["core"], inst["kind"] = view["module"], "mvu"
        elif isinstance(layer, PoolLayer):
            view = {"module": f"{prefix}_pool", "name": layer.name, "index": layer.index,
                    "x": layer.input_type.bits, "signed": int(layer.input_type.signed),
                    "c": layer.window.channels, "cw": bits_for(layer.window.channels),
                    "kk": layer.window.kernel[0] * layer.window.kernel[1],
                    "kkw": bits_for(layer.window.kernel[0] * layer.window.kernel[1])}
            texts[f"{prefix}_pool.v"] = env.get_template("edgec_pool.v.j2").render(design=name, **view)
            inst["core"], inst["kind"] = view["module"], "pool"
        instances.append(inst)
        names = tuple(f"u_l{layer.index}_{kind}" for kind in (("swu",) if inst["swu"] else ()) + (inst["kind"],))
        stages.append(StageInstance(layer.index, layer.name, names, inst["stream"], layer.output_elements,
                                    layer.output_type.bits, layer.output_type.signed, _stage_cycles(layer)))
    texts[f"{TOP}.v"] = env.get_template("edgec_top.v.j2").render(
        design=name, stages=instances, input_fork=forks.get(-1), in_bits=layers[0].input_type.bits,
        out_bits=layers[-1].output_type.bits, last=instances[-1]["stream"])
    for relative, text in {**texts, **memories}.items():
        (out_dir / relative).write_text(text, encoding="utf-8")
    design = RtlDesign(top=TOP, sources=tuple(sorted(texts)), memories=tuple(sorted(memories)),
                       in_bits=layers[0].input_type.bits, out_bits=layers[-1].output_type.bits,
                       in_signed=layers[0].input_type.signed, out_signed=layers[-1].output_type.signed,
                       in_elements=layers[0].input_elements, out_elements=layers[-1].output_elements,
                       layers=tuple(stages))
    (out_dir / DESIGN_FILE).write_text(design.to_json(), encoding="utf-8")
    return design
