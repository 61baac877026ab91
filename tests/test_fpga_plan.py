"""The FPGA layer plan: planner, exact thresholds, folding and the numpy dataflow model.

The dataflow model executing the plan must equal edgec's integer reference executor bit for
bit, on every output and on every stage's intermediate value: Brevitas nets (W8A8, W4A4,
W2A2, MLP and CNN, trained briefly on digits) and post-training quantized float models with
signed asymmetric activations, zero-point padding and a Transpose before the classifier.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.api import int8_output_names
from edgec.backend import int8_input_rows
from edgec.backends.fpga.dataflow_model import run_plan
from edgec.backends.fpga.folding import cycles_per_inference, fold, layer_cycles, layer_dsps
from edgec.backends.fpga.lanes import plan_packing
from edgec.backends.fpga.layers import MvuLayer, PoolLayer, Window, apply_thresholds
from edgec.backends.fpga.planner import check_model, plan_layers
from edgec.backends.fpga.thresholds import Requant, accumulator_bits, accumulator_range, exact_thresholds
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.fixedpoint import multiply_by_quantized_multiplier
from edgec.inttype import IntType, signed_bits
from edgec.reference import ReferenceExecutor
from edgec.reference.conv import fully_connected

from conftest import make_model, tensor_info

INT2, INT4, INT8 = IntType(2, True), IntType(4, True), IntType(8, True)
UINT2, UINT4 = IntType(2, False), IntType(4, False)


def assert_plan_equals_reference(model, rows: np.ndarray) -> list:
    """run_plan's outputs and per-stage trace equal the reference executor's values; the plan."""
    layers = plan_layers(model)
    outputs, trace = run_plan(layers, rows)
    executor = ReferenceExecutor(model)
    shape = [int(d) for d in model.graph.inputs[0].shape.numpy()]
    name = int8_output_names(model)[0]
    for row, sample_trace, output in zip(rows, trace, outputs):
        values = executor.run({executor.input_names[0]: row.astype(np.int8).reshape(shape)}, keep_intermediates=True)
        np.testing.assert_array_equal(output, values[name].ravel())
        assert [index for index, _ in sample_trace] == list(range(len(layers)))
        for index, data in sample_trace:
            np.testing.assert_array_equal(data, values[layers[index].output].ravel(), err_msg=layers[index].name)
    return layers


# --- Brevitas nets --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def brevitas_models():
    pytest.importorskip("brevitas", reason="brevitas is not installed (pip install 'edgec[qonnx]')")
    pytest.importorskip("qonnx", reason="qonnx is not installed (pip install 'edgec[qonnx]')")
    import brevitas_models

    return brevitas_models


@pytest.mark.parametrize("name,kind,bits", [pytest.param(*net, id=net[0]) for net in
                                            [("mlp_w4a4", "mlp", 4), ("conv_w4a4", "conv", 4), ("mlp_w2a2", "mlp", 2),
                                             ("conv_w2a2", "conv", 2), ("mlp_w8a8", "mlp", 8),
                                             ("conv_w8a8", "conv", 8)]])
def test_the_plan_of_a_brevitas_net_equals_the_reference_bit_for_bit(brevitas_models, name, kind, bits):
    data = brevitas_models.digits()
    few = dataclasses.replace(data, train_x=data.train_x[:256], train_y=data.train_y[:256])
    model = brevitas_models.quantize(brevitas_models.train(kind, bits, few, epochs=1))
    x = data.test_x[:24]
    rows = int8_input_rows(model, [{model.graph.inputs[0].name: sample[None]} for sample in x])
    layers = assert_plan_equals_reference(model, rows)
    assert [layer.op for layer in layers] == (["FullyConnected"] * 2 if kind == "mlp" else
                                              ["Conv", "MaxPool", "Conv", "FullyConnected"])
    assert layers[0].weight_type == IntType(bits, True, narrow=True)
    assert layers[-1].output_type == INT8 and layers[-1].thresholds.shape == (10, 255)


# --- post-training quantized float models ----------------------------------------------------

def float_cnn(channels: int):
    """x[1,C,8,8] -> Conv 3x3 pad 1 (4) -> Relu -> MaxPool 2 -> Conv 3x3 stride 2 pad 1 (6, no
    activation: a signed output with a zero point) -> Flatten -> Gemm (5)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Flatten", ["c2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    inits = {"w1": rng.normal(size=(4, channels, 3, 3)), "b1": rng.normal(size=4),
             "w2": rng.normal(size=(6, 4, 3, 3)), "b2": rng.normal(size=6),
             "fw": rng.normal(size=(5, 24)), "fb": rng.normal(size=5)}
    inits = {key: value.astype(np.float32) for key, value in inits.items()}
    return make_model(nodes, [tensor_info("x", [1, channels, 8, 8])], [tensor_info("y", [1, 5])], inits)


