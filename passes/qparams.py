"""Quantization parameters of the TFLite/CMSIS-NN int8 specification.

* activations: int8, asymmetric, one ``(scale, zero_point)`` per tensor, the range always
  containing 0 so that 0.0 is exactly representable;
* weights: int8 symmetric per output channel (zero point 0, values in [-127, 127]);

generalized to any :class:`~edgec.inttype.IntType` of 2 to 8 bits (activations of that
type, weights symmetric in its narrow range, e.g. [-7, 7] for 4 bits); int8 is the default.
* bias: int32 with scale ``input_scale * weight_scale[c]`` and zero point 0.

Scales are float32 numbers (what a TFLite flatbuffer holds); derived real multipliers are
computed in double from them, as TFLM does. Parameters travel on ``onnx_ir`` values as
``metadata_props`` (:data:`edgec.ops.SCALE_KEY`, :data:`edgec.ops.ZERO_POINT_KEY`), JSON
encoded, so they survive serialization; the integer type as :data:`edgec.inttype.INT_TYPE_KEY`.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx_ir as ir

from edgec.fixedpoint import round_half_away_from_zero
from edgec.inttype import INT8, INT8_WEIGHTS, INT_TYPE_KEY, IntType, recorded_type
from edgec.ops import SCALE_KEY, ZERO_POINT_KEY

AXIS_KEY = "edgec.axis"
INT8_MIN, INT8_MAX = INT8.min, INT8.max


@dataclasses.dataclass(frozen=True)
class QParams:
    """Per-tensor affine quantization: ``real = scale * (q - zero_point)``, ``q`` of type
    ``int_type`` (stored as int8, int16 for int16; the zero point is a value of that type)."""

    scale: float
    zero_point: int
    int_type: IntType = INT8

    def quantize(self, real: float | np.ndarray) -> np.ndarray:
        """Round-half-away-from-zero quantization (saturating to the type), as TFLite QUANTIZE."""
        q = round_half_away_from_zero(np.asarray(real, dtype=np.float32) / np.float32(self.scale))
        storage = np.int8 if self.int_type.fits_int8() else np.int16
        return np.clip(q + self.zero_point, self.int_type.min, self.int_type.max).astype(storage)

    def quantize_bound(self, real: float) -> int:
        """The quantized value of a clamp bound ``real`` (saturating), for fused activations."""
        return int(self.quantize(real))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


def float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (all edgec scales are float32 values)."""
    return float(np.float32(x))


