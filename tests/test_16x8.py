"""The 16x8 scheme (int16 activations, int8 weights) beyond the TFLM goldens: the arithmetic of
its 64-bit requantization, the models edgec refuses and why, the backends without int16
kernels, and the generated C interface of an int16 model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tflm_cases_16x8 import conv_model, int16_input

import edgec
from edgec import ops
from edgec.backend import backend_for_target, int8_input_rows
from edgec.backends import cortex_m
from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import multiply_by_quantized_multiplier_wide
from edgec.reference import ReferenceExecutor
from edgec.target import get_target

from conftest import needs_host_compiler
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
    node = ir.node("Transpose", [x], {"perm": [0, 2, 1, 3]}, domain=ops.DOMAIN, name="swap")
    y = node.outputs[0]
    y.name, y.shape, y.type = "y", ir.Shape([1, 5, 4, 3]), ir.TensorType(ir.DataType.INT16)
    model = ir.Model(ir.Graph([x], [y], nodes=[node], opset_imports={"": 13, ops.DOMAIN: 1}), ir_version=10)
    with pytest.raises(UnsupportedModelError, match="no int16 kernel for Transpose \\(node 'swap'\\)"):
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
