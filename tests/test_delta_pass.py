"""DeltaEncodePass and the --delta-* options: what the graph holds, what the report says."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx_ir as ir
import pytest

import edgec
from edgec.delta import DeltaScheme, encode_exact, get_scheme, reconstruct, weight_rows
from edgec.errors import EdgecError, EdgecWarning
from edgec.passes.delta_encode import DeltaEncodePass, read_report
from edgec.passes.qparams import int_type_of
from edgec.summary import summarize

from conftest import invoke, small_conv_model

SCHEME = DeltaScheme(4, "closed-loop", "channel")


def _weights(model):
    for node in model.graph:
        if node.op_type in ("Conv", "DepthwiseConv", "FullyConnected"):
            yield node, node.inputs[1]


def _copy(model):
    return ir.from_proto(ir.to_proto(model))


@pytest.mark.parametrize("scheme", [SCHEME, DeltaScheme(2, "fixed", "tensor"), DeltaScheme(5, "consecutive", "block", 4)],
                         ids=lambda s: s.describe())
def test_weights_become_their_reconstruction(small_integer_model, scheme):
    model = _copy(small_integer_model)
    before = {weight.name: weight.const_value.numpy().copy() for _, weight in _weights(model)}
    encode = DeltaEncodePass(scheme)
    encode(model)
    assert encode.report and all(layer.encoded for layer in encode.report)
    for (node, weight), layer in zip(_weights(model), encode.report):
        rows = weight_rows(node.op_type, before[weight.name]).astype(np.int64)
        expected = reconstruct(rows, scheme, int_type_of(weight))
        np.testing.assert_array_equal(weight_rows(node.op_type, weight.const_value.numpy()), expected)
        assert get_scheme(weight) == scheme and int_type_of(weight).bits == 8
        assert layer.changed == int(np.count_nonzero(expected != rows))
        assert layer.max_error == int(np.abs(expected - rows).max())
        assert layer.stored_bits == scheme.stored_bits(*rows.shape)
        encode_exact(expected, scheme, int_type_of(weight))


def test_reference_runs_the_reconstructed_weights(small_integer_model, rng):
    """Encoding an already encoded graph changes nothing: its outputs stay bit for bit."""
    encoded = _copy(small_integer_model)
    DeltaEncodePass(SCHEME)(encoded)
    again = _copy(encoded)
    second = DeltaEncodePass(SCHEME)
    second(again)
    assert all(layer.changed == 0 for layer in second.report)
    x = rng.random((2, 3, 8, 8), dtype=np.float32)
    for first, other in zip(edgec.run(encoded, x), edgec.run(again, x)):
        np.testing.assert_array_equal(next(iter(first.values())), next(iter(other.values())))


def test_encoding_survives_saving_and_is_counted(small_integer_model, tmp_path):
    encoded = _copy(small_integer_model)
    DeltaEncodePass(SCHEME)(encoded)
    ir.save(encoded, tmp_path / "m.onnx")
    loaded = ir.load(tmp_path / "m.onnx")
    assert [get_scheme(w) for _, w in _weights(loaded)] == [SCHEME] * len(list(_weights(loaded)))
    assert read_report(loaded) == read_report(encoded)
    stored = sum(-(-layer.stored_bits // 8) for layer in read_report(loaded))
    int8 = sum(w.const_value.size for _, w in _weights(small_integer_model))
    plain = summarize(small_integer_model).total_packed_bytes
    assert summarize(loaded).total_packed_bytes == plain - int8 + stored < plain


def test_untrained_model_warns_with_the_error(rng):
    calib = rng.random((16, 3, 8, 8), dtype=np.float32)
    with pytest.warns(EdgecWarning, match=r"changed \d+ of \d+ weights \(largest error \d+ steps\)"):
        edgec.quantize(small_conv_model(rng, batch=1), calib, delta=SCHEME)


def test_exact_mode_names_the_layer(small_integer_model):
    with pytest.raises(EdgecError, match="layer '.*': \\d+ of \\d+ weights do not fit"):
        DeltaEncodePass(DeltaScheme(2, "fixed", "channel", saturate=False))(_copy(small_integer_model))


def test_narrow_weights_are_kept(rng):
    calib = rng.random((16, 3, 8, 8), dtype=np.float32)
    with pytest.warns(EdgecWarning, match="nothing was delta-encoded"):
        model = edgec.quantize(small_conv_model(rng, batch=1), calib, weight_bits=4, delta=SCHEME)
    assert all(not layer.encoded and layer.changed == 0 for layer in read_report(model))


def test_integer_input_model_is_encoded_on_a_copy(small_integer_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)
        encoded = edgec.quantize(small_integer_model, delta=SCHEME)
    assert encoded is not small_integer_model
    assert all(get_scheme(w) is None for _, w in _weights(small_integer_model))
    assert all(get_scheme(w) == SCHEME for _, w in _weights(encoded))


def test_cli_quantize_prints_the_table(model_path, calib_path, tmp_path):
    out = tmp_path / "q.onnx"
    result = invoke("quantize", model_path, "--calib", calib_path, "-o", out, "--delta-bits", "3",
                    "--delta-scheme", "fixed", "--delta-scope", "block:4")
    assert result.exit_code == 0, result.output
    assert "delta-encoded weights" in result.output and "total" in result.output
    layers = json.loads(ir.load(out).metadata_props["edgec.delta_report"])
    assert layers and all(layer["stored_bits"] < layer["int8_bits"] for layer in layers)


@pytest.mark.parametrize("args,message", [
    (("--delta-bits", "7"), "7 is not in the range"),
    (("--delta-bits", "4", "--delta-scope", "block:0"), "no block size"),
    (("--delta-bits", "4", "--delta-exact"), "do not fit"),
])
def test_cli_bad_delta_options(model_path, calib_path, tmp_path, args, message):
    out = tmp_path / "q.onnx"
    result = invoke("quantize", model_path, "--calib", calib_path, "-o", out, *args)
    assert result.exit_code != 0 and message in result.output
    assert not out.exists()


def test_weights_inside_subgraphs_are_encoded():
    """The pass walks subgraphs: a FullyConnected inside an If branch is encoded too."""
    x = ir.Value(name="x", shape=ir.Shape([1, 4]), type=ir.TensorType(ir.DataType.INT8))
    condition = ir.Value(name="c", shape=ir.Shape([]), type=ir.TensorType(ir.DataType.BOOL))
    weights = ir.Value(name="w", type=ir.TensorType(ir.DataType.INT8), shape=ir.Shape([2, 4]),
                       const_value=ir.tensor(np.array([[100, -100, 3, 4]] * 2, dtype=np.int8), name="w"))
    fc = ir.Node("edgec", "FullyConnected", [x, weights], num_outputs=1, name="branch_fc")
    clamp = ir.Node("edgec", "Clamp", [x], num_outputs=1, name="else_clamp")
    route = ir.Node("", "If", [condition], num_outputs=1, name="route", attributes=[
        ir.AttrGraph("then_branch", ir.Graph([], fc.outputs, nodes=[fc], initializers=[weights], name="then")),
        ir.AttrGraph("else_branch", ir.Graph([], clamp.outputs, nodes=[clamp], name="else"))])
    model = ir.Model(ir.Graph([x, condition], route.outputs, nodes=[route], opset_imports={"": 13, "edgec": 1}),
                     ir_version=8)
    encode = DeltaEncodePass(DeltaScheme(4, "fixed", "channel"))
    encode(model)
    assert [(layer.layer, layer.changed, layer.max_error) for layer in encode.report] == [("branch_fc", 4, 93)]
    np.testing.assert_array_equal(weights.const_value.numpy(), [[7, -8, 3, 4]] * 2)
    assert get_scheme(weights) == DeltaScheme(4, "fixed", "channel")
