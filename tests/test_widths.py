"""Bit widths of the integer graph: integer types, saturation in the reference executor,
post-training quantization to 2-8 bits, recorded (QONNX-style) types, Quantize rounding,
the width check and the inspect figures; int8 graphs stay what they were."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

import edgec
from edgec import ops
from edgec.calibration import calibrate
from edgec.data import quantize_float
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.inttype import INT8, INT8_WEIGHTS, INT32, IntType, weight_type
from edgec.passes.multipliers import clamp_attributes
from edgec.passes.qparams import (
    QParams,
    get_channel_scales,
    get_qparams,
    int_type_of,
    set_channel_scales,
    set_int_type,
    set_qparams,
)
from edgec.reference import ReferenceExecutor
from edgec.summary import summarize
from edgec.widths import check_widths, first_width_problem

from conftest import make_model, small_conv_model, tensor_info
from exact_arith import mbqm

SMALL_TYPES = [IntType(bits, signed, narrow) for bits, signed, narrow in itertools.product(range(2, 9), (True, False),
                                                                                        (False, True))
               if IntType(bits, signed, narrow).fits_int8()]


def test_int_types_have_the_ranges_of_their_names():
    assert [(t.min, t.max) for t in map(IntType.parse, ["int4", "uint4", "int4n", "int2n", "uint2", "int8n"])] == \
        [(-8, 7), (0, 15), (-7, 7), (-1, 1), (0, 3), (-127, 127)]
    assert weight_type(8) == INT8_WEIGHTS and weight_type(2).name == "int2n"
    assert IntType.parse("uint4").name == "uint4" and IntType(3, True).levels == 8
    assert INT8.contains(IntType(4, False)) and not IntType(4, True).contains(IntType(4, False))
    assert not IntType(8, False).fits_int8() and IntType(7, False).fits_int8()
    np.testing.assert_array_equal(IntType(3, True).saturate(np.array([-9, -4, 0, 3, 8], np.int8)), [-4, -4, 0, 3, 3])
    with pytest.raises(ValueError):
        IntType.parse("int4x")


def _requantize_graph(int_type: IntType, attrs: dict) -> ir.Model:
    """x int8[256] -> Requantize (``attrs``) -> y, declared ``int_type``."""
    x = ir.Value(name="x", shape=ir.Shape([256]), type=ir.TensorType(ir.DataType.INT8))
    node = ir.node("Requantize", [x], attrs, domain=ops.DOMAIN, name="requantize")
    y = node.outputs[0]
    y.name, y.shape, y.type = "y", ir.Shape([256]), ir.TensorType(ir.DataType.INT8)
    set_qparams(y, QParams(0.1, int_type.min + int_type.levels // 2, int_type))
    graph = ir.Graph([x], [y], nodes=[node], opset_imports={"": 13, ops.DOMAIN: ops.OPSET_VERSION})
    return ir.Model(graph, ir_version=10)


@pytest.mark.parametrize("int_type", SMALL_TYPES, ids=str)
def test_requantization_saturates_to_the_output_type_for_every_int8_input(int_type):
    # real multiplier sqrt(2) * 2^(bits - 8): the 256 inputs overshoot the type at both ends
    multiplier, shift, zero_point = 1518500250, int_type.bits - 7, int_type.min + int_type.levels // 2
    attrs = {"input_zero_point": 5, "output_zero_point": zero_point, "output_multiplier": multiplier,
             "output_shift": shift}
    x = np.arange(-128, 128, dtype=np.int8)
    raw = [mbqm(int(v) - 5, multiplier, shift) + zero_point for v in x]
    assert min(raw) < int_type.min and max(raw) > int_type.max
    expected = [min(max(value, int_type.min), int_type.max) for value in raw]
    unclamped = _requantize_graph(int_type, attrs)  # int8 clamp attributes: the executor saturates to the type
    clamped = _requantize_graph(int_type, {**attrs, **clamp_attributes(int_type)})
    for model in (unclamped, clamped):
        np.testing.assert_array_equal(ReferenceExecutor(model).run({"x": x})["y"], expected)
    assert first_width_problem(clamped) is None
    if int_type != INT8:
        with pytest.raises(UnsupportedModelError, match=r"node 'requantize' \(Requantize\) clamps to \[-128, 127\]"):
            check_widths(unclamped)


def _mlp(rng) -> ir.Model:
    """x[1,16] -> Gemm(12, transB) -> Relu -> MatMul(5) -> y, canonical."""
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    inits = {"w1": rng.normal(size=(12, 16)).astype(np.float32), "b1": rng.normal(size=12).astype(np.float32),
             "w2": rng.normal(size=(12, 5)).astype(np.float32)}
    return edgec.load(make_model(nodes, [tensor_info("x", [1, 16])], [tensor_info("y", [1, 5])], inits))


def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


class NumpyModel:
    """Float64 numpy model of the integer semantics that PTQ promises, computed from the float
    model's weights and the calibrated ranges (not from the integer graph's integers): it checks
    the graph's parameters as it derives them and then runs the same arithmetic (exact in
    float64 here: products of small integers and 31-bit multipliers stay below 2^53)."""

    def __init__(self, integer_model: ir.Model, ranges: dict, weight_bits: int, activation_bits: int) -> None:
        self.nodes = {node.op_type: node for node in integer_model.graph}
        self.layers = [node for node in integer_model.graph if node.op_type in ("Conv", "FullyConnected")]
        self.w_type, self.a_type = weight_type(weight_bits), IntType(activation_bits, True)
        self.ranges = ranges

    def activation(self, name: str) -> QParams:
        low, high = min(self.ranges[name][0], 0.0), max(self.ranges[name][1], 0.0)
        scale = float(np.float32((high - low) / (self.a_type.levels - 1)))
        zero_point = int(np.clip(_round_half_away(self.a_type.min - low / scale), self.a_type.min, self.a_type.max))
        return QParams(scale, zero_point, self.a_type)

    def weights(self, layer: ir.Node, w: np.ndarray, axis: int, b: np.ndarray, s_in: float):
        """Integer weights (output channels first) and bias, asserted equal to the layer's."""
        w = np.moveaxis(w, axis, 0)
        scales = (np.abs(w.reshape(len(w), -1).astype(np.float64)).max(axis=1) / self.w_type.max).astype(np.float32)
        recorded, _ = get_channel_scales(layer.inputs[1])
        np.testing.assert_array_equal(recorded, scales)
        shape = (-1,) + (1,) * (w.ndim - 1)
        w_q = np.clip(_round_half_away(w.astype(np.float32) / scales.reshape(shape)), self.w_type.min, self.w_type.max)
        b_q = _round_half_away(b.astype(np.float64) / (np.float64(s_in) * scales.astype(np.float64)))
        stored = layer.inputs[1].const_value.numpy()
        np.testing.assert_array_equal(stored.transpose(0, 3, 1, 2) if stored.ndim == 4 else stored, w_q)
        np.testing.assert_array_equal(layer.inputs[2].const_value.numpy(), b_q)
        assert int_type_of(layer.inputs[1]) == self.w_type and int_type_of(layer.inputs[2]) == INT32
        return w_q.astype(np.float64), b_q, scales

    def requantize(self, layer: ir.Node, acc: np.ndarray, real: np.ndarray, out: QParams, relu: bool) -> np.ndarray:
        """``acc`` (channels on axis 0) rescaled by the layer's multipliers, which approximate ``real``."""
        multiplier = np.asarray(layer.attributes["output_multiplier"].value, dtype=np.float64)
        shift = np.asarray(layer.attributes["output_shift"].value, dtype=np.float64)
        approx = multiplier * np.exp2(shift - 31)
        assert np.all(np.abs(approx - real) <= real * 2.0**-30)
        shape = (-1,) + (1,) * (acc.ndim - 1)
        multiplier, shift = multiplier.reshape(shape), shift.reshape(shape)
        # The model's "double" rounding: round half up of acc * 2^left * m / 2^31, then half away of / 2^right.
        high = np.floor(acc * np.exp2(np.maximum(shift, 0)) * multiplier / 2.0**31 + 0.5)
        scaled = _round_half_away(high / np.exp2(np.maximum(-shift, 0)))
        low = max(out.zero_point, out.int_type.min) if relu else out.int_type.min
        return np.clip(scaled + out.zero_point, low, out.int_type.max)

    def quantize_input(self, x: np.ndarray, q: QParams) -> np.ndarray:
        quantize = self.nodes["Quantize"]
        assert (quantize.attributes["scale"].value, quantize.attributes["zero_point"].value) == (q.scale, q.zero_point)
        rounded = _round_half_away(x.astype(np.float32) / np.float32(q.scale))
        return np.clip(rounded + q.zero_point, q.int_type.min, q.int_type.max)

    def dense(self, index: int, x_q: np.ndarray, q_in: QParams, w: np.ndarray, axis: int, b: np.ndarray,
              out: QParams, relu: bool) -> np.ndarray:
        layer = self.layers[index]
        w_q, b_q, scales = self.weights(layer, w, axis, b, q_in.scale)
        acc = w_q @ (x_q - q_in.zero_point) + b_q
        return self.requantize(layer, acc, q_in.scale * scales.astype(np.float64) / out.scale, out, relu)


