"""The Conv/FullyConnected kernels over awkward shapes, on the emulated cores and the host.

One chain of layers walks every path of edgec_conv.c: odd and even pixel counts (a lone last
pixel), channel counts that leave 1-3 channels after the last block of four, k not a multiple
of 4 (padded rows), k past 256 (the 23-bit lanes of the cores without DSP split their sums),
per-channel layers with a full-range output (DSP cores' assembly pair loop) and with a clamped
one, and single-pixel layers with and without the DSP blocked layout. The M3 build runs the
scalar kernels (channel blocks [k][4], packed pixel pairs; two channels per multiply for single
pixels, k past 256 included), the M4 build the offset-pair SMLAD
ones, the M55 build Helium's over plain rows; the host builds run the C forms under ASan/UBSan
(an M55 project's with the scalar forms, its rows being Helium's). Every output is the
reference's, bit for bit.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.target import get_target

from conftest import make_model, needs_host_compiler, needs_toolchain, tensor_info


def _awkward_chain(tmp_path, rounding=None):
    rng = np.random.default_rng(21)
    shapes = {"w1": (6, 3, 3, 3), "w2": (33, 6, 3, 3), "w3": (5, 33, 3, 3), "w4": (9, 5, 1, 1)}
    weights = {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in shapes.items()}
    weights["f0"] = rng.normal(0, 0.2, (9 * 3 * 4, 264)).astype(np.float32)  # k = 108, 66 blocks of four
    weights["f1"] = rng.normal(0, 0.1, (264, 7)).astype(np.float32)  # k = 264: two lane chunks; 7 channels
    weights["f2"] = rng.normal(0, 0.5, (7, 8)).astype(np.float32)  # k = 7: padded; blocked on DSP cores
    same = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", **same),  # k 27, 35 pixels, 6 channels
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", **same),  # k 54, 33 channels
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="conv3", strides=[2, 2], **same),  # k 297, 12 pixels
        helper.make_node("Conv", ["c3", "w4"], ["c4"], name="conv4"),  # k 5, 9 channels
        helper.make_node("Flatten", ["c4"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "f0"], ["m0"], name="fc0"),
        helper.make_node("Relu", ["m0"], ["r0"], name="relu0"),
        helper.make_node("MatMul", ["r0", "f1"], ["m1"], name="fc1"),
        helper.make_node("Relu", ["m1"], ["r2"], name="relu2"),
        helper.make_node("MatMul", ["r2", "f2"], ["y"], name="fc2"),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 3, 5, 7])], [tensor_info("y", [1, 8])], weights)
    path = tmp_path / "chain.onnx"
    path.write_bytes(model.SerializeToString())
    calib = rng.normal(0, 1, (24, 1, 3, 5, 7)).astype(np.float32)
    return edgec.quantize(edgec.load(path), {"x": calib}, rounding=rounding), calib


def _outputs_match(tmp_path, core: str, host: bool, rounding=None) -> dict:
    integer, calib = _awkward_chain(tmp_path, rounding)
    report = cortex_m.compile_project(integer, get_target(core), tmp_path / "out", "model", emit_only=host)
    inputs = cortex_m.int8_inputs(integer, [{"x": x} for x in calib[:3]])
    result = cortex_m.run_project(tmp_path / "out", inputs, host=host)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))
    return report


#: edgec_conv_params.blocked per layer: the M3's channel blocks, then lane pairs for single
#: pixels; the M4's blocked offset pairs for the single pixel of k % 8 == 0 and out_c % 4 == 0.
LAYOUTS = {"cortex-m3": list("1111222"), "cortex-m4": list("0000001"), "cortex-m55": list("0000000")}


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4", "cortex-m55"])
def test_awkward_conv_shapes_run_bit_exact_on_the_core(tmp_path, core):
    report = _outputs_match(tmp_path, core, host=False)
    kernels = [layer["kernel"] for layer in report["layers"]]
    assert kernels.count("edgec_conv") == 4 and kernels.count("edgec_fully_connected") == 3
    layouts = re.findall(r"\.blocked = (\d)", next((tmp_path / "out").rglob("edgec_model.c")).read_text())
    assert layouts == LAYOUTS[core]


@needs_host_compiler
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4", "cortex-m55"])
def test_awkward_conv_shapes_run_bit_exact_under_host_sanitizers(tmp_path, core):
    _outputs_match(tmp_path, core, host=True)


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_awkward_conv_shapes_with_single_rounding_run_bit_exact_on_the_core(tmp_path, core):
    """The assembly channel loops' single-rounding output stage (SMULL on the M3, SMMLA on DSP cores)."""
    _outputs_match(tmp_path, core, host=False, rounding="single")


def _extreme_fc(tmp_path):
    """One FullyConnected of k = 520 (lane chunks of 256, 256, 8) whose sums reach the two-lane
    bound: channels of all-max weights of both signs and of alternating signs, against inputs at
    the ends of the int8 range (calibrated on those same inputs, so no output saturates)."""
    rng = np.random.default_rng(5)
    k = 520
    weights = rng.normal(0, 0.3, (k, 10)).astype(np.float32)
    weights[:, 0], weights[:, 1], weights[:, 2] = 1.0, -1.0, 1.0
    weights[:, 3] = np.where(np.arange(k) % 2, 1.0, -1.0)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                       [tensor_info("x", [1, k])], [tensor_info("y", [1, 10])], {"w": weights})
    path = tmp_path / "extreme.onnx"
    path.write_bytes(model.SerializeToString())
    samples = np.stack([np.full(k, -1.0), np.full(k, 1.0), np.where(np.arange(k) % 2, 1.0, -1.0),
                        *rng.uniform(-1, 1, (9, k))]).astype(np.float32)
    return edgec.quantize(edgec.load(path), {"x": samples}), samples


@pytest.mark.parametrize("host", [pytest.param(False, marks=needs_toolchain),
                                  pytest.param(True, marks=needs_host_compiler)], ids=["qemu", "host"])
def test_two_channel_lanes_hold_extreme_sums_on_the_m3(tmp_path, host):
    integer, samples = _extreme_fc(tmp_path)
    cortex_m.compile_project(integer, get_target("cortex-m3"), tmp_path / "out", "model", emit_only=host)
    inputs = cortex_m.int8_inputs(integer, [{"x": x[None]} for x in samples])
    assert inputs.min() == -128 and inputs.max() >= 126
    result = cortex_m.run_project(tmp_path / "out", inputs, host=host)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))
