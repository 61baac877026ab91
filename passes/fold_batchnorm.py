"""FoldBatchNormPass: remove inference-mode BatchNormalization.

With ``a = gamma / sqrt(var + eps)`` and ``b = beta - mean * a`` (per channel, axis 1):

1. ``BatchNormalization(Conv(x, W, B))``, the Conv output read only by the BN and all
   parameters constant: the Conv gets ``W' = W * a`` (per output channel) and
   ``B' = B * a + b``; the BN disappears.
2. ``BatchNormalization(Gemm(x, W, C))`` on a 2-D output, same conditions: the Gemm's
   output columns are scaled the same way (``alpha``/``beta`` folded in).
3. Any other BN with constant parameters becomes ``Add(Mul(x, a), b)`` with ``a`` and ``b``
   shaped to broadcast over axis 1.

Invariant: no BatchNormalization remains, except one with non-constant parameters
(rejected by the quantizer with its name). Float semantics are unchanged up to float
rounding.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.control_flow import all_nodes
from edgec.passes.graph_utils import add_initializer, attribute, const_array, replace_value, sole_consumer


def _bn_affine(bn: ir.Node) -> tuple[np.ndarray, np.ndarray] | None:
    params = [const_array(v) for v in bn.inputs[1:5]]
    if any(p is None for p in params) or len(bn.outputs) > 1 and any(o.uses() for o in bn.outputs[1:]):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    eps = float(attribute(bn, "epsilon", 1e-5))
    a = gamma / np.sqrt(var + eps)
    return a, beta - mean * a


class FoldBatchNormPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph  # new initializers go to the main graph, whatever branch the node is in
        modified = False
        for bn in list(all_nodes(graph)):
            if bn.op_type != "BatchNormalization" or bn.domain != "":
                continue
            affine = _bn_affine(bn)
            if affine is None:
                continue
            producer = bn.inputs[0].producer()
            folded = (
                producer is not None and sole_consumer(bn.inputs[0]) is bn
                and (self._into_conv(graph, producer, *affine) or self._into_gemm(graph, producer, *affine))
            )
            if folded:
                replace_value(bn.outputs[0], producer.outputs[0])
            else:
                self._as_mul_add(graph, bn, *affine)
            bn.graph.remove(bn, safe=True)
            modified = True
        return ir.passes.PassResult(model, modified)

    @staticmethod
    def _into_conv(graph: ir.Graph, conv: ir.Node, a: np.ndarray, b: np.ndarray) -> bool:
        if conv.op_type != "Conv" or conv.domain != "":
            return False
        parameters = _constant_weight_and_bias(conv)
        if parameters is None:
            return False
        weights, bias = parameters
        bias = np.zeros(weights.shape[0]) if bias is None else bias.astype(np.float64)
        scale = a.reshape(-1, *([1] * (weights.ndim - 1)))
        _set_weight_and_bias(graph, conv, weights * scale, bias * a + b)
        return True

    @staticmethod
    def _into_gemm(graph: ir.Graph, gemm: ir.Node, a: np.ndarray, b: np.ndarray) -> bool:
        if gemm.op_type != "Gemm" or gemm.domain != "" or attribute(gemm, "transA", 0):
            return False
        parameters = _constant_weight_and_bias(gemm)
        if parameters is None:
            return False
        weights, bias = parameters
        alpha, beta = float(attribute(gemm, "alpha", 1.0)), float(attribute(gemm, "beta", 1.0))
        w_kn = weights.T if attribute(gemm, "transB", 0) else weights
        n = w_kn.shape[1]
        c = np.broadcast_to(np.zeros(n) if bias is None else bias.astype(np.float64) * beta, (n,))
        _set_weight_and_bias(graph, gemm, (alpha * w_kn * a).T, c * a + b)
        for name, value in (("alpha", 1.0), ("beta", 1.0), ("transB", 1)):
            gemm.attributes[name] = ir.convenience.convert_attribute(name, value)
        return True

    @staticmethod
    def _as_mul_add(graph: ir.Graph, bn: ir.Node, a: np.ndarray, b: np.ndarray) -> None:
        rank = bn.inputs[0].shape.rank() if bn.inputs[0].shape is not None else 4
        shape = (-1,) + (1,) * max(rank - 2, 0)
        scale = add_initializer(graph, f"{bn.name}_scale", a.reshape(shape).astype(np.float32))
        shift = add_initializer(graph, f"{bn.name}_shift", b.reshape(shape).astype(np.float32))
        mul = ir.node("Mul", [bn.inputs[0], scale], name=f"{bn.name}_mul")
        add = ir.node("Add", [mul.outputs[0], shift], name=f"{bn.name}_add")
        mul.outputs[0].name = f"{bn.name}_scaled"
        bn.graph.insert_before(bn, [mul, add])
        replace_value(bn.outputs[0], add.outputs[0])


def _constant_weight_and_bias(node: ir.Node) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Constant weights and (optional) bias of a Conv/Gemm, or ``None`` if either is computed."""
    weights = const_array(node.inputs[1])
    has_bias = len(node.inputs) > 2 and node.inputs[2] is not None
    bias = const_array(node.inputs[2]) if has_bias else None
    if weights is None or (has_bias and bias is None):
        return None
    return weights, bias


def _set_weight_and_bias(graph: ir.Graph, node: ir.Node, weights: np.ndarray, bias: np.ndarray) -> None:
    """Give a Conv/Gemm new float32 weight and bias initializers (adding the bias input if absent)."""
    new_w = add_initializer(graph, f"{node.inputs[1].name}_bnfolded", weights.astype(np.float32))
    new_b = add_initializer(graph, f"{node.name}_bias_bnfolded", bias.astype(np.float32))
    node.replace_input_with(1, new_w)
    if len(node.inputs) < 3:
        node.resize_inputs(3)
    node.replace_input_with(2, new_b)
