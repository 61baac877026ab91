"""Low-bit weights on Cortex-M: 4-bit and 2-bit weights packed in flash, bit-exact on QEMU and the host.

The graphs are int8 graphs whose Conv/DepthwiseConv/FullyConnected weights are clipped to
``bits``-bit narrow values and typed so (:func:`with_narrowed_weights`); the reference
executor runs the same graph, so C and reference must agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

import edgec
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.backends.cortex_m.layers import lower_node
from edgec.backends.cortex_m.network import build_network
from edgec.backends.cortex_m.packing import pack_rows, row_bits, unsupported_width, with_narrowed_weights
from edgec.data import random_samples
from edgec.inttype import IntType
from edgec.passes.qparams import set_int_type
from edgec.target import get_target

from conftest import make_model, needs_host_compiler, needs_toolchain, tensor_info

CORES = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]


@pytest.fixture(scope="module")
def int8_net() -> ir.Model:
    """x[1,16,8,8] -> Conv 3x3 (18) -> Relu -> depthwise 3x3 stride 2 -> Relu -> Conv 1x1 (32) -> Relu
    -> GlobalAveragePool -> Gemm (9), quantized to int8."""
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "wd", "bd"], ["c1"], name="depthwise", pads=[1, 1, 1, 1], group=18,
                         strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="pointwise"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = {"w0": rng.normal(size=(18, 16, 3, 3)) * 0.2, "b0": rng.normal(size=18) * 0.1,
             "wd": rng.normal(size=(18, 1, 3, 3)), "bd": rng.normal(size=18) * 0.1,
             "w2": rng.normal(size=(32, 18, 1, 1)) * 0.3, "b2": rng.normal(size=32) * 0.1,
             "fw": rng.normal(size=(9, 32)), "fb": rng.normal(size=9) * 0.1}
    model = make_model(nodes, [tensor_info("x", [1, 16, 8, 8])], [tensor_info("y", [1, 9])],
                       {name: value.astype(np.float32) for name, value in inits.items()})
    return edgec.quantize(model, rng.random((16, 16, 8, 8), dtype=np.float32))


def weight_bytes(model: ir.Model, dsp: bool) -> dict[str, tuple[str, int]]:
    """Per accumulating layer: (kernel, bytes of its weight array)."""
    network = build_network(model, dsp)
    return {layer.node.op_type + str(index): (layer.call.split("(")[0], layer.arrays[0].values.nbytes)
            for index, layer in enumerate(network.layers) if layer.params_type in ("edgec_conv_params",
                                                                                  "edgec_depthwise_params")}


@pytest.mark.parametrize("dsp", [False, True])
def test_packed_weights_take_half_and_a_quarter_of_the_int8_bytes(int8_net, dsp):
    int8 = weight_bytes(int8_net, dsp)
    depthwise_int8 = 4 * 9 * (8 if dsp else 4) + 9 * 2  # four full blocks (int16 lane pairs on DSP cores), 2 rest
    assert list(int8.values()) == [("edgec_conv", 18 * 144), ("edgec_depthwise_conv", depthwise_int8),
                                   ("edgec_conv", 32 * 20), ("edgec_fully_connected", 9 * 32)]
    w4 = weight_bytes(with_narrowed_weights(int8_net, 4), dsp)
    assert list(w4.values()) == [("edgec_conv_w4", 18 * 144 // 2), ("edgec_depthwise_conv_w4", 5 * 5 * 4),
                                 ("edgec_conv_w4", 32 * 24 // 2), ("edgec_fully_connected_w4", 10 * 32 // 2)]
    w2 = weight_bytes(with_narrowed_weights(int8_net, 2), dsp)
    # the pointwise rows (k = 18) run faster in 4-bit words than padded to two 2-bit words (row_bits)
    assert list(w2.values()) == [("edgec_conv_w2", 18 * 144 // 4), ("edgec_depthwise_conv_w2", 5 * 3 * 4),
                                 ("edgec_conv_w4", 32 * 24 // 2), ("edgec_fully_connected_w2", 10 * 32 // 4)]
    w3 = weight_bytes(with_narrowed_weights(int8_net, 3), dsp)
    assert [kernel for kernel, _ in w3.values()] == [kernel for kernel, _ in int8.values()]
    assert [size for _, size in w3.values()] == [size for _, size in int8.values()]


def test_short_two_bit_rows_take_the_four_bit_layout():
    assert [row_bits(2, k) for k in (8, 16, 18, 24, 32, 40, 144)] == [4, 2, 4, 4, 2, 4, 2]
    assert [row_bits(4, k) for k in (8, 18)] == [4, 4]


def test_row_packing_puts_each_weight_in_its_lane_field():
    rows = np.arange(-8, 8).reshape(2, 8)  # two channels, one word each
    packed, k_padded = pack_rows(rows, 4)
    words = packed.view("<u4")
    assert k_padded == 8 and words.size == 2
    for channel in range(2):
        for k in range(8):
            lane, j = (k >> 1) & 1, 2 * (k >> 2) + (k & 1)
            field = (int(words[channel]) >> (16 * lane + 12 - 4 * j)) & 0xF
            assert field - 16 * (field >= 8) == rows[channel, k]


def test_value_types_the_kernels_cannot_hold_are_named(int8_net):
    model = ir.from_proto(ir.to_proto(int8_net))
    conv = next(node for node in model.graph if node.op_type == "Conv")
    assert unsupported_width(conv) is None
    set_int_type(conv.outputs[0], IntType(16, True))
    reason = unsupported_width(conv)
    assert reason is not None and conv.outputs[0].name in reason and "int16" in reason
    set_int_type(conv.outputs[0], IntType(8, False))
    assert "uint8" in unsupported_width(conv)


def test_lowering_ignores_the_width_of_int8_weights(int8_net):
    node = next(node for node in int8_net.graph if node.op_type == "Conv")
    assert lower_node(node, 0, "double", True).call.startswith("edgec_conv(")


def run_and_compare(model: ir.Model, core: str, out, host: bool) -> None:
    samples = random_samples(input_specs(model), 4, seed=9)
    cortex_m.compile_project(model, get_target(core), out, "lowbit")
    inputs = cortex_m.int8_inputs(model, samples)
    expected = cortex_m.reference_outputs(model, inputs)
    np.testing.assert_array_equal(cortex_m.run_project(out, inputs).outputs, expected, err_msg=core)
    if host:
        np.testing.assert_array_equal(cortex_m.run_project(out, inputs, host=True).outputs, expected)


@needs_toolchain
@needs_host_compiler
@pytest.mark.parametrize(("bits", "core"), [(4, "cortex-m4"), (2, "cortex-m3")])
def test_packed_weights_run_bit_exact_on_qemu_and_under_sanitizers(tmp_path, int8_net, bits, core):
    run_and_compare(with_narrowed_weights(int8_net, bits), core, tmp_path / core, host=True)


@needs_toolchain
@needs_host_compiler
@pytest.mark.slow
@pytest.mark.parametrize("bits", [4, 2, 3])
def test_low_bit_weights_run_bit_exact_on_every_core(tmp_path, int8_net, bits):
    model = with_narrowed_weights(int8_net, bits)
    for core in CORES:
        run_and_compare(model, core, tmp_path / core, host=core in ("cortex-m3", "cortex-m4") and bits != 4)


def long_row_net(bits: int) -> ir.Model:
    """x[1,300,1,3] -> Conv 1x1 (6) -> Relu -> Flatten -> Gemm (5), quantized with ``bits``-bit weights:
    rows of 300 weights, longer than one chunk of the packed dot loops (256 k), for a pixel pair
    and a lone pixel."""
    rng = np.random.default_rng(11)
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="long"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Flatten", ["r0"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = {"w0": rng.normal(size=(6, 300, 1, 1)) * 0.1, "b0": rng.normal(size=6) * 0.1,
             "fw": rng.normal(size=(5, 18)), "fb": rng.normal(size=5) * 0.1}
    model = make_model(nodes, [tensor_info("x", [1, 300, 1, 3])], [tensor_info("y", [1, 5])],
                       {name: value.astype(np.float32) for name, value in inits.items()})
    return edgec.quantize(model, rng.random((16, 300, 1, 3), dtype=np.float32), weight_bits=bits)


@needs_toolchain
@pytest.mark.parametrize(("bits", "core"), [(4, "cortex-m4"), (2, "cortex-m4"), (4, "cortex-m3")])
def test_rows_longer_than_a_chunk_run_bit_exact(tmp_path, bits, core):
    model = long_row_net(bits)  # its FullyConnected rows (k = 18) take the 4-bit layout either way (row_bits)
    assert [layer.call.split("(")[0] for layer in build_network(model, core != "cortex-m3").layers
            if layer.params_type == "edgec_conv_params"] == [f"edgec_conv_w{bits}", "edgec_fully_connected_w4"]
    run_and_compare(model, core, tmp_path / core, host=False)
