"""CheckStaticShapesPass: every tensor of the graph has a known type and static shape.

An analysis pass (it changes nothing): edgec plans memory and emits code ahead of time,
so a tensor whose shape depends on run-time data is an error naming that tensor and the
node producing it.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec.control_flow import all_nodes
from edgec.errors import UnsupportedModelError


class CheckStaticShapesPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        for node in all_nodes(model.graph):
            for value in node.outputs:
                if value.uses() or value.is_graph_output():
                    if value.shape is None or not value.shape.is_static() or value.dtype is None:
                        shape = "unknown" if value.shape is None else list(value.shape)
                        raise UnsupportedModelError(
                            f"tensor '{value.name}' (output of {node.op_type} node '{node.name}') "
                            f"has no static shape ({shape})",
                            "give static input shapes with --input-shape; data-dependent shapes are not supported",
                        )
        return ir.passes.PassResult(model, False)
