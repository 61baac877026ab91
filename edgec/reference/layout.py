"""Data-movement operators: Concat, Pad, Reshape, Transpose (no arithmetic on values).

Slice, and Pad in its non-constant modes, are per-axis gathers: :mod:`edgec.reference.gather`.
"""

from __future__ import annotations

import numpy as np

from edgec.reference.gather import gather, pad_maps


def concat(attrs: dict, rounding: str, *xs: np.ndarray) -> np.ndarray:
    """Concatenation along ``axis``; inputs already share the output's quantization."""
    del rounding
    return np.concatenate(xs, axis=int(attrs["axis"]))


def pad(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Padding; ``pads`` lists all begins then all ends (ONNX order). Mode ``constant`` fills
    with ``value``; the others copy input values (:func:`edgec.reference.gather.pad_index`)."""
    del rounding
    if attrs["mode"] != "constant":
        return gather(x, pad_maps(attrs, x.shape))
    pads = [int(p) for p in attrs["pads"]]
    rank = x.ndim
    widths = [(pads[i], pads[i + rank]) for i in range(rank)]
    return np.pad(x, widths, constant_values=int(attrs["value"])).astype(x.dtype)


def reshape(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Same data in a new shape (all dimensions explicit)."""
    del rounding
    return x.reshape([int(d) for d in attrs["shape"]])


def transpose(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Axis permutation: output axis ``i`` is input axis ``perm[i]``."""
    del rounding
    return np.ascontiguousarray(np.transpose(x, [int(p) for p in attrs["perm"]]))
