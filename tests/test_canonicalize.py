"""Canonicalization passes: each rewrite happens and float semantics stay the same."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import helper

import edgec
from edgec.oracle import compare_layers
from edgec.passes.qparams import get_qparams

from conftest import make_model, small_conv_model, tensor_info


def float_run(model, x: np.ndarray) -> np.ndarray:
    proto = model if isinstance(model, onnx.ModelProto) else ir.to_proto(model)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def op_counts(model: ir.Model) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph)


def bn_params(rng, channels, prefix):
    return {f"{prefix}_g": rng.uniform(0.5, 1.5, channels).astype(np.float32),
            f"{prefix}_b": rng.normal(size=channels).astype(np.float32),
            f"{prefix}_m": rng.normal(size=channels).astype(np.float32),
            f"{prefix}_v": rng.uniform(0.5, 2, channels).astype(np.float32)}


def bn_node(x, y, prefix):
    return helper.make_node("BatchNormalization", [x, f"{prefix}_g", f"{prefix}_b", f"{prefix}_m", f"{prefix}_v"],
                            [y], name=prefix, epsilon=1e-3)


def test_batchnorm_folds_into_conv_and_gemm_and_standalone_becomes_mul_add(rng):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        bn_node("c", "cb", "bn1"),
        helper.make_node("Relu", ["cb"], ["r"]),
        bn_node("r", "rb", "bn2"),                       # after a Relu: cannot fold into a producer
        helper.make_node("Flatten", ["rb"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], transB=1),
        bn_node("g", "y", "bn3"),
    ]
    inits = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "fw": rng.normal(size=(5, 64)).astype(np.float32),
             "fb": rng.normal(size=5).astype(np.float32),
             **bn_params(rng, 4, "bn1"), **bn_params(rng, 4, "bn2"), **bn_params(rng, 5, "bn3")}
    proto = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 5])], inits)
    x = rng.normal(size=(1, 3, 4, 4)).astype(np.float32)
    canonical = edgec.load(proto)
    counts = op_counts(canonical)
    assert counts["BatchNormalization"] == 0
    assert counts["Mul"] == 1 and counts["Add"] == 1  # only the BN after the Relu
    # Float against float: folding rescales weights (w * gamma / sqrt(var + eps)) and so rounds
    # them anew; outputs of magnitude ~10 then move by a few hundred ulps at most, far below 1e-4.
    np.testing.assert_allclose(float_run(canonical, x), float_run(proto, x), rtol=1e-4, atol=1e-4)


def test_noops_and_shape_spellings_are_normalized(rng):
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Transpose", ["i"], ["t1"], perm=[0, 2, 3, 1]),    # NCHW -> NHWC ...
        helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),   # ... and back: cancels
        helper.make_node("Conv", ["t2", "w"], ["c"]),
        helper.make_node("Dropout", ["c"], ["d"]),
        helper.make_node("GlobalAveragePool", ["d"], ["p"]),
        helper.make_node("Transpose", ["p"], ["pt"], perm=[0, 2, 3, 1]),    # 1x1 map: only a reshape
        helper.make_node("Squeeze", ["pt", "axes"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "axes0"], ["u"]),
        helper.make_node("Flatten", ["u"], ["y"]),
    ]
    inits = {"w": rng.normal(size=(6, 3, 1, 1)).astype(np.float32), "axes": np.array([1, 2], np.int64),
             "axes0": np.array([0], np.int64)}
    proto = make_model(nodes, [tensor_info("x", [1, 3, 5, 5])], [tensor_info("y", [1, 6])], inits)
    canonical = edgec.load(proto)
    assert op_counts(canonical) == {"Conv": 1, "GlobalAveragePool": 1, "Reshape": 1}
    x = rng.normal(size=(1, 3, 5, 5)).astype(np.float32)
    # Float against float: the rewrites only drop no-ops, but onnxruntime may pick another
    # summation order for the reshaped graph; a few ulps, far below 1e-5.
    np.testing.assert_allclose(float_run(canonical, x), float_run(proto, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation,bounds", [("Relu", (0.0, None)), ("Clip", (0.0, 6.0))])
def test_activations_fuse_into_the_producer(rng, activation, bounds):
    extra = [] if activation == "Relu" else ["lo", "hi"]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node(activation, ["c", *extra], ["y"], name="act")]
    inits = {"w": rng.normal(size=(4, 3, 1, 1)).astype(np.float32) * 4, "b": rng.normal(size=4).astype(np.float32),
             "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    proto = make_model(nodes, [tensor_info("x", [1, 3, 4, 4])], [tensor_info("y", [1, 4, 4, 4])], inits)
    calib = rng.normal(size=(16, 3, 4, 4)).astype(np.float32) * 3
    integer = edgec.quantize(proto, calib)
    assert "Clamp" not in op_counts(integer)
    conv = next(node for node in integer.graph if node.op_type == "Conv")
    q = get_qparams(conv.outputs[0])
    assert conv.attributes["activation_min"].value == max(-128, int(q.quantize(bounds[0])))
    if bounds[1] is not None:
        assert conv.attributes["activation_max"].value == int(q.quantize(bounds[1]))
    outputs = edgec.run(integer, calib[:4])
    assert all((o["y"] >= 0).all() and (bounds[1] is None or (o["y"] <= 6.0 + 1e-6).all()) for o in outputs)


def test_a_qdq_model_keeps_onnxruntime_scales_and_weights(tmp_path, rng):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    float_path, qdq_path = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(small_conv_model(rng, batch=1), float_path)
    samples = [{"x": rng.random((1, 3, 8, 8), dtype=np.float32)} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(float_path), str(qdq_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    qdq = onnx.load(qdq_path)
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    integer = edgec.quantize(qdq_path)  # no calibration: every scale comes from the QDQ model
    quantize_node = next(node for node in integer.graph if node.op_type == "Quantize")
    input_scale = next(node for node in qdq.graph.node if node.op_type == "QuantizeLinear" and node.input[0] == "x")
    assert quantize_node.attributes["scale"].value == pytest.approx(float(initializers[input_scale.input[1]]), rel=1e-7)
    conv = next(node for node in integer.graph if node.op_type == "Conv")
    ort_weights = next(a for name, a in initializers.items() if a.dtype == np.int8 and a.shape == (4, 3, 3, 3))
    np.testing.assert_array_equal(conv.inputs[1].const_value.numpy(), ort_weights.transpose(0, 2, 3, 1))
    # Outputs are compared in integer steps, layer by layer, never end to end in float: one
    # layer's output that rounds the other way (edgec's fixed-point requantization against
    # onnxruntime's float QuantizeLinear, both exact to their documented arithmetic) may move
    # the next layer by many steps, and a float bound of k*scale is missed by float hairs.
    # Every layer is fed the same int8 input, so each may differ by at most that one rounding
    # step: 1 LSB.
    float_model = edgec.load(qdq_path)
    layers = compare_layers(float_model, integer, samples)
    assert {layer.op for layer in layers} >= {"Conv", "AveragePool", "FullyConnected"}
    assert all(layer.max_abs_diff <= 1 for layer in layers), layers


def test_fake_quantized_constant_weights_keep_their_integers(rng):
    """QuantizeLinear of a constant weight then DequantizeLinear (torch's per-channel fake
    quantization as exported): the weight's integers are ``round_half_even(w / s)``, kept."""
    scales = np.array([0.02, 0.05], dtype=np.float32)
    weights = rng.normal(0, 1, (2, 3)).astype(np.float32)
    weights[0, 0] = 2.5 * 0.02  # a tie: half to even gives 2
    nodes = [helper.make_node("QuantizeLinear", ["w", "s", "z"], ["wq"], axis=0),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"], axis=0),
             helper.make_node("Gemm", ["x", "wd"], ["y"], transB=1)]
    initializers = {"w": weights, "s": scales, "z": np.zeros(2, np.int8)}
    model = make_model(nodes, [tensor_info("x", [1, 3])], [tensor_info("y", [1, 2])], initializers)
    integer = edgec.quantize(model, rng.random((16, 1, 3), dtype=np.float32))
    fc = next(node for node in integer.graph if node.op_type == "FullyConnected")
    expected = np.clip(np.rint(weights / scales[:, None]), -127, 127)
    assert expected[0, 0] == 2
    np.testing.assert_array_equal(fc.inputs[1].const_value.numpy(), expected)
