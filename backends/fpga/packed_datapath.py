"""The packed datapath as the hardware computes it, bit for bit (numpy int64).

One function per hardware step, in the order of the RTL (``templates/packing/``), so that each
wire of a unit has a counterpart here:

1. :func:`weight_ports`: the weights of one cycle as the pre-adder's ports: D holds each
   weight's low ``W-1`` bits at its offset, A its sign bit at offset ``+ W - 1`` (unsigned
   weights: all bits in D, A zero); without a pre-adder (SB_MAC16) the fabric adds them.
2. :func:`preadd`: ``AD = D - A`` in the operand's width (two's complement wrap; the planner
   guarantees the true packed word fits, so the wrap is exact).
3. :func:`input_port`: the multiplier's other operand, ``sum_j x_j * 2**(j*S)``.
4. :func:`accumulate`: ``P = AD * B`` on a first cycle, ``P + AD * B`` otherwise, wrapped to
   the accumulator's width.
5. :func:`canaries`: per segment, its product modulo ``2**canary_bits`` (fabric LUTs).
6. :func:`carry_step`: each boundary's carry counter (the sideband) after this cycle, from
   the canary bits of ``P`` before and after the cycle and the canary.
7. :func:`extract`: every segment's exact sum from ``P`` and the counters.

:func:`run` chains them over the cycles of one accumulation; :func:`run_dual8x8` is the
SB_MAC16 two-multiplier unit; :func:`reference` is the plain numpy answer both must equal;
:func:`naive_extract` is the usual uncorrected read-out (sign-extend each field, add the
sign of the field below), exact for a single product but wrong once sums spill over a lane.

Arrays: weights ``w [batch, cycles, weights_per_word]``, inputs ``x [batch, cycles,
inputs_per_word]``, results ``[batch, lanes]``.
"""

from __future__ import annotations

import numpy as np

from edgec.backends.fpga.lanes import PRIMITIVES, Packing


def wrap(value: np.ndarray, bits: int) -> np.ndarray:
    """``value`` as a ``bits``-bit two's-complement number."""
    half = np.int64(1) << (bits - 1)
    return ((np.asarray(value, dtype=np.int64) + half) & ((half << 1) - 1)) - half


def field(value: np.ndarray, low: int, bits: int) -> np.ndarray:
    """Bits ``[low, low + bits)`` of ``value`` (two's complement), unsigned."""
    return (np.asarray(value, dtype=np.int64) >> low) & ((np.int64(1) << bits) - 1)


