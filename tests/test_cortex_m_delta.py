"""Delta-encoded weights on Cortex-M: the stream layout, flash, the report, and bit-exact runs
against the integer reference (host sanitizers in the fast tier; every decoder path at every
width, and QEMU on every core, in the slow tier)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

import edgec
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.backends.cortex_m.delta_layers import STREAM_PAD, delta_stream
from edgec.backends.cortex_m.network import build_network
from edgec.data import random_samples
from edgec.delta import DeltaScheme, get_scheme
from edgec.errors import EdgecWarning
from edgec.target import get_target

from conftest import make_model, needs_host_compiler, needs_toolchain, tensor_info

CORES = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
#: The decoder's paths: base + d or a running sum (consecutive and closed-loop decode alike),
#: rebuilt while unpacking (one segment a row: tensor, channel; blocks of a multiple of 8) or
#: in a second pass (other blocks).
DECODINGS = ["fixed", "closed-loop"]
REBUILDS = ["channel", "block:5"]


def float_net() -> ir.Model:
    """x[1,6,7,7] -> Conv 3x3 (12, k = 54) -> Relu -> depthwise 3x3 stride 2, multiplier 2 (24)
    -> Relu -> Conv 1x1 (10) -> Relu -> depthwise 3x3, multiplier 1 (10: two blocks of four
    channels and two alone, most windows on the border) -> Relu -> Flatten -> Gemm (5, k = 160):
    49 pixels (pixel tiles and a lone pixel), rows that end inside a group of eight deltas, and a
    FullyConnected."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "wd", "bd"], ["c1"], name="depthwise", pads=[1, 1, 1, 1], group=12,
                         strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="pointwise"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "wd2", "bd2"], ["c3"], name="depthwise2", pads=[1, 1, 1, 1], group=10),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Flatten", ["r3"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = {"w0": rng.normal(size=(12, 6, 3, 3)) * 0.2, "b0": rng.normal(size=12) * 0.1,
             "wd": rng.normal(size=(24, 1, 3, 3)), "bd": rng.normal(size=24) * 0.1,
             "w2": rng.normal(size=(10, 24, 1, 1)) * 0.3, "b2": rng.normal(size=10) * 0.1,
             "wd2": rng.normal(size=(10, 1, 3, 3)) * 0.5, "bd2": rng.normal(size=10) * 0.1,
             "fw": rng.normal(size=(5, 160)) * 0.1, "fb": rng.normal(size=5) * 0.1}
    return make_model(nodes, [tensor_info("x", [1, 6, 7, 7])], [tensor_info("y", [1, 5])],
                      {name: value.astype(np.float32) for name, value in inits.items()})


def encoded_net(bits: int, scheme: str, scope: str) -> ir.Model:
    calibration = np.random.default_rng(6).random((16, 6, 7, 7), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)  # untrained: saturated, the graph is still exact
        return edgec.quantize(float_net(), calibration, delta=DeltaScheme.parse(bits, scheme, scope))


def run_and_compare(model: ir.Model, core: str, out, host: bool) -> dict:
    """Compile for ``core`` and run 3 samples on the host (sanitizers) or QEMU, bit for bit."""
    manifest = cortex_m.compile_project(model, get_target(core), out, "delta", emit_only=host)
    inputs = cortex_m.int8_inputs(model, random_samples(input_specs(model), 3, seed=4))
    expected = cortex_m.reference_outputs(model, inputs)
    np.testing.assert_array_equal(cortex_m.run_project(out, inputs, host=host).outputs, expected, err_msg=core)
    return manifest


def test_stream_holds_each_delta_little_endian_from_a_byte_per_row():
    deltas = np.array([[-2, 1, 0, -1, 1], [1, 1, -2, 0, -1]])  # 2-bit: 10 bits a row, 2 bytes
    stream = delta_stream(deltas, 2).view(np.uint8)
    assert stream.size == 2 * 2 + STREAM_PAD and not stream[4:].any()
    for row in range(2):
        bits = int(stream[2 * row]) | int(stream[2 * row + 1]) << 8
        fields = [(bits >> (2 * j)) & 3 for j in range(5)]
        assert [f - 4 * (f >= 2) for f in fields] == deltas[row].tolist()
        assert bits >> 10 == 0


@pytest.mark.parametrize("bits", range(2, 7))
def test_stream_round_trips_every_delta_value(bits):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    deltas = np.resize(np.arange(low, high + 1), (3, 21))
    stream = delta_stream(deltas, bits).view(np.uint8)
    row_bytes = math.ceil(21 * bits / 8)
    for row in range(3):
        value = int.from_bytes(stream[row * row_bytes:(row + 1) * row_bytes].tobytes(), "little")
        fields = [(value >> (bits * j)) & ((1 << bits) - 1) for j in range(21)]
        assert [f - (1 << bits) * (f > high) for f in fields] == deltas[row].tolist()


