"""AbsorbQDQPass: turn an ONNX QDQ model back into a float graph that remembers its scales.

Models written by ``onnxruntime.quantization.quantize_static`` (QDQ format) mark every
quantized tensor with QuantizeLinear/DequantizeLinear pairs. edgec keeps exactly their
scales and zero points, but computes with its own integer operators, so:

1. ``DequantizeLinear(q, scale, zero_point, axis)`` with all inputs constant (weights,
   int32 biases) becomes the float constant ``(q - zero_point) * scale``; the per-channel
   scales (weights) are recorded on it with :func:`passes.qparams.set_channel_scales`.
2. ``DequantizeLinear(QuantizeLinear(c, s, z, axis), s, z, axis)`` with ``c`` constant (a
   fake-quantized weight, as torch's ``fake_quantize_per_channel_affine`` exports) is rule 1
   applied to ``QuantizeLinear``'s integers: ``saturate(round_half_even(c / s) + z)``.
3. ``DequantizeLinear(QuantizeLinear(x, s, z), s, z)`` (an activation's fake
   quantization) is removed: readers of its output read ``x``, and ``(s, z)`` is recorded
   on ``x`` with :func:`passes.qparams.set_qparams`. uint8 pairs are shifted to int8
   (``z - 128``, same scale).
4. Any other QuantizeLinear/DequantizeLinear (per-axis activations, int16, a quantized
   graph input or output) is rejected with an :class:`UnsupportedModelError`.

Invariant: afterwards no QuantizeLinear/DequantizeLinear node remains; float semantics
equal the QDQ model's up to the removed fake-quantization rounding.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.errors import UnsupportedModelError
from edgec.passes.graph_utils import add_initializer, attribute, const_array, replace_value
from edgec.passes.qparams import QParams, set_channel_scales, set_qparams

_QDQ = ("QuantizeLinear", "DequantizeLinear")


def _scale_and_zero_point(node: ir.Node) -> tuple[np.ndarray, np.ndarray]:
    scale = const_array(node.inputs[1])
    zero_point = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    if scale is None:
        raise UnsupportedModelError(
            f"{node.op_type} node '{node.name}' has a scale computed at run time",
            "edgec needs constant quantization parameters; re-export the QDQ model with static quantization",
        )
    if zero_point is None:
        zero_point = np.zeros_like(scale, dtype=np.int8)
    return scale, zero_point


def _as_int8_qparams(node: ir.Node, scale: np.ndarray, zero_point: np.ndarray) -> QParams:
    if scale.size != 1:
        raise UnsupportedModelError(
            f"{node.op_type} node '{node.name}' quantizes an activation per axis",
            "quantize activations per tensor (per_channel applies to weights only)",
        )
    offset = {np.dtype(np.int8): 0, np.dtype(np.uint8): -128}.get(zero_point.dtype)
    if offset is None:
        raise UnsupportedModelError(
            f"{node.op_type} node '{node.name}' uses {zero_point.dtype} activations",
            "quantize activations to int8 or uint8",
        )
    return QParams(float(np.float32(scale.ravel()[0])), int(zero_point.ravel()[0]) + offset)


def _broadcast_shape(node: ir.Node, scale: np.ndarray, rank: int) -> list[int]:
    shape = [1] * rank
    if scale.size > 1:
        shape[attribute(node, "axis", 1) % rank] = -1
    return shape


def _quantized_constant(dequantize: ir.Node) -> np.ndarray | None:
    """The integers of ``DequantizeLinear``'s input when a ``QuantizeLinear`` of a constant
    computes it (rule 2), else ``None``."""
    quantize = dequantize.inputs[0].producer()
    if quantize is None or quantize.op_type != "QuantizeLinear" or quantize.domain != "":
        return None
    real = const_array(quantize.inputs[0])
    if real is None:
        return None
    scale, zero_point = _scale_and_zero_point(quantize)
    shape = _broadcast_shape(quantize, scale, real.ndim)
    info = np.iinfo(zero_point.dtype)
    q = np.rint(real.astype(np.float32) / scale.astype(np.float32).reshape(shape)) + zero_point.reshape(shape)
    return np.clip(q, info.min, info.max).astype(zero_point.dtype)


class AbsorbQDQPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if node.op_type == "DequantizeLinear" and node.domain == "":
                if const_array(node.inputs[0]) is not None:
                    self._fold_constant(graph, node, const_array(node.inputs[0]))
                elif _quantized_constant(node) is not None:
                    quantize = node.inputs[0].producer()
                    self._fold_constant(graph, node, _quantized_constant(node))
                    if not quantize.outputs[0].uses():
                        graph.remove(quantize, safe=True)
                else:
                    self._remove_pair(graph, node)
                modified = True
        for node in graph:
            if node.op_type in _QDQ and node.domain == "":
                raise UnsupportedModelError(
                    f"{node.op_type} node '{node.name}' is not part of a QuantizeLinear/DequantizeLinear pair",
                    "edgec takes float models or QDQ models with float inputs and outputs",
                )
        return ir.passes.PassResult(model, modified)

    @staticmethod
    def _fold_constant(graph: ir.Graph, node: ir.Node, q: np.ndarray) -> None:
        scale, zero_point = _scale_and_zero_point(node)
        axis = attribute(node, "axis", 1) % max(q.ndim, 1)
        shape = _broadcast_shape(node, scale, q.ndim)
        real = (q.astype(np.float64) - zero_point.astype(np.float64).reshape(shape)) * scale.astype(
            np.float64
        ).reshape(shape)
        folded = add_initializer(graph, f"{node.inputs[0].name}_dequantized", real.astype(np.float32))
        if q.dtype == np.int8 and scale.size > 1:
            set_channel_scales(folded, scale, axis)
        replace_value(node.outputs[0], folded)
        graph.remove(node, safe=True)

    @staticmethod
    def _remove_pair(graph: ir.Graph, dequantize: ir.Node) -> None:
        quantize = dequantize.inputs[0].producer()
        if quantize is None or quantize.op_type != "QuantizeLinear":
            raise UnsupportedModelError(
                f"DequantizeLinear node '{dequantize.name}' reads a quantized graph input",
                "edgec takes QDQ models with float inputs",
            )
        qparams = _as_int8_qparams(dequantize, *_scale_and_zero_point(dequantize))
        if _as_int8_qparams(quantize, *_scale_and_zero_point(quantize)) != qparams:
            raise UnsupportedModelError(
                f"QuantizeLinear '{quantize.name}' and DequantizeLinear '{dequantize.name}' disagree on scale",
                "use matching QDQ pairs",
            )
        source = quantize.inputs[0]
        set_qparams(source, qparams)
        replace_value(dequantize.outputs[0], source)
        graph.remove(dequantize, safe=True)
        if not quantize.outputs[0].uses() and not quantize.outputs[0].is_graph_output():
            graph.remove(quantize, safe=True)
