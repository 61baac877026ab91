"""FuseActivationsPass: fold integer ``Clamp`` nodes into the operator that feeds them.

The quantizer lowers Relu/Clip to ``edgec::Clamp`` and gives the producing operator the
activation's quantization, so the clamp is the only thing left of the activation.

1. ``Clamp(y)`` where ``y`` is produced by an operator with an activation range
   (:data:`edgec.ops.CLAMPABLE`) and read by nothing else: the producer's
   ``[activation_min, activation_max]`` is intersected with ``[min, max]``, the Clamp is
   removed and the producer's output takes the Clamp output's name.
2. A ``Clamp`` whose bounds are ``[-128, 127]`` is removed (it clamps nothing).

Invariant: outputs are bit-identical before and after (clamping twice equals clamping
once to the intersection; the producer's output had no other reader).
"""

from __future__ import annotations

import onnx_ir as ir

from edgec import ops
from edgec.passes.graph_utils import attribute, replace_value, sole_consumer


def _set_int(node: ir.Node, name: str, value: int) -> None:
    node.attributes[name] = ir.AttrInt64(name, int(value))


class FuseActivationsPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for clamp in list(graph):
            if clamp.domain != ops.DOMAIN or clamp.op_type != "Clamp":
                continue
            low, high = int(attribute(clamp, "min", -128)), int(attribute(clamp, "max", 127))
            source, result = clamp.inputs[0], clamp.outputs[0]
            producer = source.producer()
            fusable = (producer is not None and producer.domain == ops.DOMAIN
                       and producer.op_type in ops.CLAMPABLE and sole_consumer(source) is clamp)
            if fusable:
                _set_int(producer, "activation_min", max(low, int(attribute(producer, "activation_min", -128))))
                _set_int(producer, "activation_max", min(high, int(attribute(producer, "activation_max", 127))))
            elif (low, high) != (-128, 127) or source.is_graph_input():
                continue
            name = result.name
            replace_value(result, source)
            graph.remove(clamp, safe=True)
            if fusable and not source.is_graph_output():
                source.name = name
                for key in (ops.SOURCE_KEY, ops.LAYOUT_KEY):
                    source.metadata_props.pop(key, None)
                    if key in result.metadata_props:
                        source.metadata_props[key] = result.metadata_props[key]
            modified = True
        return ir.passes.PassResult(model, modified)
