"""One C kernel call per integer-graph node: parameter blocks, constant arrays, scratch.

:func:`lower_node` turns an edgec node into a :class:`CLayer` for the kernels in
``kernels/``. Everything derivable ahead of time is computed here, with the reference
executor's own arithmetic so that the C matches it bit for bit:

* Conv/FullyConnected weights become ``[out_c][k_padded]`` (rows zero-padded to a multiple of
  four; offset pairs on DSP cores, :mod:`~backends.cortex_m.conv_rows`), DepthwiseConv weights
  are blocked by four channels; biases absorb the input zero point (``b - zp_in * sum(w)``), so
  kernels multiply raw int8 inputs. 4-bit and 2-bit weights are stored packed instead, for the
  ``_w4``/``_w2`` kernels (:mod:`backends.cortex_m.packing`).
* Add/Sub get each input's 256-entry rescaling table; Requantize, Clamp and Table become a 256-entry
  byte table (the whole operator, precomputed).

Calls are C text with ``{in0}``, ``{in1}``, ... ``{out}`` and ``{scratch}`` placeholders for
buffer pointers, filled in by the emitter once memory is planned.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from edgec.backends.cortex_m.clayer import (
    CArray,
    CLayer,
    broadcast_strides,
    constant_operands,
    element_bytes,
    shape_of,
    to_4d,
)
from edgec.backends.cortex_m.conv_rows import core_rows, offset_pair_bias
from edgec.backends.cortex_m.layout_layers import LAYOUT_OPS, layout_layer
from edgec.backends.cortex_m.output_stage import output_stage
from edgec.backends.cortex_m.overlap import depthwise_memory, depthwise_pairs, output_lag, pairs_chunk, rows_walk
from edgec.backends.cortex_m.packing import pack_depthwise, pack_rows, packed_bits, row_bits, row_step
from edgec.backends.cortex_m.s16_layers import s16_layer, touches_int16
from edgec.backends.cortex_m.transpose_conv_layer import transpose_conv_layer
from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import operator_rounding
from edgec.reference import KERNELS
from edgec.reference.conv import conv_groups
from edgec.reference.elementwise import prelu_identity, rescale_input
from edgec.reference.executor import node_attributes

# Every int8 value in the order a kernel indexes a 256-entry table: the byte read as uint8
# (0..127, then -128..-1).
_BYTES_IN_UINT8_ORDER = np.arange(256, dtype=np.uint8).view(np.int8)


def _padded_rows(weights: np.ndarray) -> tuple[np.ndarray, int]:
    rows = weights.reshape(weights.shape[0], -1)
    k = rows.shape[1]
    k_padded = (k + 3) // 4 * 4
    return np.pad(rows, ((0, 0), (0, k_padded - k))), k_padded


def window_geometry(x: list[int], y: list[int], k_h: int, k_w: int, attrs: dict) -> dict:
    """The NHWC window fields shared by the conv and depthwise parameter structs."""
    return dict(batches=x[0], in_h=x[1], in_w=x[2], in_c=x[3], out_h=y[1], out_w=y[2], out_c=y[3],
                k_h=k_h, k_w=k_w, stride_h=attrs["strides"][0], stride_w=attrs["strides"][1],
                dilation_h=attrs["dilations"][0], dilation_w=attrs["dilations"][1],
                pad_top=attrs["pads"][0], pad_left=attrs["pads"][1])


def gathered_column_bytes(g: dict, k_padded: int, step: int = 4) -> int:
    """Scratch for the gathered input columns of edgec_im2col.h's ``column`` (``k_padded`` bytes
    a column, two when there are two pixels or more), 0 when every column is read in place (a
    1x1 window over a multiple of ``step`` channels, every window inside the input)."""
    pixels = g["batches"] * g["out_h"] * g["out_w"]
    inside = (g["out_h"] - 1) * g["stride_h"] < g["in_h"] and (g["out_w"] - 1) * g["stride_w"] < g["in_w"]
    direct = g["k_h"] == g["k_w"] == 1 and g["in_c"] % step == 0 and g["pad_top"] == g["pad_left"] == 0 and inside
    return 0 if direct else k_padded * (2 if pixels > 1 else 1)


def conv_scratch_bytes(g: dict, k_padded: int, weight_bits: int | None = None, lone_prepared: bool = False) -> int:
    """Scratch of edgec_conv/edgec_fully_connected (the rule stated in edgec_conv.c), or of their
    packed forms for ``weight_bits`` 4 or 2 (edgec_conv_packed.h). ``lone_prepared``: a single
    pixel's column is prepared too (offset pairs, DSP cores without Helium)."""
    pixels = g["batches"] * g["out_h"] * g["out_w"]
    step = 4 if weight_bits is None else row_step(weight_bits)
    columns = 4 * k_padded if pixels > 1 or weight_bits is not None else 2 * k_padded if lone_prepared else 0
    return columns + gathered_column_bytes(g, k_padded, step)


