"""ONNX Sigmoid, Tanh, HardSwish and LeakyRelu quantize to ``Table`` nodes with TFLM's int8 arithmetic.

The integer model follows the float one to within its output quantization, its tables are
the TFLite frontend's for the same quantization (one semantics for both importers), and the
Cortex-M C computes the reference's integers.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.passes.activation_tables import hard_swish_table, leaky_relu_table, logistic_table, tanh_table
from edgec.passes.qparams import get_qparams
from edgec.target import get_target

from conftest import make_model, needs_toolchain, tensor_info

FLOAT = {
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "HardSwish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "LeakyRelu": lambda x: np.where(x >= 0, x, 0.2 * x),
}


def quantized_activation_model(tmp_path, op_type: str, seed: int):
    """``MatMul -> op_type`` on a [1, 8] input, quantized: ``(integer model, weights, calibration)``."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.6, (8, 6)).astype(np.float32)
    attrs = {"alpha": 0.2} if op_type == "LeakyRelu" else {}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node(op_type, ["h"], ["y"], **attrs)]
    model = make_model(nodes, [tensor_info("x", [1, 8])], [tensor_info("y", [1, 6])], {"w": weights}, opset=14)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    calib = rng.normal(0, 1.5, (64, 1, 8)).astype(np.float32)
    return edgec.quantize(edgec.load(path), {"x": calib}), weights, calib


def expected_table(op_type: str, node):
    q_in, q_out = get_qparams(node.inputs[0]), get_qparams(node.outputs[0])
    if op_type == "Sigmoid":
        return logistic_table(q_in)
    if op_type == "Tanh":
        return tanh_table(q_in)
    if op_type == "HardSwish":
        return hard_swish_table(q_in, q_out)
    return leaky_relu_table(q_in, q_out, float(np.float32(0.2)))


@pytest.mark.parametrize("op_type", sorted(FLOAT))
def test_activation_quantizes_to_tflm_table(tmp_path, op_type):
    integer, weights, calib = quantized_activation_model(tmp_path, op_type, seed=3)
    tables = [node for node in integer.graph if node.op_type == "Table"]
    assert len(tables) == 1
    np.testing.assert_array_equal(tables[0].inputs[1].const_value.numpy(), expected_table(op_type, tables[0]))
    samples = calib[:20]  # inside the calibrated ranges: no saturation
    ours = np.concatenate([edgec.run(integer, {"x": x})[0]["y"] for x in samples])
    theirs = FLOAT[op_type](np.concatenate([x @ weights for x in samples]))
    # The output step, plus the input's rounding times the steepest slope (HardSwish: 1.5).
    in_step, out_step = get_qparams(tables[0].inputs[0]).scale, get_qparams(tables[0].outputs[0]).scale
    assert np.abs(ours - theirs).max() <= 2 * out_step + 1.5 * in_step


@needs_toolchain
@pytest.mark.parametrize("op_type", sorted(FLOAT))
def test_activation_tables_run_bit_exact_on_cortex_m(tmp_path, op_type):
    integer, _, calib = quantized_activation_model(tmp_path, op_type, seed=4)
    samples = [{"x": x} for x in calib[:6]]
    cortex_m.compile_project(integer, get_target("cortex-m3"), tmp_path / "out", "model")
    inputs = cortex_m.int8_inputs(integer, samples)
    result = cortex_m.run_project(tmp_path / "out", inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))
