"""The Cortex-M backend: emitted C builds cleanly, runs bit-exact on QEMU for every core.

Slow tests compile and run the shared models on all four cores; the fast ones use small
models, the host build under ASan/UBSan and the QEMU board of one core.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.api import input_specs
from edgec.backend import open_project
from edgec.backends import cortex_m
from edgec.data import random_samples
from edgec.errors import EdgecError, SizeLimitError, ToolchainError
from edgec.target import get_target
from edgec.trace_compare import first_difference

from conftest import (
    SHARED_MODELS,
    TFLITE_MODELS,
    big_fc_model,
    make_model,
    needs_toolchain,
    quantized_shared_model,
    require_torch,
    tensor_info,
    tflite_model_path,
    tflm_golden,
)
from tflite_builder import TfliteBuilder, options, schema

CORES = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]
TFLM_ARENA = {"kws": 22_820, "vww": 100_708, "resnet8": 54_980, "ad": 2_580}
LIVE_BOUND = {"kws": 16_000, "vww": 55_296, "resnet8": 49_152, "ad": 768}


def compile_and_check(model, target, out, samples):
    """Compile, run ``samples`` (dicts of model inputs) on QEMU and return (run result, expected outputs)."""
    cortex_m.compile_project(model, get_target(target), out, "model")
    inputs = cortex_m.int8_inputs(model, samples)
    result = cortex_m.run_project(out, inputs)
    return result, cortex_m.reference_outputs(model, inputs)


@needs_toolchain
@pytest.mark.slow
@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("key", sorted(TFLITE_MODELS))
def test_tflite_models_reproduce_tflm_on_every_core(tmp_path, key, core):
    model = edgec.load(tflite_model_path(key))
    golden = tflm_golden(key)
    manifest = cortex_m.compile_project(model, get_target(core), tmp_path / "out", key)
    inputs = np.stack([golden["input"].ravel(), np.zeros(golden["input"].size, np.int8)])
    result = cortex_m.run_project(tmp_path / "out", inputs)
    np.testing.assert_array_equal(result.outputs[0], golden["output"].ravel())
    np.testing.assert_array_equal(result.outputs[1], golden["output_for_zeros"].ravel())
    arena = manifest["ram"]["arena"]
    print(f"{key} {core}: {result.instructions[0]:,} instructions, arena {arena:,} B "
          f"(bound {LIVE_BOUND[key]:,}, TFLM {TFLM_ARENA[key]:,})")
    assert manifest["ram"]["arena_live_bound"] == LIVE_BOUND[key]
    assert arena - manifest["ram"]["io_separation_bytes"] <= 1.15 * LIVE_BOUND[key] and arena < TFLM_ARENA[key]


@needs_toolchain
@pytest.mark.slow
@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("key", sorted(SHARED_MODELS))
def test_float_onnx_models_run_bit_exact_on_every_core(tmp_path, key, core):
    integer = quantized_shared_model(key, seed=11)
    samples = random_samples(input_specs(integer), 10, seed=12)
    result, expected = compile_and_check(integer, core, tmp_path / "out", samples)
    np.testing.assert_array_equal(result.outputs, expected)


@needs_toolchain
@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1])
def test_awkward_models_run_bit_exact_on_every_core_and_under_sanitizers(tmp_path, index):
    torch = require_torch()
    from torch_models import AWKWARD_MODELS, awkward_module

    factory, shape = AWKWARD_MODELS[index]
    rng = np.random.default_rng(21)
    calibration = rng.random((32, *shape[1:]), dtype=np.float32)
    integer = edgec.quantize(awkward_module(factory), calibration, example_inputs=(torch.from_numpy(calibration[:1]),))
    samples = random_samples(input_specs(integer), 10, seed=22)
    for core in CORES:
        result, expected = compile_and_check(integer, core, tmp_path / core, samples)
        np.testing.assert_array_equal(result.outputs, expected, err_msg=core)
    for core in ("cortex-m3", "cortex-m4"):  # the scalar and the DSP code paths on the host
        host = cortex_m.run_project(tmp_path / core, cortex_m.int8_inputs(integer, samples), host=True)
        np.testing.assert_array_equal(host.outputs, expected)


@needs_toolchain
def test_small_model_on_qemu_and_host_sanitizers(tmp_path, small_integer_model):
    samples = random_samples(input_specs(small_integer_model), 10, seed=3)
    for core in ("cortex-m3", "cortex-m4"):  # scalar and DSP code paths
        result, expected = compile_and_check(small_integer_model, core, tmp_path / core, samples)
        np.testing.assert_array_equal(result.outputs, expected)
        assert len(result.instructions) == 10 and all(n > 0 for n in result.instructions)
        host = cortex_m.run_project(tmp_path / core, cortex_m.int8_inputs(small_integer_model, samples), host=True)
        np.testing.assert_array_equal(host.outputs, expected)


def mlp_model():
    """x[1,36] -> MatMul (24) -> Relu -> MatMul (12) -> Relu -> MatMul (6) -> y, float: the first
    layer's k (36) is no multiple of 8, the second's (24) is and its 12 outputs are three blocks of
    four, the third's 6 outputs are not."""
    rng = np.random.default_rng(31)
    shapes = [(36, 24), (24, 12), (12, 6)]
    nodes = []
    for index in range(len(shapes)):
        source = "x" if index == 0 else f"r{index - 1}"
        target = "y" if index == len(shapes) - 1 else f"h{index}"
        nodes.append(helper.make_node("MatMul", [source, f"w{index}"], [target], name=f"fc{index}"))
        if target != "y":
            nodes.append(helper.make_node("Relu", [target], [f"r{index}"], name=f"relu{index}"))
    weights = {f"w{index}": rng.normal(size=shape).astype(np.float32) for index, shape in enumerate(shapes)}
    return make_model(nodes, [tensor_info("x", [1, 36])], [tensor_info("y", [1, 6])], weights)


