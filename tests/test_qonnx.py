"""QONNX import (passes/absorb_qonnx.py) and Brevitas modules (edgec/frontend/torch_frontend.py).

The pass is tested on small QONNX graphs built here (no Brevitas needed). The proof of issue
10 item 4 trains six Brevitas nets on scikit-learn digits (tests/brevitas_models.py) and
compares, output by output on the test split, edgec's reference executor, Brevitas'
``QuantTensor`` integers and qonnx's executor: equal, except where Brevitas' float32 arithmetic
itself rounds a layer value to the other side of a .5 boundary (:func:`float_ties`), which
must stay under 0.1 % of the outputs. The W4A4 nets run in the fast tier, the others are slow.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgec
from edgec import ops
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.inttype import INT8, IntType
from edgec.passes.qparams import QParams, get_channel_scales, get_qparams

from conftest import invoke, needs_toolchain

QONNX = "qonnx.custom_op.general"


# -- the pass on hand-built QONNX graphs ---------------------------------------------------
def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _quant(name: str, x: str, scale: str, zero_point: str, bits: str, signed=1, narrow=0, rounding="ROUND",
           op="Quant") -> onnx.NodeProto:
    inputs = [x, scale] if op == "BipolarQuant" else [x, scale, zero_point, bits]
    attrs = {} if op == "BipolarQuant" else {"signed": signed, "narrow": narrow, "rounding_mode": rounding}
    return helper.make_node(op, inputs, [f"{name}_out"], name=name, domain=QONNX, **attrs)


def qonnx_gemm(weight_quant: dict | None = None, act_quant: dict | None = None, trans_b: int = 1,
               op: str = "Gemm", extra_nodes=()) -> onnx.ModelProto:
    """x [1, 4] -> Quant (int8, scale 1/64) -> Gemm/MatMul (weight Quant, 4 bits) -> Relu -> Quant (uint4)."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 4) if trans_b else (4, 3)).astype(np.float32)
    initializers = [_const("w", weight), _const("s_in", 1 / 64), _const("zero", 0.0), _const("b8", 8.0),
                    _const("s_w", 0.25), _const("b4", 4.0), _const("s_out", 0.1), _const("zp_w", 1.0),
                    _const("s_vec", [0.1, 0.2, 0.3])]
    nodes = [_quant("input_quant", "x", "s_in", "zero", "b8"),
             _quant("weight_quant", **{"x": "w", "scale": "s_w", "zero_point": "zero", "bits": "b4", "narrow": 1,
                                       **(weight_quant or {})})]
    if op == "Gemm":
        nodes.append(helper.make_node("Gemm", ["input_quant_out", "weight_quant_out"], ["y"], name="fc",
                                      transB=trans_b))
    else:
        nodes.append(helper.make_node("MatMul", ["input_quant_out", "weight_quant_out"], ["y"], name="fc"))
    nodes.append(helper.make_node("Relu", ["y"], ["r"], name="relu"))
    nodes.append(_quant("out_quant", **{"x": "r", "scale": "s_out", "zero_point": "zero", "bits": "b4", "signed": 0,
                                        **(act_quant or {})}))
    nodes.extend(extra_nodes)
    output = nodes[-1].output[0]
    graph = helper.make_graph(nodes, "qonnx", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 3])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)])


def _weight(model) -> tuple[np.ndarray, object]:
    fc = next(node for node in model.graph if node.name == "fc")
    return fc.inputs[1].const_value.numpy(), fc.inputs[1]


@pytest.mark.parametrize(("op", "trans_b", "axis"), [("Gemm", 1, 0), ("Gemm", 0, 1), ("MatMul", 0, 1)])
def test_weight_quant_becomes_its_float_values_with_scales_on_the_output_channel_axis(op, trans_b, axis):
    model = edgec.load(qonnx_gemm(trans_b=trans_b, op=op))
    weight, value = _weight(model)
    raw = numpy_helper.to_array(qonnx_gemm(trans_b=trans_b, op=op).graph.initializer[0])
    np.testing.assert_array_equal(weight, (np.clip(np.round(raw / 0.25), -7, 7) * 0.25).astype(np.float32))
    scales, recorded_axis = get_channel_scales(value)
    assert recorded_axis == axis and scales.tolist() == [0.25] * 3
    assert value.metadata_props["edgec.int_type"] == "int4n"
    assert not any(node.domain == QONNX for node in model.graph)


def test_activation_quants_are_recorded_on_their_inputs_with_widths_and_the_input_rounding():
    model = edgec.load(qonnx_gemm())
    x = model.graph.inputs[0]
    assert get_qparams(x) == QParams(float(np.float32(1 / 64)), 0, INT8)
    assert x.metadata_props[ops.QUANTIZE_ROUNDING_KEY] == "half_even"
    relu = next(node for node in model.graph if node.op_type == "Relu")
    assert get_qparams(relu.outputs[0]) == QParams(float(np.float32(0.1)), 0, IntType(4, False))
    assert model.metadata_props[ops.ROUNDING_KEY] == "single"


