"""FuseActivationsPass: fold integer ``Clamp`` nodes into the operator that feeds them.

The quantizer lowers Relu/Clip to ``edgec::Clamp`` and gives the producing operator the
activation's quantization, so the clamp is the only thing left of the activation.

1. ``Clamp(y)`` where ``y`` comes from an operator with an activation range
   (:data:`edgec.ops.CLAMPABLE`), directly or through zero-copy ``Reshape`` nodes, every
   value on the way read by nothing else: the operator's ``[activation_min,
   activation_max]`` is intersected with ``[min, max]`` and the Clamp is removed.
2. A ``Clamp`` whose bounds are its input type's whole range is removed (it clamps nothing).

In both cases the Clamp's input takes over the Clamp output's name and float-tensor tag
(:data:`edgec.ops.SOURCE_KEY`): it now holds the activation's result.

Branches (``If`` subgraphs) are walked like the main graph.

Invariant: outputs are bit-identical before and after (clamping is elementwise, so it
commutes with reshapes, and clamping twice equals clamping once to the intersection).
"""

from __future__ import annotations

import onnx_ir as ir

from edgec import ops
from edgec.control_flow import all_nodes
from edgec.passes.graph_utils import attribute, replace_value, sole_consumer
from edgec.passes.qparams import int_type_of


def _set_int(node: ir.Node, name: str, value: int) -> None:
    node.attributes[name] = ir.AttrInt64(name, int(value))


def _clampable_producer(value: ir.Value, reader: ir.Node) -> ir.Node | None:
    """The CLAMPABLE node whose result reaches ``reader`` through ``value`` and reshapes only."""
    while sole_consumer(value) is reader:
        producer = value.producer()
        if producer is None or producer.domain != ops.DOMAIN:
            return None
        if producer.op_type in ops.CLAMPABLE:
            return producer
        if producer.op_type != "Reshape":
            return None
        value, reader = producer.inputs[0], producer
    return None


class FuseActivationsPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for clamp in list(all_nodes(model.graph)):
            if clamp.domain != ops.DOMAIN or clamp.op_type != "Clamp":
                continue
            low, high = int(attribute(clamp, "min", -128)), int(attribute(clamp, "max", 127))
            source, result = clamp.inputs[0], clamp.outputs[0]
            producer = _clampable_producer(source, clamp)
            if producer is not None:
                _set_int(producer, "activation_min", max(low, int(attribute(producer, "activation_min", -128))))
                _set_int(producer, "activation_max", min(high, int(attribute(producer, "activation_max", 127))))
            elif (low, high) != (int_type_of(source).min, int_type_of(source).max) or source.is_graph_input():
                continue
            name, tags = result.name, {k: result.metadata_props.get(k) for k in (ops.SOURCE_KEY, ops.LAYOUT_KEY)}
            replace_value(result, source)
            clamp.graph.remove(clamp, safe=True)
            if not source.is_graph_output():
                source.name = name
                for key, tag in tags.items():
                    source.metadata_props.pop(key, None)
                    if tag is not None:
                        source.metadata_props[key] = tag
            modified = True
        return ir.passes.PassResult(model, modified)
