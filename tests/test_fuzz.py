"""The frontend fuzz: every mutated model gives exit status 0 or one clean error line, never an
internal error, a traceback, onnxruntime log lines or a file left behind (the contract that
``fuzz_mutations.check_case`` checks). Run with ``-s`` to see the counts of each test; the
script ``python tests/fuzz_mutations.py --cases N`` counts a longer run.

Also: the messages for the problems the fuzz found (a wrong ``--input-shape``, overflowing
activations, corrupt names, initializer sizes, future opsets) name the node or tensor, and
calibration keeps onnxruntime's prints and log lines off the terminal.
"""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.calibration import calibrate

from conftest import (
    SHARED_MODELS,
    TFLITE_MODELS,
    invoke,
    make_model,
    shared_model,
    small_conv_model,
    tensor_info,
    tflite_model_path,
)
from fuzz_mutations import (
    all_cases,
    byte_cases,
    captured_fds,
    onnx_cases,
    run_cases,
    small_models,
)

#: Fast tier: about 300 cases in all, most on the small models.
SMALL_MODEL_CASES = 150
SHARED_FILE_CASES = 10
#: Structured mutations of a shared model that fail before calibration (or succeed quickly).
EARLY_KINDS = ("opset", "input_dtype", "delete_node", "rename_output", "input_shape_arg", "truncate", "flip_bytes")


def _fuzz(cases, workdir) -> collections.Counter:
    """Check every case; fail listing the contract breaches; return (and print) the outcome counts."""
    counts, breaches = run_cases(cases, workdir)
    print(dict(counts))
    assert not breaches, "\n".join(breaches[:20])
    return counts


@pytest.mark.parametrize("name", sorted(small_models()))
def test_mutated_small_models_succeed_or_fail_cleanly(name, tmp_path):
    cases = onnx_cases(name, small_models()[name], SMALL_MODEL_CASES, seed=0)
    outcomes = _fuzz(cases, tmp_path)
    assert outcomes["clean errors"] > SMALL_MODEL_CASES // 2 and outcomes["successes"] > 0  # both outcomes occur


@pytest.mark.parametrize("key", sorted(SHARED_MODELS))
def test_mutated_shared_onnx_models_succeed_or_fail_cleanly(key, tmp_path):
    proto = onnx.load(str(shared_model(key)))
    _fuzz(onnx_cases(key, proto, SHARED_FILE_CASES, seed=1, kinds=EARLY_KINDS), tmp_path)


@pytest.mark.parametrize("key", sorted(TFLITE_MODELS))
def test_corrupted_shared_tflite_files_succeed_or_fail_cleanly(key, tmp_path):
    data = tflite_model_path(key).read_bytes()
    _fuzz(byte_cases(key, data, SHARED_FILE_CASES, seed=2, suffix=".tflite"), tmp_path)


@pytest.mark.slow
def test_a_long_fuzz_of_every_model(tmp_path):
    outcomes = _fuzz(all_cases(3000, seed=11), tmp_path)
    assert outcomes["cases"] >= 1500