def test_unsigned_8_bit_activations_are_stored_as_int8_with_the_zero_point_shifted():
    model = edgec.load(qonnx_gemm(act_quant={"bits": "b8", "zero_point": "zp_w"}))
    relu = next(node for node in model.graph if node.op_type == "Relu")
    assert get_qparams(relu.outputs[0]) == QParams(float(np.float32(0.1)), 1 - 128, INT8)


def test_the_integer_graph_keeps_the_recorded_weights_and_widths():
    integer = edgec.quantize(qonnx_gemm(), rounding="single")
    fc = next(node for node in integer.graph if node.op_type == "FullyConnected")
    raw = numpy_helper.to_array(qonnx_gemm().graph.initializer[0])
    np.testing.assert_array_equal(fc.inputs[1].const_value.numpy(), np.clip(np.round(raw / 0.25), -7, 7))
    assert fc.outputs[0].metadata_props["edgec.int_type"] == "uint4"
    assert fc.attributes["activation_max"].value == 15


def _bipolar_weight_model() -> onnx.ModelProto:
    proto = qonnx_gemm()
    weight_quant = proto.graph.node[1]
    proto.graph.node.remove(weight_quant)
    proto.graph.node.insert(1, _quant("weight_quant", "w", "s_w", "", "", op="BipolarQuant"))
    return proto


def test_bipolar_weights_become_plus_minus_scale_as_2_bit_narrow_weights():
    model = edgec.load(_bipolar_weight_model())
    weight, value = _weight(model)
    raw = numpy_helper.to_array(qonnx_gemm().graph.initializer[0])
    np.testing.assert_array_equal(weight, np.where(raw >= 0, 0.25, -0.25).astype(np.float32))
    assert value.metadata_props["edgec.int_type"] == "int2n"


@pytest.mark.parametrize(("change", "message"), [
    ({"weight_quant": {"zero_point": "zp_w"}}, "nonzero zero point"),
    ({"weight_quant": {"rounding": "FLOOR"}}, "rounds with FLOOR"),
    ({"act_quant": {"bits": "b8", "narrow": 1}}, "narrow unsigned 8 bits"),
    ({"act_quant": {"scale": "s_vec"}}, "per channel"),
])
def test_quantizers_edgec_cannot_reproduce_are_named(change, message):
    with pytest.raises(UnsupportedModelError, match=message):
        edgec.load(qonnx_gemm(**change))


@pytest.mark.parametrize(("op", "message"), [
    ("Trunc", "TruncAvgPool2d"), ("MultiThreshold", "FINN"), ("BipolarQuant", "binarizes an activation")])
def test_other_qonnx_operators_are_rejected_naming_the_node(op, message):
    inputs = ["out_quant_out", "s_out"] if op == "BipolarQuant" else ["out_quant_out", "s_out", "zero", "b4", "b4"]
    node = helper.make_node(op, inputs, ["last"], name="the_node", domain=QONNX)
    with pytest.raises(UnsupportedModelError, match=f"node 'the_node'.*{message}|{message}.*the_node"):
        edgec.load(qonnx_gemm(extra_nodes=[node]))


# -- Brevitas modules ------------------------------------------------------------------------
def test_a_missing_brevitas_names_the_extra(monkeypatch):
    torch = pytest.importorskip("torch")
    from edgec.frontend.torch_frontend import export_brevitas

    monkeypatch.setitem(sys.modules, "brevitas.export", None)
    with pytest.raises(EdgecError, match="brevitas") as error:
        export_brevitas(torch.nn.Identity(), (torch.zeros(1),))
    assert "edgec[qonnx]" in error.value.hint


