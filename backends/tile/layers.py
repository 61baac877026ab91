"""The integer graph as the tile accelerator sees it: a chain of layers, each with the shape of
its work and the axes along which it can be split across tiles.

Every node between the model's input ``Quantize`` and output ``Dequantize`` (which the host
does: the accelerator takes and returns int8 tensors in DRAM) is one :class:`TileLayer` of a
kind:

* ``"array"``: ``Conv`` and ``FullyConnected``, a matrix product on the tiles' systolic MAC
  arrays: ``positions`` output positions (rows of the product) by ``reduction`` (``kh·kw·Cin``
  or ``K``) by ``channels`` (output channels);
* ``"vector"``: every other operator with a kernel, on the tile's vector unit (as many lanes
  as the array has columns), ``work`` operations per output element (``kh·kw`` for a
  depthwise convolution or a pool, the reduced count for ``Mean``, 3 passes for ``Softmax``);
* ``"view"``: ``Reshape``, which moves nothing (the same bytes, read with another shape).

A layer's output may be split into row blocks along ``row_axis`` (the height of an NHWC
tensor, the rows of a matrix) and channel blocks along ``channel_axis`` (the last axis), or
not at all along an axis that is ``None`` (a softmax's reduced axis, a global mean's
positions). Control flow (``If``) and ``Router`` are not supported: the backend contract
refuses branching graphs before :func:`check_model` runs.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx_ir as ir

from edgec.backend import edge_nodes
from edgec.errors import UnsupportedModelError
from edgec.reference import KERNELS
from edgec.reference.conv import conv_groups
from edgec.reference.executor import node_attributes

ARRAY_OPS = frozenset({"Conv", "FullyConnected"})
VIEW_OPS = frozenset({"Reshape"})
#: Operators that run whole on one tile: their output has no axis a tile could own alone.
WHOLE_OPS = frozenset({"Pad", "Slice", "Resize"})
ELEMENTWISE_OPS = frozenset({"Add", "Sub", "Mul", "Requantize", "Clamp"})
WINDOW_OPS = frozenset({"DepthwiseConv", "AveragePool", "MaxPool"})
#: Passes over the data a quantized softmax makes (maximum, exponent sum, normalisation).
SOFTMAX_PASSES = 3


@dataclasses.dataclass(frozen=True)
class TileLayer:
    """One layer of the chain (see the module docstring). Byte counts are of int8 storage
    (weights of fewer bits included), int32 for biases; ``parameter_bytes`` are a layer's
    weights, bias and per-channel requantization words (multiplier and shift, 4 bytes each)."""

    index: int
    node: ir.Node
    kind: str
    output_shape: tuple[int, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    macs: int
    parameter_bytes: int
    row_axis: int | None
    channel_axis: int | None
    #: The node's attributes, defaults filled in (:func:`edgec.reference.executor.node_attributes`).
    attrs: dict = dataclasses.field(default_factory=dict, compare=False)
    #: ``"array"`` layers: the reduction (``kh·kw·Cin`` or ``K``) and the input channels it spans.
    reduction: int = 0
    reduction_channels: int = 0
    #: ``"vector"`` layers: operations per output element.
    work: int = 1

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def op(self) -> str:
        return self.node.op_type

    @property
    def output(self) -> str:
        return self.node.outputs[0].name

    @property
    def rows(self) -> int:
        """Row blocks the output can be cut into (1 when it has no row axis)."""
        return 1 if self.row_axis is None else self.output_shape[self.row_axis]

    @property
    def channels(self) -> int:
        """Channel blocks the output can be cut into (1 when it has no channel axis)."""
        return 1 if self.channel_axis is None else self.output_shape[self.channel_axis]

    @property
    def positions_per_row(self) -> int:
        """Output positions (elements of one channel) in one row block."""
        return math.prod(self.output_shape[:-1]) // self.rows if self.output_shape else 1

    @property
    def output_bytes(self) -> int:
        return math.prod(self.output_shape)

    @property
    def input_bytes(self) -> int:
        return sum(math.prod(shape) for shape in self.input_shapes)


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(int(d) for d in value.shape.numpy())


def check_model(model: ir.Model) -> None:
    """Raise :class:`UnsupportedModelError` for the first node the tile backend cannot take:
    a graph without exactly one input and one output, an operator it has no kernel for (or a
    ``Quantize``/``Dequantize`` away from the model's edges), or a value of unknown shape."""
    graph = model.graph
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedModelError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs",
                                    "the tile backend compiles models with one input and one output")
    edges = edge_nodes(model)
    for node in graph:
        if node in edges:
            continue
        if node.op_type in ("Quantize", "Dequantize", "Router") or node.op_type not in KERNELS:
            raise UnsupportedModelError(f"the tile backend has no kernel for {node.op_type} (node '{node.name}')",
                                        "Quantize/Dequantize are supported only at the model's input and output")
        for value in (*node.inputs, *node.outputs):
            if value is not None and (value.shape is None or not value.shape.is_static()):
                raise UnsupportedModelError(f"value '{value.name}' of node '{node.name}' has no static shape",
                                            "give the input's shape with --input-shape")


