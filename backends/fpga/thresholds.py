"""Exact thresholds of a requantizing node, computed from the reference kernel itself.

A requantizing node (``FullyConnected``, ``Conv``) maps its raw dot product ``acc`` (raw
weights times raw stored inputs, nothing folded in) to an output value through the reference
arithmetic: ``acc + offset[c]`` (``offset = bias - input_zero_point * sum(weights[c])``, the
exact form of ``bias + sum((x - zp) * w)``), then
:func:`edgec.reference.requant.requantize` (multiplier, shift, output zero point,
activation clamp, in the node's rounding) and the saturation of the executor to the output's
declared type. :class:`Requant` is that map, evaluated by calling the reference functions.

Why thresholds are exact: for every channel the map is a non-decreasing step function of
``acc`` over the reachable range (proved below, and checked by evaluation), so for each
output level ``L`` the set ``{acc : f(acc) >= L}`` is an upward-closed interval and
``f(acc) = type.min + #{L > type.min : acc >= t_L}`` with ``t_L`` its smallest element.
:func:`thresholds` finds each ``t_L`` by a vectorised binary search over the reachable range
``[lo, hi]``, all channels and levels at once; ``t_L = lo`` for a level every reachable
``acc`` reaches, ``hi + 1`` for one none reaches.

Why the map is monotone: a multiplier ``m >= 0`` makes ``acc * m`` non-decreasing; gemmlowp's
doubling high multiply rounds half up and ``RoundingDivideByPOT`` half away from zero, both
non-decreasing; single rounding's ``(x*m + r) >> s`` is a floor of a non-decreasing value;
adding the zero point, clamping and saturating keep order. The one non-monotone step is the
int32 wrap of ``acc << shift`` (double rounding, positive shift) and int64 overflow of the
product: :func:`check_monotone` refuses a range where either can happen, and evaluates the
map on every accumulator when the range is small (else on a sample) to assert it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import INT32_MAX, INT32_MIN
from edgec.inttype import IntType, signed_bits
from edgec.reference.requant import requantize

#: Ranges with at most this many (channel, accumulator) points are checked exhaustively.
EXHAUSTIVE_POINTS = 1 << 22
#: Points per channel the monotonicity check evaluates on a larger range.
SAMPLE_POINTS = 4096


@dataclasses.dataclass(frozen=True)
class Requant:
    """The map from a raw dot product to a node's output value, per output channel ``c``.

    ``rounding`` is the operator's own (``"double"`` or ``"single"``, see
    :func:`edgec.fixedpoint.operator_rounding`); ``multiplier``/``shift``/``offset`` have one
    entry per channel.
    """

    offset: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    output_zero_point: int
    activation_min: int
    activation_max: int
    rounding: str
    output_type: IntType

    @property
    def channels(self) -> int:
        return self.offset.shape[0]

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """Output values (int64) for raw dot products ``acc [..., C]``, exactly as the reference."""
        acc = np.asarray(acc, dtype=np.int64) + self.offset
        out = requantize(acc, self.multiplier, self.shift, self.output_zero_point,
                                 self.activation_min, self.activation_max, self.rounding)
        return self.output_type.saturate(out).astype(np.int64)


def node_requant(attrs: dict, rounding: str, weights: np.ndarray, bias: np.ndarray | None,
                 output_type: IntType) -> Requant:
    """The :class:`Requant` of a node with reference attributes ``attrs`` (as
    :func:`edgec.reference.executor.node_attributes` gives them), ``weights [C, K]`` and
    ``bias [C]`` (or ``None``)."""
    channels = weights.shape[0]
    offset = -int(attrs["input_zero_point"]) * weights.astype(np.int64).sum(axis=1)
    if bias is not None:
        offset = offset + np.asarray(bias, dtype=np.int64).reshape(channels)

    def per_channel(values) -> np.ndarray:
        return np.broadcast_to(np.asarray(values, dtype=np.int64).ravel(), (channels,)).copy()

    return Requant(offset, per_channel(attrs["output_multiplier"]), per_channel(attrs["output_shift"]),
                   int(attrs["output_zero_point"]), int(attrs["activation_min"]), int(attrs["activation_max"]),
                   rounding, output_type)


def accumulator_range(weights: np.ndarray, input_type: IntType) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the smallest and largest raw dot product of ``weights [C, K]`` with
    any input vector of ``input_type`` (padding holds a value of the type too)."""
    w = weights.astype(np.int64)
    low, high = w * input_type.min, w * input_type.max
    return np.minimum(low, high).sum(axis=1), np.maximum(low, high).sum(axis=1)


