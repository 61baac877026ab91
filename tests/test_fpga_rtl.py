"""The FPGA backend's dataflow RTL: generated Verilog, simulated in iverilog and Verilator.

Hand-made layer plans (random weights of their type, random sorted thresholds) cover FC,
convolutions (3x3 pad 1 stride 1 and 2, 1x1), max pools, a conv -> pool -> conv -> fc chain,
PE/SIMD foldings, signed and unsigned inputs and 2/4/8-bit types; every simulated output
equals a numpy evaluation written here, bit for bit, over back-to-back inferences, with
and without backpressure. Plans of a quantized float CNN (the planner's) are checked
against :func:`run_plan`. Measured cycles per inference equal the fold model. The same kind of
plans with packed multiply-accumulate cores (SDV lanes on DSP48E2/E1, dual 8x8 on SB_MAC16; PE
not a multiple of the lanes, SIMD > 1) are lint-clean and bit-exact in iverilog and Verilator
(SB_MAC16 from edgec's simulation model and from yosys' cell model); the slow tests count the
DSPs yosys maps them to and simulate an iCE40 netlist.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backend import int8_input_rows
from edgec.backends.fpga import flow_ice40
from edgec.backends.fpga.dataflow_model import run_plan
from edgec.backends.fpga.folding import cycles_per_inference
from edgec.backends.fpga.lanes import plan_packing
from edgec.backends.fpga.layers import MvuLayer, PoolLayer, Window, apply_thresholds
from edgec.backends.fpga.planner import plan_layers
from edgec.backends.fpga.rtl import generate_rtl, load_design
from edgec.backends.fpga.simulate import simulate
from edgec.backends.fpga.thresholds import accumulator_range
from edgec.errors import EdgecError, InputDataError, ToolchainError
from edgec.inttype import IntType

from conftest import make_model, tensor_info

I2, U2, I4, U4, I8, U8 = (IntType(b, s) for b in (2, 4, 8) for s in (True, False))
I4N, I8N = IntType(4, True, narrow=True), IntType(8, True, narrow=True)
needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")
needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")


def mvu(index, rng, in_type, w_type, out_type, out_channels, k, pe=1, simd=1, window=None) -> MvuLayer:
    """An MVU layer of random weights and random sorted thresholds inside the reachable range
    (so that every output level occurs)."""
    weights = rng.integers(w_type.min, w_type.max + 1, size=(out_channels, k))
    lo, hi = accumulator_range(weights, in_type)
    spread = (hi - lo) // 4
    thresholds = np.sort(rng.integers((lo + spread)[:, None], (hi - spread + 1)[:, None],
                                      size=(out_channels, out_type.levels - 1)), axis=1)
    return MvuLayer(index, f"layer{index}", "FullyConnected" if window is None else "Conv", f"v{index}",
                    in_type, w_type, out_type, weights, thresholds, window, pe, simd)


def patches(x: np.ndarray, window: Window, pad: int) -> np.ndarray:
    """``x [N, in_h*in_w*c]`` (NHWC) -> ``[N, out_h, out_w, kh*kw*c]`` windows, padding with ``pad``."""
    top, left, bottom, right = window.pads
    image = x.reshape(-1, window.in_h, window.in_w, window.channels)
    padded = np.pad(image, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad)
    kh, kw = window.kernel
    out = [[padded[:, i * window.stride[0]:i * window.stride[0] + kh, j * window.stride[1]:j * window.stride[1] + kw]
            .reshape(x.shape[0], -1) for j in range(window.out_w)] for i in range(window.out_h)]
    return np.stack([np.stack(row, axis=1) for row in out], axis=1)


def evaluate(layers, rows: np.ndarray) -> list[np.ndarray]:
    """Each layer's output ``[N, elements]`` (this test's own evaluation of the plan)."""
    x, outputs = rows.astype(np.int64), []
    for layer in layers:
        if isinstance(layer, PoolLayer):
            w = layer.window
            windows = patches(x, w, layer.input_type.min).reshape(x.shape[0], w.out_h, w.out_w, -1, w.channels)
            x = windows.max(axis=3).reshape(x.shape[0], -1)
        else:
            vectors = x if layer.window is None else patches(x, layer.window, layer.window.pad_value)
            acc = vectors @ layer.weights.astype(np.int64).T
            x = apply_thresholds(acc, layer.thresholds, layer.output_type).reshape(x.shape[0], -1)
        outputs.append(x)
    return outputs


def plan(name: str) -> list:
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "fc":  # unsigned input, two folded layers, signed output
        return [mvu(0, rng, U4, I4, U4, 8, 12, pe=2, simd=3), mvu(1, rng, U4, I4N, I4, 6, 8, pe=3, simd=4)]
    if name == "fc_int8":  # signed 8-bit, 255 thresholds a channel
        return [mvu(0, rng, I8, I8N, I8, 4, 10, pe=2, simd=5), mvu(1, rng, I8, I8, U8, 3, 4)]
    if name == "fc_2bit":
        return [mvu(0, rng, I2, I2, U2, 5, 9, simd=3), mvu(1, rng, U2, I2, I2, 4, 5, pe=4)]
    if name == "conv_s1":  # 3x3 pad 1, signed input, a non-zero padding value
        return [mvu(0, rng, I4, I4, U4, 4, 27, pe=2, simd=3, window=Window(5, 6, 3, (3, 3), (1, 1), (1, 1, 1, 1), -3))]
    if name == "conv_s2":  # 3x3 pad 1 stride 2, odd sizes
        return [mvu(0, rng, U4, I4, I4, 3, 18, simd=2, window=Window(7, 5, 2, (3, 3), (2, 2), (1, 1, 1, 1), 5))]
    if name == "conv_1x1":
        return [mvu(0, rng, U8, I4, U4, 6, 4, pe=3, simd=4, window=Window(3, 4, 4, (1, 1), (1, 1), (0, 0, 0, 0), 0))]
    if name == "pool":  # 3x3 stride 2 pad 1 on signed values, then 2x2 on what remains
        return [PoolLayer(0, "pool0", "MaxPool", "p0", I4, Window(7, 6, 2, (3, 3), (2, 2), (1, 1, 1, 1), 0)),
                PoolLayer(1, "pool1", "MaxPool", "p1", I4, Window(4, 3, 2, (2, 2), (2, 2), (0, 0, 0, 0), 0))]
    if name == "chain":  # conv -> pool -> conv -> fc
        return [mvu(0, rng, U4, I4, U4, 4, 18, pe=2, simd=2, window=Window(6, 6, 2, (3, 3), (1, 1), (1, 1, 1, 1), 0)),
                PoolLayer(1, "pool", "MaxPool", "p", U4, Window(6, 6, 4, (2, 2), (2, 2), (0, 0, 0, 0), 0)),
                mvu(2, rng, U4, I4, I4, 4, 36, simd=4, window=Window(3, 3, 4, (3, 3), (1, 1), (1, 1, 1, 1), 0)),
                mvu(3, rng, I4, I4, I4, 3, 36, pe=3, simd=2)]
    raise KeyError(name)


PLANS = ["fc", "fc_int8", "fc_2bit", "conv_s1", "conv_s2", "conv_1x1", "pool", "chain"]


def random_rows(layers, count: int, seed: int = 7) -> np.ndarray:
    t = layers[0].input_type
    return np.random.default_rng(seed).integers(t.min, t.max + 1, size=(count, layers[0].input_elements))


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    """Every hand-made plan generated once: name -> (layers, design directory, design)."""
    root = tmp_path_factory.mktemp("rtl")
    return {name: (layers, root / name, generate_rtl(layers, root / name, name=name))
            for name in PLANS for layers in [plan(name)]}


def test_generation_is_deterministic_and_every_file_has_the_header(designs, tmp_path):
    layers, directory, design = designs["chain"]
    again = generate_rtl(layers, tmp_path, name="chain")
    assert again == design
    for relative in (*design.sources, *design.memories, "design.json"):
        assert (tmp_path / relative).read_bytes() == (directory / relative).read_bytes()
    for relative in (*design.sources, *design.memories):
        assert (directory / relative).read_text().startswith("// generated by edgec")
    assert load_design(directory) == design
    assert [s.instances for s in design.layers] == [("u_l0_swu", "u_l0_mvu"), ("u_l1_swu", "u_l1_pool"),
                                                    ("u_l2_swu", "u_l2_mvu"), ("u_l3_mvu",)]
    assert (design.in_bits, design.out_bits, design.in_elements, design.out_elements) == (4, 4, 72, 3)


def assert_lint_clean(directory: Path, design) -> None:
    done = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "edgec_top", *design.sources],
                          cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


@needs_verilator
@pytest.mark.parametrize("name", PLANS)
def test_every_generated_design_is_lint_clean_under_verilator_wall(designs, name):
    _, directory, design = designs[name]
    assert_lint_clean(directory, design)


@needs_iverilog
@pytest.mark.parametrize("name", PLANS)
def test_iverilog_equals_the_numpy_evaluation_and_the_fold_model(designs, name):
    layers, directory, design = designs[name]
    rows = random_rows(layers, 4)
    result = simulate(directory, design, rows, simulator="iverilog", trace=True)
    expected = evaluate(layers, rows)
    np.testing.assert_array_equal(result.outputs, expected[-1])
    for n in range(rows.shape[0]):
        assert [index for index, _ in result.trace[n]] == [layer.index for layer in layers]
        for (index, values), want in zip(result.trace[n], expected):
            np.testing.assert_array_equal(values, want[n], err_msg=f"layer {index}, sample {n}")
    # back to back, the interval is the slowest stage's modelled cycles (no overhead measured)
    assert result.cycles_per_inference == cycles_per_inference(layers)
    assert result.latency_cycles >= cycles_per_inference(layers)


@needs_iverilog
@pytest.mark.parametrize("name", ["fc", "conv_s2", "pool", "chain"])
def test_input_gaps_and_output_backpressure_change_no_value(designs, name):
    layers, directory, design = designs[name]
    rows = random_rows(layers, 3, seed=11)
    result = simulate(directory, design, rows, simulator="iverilog", backpressure=True)
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])
    assert result.latency_cycles > simulate(directory, design, rows).latency_cycles  # it did hold the design back


@needs_verilator
@pytest.mark.parametrize("name,backpressure", [("fc_int8", False), ("chain", True)])
def test_verilator_equals_the_numpy_evaluation(designs, name, backpressure, tmp_path):
    layers, directory, design = designs[name]
    rows = random_rows(layers, 3, seed=5)
    result = simulate(directory, design, rows, simulator="verilator", trace=True, work_dir=tmp_path,
                      backpressure=backpressure)
    expected = evaluate(layers, rows)
    np.testing.assert_array_equal(result.outputs, expected[-1])
    for n in range(rows.shape[0]):
        for (index, values), want in zip(result.trace[n], expected):
            np.testing.assert_array_equal(values, want[n], err_msg=f"layer {index}, sample {n}")
    if not backpressure:
        assert result.cycles_per_inference == cycles_per_inference(layers)


def small_cnn():
    """x[1,1,6,6] -> Conv 3x3 pad 1 (3) -> Relu -> MaxPool 2 -> Flatten -> Gemm (4), float."""
    rng = np.random.default_rng(21)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p1"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    inits = {"w1": rng.normal(size=(3, 1, 3, 3)), "b1": rng.normal(size=3), "fw": rng.normal(size=(4, 27)),
             "fb": rng.normal(size=4)}
    return make_model(nodes, [tensor_info("x", [1, 1, 6, 6])], [tensor_info("y", [1, 4])],
                      {key: value.astype(np.float32) for key, value in inits.items()})


@needs_iverilog
@pytest.mark.parametrize("bits", [4, 8])
def test_the_rtl_of_a_planned_quantized_cnn_equals_run_plan(bits, tmp_path):
    samples = (np.random.default_rng(2).random((12, 1, 6, 6)) * 1.3 - 0.3).astype(np.float32)
    model = edgec.quantize(small_cnn(), samples, weight_bits=bits, activation_bits=bits)
    rows = int8_input_rows(model, [{"x": sample[None]} for sample in samples])
    layers = plan_layers(model)
    assert [layer.op for layer in layers] == ["Conv", "MaxPool", "FullyConnected"]
    design = generate_rtl(layers, tmp_path / "design", name="small_cnn")
    result = simulate(tmp_path / "design", None, rows, trace=True)
    outputs, trace = run_plan(layers, rows)
    np.testing.assert_array_equal(result.outputs, outputs)
    for got, want in zip(result.trace, trace):
        for (index, values), (want_index, want_values) in zip(got, want):
            assert index == want_index
            np.testing.assert_array_equal(values, want_values)
    assert design.in_signed and result.cycles_per_inference == cycles_per_inference(layers)
    if shutil.which("verilator"):
        assert_lint_clean(tmp_path / "design", design)


@needs_iverilog
def test_bad_rows_and_a_traced_netlist_are_refused(designs):
    layers, directory, design = designs["fc"]
    with pytest.raises(InputDataError, match=r"shape \(2, 5\)"):
        simulate(directory, design, np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(InputDataError, match=r"outside \[0, 15\]"):
        simulate(directory, design, np.full((1, 12), 16))
    with pytest.raises(EdgecError, match="netlist"):
        simulate(directory, design, random_rows(layers, 1), trace=True, netlist=[directory / "edgec_top.v"])


@needs_iverilog
def test_a_missing_simulator_and_a_failing_one_are_edgec_errors(designs, tmp_path, monkeypatch):
    layers, directory, design = designs["fc"]
    broken = tmp_path / "broken.v"
    broken.write_text("module edgec_top(input clk; endmodule\n")
    with pytest.raises(ToolchainError, match="iverilog failed to compile") as error:
        simulate(directory, design, random_rows(layers, 1), netlist=[broken])
    assert "broken.v" in error.value.problem
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="verilator is not on PATH") as error:
        simulate(directory, design, random_rows(layers, 1), simulator="verilator")
    assert "apt-get install verilator" in error.value.hint


def yosys_datdir() -> Path:
    """yosys' data directory (cell models): ``yosys-config --datdir``, else ``share/yosys`` next to
    the yosys executable's ``bin`` (Debian ships yosys-config only in yosys-dev)."""
    if shutil.which("yosys-config"):
        return Path(subprocess.run(["yosys-config", "--datdir"], capture_output=True, text=True).stdout.strip())
    return Path(shutil.which("yosys")).resolve().parent.parent / "share" / "yosys"


