"""Delta-encoded weights on Cortex-M: the flash layout and the C layers that decode it.

A Conv, FullyConnected or DepthwiseConv whose weight initializer carries a
:class:`~edgec.delta.DeltaScheme` (:func:`edgec.delta.get_scheme`) is stored in the encoded
form :func:`edgec.delta.encode_exact` derives from the reconstructed weights the graph holds,
and runs the ``_delta`` kernels (``edgec_conv_delta.c``, ``edgec_depthwise_delta.c``), which
rebuild the weights from flash as they go. Every other layer keeps its int8 (or packed
4-/2-bit) kernel.

Flash layout of one encoded layer (rows and their order as :func:`edgec.delta.weight_rows`:
Conv ``(kh, kw, cin)`` per output channel, FullyConnected ``K`` per output channel,
DepthwiseConv ``(kh, kw)`` per channel):

* ``<layer>_weights`` (the params' ``weights`` pointer, int8 storage of bytes): the deltas.
  Each row is a little-endian bit stream of ``K`` fields of ``bits`` bits, two's complement:
  delta ``j`` occupies bits ``j*bits .. j*bits+bits-1`` of the row, bit ``i`` of the row
  being bit ``i % 8`` of byte ``i // 8``. Rows start at byte boundaries (``row_bytes =
  ceil(K*bits/8)``); the unused bits of a row's last byte are zero. The array ends with
  :data:`STREAM_PAD` zero bytes, so that the decoder's word loads never read past it.
* ``<layer>_bases`` (int8): one base per segment, ``[rows][segments]`` (segments: one per row
  for ``tensor`` and ``channel`` scope, ``ceil(K/N)`` per row for ``block:N``; for ``tensor``
  scope the per-row bases the codec derives are stored, one byte a row).
* ``<layer>_delta`` (``edgec_delta_t``): bases pointer, ``k``, ``row_bytes``, segment length,
  segments per row, row buffer length, ``bits`` and ``running`` (decoding: fixed
  ``w = base + d``; running ``w[j] = w[j-1] + d[j]`` from ``w[-1] = base``, per segment).

Scratch (arena, :func:`conv_delta_scratch`, :func:`depthwise_delta_scratch`): the kernels
decode rows into int8 row buffers of ``row_buffer = ceil(K/8)*8`` bytes per row, four at a
time, never the whole tensor.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from edgec.backends.cortex_m.clayer import CArray, CLayer, shape_of
from edgec.backends.cortex_m.conv_rows import offset_pair_bias
from edgec.backends.cortex_m.layers import gathered_column_bytes, lower_node, window_geometry
from edgec.backends.cortex_m.output_stage import output_stage
from edgec.delta import ENCODABLE_OPS, DeltaScheme, EncodedWeights, encode_exact, get_scheme, weight_rows
from edgec.passes.qparams import int_type_of
from edgec.reference.executor import node_attributes

#: Zero bytes after the delta stream (the decoder loads two words at a group's start).
STREAM_PAD = 8
#: Pixel pairs whose columns edgec_conv_delta.c prepares before decoding a row pair once for all of them.
CONV_TILE_PAIRS = 4
#: Rows the Conv/FullyConnected delta kernel decodes at a time (a lone pixel's four channels).
CONV_ROWS = 4


def delta_stream(deltas: np.ndarray, bits: int) -> np.ndarray:
    """The ``[rows, K]`` deltas as the bit stream described in the module docstring (int8 bytes)."""
    rows, k = deltas.shape
    row_bytes = math.ceil(k * bits / 8)
    fields = (deltas.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint64)
    bit_index = np.arange(k * bits)
    values = (fields[:, bit_index // bits] >> (bit_index % bits).astype(np.uint64)) & np.uint64(1)
    stream = np.zeros((rows, row_bytes * 8), dtype=np.uint8)
    stream[:, : k * bits] = values.astype(np.uint8)
    packed = np.packbits(stream.reshape(rows, row_bytes, 8), axis=2, bitorder="little").reshape(-1)
    return np.concatenate([packed, np.zeros(STREAM_PAD, dtype=np.uint8)]).view(np.int8)


def row_buffer(k: int) -> int:
    """Bytes of one decoded row: ``k`` rounded up to whole groups of 8 deltas."""
    return math.ceil(k / 8) * 8


def encoded_weights(node: ir.Node) -> EncodedWeights | None:
    """The stored form of ``node``'s weights, or ``None`` when they carry no delta scheme."""
    if node.op_type not in ENCODABLE_OPS:
        return None
    value = node.inputs[1]
    scheme = get_scheme(value)
    if scheme is None:
        return None
    return encode_exact(weight_rows(node.op_type, value.const_value.numpy()), scheme, int_type_of(value))


def _decoder(prefix: str, encoded: EncodedWeights) -> tuple[list, dict]:
    """The arrays (deltas, bases) and ``edgec_delta_t`` fields of an encoded weight matrix."""
    scheme: DeltaScheme = encoded.scheme
    rows, k = encoded.deltas.shape
    arrays = [CArray(f"{prefix}_weights", "int8_t", delta_stream(encoded.deltas, scheme.bits)),
              CArray(f"{prefix}_bases", "int8_t", encoded.bases.astype(np.int8))]
    fields = {"bases": f"{prefix}_bases", "k": k, "row_bytes": math.ceil(k * scheme.bits / 8),
              "segment_length": encoded.segment_length, "segments": encoded.bases.shape[1],
              "row_buffer": row_buffer(k), "bits": scheme.bits, "running": int(scheme.running)}
    return arrays, fields