def ptq_samples(channels: int, count: int) -> np.ndarray:
    """Inputs in [-0.3, 1.0): the input's zero point is neither 0 nor the type's minimum."""
    return (np.random.default_rng(4).random((count, channels, 8, 8)) * 1.3 - 0.3).astype(np.float32)


@pytest.mark.parametrize("bits", [4, 2, 8])
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_the_plan_of_a_post_training_quantized_cnn_equals_the_reference(bits, rounding):
    model = edgec.quantize(float_cnn(1), ptq_samples(1, 16), rounding=rounding, weight_bits=bits,
                           activation_bits=bits)
    rows = int8_input_rows(model, [{"x": sample[None]} for sample in ptq_samples(1, 40)])
    layers = assert_plan_equals_reference(model, rows)
    conv1, pool, conv2, fc = layers
    assert conv1.window.pad_value not in (0, conv1.input_type.min)  # a real zero point pads
    assert conv2.window.pad_value == conv2.input_type.min and conv2.window.stride == (2, 2)
    assert isinstance(pool, PoolLayer) and pool.window.pad_value == pool.input_type.min
    assert fc.input_type.signed and fc.vector_length == 24  # the Transpose went into fc's columns


def test_a_transposed_input_is_refused_with_the_input_layout_fix_and_nhwc_input_is_planned():
    model = edgec.quantize(float_cnn(2), ptq_samples(2, 16), weight_bits=4, activation_bits=4)
    with pytest.raises(UnsupportedModelError) as error:
        check_model(model)
    assert "Transpose" in error.value.problem and "--input-layout nhwc" in error.value.hint
    nhwc = edgec.quantize(float_cnn(2), ptq_samples(2, 16), weight_bits=4, activation_bits=4, input_layout="nhwc")
    samples = ptq_samples(2, 8).transpose(0, 2, 3, 1)
    assert_plan_equals_reference(nhwc, int8_input_rows(nhwc, [{"x": sample[None]} for sample in samples]))


def test_check_model_names_the_first_node_it_cannot_take():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="fc", transB=1),
             helper.make_node("Softmax", ["g"], ["s"], name="probabilities", axis=-1),
             helper.make_node("Add", ["s", "g"], ["y"], name="residual")]
    inits = {"w": rng.normal(size=(4, 6)).astype(np.float32), "b": rng.normal(size=4).astype(np.float32)}
    proto = make_model(nodes, [tensor_info("x", [1, 6])], [tensor_info("y", [1, 4])], inits)
    model = edgec.quantize(proto, rng.random((16, 1, 6), dtype=np.float32))
    with pytest.raises(UnsupportedModelError) as error:
        check_model(model)
    assert "'probabilities' (Softmax)" in error.value.problem and error.value.hint


# --- thresholds -------------------------------------------------------------------------------

def random_requant(rng, weights, input_type, output_type, rounding, shift_range=(-12, 0)) -> tuple:
    channels = weights.shape[0]
    zero_point = int(rng.integers(input_type.min, input_type.max + 1))
    bias = rng.integers(-300, 300, channels)
    lo_clamp = int(rng.integers(output_type.min, output_type.min + 2))
    attrs = {"input_zero_point": zero_point, "output_zero_point": int(rng.integers(output_type.min, output_type.max)),
             "output_multiplier": rng.integers(1 << 30, 1 << 31, channels).tolist(),
             "output_shift": rng.integers(*shift_range, channels, endpoint=True).tolist(),
             "activation_min": lo_clamp, "activation_max": int(rng.integers(output_type.max - 1, output_type.max + 1))}
    offset = bias - zero_point * weights.sum(axis=1)
    requant = Requant(offset, np.array(attrs["output_multiplier"]), np.array(attrs["output_shift"]),
                      attrs["output_zero_point"], attrs["activation_min"], attrs["activation_max"], rounding,
                      output_type)
    return attrs, bias, requant


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("input_type,weight_type,output_type", [(INT4, INT4, UINT4), (UINT4, INT2, INT4),
                                                                (INT8, INT8, INT8), (UINT2, INT4, INT2)])
