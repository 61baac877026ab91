"""Conversion of int8 TFLite data-movement operators to edgec operators.

RESHAPE, PAD/PADV2/MIRROR_PAD, CONCATENATION, SLICE, STRIDED_SLICE, SPLIT/SPLIT_V and
RESIZE_NEAREST_NEIGHBOR/RESIZE_BILINEAR. As in TFLM, none of them requantizes except
CONCATENATION (edgec brings each input to the output's quantization, a no-op for converter
output); the others copy or interpolate bytes on the input's scale. Slices follow TFLM's
``StridedSliceStartForAxis``/``EndForAxis``; a split is one ``Slice`` per output.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.passes.multipliers import requantize_attributes
from edgec.passes.qparams import get_qparams

_REFLECT, _SYMMETRIC = 0, 1


def _constant_ints(graph, index: int, what: str) -> list[int]:
    data = graph.constant(index)
    if data is None:
        raise graph.unsupported(f"{what} is computed at run time", f"make the {what} a constant tensor")
    return [int(v) for v in np.ravel(data)]


def reshape(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    graph.emit("Reshape", [graph.value(x)], {"shape": graph.shape(out)}, out)


def _paddings(graph, operator, name: str) -> np.ndarray:
    """The ``[rank, 2]`` (before, after) paddings of PAD, PADV2 or MIRROR_PAD (input 1)."""
    return np.asarray(_constant_ints(graph, int(operator.inputs[1]), f"{name} paddings")).reshape(-1, 2)


def _edgec_pads(widths: np.ndarray) -> list[int]:
    """edgec Pad's ``pads``: every axis's before, then every axis's after."""
    return [int(p) for p in widths[:, 0]] + [int(p) for p in widths[:, 1]]


