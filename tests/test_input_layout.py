"""``--input-layout nhwc``: the integer graph takes NHWC input, the input transpose disappears,
and every result stays bit-exact with the NCHW graph on the transposed data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.backends.cortex_m import network
from edgec.errors import UnsupportedModelError
from edgec.passes.input_layout import InputLayoutPass
from edgec.target import get_target

from conftest import (
    big_fc_model,
    emit_project,
    invoke,
    make_model,
    needs_host_compiler,
    needs_toolchain,
    quantized_shared_model,
    reference_int8_output,
    small_tflite_model,
    tensor_info,
)

M4 = get_target("cortex-m4")


def test_nhwc_input_drops_the_transpose_and_is_bit_exact(small_integer_model):
    nhwc = InputLayoutPass("nhwc")(small_integer_model).model
    assert [n.op_type for n in small_integer_model.graph][:2] == ["Quantize", "Transpose"]
    assert [n.op_type for n in nhwc.graph][:2] == ["Quantize", "Conv"]
    assert list(nhwc.graph.inputs[0].shape) == [1, 8, 8, 3]
    assert list(small_integer_model.graph.inputs[0].shape) == [1, 3, 8, 8]  # the original is untouched
    rng = np.random.default_rng(9)
    for _ in range(5):
        x = rng.random((1, 3, 8, 8), dtype=np.float32)
        np.testing.assert_array_equal(reference_int8_output(nhwc, {"x": x.transpose(0, 2, 3, 1)}),
                                      reference_int8_output(small_integer_model, {"x": x}))
    back = InputLayoutPass("nchw")(nhwc).model
    assert [n.op_type for n in back.graph] == [n.op_type for n in small_integer_model.graph]


@pytest.mark.parametrize("channels, first_ops", [(3, ["Quantize", "Transpose", "Reshape"]),
                                                   (1, ["Quantize", "Reshape", "Reshape"])])
def test_nhwc_input_read_in_nchw_order_gets_one_conversion(channels, first_ops):
    """x -> Flatten -> Gemm reads the input in NCHW order: a conversion back is inserted
    (zero-copy when there is one channel)."""
    rng = np.random.default_rng(2)
    model = make_model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])],
                       [tensor_info("x", [1, channels, 4, 4])], [tensor_info("y", [1, 3])],
                       {"w": rng.normal(size=(16 * channels, 3)).astype(np.float32)})
    calibration = rng.random((16, channels, 4, 4), dtype=np.float32)
    nchw = edgec.quantize(model, calibration)
    nhwc = edgec.quantize(model, calibration, input_layout="nhwc")
    assert [n.op_type for n in nhwc.graph][:3] == first_ops
    for _ in range(5):
        x = rng.random((1, channels, 4, 4), dtype=np.float32)
        np.testing.assert_array_equal(reference_int8_output(nhwc, {"x": x.transpose(0, 2, 3, 1)}), reference_int8_output(nchw, {"x": x}))


def test_a_tflite_model_is_already_nhwc_and_can_take_nchw(tmp_path):
    model = small_tflite_model(tmp_path)
    assert not InputLayoutPass("nhwc")(model).modified
    nchw = InputLayoutPass("nchw")(model).model
    assert list(nchw.graph.inputs[0].shape) == [1, 2, 5, 5]
    x = np.random.default_rng(4).integers(-128, 128, (1, 5, 5, 2)).astype(np.int8)
    name = model.graph.inputs[0].name
    np.testing.assert_array_equal(reference_int8_output(nchw, {name: x.transpose(0, 3, 1, 2)}), reference_int8_output(model, {name: x}))


def test_an_input_without_channels_cannot_change_layout():
    model = edgec.quantize(big_fc_model(), np.random.default_rng(0).random((16, 1024), dtype=np.float32))
    with pytest.raises(UnsupportedModelError) as raised:
        InputLayoutPass("nhwc")(model)
    assert "--input-layout" in raised.value.one_line() and "[1, 1024]" in raised.value.one_line()


def test_the_cli_quantizes_and_compiles_with_nhwc_input(tmp_path, model_path, calib_path, rng):
    x = rng.random((3, 3, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "x_nhwc.npy", x.transpose(0, 2, 3, 1))
    assert invoke("quantize", model_path, "--calib", calib_path, "-o", tmp_path / "q.onnx").exit_code == 0
    result = invoke("quantize", model_path, "--calib", calib_path, "-o", tmp_path / "q_nhwc.onnx", "--input-layout", "nhwc")
    assert result.exit_code == 0, result.output
    invoke("run", tmp_path / "q.onnx", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    invoke("run", tmp_path / "q_nhwc.onnx", "--input", tmp_path / "x_nhwc.npy", "--output", tmp_path / "y_nhwc.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "y_nhwc.npy"), np.load(tmp_path / "y.npy"))
    result = invoke("compile", model_path, "--calib", calib_path, "-t", "cortex-m4", "-o", tmp_path / "p",
                    "--input-layout", "nhwc", "--emit-only")
    assert result.exit_code == 0, result.output
    assert "input NHWC [1, 8, 8, 3]" in result.output
    assert "(NHWC, as EDGEC_INPUT_SHAPE)" in (tmp_path / "p" / "include" / "edgec_model.h").read_text()
    assert json.loads((tmp_path / "p" / "report.json").read_text())["input"]["layout"] == "NHWC"
    result = invoke("compile", tmp_path / "q_nhwc.onnx", "-t", "cortex-m4", "-o", tmp_path / "p2", "--emit-only")
    assert result.exit_code == 0 and "input NHWC [1, 8, 8, 3]" in result.output  # the layout is saved in the file


@needs_host_compiler
def test_an_nhwc_project_runs_bit_exact_on_the_host(tmp_path, small_integer_model):
    nhwc = InputLayoutPass("nhwc")(small_integer_model).model
    emit_project(nhwc, tmp_path / "out")
    x = np.random.default_rng(6).random((4, 3, 8, 8), dtype=np.float32)
    inputs = cortex_m.int8_inputs(nhwc, [{"x": sample[None].transpose(0, 2, 3, 1)} for sample in x])
    host = cortex_m.run_project(tmp_path / "out", inputs, host=True)
    nchw_inputs = cortex_m.int8_inputs(small_integer_model, [{"x": sample[None]} for sample in x])
    np.testing.assert_array_equal(host.outputs, cortex_m.reference_outputs(small_integer_model, nchw_inputs))


@needs_toolchain
@pytest.mark.slow
def test_vww_with_nhwc_input_saves_its_input_transpose_on_qemu(tmp_path, monkeypatch):
    # every eligible depthwise takes the rows walk in both builds: build_network picks walks by
    # arena, and the two arenas differ, so the layouts would otherwise differ in more than the transpose
    monkeypatch.setattr(cortex_m, "build_network", lambda model, dsp, separate_io=True, mve=False:
                        network._network(model, dsp, separate_io, mve, rows=None))
    nchw = quantized_shared_model("vww", seed=11)
    nhwc = InputLayoutPass("nhwc")(nchw).model
    x = np.random.default_rng(7).random((1, 3, 96, 96), dtype=np.float32)
    runs = {}
    for name, model, data in (("nchw", nchw, x), ("nhwc", nhwc, x.transpose(0, 2, 3, 1))):
        cortex_m.compile_project(model, M4, tmp_path / name, "vww")
        inputs = cortex_m.int8_inputs(model, [{model.graph.inputs[0].name: data}])
        runs[name] = cortex_m.run_project(tmp_path / name, inputs)
        np.testing.assert_array_equal(runs[name].outputs, cortex_m.reference_outputs(model, inputs))
    np.testing.assert_array_equal(runs["nhwc"].outputs, runs["nchw"].outputs)
    saved = runs["nchw"].instructions[0] - runs["nhwc"].instructions[0]
    print(f"vww on cortex-m4: {saved:,} instructions saved by NHWC input")
    assert saved > 100_000
