"""Lowering of pooling and data-movement ONNX operators to edgec integer operators.

Pools (AveragePool, MaxPool, their Global forms), ReduceMean (as TFLite MEAN), Concat, Pad
(constant, reflect, edge, wrap), Slice, Split (one edgec ``Slice`` per output), Resize (TFLite's
nearest and bilinear forms), Reshape (and Flatten/Squeeze/Unsqueeze) and Transpose. All but
ReduceMean keep their input's quantization and integer type (Concat brings its inputs to the
output's). Conventions are in :mod:`passes.quantize`.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from edgec.errors import UnsupportedModelError
from edgec.passes.graph_utils import attribute, const_array
from edgec.passes.integer_builder import IntegerGraphBuilder, channels_first_perm, channels_last_perm, constant_input
from edgec.passes.lower_compute import as_2d, as_2d_pads, bind_window_output, lift_to_4d, window_pads
from edgec.passes.multipliers import clamp_attributes, mean_attributes
from edgec.reference.gather import pad_index


def _pool(b: IntegerGraphBuilder, node: ir.Node, op_type: str, kernel, strides, pads) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        raise UnsupportedModelError(f"{node.op_type} node '{node.name}' returns indices",
                                    "edgec supports pools without the Indices output")
    x = lift_to_4d(b, b.value_in_layout(x_f, channels_last=True), f"{x_f.name}_4d")
    out_shape = b.shape_of(out_f)
    nhwc = [out_shape[0], *as_2d(list(out_shape[2:]), 1), out_shape[1]]
    q = b.qparams_of(x)
    attrs = {"kernel_shape": as_2d(list(kernel), 1), "strides": as_2d(list(strides), 1), "pads": as_2d_pads(pads),
             **clamp_attributes(q.int_type)}
    y = b.emit(op_type, [x], attrs, shape=nhwc, name=out_f.name, qparams=q)
    bind_window_output(b, out_f, y)
    value, channels_last = b.lookup(out_f)
    b.finish_preserving(out_f, value, channels_last)


def lower_pool(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f = node.inputs[0]
    in_shape = b.shape_of(x_f)
    if len(in_shape) not in (3, 4):
        raise UnsupportedModelError(f"{node.op_type} node '{node.name}' pools {len(in_shape) - 2}-D data",
                                    "edgec supports 1-D and 2-D pooling")
    spatial = in_shape[2:]
    kernel = attribute(node, "kernel_shape")
    strides = attribute(node, "strides", [1] * len(spatial))
    dilations = attribute(node, "dilations", [1] * len(spatial))
    if any(d != 1 for d in dilations):
        raise UnsupportedModelError(f"{node.op_type} node '{node.name}' is dilated", "use dilation 1 for pooling")
    pads = window_pads(node, spatial, kernel, strides, dilations)
    if attribute(node, "ceil_mode", 0):
        floor_shape = [(s + pads[i] + pads[i + len(spatial)] - k) // st + 1
                       for i, (s, k, st) in enumerate(zip(spatial, kernel, strides))]
        if floor_shape != list(b.shape_of(node.outputs[0])[2:]):
            raise UnsupportedModelError(f"{node.op_type} node '{node.name}' uses ceil_mode=1",
                                        "use ceil_mode=0 (or padding that makes both modes agree)")
    op_type = "AveragePool" if node.op_type == "AveragePool" else "MaxPool"
    if op_type == "AveragePool" and attribute(node, "count_include_pad", 0) and any(pads):
        raise UnsupportedModelError(f"AveragePool node '{node.name}' counts padding (count_include_pad=1)",
                                    "use count_include_pad=0 or an explicit Pad before the pool")
    _pool(b, node, op_type, kernel, strides, pads)


def lower_global_pool(b: IntegerGraphBuilder, node: ir.Node) -> None:
    spatial = b.shape_of(node.inputs[0])[2:]
    op_type = "AveragePool" if node.op_type == "GlobalAveragePool" else "MaxPool"
    _pool(b, node, op_type, spatial, [1] * len(spatial), [0] * (2 * len(spatial)))


def lower_reduce_mean(b: IntegerGraphBuilder, node: ir.Node) -> None:
    """ReduceMean becomes edgec Mean (TFLite MEAN: 1/n folded into the rescaling multiplier), in
    the input's layout unless dropping axes would leave the kept ones permuted (a channels-last
    map averaged over its positions gives ``[N, C]`` directly)."""
    x_f, out_f = node.inputs[0], node.outputs[0]
    rank = len(b.shape_of(x_f))
    axes = attribute(node, "axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = constant_input(node, 1, "axes").tolist()
    if axes is None:
        axes = list(range(rank))  # ONNX: no axes reduces everything (noop_with_empty_axes aside)
    axes = sorted(a % rank for a in axes)
    x, channels_last = b.lookup(x_f)
    keepdims = int(attribute(node, "keepdims", 1))
    perm = channels_last_perm(rank) if channels_last and rank >= 3 else list(range(rank))
    kept = [perm.index(a) for a in range(rank) if a not in axes]
    if not keepdims and kept != sorted(kept):  # the kept axes would come out permuted: reduce in the float layout
        x, channels_last = b.value_in_layout(x_f, channels_last=False), False
        perm = list(range(rank))
    int_axes = sorted(perm.index(a) for a in axes)
    qx, qy = b.qparams_of(x), b.desired_qparams(out_f)
    in_shape = list(x.shape.numpy())
    count = math.prod(in_shape[a] for a in int_axes)
    out_shape = [1 if a in int_axes else d for a, d in enumerate(in_shape)] if keepdims else \
        [d for a, d in enumerate(in_shape) if a not in int_axes]
    attrs = {"axes": int_axes, "keepdims": keepdims, **mean_attributes(qx, qy, count), **clamp_attributes(qy.int_type)}
    y = b.emit("Mean", [x], attrs, shape=out_shape, name=out_f.name, qparams=qy)
    b.bind(out_f, y, channels_last and bool(keepdims))


def lower_concat(b: IntegerGraphBuilder, node: ir.Node) -> None:
    out_f = node.outputs[0]
    out_shape = b.shape_of(out_f)
    rank = len(out_shape)
    axis = int(attribute(node, "axis")) % rank
    activations = [v for v in node.inputs if const_array(v) is None]
    channels_last = rank >= 3 and any(b.lookup(v)[1] for v in activations)
    perm = channels_last_perm(rank) if channels_last else list(range(rank))
    qy = b.desired_qparams(out_f)
    parts = []
    for i, value in enumerate(node.inputs):
        array = const_array(value)
        if array is not None:
            parts.append(b.constant(f"{node.name}_in{i}", qy.quantize(array.transpose(perm)), qparams=qy))
        else:
            parts.append(b.to_qparams(b.value_in_layout(value, channels_last), qy, f"{value.name}_to_{out_f.name}"))
    y = b.emit("Concat", parts, {"axis": perm.index(axis)}, shape=[out_shape[p] for p in perm],
               name=out_f.name, qparams=qy)
    b.bind(out_f, y, channels_last)


def lower_pad(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    mode = attribute(node, "mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise UnsupportedModelError(f"Pad node '{node.name}' uses mode '{mode}'",
                                    "use mode constant, reflect, edge or wrap")
    rank = len(b.shape_of(x_f))
    pads = [int(p) for p in constant_input(node, 1, "pads")]
    if len(node.inputs) > 3 and node.inputs[3] is not None:
        axes = [int(a) % rank for a in constant_input(node, 3, "axes")]
        full = [0] * (2 * rank)
        for i, axis in enumerate(axes):
            full[axis], full[axis + rank] = pads[i], pads[i + len(axes)]
        pads = full
    if any(p < 0 for p in pads):
        raise UnsupportedModelError(f"Pad node '{node.name}' crops (negative pads)", "use Slice for cropping")
    value = 0.0
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        value = float(np.asarray(constant_input(node, 2, "constant value")).ravel()[0])
    x, channels_last = b.lookup(x_f)
    perm = channels_last_perm(rank) if channels_last and rank >= 3 else list(range(rank))
    int_pads = [pads[p] for p in perm] + [pads[p + rank] for p in perm]
    q = b.qparams_of(x)
    out_shape = b.shape_of(out_f)
    attrs = {"pads": int_pads, "mode": mode, "value": q.quantize_bound(value) if mode == "constant" else 0}
    if mode != "constant":
        int_shape = list(x.shape.numpy())
        for axis, size in enumerate(int_shape):
            try:
                pad_index(int(size), int_pads[axis], int_pads[axis + rank], mode)
            except UnsupportedModelError as error:
                raise UnsupportedModelError(f"Pad node '{node.name}': {error.problem}", error.hint) from None
    y = b.emit("Pad", [x], attrs, shape=[out_shape[p] for p in perm], name=out_f.name, qparams=q)
    b.finish_preserving(out_f, y, channels_last)


def _emit_slice(b: IntegerGraphBuilder, x: ir.Value, channels_last: bool, indices: list[range],
                out_f: ir.Value) -> None:
    """``out_f`` as the edgec Slice of ``x`` taking ``indices[a]`` along float axis ``a``."""
    rank = len(indices)
    perm = channels_last_perm(rank) if channels_last and rank >= 3 else list(range(rank))
    if any(len(r) == 0 for r in indices):
        raise UnsupportedModelError(f"the slice giving '{out_f.name}' is empty", "remove empty slices from the model")
    ordered = [indices[p] for p in perm]
    attrs = {"starts": [r.start for r in ordered], "sizes": [len(r) for r in ordered],
             "steps": [r.step for r in ordered]}
    y = b.emit("Slice", [x], attrs, shape=[len(r) for r in ordered], name=out_f.name, qparams=b.qparams_of(x))
    b.finish_preserving(out_f, y, channels_last)


def lower_slice(b: IntegerGraphBuilder, node: ir.Node) -> None:
    """ONNX Slice with constant starts, ends, axes and steps (numpy's slice semantics)."""
    x_f = node.inputs[0]
    shape = b.shape_of(x_f)
    rank = len(shape)
    starts = [int(v) for v in constant_input(node, 1, "starts")]
    ends = [int(v) for v in constant_input(node, 2, "ends")]
    optional = [len(node.inputs) > i and node.inputs[i] is not None for i in (3, 4)]
    axes = [int(a) % rank for a in constant_input(node, 3, "axes")] if optional[0] else list(range(len(starts)))
    steps = [int(v) for v in constant_input(node, 4, "steps")] if optional[1] else [1] * len(starts)
    if 0 in steps:
        raise UnsupportedModelError(f"Slice node '{node.name}' has a zero step", "use non-zero steps")
    indices = [range(size) for size in shape]
    for axis, start, end, step in zip(axes, starts, ends, steps):
        indices[axis] = range(*slice(start, end, step).indices(shape[axis]))
    x, channels_last = b.lookup(x_f)
    _emit_slice(b, x, channels_last, indices, node.outputs[0])


def lower_split(b: IntegerGraphBuilder, node: ir.Node) -> None:
    """ONNX Split: each output is a Slice of the input along ``axis`` (sizes from the outputs)."""
    x_f = node.inputs[0]
    shape = b.shape_of(x_f)
    axis = int(attribute(node, "axis", 0)) % len(shape)
    x, channels_last = b.lookup(x_f)
    start = 0
    for out_f in node.outputs:
        size = b.shape_of(out_f)[axis]
        indices = [range(start, start + size) if a == axis else range(d) for a, d in enumerate(shape)]
        _emit_slice(b, x, channels_last, indices, out_f)
        start += size


#: ONNX Resize's (mode, coordinate_transformation_mode, nearest_mode) that are TFLite's resizes:
#: the edgec Resize mode and its (align_corners, half_pixel_centers).
_RESIZE_FORMS = {
    ("nearest", "asymmetric", "floor"): ("nearest", 0, 0),
    ("nearest", "align_corners", "round_prefer_ceil"): ("nearest", 1, 0),
    ("nearest", "tf_half_pixel_for_nn", "floor"): ("nearest", 0, 1),
    ("linear", "asymmetric", None): ("bilinear", 0, 0),
    ("linear", "align_corners", None): ("bilinear", 1, 0),
    ("linear", "half_pixel", None): ("bilinear", 0, 1),
}


def _text_attribute(node: ir.Node, name: str, default: str) -> str:
    value = attribute(node, name, default)
    return value.decode() if isinstance(value, bytes) else value


def lower_resize(b: IntegerGraphBuilder, node: ir.Node) -> None:
    """ONNX Resize of the two spatial axes of a 4-D tensor, in the forms TFLite's
    RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR compute (:data:`_RESIZE_FORMS`); the
    bilinear one is TFLite's 10-bit integer interpolation, within a step of the float one."""
    x_f, out_f = node.inputs[0], node.outputs[0]
    in_shape, out_shape = b.shape_of(x_f), b.shape_of(out_f)
    mode = _text_attribute(node, "mode", "nearest")
    transform = _text_attribute(node, "coordinate_transformation_mode", "half_pixel")
    nearest = _text_attribute(node, "nearest_mode", "round_prefer_floor") if mode == "nearest" else None
    form = _RESIZE_FORMS.get((mode, transform, nearest))
    if len(in_shape) != 4 or list(in_shape[:2]) != list(out_shape[:2]) or form is None:
        raise UnsupportedModelError(
            f"Resize node '{node.name}' ({mode}, {transform}{', ' + nearest if nearest else ''}) on {list(in_shape)} "
            f"is not one of TFLite's resizes",
            "resize the two spatial axes of NCHW data with mode nearest (asymmetric+floor, align_corners+"
            "round_prefer_ceil, tf_half_pixel_for_nn+floor) or linear (asymmetric, align_corners, half_pixel)")
    x = b.value_in_layout(x_f, channels_last=True)
    attrs = {"size": [int(out_shape[2]), int(out_shape[3])], "mode": form[0], "align_corners": form[1],
             "half_pixel_centers": form[2]}
    y = b.emit("Resize", [x], attrs, shape=[out_shape[0], out_shape[2], out_shape[3], out_shape[1]],
               name=out_f.name, qparams=b.qparams_of(x))
    b.finish_preserving(out_f, y, channels_last=True)


def lower_reshape(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    x = b.value_in_layout(x_f, channels_last=False)
    shape = list(b.shape_of(out_f))
    y = b.emit("Reshape", [x], {"shape": shape}, shape=shape, name=out_f.name, qparams=b.qparams_of(x))
    b.finish_preserving(out_f, y, channels_last=False)


def lower_transpose(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    rank = len(b.shape_of(x_f))
    perm = [int(p) for p in attribute(node, "perm", list(reversed(range(rank))))]
    x, channels_last = b.lookup(x_f)
    if channels_last:
        # int = float_in permuted by P, so float_out = int permuted by P^-1 then by perm.
        inverse = channels_first_perm(rank)
        perm = [inverse[p] for p in perm]
    y = b.permute(x, perm, out_f.name)
    b.finish_preserving(out_f, y, channels_last=False)


LAYOUT_LOWERINGS = {
    "AveragePool": lower_pool,
    "MaxPool": lower_pool,
    "GlobalAveragePool": lower_global_pool,
    "GlobalMaxPool": lower_global_pool,
    "ReduceMean": lower_reduce_mean,
    "Concat": lower_concat,
    "Pad": lower_pad,
    "Slice": lower_slice,
    "Split": lower_split,
    "Resize": lower_resize,
    "Reshape": lower_reshape,
    "Flatten": lower_reshape,
    "Squeeze": lower_reshape,
    "Unsqueeze": lower_reshape,
    "Transpose": lower_transpose,
}
