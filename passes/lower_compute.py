"""Lowering of the arithmetic ONNX operators to edgec integer operators.

Conv (1-D and 2-D; grouped, depthwise when each group is one input channel), ConvTranspose
(2-D), Gemm, MatMul (FullyConnected by a constant matrix, else BatchMatMul),
Add/Sub/Mul, PRelu (TFLite PRELU, its slope quantized like a constant operand), Relu/Clip
and Softmax. Each function takes the
:class:`~passes.integer_builder.IntegerGraphBuilder` and one float node, emits integer
nodes and binds the node's outputs. Conventions are in :mod:`passes.quantize`.

Weights: a float weight constant may record per-channel scales
(:func:`passes.qparams.set_channel_scales`) on its *output-channel axis in the float
model's layout*: axis 0 of a Conv weight ``[Cout, Cin/group, *kernel]``, axis 0 of a Gemm
weight with ``transB=1`` (``[N, K]``) and axis 1 of one with ``transB=0`` or of a MatMul
weight (``[K, N]``); a per-tensor scale is recorded broadcast to every channel. Scales on
another axis, or of another length, are ignored. With scales and an integer type recorded
(a QONNX/Brevitas weight), the weight is quantized with exactly those scales, clamped to
that type. With scales only (an int8 QDQ weight), it is int8n with those scales, raised
where the int32 bias needs it. Otherwise (post-training quantization) it is symmetric per
channel in the builder's weight type. Every output clamps to its type
(:func:`passes.multipliers.clamp_attributes`).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.errors import UnsupportedModelError
from edgec.inttype import INT8_WEIGHTS, INT32, INT64, IntType
from edgec.passes.graph_utils import attribute, const_array
from edgec.passes.integer_builder import IntegerGraphBuilder, channels_last_perm, constant_input
from edgec.passes.multipliers import (
    ADD_LEFT_SHIFT,
    INT16_ADD_LEFT_SHIFT,
    SOFTMAX_OUTPUT,
    add_attributes,
    channel_requant_attributes,
    clamp_attributes,
    mul_attributes,
    prelu_attributes,
    softmax_attributes,
)
from edgec.passes.qparams import (
    QParams,
    activation_qparams,
    bias_safe_scales,
    get_channel_scales,
    quantize_bias,
    quantize_weights,
    recorded_int_type,
    weight_scales,
)


def window_pads(node: ir.Node, in_spatial, kernel, strides, dilations) -> list[int]:
    """Explicit ``[begin..., end...]`` padding of a Conv/pool node, resolving ``auto_pad``."""
    rank = len(in_spatial)
    auto_pad = attribute(node, "auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        return [int(p) for p in attribute(node, "pads", [0] * (2 * rank))]
    if auto_pad == "VALID":
        return [0] * (2 * rank)
    begins, ends = [], []
    for size, k, s, d in zip(in_spatial, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def as_2d(values: list[int], fill: int) -> list[int]:
    """Per-axis values of a 1-D window op lifted to 2-D (a leading axis of size 1)."""
    return [fill, *values] if len(values) == 1 else list(values)


def as_2d_pads(pads: list[int]) -> list[int]:
    """``[begin..., end...]`` pads as edgec's ``[top, left, bottom, right]``, lifting 1-D."""
    return [0, pads[0], 0, pads[1]] if len(pads) == 2 else list(pads)


def lift_to_4d(b: IntegerGraphBuilder, value: ir.Value, name: str) -> ir.Value:
    """A channels-last ``[N, L, C]`` value as ``[N, 1, L, C]`` (zero-copy); 4-D values unchanged."""
    shape = list(value.shape.numpy())
    if len(shape) == 4:
        return value
    new_shape = [shape[0], 1, *shape[1:]]
    return b.emit("Reshape", [value], {"shape": new_shape}, shape=new_shape, name=name, qparams=b.qparams_of(value))


def bind_window_output(b: IntegerGraphBuilder, float_out: ir.Value, value: ir.Value) -> None:
    """Bind a 4-D window-op result to a 3-D or 4-D float output (channels-last)."""
    float_shape = b.shape_of(float_out)
    if len(float_shape) == 3:
        shape = [float_shape[0], float_shape[2], float_shape[1]]
        value = b.emit("Reshape", [value], {"shape": shape}, shape=shape, name=f"{float_out.name}_3d",
                       qparams=b.qparams_of(value))
    b.bind(float_out, value, channels_last=True)


