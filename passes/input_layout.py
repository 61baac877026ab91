"""InputLayoutPass: give an integer graph's input the layout the application has its data in.

An ONNX model takes channels-first input (NCHW, NCW), which the integer graph transposes to
the kernels' channels-last layout (NHWC, NWC) before its first convolution; a TFLite model
takes NHWC. ``InputLayoutPass("nhwc")`` makes every 3-D and 4-D graph input channels-last
(``"nchw"``: channels-first), so data that is already in that layout needs no transpose:

1. The graph input (and its ``Quantize``, which is elementwise) take the permuted shape; the
   int8 input value records its layout as ``metadata_props['edgec.layout']``.
2. A consumer that only converted the input to the new layout (a ``Transpose`` by the same
   permutation, or a ``Reshape`` to the new shape when the permutation keeps the data order)
   disappears: its readers read the input directly.
3. Every other consumer reads one new ``Transpose`` (or zero-copy ``Reshape``) back to the old
   layout, so the graph computes the same numbers for the permuted data: outputs on
   ``x.transpose(channels_last_perm)`` equal the original graph's outputs on ``x``, bit for bit.

An input already in the requested layout is left alone; a graph none of whose inputs has a
channel axis (rank 3 or 4) is an error, naming the input.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec import ops
from edgec.errors import UnsupportedModelError
from edgec.frontend.tflite_frontend import TFLITE_TENSOR_KEY
from edgec.passes.integer_builder import channels_first_perm, channels_last_perm
from edgec.passes.normalize_reshapes import keeps_data_order
from edgec.passes.qparams import get_qparams, set_qparams

LAYOUTS = ("nchw", "nhwc")
_NAMES = {("nchw", 4): "NCHW", ("nhwc", 4): "NHWC", ("nchw", 3): "NCW", ("nhwc", 3): "NWC"}


def int8_input(graph_input: ir.Value) -> ir.Value:
    """The int8 value holding ``graph_input``: the output of its ``Quantize``, or the input itself."""
    quantize = next((n for n in graph_input.consumers() if n.op_type == "Quantize"), None)
    return graph_input if quantize is None else quantize.outputs[0]


def input_layout(value: ir.Value) -> str | None:
    """``"nhwc"`` or ``"nchw"`` for the int8 input ``value`` (see :func:`int8_input`), or ``None``.

    The recorded ``edgec.layout`` if any; else ``"nhwc"`` for a 4-D TFLite input and
    ``"nchw"`` for a 3-D or 4-D input of an ONNX model; ``None`` for other ranks.
    """
    rank = len(value.shape)
    recorded = value.metadata_props.get(ops.LAYOUT_KEY)
    if recorded in LAYOUTS:
        return recorded
    if TFLITE_TENSOR_KEY in value.metadata_props:
        return "nhwc" if rank == 4 else None
    return "nchw" if rank in (3, 4) else None


def layout_name(layout: str | None, rank: int) -> str | None:
    """``"NHWC"``, ``"NCHW"``, ``"NWC"`` or ``"NCW"``; ``None`` when there is no channel layout."""
    return _NAMES.get((layout, rank))


def _is_conversion(node: ir.Node, perm: list[int], old_shape: list[int], new_shape: list[int]) -> bool:
    """True when ``node`` does nothing but permute its input by ``perm`` (case 2)."""
    if node.op_type == "Transpose":
        return [int(p) for p in node.attributes["perm"].value] == perm
    if node.op_type == "Reshape":
        return [int(d) for d in node.outputs[0].shape.numpy()] == new_shape and keeps_data_order(old_shape, perm)
    return False


def _unused_name(graph: ir.Graph, base: str) -> str:
    names = {v.name for v in graph.inputs} | {v.name for node in graph for v in node.outputs}
    name, counter = base, 1
    while name in names:
        name, counter = f"{base}_{counter}", counter + 1
    return name


def _permute_node(value: ir.Value, perm: list[int], shape: list[int], name: str) -> ir.Node:
    """A node giving ``value`` (of ``shape``) permuted by ``perm``: Reshape when the order is kept."""
    new_shape = [shape[p] for p in perm]
    if keeps_data_order(tuple(shape), perm):
        node = ir.node("Reshape", [value], {"shape": new_shape}, domain=ops.DOMAIN, name=name)
    else:
        node = ir.node("Transpose", [value], {"perm": perm}, domain=ops.DOMAIN, name=name)
    out = node.outputs[0]
    out.name, out.shape, out.type = name, ir.Shape(new_shape), ir.TensorType(value.dtype)
    set_qparams(out, get_qparams(value))
    return node


class InputLayoutPass(ir.passes.FunctionalPass):
    """See the module docstring. Returns a copy: the model passed in is not modified."""

    def __init__(self, layout: str) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise UnsupportedModelError(f"unknown input layout '{layout}'", f"use one of {list(LAYOUTS)}")
        self.layout = layout

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        inputs = [(v, int8_input(v)) for v in model.graph.inputs]
        with_layout = [(g, value) for g, value in inputs if input_layout(value) is not None]
        if not with_layout:
            graph_input = model.graph.inputs[0]
            raise UnsupportedModelError(
                f"input layout '{self.layout}' was asked for, but input '{graph_input.name}' has shape "
                f"{list(graph_input.shape)}, without channel and spatial axes",
                "omit --input-layout: it applies to 3-D and 4-D (image or signal) inputs")
        to_change = [g.name for g, value in with_layout if input_layout(value) != self.layout]
        model = ir.from_proto(ir.to_proto(model))
        for graph_input in model.graph.inputs:
            if graph_input.name in to_change:
                self._relayout(model.graph, graph_input)
        return ir.passes.PassResult(model, modified=bool(to_change))

    def _relayout(self, graph: ir.Graph, graph_input: ir.Value) -> None:
        value = int8_input(graph_input)
        old_layout, rank = input_layout(value), len(value.shape)
        old_shape = [int(d) for d in value.shape.numpy()]
        perm = channels_last_perm(rank) if self.layout == "nhwc" else channels_first_perm(rank)
        back = channels_first_perm(rank) if self.layout == "nhwc" else channels_last_perm(rank)
        new_shape = [old_shape[p] for p in perm]
        uses = list(value.uses())
        conversions = [use.node for use in uses if _is_conversion(use.node, perm, old_shape, new_shape)]
        others = [use for use in uses if use.node not in conversions]
        graph_input.shape = ir.Shape(new_shape)
        value.shape = ir.Shape(new_shape)
        value.metadata_props[ops.LAYOUT_KEY] = self.layout
        if others:
            restore = _permute_node(value, back, new_shape, _unused_name(graph, f"{value.name}_{old_layout}"))
            for use in others:
                use.node.replace_input_with(use.idx, restore.outputs[0])
            producer = value.producer()
            if producer is None:
                graph.insert_before(next(iter(graph)), restore)
            else:
                graph.insert_after(producer, restore)
        for node in conversions:
            node.outputs[0].replace_all_uses_with(value, replace_graph_outputs=True)
            graph.remove(node, safe=True)
