"""Runs an edgec integer graph node by node with the reference kernels.

After every node its integer result is saturated to the output's declared
:class:`~edgec.inttype.IntType` (:func:`edgec.passes.qparams.int_type_of`): that is what a
width means; it is then held in the output's storage dtype (int8, or int16 in the 16x8 scheme). A graph that passes :func:`edgec.widths.check_widths` never needs it (its
clamp attributes already keep every result in its type), which is why backends that
saturate only through those attributes agree with the reference.

An ``If`` runs its condition's branch (:mod:`edgec.control_flow`): the branch reads the
values computed so far, and its outputs become the ``If`` outputs; the other branch does not
run (``keep_intermediates`` returns the values of the branches taken only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.control_flow import branches, is_branching
from edgec.errors import InputDataError, UnsupportedModelError
from edgec.fixedpoint import operator_rounding
from edgec.inttype import IntType, storage_type
from edgec.passes.qparams import int_type_of
from edgec.reference import conv, elementwise, gather, layout, pooling, resize, softmax

Kernel = Callable[..., np.ndarray]

KERNELS: dict[str, Kernel] = {
    "Conv": conv.conv,
    "DepthwiseConv": conv.depthwise_conv,
    "FullyConnected": conv.fully_connected,
    "TransposeConv": conv.transpose_conv,
    "BatchMatMul": conv.batch_matmul,
    "Add": elementwise.add,
    "Sub": elementwise.sub,
    "Mul": elementwise.mul,
    "PRelu": elementwise.prelu,
    "Requantize": elementwise.requantize,
    "Clamp": elementwise.clamp,
    "Table": elementwise.table,
    "Quantize": elementwise.quantize,
    "Dequantize": elementwise.dequantize,
    "AveragePool": pooling.average_pool,
    "MaxPool": pooling.max_pool,
    "Mean": pooling.mean,
    "Softmax": softmax.softmax,
    "Concat": layout.concat,
    "Pad": layout.pad,
    "Reshape": layout.reshape,
    "Resize": resize.resize,
    "Slice": gather.slice_,
    "Transpose": layout.transpose,
    "Router": conv.router,
}


def node_attributes(node: ir.Node) -> dict:
    """The node's attributes as Python values, with the operator's defaults filled in.

    Raises :class:`UnsupportedModelError` for an unknown operator or a missing required
    attribute, naming the node.
    """
    spec = ops.OPS.get(node.op_type)
    if node.domain != ops.DOMAIN or spec is None:
        raise UnsupportedModelError(
            f"node '{node.name}' is {node.domain or 'ai.onnx'}::{node.op_type}, not an edgec integer operator",
            f"quantize the model first (edgec quantize); edgec operators are: {', '.join(sorted(ops.OPS))}",
        )
    values = {name: attr.value for name, attr in node.attributes.items()}
    attrs = {}
    for name, default in spec.attributes.items():
        if name in values:
            value = values[name]
            attrs[name] = list(value) if isinstance(value, tuple | list) else value
        elif default is None:
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op_type}) lacks its required attribute '{name}'",
                "regenerate the integer graph with edgec quantize",
            )
        else:
            attrs[name] = default
    return attrs


def declared_type(value: ir.Value) -> IntType | None:
    """The type an integer ``value`` is saturated to, or ``None`` when that is a no-op (a float
    value, or one with its storage's full type)."""
    dtype = value.dtype.numpy() if value.dtype is not None else None
    if dtype is None or np.dtype(dtype).kind not in "iu":
        return None
    try:
        int_type = int_type_of(value)
    except ValueError as error:
        raise UnsupportedModelError(f"value '{value.name}' declares a bad integer type: {error}",
                                    "regenerate the integer graph with edgec quantize") from None
    return None if int_type == storage_type(dtype) else int_type


def stored(result: np.ndarray, value: ir.Value) -> np.ndarray:
    """An integer ``result`` in ``value``'s storage dtype (kernels return the narrowest storage
    holding their clamp, :func:`edgec.reference.requant.activation_storage`); others as they are."""
    dtype = value.dtype.numpy() if value.dtype is not None else None
    if dtype is None or np.dtype(dtype).kind not in "iu" or result.dtype == dtype or result.dtype.kind not in "iu":
        return result
    return result.astype(dtype)


class ReferenceExecutor:
    """Executes an integer graph; construct once, run many inputs.

    Contract: ``run`` takes one array per graph input with exactly the input's shape. A
    float input whose only consumer is a ``Quantize`` may instead be given in that output's
    integer dtype (int8, int16), which is then bound to it (the quantized model input).
    """

    def __init__(self, model: ir.Model, rounding: str | None = None) -> None:
        self.model = model
        graph = model.graph
        self.rounding = rounding or model.metadata_props.get(ops.ROUNDING_KEY, "double")
        self._constants = {
            value.name: value.const_value.numpy() for value in graph.initializers.values()
            if value.const_value is not None
        }
        self._plan = self._plan_graph(graph)

    def _plan_graph(self, graph: ir.Graph) -> list[tuple]:
        """One step per node: ``(node, kernel, attrs, rounding, type)``, or for an ``If``
        ``(node, None, (then plan, else plan), None, None)``."""
        plan = []
        for node in graph:
            if is_branching(node):
                plan.append((node, None, tuple(self._plan_graph(b) for b in branches(node)), None, None))
            else:
                plan.append((node, KERNELS[node.op_type], node_attributes(node),
                             operator_rounding(self.rounding, node.op_type), declared_type(node.outputs[0])))
        return plan

    @property
    def input_names(self) -> list[str]:
        return [value.name for value in self.model.graph.inputs]

    @property
    def output_names(self) -> list[str]:
        return [value.name for value in self.model.graph.outputs]

    def _bind_inputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        bound: dict[str, np.ndarray] = {}
        for value in self.model.graph.inputs:
            if value.name not in inputs:
                raise InputDataError(
                    f"no data for model input '{value.name}'",
                    f"provide inputs named {self.input_names}",
                )
            array = np.asarray(inputs[value.name])
            expected = tuple(value.shape.numpy()) if value.shape is not None else array.shape
            if array.shape != expected:
                raise InputDataError(
                    f"input '{value.name}' has shape {list(array.shape)}, the model expects {list(expected)}",
                    "reshape the data to the model's input shape",
                )
            consumers = value.consumers()
            if array.dtype in (np.int8, np.int16) and value.dtype not in (ir.DataType.INT8, ir.DataType.INT16):
                quantized = consumers[0].outputs[0] if len(consumers) == 1 and consumers[0].op_type == "Quantize" else None
                if quantized is not None and quantized.dtype.numpy() == array.dtype:
                    bound[quantized.name] = array
                    continue
                raise InputDataError(f"input '{value.name}' is {value.dtype}, got {array.dtype} data", "pass float data")
            expected_dtype = value.dtype.numpy() if value.dtype is not None else array.dtype
            if array.dtype != expected_dtype:
                if not (np.issubdtype(array.dtype, np.floating) and np.issubdtype(expected_dtype, np.floating)):
                    raise InputDataError(
                        f"input '{value.name}' is {array.dtype}, the model expects {np.dtype(expected_dtype)}",
                        f"convert the data with .astype(np.{np.dtype(expected_dtype)})",
                    )
                array = array.astype(expected_dtype)
            bound[value.name] = array
        return bound

    def run(self, inputs: Mapping[str, np.ndarray], keep_intermediates: bool = False) -> dict[str, np.ndarray]:
        """Run the graph; returns the graph outputs (and every tensor if ``keep_intermediates``)."""
        values: dict[str, np.ndarray] = dict(self._constants)
        values.update(self._bind_inputs(inputs))
        self._run_plan(self._plan, values)
        if keep_intermediates:
            return {name: array for name, array in values.items() if name not in self._constants}
        return {name: values[name] for name in self.output_names}

    def _run_plan(self, plan: list[tuple], values: dict[str, np.ndarray]) -> None:
        for node, kernel, attrs, rounding, int_type in plan:
            if all(output.name in values for output in node.outputs):
                continue
            if kernel is None:
                choice = 0 if bool(np.asarray(values[node.inputs[0].name]).reshape(-1)[0]) else 1
                self._run_plan(attrs[choice], values)
                for out, result in zip(node.outputs, branches(node)[choice].outputs, strict=True):
                    values[out.name] = values[result.name]
                continue
            args = [values[v.name] if v is not None else None for v in node.inputs]
            result = kernel(attrs, rounding, *args)
            values[node.outputs[0].name] = stored(result if int_type is None else int_type.saturate(result),
                                                  node.outputs[0])
