"""ONNX Pad (reflect, edge, wrap), Slice and Split quantize to edgec Pad and Slice nodes.

Data movement adds no error: the integer model equals the float one to within the convolution's
output quantization, whatever layout (channels-last after a Conv) the values are in, and the
Cortex-M C computes the reference's integers.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.errors import ModelLoadError, UnsupportedModelError
from edgec.passes.qparams import get_qparams
from edgec.target import get_target

from conftest import float_model_error, make_model, needs_toolchain, tensor_info


def layout_model(pad_mode: str, pads) -> tuple:
    """``x[1,3,6,7] -> Conv 1x1 (4) -> Pad(pad_mode) -> Slice -> Split(channels 1+3) -> Concat``."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Pad", ["c", "pads"], ["p"], name="pad", mode=pad_mode),
        helper.make_node("Slice", ["p", "starts", "ends", "axes", "steps"], ["s"], name="slice"),
        helper.make_node("Split", ["s", "split"], ["s0", "s1"], name="split", axis=1),
        helper.make_node("Concat", ["s1", "s0"], ["y"], name="concat", axis=1),
    ]
    padded = [6 + pads[2] + pads[6], 7 + pads[3] + pads[7]]
    starts, ends, steps = [-1, 1], [-100, padded[1]], [-2, 2]  # rows backwards, columns forwards
    rows, columns = len(range(*slice(-1, -100, -2).indices(padded[0]))), len(range(1, padded[1], 2))
    constants = {"pads": pads, "starts": starts, "ends": ends, "axes": [2, 3], "steps": steps, "split": [1, 3]}
    model = make_model(nodes, [tensor_info("x", [1, 3, 6, 7])], [tensor_info("y", [1, 4, rows, columns])],
                       {"w": rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32),
                        **{name: np.asarray(v, dtype=np.int64) for name, v in constants.items()}}, opset=13)
    return model, rng.normal(0, 1, (32, 1, 3, 6, 7)).astype(np.float32)


def _quantized(tmp_path, pad_mode: str, pads):
    model, calib = layout_model(pad_mode, pads)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return model, calib, edgec.quantize(edgec.load(path), {"x": calib})


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap", "constant"])
def test_padding_slicing_and_splitting_follow_the_float_model(tmp_path, mode):
    model, calib, integer = _quantized(tmp_path, mode, [0, 0, 2, 3, 0, 0, 1, 4])
    assert {"Pad", "Slice"} <= {node.op_type for node in integer.graph}
    step = get_qparams(next(n for n in integer.graph if n.op_type == "Conv").outputs[0]).scale
    assert float_model_error(integer, model, calib[:8]) <= 2 * step  # the rounding of the input and of the conv


def test_a_model_onnxruntime_cannot_run_is_a_one_line_error(tmp_path):
    with pytest.raises(ModelLoadError, match="onnxruntime cannot run the float model on the calibration data: "
                                             ".*Pad reflect"):
        _quantized(tmp_path, "reflect", [0, 0, 6, 0, 0, 0, 0, 0])


@needs_toolchain
@pytest.mark.parametrize("mode", ["reflect", "wrap"])
def test_layout_ops_run_bit_exact_on_cortex_m(tmp_path, mode):
    _, calib, integer = _quantized(tmp_path, mode, [0, 0, 2, 3, 0, 0, 1, 4])
    samples = [{"x": x} for x in calib[:4]]
    cortex_m.compile_project(integer, get_target("cortex-m4"), tmp_path / "out", "model")
    inputs = cortex_m.int8_inputs(integer, samples)
    result = cortex_m.run_project(tmp_path / "out", inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))


RESIZE_FORMS = [("nearest", "asymmetric", "floor"), ("nearest", "align_corners", "round_prefer_ceil"),
                ("nearest", "tf_half_pixel_for_nn", "floor"), ("linear", "asymmetric", None),
                ("linear", "align_corners", None), ("linear", "half_pixel", None)]


def resize_model(mode: str, transform: str, nearest: str | None, size) -> tuple:
    """``x[1,3,4,5] -> Conv 1x1 (4) -> Resize to size`` (a constant ``sizes`` input)."""
    rng = np.random.default_rng(6)
    extra = {"nearest_mode": nearest} if nearest else {}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Resize", ["c", "", "", "sizes"], ["y"], name="resize", mode=mode,
                              coordinate_transformation_mode=transform, **extra)]
    model = make_model(nodes, [tensor_info("x", [1, 3, 4, 5])], [tensor_info("y", [1, 4, *size])],
                       {"w": rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32),
                        "sizes": np.asarray([1, 4, *size], dtype=np.int64)}, opset=13)
    return model, rng.normal(0, 1, (32, 1, 3, 4, 5)).astype(np.float32)


@pytest.mark.parametrize("form", RESIZE_FORMS, ids=lambda f: "-".join(x for x in f if x))
@pytest.mark.parametrize("size", [(9, 11), (2, 3)], ids=["up", "down"])
def test_resize_in_tflite_forms_follows_the_float_model(tmp_path, form, size):
    model, calib = resize_model(*form, size)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    integer = edgec.quantize(edgec.load(path), {"x": calib})
    resize = next(node for node in integer.graph if node.op_type == "Resize")
    step = get_qparams(resize.outputs[0]).scale
    # the input's and the conv's rounding; bilinear adds its 10-bit weights' rounding
    assert float_model_error(integer, model, calib[:8]) <= (2 if form[0] == "nearest" else 3) * step


def test_a_resize_tflite_does_not_compute_is_an_error_naming_the_node(tmp_path):
    model, calib = resize_model("nearest", "half_pixel", "round_prefer_floor", (9, 11))
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UnsupportedModelError, match="Resize node 'resize' .* is not one of TFLite's resizes"):
        edgec.quantize(edgec.load(path), {"x": calib})
