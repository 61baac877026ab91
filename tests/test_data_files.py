"""Calibration and input files: what is taken as how many samples, which .npz keys count,
float64 and float data for int8 (TFLite) inputs, each said once and never silently."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from test_errors import assert_one_line_error

import edgec
from edgec import ops
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.data import FEW_CALIBRATION_SAMPLES, InputSpec, split_samples
from edgec.errors import EdgecWarning, InputDataError

from conftest import invoke, needs_toolchain, tflite_model_path, tflm_golden
from tflite_builder import TfliteBuilder, options, schema

#: The quantization of the small TFLite model's input (and output: max pooling keeps it).
SCALE, ZERO_POINT = 0.05, -20


def edgec_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, EdgecWarning)]


def quantize_recording(model, calib):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        integer = edgec.quantize(model, calib)
    return integer, edgec_warnings(record)


def warning_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


# -- how many samples ---------------------------------------------------------------------

def test_an_unbatched_calibration_array_is_one_sample_said_in_one_warning(model_path, rng):
    integer, said = quantize_recording(model_path, rng.random((3, 8, 8), dtype=np.float32))
    assert ops.is_integer_model(integer)
    assert len(said) == 1, said
    assert "taken as 1 sample" in said[0] and "give [N, 3, 8, 8]" in said[0]


def test_few_calibration_samples_warn_once_and_enough_do_not(model_path, rng):
    few = FEW_CALIBRATION_SAMPLES - 1
    _, said = quantize_recording(model_path, rng.random((few, 3, 8, 8), dtype=np.float32))
    assert len(said) == 1 and f"taken as {few} samples" in said[0], said
    _, said = quantize_recording(model_path, rng.random((FEW_CALIBRATION_SAMPLES, 3, 8, 8), dtype=np.float32))
    assert said == []


def test_the_cli_prints_the_one_sample_warning_once(tmp_path, model_path, rng):
    calib = tmp_path / "one.npy"
    np.save(calib, rng.random((3, 8, 8), dtype=np.float32))
    out = tmp_path / "int8.onnx"
    result = invoke("quantize", model_path, "--calib", calib, "-o", out)
    assert result.exit_code == 0, result.output
    lines = warning_lines(result)
    assert len(lines) == 1 and "taken as 1 sample; for N samples give [N, 3, 8, 8]" in lines[0], result.stderr
    assert out.is_file()


# -- .npz keys ------------------------------------------------------------------------------

def test_an_npz_key_naming_no_input_is_an_error_naming_keys_and_input(tmp_path, model_path, rng):
    calib = tmp_path / "calib.npz"
    np.savez(calib, images=rng.random((16, 3, 8, 8), dtype=np.float32))
    out = tmp_path / "int8.onnx"
    result = invoke("quantize", model_path, "--calib", calib, "-o", out)
    assert_one_line_error(result, "calibration data", "'images'", "['x']")
    assert not out.exists()


def test_an_extra_npz_key_is_an_error(model_path, rng):
    data = {"x": rng.random((16, 3, 8, 8), dtype=np.float32), "labels": np.arange(16)}
    with pytest.raises(InputDataError, match="naming no input: \\['labels'\\]"):
        edgec.quantize(model_path, data)


def test_npz_arrays_named_after_the_input_or_saved_unnamed_are_taken(tmp_path, model_path, rng):
    samples = rng.random((16, 3, 8, 8), dtype=np.float32)
    named, unnamed = tmp_path / "named.npz", tmp_path / "unnamed.npz"
    np.savez(named, x=samples)
    np.savez(unnamed, samples)
    expected = ir.to_proto(edgec.quantize(model_path, samples)).SerializeToString()
    for path in (named, unnamed):
        assert ir.to_proto(edgec.quantize(model_path, str(path))).SerializeToString() == expected


def test_one_array_for_a_two_input_model_is_an_error():
    specs = [InputSpec("a", (1, 4), np.dtype(np.float32)), InputSpec("b", (1, 4), np.dtype(np.float32))]
    with pytest.raises(InputDataError, match="one array, the model has inputs \\['a', 'b'\\]"):
        split_samples(np.zeros((3, 4), np.float32), specs, "input data")


# -- float64 --------------------------------------------------------------------------------

def test_float64_calibration_is_converted_with_one_warning_and_quantizes_as_float32(model_path, rng):
    samples = rng.random((16, 3, 8, 8))
    integer, said = quantize_recording(model_path, samples)
    assert said == ["calibration data: converted float64 to float32 (the model's input precision)"]
    expected, said32 = quantize_recording(model_path, samples.astype(np.float32))
    assert said32 == []
    assert ir.to_proto(integer).SerializeToString() == ir.to_proto(expected).SerializeToString()


def test_float64_input_samples_in_several_dicts_warn_once(small_integer_model, rng):
    groups = [{"x": rng.random((2, 3, 8, 8))} for _ in range(3)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        samples = split_samples(groups, input_specs(small_integer_model), "input data", allow_int8=True)
    assert len(samples) == 6 and all(s["x"].dtype == np.float32 for s in samples)
    assert edgec_warnings(record) == ["input data: converted float64 to float32 (the model's input precision)"]


# -- float data for an int8 (TFLite) input ----------------------------------------------------

def maxpool_tflite(path):
    """A one-operator int8 TFLite model: x[1,4,4,3] -> 2x2 max pool -> y[1,2,2,3], one quantization."""
    b = TfliteBuilder()
    x = b.tensor([1, 4, 4, 3], scale=SCALE, zero_point=ZERO_POINT)
    y = b.tensor([1, 2, 2, 3], scale=SCALE, zero_point=ZERO_POINT)
    b.operator(schema.BuiltinOperator.MAX_POOL_2D, [x], [y], schema.BuiltinOptions.Pool2DOptions,
               options(schema.Pool2DOptionsT, padding=0, strideW=2, strideH=2, filterWidth=2, filterHeight=2))
    path.write_bytes(b.build([x], [y]))
    return path


def float_samples(rng) -> np.ndarray:
    """Two samples, with ties of x / scale (rounded away from zero) and values beyond int8."""
    x = rng.uniform(-7, 7, (2, 4, 4, 3)).astype(np.float32)
    x[0, 0, 0] = [0.025, -0.025, 0.075]   # x / scale = 0.5, -0.5, 1.5 -> 1, -1, 2 (+ zero point)
    x[1, 0, 0] = [100.0, -100.0, 0.0]     # saturates at 127 and -128
    return x


def quantized_by_hand(x: np.ndarray) -> np.ndarray:
    """int8 ``round_half_away(x / scale) + zero_point``, saturated: the TFLite QUANTIZE rule."""
    quotient = x.astype(np.float32) / np.float32(SCALE)
    rounded = np.sign(quotient) * np.floor(np.abs(quotient) + 0.5)
    return np.clip(rounded + ZERO_POINT, -128, 127).astype(np.int8)


def max_pooled(q: np.ndarray) -> np.ndarray:
    return q.reshape(q.shape[0], 2, 2, 2, 2, 3).max(axis=(2, 4))


def test_float_input_of_an_int8_tflite_model_is_quantized_with_its_scale(tmp_path, rng):
    model = maxpool_tflite(tmp_path / "pool.tflite")
    x = float_samples(rng)
    q = quantized_by_hand(x)
    assert q[0, 0, 0].tolist() == [1 + ZERO_POINT, -1 + ZERO_POINT, 2 + ZERO_POINT] and q[1, 0, 0, 0] == 127
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", q)
    from_float = invoke("run", model, "--input", tmp_path / "x.npy", "--int8", "--output", tmp_path / "yf.npy")
    assert from_float.exit_code == 0, from_float.output
    from_int8 = invoke("run", model, "--input", tmp_path / "q.npy", "--int8", "--output", tmp_path / "yq.npy")
    assert from_int8.exit_code == 0, from_int8.output
    np.testing.assert_array_equal(np.load(tmp_path / "yf.npy"), max_pooled(q))
    np.testing.assert_array_equal(np.load(tmp_path / "yq.npy"), max_pooled(q))
    assert warning_lines(from_float) == []


def test_nan_float_input_of_an_int8_model_is_an_error(tmp_path):
    model = maxpool_tflite(tmp_path / "pool.tflite")
    x = np.zeros((1, 4, 4, 3), np.float32)
    x[0, 1, 2, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    assert_one_line_error(invoke("run", model, "--input", tmp_path / "x.npy"), "NaN")


def test_int8_inputs_quantizes_float_samples_for_an_int8_graph_input(tmp_path, rng):
    model = edgec.load(maxpool_tflite(tmp_path / "pool.tflite"))
    x = float_samples(rng)
    rows = cortex_m.int8_inputs(model, [{"t0": x[i:i + 1]} for i in range(2)])
    np.testing.assert_array_equal(rows, quantized_by_hand(x).reshape(2, -1))


@needs_toolchain
def test_a_compiled_tflite_project_runs_float_input(tmp_path, rng):
    model = maxpool_tflite(tmp_path / "pool.tflite")
    project = tmp_path / "pool_m4"
    assert invoke("compile", model, "--target", "cortex-m4", "-o", project).exit_code == 0
    x = float_samples(rng)
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", project, "--input", tmp_path / "x.npy", "--check", "--int8", "--output", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    assert "check: all 2 outputs equal the integer reference" in result.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(2, 2, 2, 3), max_pooled(quantized_by_hand(x)))


@pytest.mark.slow
def test_float_input_of_the_kws_model_reproduces_tflm(tmp_path):
    """The TFLM golden's int8 input, dequantized to float: quantizing it back gives the same
    int8 input (scale * (q - zp) / scale is within float32 rounding of q - zp), so the
    output is TFLM's, bit for bit, on the reference and on QEMU."""
    path = tflite_model_path("kws")
    golden = tflm_golden("kws")
    model = edgec.load(path)
    spec = input_specs(model)[0]
    x = (golden["input"].astype(np.float32) - spec.quantization.zero_point) * np.float32(spec.quantization.scale)
    np.save(tmp_path / "x.npy", x)
    reference = invoke("run", path, "--input", tmp_path / "x.npy", "--int8", "--output", tmp_path / "y.npy")
    assert reference.exit_code == 0, reference.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(golden["output"].shape), golden["output"])
    project = tmp_path / "kws_m4"
    assert invoke("compile", path, "--target", "cortex-m4", "-o", project).exit_code == 0
    compiled = invoke("run", project, "--input", tmp_path / "x.npy", "--int8", "--output", tmp_path / "yc.npy")
    assert compiled.exit_code == 0, compiled.output
    np.testing.assert_array_equal(np.load(tmp_path / "yc.npy").reshape(golden["output"].shape), golden["output"])


def test_a_saved_integer_graph_keeps_its_int8_input_quantization(tmp_path):
    """Projects store the integer graph as model.onnx (read back with ir.load): the input's
    scale must survive saving."""
    model = edgec.load(maxpool_tflite(tmp_path / "pool.tflite"))
    onnx.save(ir.to_proto(model), tmp_path / "pool.onnx")
    spec = input_specs(ir.load(tmp_path / "pool.onnx"))[0]
    assert spec.dtype == np.int8
    assert (spec.quantization.scale, spec.quantization.zero_point) == (float(np.float32(SCALE)), ZERO_POINT)
