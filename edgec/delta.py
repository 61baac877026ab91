"""Delta encoding of integer weights (Delta-Aware Training, arXiv 2606.16516): the codec.

A weight tensor is stored as full-width *references* plus narrow two's complement *deltas*.
This module defines the exact meaning every component shares: the pass that encodes a
graph's weights (:mod:`passes.delta_encode`), the trainer that makes weights fit
(:mod:`edgec.train.delta_aware`) and every backend's decoder.

Rows and order. A weight tensor is read as rows, one per output channel, each row in the
order its kernels walk it (:func:`weight_rows`): ``FullyConnected`` ``[Cout, K]`` as is;
``Conv`` OHWI as ``[O, H*W*I]`` (kernel height, then width, then input channel);
``DepthwiseConv`` ``[1, kh, kw, C]`` as ``[C, kh*kw]``.

Groups (``scope``). Weights sharing one reference: the whole tensor (``tensor``: the rows
concatenated in order), one row (``channel``), or blocks of ``N`` consecutive weights of a
row (``block:N``; a row's last block may be shorter; blocks never straddle rows).

Schemes, for a group ``e[0..n-1]`` and deltas of ``bits`` bits (``D = [-2^(b-1), 2^(b-1)-1]``):

1. ``fixed``: one reference ``r = ceil((min e + max e) / 2)`` (the centre, so a group whose
   spread is at most ``2^b - 1`` always fits); ``d[j] = clip(e[j] - r, D)``, ``rec[j] = r + d[j]``.
2. ``consecutive`` (the paper's open-loop running sum): ``r = e[0]``,
   ``d[j] = clip(e[j] - e[j-1], D)`` with ``e[-1] = r``; ``rec[j] = rec[j-1] + d[j]``
   (``rec[-1] = r``), saturated to the weight type. Clipping errors accumulate.
3. ``closed-loop``: ``r = e[0]``, ``d[j] = clip(e[j] - rec[j-1], D)``, ``rec[j] = rec[j-1] + d[j]``:
   each delta corrects the error of the reconstruction so far, so errors never accumulate.

Invariants: ``rec`` lies in the weight type; ``encode`` of a reconstruction under the same
scheme reconstructs it exactly (error 0), so a graph stores its *reconstructed* weights and
any backend re-derives the stored form from them with :func:`encode_exact`. The
``consecutive`` and ``closed-loop`` encodings of exactly representable weights are the same
deltas (decoders know two kinds: offset from a base, and running sum from a base).

Storage (:meth:`DeltaScheme.stored_bits`): ``bits`` per weight plus the weight type's width per
reference; ``int8`` storage is 8 bits per weight.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from edgec.errors import EdgecError
from edgec.inttype import IntType

#: ``metadata_props`` key on a weight initializer holding its :class:`DeltaScheme` as JSON.
DELTA_KEY = "edgec.delta"
SCHEMES = ("fixed", "consecutive", "closed-loop")
DELTA_BITS = range(2, 7)
#: Operators whose weights (input 1) may be delta-encoded.
ENCODABLE_OPS = ("Conv", "DepthwiseConv", "FullyConnected")


@dataclasses.dataclass(frozen=True)
class DeltaScheme:
    """How a weight tensor is stored: ``bits``-bit deltas (2 to 6), ``scheme`` (:data:`SCHEMES`),
    ``scope`` (``"tensor"``, ``"channel"`` or ``"block"`` with ``block`` weights per group), and
    what to do with a weight the deltas cannot reach (``saturate`` or raise)."""

    bits: int = 4
    scheme: str = "closed-loop"
    scope: str = "channel"
    block: int = 0
    saturate: bool = True

    def __post_init__(self) -> None:
        if self.bits not in DELTA_BITS:
            raise EdgecError(f"delta width {self.bits} is not supported", "use 2 to 6 delta bits")
        if self.scheme not in SCHEMES:
            raise EdgecError(f"unknown delta scheme '{self.scheme}'", f"use one of {', '.join(SCHEMES)}")
        if self.scope not in ("tensor", "channel", "block"):
            raise EdgecError(f"unknown delta scope '{self.scope}'", "use tensor, channel or block:N")
        if (self.scope == "block") != (self.block > 0):
            raise EdgecError(f"delta scope '{self.scope}' with block {self.block}",
                             "give block:N with N >= 1 (e.g. block:16), or tensor/channel")

    @property
    def running(self) -> bool:
        """True when decoding is a running sum (``consecutive``, ``closed-loop``)."""
        return self.scheme != "fixed"

    @property
    def scope_name(self) -> str:
        return f"block:{self.block}" if self.scope == "block" else self.scope

    @property
    def delta_min(self) -> int:
        return -(2 ** (self.bits - 1))

    @property
    def delta_max(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def group_count(self, rows: int, row_length: int) -> int:
        """Number of references stored for a ``rows`` x ``row_length`` weight matrix."""
        if self.scope == "tensor":
            return 1
        if self.scope == "channel":
            return rows
        return rows * math.ceil(row_length / self.block)

    def stored_bits(self, rows: int, row_length: int, weight_bits: int = 8) -> int:
        """Bits the encoded matrix needs: deltas plus ``weight_bits``-bit references."""
        return rows * row_length * self.bits + self.group_count(rows, row_length) * weight_bits

    def to_json(self) -> str:
        return json.dumps({"bits": self.bits, "scheme": self.scheme, "scope": self.scope_name})

    def describe(self) -> str:
        return f"{self.scheme} {self.bits}-bit deltas per {self.scope_name}"

    @classmethod
    def parse(cls, bits: int, scheme: str = "closed-loop", scope: str = "channel",
              saturate: bool = True) -> DeltaScheme:
        """A scheme from its command-line spelling: ``scope`` is ``tensor``, ``channel`` or ``block:N``."""
        if scope.startswith("block"):
            _, _, count = scope.partition(":")
            if not count.isdigit() or int(count) < 1:
                raise EdgecError(f"delta scope '{scope}' has no block size", "write block:N, e.g. block:16")
            return cls(bits, scheme, "block", int(count), saturate)
        return cls(bits, scheme, scope, 0, saturate)

    @classmethod
    def from_json(cls, text: str) -> DeltaScheme:
        data = json.loads(text)
        return cls.parse(int(data["bits"]), data["scheme"], data["scope"])


def weight_rows(op_type: str, weights: np.ndarray) -> np.ndarray:
    """The ``[rows, K]`` view of a weight tensor in its kernels' order (module docstring)."""
    if op_type == "DepthwiseConv":
        return weights.reshape(-1, weights.shape[-1]).T
    return weights.reshape(weights.shape[0], -1)