# -- the messages -----------------------------------------------------------------------------
def _error_line(result) -> str:
    """The one error line of a failed command (warnings aside)."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _saved(tmp_path, proto: onnx.ModelProto, name: str = "model.onnx"):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def test_a_wrong_input_shape_names_the_first_layer_and_the_shape_to_use(tmp_path, rng):
    path = _saved(tmp_path, small_conv_model(rng, batch=1))
    line = _error_line(invoke("inspect", path, "--input-shape", "1,4,8,8"))
    assert "input 'x' has shape [1, 4, 8, 8] but node 'conv' (Conv) takes C=3" in line
    assert "(fix: use --input-shape x=1,3,8,8)" in line and "re-export" not in line


def test_channels_given_last_are_moved_in_front_in_the_shape_to_use(tmp_path, rng):
    path = _saved(tmp_path, small_conv_model(rng, batch=1))
    line = _error_line(invoke("inspect", path, "--input-shape", "2,8,8,3"))
    assert "input 'x' has shape [2, 8, 8, 3]" in line and "(fix: use --input-shape x=2,3,8,8)" in line


def test_another_batch_size_replaces_the_shapes_the_file_declares_for_its_values(tmp_path, rng):
    """A file that declares every value's shape for batch 1 (value_info, outputs) still takes batch 2."""
    proto = onnx.shape_inference.infer_shapes(small_conv_model(rng, batch=1))
    assert proto.graph.value_info
    result = invoke("inspect", _saved(tmp_path, proto), "--input-shape", "2,3,8,8", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["outputs"] == {"g": [2, 2]} and summary["layers"][0]["output_shape"] == [2, 4, 8, 8]


def test_the_declared_input_shape_given_again_is_not_blamed_for_a_broken_model(tmp_path, rng):
    proto = small_conv_model(rng, batch=1, extra_nodes=[])
    bn = [helper.make_node("BatchNormalization", ["c", "s", "o", "m", "v"], ["c_bn"], name="bn")]
    proto.graph.node.insert(1, bn[0])
    proto.graph.node[2].input[0] = "c_bn"
    for name in "somv":
        proto.graph.initializer.append(numpy_helper.from_array(np.ones(5, np.float32), name))  # 4 channels: wrong
    path = _saved(tmp_path, proto)
    plain = _error_line(invoke("inspect", path))
    again = _error_line(invoke("inspect", path, "--input-shape", "1,3,8,8"))
    assert "'bn'" in plain and again == plain and "--input-shape" not in again


def test_a_wrong_spatial_input_shape_points_back_to_the_declared_one(tmp_path):
    proto = small_models()["mixed"]
    line = _error_line(invoke("inspect", _saved(tmp_path, proto), "--input-shape", "1,3,8,10"))
    assert "node 'reshape' (Reshape) reshapes it to [1, 64] (64 elements, not 80)" in line
    assert "use --input-shape x=1,3,8,8 (the shape the model declares)" in line


def _with(proto: onnx.ModelProto, edit) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    edit(copy)
    return copy


def _future_opset(proto):
    proto.opset_import[0].version = 99


def _old_opset(proto):
    proto.opset_import[0].version = 7


def _bad_name(proto):
    data = bytearray(proto.SerializeToString())
    data[data.index(b"relu")] = 0xFF  # the name of node 1
    proto.ParseFromString(bytes(data))


def _short_weights(proto):
    proto.graph.initializer[0].raw_data = proto.graph.initializer[0].raw_data[:-4]


def _nan_weight(proto):
    array = numpy_helper.to_array(proto.graph.initializer[0]).copy()
    array.flat[5] = math.nan
    proto.graph.initializer[0].CopyFrom(numpy_helper.from_array(array, "w"))


def _wide_bias(proto):
    proto.graph.initializer[3].CopyFrom(numpy_helper.from_array(np.zeros(3, np.float32), "fb"))


def _int64_input(proto):
    proto.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64


def _group_zero(proto):
    proto.graph.node[0].attribute.append(helper.make_attribute("group", 0))


@pytest.mark.parametrize("edit,fragments", [
    (_future_opset, ["uses ONNX opset 99, newer than", "re-export with an opset_version from 11 to"]),
    (_old_opset, ["uses ONNX opset 7; edgec needs opset 11 or newer"]),
    (_bad_name, ["model.graph.node[1].name is not valid UTF-8", "uncorrupted"]),
    (_short_weights, ["initializer 'w' has dims [4, 3, 3, 3] (108 elements) but its data holds 107"]),
    (_nan_weight, ["initializer 'w' holds 1 NaN or infinite values"]),
    (_wide_bias, ["node 'fc' (Gemm) has C of shape [3], which does not broadcast to [M, N] = [1, 2]"]),
    (_int64_input, ["input 'x' is INT64; edgec takes float32 (or float16) inputs"]),
    (_group_zero, ["node 'conv' (Conv) has group=0, which does not divide its 4 output channels"]),
])
def test_a_malformed_model_is_named_before_any_pass_runs(tmp_path, rng, edit, fragments):
    path = _saved(tmp_path, _with(small_conv_model(rng, batch=1), edit))
    line = _error_line(invoke("quantize", path, "--calib", "random", "-o", tmp_path / "out.onnx"))
    for fragment in fragments:
        assert fragment in line, line
    assert "PassFailure" not in line and not (tmp_path / "out.onnx").exists()


def test_overflowing_activations_name_the_first_tensor_and_sample(tmp_path, rng):
    """Finite weights of 1e38 make the Conv output infinite: calibration names it, not a later tensor."""
    def huge_weights(proto):
        proto.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.full((4, 3, 3, 3), 1e38, np.float32), "w"))

    path = _saved(tmp_path, _with(small_conv_model(rng, batch=1), huge_weights))
    line = _error_line(invoke("quantize", path, "--calib", "random", "-o", tmp_path / "out.onnx"))
    assert "calibration sample 0 makes tensor 'c' (output of Conv node 'conv') NaN or infinite" in line
    assert "non-finite calibration range" not in line


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_calibration_keeps_onnxruntime_off_the_terminal(tmp_path, model_path, calib_path, method):
    out = tmp_path / "out.onnx"
    with captured_fds() as read_fds:
        result = invoke("quantize", model_path, "--calib", calib_path, "--method", method, "-o", out)
        terminal = read_fds()
    assert result.exit_code == 0, result.output
    assert "Collecting tensor data" not in result.output and "Number of histogram bins" not in result.output
    assert "onnxruntime" not in terminal and out.exists()


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_calibration_keeps_onnxruntime_prints_and_log_lines_off_the_terminal(capsys, method):
    """onnxruntime logs a warning when it loads a model with an unused initializer (edgec's
    canonical models have none, but the calibrators' own sessions log the same way); the
    histogram calibrators print their progress."""
    proto = make_model([helper.make_node("Relu", ["x"], ["y"])], [tensor_info("x", [1, 4])],
                       [tensor_info("y", [1, 4])], {"unused": np.ones((1, 4), np.float32)})
    samples = [{"x": np.full((1, 4), value, np.float32)} for value in (0.5, 1.0, 2.0)]
    with captured_fds() as read_fds:
        ranges = calibrate(ir.serde.deserialize_model(proto), samples, method)
        terminal = read_fds()
    printed = capsys.readouterr()
    assert "onnxruntime" not in terminal and printed.out == "" and printed.err == ""
    assert sorted(ranges) == ["x", "y"]