def _ptq(float_model: ir.Model, calibration: np.ndarray, weight_bits: int, activation_bits: int):
    samples = [{"x": sample[None]} for sample in calibration]
    ranges = calibrate(float_model, samples)
    integer = edgec.quantize(float_model, calibration, weight_bits=weight_bits, activation_bits=activation_bits)
    return integer, NumpyModel(integer, ranges, weight_bits, activation_bits)


WIDTHS = [(4, 4), (2, 2), (4, 8), (2, 8), (3, 5)]


@pytest.mark.parametrize(("weight_bits", "activation_bits"), WIDTHS)
def test_a_low_bit_mlp_runs_as_its_numpy_model(rng, weight_bits, activation_bits):
    float_model = _mlp(rng)
    calibration = rng.normal(size=(32, 16)).astype(np.float32)
    integer, model = _ptq(float_model, calibration, weight_bits, activation_bits)
    check_widths(integer)
    init = {v.name: v.const_value.numpy() for v in float_model.graph.initializers.values()}
    q_x, q_r, q_y = model.activation("x"), model.activation("r"), model.activation("y")
    executor = ReferenceExecutor(integer)
    for x in rng.normal(size=(8, 1, 16)).astype(np.float32):
        x_q = model.quantize_input(x[0], q_x)
        r_q = model.dense(0, x_q, q_x, init["w1"], 0, init["b1"], q_r, relu=True)
        y_q = model.dense(1, r_q, q_r, init["w2"], 1, np.zeros(5), q_y, relu=False)
        got = executor.run({"x": x}, keep_intermediates=True)
        np.testing.assert_array_equal(got[model.nodes["Dequantize"].inputs[0].name][0], y_q)