@needs_yosys
@needs_iverilog
@pytest.mark.slow
def test_a_w4a4_mlp_synthesises_for_ice40_and_its_netlist_simulates_bit_exact(tmp_path):
    rng = np.random.default_rng(3)
    layers = [mvu(0, rng, I8, I4N, U4, 32, 64, pe=2, simd=2), mvu(1, rng, U4, I4N, I8, 10, 32)]
    directory = tmp_path / "design"
    design = generate_rtl(layers, directory, name="mlp")
    netlist = tmp_path / "netlist.v"
    script = f"read_verilog {' '.join(design.sources)}; synth_ice40 -dsp -top edgec_top; stat; write_verilog -noattr {netlist}"
    done = subprocess.run(["yosys", "-q", "-p", script], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = random_rows(layers, 2)
    result = simulate(directory, design, rows, netlist=[netlist, yosys_datdir() / "ice40" / "cells_sim.v"],
                      defines=("NO_ICE40_DEFAULT_ASSIGNMENTS",))
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])


# ---- packed multiply-accumulate cores (MvuLayer.packing): the same designs, DSP-packed

def packed(layer: MvuLayer, primitive: str) -> MvuLayer:
    """``layer`` carrying the lane planner's MVU packing on ``primitive``."""
    packing = plan_packing(primitive, layer.weight_type, layer.input_type, accumulation=layer.vector_length)
    assert packing.scheme != "none"
    return dataclasses.replace(layer, packing=packing)