def _weight_quantization(b: IntegerGraphBuilder, weights: np.ndarray, weight_value: ir.Value | None,
                         channel_axis: int, bias: np.ndarray,
                         input_scale: float) -> tuple[np.ndarray, np.ndarray, IntType]:
    """Integer weights, their per-channel scales and type (see the module docstring); scales
    not recorded with a type are raised where the int32 bias would otherwise overflow
    (:func:`passes.qparams.bias_safe_scales`)."""
    recorded = get_channel_scales(weight_value) if weight_value is not None else None
    if recorded is None or recorded[1] != channel_axis or recorded[0].size != weights.shape[channel_axis]:
        int_type = b.weight_type
        scales = bias_safe_scales(weight_scales(weights, channel_axis, int_type), bias, input_scale)
    elif (int_type := recorded_int_type(weight_value)) is not None:
        if not int_type.fits_int8():
            raise UnsupportedModelError(f"weight '{weight_value.name}' is quantized to {int_type}, "
                                        "which int8 storage cannot hold", "quantize weights to at most 8 bits (signed)")
        scales = recorded[0]
    else:
        int_type = INT8_WEIGHTS
        scales = bias_safe_scales(recorded[0], bias, input_scale)
    return quantize_weights(weights, scales, channel_axis, int_type), scales, int_type


def _bias(b: IntegerGraphBuilder, node: ir.Node, bias: np.ndarray, qx: QParams, scales: np.ndarray) -> ir.Value:
    """The quantized bias initializer: int32, or int64 on an int16 input (the 16x8 scheme's
    64-bit accumulators)."""
    wide = not qx.int_type.fits_int8()
    return b.constant(f"{node.name}_bias", quantize_bias(bias, qx.scale, scales, wide), int_type=INT64 if wide else INT32)


