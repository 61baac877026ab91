"""The lane planner: how many low-bit multiplications one DSP multiplier computes per cycle.

A packing puts several small products into one wide multiplication. The packed result word
``P`` (the DSP's accumulator) holds a sum of *segments* at bit offsets ``off_k``::

    P = sum_k V_k * 2**off_k        (exactly, as integers; P never overflows its register)

and the planner guarantees that every segment's exact sum over an accumulation of ``K``
cycles can be recovered from ``P`` plus a few bits computed in the fabric. Schemes:

``sdv`` (matrix-vector, FINN's soft datapath vectorization)
    ``lanes`` output channels share one activation ``x``: the weight operand is
    ``sum_l w_l * 2**(l*L)`` (built by the pre-adder, ``D - A``: the weights' low ``W-1``
    bits in D, their sign bits in A), so segment ``l`` is ``V_l = w_l * x``.
``conv`` (convolution, of the HiKonv/BSEG kind)
    ``N`` weights in the weight operand and ``M`` activations in the other, both at stride
    ``S``; the product is a polynomial product, segment ``k`` sums ``w_i * x_j`` over
    ``i + j = k`` (``N + M - 1`` segments, ``N * M`` products per cycle). Feeding
    consecutive input positions as ``x_j`` and reversed kernel taps as ``w_i`` makes each
    segment a partial 1-D convolution output; the consumer adds the partial segments of
    consecutive cycles.
``dual8x8`` (SB_MAC16)
    the iCE40 MAC's two independent 8x8 multipliers with their 16-bit accumulators, two
    output channels sharing one activation; the fabric extends each accumulator by a wrap
    counter (the sideband), driven by the accumulator's MSB and the product's sign.
``none``
    one product per cycle.

Segments overlap while accumulating: the lower segments' sums borrow from and carry into
the upper ones. The exact recovery (``packed_datapath`` implements it bit for bit) keeps,
per segment boundary ``k >= 1``, a *carry counter* ``c_k = floor(R_k / 2**off_k)`` with
``R_k = sum_{j<k} S_j * 2**off_j`` (the sideband, ``sideband_bits`` wide). Per cycle ``c_k``
moves by ``delta = floor((u + r) / 2**off_k)`` (``u`` the old low bits, ``r`` this cycle's lower
segments), which lies in a window of at most ``2**canary_bits`` values fixed by the types
(``carry_low`` is its low end). The canary, segment ``k``'s product modulo ``2**canary_bits``
(a tiny multiplier in the fabric), resolves it: ``delta = (F - F_prev - canary) mod
2**canary_bits`` brought into the window, ``F`` the low canary bits of ``P``'s field ``k``.
Then ``S_k = c_{k+1} * 2**L + field_k(P) - c_k`` and the top segment is ``(P >> off_top) -
c_top``. With ``L = W + A - 1`` and 2 canary bits the window is FINN's {-1, 0, 1}.

Algorithm: exhaustive search over the canary width (2, then 3 bits), the lane stride and
(conv) the operand counts; a candidate is kept only when every bound holds as an exact
integer inequality: the weight word fits the multiplier's operand (and D/A fit the
pre-adder ports), the activation word fits the other operand, ``P``'s extreme values after
``K`` cycles fit the accumulator, and every boundary's carry window fits the canary. The
best candidate has the most products per cycle, then fewer canary bits, then the widest
stride. Optimality limits: bounds are per-segment worst cases (segments of a conv share
operands, so the true ranges may be narrower and a denser packing might still be exact);
lanes are evenly spaced; the canary is at most 3 bits wide and narrower than a lane (so
the DSP computes at least one bit of every product: a canary as wide as the lane would move
the whole product into the fabric and the packing would save nothing); a sideband wider than needed for
the worst case is never used to trade lanes. A combination that nothing packs gets ``none``.
"""

from __future__ import annotations

import dataclasses

from edgec.errors import EdgecError
from edgec.inttype import IntType, signed_bits

#: Canary widths the planner tries, cheapest first.
CANARY_CHOICES = (2, 3)


@dataclasses.dataclass(frozen=True)
class Primitive:
    """A DSP multiplier as the planner sees it: operand widths (two's complement), the
    accumulator width, whether a pre-adder forms the weight operand (``D - A``), and the
    schemes edgec has RTL for on it."""

    name: str
    weight_bits: int  # the packed weight operand (pre-adder output when there is one)
    input_bits: int
    acc_bits: int
    preadder: bool
    schemes: tuple[str, ...]


PRIMITIVES = {
    "DSP48E2": Primitive("DSP48E2", 27, 18, 48, True, ("sdv", "conv")),
    "DSP48E1": Primitive("DSP48E1", 25, 18, 48, True, ("sdv", "conv")),
    "SB_MAC16": Primitive("SB_MAC16", 16, 16, 32, False, ("dual8x8",)),
}


