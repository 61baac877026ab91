"""The 16x8 scheme (int16 activations, int8 weights) beyond the TFLM goldens: the arithmetic of
its 64-bit requantization, the models edgec refuses and why, the backends without int16
kernels, the generated C interface of an int16 model, and post-training quantization with
16-bit activations (``--activation-bits 16``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper
from tflm_cases_16x8 import conv_model, int16_input

import edgec
from edgec import ops
from edgec.backend import backend_for_target, int8_input_rows
from edgec.backends import cortex_m
from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import multiply_by_quantized_multiplier_wide
from edgec.passes.qparams import get_qparams
from edgec.reference import ReferenceExecutor
from edgec.target import get_target

from conftest import float_model_error, invoke, make_model, needs_host_compiler, tensor_info
from tflite_builder import TfliteBuilder, options, schema
from tflm_cases import cases, golden

OP = schema.BuiltinOperator
OPTIONS = schema.BuiltinOptions


def _load(tmp_path: Path, model: bytes):
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    return edgec.load(path)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 47), (1 << 47) - 1), st.integers(1 << 30, (1 << 31) - 1), st.integers(-31, 7))
def test_wide_requantization_is_tflites_64_bit_form(x, multiplier, shift):
    """Against TFLite's MultiplyByQuantizedMultiplier(int64_t) written out in Python integers."""
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total = 15 - shift
    expected = (((x * reduced + (1 << (total - 1))) >> total) + 2**31) % 2**32 - 2**31
    assert int(multiply_by_quantized_multiplier_wide(np.int64(x), multiplier, shift)) == expected


def _softmax_16():
    b = TfliteBuilder()
    x = b.tensor((1, 10), np.int16, scale=0.001)
    y = b.tensor((1, 10), np.int16, scale=1 / 32768)
    b.operator(OP.SOFTMAX, [x], [y], OPTIONS.SoftmaxOptions, options(schema.SoftmaxOptionsT, beta=1.0))
    return b.build([x], [y])


def _add_mixed():
    b = TfliteBuilder()
    x = b.tensor((1, 8), np.int16, scale=0.001)
    z = b.tensor((1, 8), np.int8, scale=0.1)
    y = b.tensor((1, 8), np.int16, scale=0.001)
    b.operator(OP.ADD, [x, z], [y], OPTIONS.AddOptions, options(schema.AddOptionsT))
    return b.build([x, z], [y])


def _relu_zero_point():
    b = TfliteBuilder()
    x = b.tensor((1, 2, 2, 3), np.int16, scale=0.001, zero_point=5)
    y = b.tensor((1, 1, 1, 3), np.int16, scale=0.001, zero_point=5)
    b.operator(OP.MAX_POOL_2D, [x], [y], OPTIONS.Pool2DOptions,
               options(schema.Pool2DOptionsT, padding=1, strideW=2, strideH=2, filterWidth=2, filterHeight=2))
    return b.build([x], [y])


def _depthwise_int32_bias():
    rng = np.random.default_rng(0)
    b = TfliteBuilder()
    x = b.tensor((1, 4, 4, 2), np.int16, scale=0.001)
    w = b.tensor((1, 3, 3, 2), scale=[0.01, 0.02], axis=3, data=rng.integers(-127, 128, (1, 3, 3, 2)).astype(np.int8))
    bias = b.tensor([2], np.int32, data=np.array([5, -5], dtype=np.int32))
    y = b.tensor((1, 4, 4, 2), np.int16, scale=0.002)
    b.operator(OP.DEPTHWISE_CONV_2D, [x, w, bias], [y], OPTIONS.DepthwiseConv2DOptions,
               options(schema.DepthwiseConv2DOptionsT, padding=0, strideW=1, strideH=1, depthMultiplier=1,
                       dilationWFactor=1, dilationHFactor=1))
    return b.build([x], [y])


@pytest.mark.parametrize("model,message", [
    (_softmax_16(), "SOFTMAX with int16 activations is not supported"),
    (_add_mixed(), "ADD mixes activation types (int16, int8)"),
    (_relu_zero_point(), "has zero point 5"),
    (_depthwise_int32_bias(), "DEPTHWISE_CONV_2D on int16 input has a int32 bias"),
], ids=["softmax", "mixed", "zero-point", "depthwise-bias"])
def test_16x8_models_edgec_cannot_import_are_errors_naming_the_operator(tmp_path, model, message):
    with pytest.raises(UnsupportedModelError, match="operator 0") as error:
        _load(tmp_path, model)
    assert message in error.value.problem


