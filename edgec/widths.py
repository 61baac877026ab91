"""The width rules of an integer graph, checked in one place (:func:`check_widths`).

An integer graph is *width-consistent* when:

1. every integer value's type (:func:`edgec.passes.qparams.int_type_of`) fits its storage:
   an int8 tensor holds a type within [-128, 127], an int32 tensor any type of its range;
2. every initializer's values lie in its type (an int4n weight in [-7, 7]);
3. every operator that computes new values clamps them inside its output type: the
   ``activation_min``/``activation_max`` of the requantizing operators
   (:data:`REQUANTIZING`) and ``min``/``max`` of ``Quantize``; ``Softmax`` outputs int8;
4. every ``Table``'s entries lie in its output type;
5. every scale-preserving operator (:data:`SCALE_PRESERVING`) outputs a type that contains
   each of its inputs' types (it moves, selects or averages values, never makes new ones;
   its clamp, if any, only narrows), and ``Pad``'s value lies in that type.

On such a graph the saturation the reference executor applies after every node never
changes a value, so backends that realise widths only through the clamp attributes (the
Cortex-M C kernels) agree with the reference. The quantizer guarantees the rules
(:class:`passes.quantize.QuantizePass` checks them on its result); backends call
:func:`check_widths` on the graphs they are given.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.control_flow import all_nodes
from edgec.errors import UnsupportedModelError
from edgec.inttype import INT8, IntType, storage_type
from edgec.passes.graph_utils import attribute
from edgec.passes.qparams import int_type_of

#: Operators that requantize an accumulator or a rescaled input and clamp the result.
REQUANTIZING = frozenset({"Conv", "DepthwiseConv", "TransposeConv", "FullyConnected", "BatchMatMul", "Add", "Sub",
                          "Mul", "PRelu", "Mean", "Requantize"})
#: Operators whose results are values of their inputs (or averages of them), on the same scale.
SCALE_PRESERVING = frozenset({"MaxPool", "AveragePool", "Concat", "Pad", "Reshape", "Resize", "Slice", "Transpose",
                              "Clamp"})
#: The clamp attributes of ``Quantize``; every other clamping operator has ``activation_*``.
_QUANTIZE_BOUNDS = ("min", "max")
_ACTIVATION_BOUNDS = ("activation_min", "activation_max")


def _is_integer(value: ir.Value) -> bool:
    return value.dtype is not None and np.dtype(value.dtype.numpy()).kind in "iu"


def _span(int_type: IntType) -> str:
    return f"{int_type} [{int_type.min}, {int_type.max}]"


def _storage_problem(value: ir.Value) -> str | None:
    """Rule 1 for one value (a type name that does not parse included)."""
    storage = storage_type(value.dtype.numpy())
    try:
        int_type = int_type_of(value)
    except ValueError as error:
        return f"value '{value.name}' declares a bad integer type: {error}"
    if not storage.contains(int_type):
        return f"value '{value.name}' is declared {_span(int_type)}, which its {storage} storage cannot hold"
    return None


def _initializer_problem(value: ir.Value) -> str | None:
    """Rule 2 for one initializer."""
    if value.const_value is None:
        return None
    array, int_type = value.const_value.numpy(), int_type_of(value)
    if array.size and (int(array.min()) < int_type.min or int(array.max()) > int_type.max):
        return f"initializer '{value.name}' holds values outside its type {_span(int_type)}"
    return None


def _node_problem(node: ir.Node) -> str | None:
    """Rules 3 to 5 for one node (an ``If`` has its branches' outputs, checked there)."""
    out = node.outputs[0]
    if not _is_integer(out) or node.domain != ops.DOMAIN:
        return None
    what, out_type = f"node '{node.name}' ({node.op_type})", int_type_of(out)
    defaults = ops.OPS[node.op_type].attributes if node.op_type in ops.OPS else {}
    names = _QUANTIZE_BOUNDS if node.op_type == "Quantize" else _ACTIVATION_BOUNDS
    if node.op_type in REQUANTIZING or node.op_type == "Quantize":
        low, high = (int(attribute(node, name, defaults.get(name))) for name in names)
        if low < out_type.min or high > out_type.max:
            return f"{what} clamps to [{low}, {high}], outside its output type {_span(out_type)}"
    if node.op_type == "Table":
        source = node.inputs[1] if len(node.inputs) > 1 else None
        entries = source.const_value.numpy() if source is not None and source.const_value is not None else None
        if entries is None or entries.shape != (256,):
            return f"{what} has no constant 256-entry table"
        if int(entries.min()) < out_type.min or int(entries.max()) > out_type.max:
            return f"{what} has table entries outside its output type {_span(out_type)}"
    if node.op_type == "Softmax" and out_type != INT8:
        return f"{what} outputs {out_type}; softmax outputs int8"
    if node.op_type in SCALE_PRESERVING:
        for value in node.inputs:
            if value is not None and _is_integer(value) and not out_type.contains(int_type_of(value)):
                return f"{what} outputs {out_type}, which does not hold its input '{value.name}' of type " \
                       f"{int_type_of(value)}"
        value = int(attribute(node, "value", 0))
        if node.op_type == "Pad" and attribute(node, "mode", "constant") == "constant" and \
                not out_type.min <= value <= out_type.max:
            return f"{what} pads with {value}, outside its output type {_span(out_type)}"
    return None


def first_width_problem(model: ir.Model) -> str | None:
    """A sentence naming the first value or node breaking a rule of the module docstring, or
    ``None`` when the graph is width-consistent."""
    graph = model.graph
    values = [*graph.inputs, *graph.initializers.values(), *(out for node in all_nodes(graph) for out in node.outputs)]
    for value in values:
        problem = _storage_problem(value) if _is_integer(value) else None
        if problem is not None:
            return problem
    for value in graph.initializers.values():
        problem = _initializer_problem(value) if _is_integer(value) else None
        if problem is not None:
            return problem
    for node in all_nodes(graph):
        problem = _node_problem(node)
        if problem is not None:
            return problem
    return None


def check_widths(model: ir.Model) -> None:
    """Raise :class:`~edgec.errors.UnsupportedModelError` naming the first value or node of
    ``model`` that breaks a width rule (see the module docstring)."""
    problem = first_width_problem(model)
    if problem is not None:
        raise UnsupportedModelError(problem, "regenerate the integer graph with edgec quantize")


def require_int8_activations(model: ir.Model, backend: str) -> None:
    """Raise :class:`~edgec.errors.UnsupportedModelError` naming the first int16 activation of
    ``model`` (the 16x8 scheme), for ``backend`` (e.g. ``"the tile backend"``), whose kernels take
    int8 activations only."""
    graph = model.graph
    for value in [*graph.inputs, *(out for node in all_nodes(graph) for out in node.outputs)]:
        if value.dtype == ir.DataType.INT16:
            raise UnsupportedModelError(f"value '{value.name}' is an int16 activation (the 16x8 scheme), which "
                                        f"{backend} does not compile",
                                        "compile it for a Cortex-M target, or quantize with int8 activations")
