"""Quantization parameters of the TFLite/CMSIS-NN int8 specification.

* activations: int8, asymmetric, one ``(scale, zero_point)`` per tensor, the range always
  containing 0 so that 0.0 is exactly representable;
* weights: int8 symmetric per output channel (zero point 0, values in [-127, 127]);
* bias: int32 with scale ``input_scale * weight_scale[c]`` and zero point 0.

Scales are float32 numbers (what a TFLite flatbuffer holds); derived real multipliers are
computed in double from them, as TFLM does. Parameters travel on ``onnx_ir`` values as
``metadata_props`` (:data:`edgec.ops.SCALE_KEY`, :data:`edgec.ops.ZERO_POINT_KEY`), JSON
encoded, so they survive serialization.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx_ir as ir

from edgec.fixedpoint import round_half_away_from_zero
from edgec.ops import SCALE_KEY, ZERO_POINT_KEY

AXIS_KEY = "edgec.axis"
INT8_MIN, INT8_MAX = -128, 127
WEIGHT_MAX = 127


@dataclasses.dataclass(frozen=True)
class QParams:
    """Per-tensor affine quantization: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def quantize(self, real: float | np.ndarray) -> np.ndarray:
        """Round-half-away-from-zero quantization to int8 (saturating), as TFLite QUANTIZE."""
        q = round_half_away_from_zero(np.asarray(real, dtype=np.float32) / np.float32(self.scale))
        return np.clip(q + self.zero_point, INT8_MIN, INT8_MAX).astype(np.int8)

    def quantize_bound(self, real: float) -> int:
        """The int8 value of a clamp bound ``real`` (saturating), for fused activations."""
        return int(self.quantize(real))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


def float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (all edgec scales are float32 values)."""
    return float(np.float32(x))


def activation_qparams(low: float, high: float) -> QParams:
    """Asymmetric int8 parameters covering ``[min(low, 0), max(high, 0)]``.

    ``scale = (high - low) / 255``; the zero point is ``round(-128 - low / scale)``
    clamped to int8. A degenerate all-zero range gets scale 1 (every value is 0).
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"non-finite calibration range [{low}, {high}]")
    if high - low <= 0.0:
        return QParams(1.0, 0)
    scale = float32((high - low) / (INT8_MAX - INT8_MIN))
    zero_point = int(round_half_away_from_zero(INT8_MIN - low / scale))
    return QParams(scale, int(np.clip(zero_point, INT8_MIN, INT8_MAX)))


def weight_scales(weights: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric per-channel scales along ``axis``: ``max|w| / 127`` (1.0 for an all-zero channel)."""
    reduce_axes = tuple(i for i in range(weights.ndim) if i != axis)
    absmax = np.max(np.abs(weights.astype(np.float64)), axis=reduce_axes) if weights.ndim else np.abs(weights)
    scales = np.where(absmax > 0, absmax / WEIGHT_MAX, 1.0)
    return scales.astype(np.float32)


#: Largest int32 bias magnitude the quantizer produces: half the int32 range, so that the
#: accumulator (bias plus int8 x int8 products) and kernels' folded biases stay in int32.
BIAS_LIMIT = 2**30


def bias_safe_scales(scales: np.ndarray, bias: np.ndarray, input_scale: float) -> np.ndarray:
    """Per-channel weight scales raised where needed so that every int32 bias stays below
    :data:`BIAS_LIMIT` (channels with near-zero weights and a real bias would otherwise
    saturate it)."""
    needed = np.abs(bias.astype(np.float64)) / (np.float64(input_scale) * BIAS_LIMIT)
    return np.maximum(scales.astype(np.float64), needed).astype(np.float32)


def quantize_weights(weights: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    """``round(w / scale[c])`` clamped to [-127, 127] as int8, ``scale`` broadcast on ``axis``."""
    shape = [1] * weights.ndim
    shape[axis] = -1
    q = round_half_away_from_zero(weights.astype(np.float32) / scales.reshape(shape).astype(np.float32))
    return np.clip(q, -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)


def quantize_bias(bias: np.ndarray, input_scale: float, scales: np.ndarray) -> np.ndarray:
    """int32 bias ``round(b / (input_scale * weight_scale[c]))``, saturated to int32."""
    bias_scale = np.float64(input_scale) * scales.astype(np.float64)
    q = round_half_away_from_zero(bias.astype(np.float64) / bias_scale)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def set_qparams(value: ir.Value, qparams: QParams) -> None:
    """Record per-tensor ``qparams`` on ``value``."""
    value.metadata_props[SCALE_KEY] = json.dumps(qparams.scale)
    value.metadata_props[ZERO_POINT_KEY] = json.dumps(qparams.zero_point)


def get_qparams(value: ir.Value) -> QParams | None:
    """Per-tensor parameters recorded on ``value``, or ``None``."""
    props = value.metadata_props
    if SCALE_KEY not in props or AXIS_KEY in props:
        return None
    return QParams(float(json.loads(props[SCALE_KEY])), int(json.loads(props.get(ZERO_POINT_KEY, "0"))))


def set_channel_scales(value: ir.Value, scales: np.ndarray, axis: int) -> None:
    """Record per-channel weight scales (along ``axis``) on a constant ``value``."""
    value.metadata_props[SCALE_KEY] = json.dumps([float(s) for s in np.ravel(scales)])
    value.metadata_props[AXIS_KEY] = json.dumps(int(axis))


def get_channel_scales(value: ir.Value) -> tuple[np.ndarray, int] | None:
    """Per-channel scales and their axis recorded on ``value``, or ``None``."""
    props = value.metadata_props
    if SCALE_KEY not in props or AXIS_KEY not in props:
        return None
    return np.asarray(json.loads(props[SCALE_KEY]), dtype=np.float32), int(json.loads(props[AXIS_KEY]))