def _int16_conv(tmp_path):
    x = int16_input((1, 9, 8, 5), 100)
    return _load(tmp_path, conv_model(x.shape, (6, 3, 3, 5), (9, 8), 0, 1, 1, 0, "int64", False, 0.004, 110)), x


@pytest.mark.parametrize("target", ["tile-4x4", "ice40-up5k"])
def test_backends_without_int16_kernels_say_so(tmp_path, target):
    model, _ = _int16_conv(tmp_path)
    with pytest.raises(UnsupportedModelError, match="int16 activation") as error:
        backend_for_target(get_target(target)).check(model, get_target(target))
    assert "Cortex-M" in error.value.hint


def test_an_int16_operator_without_a_cortex_m_kernel_is_an_error_naming_it():
    x = ir.Value(name="x", shape=ir.Shape([1, 4, 5, 3]), type=ir.TensorType(ir.DataType.INT16))
    attrs = {"axes": [1, 2], "keepdims": 1, "input_zero_point": 0, "output_zero_point": 0, "output_multiplier": 1 << 30,
             "output_shift": 1, "activation_min": -(1 << 15), "activation_max": (1 << 15) - 1}
    node = ir.node("Mean", [x], attrs, domain=ops.DOMAIN, name="average")
    y = node.outputs[0]
    y.name, y.shape, y.type = "y", ir.Shape([1, 1, 1, 3]), ir.TensorType(ir.DataType.INT16)
    model = ir.Model(ir.Graph([x], [y], nodes=[node], opset_imports={"": 13, ops.DOMAIN: 1}), ir_version=10)
    with pytest.raises(UnsupportedModelError, match="no int16 kernel for Mean \\(node 'average'\\)"):
        cortex_m.check_model(model)


def test_int16_rows_and_raw_values(tmp_path):
    """Float samples are quantized to int16; raw int16 values pass as they are; int8 rows stay int8."""
    model, x = _int16_conv(tmp_path)
    name = model.graph.inputs[0].name
    rows = int8_input_rows(model, [{name: x}])
    assert rows.dtype == np.int16 and np.array_equal(rows[0], x.ravel())
    floats = int8_input_rows(model, [{name: x.astype(np.float32) * np.float32(0.0005)}])
    assert np.array_equal(floats[0], x.ravel())


@needs_host_compiler
def test_the_c_interface_of_an_int16_model_is_typed(tmp_path):
    """The header declares int16 buffers and their byte counts; the project runs bit-exact
    against TFLM on the host under the sanitizers."""
    case = next(c for c in cases() if c.name == "conv_2d_16x8_0")
    model = _load(tmp_path, case.model)
    out = tmp_path / "project"
    cortex_m.compile_project(model, get_target("cortex-m4"), out, "conv16", emit_only=True)
    header = (out / "include" / "edgec_model.h").read_text()
    assert "int16_t *edgec_input(void);" in header and "const int16_t *edgec_output(void);" in header
    assert "#define EDGEC_INPUT_BYTES 720u" in header and "#define EDGEC_OUTPUT_BYTES 864u" in header
    assert "int edgec_run(const int16_t *input, int16_t *output);" in header
    result = cortex_m.run_project(out, case.inputs[0].reshape(1, -1), host=True)
    assert result.outputs.dtype == np.int16
    np.testing.assert_array_equal(result.outputs[0], golden(case))
    reference = ReferenceExecutor(model).run({model.graph.inputs[0].name: case.inputs[0]})
    np.testing.assert_array_equal(next(iter(reference.values())).ravel(), golden(case))


