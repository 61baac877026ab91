"""Delta-encoded weights on FPGA targets (:mod:`edgec.backends.fpga.delta_rtl`): the decoder's
Verilog alone, bit for bit against the codec's :meth:`EncodedWeights.decode` (every scheme and
scope, delta widths 2 to 6, several SIMD and PE counts, every delta word at small widths, with
bubbles and clock-enable stalls), lint-clean; the folding's and the planner's restrictions;
and whole designs compiled from float models with ``delta=`` simulated against the integer
reference (slow tier: the command line on FC and conv nets, fixed and closed-loop schemes).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import helper, save

import edgec
from edgec.backend import open_project
from edgec.backends.fpga import delta_rtl
from edgec.backends.fpga.folding import fold
from edgec.backends.fpga.layers import Window
from edgec.backends.fpga.rtl import generate_rtl, hex_file, template_environment
from edgec.backends.fpga.simulate import simulate
from edgec.delta import DeltaScheme, reconstruct
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.inttype import IntType
from edgec.trace_compare import reference_outputs

from conftest import invoke, make_model, pool_cnn, tensor_info
from fpga_rtl_plans import U4, evaluate, mvu, needs_iverilog, needs_verilator, needs_yosys, packed
from fpga_units_helpers import tool

I3, I4, I8 = IntType(3, True), IntType(4, True), IntType(8, True)
SCHEMES = ("fixed", "consecutive", "closed-loop")
TESTBENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg [{vb}-1:0] mem [0:{n}-1];
  reg en, in_valid;
  reg [{db}-1:0] in_d;
  wire [{ob}-1:0] out_w;
  {module} dut ({ports}.in_d(in_d), .out_w(out_w));
  integer i, f;
  initial begin
    $readmemh("vectors.hex", mem);
    f = $fopen("results.hex", "w");
    {{en, in_valid, in_d}} = 0;
    repeat (2) begin #5 clk = 1'b1; #5 clk = 1'b0; end
    rst = 1'b0;
    for (i = 0; i < {n}; i = i + 1) begin
      {{en, in_valid, in_d}} = mem[i];
      #4 if (en && in_valid) $fwrite(f, "%h\\n", out_w);
      #1 clk = 1'b1;
      #5 clk = 1'b0;
    end
    $fclose(f);
    $finish;
  end
endmodule
"""


def delta_layer(weights: np.ndarray, weight_type: IntType, scheme: DeltaScheme, pe: int, simd: int):
    """An FC layer holding ``weights`` (made representable in ``scheme``) folded ``pe`` x ``simd``."""
    rows = reconstruct(weights, scheme, weight_type)
    layer = mvu(0, np.random.default_rng(0), U4, weight_type, U4, rows.shape[0], rows.shape[1], pe=pe, simd=simd)
    return dataclasses.replace(layer, weights=rows, delta=scheme)


def random_weights(rng, weight_type: IntType, out: int, k: int) -> np.ndarray:
    """Half the rows smooth random walks (small steps), half uniform (saturating steps)."""
    walk = np.cumsum(rng.integers(-3, 4, size=(out, k)), axis=1) + rng.integers(weight_type.min, weight_type.max + 1,
                                                                                  size=(out, 1))
    uniform = rng.integers(weight_type.min, weight_type.max + 1, size=(out, k))
    return np.where(np.arange(out)[:, None] % 2 == 0, np.clip(walk, weight_type.min, weight_type.max), uniform)


def write_decoder(layer, directory: Path) -> tuple[dict, list[Path]]:
    """The layer's decoder, ``edgec_rom`` and the base ROM image in ``directory``."""
    encoded = delta_rtl.check_layer(layer)
    bases = delta_rtl.base_words(layer, encoded)
    view = delta_rtl.decoder_view(layer, "edgec_l0_dec", bases, "bases.hex")
    env = template_environment()
    files = [directory / "edgec_l0_dec.v", directory / "edgec_rom.v"]
    files[0].write_text(env.get_template("edgec_delta_dec.v.j2").render(design="test", **view))
    files[1].write_text(env.get_template("edgec_rom.v.j2").render(design="test"))
    (directory / "bases.hex").write_text(hex_file(bases, layer.pe * layer.weight_type.bits))
    return view, files


