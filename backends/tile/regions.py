"""Which part of each input a block of a layer's output reads, and the attributes that compute
exactly that block.

A :class:`Region` is a block of a layer's output: a range of rows (along the layer's
``row_axis``), a range of channels (``channel_axis``) and, for ``"array"`` layers, a range of
input channels of the reduction (a partial sum: the block's accumulators before the bias and
the requantization). :func:`input_slices` gives, for every input of the node (constants
included), the index tuple of the part the region reads; :func:`region_attributes` the node's
attributes for the sliced problem (window padding at the cut edges, per-channel multipliers).

Invariant (what the functional model relies on, :mod:`.functional`): running the reference
kernel on the sliced inputs with the region's attributes gives exactly the region of the
whole layer's output. For windows this holds because a cut's padding is the part of the
original padding that falls inside the cut, and a window reads only its own rows.
"""

from __future__ import annotations

import dataclasses
import math

from edgec.backends.tile.layers import TileLayer

Range = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Region:
    """A block of a layer's output (see the module docstring); ``None`` ranges are whole axes."""

    rows: Range | None = None
    channels: Range | None = None
    reduction: Range | None = None


def _whole(shape) -> list[slice]:
    return [slice(None)] * len(shape)


def _window_rows(layer: TileLayer, rows: Range) -> tuple[slice, int, int]:
    """Input rows a window layer reads for output ``rows`` and the padding left at each cut."""
    attrs = layer.attrs
    height = layer.input_shapes[0][1]
    kernel = layer.node.inputs[1].shape[1] if layer.op in ("Conv", "DepthwiseConv") else attrs["kernel_shape"][0]
    stride, top = int(attrs["strides"][0]), int(attrs["pads"][0])
    dilation = int(attrs.get("dilations", [1, 1])[0])
    start = rows[0] * stride - top
    end = (rows[1] - 1) * stride - top + dilation * (int(kernel) - 1) + 1
    return slice(max(0, start), min(height, end)), max(0, -start), max(0, end - height)


def _broadcast_slice(layer: TileLayer, shape, region: Region) -> tuple:
    """The slice of an elementwise operand of ``shape`` (broadcast to the output's) for ``region``."""
    out = layer.output_shape
    index = _whole(shape)
    offset = len(out) - len(shape)
    for axis, span in ((layer.row_axis, region.rows), (layer.channel_axis, region.channels)):
        if axis is None or span is None or axis < offset:
            continue
        if shape[axis - offset] == out[axis]:
            index[axis - offset] = slice(*span)
    return tuple(index)