def _conv(x_q: np.ndarray, z: int, w_q: np.ndarray) -> np.ndarray:
    """3x3 convolution, padding 1, of ``x_q - z`` ``[C, H, W]`` (padding adds nothing)."""
    centered = np.pad(x_q - z, ((0, 0), (1, 1), (1, 1)))
    height, width = x_q.shape[1:]
    return sum(np.einsum("oc,chw->ohw", w_q[:, :, ky, kx], centered[:, ky:ky + height, kx:kx + width])
               for ky in range(3) for kx in range(3))


@pytest.mark.parametrize(("weight_bits", "activation_bits"), WIDTHS)
def test_a_low_bit_conv_net_runs_as_its_numpy_model(rng, weight_bits, activation_bits):
    float_model = edgec.load(small_conv_model(rng, batch=1))
    calibration = rng.random((24, 3, 8, 8), dtype=np.float32)
    integer, model = _ptq(float_model, calibration, weight_bits, activation_bits)
    check_widths(integer)
    init = {v.name: v.const_value.numpy() for v in float_model.graph.initializers.values()}
    q_x, q_r, q_g = model.activation("x"), model.activation("r"), model.activation("g")
    assert get_qparams(model.nodes["AveragePool"].outputs[0]) == q_r  # pools keep their input's type
    executor = ReferenceExecutor(integer)
    for x in rng.random((6, 1, 3, 8, 8), dtype=np.float32):
        x_q = model.quantize_input(x[0], q_x)
        conv = model.layers[0]
        w_q, b_q, scales = model.weights(conv, init["w"], 0, init["b"], q_x.scale)
        acc = _conv(x_q, q_x.zero_point, w_q) + b_q[:, None, None]
        r_q = model.requantize(conv, acc, q_x.scale * scales.astype(np.float64) / q_r.scale, q_r, relu=True)
        pooled = _round_half_away(r_q.sum(axis=(1, 2)) / 64)
        g_q = model.dense(1, pooled, q_r, init["fw"], 0, init["fb"], q_g, relu=False)
        got = executor.run({"x": x}, keep_intermediates=True)
        np.testing.assert_array_equal(got[model.nodes["Dequantize"].inputs[0].name][0], g_q)


