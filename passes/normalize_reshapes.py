"""NormalizeReshapesPass: one spelling for every change of shape.

1. ``Flatten``, ``Squeeze`` and ``Unsqueeze`` with a static output shape become
   ``Reshape`` to that shape.
2. A ``Reshape`` whose target contains ``0`` or ``-1`` gets its static output shape spelled out.
3. A ``Transpose`` that only moves axes of size 1 (the data order is unchanged: the
   NHWC<->NCHW transposes around a 1x1 feature map that TFLite conversions leave) becomes
   a ``Reshape``.
4. ``Reshape(Reshape(x))``, the inner one read only by the outer, becomes ``Reshape(x)``.
5. ``Transpose(Transpose(x))``, the inner one read only by the outer, becomes one
   ``Transpose`` with the composed permutation.

Requires static shapes (shape inference first). Invariant: float semantics unchanged.
Run it to a fixed point together with :class:`EliminateNoOpsPass`, which removes the
identity reshapes and transposes this pass creates.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.control_flow import all_nodes
from edgec.passes.graph_utils import add_initializer, attribute, const_array, replace_value, sole_consumer, static_shape

_SHAPE_OPS = ("Flatten", "Squeeze", "Unsqueeze", "Reshape")


def keeps_data_order(shape: tuple[int, ...], perm: list[int]) -> bool:
    """True when transposing ``shape`` by ``perm`` leaves the elements in memory order."""
    before = [axis for axis in range(len(shape)) if shape[axis] != 1]
    after = [axis for axis in perm if shape[axis] != 1]
    return before == after


class NormalizeReshapesPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self._main = model.graph  # new initializers go to the main graph, whatever branch the node is in
        modified = False
        for node in list(all_nodes(model.graph)):
            if node.domain != "" or node.graph is None:
                continue
            if node.op_type in _SHAPE_OPS:
                modified |= self._to_explicit_reshape(node.graph, node)
            elif node.op_type == "Transpose":
                modified |= self._transpose(node.graph, node)
        return ir.passes.PassResult(model, modified)

    @staticmethod
    def _replace(graph: ir.Graph, node: ir.Node, source: ir.Value, op_type: str, attrs: dict,
                 extra_inputs: tuple = ()) -> None:
        new = ir.node(op_type, [source, *extra_inputs], attrs, name=node.name)
        graph.insert_before(node, new)
        new.outputs[0].shape = node.outputs[0].shape
        new.outputs[0].type = node.outputs[0].type
        replace_value(node.outputs[0], new.outputs[0])
        if not new.outputs[0].name:
            new.outputs[0].name = node.outputs[0].name
        graph.remove(node, safe=True)

    def _to_explicit_reshape(self, graph: ir.Graph, node: ir.Node) -> bool:
        shape = static_shape(node.outputs[0])
        if shape is None:
            return False
        source = node.inputs[0]
        inner = source.producer()
        if inner is not None and inner.op_type == "Reshape" and inner.domain == "" and sole_consumer(source) is node:
            source = inner.inputs[0]
        elif node.op_type == "Reshape" and list(const_array(node.inputs[1]) if const_array(node.inputs[1]) is not None else []) == list(shape):
            return False
        target = add_initializer(self._main, f"{node.name or 'reshape'}_shape", np.array(shape, dtype=np.int64))
        self._replace(graph, node, source, "Reshape", {}, (target,))
        if inner is not None and not inner.outputs[0].uses() and not inner.outputs[0].is_graph_output():
            graph.remove(inner, safe=True)
        return True

    def _transpose(self, graph: ir.Graph, node: ir.Node) -> bool:
        perm = attribute(node, "perm")
        in_shape = static_shape(node.inputs[0])
        if perm is None or in_shape is None:
            return False
        if keeps_data_order(in_shape, perm):
            target = add_initializer(self._main, f"{node.name or 'transpose'}_shape",
                                     np.array([in_shape[p] for p in perm], dtype=np.int64))
            self._replace(graph, node, node.inputs[0], "Reshape", {}, (target,))
            return True
        inner = node.inputs[0].producer()
        if inner is None or inner.op_type != "Transpose" or inner.domain != "" or sole_consumer(node.inputs[0]) is not node:
            return False
        inner_perm = attribute(inner, "perm")
        composed = [inner_perm[p] for p in perm]
        self._replace(graph, node, inner.inputs[0], "Transpose", {"perm": composed})
        graph.remove(inner, safe=True)
        return True
