"""Lowering of control flow: a router's comparison to ``edgec::Router``, and ``If`` to an
``If`` whose branches are integer subgraphs.

Routers. A float router is a ``Gemm`` computing scores ``s = v W^T + b`` of one sample
(``v`` ``[1, K]``), *picks* taking single scores out of it (``Gather`` of a constant index,
``Reshape``/``Squeeze``/``Unsqueeze``/``Flatten``), and one comparison ``GreaterOrEqual``,
``Greater``, ``LessOrEqual`` or ``Less`` of two picked scores, or of a score and a constant,
whose result only decides ``If`` nodes (what ``torch.onnx`` exports for
``torch.cond(s[0, i] >= s[0, j], ...)``). :func:`find_routers` recognises it; the ``Gemm``
(when the router alone reads it) and the picks are then not lowered on their own. The
comparison ``s_i >= s_j`` is ``(W_i - W_j) . v + (b_i - b_j) >= 0``: one weight row, one
bias, no requantization. It becomes ``edgec::Router(v, w, bias)``: ``w`` the row quantized
symmetric to int8 whatever the network's weight width (a router is one row of ``K`` weights,
and it decides the whole path), the bias int32 at scale ``s_v * s_w``, and the condition the
sign of the exact int32 accumulator ``bias + sum_k w_k (v_k - zp_v)`` (``>= 0``, or ``> 0``
with ``strict = 1``). Where ``v`` is the mean of a feature map over its positions (a
``ReduceMean`` read by the router alone), the router reads the map itself and sums it: the
condition ``sum_c w_c sum_p (x_pc - zp) + bias >= 0`` is the same comparison scaled by the
count of positions, with the bias at scale ``s_x * s_w / positions``, and skips the rounding of
the pooled vector. Deciding on the exact accumulator, not on requantized scores, leaves the
feature map's and the weights' rounding as the only differences from the float router.

``If``. Each branch is lowered with the same builder into a subgraph without inputs that
reads the enclosing graphs' integer values by name; the values it defines are visible only
inside it. Branch outputs are quantized with the parameters of the ``If`` outputs (their
calibrated range covers every branch), forced on the branch's last producers where they
requantize anyway, otherwise reached by a ``Requantize``; outputs are channels-first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.control_flow import BRANCHES, all_nodes, branches, is_branching
from edgec.errors import UnsupportedModelError
from edgec.inttype import INT8_WEIGHTS, INT32
from edgec.passes.graph_utils import attribute, const_array, static_shape
from edgec.passes.integer_builder import IntegerGraphBuilder
from edgec.passes.qparams import bias_safe_scales, quantize_bias, quantize_weights, weight_scales

COMPARISONS = {"GreaterOrEqual": (False, False), "Greater": (True, False),
               "LessOrEqual": (False, True), "Less": (True, True)}  # (strict, swapped)
PICKS = frozenset({"Gather", "Reshape", "Squeeze", "Unsqueeze", "Flatten"})
ROUTER_FIX = ("a router compares scores of one Linear layer of one sample (s[0, i] >= s[0, j], or a score with a "
              "constant) and decides an If; edgec.train.sigma_branch exports routers so")


@dataclasses.dataclass(frozen=True)
class Router:
    """A recognised float router: ``lhs - rhs`` of the comparison is ``sum_j coefficients[j] *
    s_j + offset`` over the scores ``s`` of ``scores``; the condition is ``> 0`` if ``strict``."""

    comparison: ir.Node
    scores: ir.Node
    coefficients: dict[int, float]
    offset: float
    strict: bool
    parts: tuple[ir.Node, ...]


def _picked_score(value: ir.Value) -> tuple[ir.Node, int, list[ir.Node]] | None:
    """(the Gemm, the index of the score in its flattened output, the picks) when ``value``
    is one score of a Gemm taken by picks; ``None`` otherwise."""
    picks: list[ir.Node] = []
    while (node := value.producer()) is not None and node.op_type in PICKS and node.domain == "":
        picks.append(node)
        value = node.inputs[0]
    if node is None or node.op_type != "Gemm" or node.domain != "" or static_shape(node.outputs[0]) is None:
        return None
    labels = np.arange(int(np.prod(static_shape(node.outputs[0])))).reshape(static_shape(node.outputs[0]))
    for pick in reversed(picks):
        shape = static_shape(pick.outputs[0])
        if pick.op_type == "Gather":
            index = const_array(pick.inputs[1])
            if index is None or shape is None:
                return None
            labels = np.take(labels, index, axis=int(attribute(pick, "axis", 0)))
        elif shape is None:
            return None
        else:
            labels = labels.reshape(shape)
    return (node, int(labels.reshape(-1)[0]), picks) if labels.size == 1 else None


def _router(node: ir.Node) -> Router | None:
    strict, swapped = COMPARISONS[node.op_type]
    terms = list(node.inputs[::-1] if swapped else node.inputs)
    coefficients: dict[int, float] = {}
    offset, gemm, parts = 0.0, None, []
    for sign, value in zip((1.0, -1.0), terms, strict=True):
        constant = const_array(value)
        if constant is not None:
            if constant.size != 1:
                return None
            offset += sign * float(constant.reshape(-1)[0])
            continue
        picked = _picked_score(value)
        if picked is None or (gemm is not None and picked[0] is not gemm):
            return None
        gemm, index, picks = picked
        coefficients[index] = coefficients.get(index, 0.0) + sign
        parts.extend(picks)
    condition = node.outputs[0]
    deciders = condition.consumers()
    if gemm is None or condition.is_graph_output() or not deciders or \
            not all(is_branching(c) and c.inputs[0] is condition for c in deciders):
        return None
    return Router(node, gemm, coefficients, offset, strict, tuple(dict.fromkeys(parts)))


def find_routers(graph: ir.Graph) -> dict[ir.Node, Router]:
    """Every float router of ``graph`` and its branches, by comparison node."""
    return {node: router for node in all_nodes(graph) if node.op_type in COMPARISONS and node.domain == ""
            and (router := _router(node)) is not None}


def absorbed_nodes(routers: dict[ir.Node, Router]) -> set[ir.Node]:
    """The picks of ``routers`` and the Gemms only routers read: nodes not lowered on their own."""
    parts = {part for router in routers.values() for part in router.parts}
    readers = parts | set(routers)
    for router in routers.values():
        scores = router.scores.outputs[0]
        if not scores.is_graph_output() and all(consumer in readers for consumer in scores.consumers()):
            parts.add(router.scores)
            pooling = _pooling(router.scores)
            if pooling is not None:
                parts.add(pooling)
    return parts


def _pooling(gemm: ir.Node) -> ir.Node | None:
    """The ``ReduceMean`` over every spatial axis (``keepdims=0``) that feeds only ``gemm``, if any:
    the router then sums the feature map itself (see the module docstring)."""
    pooled = gemm.inputs[0]
    mean = pooled.producer()
    if mean is None or mean.op_type != "ReduceMean" or mean.domain != "" or pooled.is_graph_output():
        return None
    if [c for c in pooled.consumers()] != [gemm] or int(attribute(mean, "keepdims", 1)) != 0:
        return None
    shape = static_shape(mean.inputs[0])
    axes = attribute(mean, "axes")
    if axes is None and len(mean.inputs) > 1:
        axes = const_array(mean.inputs[1])
        axes = None if axes is None else axes.tolist()
    if shape is None or len(shape) < 3 or axes is None:
        return None
    return mean if sorted(int(a) % len(shape) for a in axes) == list(range(2, len(shape))) else None


def _router_row(router: Router) -> tuple[np.ndarray, float]:
    """The float weight row and bias of ``lhs - rhs`` over the router's input."""
    gemm = router.scores
    raw = const_array(gemm.inputs[1])
    bias = const_array(gemm.inputs[2]) if len(gemm.inputs) > 2 and gemm.inputs[2] is not None else None
    if raw is None or (len(gemm.inputs) > 2 and gemm.inputs[2] is not None and bias is None):
        raise UnsupportedModelError(f"router Gemm node '{gemm.name}' has computed weights", ROUTER_FIX)
    if attribute(gemm, "transA", 0) or static_shape(gemm.inputs[0]) is None or static_shape(gemm.inputs[0])[0] != 1:
        raise UnsupportedModelError(f"router Gemm node '{gemm.name}' does not score one sample", ROUTER_FIX)
    weights = raw.astype(np.float64) if attribute(gemm, "transB", 0) else raw.astype(np.float64).T
    weights = weights * float(attribute(gemm, "alpha", 1.0))
    n = weights.shape[0]
    biases = np.zeros(n) if bias is None else np.broadcast_to(bias.astype(np.float64).reshape(-1)
                                                              * float(attribute(gemm, "beta", 1.0)), (n,))
    row = sum(c * weights[j] for j, c in router.coefficients.items())
    return np.asarray(row, dtype=np.float32), float(sum(c * biases[j] for j, c in router.coefficients.items())
                                                    + router.offset)


