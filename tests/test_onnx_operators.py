"""ONNX PRelu, grouped Conv, ConvTranspose and MatMul of computed tensors quantize to edgec
PRelu (TFLite PRELU's arithmetic), Conv, TransposeConv and BatchMatMul.

PRelu's slope becomes an int8 constant in the activations' channels-last layout; a grouped
Conv keeps its weights' depth (``Cin / group``, TFLM's rule); ConvTranspose's weights are
quantized per output channel (their axis 1). Each integer model follows the
float one to within its quantization, and the Cortex-M C computes the reference's integers.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.passes.qparams import get_qparams
from edgec.target import get_target

from conftest import float_model_error, make_model, needs_toolchain, tensor_info


def _quantize(tmp_path, model, calib):
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return edgec.quantize(edgec.load(path), {"x": calib})


def _run_on_cortex_m(tmp_path, integer, calib, core: str) -> None:
    samples = [{"x": x} for x in calib[:4]]
    cortex_m.compile_project(integer, get_target(core), tmp_path / "out", "model")
    inputs = cortex_m.int8_inputs(integer, samples)
    result = cortex_m.run_project(tmp_path / "out", inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))


def _quantized(tmp_path, slope_shape):
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("PRelu", ["c", "slope"], ["y"], name="prelu")]
    slope = rng.uniform(-0.5, 0.9, slope_shape).astype(np.float32)
    model = make_model(nodes, [tensor_info("x", [1, 3, 5, 6])], [tensor_info("y", [1, 4, 5, 6])],
                       {"w": rng.normal(0, 0.6, (4, 3, 1, 1)).astype(np.float32), "slope": slope})
    calib = rng.normal(0, 1, (32, 1, 3, 5, 6)).astype(np.float32)
    return model, calib, _quantize(tmp_path, model, calib)


@pytest.mark.parametrize("slope_shape", [(4, 1, 1), (1,)], ids=["per-channel", "single"])
def test_prelu_follows_the_float_model(tmp_path, slope_shape):
    model, calib, integer = _quantized(tmp_path, slope_shape)
    prelu = next(node for node in integer.graph if node.op_type == "PRelu")
    assert prelu.inputs[1].const_value is not None
    in_step, out_step = get_qparams(prelu.inputs[0]).scale, get_qparams(prelu.outputs[0]).scale
    # the output's rounding, the input's (twice: the conv's input and output) and the slope's
    assert float_model_error(integer, model, calib[:8]) <= out_step + 2 * in_step


@needs_toolchain
def test_prelu_runs_bit_exact_on_cortex_m(tmp_path):
    _, calib, integer = _quantized(tmp_path, (4, 1, 1))
    _run_on_cortex_m(tmp_path, integer, calib, "cortex-m3")


def _grouped(tmp_path):
    """``x[1,6,5,6] -> Conv 3x3 pad 1, group 3 (9 channels) -> Relu``."""
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", group=3, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    model = make_model(nodes, [tensor_info("x", [1, 6, 5, 6])], [tensor_info("y", [1, 9, 5, 6])],
                       {"w": rng.normal(0, 0.4, (9, 2, 3, 3)).astype(np.float32),
                        "b": rng.normal(0, 0.1, 9).astype(np.float32)})
    calib = rng.normal(0, 1, (32, 1, 6, 5, 6)).astype(np.float32)
    return model, calib, _quantize(tmp_path, model, calib)


def test_grouped_conv_follows_the_float_model(tmp_path):
    model, calib, integer = _grouped(tmp_path)
    conv = next(node for node in integer.graph if node.op_type == "Conv")
    assert list(conv.inputs[1].shape.numpy()) == [9, 3, 3, 2]
    step = get_qparams(conv.outputs[0]).scale
    assert float_model_error(integer, model, calib[:8]) <= 2 * step


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_grouped_conv_runs_bit_exact_on_cortex_m(tmp_path, core):
    _, calib, integer = _grouped(tmp_path)
    _run_on_cortex_m(tmp_path, integer, calib, core)


def _transposed(tmp_path, pads, output_padding):
    """``x[1,4,4,5] -> ConvTranspose 3x3 stride 2 (6 channels)``."""
    rng = np.random.default_rng(10)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up", strides=[2, 2], pads=pads,
                            output_padding=output_padding)
    out_h, out_w = (2 * (n - 1) + 3 - pads[i] - pads[i + 2] + output_padding[i] for i, n in enumerate((4, 5)))
    model = make_model([node], [tensor_info("x", [1, 4, 4, 5])], [tensor_info("y", [1, 6, out_h, out_w])],
                       {"w": rng.normal(0, 0.4, (4, 6, 3, 3)).astype(np.float32),
                        "b": rng.normal(0, 0.1, 6).astype(np.float32)})
    calib = rng.normal(0, 1, (32, 1, 4, 4, 5)).astype(np.float32)
    return model, calib, _quantize(tmp_path, model, calib)


@pytest.mark.parametrize("pads,output_padding", [([1, 1, 1, 1], [1, 1]), ([0, 2, 1, 0], [0, 0])])
def test_conv_transpose_follows_the_float_model(tmp_path, pads, output_padding):
    model, calib, integer = _transposed(tmp_path, pads, output_padding)
    up = next(node for node in integer.graph if node.op_type == "TransposeConv")
    step = get_qparams(up.outputs[0]).scale
    assert float_model_error(integer, model, calib[:8]) <= 2 * step


@needs_toolchain
def test_conv_transpose_runs_bit_exact_on_cortex_m(tmp_path):
    _, calib, integer = _transposed(tmp_path, [1, 1, 1, 1], [1, 1])
    _run_on_cortex_m(tmp_path, integer, calib, "cortex-m4")


def _attention_scores(tmp_path):
    """``x[2,4,6] -> q = x W (MatMul, FullyConnected) -> q x^T (MatMul of two computed tensors)``."""
    rng = np.random.default_rng(12)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["q"], name="project"),
             helper.make_node("Transpose", ["x"], ["xt"], name="transpose", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "xt"], ["y"], name="scores")]
    model = make_model(nodes, [tensor_info("x", [2, 4, 6])], [tensor_info("y", [2, 4, 4])],
                       {"w": rng.normal(0, 0.4, (6, 6)).astype(np.float32)})
    calib = rng.normal(0, 1, (32, 2, 4, 6)).astype(np.float32)
    return model, calib, _quantize(tmp_path, model, calib)


def test_matmul_of_two_computed_tensors_follows_the_float_model(tmp_path):
    model, calib, integer = _attention_scores(tmp_path)
    assert [n.op_type for n in integer.graph if n.op_type in ("FullyConnected", "BatchMatMul")] == \
        ["FullyConnected", "BatchMatMul"]
    scores = next(node for node in integer.graph if node.op_type == "BatchMatMul")
    step = get_qparams(scores.outputs[0]).scale
    assert float_model_error(integer, model, calib[:8]) <= 3 * step


@needs_toolchain
def test_batch_matmul_runs_bit_exact_on_cortex_m(tmp_path):
    _, calib, integer = _attention_scores(tmp_path)
    _run_on_cortex_m(tmp_path, integer, calib, "cortex-m3")
