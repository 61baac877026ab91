"""Input rows (edgec.backend.int8_input_rows): a sample's dtype alone says what it holds.

Float samples are real values, quantized as the model's input Quantize does; integer samples
are the quantized input's raw values, of its integer type, in any signed dtype (and in an
unsigned one where the type is unsigned), checked against the type's range; an unsigned
array for a signed input type (an 8-bit image given to an int8 input) is refused as
ambiguous. The QONNX models are built here (a Brevitas-style uint4 or uint8 input
quantizer), so no Brevitas is needed.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgec
from edgec.backend import backend_for, int8_input_rows
from edgec.errors import InputDataError
from edgec.reference import KERNELS
from edgec.reference.executor import node_attributes

from conftest import small_tflite_model

QONNX = "qonnx.custom_op.general"


def qonnx_fc(input_bits: int) -> ir.Model:
    """x [1, 4] -> Quant (unsigned ``input_bits``, scale 1/16) -> Gemm (4-bit weights) -> Relu ->
    Quant (uint4), as an edgec integer graph (its quantization is the model's own)."""
    weight = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    constants = {"w": weight, "s_in": 1 / 16, "zero": 0.0, "b_in": float(input_bits), "s_w": 0.25, "b4": 4.0,
                 "s_out": 0.1}
    initializers = [numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)
                    for name, value in constants.items()]

    def quant(name, x, scale, bits, signed, narrow=0):
        return helper.make_node("Quant", [x, scale, "zero", bits], [f"{name}_out"], name=name, domain=QONNX,
                                signed=signed, narrow=narrow, rounding_mode="ROUND")

    nodes = [quant("input_quant", "x", "s_in", "b_in", 0), quant("weight_quant", "w", "s_w", "b4", 1, narrow=1),
             helper.make_node("Gemm", ["input_quant_out", "weight_quant_out"], ["y"], name="fc", transB=1),
             helper.make_node("Relu", ["y"], ["r"], name="relu"), quant("out_quant", "r", "s_out", "b4", 0)]
    graph = helper.make_graph(nodes, "qonnx", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("out_quant_out", TensorProto.FLOAT, [1, 3])],
                              initializers)
    return edgec.quantize(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                                    helper.make_opsetid(QONNX, 1)]))


@pytest.fixture(scope="module")
def uint4_model():
    return qonnx_fc(4)


def feeds(array: np.ndarray, name: str = "x") -> list[dict[str, np.ndarray]]:
    return [{name: sample[None]} for sample in array]


def test_float_samples_are_quantized_as_the_input_quantize_does(small_integer_model, rng):
    x = rng.random((3, 3, 8, 8), dtype=np.float32)
    rows = int8_input_rows(small_integer_model, feeds(x))
    quantize = next(iter(small_integer_model.graph.inputs[0].consumers()))
    expected = KERNELS["Quantize"](node_attributes(quantize), "double", x).reshape(3, -1)
    assert rows.dtype == np.int8
    np.testing.assert_array_equal(rows, expected)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_signed_integer_samples_are_the_raw_values_whatever_their_width(small_integer_model, rng, dtype):
    raw = rng.integers(-128, 128, (2, 3, 8, 8))
    rows = int8_input_rows(small_integer_model, feeds(raw.astype(dtype)))
    assert rows.dtype == np.int8
    np.testing.assert_array_equal(rows, raw.reshape(2, -1))


def test_raw_values_outside_the_input_type_are_refused_naming_the_range(small_integer_model):
    raw = np.zeros((2, 3, 8, 8), dtype=np.int16)
    raw[1, 0, 0, 0] = 300
    with pytest.raises(InputDataError) as raised:
        int8_input_rows(small_integer_model, feeds(raw))
    assert raised.value.problem == ("input 'x' takes raw int8 values in [-128, 127] as integer data; sample 1 "
                                    "holds 300")
    assert "x.astype(np.float32)" in raised.value.hint


