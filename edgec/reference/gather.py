"""Operators that copy values along per-axis index maps: Slice, Pad in its non-constant modes,
Resize nearest.

Each computes ``Y[i_0, ..., i_n] = X[m_0[i_0], ..., m_n[i_n]]`` for one index map ``m_a`` per
axis (an integer array of the output's extent along ``a``, every entry a valid index of
``X``'s axis ``a``). :func:`axis_maps` gives the maps of a node, so a backend can store them as
its gather kernel's tables and copy exactly what the reference copies; the reference
functions here are :func:`gather` of those maps.

Pad modes (``PAD_MODES``), for a position ``p`` of the padded axis (input index ``p -
before``, outside ``[0, n)`` in the padding): ``reflect`` mirrors about the edge element
(TFLite MIRROR_PAD REFLECT, ONNX reflect: ``-1 -> 1``), ``symmetric`` about the edge
(MIRROR_PAD SYMMETRIC: ``-1 -> 0``), ``edge`` repeats the edge element, ``wrap`` continues
periodically. Reflect pads are at most ``n - 1`` a side, symmetric ones at most ``n`` (TFLite's
limits); ``constant`` fills with ``value`` (:func:`edgec.reference.layout.pad`).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedModelError

PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")


def gather(x: np.ndarray, maps: list[np.ndarray]) -> np.ndarray:
    """``Y[i_0, ..., i_n] = x[maps[0][i_0], ..., maps[n][i_n]]``."""
    return np.ascontiguousarray(x[np.ix_(*maps)])


def slice_maps(attrs: dict, shape) -> list[np.ndarray]:
    """``starts[a] + i * steps[a]`` for ``i < sizes[a]``; an error when an index leaves the input."""
    maps = []
    for axis, (start, size, step) in enumerate(zip(attrs["starts"], attrs["sizes"], attrs["steps"])):
        index = int(start) + int(step) * np.arange(int(size), dtype=np.int64)
        if int(size) < 1 or index.min() < 0 or index.max() >= shape[axis]:
            raise UnsupportedModelError(
                f"Slice reads indices {int(start)} + {int(step)} * [0, {int(size)}) of an axis of {shape[axis]}",
                "give every axis a non-empty slice inside the input")
        maps.append(index)
    return maps


def pad_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """The input index of each position of an axis of ``size`` padded by ``before``/``after``."""
    limit = {"reflect": size - 1, "symmetric": size}.get(mode)
    if mode not in PAD_MODES[1:] or before < 0 or after < 0 or (limit is not None and max(before, after) > limit):
        raise UnsupportedModelError(
            f"Pad mode '{mode}' with pads {before}, {after} on an axis of {size}",
            f"use a mode of {PAD_MODES[1:]}; reflect pads at most size - 1 a side, symmetric at most size")
    p = np.arange(-before, size + after, dtype=np.int64)
    if mode == "reflect":
        return np.where(p < 0, -p, np.where(p >= size, 2 * (size - 1) - p, p))
    if mode == "symmetric":
        return np.where(p < 0, -p - 1, np.where(p >= size, 2 * size - 1 - p, p))
    if mode == "edge":
        return np.clip(p, 0, size - 1)
    return np.mod(p, size)


def pad_maps(attrs: dict, shape) -> list[np.ndarray]:
    pads, rank = [int(p) for p in attrs["pads"]], len(shape)
    return [pad_index(int(shape[a]), pads[a], pads[a + rank], attrs["mode"]) for a in range(rank)]


def nearest_index(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite's GetNearestNeighbor for every output position, in its float32 arithmetic."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    position = (np.arange(out_size, dtype=np.float32) + offset) * scale
    index = np.floor(position)  # positions are never negative
    if align_corners:  # TfLiteRound: half away from zero; the fraction is exact in float32
        index += position - index >= np.float32(0.5)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel_centers else index


def nearest_maps(attrs: dict, shape) -> list[np.ndarray]:
    out_h, out_w = (int(s) for s in attrs["size"])
    align, half = bool(attrs["align_corners"]), bool(attrs["half_pixel_centers"])
    return [np.arange(shape[0]), nearest_index(int(shape[1]), out_h, align, half),
            nearest_index(int(shape[2]), out_w, align, half), np.arange(shape[3])]


def axis_maps(op_type: str, attrs: dict, shape) -> list[np.ndarray] | None:
    """The index maps of a node of ``op_type`` on an input of ``shape``; ``None`` when the node
    is not a gather (a constant Pad, a bilinear Resize, any other operator)."""
    if op_type == "Slice":
        return slice_maps(attrs, shape)
    if op_type == "Pad" and attrs["mode"] != "constant":
        return pad_maps(attrs, shape)
    if op_type == "Resize" and attrs["mode"] == "nearest":
        return nearest_maps(attrs, shape)
    return None


def slice_(attrs: dict, rounding: str, x: np.ndarray) -> np.ndarray:
    """Slice: ``Y[i] = X[starts + i * steps]`` per axis."""
    del rounding
    return gather(x, slice_maps(attrs, x.shape))