def _axes(op: str, out_shape: tuple[int, ...], attrs: dict) -> tuple[int | None, int | None]:
    """``(row_axis, channel_axis)`` of a layer's output (see the module docstring)."""
    rank = len(out_shape)
    last = rank - 1
    if op in WHOLE_OPS or rank == 0:
        return None, None
    if op == "Softmax":
        return (rank - 2 if rank >= 2 else None), None
    if op == "Mean":
        reduced = {int(a) % rank for a in attrs["axes"]}
        return None, (None if last in reduced or not attrs["keepdims"] else last)
    if op == "Concat":
        axis = int(attrs["axis"]) % rank
        rows = 1 if rank == 4 else (rank - 2 if rank >= 2 else None)
        return (rows if rows != axis else None), (last if axis != last else None)
    rows = 1 if rank == 4 else (rank - 2 if rank >= 2 else None)
    return rows, last


def _layer(index: int, node: ir.Node) -> TileLayer:
    attrs = node_attributes(node)
    op = node.op_type
    out_shape = _shape(node.outputs[0])
    in_shapes = tuple(_shape(v) for v in node.inputs if v is not None and v.const_value is None)
    params = sum(int(v.const_value.numpy().nbytes) for v in node.inputs if v is not None and v.const_value is not None)
    channels = out_shape[-1] if out_shape else 1
    if op in ARRAY_OPS or op in ("DepthwiseConv", "TransposeConv"):
        params += 8 * channels  # a multiplier and a shift per output channel
    row_axis, channel_axis = _axes(op, out_shape, attrs)
    elements = math.prod(out_shape)
    if op in VIEW_OPS:
        return TileLayer(index, node, "view", out_shape, in_shapes, 0, 0, None, None, attrs)
    if op == "DepthwiseConv" and int(attrs["depth_multiplier"]) != 1:
        channel_axis = None  # an output channel block would read a fraction of an input channel
    if op == "Conv":
        _, kh, kw, cin = _shape(node.inputs[1])
        if conv_groups(in_shapes[0][3], _shape(node.inputs[1])) > 1:
            # a grouped Conv is cut by rows only: a block of its channels or reduction would
            # straddle groups, so its whole reduction is one (uncut) channel
            return TileLayer(index, node, "array", out_shape, in_shapes, elements * kh * kw * cin, params, row_axis,
                             None, attrs, reduction=kh * kw * cin, reduction_channels=1)
        return TileLayer(index, node, "array", out_shape, in_shapes, elements * kh * kw * cin, params, row_axis,
                         channel_axis, attrs, reduction=kh * kw * cin, reduction_channels=cin)
    if op == "TransposeConv":  # one uncut block: an output row or channel block reads no simple input slice
        _, kh, kw, cin = _shape(node.inputs[1])
        return TileLayer(index, node, "array", out_shape, in_shapes, math.prod(in_shapes[0]) * kh * kw * channels,
                         params, None, None, attrs, reduction=kh * kw * cin, reduction_channels=1)
    if op == "BatchMatMul":  # one uncut block, as TransposeConv (a transposed operand has no row slice)
        a = _shape(node.inputs[0])
        depth = a[-2] if attrs["adj_x"] else a[-1]
        return TileLayer(index, node, "array", out_shape, in_shapes, elements * depth, params, None, None, attrs,
                         reduction=depth, reduction_channels=1)
    if op == "FullyConnected":
        _, k = _shape(node.inputs[1])
        return TileLayer(index, node, "array", out_shape, in_shapes, elements * k, params, row_axis, channel_axis,
                         attrs, reduction=k, reduction_channels=k)
    work = 1
    macs = 0
    if op in WINDOW_OPS:
        kernel = _shape(node.inputs[1])[1:3] if op == "DepthwiseConv" else attrs["kernel_shape"]
        work = int(np.prod(kernel))
        macs = elements * work if op == "DepthwiseConv" else 0
    elif op == "Mean":
        work = max(1, math.prod(in_shapes[0]) // max(1, elements))
    elif op == "Softmax":
        work = SOFTMAX_PASSES
    elif op in ELEMENTWISE_OPS:
        work = len(in_shapes)
    return TileLayer(index, node, "vector", out_shape, in_shapes, macs, params, row_axis, channel_axis, attrs,
                     work=work)


def plan_layers(model: ir.Model) -> list[TileLayer]:
    """The model's layers in execution order (:func:`check_model` first)."""
    check_model(model)
    edges = edge_nodes(model)
    nodes = [node for node in model.graph if node not in edges]
    return [_layer(index, node) for index, node in enumerate(nodes)]
