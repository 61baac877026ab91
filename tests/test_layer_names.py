"""Layer names a PyTorch user can map back: module paths in inspect, the integer graph,
report.json, the profile and the generated C; C comments safe whatever a name holds."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import onnx
import onnx_ir as ir
import pytest

import edgec
from edgec.frontend.torch_frontend import NAME_SCOPES_KEY, name_nodes_after_modules

from conftest import invoke, needs_toolchain, require_torch, small_conv_model

#: A small CNN as a user writes it: conv-bn-relu blocks in nested Sequentials, max-pool,
#: adaptive average pool, flatten, linear. Importable as ``layer_names_cnn:build``.
CNN_SOURCE = textwrap.dedent("""
    import torch
    from torch import nn


    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(block(3, 8), nn.MaxPool2d(2), block(8, 16), nn.AdaptiveAvgPool2d(1))
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.flatten(self.features(x)))


    def build():
        torch.manual_seed(0)
        return Net().eval()
""")
#: What the float graph's layers are named after canonicalization (the exporter already
#: fused each BatchNorm into its Conv): the module paths, in order.
FLOAT_NAMES = ["features.0.0", "features.0.2", "features.1", "features.2.0", "features.2.2", "features.3",
               "flatten", "fc"]
#: The integer graph's compute layers: the Relus are fused into the Conv named after the conv.
INTEGER_LAYERS = [("Conv", "features.0.0"), ("MaxPool", "features.1"), ("Conv", "features.2.0"),
                  ("Mean", "features.3"), ("FullyConnected", "fc")]


@pytest.fixture(scope="module")
def cnn_spec(tmp_path_factory) -> str:
    """``layer_names_cnn:build``, importable while the module's tests run."""
    require_torch()
    directory = tmp_path_factory.mktemp("cnn")
    (directory / "layer_names_cnn.py").write_text(CNN_SOURCE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(directory))
        yield "layer_names_cnn:build"


@pytest.fixture(scope="module")
def cnn_integer_model(cnn_spec) -> ir.Model:
    """The CNN quantized on 16 seeded uniform samples."""
    calibration = np.random.default_rng(3).random((16, 3, 32, 32), dtype=np.float32)
    return edgec.quantize(cnn_spec, calibration, input_shapes={"": [1, 3, 32, 32]})


def _compute_layers(model: ir.Model) -> list[tuple[str, str]]:
    return [(node.op_type, node.name) for node in model.graph
            if node.op_type not in ("Quantize", "Dequantize", "Transpose", "Reshape")]


def test_inspect_names_the_layers_of_a_pytorch_spec_by_module_path(cnn_spec):
    result = invoke("inspect", cnn_spec, "--input-shape", "1,3,32,32", "--json")
    assert result.exit_code == 0, result.output
    layers = json.loads(result.stdout)["layers"]
    assert [layer["name"] for layer in layers] == FLOAT_NAMES
    assert [layer["op"] for layer in layers][:2] == ["Conv", "Relu"]


def test_the_integer_graph_keeps_the_module_paths_through_fusion(cnn_integer_model):
    assert _compute_layers(cnn_integer_model) == INTEGER_LAYERS


def test_report_and_c_comments_carry_the_module_paths(tmp_path, cnn_integer_model):
    report = edgec.compile(cnn_integer_model, "cortex-m4", tmp_path / "cnn", emit_only=True)
    names = [(layer["op"], layer["name"]) for layer in report["layers"]]
    assert [entry for entry in names if entry[0] not in ("Transpose", "Reshape")] == INTEGER_LAYERS
    source = (tmp_path / "cnn" / "src" / "edgec_model.c").read_text()
    comments = re.findall(r"/\* layer \d+: (\w+) (\S+) \*/", source)
    assert ("Conv", "features.0.0") in comments and ("FullyConnected", "fc") in comments


@needs_toolchain
def test_a_compiled_pytorch_project_reports_and_profiles_under_module_paths(tmp_path, cnn_spec):
    calibration = np.random.default_rng(4).random((16, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "calib.npy", calibration)
    project = tmp_path / "cnn_m4"
    result = invoke("compile", cnn_spec, "--input-shape", "1,3,32,32", "--calib", tmp_path / "calib.npy",
                    "-t", "cortex-m4", "-o", project)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "report.json").read_text())
    assert [layer["name"] for layer in report["layers"] if layer["op"] in ("Conv", "FullyConnected")] == [
        "features.0.0", "features.2.0", "fc"]
    result = invoke("profile", project, "--json", tmp_path / "profile.json")
    assert result.exit_code == 0, result.output
    profiled = json.loads((tmp_path / "profile.json").read_text())["targets"][0]["layers"]
    assert [(layer["op"], layer["name"]) for layer in profiled if layer["op"] in ("Conv", "FullyConnected")] == [
        ("Conv", "features.0.0"), ("Conv", "features.2.0"), ("FullyConnected", "fc")]


def _exported_node(op: str, inputs: list[ir.Value], scopes: list[str] | None) -> ir.Node:
    node = ir.node(op, inputs, name=f"node_{op}")
    if scopes is not None:
        node.metadata_props[NAME_SCOPES_KEY] = repr(scopes)
    return node


def test_nodes_are_named_after_modules_uniquely_with_parameters_deciding_fusions():
    x = ir.Value(name="x", shape=ir.Shape([1, 4]), type=ir.TensorType(ir.DataType.FLOAT))
    weight = ir.Value(name="block.conv.weight", const_value=ir.tensor(np.ones((4, 4), np.float32)))
    fused = _exported_node("MatMul", [x, weight], ["", "block", "block.bn", "_native_batch_norm"])
    first = _exported_node("Relu", [fused.outputs[0]], ["", "head", "relu"])
    second = _exported_node("Relu", [first.outputs[0]], ["", "head", "relu_1"])
    top = _exported_node("Neg", [second.outputs[0]], ["", "neg"])
    bare = _exported_node("Abs", [top.outputs[0]], None)
    graph = ir.Graph([x], [bare.outputs[0]], nodes=[fused, first, second, top, bare], initializers=[weight])
    model = ir.Model(graph, ir_version=10)
    name_nodes_after_modules(model)
    assert [node.name for node in model.graph] == ["block.conv", "head", "head_1", "node_Neg", "node_Abs"]


def test_c_comments_stay_closed_whatever_a_layer_name_holds(tmp_path, rng):
    proto = small_conv_model(rng, batch=1)
    proto.graph.node[0].name = "conv */ int evil; /* nested"
    onnx.checker.check_model(proto)
    integer = edgec.quantize(proto, rng.random((16, 3, 8, 8), dtype=np.float32))
    edgec.compile(integer, "cortex-m4", tmp_path / "odd", emit_only=True)
    source = (tmp_path / "odd" / "src" / "edgec_model.c").read_text()
    assert "/* layer 1: Conv conv * / int evil; / * nested */" in source
    for line in source.splitlines():
        if line.startswith("/* layer"):
            assert line.count("/*") == 1 and line.count("*/") == 1 and line.endswith("*/"), line


def test_an_onnx_models_integer_layers_take_its_node_names(small_integer_model):
    integer = small_integer_model
    assert _compute_layers(integer) == [("Conv", "conv"), ("AveragePool", "pool"), ("FullyConnected", "fc")]
