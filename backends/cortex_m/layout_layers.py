"""Cortex-M layers of the data-movement operators: Transpose, Pad, Concat, Slice, Resize.

Slice, Pad in its non-constant modes and nearest Resize are one kernel, ``edgec_gather``
(``kernels/edgec_gather.c``): the reference's per-axis index maps
(:func:`edgec.reference.gather.axis_maps`) become a table of input element offsets (each
axis's indices times the input's stride along it), so the C copies exactly the bytes the
reference copies. Bilinear Resize gets per output row and column the two input offsets and
the 10-bit weight of :func:`edgec.reference.resize.bilinear_axis`. The copying kernels work
in bytes, so int16 tensors (the 16x8 scheme) take them as bytes too (an int16 Transpose is a
gather, each output axis stepping through its input axis).
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from edgec.backends.cortex_m.clayer import CArray, CLayer, constant_operands, element_bytes, shape_of, to_4d
from edgec.errors import UnsupportedModelError
from edgec.reference.gather import axis_maps
from edgec.reference.resize import bilinear_axis


def transpose_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    in_shape = to_4d(shape_of(node.inputs[0]), node)
    lead = 4 - len(shape_of(node.inputs[0]))
    perm = list(range(lead)) + [lead + int(p) for p in attrs["perm"]]
    out_shape = [in_shape[p] for p in perm]
    in_strides = [math.prod(in_shape[axis + 1:]) for axis in range(4)]
    out_strides = [math.prod(out_shape[axis + 1:]) for axis in range(4)]
    scatter = out_shape[3] < in_shape[3]  # walk the input when its rows are the longer runs
    if scatter:
        params = {"shape": in_shape, "strides": [out_strides[perm.index(axis)] for axis in range(4)], "scatter": 1}
    else:
        params = {"shape": out_shape, "strides": [in_strides[p] for p in perm], "scatter": 0}
    return CLayer(node, "edgec_layout.c", f"edgec_transpose(&{prefix}, {{in0}}, {{out}})", [],
                  "edgec_transpose_params", params)


def _constant_pad_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    """``edgec_pad`` in bytes: an int16 tensor pads its last axis's byte pairs, with a value
    whose two bytes are equal (0 or -1)."""
    in_shape = shape_of(node.inputs[0])
    rank = len(in_shape)
    size, value = element_bytes(node.inputs[0]), int(attrs["value"])
    if size == 2 and value not in (0, -1):
        raise UnsupportedModelError(f"int16 Pad node '{node.name}' pads with {value}",
                                    "the Cortex-M kernel pads int16 tensors with 0 (the 16x8 zero point) or -1")
    before = [0] * (4 - rank) + [int(p) for p in attrs["pads"][:rank]]
    before[3] *= size
    in_4d, out_4d = to_4d(in_shape, node), to_4d(shape_of(node.outputs[0]), node)
    in_4d[3], out_4d[3] = in_4d[3] * size, out_4d[3] * size
    params = {"in_shape": in_4d, "out_shape": out_4d, "before": before, "value": value}
    return CLayer(node, "edgec_layout.c", f"edgec_pad(&{prefix}, {{in0}}, {{out}})", [], "edgec_pad_params", params)


def concat_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    out_shape = shape_of(node.outputs[0])
    axis = int(attrs["axis"]) % len(out_shape)
    size = element_bytes(node.outputs[0])
    inner = [math.prod(shape_of(v)[axis:]) * size for v in node.inputs]
    arrays = [CArray(f"{prefix}_inner", "uint32_t", np.asarray(inner, dtype=np.uint32))]
    operands = constant_operands(node, prefix, arrays)
    call = (f"edgec_concat({math.prod(out_shape[:axis])}u, {math.prod(out_shape[axis:]) * size}u, {len(inner)}u, "
            f"(const int8_t *const[]){{{{{', '.join(operands)}}}}}, {prefix}_inner, {{out}})")
    return CLayer(node, "edgec_layout.c", call, arrays)


def gather_layer(node: ir.Node, prefix: str, maps: list[np.ndarray]) -> CLayer:
    """``edgec_gather`` along ``maps`` (one index array per input axis)."""
    in_shape = to_4d(shape_of(node.inputs[0]), node)
    maps = [np.zeros(1, dtype=np.int64)] * (4 - len(maps)) + [m.astype(np.int64) for m in maps]
    strides = [math.prod(in_shape[axis + 1:]) for axis in range(4)]
    return _offsets_gather(node, prefix, [m * stride for m, stride in zip(maps, strides)])


def _offsets_gather(node: ir.Node, prefix: str, offsets: list[np.ndarray]) -> CLayer:
    """``edgec_gather`` of output element ``(i0, i1, i2, i3)`` from input element
    ``offsets[0][i0] + ... + offsets[3][i3]``, in bytes: an int16 element is two bytes of the
    last axis."""
    size = element_bytes(node.inputs[0])
    tables = [o * size for o in offsets[:3]] + [(offsets[3][:, None] * size + np.arange(size)).ravel()]
    contiguous = bool(np.all(np.diff(tables[3]) == 1))
    params = {"shape": [len(t) for t in tables], "offsets": f"{prefix}_offsets", "contiguous": int(contiguous)}
    return CLayer(node, "edgec_gather.c", f"edgec_gather(&{prefix}, {{in0}}, {{out}})",
                  [CArray(f"{prefix}_offsets", "uint32_t", np.concatenate(tables).astype(np.uint32))],
                  "edgec_gather_params", params)


def _transpose_gather(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    """An int16 Transpose as a gather: output axis ``k`` steps through input axis ``perm[k]``."""
    in_shape = to_4d(shape_of(node.inputs[0]), node)
    lead = 4 - len(shape_of(node.inputs[0]))
    perm = list(range(lead)) + [lead + int(p) for p in attrs["perm"]]
    strides = [math.prod(in_shape[axis + 1:]) for axis in range(4)]
    return _offsets_gather(node, prefix, [np.arange(in_shape[p], dtype=np.int64) * strides[p] for p in perm])


def _bilinear_layer(node: ir.Node, prefix: str, attrs: dict, rounding: str) -> CLayer:
    batches, in_h, in_w, channels = shape_of(node.inputs[0])
    out_h, out_w = (int(s) for s in attrs["size"])
    align, half = bool(attrs["align_corners"]), bool(attrs["half_pixel_centers"])
    tables = []
    for name, in_size, out_size, stride in (("rows", in_h, out_h, in_w * channels), ("columns", in_w, out_w, channels)):
        lo, hi, weight = bilinear_axis(in_size, out_size, align, half)
        tables.append(CArray(f"{prefix}_{name}", "int32_t", np.stack([lo * stride, hi * stride, weight], axis=1)))
    params = {"batches": batches, "in_h": in_h, "in_w": in_w, "channels": channels, "out_h": out_h, "out_w": out_w,
              "rows": f"{prefix}_rows", "columns": f"{prefix}_columns",
              "single_rounding": int(rounding == "single")}
    return CLayer(node, "edgec_gather.c", f"edgec_resize_bilinear(&{prefix}, {{in0}}, {{out}})", tables,
                  "edgec_resize_params", params)


def layout_layer(node: ir.Node, prefix: str, attrs: dict, rounding: str) -> CLayer:
    """The layer of a Transpose, Pad, Concat, Slice or Resize node; ``rounding`` is the node's
    (:func:`edgec.fixedpoint.operator_rounding`)."""
    op = node.op_type
    maps = axis_maps(op, attrs, shape_of(node.inputs[0]))
    if maps is not None:
        return gather_layer(node, prefix, maps)
    if op == "Transpose":
        return _transpose_gather(node, prefix, attrs) if element_bytes(node.inputs[0]) == 2 else \
            transpose_layer(node, prefix, attrs)
    if op == "Pad":
        return _constant_pad_layer(node, prefix, attrs)
    if op == "Concat":
        return concat_layer(node, prefix, attrs)
    return _bilinear_layer(node, prefix, attrs, rounding)


#: The operators :func:`layout_layer` lowers.
LAYOUT_OPS = frozenset({"Transpose", "Pad", "Concat", "Slice", "Resize"})