def conv_delta_scratch(geometry: dict, k_padded: int, k: int, dsp: bool) -> int:
    """Scratch of edgec_conv_delta/edgec_fully_connected_delta (edgec_conv_delta.c): prepared
    columns of up to :data:`CONV_TILE_PAIRS` pixel pairs (``4 * k_padded`` bytes each; a single
    pixel's, ``2 * k_padded``, on DSP cores), then :data:`CONV_ROWS` decoded rows, then the
    gathered int8 columns when there are any
    (:func:`~backends.cortex_m.layers.gathered_column_bytes`)."""
    pixels = geometry["batches"] * geometry["out_h"] * geometry["out_w"]
    pairs = min(pixels // 2, CONV_TILE_PAIRS)
    prepared = pairs * 4 * k_padded if pairs or not dsp else 2 * k_padded
    return prepared + CONV_ROWS * row_buffer(k) + gathered_column_bytes(geometry, k_padded)


def depthwise_delta_scratch(taps: int, dsp: bool) -> int:
    """Scratch of edgec_depthwise_conv_delta (edgec_depthwise_delta.c): one block of four
    channels' weights in edgec_depthwise.c's layout (int16 lane pairs on DSP cores: 8 bytes a
    tap, else 4), a border window of four channels (4 bytes a tap), four decoded rows."""
    return taps * (8 if dsp else 4) + taps * 4 + 4 * row_buffer(taps)


def _conv_layer(node: ir.Node, prefix: str, attrs: dict, encoded: EncodedWeights, dsp: bool) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    weights = node.inputs[1].const_value.numpy()
    rows = weights.reshape(weights.shape[0], -1)
    k = rows.shape[1]
    k_padded = (k + 3) // 4 * 4
    if node.op_type == "FullyConnected":
        geometry = dict(batches=math.prod(x[:-1]), in_h=1, in_w=1, in_c=k, out_h=1, out_w=1, out_c=y[-1],
                        k_h=1, k_w=1, stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, pad_top=0, pad_left=0)
        function = "edgec_fully_connected_delta"
    else:
        geometry = window_geometry(x, y, weights.shape[1], weights.shape[2], attrs)
        function = "edgec_conv_delta"
    arrays, fields = _decoder(prefix, encoded)
    # DSP cores turn each decoded row into offset pairs (edgec_conv_sums.h), padded to k_padded
    padded = np.pad(rows, ((0, 0), (0, k_padded - k)))
    stage_arrays, stage_params = output_stage(node, prefix, attrs, rows,
                                              bias_offset=offset_pair_bias(padded) if dsp else None)
    arrays += stage_arrays
    params = {**stage_params, **geometry, "k_padded": k_padded,
              "per_channel": int(len(attrs["output_multiplier"]) > 1)}
    return CLayer(node, "edgec_conv_delta.c", f"{function}(&{prefix}, &{prefix}_delta, {{in0}}, {{out}}, {{scratch}})",
                  arrays, "edgec_conv_params", params, scratch_bytes=conv_delta_scratch(geometry, k_padded, k, dsp),
                  structs=[("edgec_delta_t", f"{prefix}_delta", fields)], encoding=encoded.scheme.describe())


def _depthwise_layer(node: ir.Node, prefix: str, attrs: dict, encoded: EncodedWeights,
                     dsp: bool) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    weights = node.inputs[1].const_value.numpy()  # [1, kh, kw, out_c]
    _, k_h, k_w, out_c = weights.shape
    arrays, fields = _decoder(prefix, encoded)
    stage_arrays, stage_params = output_stage(node, prefix, attrs, weights.reshape(k_h * k_w, out_c).T, out_c)
    arrays += stage_arrays
    params = {**stage_params, **window_geometry(x, y, k_h, k_w, attrs),
              "depth_multiplier": attrs["depth_multiplier"]}
    return CLayer(node, "edgec_depthwise_delta.c",
                  f"edgec_depthwise_conv_delta(&{prefix}, &{prefix}_delta, {{in0}}, {{out}}, {{scratch}})",
                  arrays, "edgec_depthwise_params", params, scratch_bytes=depthwise_delta_scratch(k_h * k_w, dsp),
                  structs=[("edgec_delta_t", f"{prefix}_delta", fields)], encoding=encoded.scheme.describe())


def lower_layer(node: ir.Node, index: int, rounding_mode: str, dsp: bool, mve: bool = False,
                rows: bool = True) -> CLayer:
    """The C layer of ``node``: a delta kernel when its weights are delta-encoded, otherwise
    :func:`~backends.cortex_m.layers.lower_node`'s."""
    encoded = encoded_weights(node)
    if encoded is None:
        return lower_node(node, index, rounding_mode, dsp, mve, rows)
    attrs = node_attributes(node)
    if node.op_type == "DepthwiseConv":
        return _depthwise_layer(node, f"layer{index}", attrs, encoded, dsp)
    return _conv_layer(node, f"layer{index}", attrs, encoded, dsp)