@dataclasses.dataclass(frozen=True)
class Packing:
    """One layer's packing on one primitive (see the module docstring for the schemes).

    ``offsets[k]`` is segment ``k``'s bit offset in ``P`` (``lanes`` segments, stride
    ``lane_width``); ``carry_low[k - 1]`` the low end of boundary ``k``'s carry window.
    ``acc_bits`` holds every segment's exact sum over ``accumulation`` cycles (signed)."""

    primitive: str
    scheme: str
    weight_type: IntType
    input_type: IntType
    accumulation: int
    lanes: int
    offsets: tuple[int, ...]
    lane_width: int
    weights_per_word: int
    inputs_per_word: int
    canary_bits: int
    carry_low: tuple[int, ...]
    sideband_bits: int
    acc_bits: int
    macs_per_dsp: int

    @property
    def canary(self) -> bool:
        """True when the scheme corrects carries with a canary product."""
        return self.canary_bits > 0

    def describe(self) -> str:
        """One line: primitive, scheme, lanes, offsets, sideband and MACs/DSP."""
        head = f"{self.primitive} {self.weight_type}x{self.input_type} K={self.accumulation}: {self.scheme}"
        if self.scheme == "none":
            return f"{head}, 1 MAC/DSP"
        shape = (f"{self.weights_per_word} weights x {self.inputs_per_word} inputs, " if self.scheme == "conv" else "")
        canary = f", {self.canary_bits}-bit canary" if self.canary else ""
        return (f"{head}, {shape}{self.lanes} lanes of {self.lane_width} bits at {list(self.offsets)}{canary}, "
                f"{self.sideband_bits}-bit sideband, {self.acc_bits}-bit sums, {self.macs_per_dsp} MACs/DSP")