def test_an_unsigned_image_for_an_int8_input_is_refused_as_ambiguous(small_integer_model, rng):
    image = rng.integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    for small in (image, image // 4):  # whatever the values: the dtype decides
        with pytest.raises(InputDataError, match="uint8 data for input 'x' is ambiguous") as raised:
            int8_input_rows(small_integer_model, feeds(small))
        assert "pass floats (x.astype(np.float32)) to have them quantized" in raised.value.hint
        assert "signed integer array in [-128, 127]" in raised.value.hint
    pixels = image.astype(np.float32)  # the fix: quantized as real values (saturating here)
    assert int8_input_rows(small_integer_model, feeds(pixels)).max() == 127


def test_an_unsigned_8_bit_qonnx_input_stored_as_int8_also_refuses_unsigned_data():
    model = qonnx_fc(8)  # stored as int8 with the zero point shifted by -128
    quantize = next(iter(model.graph.inputs[0].consumers()))
    assert (quantize.attributes["zero_point"].value, model.graph.inputs[0].dtype) == (-128, ir.DataType.FLOAT)
    with pytest.raises(InputDataError, match="uint8 data for input 'x' is ambiguous"):
        int8_input_rows(model, feeds(np.full((1, 4), 200, np.uint8)))
    shifted = np.full((1, 4), 200 - 128, np.int16)  # the raw value 200 of the uint8 quantizer
    np.testing.assert_array_equal(int8_input_rows(model, feeds(shifted)), [[72] * 4])


def test_a_uint4_input_takes_its_raw_values_in_any_integer_dtype(uint4_model):
    quantize = next(iter(uint4_model.graph.inputs[0].consumers()))
    assert quantize.outputs[0].metadata_props["edgec.int_type"] == "uint4"
    raw = np.arange(12).reshape(3, 4) + 3
    for dtype in (np.uint8, np.int8, np.int64, np.uint16):
        rows = int8_input_rows(uint4_model, feeds(raw.astype(dtype)))
        np.testing.assert_array_equal(rows, raw)
    floats = raw.astype(np.float32) / 16  # the real values of those raw ones (scale 1/16)
    np.testing.assert_array_equal(int8_input_rows(uint4_model, feeds(floats)), raw)


@pytest.mark.parametrize(("value", "dtype"), [(16, np.uint8), (-1, np.int8), (255, np.int64)])
def test_a_uint4_input_refuses_raw_values_outside_0_to_15(uint4_model, value, dtype):
    raw = np.zeros((2, 4), dtype=dtype)
    raw[0, 2] = value
    with pytest.raises(InputDataError) as raised:
        int8_input_rows(uint4_model, feeds(raw))
    assert raised.value.problem == f"input 'x' takes raw uint4 values in [0, 15] as integer data; sample 0 holds {value}"
    assert raised.value.hint == "pass values in [0, 15], or floats (x.astype(np.float32)) to have them quantized"


def test_other_dtypes_are_refused(uint4_model):
    with pytest.raises(InputDataError, match="input 'x' got bool data"):
        int8_input_rows(uint4_model, feeds(np.ones((1, 4), dtype=bool)))


def test_an_int8_graph_input_takes_raw_integers_and_quantizes_floats_with_its_scale(tmp_path):
    model = small_tflite_model(tmp_path)
    assert model.graph.inputs[0].dtype == ir.DataType.INT8
    raw = np.random.default_rng(2).integers(-128, 128, (2, 1, 5, 5, 2))
    rows = int8_input_rows(model, [{model.graph.inputs[0].name: sample} for sample in raw.astype(np.int32)])
    np.testing.assert_array_equal(rows, raw.reshape(2, -1))
    reals = np.float32(0.05) * (raw[:1].astype(np.float32) - 1)  # x's scale 0.05, zero point 1
    rows = int8_input_rows(model, [{model.graph.inputs[0].name: reals[0]}])
    np.testing.assert_array_equal(rows, raw[:1].reshape(1, -1))


@pytest.mark.parametrize("kind", ["cortex-m", "fpga"])
def test_every_backend_follows_the_same_rule(uint4_model, kind):
    backend = backend_for(kind)
    raw = np.arange(8, dtype=np.uint8).reshape(2, 4)
    np.testing.assert_array_equal(backend.input_rows(uint4_model, feeds(raw)), int8_input_rows(uint4_model, feeds(raw)))
    floats = np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(backend.input_rows(uint4_model, feeds(floats)),
                                  int8_input_rows(uint4_model, feeds(floats)))
    with pytest.raises(InputDataError, match=r"values in \[0, 15\]"):
        backend.input_rows(uint4_model, feeds(raw + 10))