def lower_comparison(b: IntegerGraphBuilder, node: ir.Node) -> None:
    router = b.routers.get(node)
    if router is None:
        raise UnsupportedModelError(f"{node.op_type} node '{node.name}' is not a router edgec can lower",
                                    ROUTER_FIX)
    row, bias = _router_row(router)
    pooling = _pooling(router.scores) if router.scores in b.absorbed else None
    if pooling is None:
        x, positions = b.value_in_layout(router.scores.inputs[0], channels_last=False), 1
    else:
        x = b.value_in_layout(pooling.inputs[0], channels_last=True)
        positions = int(np.prod(x.shape.numpy()[1:-1]))
    unit = b.qparams_of(x).scale / positions  # the scale of one count of the summed input
    scales = bias_safe_scales(weight_scales(row[None, :], 0, INT8_WEIGHTS), np.array([bias]), unit)
    weights = quantize_weights(row[None, :], scales, 0, INT8_WEIGHTS)
    cond = b.emit("Router", [x, b.constant(f"{node.name}_weights", weights, channel_scales=(scales, 0),
                                           int_type=INT8_WEIGHTS),
                             b.constant(f"{node.name}_bias", quantize_bias(np.array([bias]), unit, scales),
                                        int_type=INT32)],
                  {"input_zero_point": b.qparams_of(x).zero_point, "strict": int(router.strict)}, shape=[],
                  name=node.outputs[0].name, qparams=None, dtype=ir.DataType.BOOL, node_name=router.scores.name)
    b.bind(node.outputs[0], cond, channels_last=False)


def lower_if(b: IntegerGraphBuilder, node: ir.Node) -> None:
    cond = b.lookup(node.inputs[0])[0]
    producer = cond.producer()
    if producer is None or producer.op_type != "Router" or producer.domain != ops.DOMAIN:
        raise UnsupportedModelError(f"the condition of If node '{node.name}' is not a router", ROUTER_FIX)
    targets = [b.desired_qparams(out) for out in node.outputs]
    lowered = {name: b.lower_branch(branch, targets) for name, branch in zip(BRANCHES, branches(node), strict=True)}
    result = ir.node("If", [cond], lowered, num_outputs=len(node.outputs),
                     name=b.unique_name(f"{producer.name}_if", b.node_names))
    for out_f, out, q in zip(node.outputs, result.outputs, targets, strict=True):
        b.name_output(out, out_f, q)
        b.bind(out_f, out, channels_last=False)
    b.nodes.append(result)


CONTROL_LOWERINGS = {**dict.fromkeys(COMPARISONS, lower_comparison), "If": lower_if}