def check_monotone(requant: Requant, lo: np.ndarray, hi: np.ndarray, name: str) -> None:
    """Raise :class:`UnsupportedModelError` unless ``requant`` is non-decreasing on ``[lo, hi]``
    in every channel (see the module docstring for the argument and what is evaluated)."""
    fix = "requantize this layer with a smaller accumulator range or shift (re-run edgec quantize)"
    if np.any(requant.multiplier < 0):
        raise UnsupportedModelError(f"layer '{name}' has a negative requantization multiplier", fix)
    ends = np.stack([lo + requant.offset, hi + requant.offset])
    left = np.maximum(requant.shift, 0) if requant.rounding == "double" else np.zeros_like(requant.shift)
    shifted = ends * (np.int64(1) << left)
    if np.any(np.abs(ends) > INT32_MAX) or np.any(shifted < INT32_MIN) or np.any(shifted > INT32_MAX):
        raise UnsupportedModelError(f"layer '{name}': accumulators can leave int32 before requantization, "
                                    "where the reference wraps around (no threshold form)", fix)
    span = int((hi - lo).max(initial=0)) + 1
    if span * requant.channels <= EXHAUSTIVE_POINTS:
        points = lo[None, :] + np.arange(span, dtype=np.int64)[:, None]
        points = np.minimum(points, hi[None, :])
    else:
        rng = np.random.default_rng(0)
        fractions = np.sort(rng.random((SAMPLE_POINTS, 1)), axis=0)
        points = lo[None, :] + np.floor(fractions * (hi - lo + 1)[None, :]).astype(np.int64)
        points = np.vstack([lo[None, :], points, hi[None, :]])
    if np.any(np.diff(requant(points), axis=0) < 0):
        raise UnsupportedModelError(f"layer '{name}': requantization is not monotone in its accumulator", fix)


def thresholds(requant: Requant, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``[C, levels - 1]`` int64: for each channel and each output level above the type's
    minimum, the smallest accumulator in ``[lo, hi]`` reaching it (``hi + 1`` if none does).

    Assumes ``requant`` is non-decreasing on ``[lo, hi]`` (:func:`check_monotone`).
    """
    out_type = requant.output_type
    levels = np.arange(out_type.min + 1, out_type.max + 1, dtype=np.int64)
    shape = (levels.size, requant.channels)
    low = np.broadcast_to(lo, shape).copy()
    high = np.broadcast_to(hi + 1, shape).copy()  # invariant: the answer lies in [low, high]
    active = low < high
    while np.any(active):
        mid = (low + high) // 2  # < high, so <= hi, where active
        reached = requant(np.minimum(mid, hi)) >= levels[:, None]
        high = np.where(active & reached, mid, high)
        low = np.where(active & ~reached, mid + 1, low)
        active = low < high
    return np.ascontiguousarray(low.T)


def exact_thresholds(requant: Requant, lo: np.ndarray, hi: np.ndarray, name: str) -> np.ndarray:
    """:func:`thresholds` after :func:`check_monotone`: the thresholds that make
    ``apply_thresholds(acc) == requant(acc)`` for every ``acc`` in ``[lo, hi]``."""
    check_monotone(requant, lo, hi, name)
    return thresholds(requant, lo, hi)


def accumulator_bits(layer) -> int:
    """Signed bits an MVU layer's accumulator and threshold comparators need: every reachable
    raw dot product (:func:`accumulator_range` of its weights and input type) and every one
    of its thresholds (which lie in ``[lo, hi + 1]``) fit."""
    lo, hi = accumulator_range(layer.weights, layer.input_type)
    t = layer.thresholds
    low = min(int(lo.min(initial=0)), int(t.min(initial=0)))
    high = max(int(hi.max(initial=0)), int(t.max(initial=0)))
    return signed_bits(low, high)