def test_a_module_spec_needing_brevitas_names_the_extra(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from edgec.frontend.torch_frontend import load_module_spec

    (tmp_path / "needs_brevitas.py").write_text("import brevitas\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "brevitas", None)
    with pytest.raises(EdgecError) as error:
        load_module_spec("needs_brevitas:net")
    assert "edgec[qonnx]" in error.value.hint


@pytest.fixture(scope="module")
def brevitas_models():
    pytest.importorskip("brevitas", reason="brevitas is not installed (pip install 'edgec[qonnx]')")
    pytest.importorskip("qonnx", reason="qonnx is not installed (pip install 'edgec[qonnx]')")
    pytest.importorskip("onnxoptimizer", reason="onnxoptimizer is not installed (pip install 'edgec[qonnx]')")
    import brevitas_models

    return brevitas_models


@pytest.fixture(scope="module")
def digits(brevitas_models):
    return brevitas_models.digits()


_TRAINED: dict[str, object] = {}


def trained(brevitas_models, digits, name: str):
    """The net ``name`` of :data:`brevitas_models.NETS`, trained once per session."""
    if name not in _TRAINED:
        kind, bits = next((k, b) for n, k, b in brevitas_models.NETS if n == name)
        _TRAINED[name] = brevitas_models.train(kind, bits, digits)
    return _TRAINED[name]


FAST = ("mlp_w4a4", "conv_w4a4")
NET_PARAMS = [pytest.param(name, marks=() if name in FAST else pytest.mark.slow)
              for name in ("mlp_w8a8", "mlp_w4a4", "mlp_w2a2", "conv_w8a8", "conv_w4a4", "conv_w2a2")]


@pytest.mark.parametrize("name", NET_PARAMS)
def test_edgec_equals_brevitas_and_qonnx_bit_for_bit(brevitas_models, digits, name, tmp_path):
    net = trained(brevitas_models, digits, name)
    x = digits.test_x
    expected = brevitas_models.brevitas_int_outputs(net, x)
    integer = brevitas_models.quantize(net)
    actual = brevitas_models.edgec_int_outputs(integer, x)
    qonnx = brevitas_models.qonnx_int_outputs(brevitas_models.export(net, tmp_path / "net.onnx", len(x)), x)
    ties = brevitas_models.float_ties(net, x) > 0
    assert (actual.argmax(1) == digits.test_y).mean() > 0.7
    np.testing.assert_array_equal(actual[~ties], expected[~ties])
    np.testing.assert_array_equal(qonnx[~ties], expected[~ties])
    assert np.count_nonzero(actual != expected) <= 0.001 * expected.size


def test_the_integer_graph_holds_brevitas_integers_and_widths(brevitas_models, digits):
    torch = pytest.importorskip("torch")
    net = trained(brevitas_models, digits, "conv_w4a4")
    integer = brevitas_models.quantize(net)
    layers = {node.name: node for node in integer.graph}
    assert {"conv1", "conv2", "fc"} <= set(layers)
    with torch.no_grad():
        stages = net.stages(torch.from_numpy(digits.test_x[:1]))
    for (module, inp, out), name in zip(stages, ("conv1", "conv2", "fc")):
        node = layers[name]
        weight = module.quant_weight().int().numpy()
        stored = node.inputs[1].const_value.numpy()
        np.testing.assert_array_equal(stored, weight.transpose(0, 2, 3, 1) if weight.ndim == 4 else weight)
        if module.bias is not None:
            bias = module.bias_quant(module.bias, inp, module.quant_weight()).int().numpy()
            np.testing.assert_array_equal(node.inputs[2].const_value.numpy(), bias)
        out_type = f"{'' if out.signed else 'u'}int{int(out.bit_width)}"
        assert node.outputs[0].metadata_props["edgec.int_type"] == (out_type if name != "fc" else "int8")
        assert node.inputs[1].metadata_props.get("edgec.int_type") == "int4n"
    quantize = next(node for node in integer.graph if node.op_type == "Quantize")
    assert quantize.attributes["rounding"].value == "half_even"


def test_a_qonnx_file_compiles_from_the_command_line(brevitas_models, digits, tmp_path):
    net = trained(brevitas_models, digits, "mlp_w4a4")
    path = brevitas_models.export(net, tmp_path / "mlp.qonnx.onnx", 1)
    inspected = invoke("inspect", path)
    assert inspected.exit_code == 0, inspected.output
    assert "Gemm" in inspected.output and "✗" not in inspected.output
    compiled = invoke("compile", path, "--target", "cortex-m4", "-o", tmp_path / "project", "--emit-only")
    assert compiled.exit_code == 0, compiled.output
    project_model = edgec.api.project_model_path(tmp_path / "project")
    assert any(node.op_type == "FullyConnected" for node in edgec.load(project_model).graph)


@needs_toolchain
@pytest.mark.slow
def test_the_w4a4_conv_net_runs_bit_exact_on_qemu(brevitas_models, digits, tmp_path):
    from edgec.backends import cortex_m

    net = trained(brevitas_models, digits, "conv_w4a4")
    x = digits.test_x[:20]
    integer = brevitas_models.quantize(net)
    expected = brevitas_models.brevitas_int_outputs(net, x)
    for core in ("cortex-m3", "cortex-m4"):
        edgec.compile(integer, core, tmp_path / core, emit_only=False)
        result = cortex_m.run_project(tmp_path / core, cortex_m.int8_inputs(integer, [{"x": s[None]} for s in x]))
        np.testing.assert_array_equal(np.asarray(result.outputs).reshape(expected.shape), expected, err_msg=core)
