"""Low-bit weights on Cortex-M: which widths the backend takes, and how 4-bit and 2-bit weights are packed.

Activations of 2 to 8 bits live in int8 storage, as they are in the integer graph (the
kernels are the int8 ones: the reference saturates every result to the value's type, and so
do the kernels, through the activation range the graph carries). Weights of 3 to 8 bits are
stored one per byte, as int8. Signed 4-bit and 2-bit weights of Conv, FullyConnected and
DepthwiseConv are stored packed, two or four to a byte (:func:`packed_bits`), in the layouts
the kernels unpack inside their MAC loops:

* Conv/FullyConnected (``edgec_conv_packed.h``): each row of ``k`` weights is zero-padded to a
  whole number of 32-bit words (``32 / bits`` weights each) and rows go in pairs, word by word
  interleaved (``[c0 word 0][c1 word 0][c0 word 1]...``); an odd last channel is paired with
  a zero row. Inside a word the weights sit in two 16-bit lanes, most significant field first:
  field ``j`` of lane ``l`` holds ``k = 4 * (j // 2) + j % 2 + 2 * l`` (of the word's
  ``32 / bits``), so that ``(word << (bits * j)) & top-bits-of-each-lane`` is an SMLAD operand
  ``[w[k], w[k + 2]] * 2^(16 - bits)`` matching the int8 kernel's column lanes ``[x0, x2]``,
  ``[x1, x3]``. A row of 2-bit weights is stored in the 4-bit layout instead when padding it to
  16 weights a word would cost its loop more than 4-bit words do (:func:`row_bits`).
* DepthwiseConv (``edgec_depthwise_packed.h``, depth multiplier 1, at most 256 taps): channels
  in blocks of four (the last block zero-padded), per block the taps in 32-bit words of
  ``8 / bits`` taps (the last word zero-padded). Field ``j`` of lane ``l`` of a word holds tap
  ``j // 2`` of the word, channel ``2 * l + j % 2``: the same lane fields as the rows, so that
  one shift and mask gives the SMLABB/SMLATT operand ``[w[c0], w[c2]]`` or ``[w[c1], w[c3]]`` of a tap.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.inttype import IntType
from edgec.passes.qparams import int_type_of, set_int_type

#: Weight widths stored packed, and the weights per 32-bit word of a Conv/FullyConnected row.
PACKED_BITS = (4, 2)
_INTEGER_DTYPES = (ir.DataType.INT8, ir.DataType.UINT8, ir.DataType.INT32)


def packed_bits(weights: ir.Value) -> int | None:
    """4 or 2 when ``weights`` (a Conv/FullyConnected/DepthwiseConv weight initializer) is a
    signed type of that width, stored packed; ``None`` for one weight per byte."""
    int_type = int_type_of(weights)
    return int_type.bits if int_type.signed and int_type.bits in PACKED_BITS else None


def unsupported_width(node: ir.Node) -> str | None:
    """Why the Cortex-M backend cannot compile ``node``'s value types, or ``None`` if it can.

    Every int8-stored value (activation or weight) must have a type of at most 8 bits that
    int8 storage holds as it is; int32 values (biases) must have at most 32 bits.
    """
    for value in [*node.inputs, *node.outputs]:
        if value is None or value.dtype not in _INTEGER_DTYPES:
            continue
        int_type: IntType = int_type_of(value)
        kind = "weight" if value.const_value is not None else "activation"
        if value.dtype == ir.DataType.INT32:
            if int_type.bits > 32:
                return f"{kind} '{value.name}' of node '{node.name}' is {int_type.name}, wider than int32"
        elif int_type.bits > 8 or not int_type.fits_int8():
            return (f"{kind} '{value.name}' of node '{node.name}' is {int_type.name}; the Cortex-M kernels take "
                    f"values that int8 storage holds (at most 8 bits)")
    return None


def row_step(bits: int) -> int:
    """Weights per 32-bit word of a packed Conv/FullyConnected row."""
    return 32 // bits


def row_bits(bits: int, k: int) -> int:
    """The packed layout (4 or 2) of a Conv/FullyConnected row of ``k`` weights of ``bits`` bits.

    ``bits`` itself, except 2-bit rows that the 4-bit layout runs faster: the two-pixel loop of
    edgec_dot_packed.h takes 32 instructions per 4-bit word (8 k) and 60 per 2-bit word (16 k),
    so a row of, say, 8 or 40 weights, half a 2-bit word of padding, is faster in 4-bit words
    (2-bit values fit 4-bit fields exactly; the kernel is then the 4-bit one)."""
    if bits == 2 and 32 * -(-k // row_step(4)) < 60 * -(-k // row_step(2)):
        return 4
    return bits


def _word_slots(bits: int) -> np.ndarray:
    """For each k of a word (0 .. 32/bits - 1), the lowest bit of its field (see the module docstring)."""
    per_lane = 16 // bits
    lsb = np.zeros(2 * per_lane, dtype=np.int64)
    for lane in range(2):
        for j in range(per_lane):
            k = 4 * (j // 2) + j % 2 + 2 * lane
            lsb[k] = 16 * lane + 16 - bits * (j + 1)
    return lsb


def pack_rows(rows: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """``[out_c][k]`` signed weights packed as described above: (the bytes as int8, padded k)."""
    out_c, k = rows.shape
    step = row_step(bits)
    k_padded = -(-k // step) * step
    pairs = -(-out_c // 2)
    padded = np.zeros((2 * pairs, k_padded), dtype=np.int64)
    padded[:out_c, :k] = rows
    fields = (padded & ((1 << bits) - 1)).reshape(2 * pairs, k_padded // step, step)
    words = (fields << _word_slots(bits)).sum(axis=2)  # [row][word]
    interleaved = words.reshape(pairs, 2, -1).transpose(0, 2, 1).astype("<u4")
    return np.frombuffer(interleaved.tobytes(), dtype=np.int8).copy(), k_padded


def pack_depthwise(weights: np.ndarray, bits: int) -> np.ndarray:
    """``[1, kh, kw, out_c]`` signed weights packed by blocks of four channels (see above), as int8 bytes."""
    _, k_h, k_w, out_c = weights.shape
    taps, blocks = k_h * k_w, -(-out_c // 4)
    taps_per_word = 8 // bits
    words = -(-taps // taps_per_word)
    per_tap = np.zeros((words * taps_per_word, 4 * blocks), dtype=np.int64)
    per_tap[:taps, :out_c] = weights.reshape(taps, out_c)
    # [block][word][tap of the word][channel]
    fields = (per_tap & ((1 << bits) - 1)).reshape(words, taps_per_word, blocks, 4).transpose(2, 0, 1, 3)
    tap_in_word = np.arange(taps_per_word)[:, None]
    channel = np.arange(4)[None, :]
    lsb = 16 * (channel >> 1) + 16 - bits * (2 * tap_in_word + (channel & 1) + 1)
    packed = (fields << lsb).sum(axis=(2, 3)).astype("<u4")
    return np.frombuffer(packed.tobytes(), dtype=np.int8).copy()


def with_narrowed_weights(model: ir.Model, bits: int) -> ir.Model:
    """A copy of integer graph ``model`` whose Conv, FullyConnected and DepthwiseConv weights are
    clipped to ``bits``-bit narrow signed values and typed so (``int{bits}n``).

    For tests and benchmarks of the low-bit kernels on int8 graphs (e.g. TFLite models): the
    reference executor runs the clipped graph too, so C and reference stay comparable bit for bit.
    """
    copy = ir.from_proto(ir.to_proto(model))
    int_type = IntType(bits, True, narrow=True)
    for node in copy.graph:
        if node.op_type in ("Conv", "FullyConnected", "DepthwiseConv"):
            value = node.inputs[1]
            clipped = np.clip(value.const_value.numpy(), int_type.min, int_type.max).astype(np.int8)
            value.const_value = ir.Tensor(clipped, name=value.name)
            set_int_type(value, int_type)
    return copy