def test_encoded_layers_take_the_delta_kernels_and_their_bytes():
    model = encoded_net(4, "closed-loop", "channel")
    layers = [layer for layer in build_network(model, dsp=True).layers if layer.encoding]
    assert [layer.call.split("(")[0] for layer in layers] == [
        "edgec_conv_delta", "edgec_depthwise_conv_delta", "edgec_conv_delta", "edgec_depthwise_conv_delta",
        "edgec_fully_connected_delta"]
    for layer, (rows, k) in zip(layers, [(12, 54), (24, 9), (10, 24), (10, 9), (5, 160)], strict=True):
        assert layer.encoding == "closed-loop 4-bit deltas per channel"
        assert layer.arrays[0].values.nbytes == rows * math.ceil(k * 4 / 8) + STREAM_PAD
        assert layer.arrays[1].values.nbytes == rows  # one base a row
        assert get_scheme(layer.node.inputs[1]) == DeltaScheme(4, "closed-loop", "channel")


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_flash_of_an_encoded_fully_connected_layer_is_near_bits_over_eight(bits):
    model = encoded_net(bits, "closed-loop", "channel")
    plain = edgec.quantize(float_net(), np.random.default_rng(6).random((16, 6, 7, 7), dtype=np.float32))

    def fc_weights(graph: ir.Model) -> int:
        layer = next(layer for layer in build_network(graph, dsp=True).layers if layer.node.op_type == "FullyConnected")
        return sum(array.values.nbytes for array in layer.arrays if not array.name.endswith(("_bias", "_requant")))

    int8_bytes = fc_weights(plain)
    assert int8_bytes == 5 * 160
    encoded = fc_weights(model)
    assert encoded == 5 * 160 * bits // 8 + 5 + STREAM_PAD  # deltas, a base per row, the pad
    assert encoded / int8_bytes <= bits / 8 + 0.02


def fully_connected(outputs: int, k: int = 256) -> ir.Model:
    rng = np.random.default_rng(outputs)
    model = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
                       [tensor_info("x", [1, k])], [tensor_info("y", [1, outputs])],
                       {"w": (rng.normal(size=(outputs, k)) * 0.1).astype(np.float32),
                        "b": np.zeros(outputs, np.float32)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)
        return edgec.quantize(model, rng.random((8, k), dtype=np.float32), delta=DeltaScheme(4, "fixed", "channel"))


def test_decoded_rows_take_scratch_of_a_few_rows_never_the_whole_tensor():
    scratch = [build_network(fully_connected(rows), dsp=True).layers[0].scratch_bytes for rows in (16, 64)]
    assert scratch[0] == scratch[1]  # independent of the number of rows
    assert scratch[0] <= 6 * 256 < 16 * 256


@needs_toolchain
def test_report_counts_encoded_bytes_and_names_the_encoding(tmp_path):
    model = encoded_net(4, "fixed", "block:16")
    manifest = cortex_m.compile_project(model, get_target("cortex-m4"), tmp_path / "p", "delta")
    encoded = [layer for layer in manifest["layers"] if layer["weight_encoding"]]
    assert [layer["op"] for layer in encoded] == ["Conv", "DepthwiseConv", "Conv", "DepthwiseConv", "FullyConnected"]
    assert {layer["weight_encoding"] for layer in encoded} == {"fixed 4-bit deltas per block:16"}
    network = build_network(model, dsp=True)
    for entry in encoded:
        assert entry["weight_bytes"] == sum(a.values.nbytes for a in network.layers[entry["index"]].arrays)
    assert all(layer["weight_encoding"] is None for layer in manifest["layers"] if layer["op"] == "Requantize")


@needs_host_compiler
@pytest.mark.parametrize(("bits", "scheme", "scope", "core"), [
    (4, "closed-loop", "channel", "cortex-m4"), (2, "fixed", "block:5", "cortex-m3"),
    (5, "consecutive", "tensor", "cortex-m4"), (6, "closed-loop", "block:16", "cortex-m3"),
    (3, "fixed", "channel", "cortex-m4"),
])
def test_delta_kernels_are_bit_exact_under_sanitizers(tmp_path, bits, scheme, scope, core):
    run_and_compare(encoded_net(bits, scheme, scope), core, tmp_path / "host", host=True)


@needs_host_compiler
@pytest.mark.slow
@pytest.mark.parametrize("scheme", DECODINGS)
@pytest.mark.parametrize("scope", REBUILDS)
def test_every_decoder_path_and_width_is_bit_exact_under_sanitizers(tmp_path, scheme, scope):
    for bits in range(2, 7):
        core = ("cortex-m3", "cortex-m4")[bits % 2]  # the scalar and the DSP (emulated) paths, in turn
        run_and_compare(encoded_net(bits, scheme, scope), core, tmp_path / f"w{bits}", host=True)


@needs_toolchain
@pytest.mark.slow
@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize(("bits", "scheme", "scope"), [
    (4, "closed-loop", "channel"), (2, "fixed", "block:5"), (6, "consecutive", "tensor"), (3, "closed-loop", "block:16"),
])
def test_delta_kernels_are_bit_exact_on_every_core(tmp_path, core, bits, scheme, scope):
    run_and_compare(encoded_net(bits, scheme, scope), core, tmp_path / core, host=False)
