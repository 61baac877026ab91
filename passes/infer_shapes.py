"""InferShapesPass: onnx's shape inference, with failures reported instead of ignored.

Runs ``onnx.shape_inference`` (strict mode, data propagation) on the serialized model and
copies the inferred types and shapes onto the model's values, by name. An
inconsistent model (declared and inferred shapes disagree, an operator's type constraints
are violated) is an :class:`~edgec.errors.ModelLoadError` with onnx's first message, where
onnx_ir's own pass would log a warning and leave shapes unknown.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir

from edgec.control_flow import all_nodes
from edgec.errors import ModelLoadError


class InferShapesPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        proto = ir.to_proto(model)
        try:
            inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            detail = next((line for line in lines if "Error" in line), lines[0] if lines else "unknown error")
            raise ModelLoadError(f"the model's shapes are inconsistent: {detail}",
                                 "re-export the model; check the shapes it declares") from None
        found = {}
        for graph in _graphs(inferred.graph):
            for value_info in (*graph.value_info, *graph.output):
                found[value_info.name] = ir.serde.deserialize_value_info_proto(value_info, None)
        modified = False
        for node in all_nodes(model.graph):
            for value in node.outputs:
                source = found.get(value.name)
                if source is None:
                    continue
                if source.shape is not None and value.shape != source.shape:
                    value.shape, modified = source.shape, True
                if source.dtype is not None and value.dtype != source.dtype:
                    value.dtype, modified = source.dtype, True
        return ir.passes.PassResult(model, modified)


def _graphs(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    """``graph`` and, recursively, the subgraphs of its nodes (``If`` branches)."""
    found = [graph]
    for node in graph.node:
        for attr in node.attribute:
            found += [g for sub in ([attr.g] if attr.HasField("g") else list(attr.graphs)) for g in _graphs(sub)]
    return found