def rows_to_weights(op_type: str, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`weight_rows`."""
    if op_type == "DepthwiseConv":
        return np.ascontiguousarray(rows.T).reshape(shape)
    return rows.reshape(shape)


def _groups(scheme: DeltaScheme, rows: int, row_length: int) -> list[tuple[int, int]]:
    """Each group as (start, stop) into the row-major flattened matrix."""
    if scheme.scope == "tensor":
        return [(0, rows * row_length)]
    size = row_length if scheme.scope == "channel" else scheme.block
    return [(row * row_length + start, row * row_length + min(start + size, row_length))
            for row in range(rows) for start in range(0, row_length, size)]


def reconstruct(rows: np.ndarray, scheme: DeltaScheme, int_type: IntType) -> np.ndarray:
    """What ``rows`` (integers of ``int_type``) become when stored as ``scheme`` (saturating):
    an int64 array of the same shape. Equals ``rows`` exactly when they are representable."""
    flat = np.asarray(rows, dtype=np.int64).ravel()
    out = np.empty_like(flat)
    starts = np.array([g[0] for g in _groups(scheme, *rows.shape)])
    stops = np.array([g[1] for g in _groups(scheme, *rows.shape)])
    lengths = stops - starts
    low, high = scheme.delta_min, scheme.delta_max
    if not scheme.running:
        for start, stop in zip(starts, stops):
            group = flat[start:stop]
            ref = (int(group.min()) + int(group.max()) + 1) // 2
            out[start:stop] = ref + np.clip(group - ref, low, high)
        return out.reshape(rows.shape)
    if len(starts) * 8 < int(lengths.max()):  # a few long chains: scalar loops are faster
        for start, stop in zip(starts, stops):
            out[start:stop] = _running_chain(flat[start:stop].tolist(), scheme, int_type)
        return out.reshape(rows.shape)
    # Many chains: all at once, step j of every chain longer than j.
    previous = flat[starts].copy()
    for j in range(int(lengths.max())):
        live = lengths > j
        index = starts[live] + j
        target = flat[index]
        if scheme.scheme == "closed-loop":
            step = np.clip(target - previous[live], low, high)
        else:
            step = np.clip(target - flat[index - 1], low, high) if j else np.zeros_like(target)
        value = np.clip(previous[live] + step, int_type.min, int_type.max)
        out[index] = value
        previous[live] = value
    return out.reshape(rows.shape)


def _running_chain(values: list[int], scheme: DeltaScheme, int_type: IntType) -> list[int]:
    """One group's reconstruction under a running scheme (the rules of the module docstring)."""
    low, high = scheme.delta_min, scheme.delta_max
    closed = scheme.scheme == "closed-loop"
    out, previous, last = [], values[0], values[0]
    for value in values:
        step = min(max(value - (previous if closed else last), low), high)
        previous = min(max(previous + step, int_type.min), int_type.max)
        last = value
        out.append(previous)
    return out


@dataclasses.dataclass(frozen=True)
class EncodedWeights:
    """The stored form of an exactly representable ``[rows, K]`` matrix.

    ``bases[r, s]`` is what segment ``s`` of row ``r`` decodes from (segments are the scope's
    groups cut at row boundaries: one per row for ``tensor``/``channel``, ``ceil(K / N)`` per
    row for ``block:N``); ``deltas`` is ``[rows, K]`` in ``[delta_min, delta_max]``. Decoding:
    ``fixed``: ``w = base + d``; running: ``w[j] = w[j-1] + d[j]`` from ``w[-1] = base``. For
    ``tensor`` scope the bases of rows after the first are derived (the single ``fixed``
    reference, or the previous row's last weight); a backend may store them (8 bits a row)
    rather than carry the running value across rows.
    """

    scheme: DeltaScheme
    bases: np.ndarray
    deltas: np.ndarray

    @property
    def segment_length(self) -> int:
        return self.scheme.block if self.scheme.scope == "block" else self.deltas.shape[1]

    def decode(self) -> np.ndarray:
        rows, length = self.deltas.shape
        size = self.segment_length
        out = np.empty((rows, length), dtype=np.int64)
        for s, start in enumerate(range(0, length, size)):
            base = self.bases[:, s : s + 1].astype(np.int64)
            part = self.deltas[:, start : start + size].astype(np.int64)
            out[:, start : start + size] = base + (np.cumsum(part, axis=1) if self.scheme.running else part)
        return out


def encode_exact(rows: np.ndarray, scheme: DeltaScheme, int_type: IntType) -> EncodedWeights:
    """Encode ``rows`` that ``scheme`` represents exactly; an :class:`EdgecError` otherwise."""
    rows = np.asarray(rows, dtype=np.int64)
    if not np.array_equal(reconstruct(rows, scheme, int_type), rows):
        raise EdgecError(f"weights are not representable as {scheme.describe()}",
                         "encode them with the delta pass first (it saturates), or train with edgec train --delta")
    count, length = rows.shape
    size = length if scheme.scope != "block" else scheme.block
    segments = math.ceil(length / size)
    bases = np.empty((count, segments), dtype=np.int64)
    deltas = np.empty_like(rows)
    for s, start in enumerate(range(0, length, size)):
        part = rows[:, start : start + size]
        if scheme.running:
            if scheme.scope == "tensor":
                first = np.concatenate([[rows[0, 0]], rows[:-1, -1]])
            else:
                first = part[:, 0]
            bases[:, s] = first
            deltas[:, start : start + size] = np.diff(part, axis=1, prepend=first[:, None])
        else:
            if scheme.scope == "tensor":
                ref = np.full(count, (int(rows.min()) + int(rows.max()) + 1) // 2)
            else:
                ref = (part.min(axis=1) + part.max(axis=1) + 1) // 2
            bases[:, s] = ref
            deltas[:, start : start + size] = part - ref[:, None]
    return EncodedWeights(scheme, bases, deltas.astype(np.int8))


def get_scheme(value) -> DeltaScheme | None:
    """The :class:`DeltaScheme` recorded on a weight value (``onnx_ir.Value``), or ``None``."""
    text = value.metadata_props.get(DELTA_KEY)
    return DeltaScheme.from_json(text) if text else None


def set_scheme(value, scheme: DeltaScheme) -> None:
    value.metadata_props[DELTA_KEY] = scheme.to_json()
