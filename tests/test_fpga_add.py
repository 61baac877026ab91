"""The residual Add stage of the FPGA dataflow design: planner, exact tables, RTL.

A post-training quantized residual CNN (x -> conv -> relu -> conv -> add(x, .) -> relu ->
flatten -> gemm) is planned into a chain with one :class:`AddLayer` whose skip input is the
plan's input; the plan, iverilog and Verilator (with and without backpressure) all equal the
reference bit for bit, traces included. The add's tables and thresholds are checked against
the reference ADD kernel on every pair of input values; other DAGs stay refused.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.api import int8_output_names
from edgec.backend import int8_input_rows
from edgec.backends.fpga.dataflow_model import run_add, run_plan
from edgec.backends.fpga.layers import AddLayer
from edgec.backends.fpga.planner import check_model, plan_layers
from edgec.backends.fpga.rtl import fifo_depth, generate_rtl
from edgec.backends.fpga.simulate import simulate
from edgec.errors import UnsupportedModelError
from edgec.reference import ReferenceExecutor
from edgec.reference.elementwise import add as reference_add
from edgec.reference.executor import node_attributes

from conftest import make_model, tensor_info

needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")
CHANNELS, SIZE = 3, 6


def residual_cnn(skip_stage: bool = False, constant_skip: bool = False):
    """x[1,3,6,6] -> Conv 3x3 pad 1 (4) -> Relu -> Conv 3x3 pad 1 (3) -> Add(x, .) -> Relu ->
    Flatten -> Gemm (5). ``skip_stage``: a 1x1 Conv on the skip branch; ``constant_skip``: add a
    constant instead of x (both DAGs the planner refuses)."""
    rng = np.random.default_rng(5)
    skip = "x"
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1])]
    inits = {"w1": rng.normal(size=(4, CHANNELS, 3, 3)), "b1": rng.normal(size=4),
             "w2": rng.normal(size=(CHANNELS, 4, 3, 3)), "b2": rng.normal(size=CHANNELS),
             "fw": rng.normal(size=(5, CHANNELS * SIZE * SIZE)), "fb": rng.normal(size=5)}
    if skip_stage:
        nodes.append(helper.make_node("Conv", ["x", "ws", "bs"], ["cs"], name="skip_conv"))
        inits.update(ws=rng.normal(size=(CHANNELS, CHANNELS, 1, 1)), bs=rng.normal(size=CHANNELS))
        skip = "cs"
    if constant_skip:
        inits["k"] = rng.normal(size=(1, CHANNELS, SIZE, SIZE))
        skip = "k"
    nodes += [helper.make_node("Add", [skip, "c2"], ["s"], name="add"),
              helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
              helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    outputs = [tensor_info("y", [1, 5])]
    inits = {key: value.astype(np.float32) for key, value in inits.items()}
    return make_model(nodes, [tensor_info("x", [1, CHANNELS, SIZE, SIZE])], outputs, inits)


def samples(count: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((count, CHANNELS, SIZE, SIZE)) * 1.3 - 0.3).astype(np.float32)


def quantized(model, rounding: str = "double"):
    return edgec.quantize(model, samples(16, 4), weight_bits=4, activation_bits=4, input_layout="nhwc",
                          rounding=rounding)


@pytest.fixture(scope="module")
def residual():
    model = quantized(residual_cnn())
    rows = int8_input_rows(model, [{"x": sample[None]} for sample in samples(6, 8)])
    return model, plan_layers(model), rows


def test_the_residual_plan_has_an_add_reading_the_input_and_equals_the_reference(residual):
    model, layers, rows = residual
    assert [type(layer).__name__ for layer in layers] == ["MvuLayer", "MvuLayer", "AddLayer", "MvuLayer"]
    add = layers[2]
    assert add.skip_from == -1 and add.elements == SIZE * SIZE * CHANNELS
    outputs, trace = run_plan(layers, rows)
    executor = ReferenceExecutor(model)
    for row, sample_trace, output in zip(rows, trace, outputs):
        values = executor.run({executor.input_names[0]: row.astype(np.int8).reshape(1, SIZE, SIZE, CHANNELS)},
                              keep_intermediates=True)
        np.testing.assert_array_equal(output, values[int8_output_names(model)[0]].ravel())
        for index, data in sample_trace:
            np.testing.assert_array_equal(data, values[layers[index].output].ravel(), err_msg=layers[index].name)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_the_add_tables_and_thresholds_equal_the_reference_add_on_every_input_pair(rounding):
    model = quantized(residual_cnn(), rounding)
    add = next(layer for layer in plan_layers(model) if isinstance(layer, AddLayer))
    node = next(node for node in model.graph if node.op_type == "Add")
    skip_values = np.arange(add.skip_type.min, add.skip_type.max + 1)
    main_values = np.arange(add.input_type.min, add.input_type.max + 1)
    skip, main = (grid.ravel() for grid in np.meshgrid(skip_values, main_values, indexing="ij"))
    expected = add.output_type.saturate(reference_add(node_attributes(node), rounding, skip, main))
    got = run_add(add, main[None, :], skip[None, :])[0]
    np.testing.assert_array_equal(got, expected)
    assert len(set(got.tolist())) > 4  # the pairs reach many output levels


@pytest.mark.parametrize("model,match", [
    (residual_cnn(skip_stage=True), "'conv1' .* several readers; fpga designs are chains whose only forks"),
    (residual_cnn(constant_skip=True), "'add' .* an Add is a stage only where it joins"),
], ids=["stage_on_the_skip_branch", "add_of_a_constant"])
def test_other_dags_are_still_refused(model, match):
    with pytest.raises(UnsupportedModelError, match=match):
        check_model(quantized(model))


@pytest.fixture(scope="module")
def residual_design(residual, tmp_path_factory):
    _, layers, rows = residual
    directory = tmp_path_factory.mktemp("residual")
    return layers, rows, directory, generate_rtl(layers, directory, name="residual")


def test_the_design_has_a_fork_a_fifo_of_a_whole_feature_map_and_an_add(residual_design):
    layers, _, directory, design = residual_design
    assert {"edgec_l_in_fork.v", "edgec_l_in_fifo.v", "edgec_l2_add.v", "edgec_l2_thr.v"} <= set(design.sources)
    assert fifo_depth(layers[2]) == 128 >= layers[2].elements
    assert "mem [0:127]" in (directory / "edgec_l_in_fifo.v").read_text()


@needs_verilator
def test_the_residual_design_is_lint_clean(residual_design):
    _, _, directory, design = residual_design
    done = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "edgec_top", *design.sources],
                          cwd=directory, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


@needs_iverilog
@pytest.mark.parametrize("backpressure", [False, True])
def test_iverilog_equals_run_plan_with_and_without_backpressure(residual_design, backpressure):
    layers, rows, directory, design = residual_design
    outputs, trace = run_plan(layers, rows)
    result = simulate(directory, design, rows, simulator="iverilog", trace=True, backpressure=backpressure)
    np.testing.assert_array_equal(result.outputs, outputs)
    for got, expected in zip(result.trace, trace):
        for (index, data), (want_index, want) in zip(got, expected):
            assert index == want_index
            np.testing.assert_array_equal(data, want, err_msg=layers[index].name)
    if not backpressure:  # back to back, the skip FIFO lets the design run at its slowest stage's rate
        slowest = max(stage.cycles for stage in design.layers)
        assert slowest <= result.cycles_per_inference <= slowest + 16


@needs_verilator
def test_verilator_equals_run_plan_under_backpressure(residual_design, tmp_path):
    layers, rows, directory, design = residual_design
    outputs, _ = run_plan(layers, rows)
    result = simulate(directory, design, rows, simulator="verilator", backpressure=True, work_dir=tmp_path)
    np.testing.assert_array_equal(result.outputs, outputs)
