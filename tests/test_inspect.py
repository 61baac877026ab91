"""edgec inspect: unsupported operators marked before compile, parameters that are parameters,
a PyTorch spec's wrong input shape named; edgec.run takes what the command line takes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper

import edgec
from edgec.errors import EdgecError

from conftest import invoke, make_model, require_torch, small_conv_model, tensor_info


def _grid_sample_model(rng) -> onnx.ModelProto:
    """x[1,3,8,8] -> GridSample (no edgec lowering) -> Conv 3x3 (4) -> y."""
    nodes = [helper.make_node("GridSample", ["x", "grid"], ["s"], name="warp"),
             helper.make_node("Conv", ["s", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    inits = {"grid": rng.uniform(-1, 1, (1, 8, 8, 2)).astype(np.float32),
             "w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32)}
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 4, 8, 8])], inits, opset=18)


def _configured_model(rng) -> onnx.ModelProto:
    """x -> Conv (4x3x3x3 + 4) -> Clip(0, 6) -> ReduceMean(axes) -> Reshape(shape) -> y: only the
    Conv has parameters; the other constants (bounds, axes, shape) configure their operator."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "low", "high"], ["r"], name="relu6"),
             helper.make_node("ReduceMean", ["r", "axes"], ["m"], name="mean", keepdims=1),
             helper.make_node("Reshape", ["m", "shape"], ["y"], name="flatten")]
    inits = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "b": rng.normal(size=4).astype(np.float32),
             "low": np.array(0, np.float32), "high": np.array(6, np.float32),
             "axes": np.array([2, 3], np.int64), "shape": np.array([1, 4], np.int64)}
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 4])], inits, opset=18)


def test_an_unsupported_operator_is_marked_and_named_in_a_final_warning(tmp_path, rng):
    path = tmp_path / "warp.onnx"
    onnx.save(_grid_sample_model(rng), path)
    result = invoke("inspect", path)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[2].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "GridSample ✗" in rows["warp"] and "✗" not in rows["conv"]
    assert "✗ edgec does not support this operator" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("warning: ") and "GridSample (node 'warp')" in last and "compile will fail" in last
    assert "conv" not in last.split("will fail")[0]


def test_inspect_json_lists_unsupported_layers(tmp_path, rng):
    path = tmp_path / "warp.onnx"
    onnx.save(_grid_sample_model(rng), path)
    result = invoke("inspect", path, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(layer["name"], layer["unsupported"]) for layer in summary["layers"]] == [("warp", True),
                                                                                     ("conv", False)]
    assert summary["unsupported"] == [{"name": "warp", "op": "GridSample"}]
    assert "GridSample" in result.stderr


def test_only_layers_with_weights_count_parameters_and_a_supported_model_warns_nothing(tmp_path, rng):
    path = tmp_path / "configured.onnx"
    onnx.save(_configured_model(rng), path)
    result = invoke("inspect", path, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    params = {layer["op"]: (layer["params"], layer["param_bytes"]) for layer in summary["layers"]}
    assert params.pop("Conv") == (4 * 3 * 3 * 3 + 4, (4 * 3 * 3 * 3 + 4) * 4)
    assert params["ReduceMean"] == (0, 0) and set(params.values()) == {(0, 0)}
    assert summary["total_params"] == 112 and summary["unsupported"] == []
    assert "warning" not in result.stderr


def test_an_integer_graph_is_all_supported(tmp_path, small_integer_model):
    ir.save(small_integer_model, tmp_path / "small.onnx")
    summary = json.loads(invoke("inspect", tmp_path / "small.onnx", "--json").stdout)
    assert summary["kind"] == "integer" and summary["unsupported"] == []
    assert not any(layer["unsupported"] for layer in summary["layers"])


def test_a_wrong_input_shape_for_a_pytorch_spec_names_the_channel_mismatch(tmp_path):
    require_torch()
    (tmp_path / "inspect_cnn.py").write_text(textwrap.dedent("""
        import torch

        def build():
            return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                       torch.nn.Flatten(), torch.nn.Linear(8, 2))
    """))
    # A separate process, as a user runs it: the exporter's log handlers write to the real stderr.
    result = subprocess.run([sys.executable, "-m", "edgec", "inspect", "inspect_cnn:build", "--input-shape",
                             "1,4,32,32"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "\x1b" not in result.stderr and lines[0].startswith("error: ")
    assert "input shape [1, 4, 32, 32]" in lines[0] and "3 channels" in lines[0]
    assert "--input-shape 1,3,32,32" in lines[0]


@pytest.fixture
def compiled_project(tmp_path, small_integer_model):
    """A C project of the small integer model, written without building (no toolchain needed)."""
    edgec.compile(small_integer_model, "cortex-m4", tmp_path / "project", emit_only=True)
    return tmp_path / "project"


def test_edgec_run_takes_a_project_a_file_a_proto_and_an_ir_model(compiled_project, small_integer_model, rng):
    x = rng.random((3, 3, 8, 8), dtype=np.float32)
    expected = edgec.run(small_integer_model, x)
    assert len(expected) == 3
    for source in (compiled_project, str(compiled_project), compiled_project / "model.onnx",
                   onnx.load(compiled_project / "model.onnx"), ir.load(compiled_project / "model.onnx")):
        outputs = edgec.run(source, x)
        assert [list(o) for o in outputs] == [list(e) for e in expected]
        assert all(np.array_equal(o[k], e[k]) for o, e in zip(outputs, expected) for k in e)


def test_edgec_run_says_what_it_takes(tmp_path, rng):
    x = rng.random((1, 3, 8, 8), dtype=np.float32)
    with pytest.raises(EdgecError, match="cannot run an object of type int") as error:
        edgec.run(3, x)
    assert "compiled project directory" in error.value.hint
    with pytest.raises(EdgecError, match="not quantized") as error:
        edgec.run(small_conv_model(rng, batch=1), x)
    assert "edgec.quantize" in error.value.hint
    with pytest.raises(EdgecError, match="not a compiled edgec project"):
        edgec.run(tmp_path, x)


def test_layer_names_are_shown_as_written_not_as_terminal_markup(tmp_path, rng):
    model = small_conv_model(rng, batch=1)
    model.graph.node[0].name = "[bold]stem[/bold]"
    path = tmp_path / "markup.onnx"
    onnx.save(model, path)
    result = invoke("inspect", path)
    assert result.exit_code == 0, result.output
    assert "[bold]stem[/bold]" in result.stdout