def _fits(low: int, high: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= low and high < (1 << (bits - 1))


def product_range(weight_type: IntType, input_type: IntType) -> tuple[int, int]:
    """The least and greatest ``w * x`` over the two types."""
    corners = [w * x for w in (weight_type.min, weight_type.max) for x in (input_type.min, input_type.max)]
    return min(corners), max(corners)


def segment_counts(scheme: str, n: int, m: int) -> list[int]:
    """How many products each segment sums per cycle (``sdv``: one per lane)."""
    if scheme == "sdv":
        return [1] * n
    return [sum(1 for i in range(n) if 0 <= k - i < m) for k in range(n + m - 1)]


def carry_window(offsets: tuple[int, ...], low: list[int], high: list[int], k: int) -> tuple[int, int]:
    """The least and greatest per-cycle move of boundary ``k``'s carry counter, for segment
    value bounds ``low``/``high`` per cycle (module docstring)."""
    r_low = sum(low[j] << offsets[j] for j in range(k))
    r_high = sum(high[j] << offsets[j] for j in range(k))
    unit = 1 << offsets[k]
    return r_low // unit, (unit - 1 + r_high) // unit


def _weight_word_fits(primitive: Primitive, weight_type: IntType, n: int, stride: int) -> bool:
    total = sum(1 << (i * stride) for i in range(n))
    if not _fits(weight_type.min * total, weight_type.max * total, primitive.weight_bits):
        return False
    top = (n - 1) * stride
    # Pre-adder ports: D holds the low W-1 bits of each weight, A their sign bits, both as
    # non-overlapping bit fields of one port-wide word.
    return not primitive.preadder or (stride >= weight_type.bits and top + weight_type.bits <= primitive.weight_bits)


def _build(primitive: Primitive, scheme: str, weight_type: IntType, input_type: IntType, accumulation: int,
           n: int, m: int, stride: int, canary_bits: int) -> Packing | None:
    """The packing with these parameters, or ``None`` when one of its bounds fails."""
    if stride <= canary_bits or not _weight_word_fits(primitive, weight_type, n, stride):
        return None
    x_total = sum(1 << (j * stride) for j in range(m))
    if not _fits(input_type.min * x_total, input_type.max * x_total, primitive.input_bits):
        return None
    p_low, p_high = product_range(weight_type, input_type)
    counts = segment_counts(scheme, n, m)
    low, high = [c * p_low for c in counts], [c * p_high for c in counts]
    lanes = len(counts)
    offsets = tuple(k * stride for k in range(lanes))
    if not _fits(accumulation * sum(v << o for v, o in zip(low, offsets)),
                 accumulation * sum(v << o for v, o in zip(high, offsets)), primitive.acc_bits):
        return None
    carry_low, sideband = [], 1
    for k in range(1, lanes):
        lo, hi = carry_window(offsets, low, high, k)
        if hi - lo + 1 > 1 << canary_bits:
            return None
        carry_low.append(lo)
        r_low = sum(low[j] << offsets[j] for j in range(k))
        r_high = sum(high[j] << offsets[j] for j in range(k))
        sideband = max(sideband, signed_bits((accumulation * r_low) >> offsets[k],
                                             (accumulation * r_high) >> offsets[k]))
    acc_bits = signed_bits(accumulation * min(low), accumulation * max(high))
    return Packing(primitive.name, scheme, weight_type, input_type, accumulation, lanes, offsets, stride, n, m,
                   canary_bits, tuple(carry_low), sideband, acc_bits, n * m)


def _none(primitive: Primitive, weight_type: IntType, input_type: IntType, accumulation: int) -> Packing:
    p_low, p_high = product_range(weight_type, input_type)
    return Packing(primitive.name, "none", weight_type, input_type, accumulation, 1, (0,), 0, 1, 1, 0, (), 0,
                   signed_bits(accumulation * p_low, accumulation * p_high), 1)


def _dual8x8(primitive: Primitive, weight_type: IntType, input_type: IntType, accumulation: int) -> Packing | None:
    if weight_type.bits > 8 or input_type.bits > 8:
        return None
    p_low, p_high = product_range(weight_type, input_type)
    sideband = signed_bits((accumulation * p_low) >> 16, (accumulation * p_high) >> 16)
    return Packing(primitive.name, "dual8x8", weight_type, input_type, accumulation, 2, (0, 16), 16, 2, 1, 0, (),
                   sideband, signed_bits(accumulation * p_low, accumulation * p_high), 2)


def _candidates(primitive: Primitive, weight_type: IntType, input_type: IntType, kind: str, accumulation: int,
                taps: int | None):
    widest = primitive.weight_bits
    for canary_bits in CANARY_CHOICES:
        for stride in range(canary_bits + 1, widest + 1):
            if "sdv" in primitive.schemes and taps is None:
                for n in range(2, widest // max(stride, 1) + 2):
                    yield _build(primitive, "sdv", weight_type, input_type, accumulation, n, 1, stride, canary_bits)
            if kind == "conv" and "conv" in primitive.schemes:
                weight_counts = range(1, widest // stride + 2) if taps is None else (taps,)
                for n in weight_counts:
                    for m in range(max(2, (taps or 1) - 1), primitive.input_bits // stride + 2):
                        yield _build(primitive, "conv", weight_type, input_type, accumulation, n, m, stride,
                                     canary_bits)
    if "dual8x8" in primitive.schemes and taps is None:
        yield _dual8x8(primitive, weight_type, input_type, accumulation)


def plan_packing(primitive: str, weight_type: IntType, input_type: IntType, *, kind: str = "mvu",
                 accumulation: int, taps: int | None = None) -> Packing:
    """The densest exact packing of ``weight_type x input_type`` products on ``primitive``
    (``DSP48E2``, ``DSP48E1``, ``SB_MAC16``) for outputs that each sum ``accumulation``
    products; ``kind`` ``"mvu"`` (lanes share an activation) or ``"conv"`` (also tries the
    convolution packing). Falls back to ``none`` (1 MAC/DSP) when nothing packs.

    ``taps`` (with ``kind="conv"``) plans the convolution packing of a row of a ``taps``-wide
    kernel (:mod:`.conv_rows`): only ``conv`` candidates with exactly ``taps`` weights and at
    least ``taps - 1`` inputs (so that a row's partial segments carry into the next window
    only), ``accumulation`` then counting the unit's cycles per output (kernel rows times input
    channels), not products."""
    if primitive not in PRIMITIVES:
        raise EdgecError(f"unknown DSP primitive '{primitive}'", f"use one of {', '.join(PRIMITIVES)}")
    if kind not in ("mvu", "conv"):
        raise EdgecError(f"unknown packing kind '{kind}'", "use 'mvu' or 'conv'")
    if accumulation < 1:
        raise EdgecError(f"an output must sum at least one product, not {accumulation}", "pass accumulation >= 1")
    if taps is not None and (kind != "conv" or taps < 1):
        raise EdgecError(f"taps={taps} needs kind='conv' and at least one tap", "plan a row with kind='conv', taps>=1")
    spec = PRIMITIVES[primitive]
    best = _none(spec, weight_type, input_type, accumulation)
    if best.acc_bits > spec.acc_bits:
        raise EdgecError(f"{accumulation} products of {weight_type} x {input_type} overflow the {spec.acc_bits}-bit "
                         f"accumulator of {primitive}", "split the accumulation")
    rank = (best.macs_per_dsp, 0, 0)
    for candidate in _candidates(spec, weight_type, input_type, kind, accumulation, taps):
        if candidate is None:
            continue
        key = (candidate.macs_per_dsp, -candidate.canary_bits, candidate.lane_width)
        if key > rank:
            best, rank = candidate, key
    return best


def finn_lanes(weight_type: IntType, input_type: IntType) -> int:
    """FINN's lane count on DSP48E2: ``1 + floor((27 - !narrow - W) / (W + A - 1))``."""
    w, a = weight_type.bits, input_type.bits
    return 1 + (27 - (0 if weight_type.narrow else 1) - w) // (w + a - 1)