def _conv_layer(node: ir.Node, prefix: str, attrs: dict, dsp: bool, mve: bool = False) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    weights = node.inputs[1].const_value.numpy()
    fully_connected = node.op_type == "FullyConnected"
    bits = packed_bits(node.inputs[1])
    rows, k_padded = _padded_rows(weights)
    stored = rows
    if bits is not None:
        flat = weights.reshape(weights.shape[0], -1)
        bits = row_bits(bits, flat.shape[1])
        stored, k_padded = pack_rows(flat, bits)
    if fully_connected:
        k = x[-1]
        geometry = dict(batches=math.prod(x[:-1]), in_h=1, in_w=1, in_c=k, out_h=1, out_w=1, out_c=y[-1],
                        k_h=1, k_w=1, stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, pad_top=0, pad_left=0)
    else:
        geometry = window_geometry(x, y, weights.shape[1], weights.shape[2], attrs)
    pixels = geometry["batches"] * geometry["out_h"] * geometry["out_w"]
    pairs, blocked = dsp and not mve and bits is None, 0
    if bits is None:
        stored, blocked = core_rows(rows, pixels, dsp, mve)
    stage_arrays, stage_params = output_stage(node, prefix, attrs, rows,
                                              bias_offset=offset_pair_bias(rows) if pairs else None)
    arrays = [CArray(f"{prefix}_weights", "int8_t", stored), *stage_arrays]
    params = {**stage_params, **geometry, "k_padded": k_padded,
              "per_channel": int(len(attrs["output_multiplier"]) > 1), "blocked": int(blocked)}
    function = "edgec_fully_connected" if fully_connected else "edgec_conv"
    suffix = "" if bits is None else f"_w{bits}"
    lag = None if fully_connected or bits is not None else output_lag(x, y, geometry["k_h"], geometry["k_w"], attrs, 2)
    return CLayer(node, f"edgec_conv{suffix}.c", f"{function}{suffix}(&{prefix}, {{in0}}, {{out}}, {{scratch}})",
                  arrays, "edgec_conv_params", params, lag=lag,
                  scratch_bytes=conv_scratch_bytes(geometry, k_padded, bits, lone_prepared=pairs and not blocked))


def _aligned(size: int) -> int:
    return (size + 7) // 8 * 8