def test_thresholds_reproduce_the_reference_requantization_on_every_accumulator(rounding, input_type, weight_type,
                                                                                 output_type):
    rng = np.random.default_rng([ord(c) for c in f"{rounding}{input_type}{weight_type}{output_type}"])
    for _ in range(6):
        weights = rng.integers(weight_type.min, weight_type.max + 1, (3, int(rng.integers(1, 12))))
        attrs, bias, requant = random_requant(rng, weights, input_type, output_type, rounding)
        lo, hi = accumulator_range(weights, input_type)
        t = exact_thresholds(requant, lo, hi, "layer")
        assert t.shape == (3, output_type.levels - 1) and np.all(np.diff(t, axis=1) >= 0)
        assert np.all((t >= lo[:, None]) & (t <= hi[:, None] + 1))
        for c in range(3):
            acc = np.arange(lo[c], hi[c] + 1)
            scaled = multiply_by_quantized_multiplier(acc + requant.offset[c], attrs["output_multiplier"][c],
                                                      attrs["output_shift"][c], rounding)
            expected = output_type.saturate(np.clip(scaled + attrs["output_zero_point"], attrs["activation_min"],
                                                    attrs["activation_max"]))
            np.testing.assert_array_equal(apply_thresholds(acc[:, None], t[c:c + 1], output_type)[:, 0], expected)
        x = rng.integers(input_type.min, input_type.max + 1, (50, weights.shape[1]))
        reference = output_type.saturate(fully_connected(attrs, rounding, x.astype(np.int8), weights.astype(np.int8),
                                                         bias.astype(np.int32)))
        np.testing.assert_array_equal(apply_thresholds(x @ weights.T, t, output_type), reference)


def test_thresholds_over_a_large_range_take_the_sampled_check_and_stay_exact():
    rng = np.random.default_rng(7)
    weights = rng.integers(-127, 128, (4, 3000))
    _, _, requant = random_requant(rng, weights, INT8, INT8, "double", shift_range=(-20, -16))
    lo, hi = accumulator_range(weights, INT8)
    assert (hi - lo).max() * 4 > 1 << 22
    t = exact_thresholds(requant, lo, hi, "big")
    acc = np.concatenate([rng.integers(lo.min(), hi.max(), (20000, 4)), t.T[1:-1] - 1, t.T[1:-1]])
    acc = np.clip(acc, lo, hi)
    np.testing.assert_array_equal(apply_thresholds(acc, t, INT8), requant(acc))


def test_an_accumulator_that_wraps_before_requantization_is_refused():
    weights = np.full((1, 2000), 127)
    requant = Requant(np.zeros(1, np.int64), np.array([1 << 30]), np.array([8]), 0, -128, 127, "double", INT8)
    lo, hi = accumulator_range(weights, INT8)
    with pytest.raises(UnsupportedModelError, match="int32"):
        exact_thresholds(requant, lo, hi, "wide")


def hand_fc(out_channels: int, k: int, input_type=UINT4, thresholds=None) -> MvuLayer:
    rng = np.random.default_rng(out_channels * 1000 + k)
    t = np.sort(rng.integers(-40, 40, (out_channels, 15)), axis=1) if thresholds is None else thresholds
    return MvuLayer(0, f"fc{out_channels}x{k}", "FullyConnected", "y", input_type, INT4, UINT4,
                    rng.integers(-7, 8, (out_channels, k)), t)


def test_accumulator_bits_cover_the_reachable_range_and_the_thresholds():
    layer = dataclasses.replace(hand_fc(1, 2, thresholds=np.zeros((1, 15), np.int64)), weights=np.array([[1, -2]]))
    assert accumulator_range(layer.weights, UINT4) == (np.array([-30]), np.array([15]))
    assert accumulator_bits(layer) == 6  # [-32, 31] holds [-30, 15]
    assert accumulator_bits(dataclasses.replace(layer, thresholds=np.full((1, 15), 40))) == 7
    assert signed_bits(-128, 127) == 8 and signed_bits(0, 128) == 9 and signed_bits(0, 0) == 1


# --- folding ----------------------------------------------------------------------------------

def two_layer_plan() -> list:
    first = hand_fc(32, 64)
    second = dataclasses.replace(hand_fc(10, 32), index=1)
    return [first, second]


def conv_plan() -> list:
    window = Window(8, 8, 4, (3, 3), (1, 1), (1, 1, 1, 1), 0)
    rng = np.random.default_rng(1)
    conv = MvuLayer(0, "conv", "Conv", "c", UINT4, INT4, UINT4, rng.integers(-7, 8, (6, 36)),
                    np.sort(rng.integers(-40, 40, (6, 15)), axis=1), window)
    pool = PoolLayer(1, "pool", "MaxPool", "p", UINT4, Window(8, 8, 6, (2, 2), (2, 2), (0, 0, 0, 0), 0))
    fc = dataclasses.replace(hand_fc(10, 96), index=2)
    return [conv, pool, fc]


