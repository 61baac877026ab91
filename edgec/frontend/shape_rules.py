"""Per-operator shape rules that onnx's shape inference does not check, but onnxruntime and
edgec's lowering rely on.

Each rule takes one ``onnx.NodeProto``, its index and the known shapes (``{tensor name:
dims}``, ``None`` for an unknown dim; a tensor missing from the map is unknown), and returns
a :class:`ShapeProblem` or ``None``. Unknown shapes are never a problem here (a later pass
requires static shapes). Rules:

* ``Conv``: input rank = weight rank >= 3; ``group`` >= 1 divides the output channels;
  input channels = weight channels x group; ``kernel_shape`` matches the weights; bias
  ``[M]``; the window (below) fits.
* ``MaxPool``/``AveragePool``: rank >= 3; the window fits, pads smaller than the kernel.
* windows: ``kernel_shape``, ``strides``, ``dilations`` >= 1 and ``pads`` >= 0, one per
  spatial axis (pads two); ``auto_pad`` one of onnx's four; the dilated kernel fits the
  padded input.
* ``Gemm``: ``K`` of A (after ``transA``) = ``K`` of B (after ``transB``); C broadcasts to ``[M, N]``.
* ``MatMul``: the inner dimensions agree.
* ``BatchNormalization``: scale, bias, mean and variance are ``[C]``.
* ``GlobalAveragePool``/``GlobalMaxPool``: rank >= 3.
* ``Reshape``: a 1-D shape input; the element count is unchanged.
* every node (:func:`too_large`): no output larger than :data:`MAX_ELEMENTS` elements.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import onnx

from edgec.passes.fold_constants import SIZE_LIMIT

Shapes = Mapping[str, list]
#: Elements of the largest tensor edgec takes (the constant folder's limit: more than any
#: microcontroller holds).
MAX_ELEMENTS = SIZE_LIMIT
_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclasses.dataclass(frozen=True)
class ShapeProblem:
    """What a node cannot take: ``text`` completes "tensor 't' has shape S but ...".

    ``tensor``/``shape`` name the input at fault (``None`` when the node itself is wrong);
    ``expected`` is the shape that input would need, when one dimension is all that is wrong.
    """

    text: str
    tensor: str | None = None
    shape: list | None = None
    expected: list | None = None


def node_label(node: onnx.NodeProto, index: int) -> str:
    """``node 'name' (Op)``, or ``node #index (Op)`` for an unnamed node."""
    return f"node '{node.name}' ({node.op_type})" if node.name else f"node #{index} ({node.op_type})"


def _attributes(node: onnx.NodeProto) -> dict:
    values = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        values[attr.name] = value.decode(errors="replace") if isinstance(value, bytes) else value
    return values


def _input_shape(node: onnx.NodeProto, position: int, shapes: Shapes) -> list | None:
    return shapes.get(node.input[position]) if len(node.input) > position and node.input[position] else None


def _known(*dims) -> bool:
    return all(d is not None for d in dims)


def _wrong_dim(node: onnx.NodeProto, shape: list, axis: int, wanted: int, text: str) -> ShapeProblem:
    """Input 0 of ``node`` needs ``wanted`` at ``axis``; the shape to suggest moves the channels
    in front of the spatial dims when they were given last (NHWC for a channels-first model)."""
    if axis == 1 and len(shape) > 2 and shape[-1] == wanted:
        expected = [shape[0], wanted, *shape[1:-1]]
    else:
        expected = list(shape)
        expected[axis] = wanted
    return ShapeProblem(text, node.input[0], list(shape), expected)


def _window(label: str, spatial: list, kernel: list, attrs: dict, pool: bool) -> str | None:
    """The problem with a Conv/pool window over ``spatial`` input dims, if any."""
    rank = len(spatial)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in _AUTO_PADS:
        return f"{label} has auto_pad '{auto_pad}' (onnx knows {', '.join(_AUTO_PADS)})"
    strides, dilations = attrs.get("strides", [1] * rank), attrs.get("dilations", [1] * rank)
    pads = attrs.get("pads", [0] * 2 * rank) if auto_pad == "NOTSET" else [0] * 2 * rank
    for name, values, count, low in (("kernel_shape", kernel, rank, 1), ("strides", strides, rank, 1),
                                     ("dilations", dilations, rank, 1), ("pads", pads, 2 * rank, 0)):
        if len(values) != count or any(v < low for v in values):
            return f"{label} has {name}={list(values)}; it takes {count} values >= {low}"
    for axis in range(rank):
        effective = (kernel[axis] - 1) * dilations[axis] + 1
        if pool and max(pads[axis], pads[axis + rank]) >= kernel[axis]:
            return f"{label} has pads={list(pads)}, not smaller than its kernel {list(kernel)}"
        size = spatial[axis]
        if size is not None and auto_pad in ("NOTSET", "VALID") and size + pads[axis] + pads[axis + rank] < effective:
            return (f"{label}'s window ({effective} wide on axis {axis + 2}) does not fit the padded input "
                    f"({size + pads[axis] + pads[axis + rank]})")
    return None