def packed_plan(name: str) -> list:
    """Layer plans whose MVUs realise a packing: PE not a multiple of the lanes, SIMD > 1,
    signed and unsigned activations, 2/4/8-bit types, a convolution behind its window."""
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "sdv_w4a4":  # 4 lanes: PE 6 = a full group and a half one; then signed activations
        return [packed(mvu(0, rng, U4, I4, I4, 6, 12, pe=6, simd=3), "DSP48E2"),
                packed(mvu(1, rng, I4, I4N, U4, 4, 6, pe=4, simd=2), "DSP48E2")]
    if name == "sdv_w2a2":
        return [packed(mvu(0, rng, I2, I2, U2, 10, 9, pe=5, simd=3), "DSP48E2")]
    if name == "sdv_w8a8":
        return [packed(mvu(0, rng, I8, I8N, I8, 6, 8, pe=3, simd=2), "DSP48E2")]
    if name == "sdv_e1":
        return [packed(mvu(0, rng, U4, I4, U4, 6, 10, pe=3, simd=5), "DSP48E1")]
    if name == "sdv_conv":
        return [packed(mvu(0, rng, U4, I4, U4, 6, 18, pe=6, simd=2,
                           window=Window(5, 5, 2, (3, 3), (1, 1), (1, 1, 1, 1), 3)), "DSP48E2")]
    if name == "dual_w4a4":
        return [packed(mvu(0, rng, U4, I4, I4, 6, 12, pe=3, simd=2), "SB_MAC16"),
                packed(mvu(1, rng, I4, I4N, U4, 4, 6, pe=4, simd=3), "SB_MAC16")]
    if name == "dual_w8a8":
        return [packed(mvu(0, rng, I8, I8, U8, 4, 6, pe=2, simd=3), "SB_MAC16")]
    raise KeyError(name)


