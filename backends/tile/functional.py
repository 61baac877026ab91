"""The tile simulator's functional model: the integer graph run tile by tile, block by block,
exactly as a :class:`~.mapping.NetworkMapping` cuts it.

Each layer's output is assembled from its tiles' blocks: for every block, the slices of the
inputs it reads (:func:`.regions.input_slices`) go through the reference kernel of the layer's
operator with the block's attributes (:func:`.regions.region_attributes`), and the result is
written into the block's place of the output. A block whose reduction is cut computes its
exact accumulators only (:func:`edgec.reference.conv.conv_accumulators`); the tile sums them
into its int32 partial sums and requantizes once the last part is in. Nothing is computed on
the whole tensor except a ``Reshape`` (a view) and the layers the mapping runs whole.

Invariant: the result equals the integer reference executor's, bit for bit (the reference
kernels are exact, and :mod:`.regions` states why a block of a layer is the layer on the
block's inputs); ``edgec run OUT --check`` and the tests compare them.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.api import int8_output_names
from edgec.backends.tile.mapping import LayerMapping, NetworkMapping
from edgec.backends.tile.regions import Region, input_slices, region_attributes
from edgec.fixedpoint import operator_rounding
from edgec.passes.input_layout import int8_input
from edgec.reference import KERNELS
from edgec.reference.conv import conv_accumulators, finish, fully_connected_accumulators

_ACCUMULATORS = {"Conv": conv_accumulators, "FullyConnected": fully_connected_accumulators}


def _output_index(layer, region: Region) -> tuple:
    index = [slice(None)] * len(layer.output_shape)
    if region.rows is not None:
        index[layer.row_axis] = slice(*region.rows)
    if region.channels is not None:
        index[layer.channel_axis] = slice(*region.channels)
    return tuple(index)


def _run_layer(mapping: LayerMapping, values: dict[str, np.ndarray], rounding: str) -> np.ndarray:
    layer = mapping.layer
    arrays = [values[v.name] if v is not None else None for v in layer.node.inputs]
    rounding = operator_rounding(rounding, layer.op)
    if not mapping.shares:  # a view
        return KERNELS[layer.op](layer.attrs, rounding, *arrays)
    output = np.zeros(layer.output_shape, dtype=np.int8)
    for share in mapping.shares:
        partial: dict[tuple, np.ndarray] = {}
        for block in share.blocks:
            region = block.region
            attrs = region_attributes(layer, region)
            args = [a[index] if a is not None else None for a, index in zip(arrays, input_slices(layer, region))]
            where = _output_index(layer, region)
            if region.reduction is None:
                output[where] = KERNELS[layer.op](attrs, rounding, *args)
                continue
            key = (region.rows, region.channels)
            acc = _ACCUMULATORS[layer.op](attrs, args[0], args[1])
            partial[key] = acc if key not in partial else partial[key] + acc
            if region.reduction[1] == layer.reduction_channels:
                bias = args[2] if len(args) > 2 else None
                output[where] = finish(partial.pop(key), bias, attrs, rounding)
    return output


def run_tiled(model: ir.Model, mapping: NetworkMapping, row: np.ndarray,
              trace: bool = False) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """The int8 output of one input ``row`` (the accelerator's input flattened) and, with
    ``trace``, ``(layer index, output)`` per layer in order."""
    graph = model.graph
    first = int8_input(graph.inputs[0])
    values = {v.name: v.const_value.numpy() for v in graph.initializers.values() if v.const_value is not None}
    values[first.name] = np.asarray(row, dtype=np.int8).reshape(tuple(int(d) for d in first.shape.numpy()))
    rounding = model.metadata_props.get(ops.ROUNDING_KEY, "double")
    recorded = []
    for layer_mapping in mapping.layers:
        result = _run_layer(layer_mapping, values, rounding)
        values[layer_mapping.layer.output] = result
        if trace:
            recorded.append((layer_mapping.layer.index, result))
    return values[int8_output_names(model)[0]].reshape(-1), recorded
