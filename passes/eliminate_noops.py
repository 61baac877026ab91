"""EliminateNoOpsPass: remove nodes that do not change their input in inference.

1. ``Identity`` and ``Dropout`` (inference mode; an unused mask output) are removed.
2. ``Cast`` to the input's own element type is removed.
3. ``Reshape`` to the input's own (static) shape and ``Transpose`` with the identity
   permutation are removed.

Readers of a removed node's output read its input. Invariant: the graph's interface
(input and output names) is unchanged; a node whose removal would merge a graph input
into a graph output is kept.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec.control_flow import all_nodes
from edgec.passes.graph_utils import attribute, replace_value, static_shape


def _is_noop(node: ir.Node) -> bool:
    if node.domain != "" or not node.inputs or node.inputs[0] is None:
        return False
    source, result = node.inputs[0], node.outputs[0]
    if node.op_type == "Identity":
        return True
    if node.op_type == "Dropout":
        return all(not out.uses() and not out.is_graph_output() for out in node.outputs[1:])
    if node.op_type == "Cast":
        return source.dtype is not None and source.dtype == result.dtype
    if node.op_type == "Reshape":
        shape = static_shape(source)
        return shape is not None and shape == static_shape(result)
    if node.op_type == "Transpose":
        perm = attribute(node, "perm")
        return perm is not None and list(perm) == sorted(perm)
    return False


class EliminateNoOpsPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in list(all_nodes(model.graph)):
            if not _is_noop(node):
                continue
            source, result = node.inputs[0], node.outputs[0]
            if result.is_graph_output() and (source.is_graph_input() or source.is_graph_output()
                                             or source.is_initializer()):
                continue
            replace_value(result, source)
            node.graph.remove(node, safe=True)
            modified = True
        return ir.passes.PassResult(model, modified)