def weight_ports(packing: Packing, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pre-adder's D and A words for weights ``w [..., weights_per_word]``."""
    w = np.asarray(w, dtype=np.int64)
    bits = packing.weight_type.bits
    low_bits = bits - 1 if packing.weight_type.signed else bits
    d = np.zeros(w.shape[:-1], dtype=np.int64)
    a = np.zeros(w.shape[:-1], dtype=np.int64)
    for i in range(packing.weights_per_word):
        offset = i * packing.lane_width
        d |= field(w[..., i], 0, low_bits) << offset
        if packing.weight_type.signed:
            a |= field(w[..., i], bits - 1, 1) << (offset + bits - 1)
    return d, a


def preadd(packing: Packing, d: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``D - A`` in the weight operand's width."""
    return wrap(d - a, PRIMITIVES[packing.primitive].weight_bits)


def input_port(packing: Packing, x: np.ndarray) -> np.ndarray:
    """The B word for inputs ``x [..., inputs_per_word]`` (each sign- or zero-extended)."""
    x = np.asarray(x, dtype=np.int64)
    b = np.zeros(x.shape[:-1], dtype=np.int64)
    for j in range(packing.inputs_per_word):
        b = b + (x[..., j] << (j * packing.lane_width))
    return wrap(b, PRIMITIVES[packing.primitive].input_bits)


def accumulate(packing: Packing, p: np.ndarray, ad: np.ndarray, b: np.ndarray, first: bool) -> np.ndarray:
    """The accumulator after one cycle."""
    product = ad * b
    return wrap(product if first else p + product, PRIMITIVES[packing.primitive].acc_bits)


def canaries(packing: Packing, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per segment, ``sum_{i+j=k} w_i * x_j`` modulo ``2**canary_bits``, from the operands'
    low canary bits only (what the fabric multiplies): ``[..., lanes]``."""
    bits = packing.canary_bits
    wl = field(w, 0, bits)
    xl = field(x, 0, bits)
    out = np.zeros((*wl.shape[:-1], packing.lanes), dtype=np.int64)
    for i in range(packing.weights_per_word):
        for j in range(packing.inputs_per_word):
            out[..., i + j] += wl[..., i] * xl[..., j]
    return field(out, 0, bits)


def carry_step(packing: Packing, carries: np.ndarray, p_before: np.ndarray, p_after: np.ndarray,
               canary: np.ndarray) -> np.ndarray:
    """Counters ``[..., lanes - 1]`` (boundary ``k`` at column ``k - 1``) after one cycle.

    The move ``delta`` of boundary ``k`` satisfies ``delta = F_after - F_before - canary_k``
    modulo ``2**canary_bits`` (``F`` the low canary bits of ``P``'s field ``k``) and lies in
    ``[carry_low, carry_low + 2**canary_bits)``, which makes it unique."""
    bits = packing.canary_bits
    out = carries.copy()
    for k in range(1, packing.lanes):
        offset = packing.offsets[k]
        residue = field(p_after, offset, bits) - field(p_before, offset, bits) - canary[..., k]
        low = packing.carry_low[k - 1]
        delta = low + field(residue - low, 0, bits)
        out[..., k - 1] = wrap(carries[..., k - 1] + delta, packing.sideband_bits)
    return out


def extract(packing: Packing, p: np.ndarray, carries: np.ndarray) -> np.ndarray:
    """Every segment's exact sum: ``c_{k+1} * 2**L + field_k(P) - c_k``, and the top
    segment ``(P >> off_top) - c_top`` (``c_0 = 0``), in ``acc_bits``."""
    lanes, width = packing.lanes, packing.lane_width
    zero = np.zeros(p.shape, dtype=np.int64)
    below = [zero] + [carries[..., k - 1] for k in range(1, lanes)]
    out = np.empty((*p.shape, lanes), dtype=np.int64)
    for k in range(lanes - 1):
        out[..., k] = (below[k + 1] << width) + field(p, packing.offsets[k], width) - below[k]
    out[..., lanes - 1] = (p >> packing.offsets[-1]) - below[lanes - 1]
    return wrap(out, packing.acc_bits)


def run(packing: Packing, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The segment sums of one accumulation over ``w.shape[1]`` cycles, as the packed
    datapath computes them (``sdv``/``conv``/``none``; :func:`run_dual8x8` for ``dual8x8``)."""
    if packing.scheme == "dual8x8":
        return run_dual8x8(packing, w, x)
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    batch, cycles = w.shape[:2]
    p = np.zeros(batch, dtype=np.int64)
    carries = np.zeros((batch, packing.lanes - 1), dtype=np.int64)
    for t in range(cycles):
        d, a = weight_ports(packing, w[:, t])
        p_next = accumulate(packing, p, preadd(packing, d, a), input_port(packing, x[:, t]), t == 0)
        if packing.canary:
            before = np.zeros_like(p) if t == 0 else p
            start = np.zeros_like(carries) if t == 0 else carries
            carries = carry_step(packing, start, before, p_next, canaries(packing, w[:, t], x[:, t]))
        p = p_next
    return extract(packing, p, carries) if packing.lanes > 1 else wrap(p, packing.acc_bits)[:, None]


def dual_step(o: np.ndarray, high: np.ndarray, product: np.ndarray, first: bool,
              sideband_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """One SB_MAC16 half: the 16-bit accumulator (unsigned) and its wrap counter after adding
    ``product`` (``|product| < 2**15``). The carry out of the 16-bit add, from the MSBs, minus
    the product's sign is the counter's move."""
    o_before = np.zeros_like(o) if first else o
    o_after = field(o_before + field(product, 0, 16), 0, 16)
    msb_before, msb_after, negative = field(o_before, 15, 1), field(o_after, 15, 1), field(product, 15, 1)
    carry = (msb_before & negative) | ((msb_before | negative) & (1 - msb_after))
    start = np.zeros_like(high) if first else high
    return o_after, wrap(start + carry - negative, sideband_bits)


def run_dual8x8(packing: Packing, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Two output channels sharing one activation on SB_MAC16's two 8x8 multipliers: the
    products (16 bits each, sign- or zero-extended 8-bit operands) go into two 16-bit
    accumulators; each lane's sum is ``high * 2**16 + O``."""
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    batch, cycles = w.shape[:2]
    o = np.zeros((batch, 2), dtype=np.int64)
    high = np.zeros((batch, 2), dtype=np.int64)
    for t in range(cycles):
        product = wrap(w[:, t, :2] * x[:, t, :1], 16)
        o, high = dual_step(o, high, product, t == 0, packing.sideband_bits)
    return wrap((high << 16) + o, packing.acc_bits)


def reference(packing: Packing, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Plain numpy: segment ``k`` sums ``w_i * x_j`` over ``i + j = k`` and all cycles."""
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros((w.shape[0], packing.lanes), dtype=np.int64)
    for i in range(packing.weights_per_word):
        for j in range(packing.inputs_per_word):
            out[:, i + j] += (w[:, :, i] * x[:, :, j]).sum(axis=1)
    return out


def naive_extract(packing: Packing, p: np.ndarray) -> np.ndarray:
    """The uncorrected read-out: each field sign-extended, plus the sign bit of the field
    below it (the borrow a negative lower lane took). Exact only while every segment's sum
    fits its lane as a signed number."""
    width = packing.lane_width
    out = np.empty((*p.shape, packing.lanes), dtype=np.int64)
    for k in range(packing.lanes):
        own = wrap(field(p, packing.offsets[k], width), width) if k < packing.lanes - 1 else p >> packing.offsets[k]
        borrow = field(p, packing.offsets[k] - 1, 1) if k else 0
        out[..., k] = own + borrow
    return out


def accumulator(packing: Packing, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``P`` after the cycles of one accumulation (no correction), for :func:`naive_extract`."""
    w = np.asarray(w, dtype=np.int64)
    p = np.zeros(w.shape[0], dtype=np.int64)
    for t in range(w.shape[1]):
        d, a = weight_ports(packing, w[:, t])
        p = accumulate(packing, p, preadd(packing, d, a), input_port(packing, np.asarray(x)[:, t]), t == 0)
    return p
