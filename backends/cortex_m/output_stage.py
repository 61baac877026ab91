"""The output stage of the Cortex-M accumulating layers: folded biases and requantization rows.

Kernels multiply raw int8 inputs, so a layer's bias absorbs the input zero point
(``b - zp_in * sum(w)``, :func:`folded_bias`). Each output channel's requantization is an
``edgec_requant_t`` row (:func:`requant_table`); a layer takes the fast stage of
``edgec_arith.h`` when its shifts and accumulator bound allow, else the generic one
(:func:`output_stage`).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.backends.cortex_m.clayer import CArray
from edgec.errors import UnsupportedModelError

#: The fast output stage's limits (edgec_arith.h): right shifts 1..FAST_RIGHT_MAX (so that the
#: zero point folds into the rounding term) and |accumulator + bias| < FAST_ACCUMULATOR_BOUND
#: (so that it doubles within int32).
FAST_RIGHT_MAX = 22
FAST_ACCUMULATOR_BOUND = 1 << 30


def folded_bias(node: ir.Node, weights_per_channel: np.ndarray, input_zero_point: int) -> np.ndarray:
    bias = (node.inputs[2].const_value.numpy().astype(np.int64) if len(node.inputs) > 2 and node.inputs[2] is not None
            else np.zeros(weights_per_channel.shape[0], dtype=np.int64))
    return _checked_int32(node, bias - input_zero_point * weights_per_channel.astype(np.int64).sum(axis=1))


def _checked_int32(node: ir.Node, folded: np.ndarray) -> np.ndarray:
    if np.abs(folded).max(initial=0) >= 2**31:
        raise UnsupportedModelError(f"node '{node.name}': the folded bias overflows int32",
                                    "the model's bias or weights are out of the int8 specification's range")
    return folded.astype(np.int32)


def requant_table(name: str, multipliers, shifts, zero_point: int, channels: int | None = None) -> CArray:
    """``edgec_requant_t`` rows {multiplier, right, rounding} (see edgec_arith.h).

    ``right`` is -shift; for 1 <= right <= FAST_RIGHT_MAX ``rounding`` is
    2^(right-1) + zero_point * 2^right (the fast stage's rounding term with the zero point folded
    in), else 0 (such a layer takes the generic stage, :func:`output_stage`). ``channels``
    broadcasts a single multiplier to that many rows.
    """
    multipliers = np.asarray(multipliers, dtype=np.int64).ravel()
    rights = -np.asarray(shifts, dtype=np.int64).ravel()
    if channels is not None:
        multipliers, rights = np.broadcast_to(multipliers, (channels,)), np.broadcast_to(rights, (channels,))
    fast = (rights >= 1) & (rights <= FAST_RIGHT_MAX)
    exponents = np.where(fast, rights, 1)
    rounding = np.where(fast, (1 << (exponents - 1)) + zero_point * (1 << exponents), 0)
    return CArray(name, "edgec_requant_t", np.stack([multipliers, rights, rounding], axis=1))


def output_stage(node: ir.Node, prefix: str, attrs: dict, weights_per_channel: np.ndarray,
                 channels: int | None = None, bias_offset: np.ndarray | None = None) -> tuple[list[CArray], dict]:
    """The bias and requantization arrays of an int32-accumulating layer and its parameter
    fields (constants named by ``prefix``, zero points, activation range, output-stage choice).

    ``weights_per_channel`` is ``[out_c, k]``: the values the kernel multiplies raw int8 inputs
    by. The layer takes the generic stage when some channel's shift is outside the fast stage's
    range or its accumulator, bounded by |bias| + 128 * sum |w|, could reach
    FAST_ACCUMULATOR_BOUND. ``channels`` broadcasts a per-tensor scale (see requant_table).
    ``bias_offset`` is added to the stored bias only (what a kernel's own form of the sums lacks:
    :func:`~backends.cortex_m.conv_rows.offset_pair_bias`); the total the stage sees is unchanged.
    """
    bias = folded_bias(node, weights_per_channel, attrs["input_zero_point"])
    bound = np.abs(bias.astype(np.int64)) + 128 * np.abs(weights_per_channel.astype(np.int64)).sum(axis=1)
    if bias_offset is not None:
        sums = 128 * np.abs(weights_per_channel.astype(np.int64)).sum(axis=1) + np.abs(bias_offset)
        if sums.max(initial=0) >= 2**31:
            raise UnsupportedModelError(f"node '{node.name}': its sums can overflow the int32 accumulator",
                                        "split the layer's reduction (fewer inputs per output channel)")
        bias = _checked_int32(node, bias.astype(np.int64) + bias_offset)
    rights = -np.asarray(attrs["output_shift"], dtype=np.int64)
    fast = bool(np.all((rights >= 1) & (rights <= FAST_RIGHT_MAX)) and bound.max(initial=0) < FAST_ACCUMULATOR_BOUND)
    arrays = [CArray(f"{prefix}_bias", "int32_t", bias),
              requant_table(f"{prefix}_requant", attrs["output_multiplier"], attrs["output_shift"],
                            attrs["output_zero_point"], channels)]
    params = {"weights": f"{prefix}_weights", "bias": f"{prefix}_bias", "requant": f"{prefix}_requant",
              "input_zero_point": attrs["input_zero_point"], "output_zero_point": attrs["output_zero_point"],
              "activation_min": attrs["activation_min"], "activation_max": attrs["activation_max"],
              "generic": int(not fast)}
    return arrays, params