def lower_conv(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    in_shape = b.shape_of(x_f)
    if len(in_shape) not in (3, 4):
        raise UnsupportedModelError(f"Conv node '{node.name}' is {len(in_shape) - 2}-D",
                                    "edgec supports 1-D and 2-D convolutions")
    weights = constant_input(node, 1, "weights").astype(np.float32)
    cout, cin_per_group = weights.shape[:2]
    spatial = in_shape[2:]
    kernel = list(weights.shape[2:])
    strides = attribute(node, "strides", [1] * len(spatial))
    dilations = attribute(node, "dilations", [1] * len(spatial))
    pads = window_pads(node, spatial, kernel, strides, dilations)
    group, cin = int(attribute(node, "group", 1)), in_shape[1]
    if group < 1 or cin % group or cout % group or cin // group != cin_per_group:
        raise UnsupportedModelError(
            f"Conv node '{node.name}' has group={group} for {cin} input and {cout} output channels and weights "
            f"{list(weights.shape)}", "make the group count divide both channel counts (ONNX Conv's rule)")
    op_type = "DepthwiseConv" if group == cin and cin_per_group == 1 and group > 1 else "Conv"
    x = lift_to_4d(b, b.value_in_layout(x_f, channels_last=True), f"{x_f.name}_4d")
    qx, qy = b.qparams_of(x), b.desired_qparams(out_f)
    bias = constant_input(node, 2, "bias") if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros(cout)
    w_q, scales, w_type = _weight_quantization(b, weights, node.inputs[1], 0, bias, qx.scale)
    w_q = w_q.reshape(cout, cin_per_group, *as_2d(kernel, 1))
    w_layout = w_q.transpose(1, 2, 3, 0) if op_type == "DepthwiseConv" else w_q.transpose(0, 2, 3, 1)
    attrs = {
        "input_zero_point": qx.zero_point, "output_zero_point": qy.zero_point,
        **channel_requant_attributes(qx.scale, scales, qy.scale), **clamp_attributes(qy.int_type),
        "strides": as_2d(strides, 1), "dilations": as_2d(dilations, 1), "pads": as_2d_pads(pads),
    }
    if op_type == "DepthwiseConv":
        attrs["depth_multiplier"] = cout // cin
    out_shape = b.shape_of(out_f)
    nhwc = [out_shape[0], *as_2d(list(out_shape[2:]), 1), cout]
    weight_axis = 3 if op_type == "DepthwiseConv" else 0
    y = b.emit(op_type, [x, b.constant(f"{node.name}_weights", w_layout, channel_scales=(scales, weight_axis),
                                       int_type=w_type),
                         _bias(b, node, bias, qx, scales)],
               attrs, shape=nhwc, name=out_f.name, qparams=qy)
    bind_window_output(b, out_f, y)


def lower_conv_transpose(b: IntegerGraphBuilder, node: ir.Node) -> None:
    """ConvTranspose (2-D, group 1, dilation 1, explicit or VALID padding) as edgec TransposeConv:
    output ``y`` of input ``i`` and tap ``k`` is ``i * stride + k - pads_begin``, cropped to the
    output (``output_padding`` only makes it larger)."""
    x_f, out_f = node.inputs[0], node.outputs[0]
    in_shape = b.shape_of(x_f)
    weights = constant_input(node, 1, "weights").astype(np.float32)  # [Cin, Cout, kh, kw]
    auto_pad = attribute(node, "auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    problems = [what for what, bad in (
        ("is not 2-D", len(in_shape) != 4), ("is grouped", int(attribute(node, "group", 1)) != 1),
        ("is dilated", any(d != 1 for d in attribute(node, "dilations", [1, 1]))),
        (f"uses auto_pad {auto_pad}", auto_pad not in ("NOTSET", "", "VALID")),
        ("gives output_shape", attribute(node, "output_shape") is not None)) if bad]
    if problems:
        raise UnsupportedModelError(f"ConvTranspose node '{node.name}' {problems[0]}",
                                    "edgec supports 2-D ConvTranspose with group 1, dilation 1 and explicit pads")
    cout = weights.shape[1]
    pads = [0, 0, 0, 0] if auto_pad == "VALID" else [int(p) for p in attribute(node, "pads", [0, 0, 0, 0])]
    x = b.value_in_layout(x_f, channels_last=True)
    qx, qy = b.qparams_of(x), b.desired_qparams(out_f)
    bias = constant_input(node, 2, "bias") if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros(cout)
    w_q, scales, w_type = _weight_quantization(b, weights, node.inputs[1], 1, bias, qx.scale)
    out_shape = b.shape_of(out_f)
    attrs = {"input_zero_point": qx.zero_point, "output_zero_point": qy.zero_point,
             **channel_requant_attributes(qx.scale, scales, qy.scale), **clamp_attributes(qy.int_type),
             "strides": list(attribute(node, "strides", [1, 1])), "pads": pads, "output_size": list(out_shape[2:])}
    y = b.emit("TransposeConv", [x, b.constant(f"{node.name}_weights", w_q.transpose(1, 2, 3, 0),
                                               channel_scales=(scales, 0), int_type=w_type),
                                 _bias(b, node, bias, qx, scales)],
               attrs, shape=[out_shape[0], *out_shape[2:], cout], name=out_f.name, qparams=qy)
    b.bind(out_f, y, channels_last=True)


def _fully_connected(b: IntegerGraphBuilder, node: ir.Node, weights_nk: np.ndarray, channel_axis: int,
                     bias: np.ndarray, as_stored: bool = True) -> None:
    """Emit FullyConnected for ``node``; ``weights_nk`` is the float weight (output channels
    along ``channel_axis``), ``bias`` the float bias ``[N]``; ``as_stored`` when the weight is
    the node's own initializer, whose recorded QDQ scales then apply."""
    x_f, out_f = node.inputs[0], node.outputs[0]
    x = b.value_in_layout(x_f, channels_last=False)
    qx, qy = b.qparams_of(x), b.desired_qparams(out_f)
    w_q, scales, w_type = _weight_quantization(b, weights_nk, node.inputs[1] if as_stored else None, channel_axis,
                                               bias, qx.scale)
    w_q = np.ascontiguousarray(w_q if channel_axis == 0 else w_q.T)
    attrs = {"input_zero_point": qx.zero_point, "output_zero_point": qy.zero_point,
             **channel_requant_attributes(qx.scale, scales, qy.scale), **clamp_attributes(qy.int_type)}
    y = b.emit("FullyConnected", [x, b.constant(f"{node.name}_weights", w_q, channel_scales=(scales, 0),
                                                int_type=w_type),
                                  _bias(b, node, bias, qx, scales)],
               attrs, shape=b.shape_of(out_f), name=out_f.name, qparams=qy)
    b.bind(out_f, y, channels_last=False)


