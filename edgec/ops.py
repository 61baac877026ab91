"""The edgec operator set: integer operators in the ONNX domain ``edgec``.

An integer graph (what ``edgec quantize`` writes) is an ONNX model whose nodes are these
operators. Activations are int8 tensors holding values of their integer type (2 to 8 bits,
:mod:`edgec.inttype`), or int16 tensors in TFLite's 16x8 scheme (int16 activations with int8
weights; an int64 bias then makes Conv, DepthwiseConv and FullyConnected accumulate in 64 bits,
see :mod:`edgec.reference.conv`); 4-D activations are NHWC (channels last, the layout of every
microcontroller kernel library). Each node carries, as attributes, every integer it needs
to execute: zero points, quantized multipliers (``multiplier`` in ``[2^30, 2^31)`` with
``shift``, see :mod:`edgec.fixedpoint`) and activation clamps. No operator needs a float at
run time except the boundary ``Quantize``/``Dequantize``.

Widths: every operator that computes new values (the requantizing ones and ``Quantize``)
clamps them explicitly to an interval inside its output's type (``activation_min``/
``activation_max``, or ``min``/``max``); the defaults are the int8 range, so a narrower
output type always has its bounds written on the node. The scale-preserving operators
(pools, ``Clamp``, ``Concat``, ``Pad``, ``Reshape``, ``Resize``, ``Slice``, ``Transpose``) output their input's
type. ``Softmax`` outputs int8. ``Table`` outputs values of its table, all within its output's
type. :func:`edgec.widths.check_widths` checks these
rules; the reference executor also saturates every result to its declared type.

``Quantize`` rounds ``x / scale`` as its ``rounding`` attribute says (one of
:data:`QUANTIZE_ROUNDINGS`): ``"half_away"`` (default, TFLite QUANTIZE) or ``"half_even"``
(QONNX/Brevitas ``ROUND``, numpy and torch ``round``), adds the zero point and saturates
to ``[min, max]`` (attributes, default the int8 range).

Each int8 value also carries its quantization as ``metadata_props`` ``edgec.scale``,
``edgec.zero_point`` and ``edgec.int_type`` (for tools: dequantizing, reports) and, when it
holds a tensor of the float model, that tensor's name and layout (``edgec.source``,
``edgec.layout``); weight initializers carry their per-channel scales and integer type. The
model records the rounding mode in ``metadata_props['edgec.rounding']``.

Control flow is the standard ONNX ``If``: its condition comes from a ``Router``, its
branches are integer subgraphs whose outputs share the ``If`` outputs' quantization
(:mod:`edgec.control_flow`, :mod:`passes.lower_control`).

The exact semantics of every operator are defined by :mod:`edgec.reference` (one function
per operator); the specs below name inputs and attributes and are used to validate nodes.
"""

from __future__ import annotations

import dataclasses

import onnx_ir as ir

DOMAIN = "edgec"
OPSET_VERSION = 1

SCALE_KEY = "edgec.scale"
ZERO_POINT_KEY = "edgec.zero_point"
ROUNDING_KEY = "edgec.rounding"
#: On an int8 value: the name of the float tensor it holds, and ``"nhwc"`` when it holds
#: that tensor channels-last. Used to compare layers with the float model.
SOURCE_KEY = "edgec.source"
LAYOUT_KEY = "edgec.layout"
#: On a float graph input: the rounding (:data:`QUANTIZE_ROUNDINGS`) its ``Quantize`` uses.
QUANTIZE_ROUNDING_KEY = "edgec.quantize_rounding"
#: ``Quantize`` roundings: half away from zero (TFLite), half to even (QONNX, numpy, torch).
QUANTIZE_ROUNDINGS = ("half_away", "half_even")


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """Inputs and attributes of one edgec operator.

    ``attributes`` maps each attribute name to its default, or to ``None`` when required.
    """

    name: str
    summary: str
    inputs: tuple[str, ...]
    attributes: dict[str, object]
    optional_inputs: tuple[str, ...] = ()


