"""Bad input gets one line on stderr naming the problem and the fix, exit status 2, no
traceback and no output file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import invoke, small_conv_model


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_file_that_is_not_onnx(tmp_path, calib_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n" * 20)
    out = tmp_path / "out.onnx"
    assert_one_line_error(invoke("quantize", path, "--calib", calib_path, "-o", out), "not an ONNX model")
    assert not out.exists()


def test_a_truncated_model(tmp_path, model_path, calib_path):
    data = model_path.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.onnx"
    assert_one_line_error(invoke("quantize", truncated, "--calib", calib_path, "-o", out), "truncated.onnx")
    assert not out.exists()


def test_a_missing_model_file(tmp_path):
    assert_one_line_error(invoke("inspect", tmp_path / "absent.onnx"), "does not exist")


def test_an_unsupported_operator_is_named_with_its_node_and_the_supported_list(tmp_path, rng, calib_path):
    model = small_conv_model(rng, batch=1, extra_nodes=[helper.make_node("Sin", ["g"], ["y"], name="the_sine")])
    path = tmp_path / "sine.onnx"
    onnx.save(model, path)
    out = tmp_path / "out.onnx"
    result = invoke("quantize", path, "--calib", calib_path, "-o", out)
    assert_one_line_error(result, "Sin", "the_sine", "supported operators:", "Conv")
    assert not out.exists()


def test_a_dynamic_input_shape_needs_input_shape(tmp_path, rng, calib_path):
    path = tmp_path / "dynamic.onnx"
    onnx.save(small_conv_model(rng, batch="N"), path)
    out = tmp_path / "out.onnx"
    assert_one_line_error(invoke("quantize", path, "--calib", calib_path, "-o", out), "dynamic shape", "--input-shape")
    assert not out.exists()
    result = invoke("quantize", path, "--calib", calib_path, "-o", out, "--input-shape", "x=1,3,8,8")
    assert result.exit_code == 0, result.output
    onnx.checker.check_model(onnx.load(out))


def test_an_input_shape_for_an_unknown_input(tmp_path, rng):
    path = tmp_path / "dynamic.onnx"
    onnx.save(small_conv_model(rng, batch="N"), path)
    assert_one_line_error(invoke("inspect", path, "--input-shape", "y=1,3,8,8"), "'y'", "inputs are")


@pytest.mark.parametrize("data,fragment", [
    (np.zeros((8, 3, 9, 9), np.float32), "has shape [8, 3, 9, 9]"),
    (np.zeros((8, 3, 8, 8), np.int32), "is int32"),
    (np.zeros((8, 3, 8, 8), np.uint8), "is uint8"),
    (np.full((8, 3, 8, 8), np.nan, np.float32), "NaN"),
])
def test_calibration_data_of_the_wrong_shape_or_dtype(tmp_path, model_path, data, fragment):
    calib = tmp_path / "calib.npy"
    np.save(calib, data)
    out = tmp_path / "out.onnx"
    assert_one_line_error(invoke("quantize", model_path, "--calib", calib, "-o", out), fragment)
    assert not out.exists()


def test_a_calibration_file_that_is_not_an_array(tmp_path, model_path):
    calib = tmp_path / "calib.npy"
    calib.write_text("1,2,3")
    assert_one_line_error(invoke("quantize", model_path, "--calib", calib, "-o", tmp_path / "o.onnx"), "not a .npy")


def test_quantize_without_calibration_data(tmp_path, model_path):
    assert_one_line_error(invoke("quantize", model_path, "-o", tmp_path / "o.onnx"), "calibration data", "--calib")


def test_random_calibration_works_with_a_warning(tmp_path, model_path):
    out = tmp_path / "o.onnx"
    result = invoke("quantize", model_path, "--calib", "random", "-o", out)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "random" in result.stderr
    assert out.exists()


def test_run_with_input_of_the_wrong_shape(tmp_path, model_path, calib_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 3, 4, 4), np.float32))
    result = invoke("run", model_path, "--calib", calib_path, "--input", x, "--output", tmp_path / "y.npy")
    assert_one_line_error(result, "input data", "[2, 3, 4, 4]")
    assert not (tmp_path / "y.npy").exists()


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    proc = subprocess.run([sys.executable, "-m", "edgec", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("error:")
    assert len(proc.stderr.strip().splitlines()) == 1