def lower_gemm(b: IntegerGraphBuilder, node: ir.Node) -> None:
    if attribute(node, "transA", 0):
        raise UnsupportedModelError(f"Gemm node '{node.name}' transposes its input (transA=1)",
                                    "export the layer as a plain Linear/Gemm with transA=0")
    raw = constant_input(node, 1, "weights").astype(np.float32)
    trans_b = bool(attribute(node, "transB", 0))
    alpha, beta = float(attribute(node, "alpha", 1.0)), float(attribute(node, "beta", 1.0))
    weights = (raw if trans_b else raw.T) * np.float32(alpha)
    n = weights.shape[0]
    bias = np.zeros(n)
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        c = constant_input(node, 2, "bias").astype(np.float64) * beta
        if c.size not in (1, n) and not (c.ndim == 2 and c.shape[-1] == n and c.shape[0] == 1):
            raise UnsupportedModelError(f"Gemm node '{node.name}' adds a bias of shape {list(c.shape)}",
                                        "use a per-output bias of shape [N]")
        bias = np.broadcast_to(c.reshape(-1), (n,))
    if alpha == 1.0:
        _fully_connected(b, node, raw, 0 if trans_b else 1, bias)
    else:
        _fully_connected(b, node, weights, 0, bias, as_stored=False)


def lower_matmul(b: IntegerGraphBuilder, node: ir.Node) -> None:
    """MatMul by a constant 2-D weight is FullyConnected (per-channel weights); any other
    (two computed operands, batched weights) is BatchMatMul, each operand per-tensor."""
    raw = const_array(node.inputs[1])
    if raw is not None and raw.ndim == 2:
        _fully_connected(b, node, raw.astype(np.float32), 1, np.zeros(raw.shape[1]))
        return
    out_f = node.outputs[0]
    if min(len(b.shape_of(v)) for v in node.inputs) < 2:
        raise UnsupportedModelError(f"MatMul node '{node.name}' has a 1-D operand",
                                    "reshape it to a matrix (edgec multiplies operands of rank 2 or more)")
    operands = []
    for i, value in enumerate(node.inputs):
        array = const_array(value)
        if array is None:
            operands.append(b.value_in_layout(value, channels_last=False))
        else:
            q = activation_qparams(float(array.min()), float(array.max()), b.activation_type)
            operands.append(b.constant(f"{node.name}_in{i}", q.quantize(array.astype(np.float32)), qparams=q))
    qy = b.desired_qparams(out_f)
    attrs = {**mul_attributes(b.qparams_of(operands[0]), b.qparams_of(operands[1]), qy),
             **clamp_attributes(qy.int_type)}
    y = b.emit("BatchMatMul", operands, attrs, shape=list(b.shape_of(out_f)), name=out_f.name, qparams=qy)
    b.bind(out_f, y, channels_last=False)


def _binary_operand(b: IntegerGraphBuilder, value: ir.Value, out_rank: int, channels_last: bool, name: str) -> ir.Value:
    """One operand of a broadcasting binary op, in the output's layout and rank."""
    array = const_array(value)
    if array is not None:
        array = array.astype(np.float32).reshape((1,) * (out_rank - array.ndim) + array.shape)
        if channels_last:
            array = array.transpose(channels_last_perm(out_rank))
        q = activation_qparams(float(array.min()), float(array.max()), b.activation_type)
        return b.constant(name, q.quantize(array), qparams=q)
    rank = len(b.shape_of(value))
    if rank == out_rank:
        return b.value_in_layout(value, channels_last)
    int_value = b.value_in_layout(value, channels_last=False)
    shape = [1] * (out_rank - rank) + list(b.shape_of(value))
    lifted = b.emit("Reshape", [int_value], {"shape": shape}, shape=shape, name=f"{name}_rank{out_rank}",
                    qparams=b.qparams_of(int_value))
    return lifted if not channels_last else b.permute(lifted, channels_last_perm(out_rank), f"{name}_nhwc")