def activation_qparams(low: float, high: float, int_type: IntType = INT8) -> QParams:
    """Asymmetric parameters of ``int_type`` covering ``[min(low, 0), max(high, 0)]``.

    ``scale = (high - low) / (levels - 1)`` (255 for int8); the zero point is
    ``round(type.min - low / scale)`` clamped to the type. A degenerate all-zero range gets
    scale 1 (every value is the zero point, 0 or the type's minimum). An int16 type is the
    16x8 scheme's, symmetric: ``scale = max(|low|, |high|) / 32767``, zero point 0.
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"non-finite calibration range [{low}, {high}]")
    if high - low <= 0.0:
        return QParams(1.0, int(np.clip(0, int_type.min, int_type.max)), int_type)
    if int_type.bits == 16:
        return QParams(float32(max(-low, high) / int_type.max), 0, int_type)
    scale = float32((high - low) / (int_type.max - int_type.min))
    zero_point = int(round_half_away_from_zero(int_type.min - low / scale))
    return QParams(scale, int(np.clip(zero_point, int_type.min, int_type.max)), int_type)


def weight_scales(weights: np.ndarray, axis: int, int_type: IntType = INT8_WEIGHTS) -> np.ndarray:
    """Symmetric per-channel scales along ``axis``: ``max|w| / type.max`` (127 for int8; 1.0
    for an all-zero channel)."""
    reduce_axes = tuple(i for i in range(weights.ndim) if i != axis)
    absmax = np.max(np.abs(weights.astype(np.float64)), axis=reduce_axes) if weights.ndim else np.abs(weights)
    scales = np.where(absmax > 0, absmax / int_type.max, 1.0)
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


def quantize_weights(weights: np.ndarray, scales: np.ndarray, axis: int,
                     int_type: IntType = INT8_WEIGHTS) -> np.ndarray:
    """``round(w / scale[c])`` clamped to ``int_type`` ([-127, 127] for int8) and stored as
    int8, ``scale`` broadcast on ``axis``."""
    shape = [1] * weights.ndim
    shape[axis] = -1
    q = round_half_away_from_zero(weights.astype(np.float32) / scales.reshape(shape).astype(np.float32))
    return np.clip(q, int_type.min, int_type.max).astype(np.int8)


def quantize_bias(bias: np.ndarray, input_scale: float, scales: np.ndarray, wide: bool = False) -> np.ndarray:
    """int32 bias ``round(b / (input_scale * weight_scale[c]))``, saturated to int32; int64,
    saturated to ``±2^47`` (the 64-bit scaling's input range), when ``wide`` (the 16x8 scheme)."""
    bias_scale = np.float64(input_scale) * scales.astype(np.float64)
    q = round_half_away_from_zero(bias.astype(np.float64) / bias_scale)
    if wide:
        return np.clip(q, -(2**47), 2**47 - 1).astype(np.int64)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def set_qparams(value: ir.Value, qparams: QParams) -> None:
    """Record per-tensor ``qparams`` (scale, zero point, integer type) on ``value``."""
    value.metadata_props[SCALE_KEY] = json.dumps(qparams.scale)
    value.metadata_props[ZERO_POINT_KEY] = json.dumps(qparams.zero_point)
    value.metadata_props[INT_TYPE_KEY] = qparams.int_type.name


def get_qparams(value: ir.Value) -> QParams | None:
    """Per-tensor parameters recorded on ``value`` (int8 when no type is recorded), or ``None``."""
    props = value.metadata_props
    if SCALE_KEY not in props or AXIS_KEY in props:
        return None
    int_type = IntType.parse(props[INT_TYPE_KEY]) if INT_TYPE_KEY in props else INT8
    return QParams(float(json.loads(props[SCALE_KEY])), int(json.loads(props.get(ZERO_POINT_KEY, "0"))), int_type)


def set_channel_scales(value: ir.Value, scales: np.ndarray, axis: int, int_type: IntType | None = None) -> None:
    """Record per-channel weight scales (along ``axis``) on a constant ``value``, and the
    weights' integer type when given (a float weight a QONNX/QDQ model quantized already)."""
    value.metadata_props[SCALE_KEY] = json.dumps([float(s) for s in np.ravel(scales)])
    value.metadata_props[AXIS_KEY] = json.dumps(int(axis))
    if int_type is not None:
        value.metadata_props[INT_TYPE_KEY] = int_type.name


def get_channel_scales(value: ir.Value) -> tuple[np.ndarray, int] | None:
    """Per-channel scales and their axis recorded on ``value``, or ``None``."""
    props = value.metadata_props
    if SCALE_KEY not in props or AXIS_KEY not in props:
        return None
    return np.asarray(json.loads(props[SCALE_KEY]), dtype=np.float32), int(json.loads(props[AXIS_KEY]))


def int_type_of(value: ir.Value) -> IntType:
    """The integer type of an integer ``value`` of the integer graph (activation, weight, bias):
    the recorded one, else its storage dtype's full type (see :mod:`edgec.inttype`)."""
    return recorded_type(value.metadata_props, value.dtype.numpy())


def set_int_type(value: ir.Value, int_type: IntType) -> None:
    """Record ``int_type`` on ``value`` (an integer weight or activation)."""
    value.metadata_props[INT_TYPE_KEY] = int_type.name


def recorded_int_type(value: ir.Value) -> IntType | None:
    """The integer type recorded on ``value`` (e.g. on a float weight a QONNX model quantized
    already), or ``None``."""
    name = value.metadata_props.get(INT_TYPE_KEY)
    return IntType.parse(name) if name else None
