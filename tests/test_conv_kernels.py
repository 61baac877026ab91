"""The Conv/FullyConnected kernels over awkward shapes, on the emulated cores and the host.

One chain of layers walks every path of edgec_conv.c: odd and even pixel counts (a lone last
pixel), channel counts that leave 1-3 channels after the last block of four, k not a multiple
of 4 (padded rows), k past 256 (the 23-bit lanes of the cores without DSP split their sums),
per-channel layers with a full-range output (DSP cores' assembly pair loop) and with a clamped
one, and single-pixel layers with and without the DSP blocked layout. The M3 build runs the
scalar kernels (channel blocks [k][4], packed pixel pairs), the M4 build the offset-pair SMLAD
ones, the M55 build Helium's over plain rows; the host builds run the C forms under ASan/UBSan
(an M55 project's with the scalar forms, its rows being Helium's). Every output is the
reference's, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.target import get_target

from conftest import make_model, needs_host_compiler, needs_toolchain, tensor_info


def _awkward_chain(tmp_path):
    rng = np.random.default_rng(21)
    shapes = {"w1": (6, 3, 3, 3), "w2": (33, 6, 3, 3), "w3": (5, 33, 3, 3), "w4": (9, 5, 1, 1)}
    weights = {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in shapes.items()}
    weights["f1"] = rng.normal(0, 0.2, (9 * 3 * 4, 7)).astype(np.float32)  # k = 108: blocked on DSP cores
    weights["f2"] = rng.normal(0, 0.5, (7, 5)).astype(np.float32)  # k = 7: padded, not blocked
    same = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", **same),  # k 27, 35 pixels, 6 channels
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", **same),  # k 54, 33 channels
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="conv3", strides=[2, 2], **same),  # k 297, 12 pixels
        helper.make_node("Conv", ["c3", "w4"], ["c4"], name="conv4"),  # k 5, 9 channels
        helper.make_node("Flatten", ["c4"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "f1"], ["m1"], name="fc1"),
        helper.make_node("Relu", ["m1"], ["r2"], name="relu2"),
        helper.make_node("MatMul", ["r2", "f2"], ["y"], name="fc2"),
    ]
    model = make_model(nodes, [tensor_info("x", [1, 3, 5, 7])], [tensor_info("y", [1, 5])], weights)
    path = tmp_path / "chain.onnx"
    path.write_bytes(model.SerializeToString())
    calib = rng.normal(0, 1, (24, 1, 3, 5, 7)).astype(np.float32)
    return edgec.quantize(edgec.load(path), {"x": calib}), calib


def _outputs_match(tmp_path, core: str, host: bool) -> dict:
    integer, calib = _awkward_chain(tmp_path)
    report = cortex_m.compile_project(integer, get_target(core), tmp_path / "out", "model", emit_only=host)
    inputs = cortex_m.int8_inputs(integer, [{"x": x} for x in calib[:3]])
    result = cortex_m.run_project(tmp_path / "out", inputs, host=host)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))
    return report


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4", "cortex-m55"])
def test_awkward_conv_shapes_run_bit_exact_on_the_core(tmp_path, core):
    report = _outputs_match(tmp_path, core, host=False)
    kernels = [layer["kernel"] for layer in report["layers"]]
    assert kernels.count("edgec_conv") == 4 and kernels.count("edgec_fully_connected") == 2


@needs_host_compiler
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4", "cortex-m55"])
def test_awkward_conv_shapes_run_bit_exact_under_host_sanitizers(tmp_path, core):
    _outputs_match(tmp_path, core, host=True)