def _without_types(model: ir.Model) -> ir.Model:
    """A copy of ``model`` with no ``edgec.int_type`` recorded (every value has its storage's type)."""
    copy = ir.from_proto(ir.to_proto(model))
    for value in [*copy.graph.initializers.values(), *(out for node in copy.graph for out in node.outputs)]:
        value.metadata_props.pop("edgec.int_type", None)
    return copy


def _attributes(model: ir.Model) -> list:
    return [(node.op_type, {name: attr.value for name, attr in node.attributes.items()}) for node in model.graph]


def test_int8_graphs_are_what_they_were(rng):
    float_model = edgec.load(small_conv_model(rng, batch=1))
    calibration = rng.random((16, 3, 8, 8), dtype=np.float32)
    default = edgec.quantize(float_model, calibration)
    explicit = edgec.quantize(float_model, calibration, weight_bits=8, activation_bits=8)
    assert ir.to_proto(default).SerializeToString() == ir.to_proto(explicit).SerializeToString()
    attributes = _attributes(default)
    assert attributes[0][0] == "Quantize" and set(attributes[0][1]) == {"scale", "zero_point"}
    # The int8 range is the clamp attributes' default: only the fused Relu writes its bounds.
    assert [(op, attrs["activation_max"]) for op, attrs in attributes if "activation_max" in attrs] == [("Conv", 127)]
    weights = [v for v in default.graph.initializers.values() if v.dtype == ir.DataType.INT8]
    assert {int_type_of(v) for v in weights} == {INT8_WEIGHTS}
    # A graph written before widths existed (no recorded types) reads as int8 and runs the same.
    legacy = _without_types(default)
    x = {"x": rng.random((1, 3, 8, 8), dtype=np.float32)}
    new, old = ReferenceExecutor(default).run(x, True), ReferenceExecutor(legacy).run(x, True)
    assert new.keys() == old.keys() and all(np.array_equal(new[name], old[name]) for name in new)


def _w4a4(rng) -> ir.Model:
    return edgec.quantize(small_conv_model(rng, batch=1), rng.random((16, 3, 8, 8), dtype=np.float32),
                          weight_bits=4, activation_bits=4)


def _node(model: ir.Model, op_type: str) -> ir.Node:
    return next(node for node in model.graph if node.op_type == op_type)