def _float_cnn():
    """Conv + Relu, a residual Add, a max pool, Gemm, Sigmoid and Softmax: every kind of 16-bit
    lowering (Sigmoid and Softmax run in int8 between two Requantizes)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=4, name="depthwise"),
             helper.make_node("Add", ["c2", "r1"], ["s"], name="residual"),
             helper.make_node("MaxPool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["g"], transB=1, name="fc"),
             helper.make_node("Sigmoid", ["g"], ["h"], name="gate"),
             helper.make_node("Softmax", ["h"], ["y"], name="softmax")]
    weights = {"w1": rng.normal(0, 0.4, (4, 2, 3, 3)), "b1": rng.normal(0, 0.1, 4),
               "w2": rng.normal(0, 0.4, (4, 1, 3, 3)), "w3": rng.normal(0, 0.2, (5, 36)), "b3": rng.normal(0, 0.1, 5)}
    model = make_model(nodes, [tensor_info("x", [1, 2, 6, 6])], [tensor_info("y", [1, 5])],
                       {k: v.astype(np.float32) for k, v in weights.items()})
    return model, rng.normal(0, 1, (24, 1, 2, 6, 6)).astype(np.float32)


def _quantized_cnn(tmp_path, bits: int):
    model, calib = _float_cnn()
    path = tmp_path / "cnn.onnx"
    path.write_bytes(model.SerializeToString())
    return model, calib, edgec.quantize(edgec.load(path), {"x": calib}, activation_bits=bits)


def test_16_bit_activations_quantize_to_the_16x8_scheme(tmp_path):
    """int16 activations with zero point 0, int64 biases, left shift 15, int8 islands; closer
    to the float model than int8 activations on its Conv and Add outputs."""
    model, calib, wide = _quantized_cnn(tmp_path, 16)
    by_name = {node.name: node for node in wide.graph}
    for name in ("conv1", "depthwise", "residual", "pool", "fc"):
        out = by_name[name].outputs[0]
        assert out.dtype == ir.DataType.INT16 and get_qparams(out).zero_point == 0, name
    assert by_name["conv1"].inputs[2].dtype == ir.DataType.INT64
    assert by_name["residual"].attributes["left_shift"].value == 15
    assert by_name["softmax"].outputs[0].dtype == ir.DataType.INT8  # run in int8, then back to int16
    assert {node.op_type for node in wide.graph} >= {"Requantize", "Table", "Softmax", "DepthwiseConv"}
    _, _, narrow = _quantized_cnn(tmp_path, 8)
    assert float_model_error(wide, model, calib[:8]) <= float_model_error(narrow, model, calib[:8])


def test_an_operator_without_a_16_bit_form_is_an_error_naming_it(tmp_path):
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], name="upsample")]
    model = make_model(nodes, [tensor_info("x", [1, 2, 3, 3])], [tensor_info("y", [1, 2, 5, 5])],
                       {"w": rng.normal(0, 0.3, (2, 2, 1, 1)).astype(np.float32)})
    path = tmp_path / "up.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UnsupportedModelError, match="ConvTranspose node 'upsample' has no 16-bit activation form"):
        edgec.quantize(edgec.load(path), {"x": rng.normal(0, 1, (12, 1, 2, 3, 3)).astype(np.float32)},
                       activation_bits=16)


@needs_host_compiler
def test_a_16_bit_onnx_model_runs_bit_exact_in_c(tmp_path):
    _, calib, wide = _quantized_cnn(tmp_path, 16)
    cortex_m.compile_project(wide, get_target("cortex-m4"), tmp_path / "out", "cnn")
    rows = cortex_m.int8_inputs(wide, [{"x": x} for x in calib[:4]])
    assert rows.dtype == np.int16
    result = cortex_m.run_project(tmp_path / "out", rows, host=True)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(wide, rows))


def test_the_command_line_takes_16_bit_activations(tmp_path):
    model, calib = _float_cnn()
    (tmp_path / "cnn.onnx").write_bytes(model.SerializeToString())
    np.save(tmp_path / "calib.npy", calib[:, 0])
    result = invoke("quantize", tmp_path / "cnn.onnx", "--calib", tmp_path / "calib.npy", "--activation-bits", "16",
                    "-o", tmp_path / "q.onnx")
    assert result.exit_code == 0, result.output
    assert any(v.dtype == ir.DataType.INT16 for v in ir.load(tmp_path / "q.onnx").graph.inputs[0].consumers()[0].outputs)
    refused = invoke("quantize", tmp_path / "cnn.onnx", "--calib", tmp_path / "calib.npy", "--activation-bits", "12",
                     "-o", tmp_path / "r.onnx")
    assert refused.exit_code != 0 and "'12' is not one of" in refused.output


@needs_host_compiler
def test_a_16_bit_pointwise_layer_padded_past_its_input_runs_exact(tmp_path):
    """A 1x1 Conv whose explicit end padding puts its last row and column of windows outside the
    input reads them as the zero point (through the gathered column, not in place)."""
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 0, 1, 1], name="pointwise")]
    model = make_model(nodes, [tensor_info("x", [1, 4, 3, 3])], [tensor_info("y", [1, 6, 4, 4])],
                       {"w": rng.normal(0, 0.4, (6, 4, 1, 1)).astype(np.float32)})
    path = tmp_path / "pw.onnx"
    path.write_bytes(model.SerializeToString())
    calib = rng.normal(0, 1, (12, 1, 4, 3, 3)).astype(np.float32)
    wide = edgec.quantize(edgec.load(path), {"x": calib}, activation_bits=16)
    cortex_m.compile_project(wide, get_target("cortex-m4"), tmp_path / "out", "pw", emit_only=True)
    rows = cortex_m.int8_inputs(wide, [{"x": x} for x in calib[:3]])
    result = cortex_m.run_project(tmp_path / "out", rows, host=True)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(wide, rows))
