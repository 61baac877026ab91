"""Row-packed convolutions (backends/fpga/conv_rows.py): the convolution packing realised in
the dataflow design.

The plans (one kernel row's taps times several columns per DSP48) meet the goals and are
exact in the packed-datapath model over every small-width operand pair and their corners; a
numpy walk of the scheme's windows, segments, carries and dropped columns equals the plain
convolution; the generated RTL (banked window unit, row combine, conv core) is lint-clean
and bit-exact in iverilog and Verilator with the measured cycles equal to the model; the
folding takes the row packing where it meets a rate SDV lanes cannot (and not otherwise), a
compiled zcu104 project reports it and simulates bit for bit; yosys maps its core to one
DSP48E2 per output channel and pair.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from test_fpga_packing import check, corner_sequences, multi_cycle, one_cycle_space

import edgec
from edgec.backend import open_project
from edgec.backends.fpga import conv_rows
from edgec.backends.fpga.dataflow_model import run_plan
from edgec.backends.fpga.folding import fold, layer_cycles, layer_dsps
from edgec.backends.fpga.lanes import PRIMITIVES, finn_lanes, plan_packing
from edgec.backends.fpga.layers import MvuLayer, Window
from edgec.backends.fpga.rtl import generate_rtl
from edgec.backends.fpga.simulate import simulate
from edgec.backends.fpga.thresholds import accumulator_range
from edgec.inttype import IntType
from edgec.trace_compare import reference_outputs

from conftest import make_model, tensor_info

I2, U2, I3, U3, I4, U4 = (IntType(b, s) for b in (2, 3, 4) for s in (True, False))


def tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not on PATH (scripts/setup.sh installs it)")


def row_plan(primitive: str, wt: IntType, it: IntType, window: Window):
    return plan_packing(primitive, wt, it, kind="conv", taps=window.kernel[1],
                        accumulation=window.kernel[0] * window.channels)


def conv_layer(seed: int, wt: IntType, it: IntType, window: Window, out_channels: int, simd: int = 1,
               primitive: str = "DSP48E2") -> MvuLayer:
    """A row-packed convolution of random weights and thresholds (every output level occurs)."""
    rng = np.random.default_rng(seed)
    k = window.kernel[0] * window.kernel[1] * window.channels
    weights = rng.integers(wt.min, wt.max + 1, size=(out_channels, k))
    lo, hi = accumulator_range(weights, it)
    spread = (hi - lo) // 4
    out = IntType(4, False)
    thresholds = np.sort(rng.integers((lo + spread)[:, None], (hi - spread + 1)[:, None],
                                      size=(out_channels, out.levels - 1)), axis=1)
    return MvuLayer(0, "conv", "Conv", "c", it, wt, out, weights, thresholds, window, out_channels, simd,
                    row_plan(primitive, wt, it, window))


# name: (weight type, input type, window, output channels, simd)
CASES = {
    "w4u4_pad1": (I4, U4, Window(5, 6, 2, (3, 3), (1, 1), (1, 1, 1, 1), 0), 3, 1),
    "w4i4_pad_value": (I4, I4, Window(5, 7, 2, (3, 3), (1, 1), (1, 1, 1, 1), -3), 3, 2),
    "w3u3_stride2_rows": (I3, U3, Window(6, 4, 3, (3, 3), (2, 1), (2, 2, 1, 2), 2), 2, 3),
    "w2u2_wide": (I2, U2, Window(4, 9, 2, (3, 3), (1, 1), (1, 1, 1, 1), 1), 4, 2),
    "w2i2_two_taps": (I2, I2, Window(3, 5, 2, (2, 2), (1, 1), (0, 0, 1, 1), 0), 2, 1),
    "w4u4_one_row": (I4, U4, Window(1, 2, 2, (1, 3), (1, 1), (0, 1, 0, 1), 0), 2, 1),
}


def case(name: str) -> MvuLayer:
    wt, it, window, channels, simd = CASES[name]
    return conv_layer(sum(map(ord, name)), wt, it, window, channels, simd)


def rows_of(layer: MvuLayer, count: int, seed: int = 3) -> np.ndarray:
    t = layer.input_type
    return np.random.default_rng(seed).integers(t.min, t.max + 1, size=(count, layer.input_elements))


# ---- plans

@pytest.mark.parametrize("primitive", ["DSP48E2", "DSP48E1"])
def test_row_plans_pack_more_than_sdv_lanes_and_finn(primitive: str) -> None:
    window = Window(8, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), 0)
    for wt, it, least in ((I4, U4, 6), (I4, I4, 9), (I2, U2, 12), (I2, I2, 18), (I3, U3, 9)):
        packing = row_plan(primitive, wt, it, window)
        assert packing.scheme == "conv" and packing.weights_per_word == 3, packing.describe()
        assert packing.inputs_per_word >= 2 and packing.macs_per_dsp >= least, packing.describe()
        sdv = plan_packing(primitive, wt, it, accumulation=72)
        assert packing.macs_per_dsp > sdv.macs_per_dsp
        if primitive == "DSP48E2":
            assert packing.macs_per_dsp > finn_lanes(wt, it)


def test_rows_that_do_not_fit_are_not_planned() -> None:
    window = Window(8, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), 0)
    assert row_plan("DSP48E2", IntType(8, True), IntType(8, False), window).scheme == "none"
    assert row_plan("SB_MAC16", I4, U4, window).scheme == "none"  # no conv scheme on the iCE40 MAC
    wide = row_plan("DSP48E2", I4, U4, Window(8, 8, 8, (5, 5), (1, 1), (2, 2, 2, 2), 0))
    assert wide.scheme == "none" or wide.inputs_per_word >= 4
    assert not conv_rows.row_packable(dataclasses.replace(case("w4u4_pad1"), window=Window(
        6, 6, 2, (3, 3), (1, 2), (1, 1, 1, 1), 0)))


@pytest.mark.parametrize("primitive", ["DSP48E2", "DSP48E1"])
def test_row_plans_are_exact_over_every_small_operand_pair(primitive: str) -> None:
    rng = np.random.default_rng(5)
    for (w, a), narrow, signed, taps in itertools.product(((2, 2), (2, 4), (3, 3), (4, 2), (4, 4)), (False, True),
                                                          (True, False), (2, 3)):
        wt, it = IntType(w, True, narrow), IntType(a, signed)
        packing = plan_packing(primitive, wt, it, kind="conv", taps=taps, accumulation=48)
        if packing.scheme == "none":
            continue
        w1, x1 = one_cycle_space(packing, rng)
        check(packing, w1[:, None], x1[:, None])
        check(packing, *multi_cycle(w1, x1, 3))
        check(packing, *corner_sequences(packing, 48))


# ---- the scheme in numpy

def row_scheme_sums(layer: MvuLayer, row: np.ndarray) -> np.ndarray:
    """The accumulator of every output ``[out_h * out_w * channels]`` as the scheme forms it:
    windows of ``M`` padded columns, segments of reversed taps times columns, the carry of the
    previous window, kept columns only."""
    w = layer.window
    m, n = conv_rows.inputs_per_window(layer), w.kernel[1]
    image = row.reshape(w.in_h, w.in_w, w.channels)
    extra = conv_rows.passes(layer) * m - conv_rows.padded_width(w)
    padded = np.pad(image, ((w.pads[0], w.pads[2]), (w.pads[1], w.pads[3] + extra), (0, 0)),
                    constant_values=w.pad_value)
    taps = np.array([np.concatenate(conv_rows.weight_words(layer, o)) for o in range(layer.out_channels)])
    taps = taps.reshape(layer.out_channels, w.kernel[0], w.channels, n)  # [o, kh, c, i] in (kh, c) pair order
    out = []
    for oh in range(w.out_h):
        carry = None
        for ps in range(conv_rows.passes(layer)):
            x = padded[oh * w.stride[0]:oh * w.stride[0] + w.kernel[0], ps * m:(ps + 1) * m]  # [kh, m, c]
            seg = np.zeros((m + n - 1, layer.out_channels), dtype=np.int64)
            for i, j in itertools.product(range(n), range(m)):
                seg[i + j] += np.einsum("okc,kc->o", taps[..., i], x[:, j])
            if carry is not None:
                seg[:n - 1] += carry
            carry = seg[m:]
            out += [seg[k] for k in conv_rows.kept_columns(layer, ps)]
    return np.concatenate(out)


@pytest.mark.parametrize("name", list(CASES))
def test_the_row_scheme_forms_every_output_of_the_convolution_once(name: str) -> None:
    layer = case(name)
    w = layer.window
    assert sum(len(conv_rows.kept_columns(layer, ps)) for ps in range(conv_rows.passes(layer))) == w.out_w
    row = rows_of(layer, 1)[0]
    image = np.pad(row.reshape(w.in_h, w.in_w, w.channels), ((w.pads[0], w.pads[2]), (w.pads[1], w.pads[3]), (0, 0)),
                   constant_values=w.pad_value)
    kh, kw = w.kernel
    plain = [layer.weights @ image[i * w.stride[0]:i * w.stride[0] + kh, j:j + kw].ravel()
             for i in range(w.out_h) for j in range(w.out_w)]
    np.testing.assert_array_equal(row_scheme_sums(layer, row), np.concatenate(plain))


# ---- the RTL

@pytest.mark.parametrize("name", list(CASES))
def test_rtl_is_lint_clean_and_bit_exact_in_iverilog_at_the_modelled_rate(name: str, tmp_path: Path) -> None:
    tool("iverilog")
    layer = case(name)
    design = generate_rtl([layer], tmp_path / "rtl", name=name)
    sources = {p.name for p in (tmp_path / "rtl").iterdir()}
    assert {"edgec_l0_mac.v", "edgec_conv_mac.v", "edgec_l0_swu.v"} <= sources
    if shutil.which("verilator"):
        lint = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "edgec_top", *design.sources],
                              cwd=tmp_path / "rtl", capture_output=True, text=True)
        assert lint.returncode == 0, lint.stderr
    rows = rows_of(layer, 3)
    result = simulate(tmp_path / "rtl", design, rows, work_dir=tmp_path / "sim")
    np.testing.assert_array_equal(result.outputs, run_plan([layer], rows)[0])
    assert result.cycles_per_inference == layer_cycles(layer)
    stalled = simulate(tmp_path / "rtl", design, rows, work_dir=tmp_path / "stalled", backpressure=True)
    np.testing.assert_array_equal(stalled.outputs, result.outputs)


def test_rtl_is_bit_exact_in_verilator_with_backpressure(tmp_path: Path) -> None:
    tool("verilator")
    layer = case("w2u2_wide")
    design = generate_rtl([layer], tmp_path / "rtl", name="rows")
    rows = rows_of(layer, 3, seed=8)
    result = simulate(tmp_path / "rtl", design, rows, simulator="verilator", work_dir=tmp_path / "sim",
                      backpressure=True)
    np.testing.assert_array_equal(result.outputs, run_plan([layer], rows)[0])


def test_unpacked_generation_of_a_row_planned_layer_is_the_plain_design(tmp_path: Path) -> None:
    tool("iverilog")
    layer = case("w4u4_pad1")
    design = generate_rtl([layer], tmp_path / "rtl", name="plain", packed=False)
    assert "edgec_conv_mac.v" not in design.sources
    rows = rows_of(layer, 2)
    np.testing.assert_array_equal(simulate(tmp_path / "rtl", design, rows).outputs, run_plan([layer], rows)[0])


# ---- folding and the compiled project

def two_variants(layer: MvuLayer) -> list[MvuLayer]:
    sdv = plan_packing("DSP48E2", layer.weight_type, layer.input_type, accumulation=layer.vector_length)
    return [dataclasses.replace(layer, packing=sdv), layer]


def test_folding_takes_the_row_packing_only_where_it_pays() -> None:
    layer = conv_layer(4, I4, U4, Window(8, 16, 8, (3, 3), (1, 1), (1, 1, 1, 1), 0), 8)
    sdv, rows = two_variants(layer)
    fastest_sdv = min(layer_cycles(sdv, sdv.out_channels, s) for s in (1, 2, 4, 8))
    assert layer_cycles(rows, rows.out_channels, 1) < fastest_sdv
    cheap = fold([layer], clock_hz=1e6, variants=two_variants)[0]
    assert cheap.packing.scheme == "sdv" and cheap.pe == 1
    fast = fold([layer], clock_hz=1e6, fps=1e6 / (fastest_sdv - 1), variants=two_variants)[0]
    assert conv_rows.is_row_packed(fast) and fast.pe == fast.out_channels and fast.simd == 1
    assert layer_dsps(fast) == fast.out_channels
    budget = fold([layer], clock_hz=1e6, max_dsp=8, variants=two_variants)[0]
    assert conv_rows.is_row_packed(budget)  # the fastest design within 8 DSPs


def float_convnet():
    """x[1,1,6,10] -> Conv 3x3 pad 1 (4) -> Relu -> Conv 3x3 pad 1 (6) -> Relu -> Flatten -> Gemm (3)."""
    rng = np.random.default_rng(21)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    inits = {"w1": rng.normal(size=(4, 1, 3, 3)), "b1": rng.normal(size=4) * 0.1,
             "w2": rng.normal(size=(6, 4, 3, 3)), "b2": rng.normal(size=6) * 0.1,
             "fw": rng.normal(size=(3, 360)) * 0.1, "fb": rng.normal(size=3) * 0.1}
    inits = {key: value.astype(np.float32) for key, value in inits.items()}
    return make_model(nodes, [tensor_info("x", [1, 1, 6, 10])], [tensor_info("y", [1, 3])], inits)


def test_a_fast_zcu104_project_realises_the_row_packing_and_simulates_bit_exact(tmp_path: Path) -> None:
    tool("iverilog")
    calib = np.random.default_rng(2).random((16, 1, 1, 6, 10)).astype(np.float32)
    model = edgec.quantize(float_convnet(), calib, weight_bits=4, activation_bits=4)
    report = edgec.compile(model, "zcu104", tmp_path / "out", emit_only=True, fps=100e6 / 700)
    conv2 = next(layer for layer in report["layers"] if layer["name"].startswith("conv2"))
    packing = conv2["packing"]
    assert packing["scheme"] == "conv" and packing["macs_per_dsp"] >= 6, packing
    assert packing["dsps"] == conv2["pe"] * conv2["simd"] and packing["planned"]["scheme"] == "conv"
    assert report["cycles_per_inference"] <= 700
    backend, project = open_project(tmp_path / "out")
    rows = backend.input_rows(project.model, [{"x": sample} for sample in calib[:3]])
    np.testing.assert_array_equal(backend.run(project, rows).outputs, reference_outputs(project.model, rows))


@pytest.mark.slow
def test_yosys_maps_the_row_core_to_one_dsp48e2_per_channel_and_pair(tmp_path: Path) -> None:
    tool("yosys")
    layer = case("w4i4_pad_value")
    design = generate_rtl([layer], tmp_path, name="rows")
    script = (f"read_verilog {' '.join(design.sources)}; synth_xilinx -family xcup -flatten -noiopad "
              "-top edgec_l0_mvu; tee -q -o stat.json stat -tech xilinx -json")
    done = subprocess.run(["yosys", "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\edgec_l0_mvu"]["num_cells_by_type"]
    assert cells.get("DSP48E2") == layer.pe * layer.simd == layer_dsps(layer), cells
    assert PRIMITIVES["DSP48E2"].schemes == ("sdv", "conv")