def test_check_widths_names_the_first_offending_value_or_node(rng):
    model = _w4a4(rng)
    assert first_width_problem(model) is None
    conv = _node(model, "Conv")
    conv.attributes["activation_max"] = ir.AttrInt64("activation_max", 8)
    with pytest.raises(UnsupportedModelError, match=r"node 'conv' \(Conv\) clamps to \[-8, 8\], outside its output "
                                                    r"type int4 \[-8, 7\]"):
        check_widths(model)
    model = _w4a4(rng)
    weights = _node(model, "Conv").inputs[1]
    weights.const_value = ir.tensor(np.full(weights.const_value.numpy().shape, 8, np.int8), name=weights.name)
    assert first_width_problem(model) == f"initializer '{weights.name}' holds values outside its type int4n [-7, 7]"
    model = _w4a4(rng)
    set_int_type(_node(model, "AveragePool").outputs[0], IntType(3, True))
    assert first_width_problem(model).startswith("node 'pool' (AveragePool) outputs int3, which does not hold its input")
    set_int_type(_node(model, "Quantize").outputs[0], IntType(8, False))
    assert "is declared uint8 [0, 255], which its int8 storage cannot hold" in first_width_problem(model)


def test_a_softmax_output_stays_int8_under_low_bit_activations(rng):
    extra = [helper.make_node("Softmax", ["g"], ["s"], name="softmax", axis=-1)]
    model = edgec.quantize(small_conv_model(rng, batch=1, extra_nodes=extra), rng.random((16, 3, 8, 8), np.float32),
                           weight_bits=2, activation_bits=2)
    softmax = _node(model, "Softmax")
    assert int_type_of(softmax.inputs[0]) == IntType(2, True) and int_type_of(softmax.outputs[0]) == INT8
    set_int_type(softmax.outputs[0], IntType(4, True))
    assert first_width_problem(model) == "node 'softmax' (Softmax) outputs int4; softmax outputs int8"


