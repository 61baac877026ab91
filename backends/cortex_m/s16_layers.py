"""Cortex-M layers of the 16x8 scheme: nodes that read or write int16 activations.

The accumulating and element-wise operators run the plain-C kernels of
``kernels/edgec_s16.c`` (and the int16 pools of ``edgec_pool.c``) with the node's attributes
as they are: the kernels apply zero points themselves, biases become int64, per-tensor
multipliers are repeated per channel. The data-movement operators reuse the byte kernels of
:mod:`backends.cortex_m.layout_layers` on a byte view of the tensors (an int16 element is two
bytes of the last axis). Any other operator on int16 is a one-line error naming it.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from edgec.backends.cortex_m.clayer import CArray, CLayer, broadcast_strides, element_bytes, shape_of, to_4d
from edgec.errors import UnsupportedModelError

#: The operators with int16 activations the Cortex-M backend compiles.
S16_OPS = frozenset({"Conv", "DepthwiseConv", "FullyConnected", "Add", "Sub", "Mul", "Requantize", "Clamp",
                     "AveragePool", "MaxPool", "Reshape", "Slice", "Pad", "Concat", "Resize", "Transpose"})


def touches_int16(node: ir.Node) -> bool:
    """Whether any activation ``node`` reads or writes is int16."""
    return any(v is not None and v.const_value is None and v.dtype == ir.DataType.INT16
               for v in [*node.inputs, *node.outputs])


def s16_unsupported(node: ir.Node) -> UnsupportedModelError:
    """The error for an operator on int16 activations with no Cortex-M kernel."""
    return UnsupportedModelError(f"the Cortex-M backend has no int16 kernel for {node.op_type} (node '{node.name}')",
                                 f"int16 activations run {', '.join(sorted(S16_OPS))}; quantize this part of the "
                                 "model with int8 activations")


def _per_channel(values, channels: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.int32).reshape(-1)
    return np.broadcast_to(array, (channels,)).copy() if array.size == 1 else array


def paired_rows(rows: np.ndarray) -> np.ndarray:
    """``[n][depth]`` weight rows with each whole group of four stored ``w0 w2 w1 w3``, so that
    SXTB16 of a word (and of it rotated by 8) gives the int16 pairs ``(w0, w1)`` and ``(w2, w3)``
    that meet the inputs ``(x0, x1)`` and ``(x2, x3)`` (edgec_s16.c); a tail shorter than four
    stays in order."""
    whole = rows.shape[1] // 4 * 4
    grouped = rows[:, :whole].reshape(rows.shape[0], -1, 4)[:, :, [0, 2, 1, 3]].reshape(rows.shape[0], whole)
    return np.concatenate([grouped, rows[:, whole:]], axis=1)


def _accumulating_layer(node: ir.Node, prefix: str, attrs: dict, single: bool, paired: bool) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    weights = node.inputs[1].const_value.numpy()
    bias = node.inputs[2].const_value.numpy() if len(node.inputs) > 2 and node.inputs[2] is not None else None
    out_c = y[-1]
    depthwise = node.op_type == "DepthwiseConv"
    if node.op_type == "FullyConnected":
        geometry = dict(batches=math.prod(x[:-1]), in_h=1, in_w=1, in_c=x[-1], out_h=1, out_w=1, k_h=1, k_w=1,
                        stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, pad_top=0, pad_left=0)
        stored = weights
    else:
        geometry = dict(batches=x[0], in_h=x[1], in_w=x[2], in_c=x[3], out_h=y[1], out_w=y[2], k_h=weights.shape[1],
                        k_w=weights.shape[2], stride_h=attrs["strides"][0], stride_w=attrs["strides"][1],
                        dilation_h=attrs["dilations"][0], dilation_w=attrs["dilations"][1],
                        pad_top=attrs["pads"][0], pad_left=attrs["pads"][1])
        stored = weights.reshape(-1, out_c) if depthwise else weights
    paired = paired and not depthwise
    if paired:
        stored = paired_rows(stored.reshape(out_c, -1))
    arrays = [CArray(f"{prefix}_weights", "int8_t", np.ascontiguousarray(stored).ravel()),
              CArray(f"{prefix}_bias", "int64_t", np.zeros(out_c, np.int64) if bias is None else bias.astype(np.int64)),
              CArray(f"{prefix}_multiplier", "int32_t", _per_channel(attrs["output_multiplier"], out_c)),
              CArray(f"{prefix}_shift", "int32_t", _per_channel(attrs["output_shift"], out_c))]
    params = {"weights": f"{prefix}_weights", "bias": f"{prefix}_bias", "multiplier": f"{prefix}_multiplier",
              "shift": f"{prefix}_shift", **geometry, "out_c": out_c,
              "depth": 0 if depthwise else weights.shape[-1],
              "depth_multiplier": int(attrs.get("depth_multiplier", 1)),
              "input_zero_point": attrs["input_zero_point"], "output_zero_point": attrs["output_zero_point"],
              "activation_min": attrs["activation_min"], "activation_max": attrs["activation_max"],
              "wide": int(bias is not None and bias.dtype == np.int64), "paired": int(paired), "single": int(single)}
    if depthwise:
        if geometry["k_h"] * geometry["k_w"] > 256:
            raise UnsupportedModelError(f"int16 DepthwiseConv node '{node.name}' has a {geometry['k_h']}x"
                                        f"{geometry['k_w']} window", "the Cortex-M kernel takes up to 256 taps")
        return CLayer(node, "edgec_s16.c", f"edgec_depthwise_conv_s16(&{prefix}, (const int16_t *){{in0}}, "
                      "(int16_t *){out})", arrays, "edgec_s16_conv_params", params)
    inside = (geometry["out_h"] - 1) * geometry["stride_h"] < geometry["in_h"] and \
        (geometry["out_w"] - 1) * geometry["stride_w"] < geometry["in_w"]
    direct = geometry["k_h"] == geometry["k_w"] == 1 and params["depth"] == geometry["in_c"] and \
        geometry["pad_top"] == geometry["pad_left"] == 0 and inside  # edgec_conv_s16's rule
    return CLayer(node, "edgec_s16.c", f"edgec_conv_s16(&{prefix}, (const int16_t *){{in0}}, (int16_t *){{out}}, "
                  "(int16_t *){scratch})", arrays, "edgec_s16_conv_params", params,
                  scratch_bytes=0 if direct else 2 * geometry["in_c"] * geometry["k_h"] * geometry["k_w"])


def _binary_layer(node: ir.Node, prefix: str, attrs: dict, single: bool) -> CLayer:
    out = to_4d(shape_of(node.outputs[0]), node)
    params = {"shape": out, "op": ["Add", "Sub", "Mul"].index(node.op_type), "single": int(single)}
    for name in ("input1_zero_point", "input2_zero_point", "output_zero_point", "output_multiplier", "output_shift",
                 "activation_min", "activation_max"):
        params[name] = attrs[name]
    for name in ("left_shift", "input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift"):
        params[name] = attrs.get(name, 0)
    arrays, operands = [], []
    for index, value in enumerate(node.inputs):
        params[f"strides{index + 1}"] = broadcast_strides(to_4d(shape_of(value), node), out)
        if value.const_value is None:
            operands.append(f"(const int16_t *){{in{index}}}")
        else:
            arrays.append(CArray(f"{prefix}_input{index}", "int16_t", value.const_value.numpy().astype(np.int16)))
            operands.append(f"{prefix}_input{index}")
    return CLayer(node, "edgec_s16.c", f"edgec_binary_s16(&{prefix}, {operands[0]}, {operands[1]}, (int16_t *){{out}})",
                  arrays, "edgec_s16_binary_params", params)


def _requantize_layer(node: ir.Node, prefix: str, attrs: dict, single: bool) -> CLayer:
    params = {"size": math.prod(shape_of(node.outputs[0])), "input_bytes": element_bytes(node.inputs[0]),
              "output_bytes": element_bytes(node.outputs[0]), "input_zero_point": attrs["input_zero_point"],
              "output_zero_point": attrs["output_zero_point"], "multiplier": attrs["output_multiplier"],
              "shift": attrs["output_shift"], "activation_min": attrs["activation_min"],
              "activation_max": attrs["activation_max"], "single": int(single)}
    return CLayer(node, "edgec_s16.c", f"edgec_requantize_s16(&{prefix}, {{in0}}, {{out}})", [],
                  "edgec_s16_requantize_params", params,
                  in_place=params["output_bytes"] <= params["input_bytes"])


def s16_layer(node: ir.Node, prefix: str, attrs: dict, rounding: str, dsp: bool, mve: bool) -> CLayer | None:
    """The layer of ``node``, which reads or writes int16 activations (:func:`touches_int16`), on
    a core with (``dsp``) or without the DSP extension, with or without Helium (``mve``):
    Conv, DepthwiseConv, FullyConnected, Add, Sub, Mul, Requantize and Clamp have kernels here;
    for the pools and the data-movement operators (``None``) the int8 builders of
    :mod:`backends.cortex_m.layers` and :mod:`backends.cortex_m.layout_layers` are element-size
    aware; any other operator is an error."""
    op, single = node.op_type, rounding == "single"
    if op not in S16_OPS or (op == "Resize" and attrs["mode"] != "nearest"):
        raise s16_unsupported(node)
    if op == "Requantize":
        return _requantize_layer(node, prefix, attrs, single)
    if op == "Clamp":  # a Requantize by exactly 1 (2^30 * 2^(1-31)), clamped
        identity = {"input_zero_point": 0, "output_zero_point": 0, "output_multiplier": 1 << 30, "output_shift": 1,
                    "activation_min": attrs["min"], "activation_max": attrs["max"]}
        return _requantize_layer(node, prefix, identity, single)
    if any(v is not None and v.const_value is None and v.dtype != ir.DataType.INT16
           for v in [*node.inputs, *node.outputs]):
        raise UnsupportedModelError(f"node '{node.name}' ({op}) mixes int16 and int8 activations",
                                    "convert between them with a Requantize (TFLite QUANTIZE)")
    if op in ("Conv", "DepthwiseConv", "FullyConnected"):
        return _accumulating_layer(node, prefix, attrs, single, dsp and not mve)
    if op in ("Add", "Sub", "Mul"):
        return _binary_layer(node, prefix, attrs, single)
    return None