PACKED_PLANS = ["sdv_w4a4", "sdv_w2a2", "sdv_w8a8", "sdv_e1", "sdv_conv", "dual_w4a4", "dual_w8a8"]


@pytest.fixture(scope="module")
def packed_designs(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    return {name: (layers, root / name, generate_rtl(layers, root / name, name=name))
            for name in PACKED_PLANS for layers in [packed_plan(name)]}


def test_packed_layers_get_the_packed_core_and_packed_false_keeps_the_plain_one(packed_designs, tmp_path):
    layers, directory, design = packed_designs["sdv_w4a4"]
    assert {"edgec_l0_mac.v", "edgec_l1_mac.v", "edgec_sdv_mac.v", "edgec_dsp48.v"} <= set(design.sources)
    core = (directory / "edgec_l0_mac.v").read_text()
    assert "2 x 3 = 6 DSP48E2 for 6 x 3 MACs" in core and "lanes 2..3 multiply zero weights" in core
    assert "edgec_l0_mac u_mac" in (directory / "edgec_l0_mvu.v").read_text()
    plain = generate_rtl(layers, tmp_path, name="sdv_w4a4", packed=False)
    assert not any(s.endswith("_mac.v") and s != "edgec_mac.v" for s in plain.sources)
    assert "edgec_mac #(" in (tmp_path / "edgec_l0_mvu.v").read_text()
    dual = packed_designs["dual_w4a4"][2]
    assert {"edgec_dual8x8_mac.v", "edgec_sb_mac16_sim.v"} <= set(dual.sources)


def test_a_packing_that_does_not_fit_the_layer_is_refused(tmp_path):
    layer = plan("fc")[0]
    other = plan_packing("DSP48E2", I8, I8, accumulation=64)
    with pytest.raises(EdgecError, match="not planned for"):
        generate_rtl([dataclasses.replace(layer, packing=other)], tmp_path, name="bad")
    conv = plan_packing("DSP48E2", layer.weight_type, layer.input_type, kind="conv", accumulation=64)
    assert conv.scheme == "conv"
    with pytest.raises(EdgecError, match="no packed MAC unit"):
        generate_rtl([dataclasses.replace(layer, packing=conv)], tmp_path, name="bad")


@needs_verilator
@pytest.mark.parametrize("name", PACKED_PLANS)
def test_packed_designs_are_lint_clean(packed_designs, name):
    _, directory, design = packed_designs[name]
    assert_lint_clean(directory, design)


@needs_iverilog
@pytest.mark.parametrize("name", PACKED_PLANS)
def test_packed_designs_in_iverilog_equal_the_numpy_evaluation_at_the_fold_models_rate(packed_designs, name):
    layers, directory, design = packed_designs[name]
    rows = random_rows(layers, 4)
    result = simulate(directory, design, rows, trace=True)
    expected = evaluate(layers, rows)
    for n in range(rows.shape[0]):
        for (index, values), want in zip(result.trace[n], expected):
            np.testing.assert_array_equal(values, want[n], err_msg=f"layer {index}, sample {n}")
    # the packed core's deeper pipeline may cost one cycle once, while it first fills (sdv_w2a2)
    intervals = rows.shape[0] - 1
    assert cycles_per_inference(layers) * intervals <= result.cycles_per_inference * intervals \
        <= cycles_per_inference(layers) * intervals + 1


@needs_iverilog
@pytest.mark.parametrize("name", ["sdv_w4a4", "dual_w4a4"])
def test_packed_designs_under_backpressure_change_no_value(packed_designs, name):
    layers, directory, design = packed_designs[name]
    rows = random_rows(layers, 3, seed=11)
    result = simulate(directory, design, rows, backpressure=True)
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])