def test_recorded_weight_types_and_activation_types_are_kept_exactly(rng):
    """A QONNX-style float model: int3 weights on recorded per-channel scales, a uint4 Relu output."""
    float_model = edgec.load(small_conv_model(rng, batch=1))
    inits = float_model.graph.initializers
    scales = np.array([0.25, 0.5, 0.125, 1.0], np.float32)
    levels = rng.integers(-4, 4, (4, 3, 3, 3))
    inits["w"].const_value = ir.tensor((levels * scales[:, None, None, None]).astype(np.float32), name="w")
    set_channel_scales(inits["w"], scales, 0, IntType(3, True))
    relu = next(node for node in float_model.graph if node.op_type == "Relu")
    set_qparams(relu.outputs[0], QParams(0.5, 0, IntType(4, False)))
    model = edgec.quantize(float_model, rng.random((16, 3, 8, 8), np.float32), weight_bits=2, activation_bits=8)
    conv = _node(model, "Conv")
    np.testing.assert_array_equal(conv.inputs[1].const_value.numpy(), levels.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(get_channel_scales(conv.inputs[1])[0], scales)
    assert int_type_of(conv.inputs[1]) == IntType(3, True) and int_type_of(conv.outputs[0]) == IntType(4, False)
    assert (conv.attributes["activation_min"].value, conv.attributes["activation_max"].value) == (0, 15)
    assert int_type_of(_node(model, "FullyConnected").inputs[1]) == weight_type(2)  # not recorded: PTQ
    check_widths(model)


def test_a_recorded_type_int8_storage_cannot_hold_is_an_error(rng):
    float_model = edgec.load(small_conv_model(rng, batch=1))
    relu = next(node for node in float_model.graph if node.op_type == "Relu")
    set_qparams(relu.outputs[0], QParams(0.5, 0, IntType(8, False)))
    with pytest.raises(UnsupportedModelError, match="tensor 'r' is quantized to uint8, which int8 storage cannot hold"):
        edgec.quantize(float_model, rng.random((16, 3, 8, 8), np.float32))


@pytest.mark.parametrize("bits", [1, 9])
def test_widths_outside_2_to_8_bits_are_refused(rng, bits):
    with pytest.raises(EdgecError, match=f"weight_bits is {bits}"):
        edgec.quantize(small_conv_model(rng, batch=1), rng.random((16, 3, 8, 8), np.float32), weight_bits=bits)
    with pytest.raises(EdgecError, match=f"activation_bits is {bits}"):
        edgec.quantize(small_conv_model(rng, batch=1), rng.random((16, 3, 8, 8), np.float32), activation_bits=bits)


def test_an_input_recording_half_even_rounding_is_quantized_half_to_even(rng):
    float_model = edgec.load(small_conv_model(rng, batch=1))
    float_model.graph.inputs[0].metadata_props[ops.QUANTIZE_ROUNDING_KEY] = "half_even"
    set_qparams(float_model.graph.inputs[0], QParams(0.25, -3, IntType(4, True)))
    model = edgec.quantize(float_model, rng.random((16, 3, 8, 8), np.float32), activation_bits=4)
    quantize = _node(model, "Quantize")
    assert {name: attr.value for name, attr in quantize.attributes.items()} == \
        {"scale": 0.25, "zero_point": -3, "min": -8, "max": 7, "rounding": "half_even"}
    ties = np.array([0.125, 0.375, -0.125, -0.375, 0.0625, 5.0, -5.0, 0.625] * 24, np.float32).reshape(1, 3, 8, 8)
    got = ReferenceExecutor(model).run({"x": ties}, keep_intermediates=True)[quantize.outputs[0].name]
    expected = np.array([0, 2, 0, -2, 0, 20, -20, 2] * 24).reshape(1, 3, 8, 8) - 3  # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
    np.testing.assert_array_equal(got, np.clip(expected, -8, 7))
    np.testing.assert_array_equal(quantize_float(ties, get_qparams(quantize.outputs[0]), "half_even"), got)
    assert not np.array_equal(quantize_float(ties, get_qparams(quantize.outputs[0])), got)  # half away differs
    float_model.graph.inputs[0].metadata_props[ops.QUANTIZE_ROUNDING_KEY] = "banker"
    with pytest.raises(UnsupportedModelError, match="model input 'x' asks for Quantize rounding 'banker'"):
        edgec.quantize(float_model, rng.random((16, 3, 8, 8), np.float32))


def test_inspect_shows_types_and_counts_weights_at_their_width(rng):
    layers = {layer.op: layer for layer in summarize(_w4a4(rng)).layers}
    conv, fc = layers["Conv"], layers["FullyConnected"]
    assert conv.types == "w int4n / out int4" and layers["AveragePool"].types == "out int4"
    assert (conv.param_bytes, conv.packed_bytes) == (108 + 16, 54 + 16)  # 4x3x3x3 weights, 4 int32 biases
    assert (fc.param_bytes, fc.packed_bytes) == (8 + 8, 4 + 8)
    int8 = summarize(edgec.quantize(small_conv_model(rng, batch=1), rng.random((16, 3, 8, 8), np.float32)))
    assert int8.total_packed_bytes == int8.total_param_bytes and int8.layers[0].types == "out int8"
    assert next(layer["types"] for layer in int8.to_dict()["layers"] if layer["op"] == "Conv") == "w int8n / out int8"


def test_every_operator_of_an_awkward_net_keeps_its_width():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    from torch_models import AWKWARD_MODELS, awkward_module

    for factory, shape in AWKWARD_MODELS:
        module = awkward_module(factory)
        calibration = np.random.default_rng(0).random((12, *shape[1:]), dtype=np.float32)
        model = edgec.quantize(module, calibration, example_inputs=(torch.rand(shape),), weight_bits=2,
                               activation_bits=3)
        check_widths(model)
        for node in model.graph:
            out = node.outputs[0]
            if out.dtype == ir.DataType.INT8:
                assert int_type_of(out) == (INT8 if node.op_type == "Softmax" else IntType(3, True)), node.name
        # The clamp attributes alone keep every result in its type, as the C kernels need: run
        # without the declared types (no saturation by the executor), the graph computes the same.
        untyped = _without_types(model)
        feed = {model.graph.inputs[0].name: calibration[:1]}
        typed_run = ReferenceExecutor(model).run(feed, keep_intermediates=True)
        untyped_run = ReferenceExecutor(untyped).run(feed, keep_intermediates=True)
        assert all(np.array_equal(typed_run[name], untyped_run[name]) for name in typed_run)