def vectors(layer, rng, gap_rate: float = 0.2) -> tuple[list[str], list[int]]:
    """Two vectors' delta words in ROM order, each after random bubbles (en, no valid) and
    stalls (en low; junk deltas and valid): the vector lines and the weight words expected at
    each consumed word (the codec's decode, packed as the decoder's out_w)."""
    encoded = delta_rtl.encoded(layer)
    decoded = encoded.decode()
    pe, simd, db, wb = layer.pe, layer.simd, layer.delta.bits, layer.weight_type.bits
    width = pe * simd * db
    per_pe = [delta_rtl.delta_words(layer, encoded, p) for p in range(pe)]
    lines, expected = [], []
    for _ in range(2):
        for address in range(len(per_pe[0])):
            n, s = divmod(address, layer.vector_length // simd)
            for flags in ((0b10, 0b00, 0b01), (0b10, 0b00))[rng.integers(2)]:
                if rng.random() < gap_rate:
                    lines.append(f"{(flags << width) | int(rng.integers(0, 1 << min(width, 62))):x}")
            word = sum(w[address] << (p * simd * db) for p, w in enumerate(per_pe))
            lines.append(f"{(0b11 << width) | word:x}")
            weights = decoded[n * pe:(n + 1) * pe, s * simd:(s + 1) * simd].ravel()
            expected.append(sum((int(v) & ((1 << wb) - 1)) << (i * wb) for i, v in enumerate(weights)))
    return lines, expected


def run_decoder(layer, directory: Path, simulator: str = "iverilog", seed: int = 0) -> None:
    """Simulate the decoder of ``layer`` on :func:`vectors` and assert every word bit for bit."""
    view, files = write_decoder(layer, directory)
    lines, expected = vectors(layer, np.random.default_rng(seed))
    (directory / "vectors.hex").write_text("\n".join(lines) + "\n")
    ports = ".clk(clk), .rst(rst), .en(en), .in_valid(in_valid), " if view["stateful"] else ""
    db, ob = layer.pe * layer.simd * layer.delta.bits, layer.pe * layer.simd * layer.weight_type.bits
    (directory / "tb.v").write_text(TESTBENCH.format(vb=db + 2, n=len(lines), db=db, ob=ob, module=view["module"],
                                                     ports=ports))
    sources = [str(directory / "tb.v"), *map(str, files)]
    if simulator == "iverilog":
        subprocess.run([tool("iverilog"), "-g2012", "-o", "sim", *sources], cwd=directory, check=True,
                       capture_output=True)
        subprocess.run([tool("vvp"), "-n", "sim"], cwd=directory, check=True, capture_output=True)
    else:
        build = subprocess.run([tool("verilator"), "--binary", "-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                                "--top-module", "tb", "-o", "sim", *sources], cwd=directory, capture_output=True,
                               text=True)
        assert build.returncode == 0, build.stderr[-3000:]
        subprocess.run(["obj_dir/sim"], cwd=directory, check=True, capture_output=True)
    got = (directory / "results.hex").read_text().split()
    assert all(set(line) <= set("0123456789abcdef") for line in got), "the decoder gave unknown bits"
    assert [int(line, 16) for line in got] == expected


def lint(layer, directory: Path) -> None:
    view, files = write_decoder(layer, directory)
    done = subprocess.run([tool("verilator"), "--lint-only", "-Wall", "--top-module", view["module"],
                           *map(str, files)], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


# (scheme, scope, block, delta bits, pe, simd, out, k): every scheme and scope, widths 2..6,
# a block straddling no word, a row whose last block is shorter, one word a segment, one row a word.
POINTS = [(scheme, *rest) for scheme in SCHEMES for rest in [
    ("channel", 0, 4, 2, 3, 6, 12), ("tensor", 0, 3, 1, 4, 4, 16), ("block", 4, 2, 2, 2, 4, 12),
    ("block", 6, 5, 3, 3, 6, 15), ("block", 3, 6, 2, 3, 4, 9), ("channel", 0, 5, 1, 8, 3, 8),
    ("channel", 0, 3, 2, 1, 4, 5)]]


def point_layer(point, rng):
    scheme, scope, block, bits, pe, simd, out, k = point
    delta = DeltaScheme(bits, scheme, scope, block)
    return delta_layer(random_weights(rng, I8, out, k), I8, delta, pe, simd)


@needs_iverilog
@pytest.mark.parametrize("point", POINTS, ids=lambda p: "-".join(map(str, p)))
def test_the_decoder_gives_the_codecs_weights_bit_for_bit(point, tmp_path):
    run_decoder(point_layer(point, np.random.default_rng(sum(map(hash, map(str, point))) % 2**32)), tmp_path)


@needs_verilator
@pytest.mark.parametrize("point", POINTS, ids=lambda p: "-".join(map(str, p)))
def test_the_decoder_is_lint_clean_under_verilator_wall(point, tmp_path):
    lint(point_layer(point, np.random.default_rng(1)), tmp_path)


@needs_verilator
@pytest.mark.parametrize("point", [POINTS[0], POINTS[9], POINTS[16]], ids=lambda p: "-".join(map(str, p)))
def test_verilator_agrees(point, tmp_path):
    run_decoder(point_layer(point, np.random.default_rng(3)), tmp_path, simulator="verilator", seed=3)


def every_word(scheme: DeltaScheme, weight_type: IntType, simd: int) -> np.ndarray:
    """Rows that put every SIMD word of deltas behind a segment's first word (running: a word
    of zero deltas, then the word, from a base keeping the sums in range), or every word of
    values within one delta span (fixed)."""
    low, high = scheme.delta_min, scheme.delta_max
    rows = []
    if scheme.running:
        for number, word in enumerate(itertools.product(range(low, high + 1), repeat=simd)):
            sums = np.cumsum(word)
            bases = range(weight_type.min - min(0, sums.min()), weight_type.max - max(0, sums.max()) + 1)
            base = bases[number % len(bases)]
            rows.append([base] * simd + list(base + sums))
    else:
        span = 2 ** scheme.bits - 1
        for number, word in enumerate(itertools.product(range(span + 1), repeat=simd)):
            offset = weight_type.min + number % (weight_type.levels - span)
            rows.append([offset] * simd + [offset + v for v in word])
    return np.array(rows, dtype=np.int64)


@needs_iverilog
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(("weight_type", "bits", "simd"), [(I3, 2, 3), (I4, 2, 4), (I4, 3, 2)])
def test_every_delta_word_at_small_widths(scheme, weight_type, bits, simd, tmp_path):
    delta = DeltaScheme(bits, scheme, "channel")
    rows = every_word(delta, weight_type, simd)
    if delta.running:  # every delta word appears, the first lane's included, after a word of zeros
        words = delta_rtl.encoded(delta_layer(rows, weight_type, delta, 1, simd)).deltas[:, simd:]
        assert len({tuple(w) for w in words}) == (2 ** bits) ** simd
    pe = 2 if len(rows) % 2 == 0 else 1
    run_decoder(delta_layer(rows, weight_type, delta, pe, simd), tmp_path)


def test_the_folding_keeps_blocks_in_whole_words_and_the_rtl_refuses_a_split():
    rng = np.random.default_rng(4)
    layer = delta_layer(random_weights(rng, I8, 6, 24), I8, DeltaScheme(4, "closed-loop", "block", 4), 1, 1)
    # 6 multipliers reach the stream's rate: plain weights take simd 6, blocks of 4 pe 3 x simd 2
    assert (fold([dataclasses.replace(layer, delta=None)], clock_hz=100e6, fps=100e6 / 24)[0].simd) == 6
    folded = fold([layer], clock_hz=100e6, fps=100e6 / 24)[0]
    assert (folded.pe, folded.simd) == (3, 2)
    assert delta_rtl.simd_fits(layer, 2) and not delta_rtl.simd_fits(layer, 3)
    with pytest.raises(EdgecError, match="layer layer0: simd 3 splits its block:4 segments") as raised:
        generate_rtl([dataclasses.replace(layer, simd=3)], Path("unused"), name="t")
    assert "(fix: fold it with a simd that divides 4)" in raised.value.one_line()
    with pytest.raises(EdgecError, match="not representable"):
        delta_rtl.encoded(dataclasses.replace(layer, weights=random_weights(rng, I8, 6, 24)))


def mlp_model():
    """x[1,24] -> Gemm (16) -> Relu -> Gemm (4)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)]
    inits = {"w1": rng.normal(size=(16, 24)), "b1": rng.normal(size=16) * .1, "w2": rng.normal(size=(4, 16)),
             "b2": np.zeros(4)}
    return make_model(nodes, [tensor_info("x", [1, 24])], [tensor_info("y", [1, 4])],
                      {k: v.astype(np.float32) for k, v in inits.items()})


def compiled(model, target: str, out: Path, delta: DeltaScheme, **options) -> dict:
    """``edgec.compile`` of a float model with ``delta`` (saturating its untrained weights)."""
    shape = [int(d.dim_value) for d in model.graph.input[0].type.tensor_type.shape.dim]
    calib = np.random.default_rng(5).random((16, *shape[1:])).astype(np.float32)
    layout = {"input_layout": "nhwc"} if len(shape) == 4 else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return edgec.compile(model, target, out, calib, delta=delta, **layout, **options)


def assert_bit_exact(out: Path) -> None:
    backend, project = open_project(out)
    shape = [int(d) for d in project.model.graph.inputs[0].shape.numpy()]
    rows = backend.input_rows(project.model, [{"x": x[None]} for x in
                                              np.random.default_rng(7).random((4, *shape[1:])).astype(np.float32)])
    np.testing.assert_array_equal(backend.run(project, rows).outputs, reference_outputs(project.model, rows))


@needs_iverilog
def test_a_delta_encoded_mlp_simulates_bit_for_bit_and_reports_its_weight_memory(tmp_path):
    delta = DeltaScheme(4, "closed-loop", "channel")
    report = compiled(mlp_model(), "ice40-up5k", tmp_path / "out", delta, emit_only=True)
    assert_bit_exact(tmp_path / "out")
    fc1 = report["layers"][0]["delta"]
    assert fc1 == {"scheme": delta.describe(), "delta_bits": 16 * 24 * 4, "base_bits": 16 * 8,
                   "weight_memory_bits": 16 * 24 * 4 + 16 * 8, "plain_bits": 16 * 24 * 8, "int8_bits": 16 * 24 * 8,
                   "segments": 16, "decoder_resources": None}
    assert (tmp_path / "out" / "rtl" / "edgec_l0_dec.v").is_file()


def test_running_deltas_behind_a_reordering_transpose_and_the_finn_flow_are_refused(tmp_path):
    delta = DeltaScheme(4, "closed-loop", "channel")
    with pytest.raises(UnsupportedModelError, match="node 'fc' .* do not hold in the order the absorbed Transpose") \
            as raised:
        compiled(pool_cnn(2, flatten_spatial=2), "ice40-up5k", tmp_path / "never", delta, emit_only=True)
    assert "(fix: flatten channels-last" in raised.value.one_line() and not (tmp_path / "never").exists()
    with pytest.raises(EdgecError, match="layer conv1: the FINN flow does not take delta-encoded weights"):
        compiled(pool_cnn(2, 1), "zcu104", tmp_path / "finn", delta, flow="finn")


@needs_iverilog
def test_fixed_channel_deltas_follow_a_reordering_transpose(tmp_path):
    compiled(pool_cnn(2, flatten_spatial=2), "ice40-up5k", tmp_path / "out", DeltaScheme(3, "fixed", "channel"),
             emit_only=True)
    assert_bit_exact(tmp_path / "out")


@needs_iverilog
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_folded_conv_and_fc_plan_on_packed_cores_decodes_bit_for_bit(scheme, tmp_path):
    rng = np.random.default_rng(9)
    delta = DeltaScheme(3, scheme, "block", 6)
    window = Window(5, 5, 2, (3, 3), (1, 1), (1, 1, 1, 1), 3)
    conv = mvu(0, rng, U4, I8, U4, 6, 18, pe=3, simd=2, window=window)
    fc = mvu(1, rng, U4, I8, U4, 4, 150, pe=2, simd=3)
    layers = [packed(dataclasses.replace(layer, weights=reconstruct(layer.weights, delta, I8), delta=delta), "DSP48E2")
              for layer in (conv, fc)]
    assert all(layer.packing is not None for layer in layers)
    design = generate_rtl(layers, tmp_path, name="t")
    rows = rng.integers(0, 16, size=(3, 50))
    np.testing.assert_array_equal(simulate(tmp_path, design, rows).outputs, evaluate(layers, rows)[-1])


def cli_compile_and_check(tmp_path: Path, model, target: str, *options) -> dict:
    save(model, tmp_path / "model.onnx")
    shape = [int(d.dim_value) for d in model.graph.input[0].type.tensor_type.shape.dim]
    samples = np.random.default_rng(5).random((16, *shape[1:])).astype(np.float32)
    np.save(tmp_path / "calib.npy", samples)
    layout = ("--input-layout", "nhwc") if len(shape) == 4 else ()
    np.save(tmp_path / "x.npy", samples[:4].transpose(0, 2, 3, 1) if layout else samples[:4])
    out = tmp_path / "out"
    result = invoke("compile", tmp_path / "model.onnx", "--target", target, "-o", out, "--calib",
                    tmp_path / "calib.npy", *layout, *options)
    assert result.exit_code == 0, result.output
    result = invoke("run", out, "--input", tmp_path / "x.npy", "--check")
    assert result.exit_code == 0, result.output
    assert "check: all 4 outputs equal the integer reference bit for bit" in result.output
    return json.loads((out / "report.json").read_text())


@pytest.mark.slow
@needs_yosys
@pytest.mark.parametrize(("net", "scheme", "scope"), [("mlp", "closed-loop", "channel"), ("mlp", "fixed", "block:4"),
                                                      ("cnn", "closed-loop", "block:8"), ("cnn", "fixed", "channel")])
def test_the_command_line_compiles_and_checks_delta_encoded_nets_on_zcu104(net, scheme, scope, tmp_path):
    model = mlp_model() if net == "mlp" else pool_cnn(2, 1)
    report = cli_compile_and_check(tmp_path, model, "zcu104", "--fps", "1000000" if net == "mlp" else "50000",
                                   "--delta-bits", "4", "--delta-scheme", scheme, "--delta-scope", scope)
    encoded = [layer for layer in report["layers"] if "delta" in layer]
    assert len(encoded) == (2 if net == "mlp" else 3)
    assert any(layer["pe"] * layer["simd"] > 1 for layer in encoded)
    for layer in encoded:
        bits = layer["delta"]
        assert bits["weight_memory_bits"] < bits["int8_bits"] and bits["decoder_resources"]["lut"] > 0


@pytest.mark.slow
@needs_yosys
def test_the_command_line_builds_a_delta_encoded_cnn_bitstream_on_the_up5k(tmp_path):
    report = cli_compile_and_check(tmp_path, pool_cnn(2, 1), "ice40-up5k", "--activation-bits", "4", "--delta-bits", "4",
                                   "--delta-scheme", "closed-loop")
    assert report["bitstream"] and all("delta" in layer for layer in report["layers"] if layer["op"] != "MaxPool")