def test_cycles_follow_the_fold_model():
    first, second = two_layer_plan()
    assert layer_cycles(first) == 32 * 64 and layer_cycles(second) == 10 * 32
    assert layer_cycles(first, pe=4, simd=64) == 64  # never faster than its 64-element input stream
    conv, pool, fc = conv_plan()
    assert layer_cycles(conv) == 64 * 6 * 36 and layer_cycles(pool) == 8 * 8 * 6
    assert layer_cycles(conv, pe=6, simd=4) == 64 * 36  # the window unit emits one element a cycle
    assert cycles_per_inference([first, second]) == 2048


def test_without_a_goal_every_layer_is_folded_smallest():
    folded = fold(two_layer_plan(), clock_hz=12e6)
    assert [(layer.pe, layer.simd) for layer in folded] == [(1, 1), (1, 1)]


def test_fps_gets_the_cheapest_folding_meeting_it():
    folded = fold(two_layer_plan(), clock_hz=1e6, fps=1e6 / 512)
    assert [(layer.pe, layer.simd) for layer in folded] == [(1, 4), (1, 1)]
    assert cycles_per_inference(folded) == 512
    conv_folded = fold(conv_plan(), clock_hz=1e6, fps=1e6 / 2304)
    assert [(layer.pe, layer.simd) for layer in conv_folded if isinstance(layer, MvuLayer)] == [(3, 2), (1, 1)]
    assert cycles_per_inference(conv_folded) == 2304  # 64 positions x 36 window elements
    packed = fold(two_layer_plan(), clock_hz=1e6, fps=1e6 / 512, macs_per_dsp=lambda layer: 4)
    assert sum(layer_dsps(layer, lambda layer: 4) for layer in packed) == 2


def test_a_packing_is_taken_only_where_it_saves_dsps():
    sdv = plan_packing("DSP48E2", INT4, INT4, kind="mvu", accumulation=64)

    def variants(layer):  # what the project offers: the plain core and the packed one
        return [dataclasses.replace(layer, packing=None), dataclasses.replace(layer, packing=sdv)]

    def lanes(layer):
        return 1 if layer.packing is None else layer.packing.lanes

    smallest = fold(two_layer_plan(), clock_hz=1e6, macs_per_dsp=lanes, variants=variants)
    assert [layer.packing for layer in smallest] == [None, None]  # pe = 1: packing saves no DSP
    fast = fold(two_layer_plan(), clock_hz=1e6, fps=1e6 / 64, macs_per_dsp=lanes, variants=variants)
    assert fast[0].packing == sdv and fast[0].pe > 1
    assert sum(layer_dsps(layer, lanes) for layer in fast) < sum(layer.pe * layer.simd for layer in fast)


def test_an_unreachable_fps_names_the_best_rate():
    with pytest.raises(EdgecError, match=r"64 cycles, 15625\.0 inferences/s"):
        fold(two_layer_plan(), clock_hz=1e6, fps=20000)
    with pytest.raises(EdgecError, match="max-dsp"):
        fold(two_layer_plan(), clock_hz=1e6, fps=1e6 / 512, max_dsp=3)


def brute_force_interval(layers: list, max_dsp: int, per_dsp: int) -> int:
    """The smallest initiation interval of any folding of ``layers`` within ``max_dsp`` DSPs."""
    options = [[(pe, simd) for pe in range(1, layer.out_channels + 1) for simd in range(1, layer.vector_length + 1)
                if layer.out_channels % pe == 0 and layer.vector_length % simd == 0] for layer in layers]
    intervals = [max(layer_cycles(layer, pe, simd) for layer, (pe, simd) in zip(layers, choice))
                 for choice in itertools.product(*options)
                 if sum(math.ceil(pe * simd / per_dsp) for pe, simd in choice) <= max_dsp]
    return min(intervals)


@pytest.mark.parametrize("max_dsp,per_dsp", [(2, 1), (8, 1), (13, 1), (8, 4), (40, 2)])
def test_max_dsp_gets_the_fastest_folding_within_the_budget(max_dsp, per_dsp):
    layers = two_layer_plan()
    folded = fold(layers, clock_hz=1e6, max_dsp=max_dsp, macs_per_dsp=lambda layer: per_dsp)
    assert sum(layer_dsps(layer, lambda layer: per_dsp) for layer in folded) <= max_dsp
    assert cycles_per_inference(folded) == brute_force_interval(layers, max_dsp, per_dsp)


def test_a_budget_below_the_smallest_folding_is_an_error():
    with pytest.raises(EdgecError, match="needs 2 DSPs"):
        fold(two_layer_plan(), clock_hz=1e6, max_dsp=1)