@needs_toolchain
def test_fully_connected_weights_blocked_by_four_channels_on_dsp_cores(tmp_path):
    integer = edgec.quantize(mlp_model(), np.random.default_rng(32).normal(size=(32, 36)).astype(np.float32))
    samples = random_samples(input_specs(integer), 10, seed=33)
    for core, blocked in (("cortex-m4", [0, 1, 0]), ("cortex-m3", [0, 0, 0])):
        result, expected = compile_and_check(integer, core, tmp_path / core, samples)
        np.testing.assert_array_equal(result.outputs, expected, err_msg=core)
        source = (tmp_path / core / "src" / "edgec_model.c").read_text()
        assert [int(".blocked = 1" in part) for part in source.split("edgec_conv_params layer")[1:]] == blocked, core
        host = cortex_m.run_project(tmp_path / core, cortex_m.int8_inputs(integer, samples), host=True)
        np.testing.assert_array_equal(host.outputs, expected, err_msg=core)


def layout_zoo(rng):
    """Pad, MaxPool, Concat with a constant, Add/Mul with constants, Softmax over channels,
    ReduceMean, Transpose, Sub: the data-movement and elementwise kernels from ONNX."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 1, 1, 0]),
        helper.make_node("Pad", ["c", "pads"], ["p"], mode="constant"),
        helper.make_node("MaxPool", ["p"], ["m"], kernel_shape=[2, 3], strides=[1, 2]),
        helper.make_node("Concat", ["m", "extra"], ["cat"], axis=1),
        helper.make_node("Add", ["cat", "shift"], ["a"]),
        helper.make_node("Mul", ["a", "half"], ["h"]),
        helper.make_node("Sub", ["h", "cat"], ["d"]),
        helper.make_node("Softmax", ["d"], ["s"], axis=1),
        helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("ReduceMean", ["t", "axes"], ["y"], keepdims=0),
    ]
    inits = {"w": rng.normal(size=(5, 3, 2, 2)).astype(np.float32), "pads": np.array([0, 0, 1, 0, 0, 0, 0, 2]),
             "extra": rng.normal(size=(1, 2, 5, 3)).astype(np.float32),
             "shift": rng.normal(size=(1, 7, 1, 1)).astype(np.float32), "half": np.array(0.5, np.float32),
             "axes": np.array([1], np.int64)}
    return make_model(nodes, [tensor_info("x", [1, 3, 5, 6])], [tensor_info("y", [1, 3, 7])], inits, opset=18)


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_layout_and_elementwise_kernels_run_bit_exact(tmp_path, core):
    rng = np.random.default_rng(8)
    integer = edgec.quantize(layout_zoo(rng), rng.normal(size=(16, 3, 5, 6)).astype(np.float32))
    samples = [{"x": rng.normal(size=(1, 3, 5, 6)).astype(np.float32)} for _ in range(10)]
    result, expected = compile_and_check(integer, core, tmp_path / "out", samples)
    np.testing.assert_array_equal(result.outputs, expected)
    host = cortex_m.run_project(tmp_path / "out", cortex_m.int8_inputs(integer, samples), host=True)
    np.testing.assert_array_equal(host.outputs, expected)


@needs_toolchain
def test_pointwise_conv_with_only_bottom_right_padding_stays_in_its_scratch(tmp_path):
    """A 1x1 conv reads the input in place except where its window falls in the bottom/right
    padding; those pixels are gathered, so the layer reserves staging scratch: 4 * k_padded
    for the prepared pixel pair plus k_padded per gathered column (k_padded = 4 here)."""
    rng = np.random.default_rng(9)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 0, 1, 1])],
                       [tensor_info("x", [1, 4, 2, 3])], [tensor_info("y", [1, 8, 3, 4])],
                       {"w": rng.normal(size=(8, 4, 1, 1)).astype(np.float32)})
    integer = edgec.quantize(model, rng.normal(size=(16, 4, 2, 3)).astype(np.float32))
    samples = [{"x": rng.normal(size=(1, 4, 2, 3)).astype(np.float32)} for _ in range(4)]
    result, expected = compile_and_check(integer, "cortex-m4", tmp_path / "out", samples)
    np.testing.assert_array_equal(result.outputs, expected)
    host = cortex_m.run_project(tmp_path / "out", cortex_m.int8_inputs(integer, samples), host=True)
    np.testing.assert_array_equal(host.outputs, expected)
    conv = next(layer for layer in cortex_m.load_project(tmp_path / "out")[0]["layers"] if layer["op"] == "Conv")
    assert conv["scratch_bytes"] == 4 * 4 + 2 * 4


@needs_toolchain
def test_generation_is_deterministic_and_warning_free(tmp_path, small_integer_model):
    first = cortex_m.compile_project(small_integer_model, get_target("cortex-m4"), tmp_path / "a", "model")
    second = cortex_m.compile_project(small_integer_model, get_target("cortex-m4"), tmp_path / "b", "model")
    assert first == second
    for path in sorted((tmp_path / "a").rglob("*")):
        relative = path.relative_to(tmp_path / "a")
        if path.is_file() and relative.parts[0] not in ("build",):
            assert path.read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    makefile = (tmp_path / "a" / "Makefile").read_text()
    assert "-Wall -Wextra -Werror" in makefile and "-fsanitize=address,undefined" in makefile
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["flash"]["total"] > 0 and report["ram"]["arena"] > 0
    macs = edgec.summarize(small_integer_model).total_macs
    assert sum(layer["macs"] for layer in report["layers"]) == report["macs"] == macs > 0


@needs_toolchain
def test_check_names_the_first_differing_layer(tmp_path, small_integer_model):
    out = tmp_path / "out"
    cortex_m.compile_project(small_integer_model, get_target("cortex-m3"), out, "model")
    source = out / "src" / "edgec_model.c"
    text = source.read_text()
    marker = "static const int8_t layer1_weights"
    start = text.index(marker)
    first_value = text.index("\n", start) + 5
    end = text.index(",", first_value)
    source.write_text(text[:first_value] + str((int(text[first_value:end]) + 77) % 127) + text[end:])
    inputs = cortex_m.int8_inputs(small_integer_model, random_samples(input_specs(small_integer_model), 1, seed=0))
    backend, project = open_project(out)
    traced = backend.run(project, inputs, trace=True)
    mismatch = first_difference(small_integer_model, project.manifest["layers"], inputs[0], traced.trace)
    assert mismatch is not None and mismatch.index == 1 and mismatch.op == "Conv"


def test_a_missing_cross_compiler_names_the_install_command(tmp_path, small_integer_model, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as raised:
        cortex_m.compile_project(small_integer_model, get_target("cortex-m3"), tmp_path / "out", "model")
    assert "apt-get install" in raised.value.one_line() and not (tmp_path / "out").exists()


@needs_toolchain
def test_a_model_too_large_for_the_part_is_refused_unless_overridden(tmp_path):
    integer = edgec.quantize(big_fc_model(), np.random.default_rng(0).random((10, 1024), dtype=np.float32))
    with pytest.raises(SizeLimitError) as raised:
        cortex_m.compile_project(integer, get_target("cortex-m3"), tmp_path / "big", "big")
    assert "flash" in raised.value.one_line() and "--ignore-size-limits" in raised.value.one_line()
    assert not (tmp_path / "big").exists()
    manifest = cortex_m.compile_project(integer, get_target("cortex-m3"), tmp_path / "big", "big",
                                        ignore_size_limits=True)
    assert manifest["flash"]["total"] > get_target("cortex-m3").part.flash_bytes


def test_a_kernel_the_backend_lacks_is_named(tmp_path):
    b = TfliteBuilder()
    x = b.tensor([1, 4, 4, 4], scale=0.1, zero_point=0)
    axes = b.tensor([2], np.int32, data=np.array([1, 3], np.int32))
    y = b.tensor([1, 1, 4, 1], scale=0.1, zero_point=0)
    b.operator(schema.BuiltinOperator.MEAN, [x, axes], [y], schema.BuiltinOptions.ReducerOptions,
               options(schema.ReducerOptionsT, keepDims=True))
    path = tmp_path / "mean.tflite"
    path.write_bytes(b.build([x], [y]))
    with pytest.raises(EdgecError) as raised:
        cortex_m.compile_project(edgec.load(path), get_target("cortex-m4"), tmp_path / "out", "mean")
    assert "Mean" in raised.value.one_line() and "Mean_0" in raised.value.one_line()