@needs_iverilog
@pytest.mark.parametrize("name", ["dual_w4a4", "dual_w8a8"])
def test_dual8x8_designs_with_yosys_sb_mac16_model_equal_the_numpy_evaluation(packed_designs, name):
    layers, directory, design = packed_designs[name]
    cells = yosys_datdir() / "ice40" / "cells_sim.v"
    if not cells.is_file():
        pytest.skip(f"yosys' iCE40 cell models are not at {cells}")
    sources = [directory / s for s in design.sources if s != "edgec_sb_mac16_sim.v"] + [cells]
    rows = random_rows(layers, 3, seed=4)
    result = simulate(directory, design, rows, netlist=sources, defines=("NO_ICE40_DEFAULT_ASSIGNMENTS",))
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])


@needs_verilator
@pytest.mark.parametrize("name", ["sdv_w4a4"])  # the dual 8x8 unit runs in Verilator in test_fpga_packed_rtl
def test_packed_designs_in_verilator_equal_the_numpy_evaluation(packed_designs, name, tmp_path):
    layers, directory, design = packed_designs[name]
    rows = random_rows(layers, 3, seed=5)
    result = simulate(directory, design, rows, simulator="verilator", work_dir=tmp_path, backpressure=True)
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])


def xilinx_cells(directory: Path, design, top: str) -> dict:
    """yosys ``synth_xilinx -family xcup`` cell counts of module ``top`` of ``design`` (flattened)."""
    script = (f"read_verilog {' '.join(design.sources)}; synth_xilinx -family xcup -flatten -noiopad -top {top}; "
              "tee -q -o stat.json stat -tech xilinx -json")
    done = subprocess.run(["yosys", "-q", "-p", script], cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads((directory / "stat.json").read_text())["modules"][f"\\{top}"]["num_cells_by_type"]


@needs_yosys
@pytest.mark.slow
def test_a_packed_w4a4_mvu_uses_ceil_pe_over_lanes_times_simd_dsp48e2_and_the_plain_one_pe_times_simd(tmp_path):
    rng = np.random.default_rng(9)
    layer = packed(mvu(0, rng, U4, I4, U4, 6, 12, pe=6, simd=2), "DSP48E2")
    assert layer.packing.lanes == 4
    counts = {}
    for kind in ("packed", "plain"):
        design = generate_rtl([layer], tmp_path / kind, name="mvu", packed=kind == "packed")
        counts[kind] = xilinx_cells(tmp_path / kind, design, "edgec_l0_mvu")
    assert counts["packed"].get("DSP48E2") == 2 * 2, counts["packed"]   # ceil(6 / 4) * 2
    # the plain core's 4x4 products are narrower than synth_xilinx's 9-bit DSP threshold (LUTs):
    # it maps none or one DSP per multiplier, never fewer than the packed core's
    assert counts["plain"].get("DSP48E2", 0) in (0, 6 * 2), counts["plain"]


@needs_yosys
@needs_iverilog
@pytest.mark.slow
def test_a_packed_ice40_design_synthesises_to_sb_mac16s_and_its_netlist_simulates_bit_exact(tmp_path):
    layers = packed_plan("dual_w4a4")
    directory = tmp_path / "design"
    design = generate_rtl(layers, directory, name="dual")
    # the flow's synthesis (synth_ice40 -dsp, with the design's own SB_MAC16s kept as written)
    synthesis = flow_ice40.synthesize([directory / s for s in design.sources], "edgec_top", tmp_path / "synth")
    assert synthesis.cells.get("SB_MAC16") == 2 * 2 + 2 * 3, synthesis.cells   # ceil(3/2) * 2 + ceil(4/2) * 3
    rows = random_rows(layers, 2)
    result = simulate(directory, design, rows, netlist=[synthesis.netlist, yosys_datdir() / "ice40" / "cells_sim.v"],
                      defines=("NO_ICE40_DEFAULT_ASSIGNMENTS",))
    np.testing.assert_array_equal(result.outputs, evaluate(layers, rows)[-1])