def pad(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    widths = _paddings(graph, operator, "PAD")
    value = graph.qparams(out).zero_point
    if len(operator.inputs) > 2 and operator.inputs[2] >= 0:
        constant = graph.constant(int(operator.inputs[2]))
        value = int(np.ravel(constant)[0]) if constant is not None else value
    graph.emit("Pad", [graph.value(x)], {"pads": _edgec_pads(widths), "value": value}, out)


def mirror_pad(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    widths = _paddings(graph, operator, "MIRROR_PAD")
    mode = {_REFLECT: "reflect", _SYMMETRIC: "symmetric"}.get(operator.builtinOptions.mode)
    if mode is None:
        raise graph.corrupt(f"MIRROR_PAD has mode {operator.builtinOptions.mode} (TFLite knows REFLECT=0, SYMMETRIC=1)")
    shape = graph.shape(x)
    limit = 1 if mode == "reflect" else 0
    if np.any(widths < 0) or any(max(w) > size - limit for w, size in zip(widths.tolist(), shape)):
        raise graph.unsupported(f"MIRROR_PAD {mode.upper()} pads {widths.tolist()} exceed the input {shape}",
                                f"pad each side by at most the axis size{' - 1' if limit else ''}")
    graph.emit("Pad", [graph.value(x)], {"pads": _edgec_pads(widths), "mode": mode}, out)


def concatenation(graph, operator) -> None:
    out = int(operator.outputs[0])
    qo = graph.qparams(out)
    parts = []
    for position, index in enumerate(int(i) for i in operator.inputs):
        value = graph.value(index)
        q = get_qparams(value)
        if q is not None and q != qo:
            attrs = {**requantize_attributes(q, qo), **graph.full_range(out)}
            value = graph.emit_internal("Requantize", [value], attrs, qo, list(value.shape.numpy()),
                                        f"{value.name}_to_concat{position}")
        parts.append(value)
    rank = len(graph.shape(out))
    graph.emit("Concat", parts, {"axis": int(operator.builtinOptions.axis) % rank}, out)


def _emit_slice(graph, x: int, starts: list[int], sizes: list[int], steps: list[int], out: int) -> None:
    """A ``Slice`` of tensor ``x`` written to tensor ``out`` (through a Reshape when ``out`` drops
    the axes of size 1 the slice keeps)."""
    if min(sizes, default=1) < 1:
        raise graph.unsupported(f"the slice of {graph.shape(x)} is empty (sizes {sizes})",
                                "remove operators whose output has no elements")
    attrs = {"starts": starts, "sizes": sizes, "steps": steps}
    if sizes == graph.shape(out):
        graph.emit("Slice", [graph.value(x)], attrs, out)
        return
    if math.prod(sizes) != math.prod(graph.shape(out)):
        raise graph.corrupt(f"the slice {sizes} of {graph.shape(x)} does not fill the output {graph.shape(out)}")
    sliced = graph.emit_internal("Slice", [graph.value(x)], attrs, graph.qparams(x), sizes, f"{graph.name(out)}_slice")
    graph.emit("Reshape", [sliced], {"shape": graph.shape(out)}, out)


def slice_(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    shape = graph.shape(x)
    begin = _constant_ints(graph, int(operator.inputs[1]), "SLICE begin")
    size = _constant_ints(graph, int(operator.inputs[2]), "SLICE size")
    if len(begin) != len(shape) or len(size) != len(shape):
        raise graph.corrupt(f"SLICE begin {begin} and size {size} do not match the input rank {len(shape)}")
    sizes = [dim - b if s == -1 else s for b, s, dim in zip(begin, size, shape)]
    if any(b < 0 or s < 1 or b + s > dim for b, s, dim in zip(begin, sizes, shape)):
        raise graph.unsupported(f"SLICE begin {begin} size {size} leaves the input {shape}",
                                "slice inside the input")
    _emit_slice(graph, x, begin, sizes, [1] * len(shape), out)


def _strided_bounds(begin: int, end: int, stride: int, size: int, options, axis: int) -> tuple[int, int]:
    """TFLM's StridedSliceStartForAxis and StridedSliceEndForAxis for one axis."""
    clamp_low, clamp_high = (0, size) if stride > 0 else (-1, size - 1)
    start = begin + size if begin < 0 else begin
    start = min(max(start, clamp_low), clamp_high)
    if options.beginMask & (1 << axis):
        start = 0 if stride > 0 else size - 1
    if options.shrinkAxisMask & (1 << axis):
        return start, start if start >= size else start + 1
    stop = end + start if options.offset else end
    stop = stop + size if stop < 0 else stop
    stop = min(max(stop, clamp_low), clamp_high)
    if options.endMask & (1 << axis):
        stop = size if stride > 0 else -1
    return start, stop


def strided_slice(graph, operator) -> None:
    x, out = int(operator.inputs[0]), int(operator.outputs[0])
    options = operator.builtinOptions
    if options.ellipsisMask or options.newAxisMask:
        raise graph.unsupported("STRIDED_SLICE uses an ellipsis or new-axis mask (TFLM ignores them)",
                                "re-export without ellipsis/new-axis indexing (the converter folds them)")
    shape = graph.shape(x)
    begins, ends, strides = (_constant_ints(graph, int(operator.inputs[i]), f"STRIDED_SLICE {what}")
                             for i, what in ((1, "begin"), (2, "end"), (3, "strides")))
    if not len(begins) == len(ends) == len(strides) == len(shape) or 0 in strides:
        raise graph.corrupt(f"STRIDED_SLICE begin {begins}, end {ends}, strides {strides} do not fit the input "
                            f"{shape} (one non-zero stride per axis)")
    starts, sizes = [], []
    for axis, (begin, end, stride, size) in enumerate(zip(begins, ends, strides, shape)):
        start, stop = _strided_bounds(begin, end, stride, size, options, axis)
        starts.append(start)
        sizes.append(max(0, -(-(stop - start) // stride)))
    _emit_slice(graph, x, starts, sizes, strides, out)


def _split(graph, operator, x: int, axis_index: int, sizes: list[int]) -> None:
    shape = graph.shape(x)
    axis = _constant_ints(graph, axis_index, "split axis")[0] % len(shape)
    outputs = [int(o) for o in operator.outputs]
    if len(sizes) != len(outputs) or sum(sizes) != shape[axis]:
        raise graph.corrupt(f"a split of axis {axis} ({shape[axis]}) into {sizes} does not give its "
                            f"{len(outputs)} outputs")
    start = 0
    for out, size in zip(outputs, sizes):
        starts = [start if a == axis else 0 for a in range(len(shape))]
        extent = [size if a == axis else dim for a, dim in enumerate(shape)]
        _emit_slice(graph, x, starts, extent, [1] * len(shape), out)
        start += size


def split(graph, operator) -> None:
    axis_index, x = int(operator.inputs[0]), int(operator.inputs[1])
    shape, count = graph.shape(x), len(operator.outputs)
    axis = _constant_ints(graph, axis_index, "SPLIT axis")[0] % len(shape)
    if operator.builtinOptions.numSplits != count or shape[axis] % count:
        raise graph.corrupt(f"SPLIT of axis {axis} ({shape[axis]}) into {count} equal parts")
    _split(graph, operator, x, axis_index, [shape[axis] // count] * count)


def split_v(graph, operator) -> None:
    x, sizes_index, axis_index = (int(i) for i in operator.inputs[:3])
    sizes = _constant_ints(graph, sizes_index, "SPLIT_V size_splits")
    shape = graph.shape(x)
    axis = _constant_ints(graph, axis_index, "SPLIT_V axis")[0] % len(shape)
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = shape[axis] - (sum(sizes) + 1)
    _split(graph, operator, x, axis_index, sizes)


def resize(mode: str):
    def lower(graph, operator) -> None:
        x, out = int(operator.inputs[0]), int(operator.outputs[0])
        options = operator.builtinOptions
        in_shape, out_shape = graph.shape(x), graph.shape(out)
        if len(in_shape) != 4 or len(out_shape) != 4 or in_shape[0] != out_shape[0] or in_shape[3] != out_shape[3]:
            raise graph.corrupt(f"a resize from {in_shape} to {out_shape} (NHWC, same batch and channels)")
        size = _constant_ints(graph, int(operator.inputs[1]), "resize size")
        if size != out_shape[1:3]:
            raise graph.corrupt(f"resize size {size} disagrees with the output {out_shape}")
        if options.alignCorners and options.halfPixelCenters:
            raise graph.unsupported("the resize sets both align_corners and half_pixel_centers",
                                    "set at most one of them (TFLM rejects both)")
        attrs = {"size": size, "mode": mode, "align_corners": int(bool(options.alignCorners)),
                 "half_pixel_centers": int(bool(options.halfPixelCenters))}
        graph.emit("Resize", [graph.value(x)], attrs, out)
    return lower


#: Per operator: the class of the builtin options its lowering reads and how many inputs it needs.
OPERANDS = {
    "RESHAPE": (None, 1),
    "PAD": (None, 2),
    "PADV2": (None, 2),
    "MIRROR_PAD": ("MirrorPadOptionsT", 2),
    "CONCATENATION": ("ConcatenationOptionsT", 1),
    "SLICE": (None, 3),
    "STRIDED_SLICE": ("StridedSliceOptionsT", 4),
    "SPLIT": ("SplitOptionsT", 2),
    "SPLIT_V": ("SplitVOptionsT", 3),
    "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptionsT", 2),
    "RESIZE_BILINEAR": ("ResizeBilinearOptionsT", 2),
}
#: Operators with one output per part.
MULTI_OUTPUT = frozenset({"SPLIT", "SPLIT_V"})

LOWERINGS = {
    "RESHAPE": reshape,
    "PAD": pad,
    "PADV2": pad,
    "MIRROR_PAD": mirror_pad,
    "CONCATENATION": concatenation,
    "SLICE": slice_,
    "STRIDED_SLICE": strided_slice,
    "SPLIT": split,
    "SPLIT_V": split_v,
    "RESIZE_NEAREST_NEIGHBOR": resize("nearest"),
    "RESIZE_BILINEAR": resize("bilinear"),
}