def input_slices(layer: TileLayer, region: Region) -> list[tuple | None]:
    """Per node input (``None`` for an absent optional one): the index tuple ``region`` reads."""
    op, node = layer.op, layer.node
    shapes = [tuple(int(d) for d in v.shape.numpy()) if v is not None else None for v in node.inputs]
    slices: list[tuple | None] = [tuple(_whole(s)) if s is not None else None for s in shapes]
    rows, channels, reduction = region.rows, region.channels, region.reduction
    if op in ("Conv", "DepthwiseConv", "AveragePool", "MaxPool"):
        x = _whole(shapes[0])
        if rows is not None:
            x[1] = _window_rows(layer, rows)[0]
        if op == "Conv":
            weight = _whole(shapes[1])
            if channels is not None:
                weight[0] = slice(*channels)
            if reduction is not None:
                x[3] = weight[3] = slice(*reduction)
            slices[1] = tuple(weight)
        elif channels is not None:
            x[3] = slice(*channels)
            if op == "DepthwiseConv":
                slices[1] = (slice(None), slice(None), slice(None), slice(*channels))
        slices[0] = tuple(x)
        if len(shapes) > 2 and shapes[2] is not None and channels is not None:
            slices[2] = (slice(*channels),)
        return slices
    if op == "FullyConnected":
        x = _whole(shapes[0])
        if rows is not None:
            x[layer.row_axis] = slice(*rows)
        if reduction is not None:
            x[-1] = slice(*reduction)
        slices[0] = tuple(x)
        weight = [slice(*channels) if channels is not None else slice(None),
                  slice(*reduction) if reduction is not None else slice(None)]
        slices[1] = tuple(weight)
        if len(shapes) > 2 and shapes[2] is not None and channels is not None:
            slices[2] = (slice(*channels),)
        return slices
    if op in ("Pad", "Slice", "Resize", "Reshape"):
        return slices
    if op == "Table":  # the table is read whole by every region
        slices[0] = _broadcast_slice(layer, shapes[0], region)
        return slices
    if op == "Transpose":  # output axis a is input axis perm[a]
        x = _whole(shapes[0])
        for axis, span in ((layer.row_axis, rows), (layer.channel_axis, channels)):
            if axis is not None and span is not None:
                x[int(layer.attrs["perm"][axis])] = slice(*span)
        slices[0] = tuple(x)
        return slices
    if op == "Mean":
        if channels is not None:
            x = _whole(shapes[0])
            x[-1] = slice(*channels)
            slices[0] = tuple(x)
        return slices
    if op in ("Softmax", "Concat"):
        for i, shape in enumerate(shapes):
            index = _whole(shape)
            for axis, span in ((layer.row_axis, rows), (layer.channel_axis, channels)):
                if axis is not None and span is not None:
                    index[axis] = slice(*span)
            slices[i] = tuple(index)
        return slices
    return [_broadcast_slice(layer, s, region) if s is not None else None for s in shapes]


def region_attributes(layer: TileLayer, region: Region) -> dict:
    """The node's attributes for computing ``region`` alone (see the module docstring)."""
    attrs = dict(layer.attrs)
    if layer.op in ("Conv", "DepthwiseConv", "AveragePool", "MaxPool") and region.rows is not None:
        _, top, bottom = _window_rows(layer, region.rows)
        attrs["pads"] = [top, attrs["pads"][1], bottom, attrs["pads"][3]]
    if region.channels is not None:
        for key in ("output_multiplier", "output_shift"):
            if isinstance(attrs.get(key), list) and len(attrs[key]) == layer.channels > 1:
                attrs[key] = attrs[key][slice(*region.channels)]
    return attrs


def slice_bytes(value, index: tuple) -> int:
    """Bytes of the slice ``index`` of node input ``value`` (int8 activations, constants in
    their own dtype)."""
    shape = tuple(int(d) for d in value.shape.numpy())
    count = math.prod(len(range(*i.indices(n))) for i, n in zip(index, shape))
    return count * (value.const_value.numpy().itemsize if value.const_value is not None else 1)


def read_bytes(layer: TileLayer, region: Region) -> tuple[int, int]:
    """``(activation bytes, parameter bytes)`` ``region`` reads: int8 inputs; weights, biases
    (4 bytes each) and per-channel requantization words (8 bytes per output channel)."""
    activations = parameters = 0
    for value, index in zip(layer.node.inputs, input_slices(layer, region)):
        if value is None:
            continue
        if value.const_value is None:
            activations += slice_bytes(value, index)
        else:
            parameters += slice_bytes(value, index)
    if layer.op in ("Conv", "DepthwiseConv", "FullyConnected") and (region.reduction is None or region.reduction[0] == 0):
        parameters += 8 * (region.channels[1] - region.channels[0] if region.channels else layer.channels)
    return activations, parameters


def output_bytes(layer: TileLayer, region: Region) -> int:
    """int8 bytes of the output block ``region`` (whatever its reduction range)."""
    total = layer.output_bytes
    if region.rows is not None:
        total = total // layer.rows * (region.rows[1] - region.rows[0])
    if region.channels is not None:
        total = total // layer.channels * (region.channels[1] - region.channels[0])
    return total