def conv(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    label, attrs = node_label(node, index), _attributes(node)
    x, w = _input_shape(node, 0, shapes), _input_shape(node, 1, shapes)
    if x is None or w is None:
        return None
    if len(x) < 3 or len(w) != len(x):
        return ShapeProblem(f"{label} has weights of shape {w} (it takes inputs of rank {max(len(w), 3)})",
                            node.input[0], x)
    group = attrs.get("group", 1)
    if group < 1 or (w[0] is not None and w[0] % group):
        return ShapeProblem(f"{label} has group={group}, which does not divide its {w[0]} output channels")
    if _known(x[1], w[1]) and x[1] != w[1] * group:
        return _wrong_dim(node, x, 1, w[1] * group, f"{label} takes C={w[1] * group} "
                                                    f"(weights {w}, group {group})")
    kernel = list(attrs.get("kernel_shape", w[2:]))
    if _known(*w[2:]) and kernel != w[2:]:
        return ShapeProblem(f"{label} has kernel_shape={kernel} but weights of shape {w}")
    bias = _input_shape(node, 2, shapes)
    if bias is not None and _known(w[0], *bias) and bias != [w[0]]:
        return ShapeProblem(f"{label} has a bias of shape {bias}; its {w[0]} output channels need [{w[0]}]")
    if not _known(*kernel):
        return None
    problem = _window(label, x[2:], kernel, attrs, pool=False)
    return ShapeProblem(problem) if problem else None


def pool(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    label, attrs = node_label(node, index), _attributes(node)
    x = _input_shape(node, 0, shapes)
    if x is None:
        return None
    if len(x) < 3:
        return ShapeProblem(f"{label} takes an input of rank 3 or more", node.input[0], x)
    problem = _window(label, x[2:], list(attrs.get("kernel_shape", [])), attrs, pool=True)
    return ShapeProblem(problem) if problem else None


def gemm(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    label, attrs = node_label(node, index), _attributes(node)
    a, b = _input_shape(node, 0, shapes), _input_shape(node, 1, shapes)
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    trans_a, trans_b = bool(attrs.get("transA", 0)), bool(attrs.get("transB", 0))
    k_axis = 0 if trans_a else 1
    k_a, k_b = a[k_axis], b[1] if trans_b else b[0]
    if _known(k_a, k_b) and k_a != k_b:
        return _wrong_dim(node, a, k_axis, k_b, f"{label} takes K={k_b} on axis {k_axis} (transA={int(trans_a)}, "
                                                f"B {b} with transB={int(trans_b)})")
    c, target = _input_shape(node, 2, shapes), [a[1 - k_axis], b[0] if trans_b else b[1]]
    if c is not None and (len(c) > 2 or any(_known(d, t) and d not in (1, t) for d, t in zip(reversed(c), reversed(target)))):
        return ShapeProblem(f"{label} has C of shape {c}, which does not broadcast to [M, N] = {target}")
    return None


def matmul(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    a, b = _input_shape(node, 0, shapes), _input_shape(node, 1, shapes)
    if not a or not b:
        return None
    k_b = b[0] if len(b) == 1 else b[-2]
    if _known(a[-1], k_b) and a[-1] != k_b:
        return _wrong_dim(node, a, len(a) - 1, k_b, f"{node_label(node, index)} takes K={k_b} (B is {b})")
    return None


def batchnorm(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    x = _input_shape(node, 0, shapes)
    params = [_input_shape(node, position, shapes) for position in range(1, 5)]
    if x is None or len(x) < 2 or x[1] is None or any(p is None or not _known(*p) for p in params):
        return None
    label = node_label(node, index)
    if all(p == params[0] and len(p) == 1 for p in params) and params[0] != [x[1]]:
        return _wrong_dim(node, x, 1, params[0][0], f"{label} takes C={params[0][0]} (its scale is {params[0]})")
    wrong = next((p for p in params if p != [x[1]]), None)
    if wrong is not None:
        return ShapeProblem(f"{label} has a parameter of shape {wrong}; its C={x[1]} channels need [{x[1]}]")
    return None


def global_pool(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    x = _input_shape(node, 0, shapes)
    if x is not None and len(x) < 3:
        return ShapeProblem(f"{node_label(node, index)} takes an input of rank 3 or more", node.input[0], x)
    return None


def reshape(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    target = _input_shape(node, 1, shapes)
    if target is not None and len(target) != 1:
        return ShapeProblem(f"{node_label(node, index)} takes a 1-D shape input", node.input[1], target)
    x, out = _input_shape(node, 0, shapes), shapes.get(node.output[0])
    if x is None or out is None or not _known(*x, *out) or math.prod(x) == math.prod(out):
        return None
    return ShapeProblem(f"{node_label(node, index)} reshapes it to {out} ({math.prod(out)} elements, "
                        f"not {math.prod(x)})", node.input[0], x)


def too_large(node: onnx.NodeProto, index: int, shapes: Shapes) -> ShapeProblem | None:
    """Any node: no output has more than :data:`MAX_ELEMENTS` elements."""
    for name in node.output:
        dims = shapes.get(name)
        if dims and _known(*dims) and math.prod(dims) > MAX_ELEMENTS:
            return ShapeProblem(f"tensor '{name}' (output of {node_label(node, index)}) has shape {dims}, "
                                f"{math.prod(dims):,} elements (edgec takes up to {MAX_ELEMENTS:,})")
    return None


RULES: dict[str, Callable[[onnx.NodeProto, int, Shapes], ShapeProblem | None]] = {
    "Conv": conv,
    "MaxPool": pool,
    "AveragePool": pool,
    "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool,
    "Gemm": gemm,
    "MatMul": matmul,
    "BatchNormalization": batchnorm,
    "Reshape": reshape,
}