def _group_node(node: ir.Node, group: int, groups: int) -> ir.Node:
    """The ungrouped Conv computing output channels of ``group``, reading its input channels
    from a contiguous tensor (the weights, bias and their metadata are the group's share)."""
    x, w = node.inputs[0], node.inputs[1]
    n, h, width, channels = shape_of(x)
    y = shape_of(node.outputs[0])
    per_group = y[3] // groups

    def part(value: ir.Value, array: np.ndarray, suffix: str) -> ir.Value:
        piece = ir.Value(name=f"{value.name}_{suffix}", shape=ir.Shape(list(array.shape)),
                         type=ir.TensorType(value.dtype), const_value=ir.tensor(np.ascontiguousarray(array)))
        piece.metadata_props.update(value.metadata_props)
        return piece

    rows = slice(group * per_group, (group + 1) * per_group)
    inputs = [ir.Value(name=f"{x.name}_group{group}", shape=ir.Shape([n, h, width, channels // groups]),
                       type=ir.TensorType(ir.DataType.INT8)),
              part(w, w.const_value.numpy()[rows], f"group{group}")]
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        inputs.append(part(node.inputs[2], node.inputs[2].const_value.numpy()[rows], f"group{group}"))
    output = ir.Value(name=f"{node.outputs[0].name}_group{group}", shape=ir.Shape([*y[:3], per_group]),
                      type=ir.TensorType(ir.DataType.INT8))
    return ir.node("Conv", inputs, domain=node.domain, outputs=[output], name=f"{node.name}_group{group}")


def _grouped_conv_layer(node: ir.Node, prefix: str, attrs: dict, dsp: bool, groups: int, mve: bool) -> CLayer:
    """A grouped Conv as one ungrouped ``edgec_conv`` per group: the group's input channels are
    copied to scratch, convolved into scratch, and copied to their place in the output."""
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    depth, per_group = x[3] // groups, y[3] // groups
    in_pixels, out_pixels = x[0] * x[1] * x[2], y[0] * y[1] * y[2]
    gathered, convolved = _aligned(in_pixels * depth), _aligned(out_pixels * per_group)
    per_channel = len(attrs["output_multiplier"]) > 1
    layers, calls = [], []
    for group in range(groups):
        group_attrs = dict(attrs)
        if per_channel:
            rows = slice(group * per_group, (group + 1) * per_group)
            group_attrs["output_multiplier"] = list(attrs["output_multiplier"][rows])
            group_attrs["output_shift"] = list(attrs["output_shift"][rows])
        name = f"{prefix}_g{group}"
        layer = _conv_layer(_group_node(node, group, groups), name, group_attrs, dsp, mve)
        layers.append((name, layer))
        calls += [f"edgec_copy_channels({in_pixels}u, {depth}u, {{in0}} + {group * depth}, {x[3]}u, "
                  f"{{scratch}}, {depth}u)",
                  layer.call.format(in0="{scratch}", out=f"{{scratch}} + {gathered}",
                                    scratch=f"{{scratch}} + {gathered + convolved}"),
                  f"edgec_copy_channels({out_pixels}u, {per_group}u, {{scratch}} + {gathered}, {per_group}u, "
                  f"{{out}} + {group * per_group}, {y[3]}u)"]
    return CLayer(node, layers[0][1].source, "; ".join(calls), [a for _, layer in layers for a in layer.arrays],
                  structs=[(layer.params_type, name, layer.params) for name, layer in layers],
                  scratch_bytes=gathered + convolved + max(layer.scratch_bytes for _, layer in layers))


def depthwise_weights(weights: np.ndarray, multiplier: int, dsp: bool, plain: bool = False) -> np.ndarray:
    """The DepthwiseConv weight bytes in the kernel's layout (see edgec_depthwise.c).

    ``weights`` is ``[1, kh, kw, out_c]``. Depth multiplier 1: blocks of four channels, per
    tap four weights (as int16 lane pairs [w0,w2] [w1,w3] on DSP cores), then the remaining
    channels as ``[taps][rest]``. Otherwise, or ``plain`` (Helium builds), ``[taps][out_c]``.
    """
    _, k_h, k_w, out_c = weights.shape
    per_tap = weights.reshape(k_h * k_w, out_c).astype(np.int8)
    if multiplier != 1 or plain:
        return per_tap.ravel()
    blocked = out_c // 4 * 4
    blocks = per_tap[:, :blocked].reshape(k_h * k_w, blocked // 4, 4).transpose(1, 0, 2)
    if dsp:
        pairs = blocks[..., [0, 2, 1, 3]].astype("<i2")  # [block][tap][w0, w2, w1, w3] as int16
        block_bytes = pairs.tobytes()
    else:
        block_bytes = np.ascontiguousarray(blocks).tobytes()
    rest = np.ascontiguousarray(per_tap[:, blocked:]).tobytes()
    return np.frombuffer(block_bytes + rest, dtype=np.int8)


def _depthwise_layer(node: ir.Node, prefix: str, attrs: dict, dsp: bool, mve: bool = False,
                     rows_allowed: bool = True) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    weights = node.inputs[1].const_value.numpy()  # [1, kh, kw, out_c]
    _, k_h, k_w, out_c = weights.shape
    per_tap = weights.reshape(k_h * k_w, out_c)
    bits = packed_bits(node.inputs[1]) if attrs["depth_multiplier"] == 1 and k_h * k_w <= 256 else None
    plain = mve and bits is None  # Helium's vectors read [taps][out_c] (edgec_depthwise.c)
    stored = (depthwise_weights(weights, attrs["depth_multiplier"], dsp, plain) if bits is None
              else pack_depthwise(weights, bits))
    stage_arrays, stage_params = output_stage(node, prefix, attrs, per_tap.T, out_c)
    arrays = [CArray(f"{prefix}_weights", "int8_t", stored), *stage_arrays]
    rows = rows_allowed and dsp and not mve and bits is None and rows_walk(x, y, k_h, k_w, attrs)
    pairs = not dsp and not mve and bits is None and depthwise_pairs(weights.shape, attrs)
    chunk = pairs_chunk(out_c, y[2], attrs["strides"][1]) if pairs else 0
    params = {**stage_params, **window_geometry(x, y, k_h, k_w, attrs),
              "depth_multiplier": attrs["depth_multiplier"], "plain": int(plain), "rows": int(rows), "chunk": chunk}
    suffix = "" if bits is None else f"_w{bits}"
    return CLayer(node, f"edgec_depthwise{suffix}.c",
                  f"edgec_depthwise_conv{suffix}(&{prefix}, {{in0}}, {{out}}, {{scratch}})",
                  arrays, "edgec_depthwise_params", params,
                  **depthwise_memory(x, y, k_h, k_w, attrs, rows, chunk))


def _binary_layer(node: ir.Node, prefix: str, attrs: dict, rounding: str) -> CLayer:
    """Add, Sub, Mul and PRelu (whose identity branch, a function of x alone, is ``table1``)."""
    out = to_4d(shape_of(node.outputs[0]), node)
    prelu = node.op_type == "PRelu"
    if prelu:
        attrs = {**attrs, "output_multiplier": attrs["alpha_multiplier"], "output_shift": attrs["alpha_shift"],
                 "input1_zero_point": attrs["input_zero_point"], "input2_zero_point": attrs["alpha_zero_point"]}
    params = {"output_multiplier": attrs["output_multiplier"], "output_shift": attrs["output_shift"],
              "output_zero_point": attrs["output_zero_point"], "activation_min": attrs["activation_min"],
              "activation_max": attrs["activation_max"], "input1_zero_point": attrs["input1_zero_point"],
              "input2_zero_point": attrs["input2_zero_point"], "shape": out}
    for index in (1, 2):
        in_shape = to_4d(shape_of(node.inputs[index - 1]), node)
        params[f"strides{index}"] = broadcast_strides(in_shape, out)
    arrays = []
    if prelu:
        identity = prelu_identity(attrs, rounding, _BYTES_IN_UINT8_ORDER)
        arrays.append(CArray(f"{prefix}_table1", "int32_t", identity.astype(np.int32)))
        params["table1"] = f"{prefix}_table1"
    elif node.op_type != "Mul":
        for index in (1, 2):
            table = rescale_input(attrs, rounding, index, _BYTES_IN_UINT8_ORDER)
            arrays.append(CArray(f"{prefix}_table{index}", "int32_t", table.astype(np.int32)))
            params[f"table{index}"] = f"{prefix}_table{index}"
    operands = constant_operands(node, prefix, arrays)
    function = {"Add": "edgec_add", "Sub": "edgec_sub", "Mul": "edgec_mul", "PRelu": "edgec_prelu"}[node.op_type]
    same_shape = node.inputs[0].const_value is None and shape_of(node.inputs[0]) == shape_of(node.outputs[0])
    return CLayer(node, "edgec_elementwise.c", f"{function}(&{prefix}, {operands[0]}, {operands[1]}, {{out}})",
                  arrays, "edgec_binary_params", params, in_place=same_shape)


def _batch_matmul_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    """BatchMatMul through element strides: batch axes padded to three (0 strides broadcast),
    an ``adj`` operand read transposed in place."""
    out = shape_of(node.outputs[0])
    if len(out) > 5:
        raise UnsupportedModelError(f"BatchMatMul node '{node.name}' has {len(out) - 2} batch axes",
                                    "the Cortex-M kernel takes at most three")
    batch = [1] * (5 - len(out)) + out[:-2]
    params = {"batches": batch, "rows": out[-2], "columns": out[-1]}
    for name, value, adjoint in (("a", node.inputs[0], attrs["adj_x"]), ("b", node.inputs[1], attrs["adj_y"])):
        shape = shape_of(value)
        strides = [math.prod(shape[axis + 1:]) for axis in range(len(shape))]
        outer, inner = strides[-2], strides[-1]  # of the stored matrix's rows and columns
        if name == "a":
            params["a_row"], params["a_depth"] = (inner, outer) if adjoint else (outer, inner)
            params["depth"] = shape[-2] if adjoint else shape[-1]
        else:
            params["b_depth"], params["b_column"] = (inner, outer) if adjoint else (outer, inner)
        lead = [1] * (5 - len(shape)) + shape[:-2]
        lead_strides = [0] * (5 - len(shape)) + strides[:-2]
        params[f"{name}_batch"] = [s if n != 1 else 0 for n, s in zip(lead[:3], lead_strides[:3])]
    params.update({"input1_zero_point": attrs["input1_zero_point"], "input2_zero_point": attrs["input2_zero_point"],
                   "output_zero_point": attrs["output_zero_point"], "multiplier": attrs["output_multiplier"],
                   "shift": attrs["output_shift"], "activation_min": attrs["activation_min"],
                   "activation_max": attrs["activation_max"]})
    arrays = []
    operands = constant_operands(node, prefix, arrays)
    return CLayer(node, "edgec_batch_matmul.c", f"edgec_batch_matmul(&{prefix}, {operands[0]}, {operands[1]}, {{out}})",
                  arrays, "edgec_batch_matmul_params", params)


def _lookup_layer(node: ir.Node, prefix: str, attrs: dict, rounding: str) -> CLayer:
    """Requantize, Clamp and Table: the operator applied to every int8 value, as a table."""
    constants = [value.const_value.numpy() for value in node.inputs[1:]]
    table = KERNELS[node.op_type](attrs, rounding, _BYTES_IN_UINT8_ORDER, *constants)
    size = math.prod(shape_of(node.outputs[0]))
    return CLayer(node, "edgec_elementwise.c", f"edgec_lookup({size}u, {prefix}_table, {{in0}}, {{out}})",
                  [CArray(f"{prefix}_table", "int8_t", table.astype(np.int8))], in_place=True)


def _pool_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    params = {"batches": x[0], "in_h": x[1], "in_w": x[2], "channels": x[3], "out_h": y[1], "out_w": y[2],
              "k_h": attrs["kernel_shape"][0], "k_w": attrs["kernel_shape"][1], "stride_h": attrs["strides"][0],
              "stride_w": attrs["strides"][1], "pad_top": attrs["pads"][0], "pad_left": attrs["pads"][1],
              "activation_min": attrs["activation_min"], "activation_max": attrs["activation_max"]}
    suffix, data = ("_s16", "(const int16_t *){in0}, (int16_t *){out}") if element_bytes(node.inputs[0]) == 2 \
        else ("", "{in0}, {out}")
    if node.op_type == "MaxPool":
        return CLayer(node, "edgec_pool.c", f"edgec_max_pool{suffix}(&{prefix}, {data})", [],
                      "edgec_pool_params", params)
    return CLayer(node, "edgec_pool.c", f"edgec_average_pool{suffix}(&{prefix}, {data}, (int32_t *){{scratch}})",
                  [], "edgec_pool_params", params, scratch_bytes=4 * x[3])


def _mean_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    shape = shape_of(node.inputs[0])
    axes = sorted(int(a) % len(shape) for a in attrs["axes"])
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise UnsupportedModelError(f"Mean node '{node.name}' reduces non-adjacent axes {axes}",
                                    "reduce a contiguous run of axes (e.g. the spatial axes of NHWC)")
    params = {"outer": math.prod(shape[:axes[0]]), "reduced": math.prod(shape[axes[0]:axes[-1] + 1]),
              "inner": math.prod(shape[axes[-1] + 1:]), "input_zero_point": attrs["input_zero_point"],
              "output_zero_point": attrs["output_zero_point"], "multiplier": attrs["output_multiplier"],
              "shift": attrs["output_shift"], "activation_min": attrs["activation_min"],
              "activation_max": attrs["activation_max"]}
    return CLayer(node, "edgec_pool.c", f"edgec_mean(&{prefix}, {{in0}}, {{out}})", [], "edgec_mean_params", params)


def _softmax_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    shape = shape_of(node.inputs[0])
    params = {"rows": math.prod(shape[:-1]), "depth": shape[-1], "input_multiplier": attrs["input_multiplier"],
              "input_left_shift": attrs["input_left_shift"], "diff_min": attrs["diff_min"]}
    return CLayer(node, "edgec_softmax.c", f"edgec_softmax(&{prefix}, {{in0}}, {{out}})", [],
                  "edgec_softmax_params", params)


def _router_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    """A branch condition: ``call`` is an ``int`` expression (the then branch when non-zero)."""
    weights = node.inputs[1].const_value.numpy().reshape(1, -1)
    positions = math.prod(shape_of(node.inputs[0])) // weights.shape[1]
    bias = int(node.inputs[2].const_value.numpy().reshape(-1)[0])
    folded = bias - attrs["input_zero_point"] * positions * int(weights.astype(np.int64).sum())
    arrays = [CArray(f"{prefix}_weights", "int8_t", weights.ravel())]
    params = {"weights": f"{prefix}_weights", "bias": folded, "k": weights.shape[1], "positions": positions,
              "strict": int(attrs["strict"])}
    return CLayer(node, "edgec_router.c", f"edgec_router(&{prefix}, {{in0}})", arrays, "edgec_router_params", params)


#: The integer operators :func:`lower_node` has a C kernel for.
KERNEL_OPS = frozenset({"Conv", "FullyConnected", "DepthwiseConv", "TransposeConv", "BatchMatMul", "Add", "Sub", "Mul", "PRelu",
                        "Requantize", "Clamp", "Table", "AveragePool", "MaxPool", "Mean", "Softmax", "Reshape",
                        "Router"}) | LAYOUT_OPS


def lower_node(node: ir.Node, index: int, rounding_mode: str, dsp: bool, mve: bool = False,
               rows: bool = True) -> CLayer:
    """The C layer for integer node ``node`` (the ``index``-th of the network) on a core with
    (``dsp``) or without the DSP extension, with or without Helium (``mve``); ``rows``: a
    DepthwiseConv that can take the rows walk does of edgec_depthwise.c."""
    attrs = node_attributes(node)
    prefix = f"layer{index}"
    rounding = operator_rounding(rounding_mode, node.op_type)
    op = node.op_type
    if touches_int16(node) and (layer := s16_layer(node, prefix, attrs, rounding, dsp, mve)) is not None:
        return layer
    if op == "Conv" and (groups := conv_groups(shape_of(node.inputs[0])[3], shape_of(node.inputs[1]))) > 1:
        return _grouped_conv_layer(node, prefix, attrs, dsp, groups, mve)
    if op in ("Conv", "FullyConnected"):
        return _conv_layer(node, prefix, attrs, dsp, mve)
    if op == "TransposeConv":
        return transpose_conv_layer(node, prefix, attrs)
    if op == "BatchMatMul":
        return _batch_matmul_layer(node, prefix, attrs)
    if op == "DepthwiseConv":
        return _depthwise_layer(node, prefix, attrs, dsp, mve, rows)
    if op in ("Add", "Sub", "Mul", "PRelu"):
        return _binary_layer(node, prefix, attrs, rounding)
    if op in ("Requantize", "Clamp", "Table"):
        return _lookup_layer(node, prefix, attrs, rounding)
    if op in ("AveragePool", "MaxPool"):
        return _pool_layer(node, prefix, attrs)
    if op == "Mean":
        return _mean_layer(node, prefix, attrs)
    if op == "Softmax":
        return _softmax_layer(node, prefix, attrs)
    if op in LAYOUT_OPS:
        return layout_layer(node, prefix, attrs, rounding)
    if op == "Reshape":
        return CLayer(node, None, None)
    if op == "Router":
        return _router_layer(node, prefix, attrs)
    raise UnsupportedModelError(
        f"the Cortex-M backend has no kernel for {op} (node '{node.name}')",
        "Quantize/Dequantize are supported only at the model's input and output",
    )