def lower_binary(b: IntegerGraphBuilder, node: ir.Node) -> None:
    out_f = node.outputs[0]
    out_shape = b.shape_of(out_f)
    rank = len(out_shape)
    activations = [v for v in node.inputs if const_array(v) is None]
    if not activations:
        raise UnsupportedModelError(f"{node.op_type} node '{node.name}' has only constant inputs",
                                    "run constant folding (edgec does) or remove the node")
    channels_last = rank >= 3 and any(b.lookup(v)[1] for v in activations)
    a, c = (_binary_operand(b, v, rank, channels_last, f"{node.name}_in{i}") for i, v in enumerate(node.inputs))
    qa, qc, qy = b.qparams_of(a), b.qparams_of(c), b.desired_qparams(out_f)
    if node.op_type == "Mul":
        attrs = mul_attributes(qa, qc, qy)
    elif node.op_type == "PRelu":
        attrs = prelu_attributes(qa, qc, qy)
    else:
        left_shift = INT16_ADD_LEFT_SHIFT if qy.int_type.bits == 16 else ADD_LEFT_SHIFT
        attrs = add_attributes(qa, qc, qy, subtract=node.op_type == "Sub", left_shift=left_shift)
    attrs.update(clamp_attributes(qy.int_type))
    shape = [out_shape[p] for p in channels_last_perm(rank)] if channels_last else list(out_shape)
    y = b.emit(node.op_type, [a, c], attrs, shape=shape, name=out_f.name, qparams=qy)
    b.bind(out_f, y, channels_last)


def activation_bounds(node: ir.Node) -> tuple[float, float]:
    """The real interval a Relu or Clip node clamps to."""
    if node.op_type == "Relu":
        return 0.0, float("inf")
    low = const_array(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
    high = const_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    for index, bound in ((1, low), (2, high)):
        if bound is None and len(node.inputs) > index and node.inputs[index] is not None:
            constant_input(node, index, "bound")
    return (float(low) if low is not None else -float("inf"), float(high) if high is not None else float("inf"))


def lower_activation(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    x, channels_last = b.lookup(x_f)
    low, high = activation_bounds(node)
    qy = b.desired_qparams(out_f)
    clamp = (qy.quantize_bound(low) if low > -np.inf else qy.int_type.min,
             qy.quantize_bound(high) if high < np.inf else qy.int_type.max)
    if b.qparams_of(x) == qy:
        y = b.emit("Clamp", [x], {"min": clamp[0], "max": clamp[1]}, shape=x.shape.numpy(),
                   name=out_f.name, qparams=qy)
    else:
        y = b.to_qparams(x, qy, out_f.name, clamp)
    b.bind(out_f, y, channels_last)


def lower_softmax(b: IntegerGraphBuilder, node: ir.Node) -> None:
    x_f, out_f = node.inputs[0], node.outputs[0]
    rank = len(b.shape_of(x_f))
    axis = int(attribute(node, "axis", -1)) % rank
    x, channels_last = b.lookup(x_f)
    if not ((channels_last and axis == 1) or (not channels_last and axis == rank - 1)):
        x = b.value_in_layout(x_f, channels_last=False)
        channels_last = False
        if axis != rank - 1:
            raise UnsupportedModelError(f"Softmax node '{node.name}' normalizes axis {axis} of a rank-{rank} tensor",
                                        "edgec supports softmax over the last axis (or the channels of a feature map)")
    y = b.emit("Softmax", [x], softmax_attributes(b.qparams_of(x).scale), shape=x.shape.numpy(),
               name=out_f.name, qparams=SOFTMAX_OUTPUT)
    b.finish_preserving(out_f, y, channels_last)


COMPUTE_LOWERINGS = {
    "Conv": lower_conv,
    "ConvTranspose": lower_conv_transpose,
    "Gemm": lower_gemm,
    "MatMul": lower_matmul,
    "Add": lower_binary,
    "Sub": lower_binary,
    "Mul": lower_binary,
    "PRelu": lower_binary,
    "Relu": lower_activation,
    "Clip": lower_activation,
    "Softmax": lower_softmax,
}
