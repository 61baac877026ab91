"""Integer value types of the integer graph: bit width, signedness and narrow range.

Every integer value of an edgec integer graph has an :class:`IntType` (QONNX's per-tensor
DataType, with FINN's narrow-range flag): activations and weights of 2 to 8 bits, biases
and accumulators of 32. The type is the set of values the tensor may hold; the reference
executor saturates every operator's result to it, and backends may store values in fewer
bits (the Cortex-M backend packs 4-bit and 2-bit weights two or four to a byte).

*Storage* is separate: an ONNX tensor of dtype INT8 holds any type of at most 8 bits whose
range lies in [-128, 127] (``uint4``'s [0, 15] included); an unsigned 8-bit tensor is
stored as int8 by shifting its values and zero point by -128 (the same real numbers).

On a value the type is recorded as ``metadata_props['edgec.int_type']`` (see
:data:`INT_TYPE_KEY`) in the form of :attr:`IntType.name`: ``int4``, ``uint2``, ``int8n``
(``n``: narrow range, the most negative value left out: int8n is [-127, 127]). A value without
the key has the full type of its storage dtype (int8 for INT8, int32 for INT32), so integer
graphs written before widths existed read as int8 graphs.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

#: ``metadata_props`` key holding a value's :attr:`IntType.name`.
INT_TYPE_KEY = "edgec.int_type"
#: Widths of activations and weights the integer graph takes.
VALUE_BITS = range(2, 9)
#: Widths of activations post-training quantization gives: those, and 16 (the TFLite 16x8
#: scheme: symmetric int16 activations with int8 weights and int64 biases).
ACTIVATION_BITS = (*VALUE_BITS, 16)
_NAME = re.compile(r"(u?)int(\d+)(n?)")


@dataclasses.dataclass(frozen=True)
class IntType:
    """``bits``-wide integers, two's complement when ``signed``; ``narrow`` drops the most
    negative value of a signed type (symmetric range, e.g. int4n is [-7, 7]) and the largest
    value of an unsigned one (FINN/QONNX convention)."""

    bits: int
    signed: bool
    narrow: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 64:
            raise ValueError(f"an integer type has 1 to 64 bits, not {self.bits}")
        if self.narrow and self.bits == 1:
            raise ValueError("a 1-bit type cannot be narrow")

    @property
    def min(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def max(self) -> int:
        if self.signed:
            return 2 ** (self.bits - 1) - 1
        return 2**self.bits - 1 - (1 if self.narrow else 0)

    @property
    def levels(self) -> int:
        """How many values the type has."""
        return self.max - self.min + 1

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.bits}{'n' if self.narrow else ''}"

    def __str__(self) -> str:
        return self.name

    def contains(self, other: IntType) -> bool:
        """True when every value of ``other`` is a value of this type."""
        return self.min <= other.min and other.max <= self.max

    def fits_int8(self) -> bool:
        """True when int8 storage holds the type as it is (no shift needed)."""
        return -128 <= self.min and self.max <= 127

    def saturate(self, values: np.ndarray) -> np.ndarray:
        """``values`` clipped to the type's range (dtype kept)."""
        return np.clip(values, self.min, self.max).astype(np.asarray(values).dtype, copy=False)

    @classmethod
    def parse(cls, name: str) -> IntType:
        """The type named ``name`` (:attr:`name`'s form); ``ValueError`` otherwise."""
        match = _NAME.fullmatch(name.strip())
        if match is None:
            raise ValueError(f"'{name}' is not an integer type name (e.g. int8, uint4, int4n)")
        return cls(int(match.group(2)), match.group(1) != "u", match.group(3) == "n")


INT8 = IntType(8, True)
#: Activations of the TFLite 16x8 scheme (int16 activations, int8 weights).
INT16 = IntType(16, True)
#: Weights of the TFLite/CMSIS-NN int8 specification: symmetric, [-127, 127].
INT8_WEIGHTS = IntType(8, True, narrow=True)
INT32 = IntType(32, True)
#: Biases of the 16x8 scheme (64-bit accumulators).
INT64 = IntType(64, True)


def weight_type(bits: int) -> IntType:
    """Symmetric (narrow) signed weights of ``bits`` bits, the quantizer's choice: int4n is
    [-7, 7], int2n is [-1, 1] (ternary)."""
    if bits not in VALUE_BITS:
        raise ValueError(f"weights have {VALUE_BITS.start} to {VALUE_BITS.stop - 1} bits, not {bits}")
    return IntType(bits, True, narrow=True)


def storage_type(dtype: np.dtype) -> IntType:
    """The full type of an integer storage dtype (what a value without a recorded type has)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise ValueError(f"{dtype} is not an integer dtype")
    return IntType(dtype.itemsize * 8, dtype.kind == "i")


def recorded_type(metadata_props, dtype: np.dtype) -> IntType:
    """The type recorded in ``metadata_props`` (a value's), else ``dtype``'s full type."""
    name = metadata_props.get(INT_TYPE_KEY)
    return IntType.parse(name) if name else storage_type(dtype)


def signed_bits(low: int, high: int) -> int:
    """The fewest two's-complement bits holding every integer of ``[low, high]`` (at least 1)."""
    bits = 1
    while not (-(1 << (bits - 1)) <= low and high < (1 << (bits - 1))):
        bits += 1
    return bits