_REQUANT = {"output_multiplier": None, "output_shift": None}
_CLAMP = {"activation_min": -128, "activation_max": 127}
_WINDOW = {"strides": [1, 1], "pads": [0, 0, 0, 0]}

OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec("Conv", "2-D convolution, NHWC input, OHWI weights, int32 bias, per-channel requantization; "
               "weights [Cout, kh, kw, Cin/groups] make it grouped (TFLM's rule)",
               ("X", "W"), {"input_zero_point": None, "output_zero_point": None, **_REQUANT,
                            **_CLAMP, **_WINDOW, "dilations": [1, 1]}, ("B",)),
        OpSpec("DepthwiseConv", "depthwise 2-D convolution, weights [1, kh, kw, C*depth_multiplier]",
               ("X", "W"), {"input_zero_point": None, "output_zero_point": None, **_REQUANT,
                            **_CLAMP, **_WINDOW, "dilations": [1, 1], "depth_multiplier": 1}, ("B",)),
        OpSpec("TransposeConv", "transposed 2-D convolution (TFLite TRANSPOSE_CONV): every input pixel scatters "
               "w[:, ky, kx, :] (x - zp) to output (y * stride + ky - pad_top, x * stride + kx - pad_left) inside "
               "output_size; weights [Cout, kh, kw, Cin], int32 bias, per-channel requantization",
               ("X", "W"), {"input_zero_point": None, "output_zero_point": None, **_REQUANT, **_CLAMP,
                            "strides": [1, 1], "pads": [0, 0, 0, 0], "output_size": None}, ("B",)),
        OpSpec("FullyConnected", "matrix product over the last axis, weights [Cout, K], int32 bias",
               ("X", "W"), {"input_zero_point": None, "output_zero_point": None, **_REQUANT, **_CLAMP},
               ("B",)),
        OpSpec("BatchMatMul", "Y = A' B' over the last two axes, A' = A (swapped when adj_x), B' likewise, batch "
               "axes broadcast like numpy; (a - input1_zero_point)(b - input2_zero_point) summed, requantized "
               "(TFLite BATCH_MATMUL)",
               ("A", "B"), {"input1_zero_point": None, "input2_zero_point": None, "output_zero_point": None,
                            **_REQUANT, **_CLAMP, "adj_x": 0, "adj_y": 0}),
        OpSpec("Add", "elementwise sum with broadcasting (TFLite ADD: left shift 20, three multipliers)",
               ("A", "B"), {"input1_zero_point": None, "input2_zero_point": None, "output_zero_point": None,
                            "left_shift": 20, "input1_multiplier": None, "input1_shift": None,
                            "input2_multiplier": None, "input2_shift": None, **_REQUANT, **_CLAMP}),
        OpSpec("Sub", "elementwise difference with broadcasting (TFLite SUB)",
               ("A", "B"), {"input1_zero_point": None, "input2_zero_point": None, "output_zero_point": None,
                            "left_shift": 20, "input1_multiplier": None, "input1_shift": None,
                            "input2_multiplier": None, "input2_shift": None, **_REQUANT, **_CLAMP}),
        OpSpec("Mul", "elementwise product with broadcasting (TFLite MUL)",
               ("A", "B"), {"input1_zero_point": None, "input2_zero_point": None, "output_zero_point": None,
                            **_REQUANT, **_CLAMP}),
        OpSpec("PRelu", "x' = x - input_zero_point; x' >= 0: MBQM(x', identity) else MBQM(x' (alpha - alpha_zero_point), "
               "alpha), plus output_zero_point, clamped; alpha broadcasts like numpy (TFLite PRELU)",
               ("X", "Alpha"), {"input_zero_point": None, "alpha_zero_point": None, "output_zero_point": None,
                                "identity_multiplier": None, "identity_shift": None, "alpha_multiplier": None,
                                "alpha_shift": None, **_CLAMP}),
        OpSpec("AveragePool", "average over windows of valid (unpadded) elements, NHWC; scale kept",
               ("X",), {"kernel_shape": None, **_WINDOW, **_CLAMP}),
        OpSpec("MaxPool", "maximum over windows of valid elements, NHWC; scale kept",
               ("X",), {"kernel_shape": None, **_WINDOW, **_CLAMP}),
        OpSpec("Mean", "mean over axes (TFLite MEAN: 1/n folded into the multiplier)",
               ("X",), {"axes": None, "keepdims": 1, "input_zero_point": None, "output_zero_point": None,
                        **_REQUANT, **_CLAMP}),
        OpSpec("Softmax", "softmax over the last axis, output scale 1/256 zero point -128 (TFLite SOFTMAX)",
               ("X",), {"input_multiplier": None, "input_left_shift": None, "diff_min": None}),
        OpSpec("Requantize", "change of scale and zero point (TFLite QUANTIZE int8->int8)",
               ("X",), {"input_zero_point": None, "output_zero_point": None, **_REQUANT, **_CLAMP}),
        OpSpec("Clamp", "clamp to [min, max] in the quantized domain (an unfused activation)",
               ("X",), {"min": -128, "max": 127}),
        OpSpec("Table", "element-wise lookup Y = T[X + 128], T an int8 initializer of 256 entries: any function "
               "of one int8 value (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU, RELU6); function names it for reports",
               ("X", "T"), {"function": ""}),
        OpSpec("Quantize", "float -> int8: round(x / scale) + zero_point, saturated to [min, max]",
               ("X",), {"scale": None, "zero_point": None, "min": -128, "max": 127, "rounding": "half_away"}),
        OpSpec("Dequantize", "int8 -> float: (x - zero_point) * scale",
               ("X",), {"scale": None, "zero_point": None}),
        OpSpec("Concat", "concatenation along axis; all inputs share the output's quantization",
               ("X...",), {"axis": None}),
        OpSpec("Pad", "padding, pads = [begin_0, ..., begin_n, end_0, ..., end_n]; mode constant (with value), "
               "reflect, symmetric (TFLite MIRROR_PAD), edge or wrap",
               ("X",), {"pads": None, "value": 0, "mode": "constant"}),
        OpSpec("Slice", "Y[i] = X[starts + i * steps] per axis for i < sizes (TFLite SLICE, STRIDED_SLICE, SPLIT)",
               ("X",), {"starts": None, "sizes": None, "steps": None}),
        OpSpec("Resize", "spatial resize of NHWC to size [out_h, out_w]: mode nearest or bilinear (TFLite "
               "RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR with its 10-bit fixed-point weights); scale kept",
               ("X",), {"size": None, "mode": None, "align_corners": 0, "half_pixel_centers": 0}),
        OpSpec("Reshape", "new shape, same data order (zero-copy)", ("X",), {"shape": None}),
        OpSpec("Transpose", "permutation of axes", ("X",), {"perm": None}),
        OpSpec("Router", "boolean condition of an If: bias + sum_c W[0, c] sum_p (X[p, c] - input_zero_point) >= 0 "
               "(> 0 when strict), exact; X [1, C] or a feature map [1, ..., C] summed over its positions p, "
               "W [1, C], B [1]",
               ("X", "W", "B"), {"input_zero_point": None, "strict": 0}),
    )
}

#: Operators that carry ``activation_min``/``activation_max`` and can absorb a Clamp.
CLAMPABLE = frozenset({"Conv", "DepthwiseConv", "TransposeConv", "FullyConnected", "BatchMatMul", "Add", "Sub", "Mul", "PRelu",
                       "AveragePool", "MaxPool", "Requantize"})


def is_edgec_node(node) -> bool:
    """True when ``node`` (an ``onnx_ir.Node``) is an operator of the edgec domain."""
    return node.domain == DOMAIN


def is_integer_node(node) -> bool:
    """True when ``node`` may appear in an integer graph: an edgec operator or an ONNX ``If``."""
    return is_edgec_node(node) or (node.domain == "" and node.op_type == "If")


def is_integer_model(model) -> bool:
    """True when ``model`` (an ``onnx_ir.Model``) is an edgec integer graph (branches included)."""
    return model.opset_imports.get(DOMAIN) is not None and all(
        is_integer_node(node) for node in ir.traversal.RecursiveGraphIterator(model.graph)
    )
