"""Small helpers shared by the passes for reading and rewriting ``onnx_ir`` graphs."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.control_flow import all_nodes


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """The constant behind ``value`` (an initializer or folded constant), or ``None``."""
    if value is None or value.const_value is None:
        return None
    return value.const_value.numpy()


def attribute(node: ir.Node, name: str, default=None):
    """The Python value of attribute ``name`` of ``node`` (lists for repeated fields)."""
    attr = node.attributes.get(name)
    if attr is None:
        return default
    value = attr.value
    return list(value) if isinstance(value, tuple | list) else value


def add_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    """Register ``array`` as a new initializer of ``graph`` under a name not yet taken."""
    taken = {v.name for v in graph.initializers.values()} | {
        out.name for node in all_nodes(graph) for out in node.outputs
    } | {v.name for v in graph.inputs}
    unique, counter = name, 1
    while unique in taken:
        unique, counter = f"{name}_{counter}", counter + 1
    data = np.ascontiguousarray(array).reshape(np.shape(array))  # ascontiguousarray makes 0-d arrays 1-d
    tensor = ir.tensor(data, name=unique)
    value = ir.Value(name=unique, shape=ir.Shape(data.shape), type=ir.TensorType(tensor.dtype),
                     const_value=tensor)
    graph.register_initializer(value)
    return value


def replace_value(old: ir.Value, new: ir.Value) -> None:
    """Make every user of ``old`` (nodes and graph outputs) use ``new`` instead.

    When ``old`` is a graph output, ``new`` takes over its name so the model's interface
    is unchanged (``new`` must not itself be a graph input or output then).
    """
    if old.is_graph_output():
        name = old.name
        old.replace_all_uses_with(new, replace_graph_outputs=True)
        old.name = None
        new.name = name
    else:
        old.replace_all_uses_with(new)


def sole_consumer(value: ir.Value) -> ir.Node | None:
    """The only node reading ``value``, or ``None`` when it has several readers or is a graph output."""
    consumers = value.consumers()
    if len(consumers) != 1 or value.is_graph_output():
        return None
    return consumers[0]


def static_shape(value: ir.Value) -> tuple[int, ...] | None:
    """The shape of ``value`` as a tuple of ints, or ``None`` if unknown or symbolic."""
    if value.shape is None or not value.shape.is_static():
        return None
    return tuple(int(d) for d in value.shape.numpy())
