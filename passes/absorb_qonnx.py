"""AbsorbQONNXPass: turn a QONNX model (Brevitas' ``export_qonnx``) into a float graph that
remembers its scales, zero points and bit widths.

QONNX marks quantized tensors with ``Quant(x, scale, zero_point, bit_width)`` nodes
(attributes ``signed``, ``narrow``, ``rounding_mode``) of the domains in :data:`QONNX_DOMAINS`:
``Quant`` computes ``(clip(round(x / scale + zero_point)) - zero_point) * scale``, clipped to
the integers of ``bit_width`` bits (signed or not, narrow or not). edgec keeps exactly these
parameters and computes with its own integer operators, as it does for QDQ models
(:class:`passes.absorb_qdq.AbsorbQDQPass`):

1. ``Quant`` on a constant read as a weight (input 1 of Conv, Gemm, MatMul) becomes the float
   constant it computes; its per-channel scales (a per-tensor scale broadcast to every output
   channel: axis 0 for Conv's OIHW weight and Gemm's with ``transB=1``, axis 1 for MatMul's
   and Gemm's ``[K, N]`` weight) and its :class:`~edgec.inttype.IntType` are recorded with
   :func:`passes.qparams.set_channel_scales`. A nonzero weight zero point is rejected.
2. ``BipolarQuant`` on a constant (and a 1-bit signed ``Quant``, which QONNX executes the
   same way) becomes ``±scale`` (``+scale`` where ``x >= 0``), recorded as 2-bit narrow
   signed weights (the values {-1, 0, 1}, of which it uses -1 and 1).
3. ``Quant`` on any other constant (a bias: Brevitas' Int32Bias, 32 bits) becomes the float
   constant it computes; the quantizer derives the same int32 bias from it (its scale is
   the product of input and weight scales, which the quantizer recomputes).
4. ``Quant`` on an activation is removed: its readers read its input ``x``, and ``QParams(
   scale, zero_point, IntType(bit_width, signed, narrow))`` is recorded on ``x`` with
   :func:`passes.qparams.set_qparams`. Unsigned 8-bit activations are recorded as int8 with
   the zero point shifted by -128 (the same real numbers). On a graph input ``x`` the
   rounding is recorded too (:data:`edgec.ops.QUANTIZE_ROUNDING_KEY`): QONNX's ``ROUND`` is round half
   to even.
5. The model's rounding is recorded as ``metadata_props[edgec.ops.ROUNDING_KEY] = "single"``
   when anything was absorbed: QONNX (and Brevitas, in float) rounds each requantization
   once, from the exact value; TFLM's double rounding rounds twice and differs by one step
   wherever its first rounding lands on a half (e.g. 4.498 -> 4.5 -> 5). The quantizer uses
   it unless told another mode.
6. Everything else of the QONNX domains is rejected with an :class:`UnsupportedModelError`
   naming the node and the fix: ``BipolarQuant`` on an activation, ``Trunc`` (Brevitas'
   TruncAvgPool2d: it rounds the pooled sum half to even, edgec's AveragePool half away
   from zero), ``MultiThreshold`` (FINN's streamlined form), parameters computed at run
   time, per-channel activation scales, activation widths outside 2 to 8 bits, rounding
   modes other than ``ROUND``, and a tensor quantized twice with different parameters.

Invariant: afterwards no node of :data:`QONNX_DOMAINS` remains; float semantics equal the
QONNX model's up to the removed activation rounding, which the quantizer reproduces in integers.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.errors import UnsupportedModelError
from edgec.inttype import INT8, VALUE_BITS, IntType
from edgec.passes.graph_utils import add_initializer, attribute, replace_value
from edgec.passes.qparams import QParams, get_qparams, set_channel_scales, set_qparams

#: Operator domains of QONNX nodes (current QONNX, Brevitas' older exports, FINN).
QONNX_DOMAINS = frozenset({"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general"})
#: QONNX operators the pass absorbs (cases 1 to 4); it rejects the others (case 6).
ABSORBED_OPS = frozenset({"Quant", "BipolarQuant"})
#: QONNX ``ROUND`` (``np.round``) is round half to even (an edgec.ops.QUANTIZE_ROUNDINGS mode).
HALF_EVEN = "half_even"
#: The requantization rounding of a QONNX model (case 5; a mode of edgec.fixedpoint.ROUNDING_MODES).
SINGLE_ROUNDING = "single"

_WEIGHT_READERS = frozenset({"Conv", "Gemm", "MatMul"})
_MODEL_FIX = "export the Brevitas model with per-tensor activation quantizers of 2 to 8 bits (ROUND rounding)"


def is_qonnx_node(node: ir.Node) -> bool:
    """True for a node of one of the :data:`QONNX_DOMAINS`."""
    return node.domain in QONNX_DOMAINS


def constant_of(value: ir.Value | None) -> np.ndarray | None:
    """The constant behind ``value``: an initializer, a folded constant or a ``Constant`` node."""
    if value is None:
        return None
    if value.const_value is not None:
        return value.const_value.numpy()
    producer = value.producer()
    if producer is not None and producer.op_type == "Constant" and producer.domain == "":
        tensor = attribute(producer, "value")
        return tensor.numpy() if tensor is not None else None
    return None


def _label(node: ir.Node) -> str:
    return f"{node.op_type} node '{node.name}'"


def _parameter(node: ir.Node, index: int, what: str) -> np.ndarray:
    array = constant_of(node.inputs[index]) if index < len(node.inputs) else None
    if array is None:
        raise UnsupportedModelError(f"{_label(node)} has a {what} computed at run time",
                                    "export the model with constant quantization parameters (eval mode)")
    return array.astype(np.float64)


def _integral(node: ir.Node, array: np.ndarray, what: str) -> np.ndarray:
    if not np.all(array == np.round(array)):
        raise UnsupportedModelError(f"{_label(node)} has a non-integer {what} {array.ravel()[:4].tolist()}",
                                    "use integer zero points and bit widths")
    return array.astype(np.int64)


def _quant_type(node: ir.Node) -> tuple[IntType, np.ndarray, np.ndarray, bool]:
    """``(type, scale, zero point, bipolar)`` of a ``Quant``/``BipolarQuant`` node. ``bipolar``:
    the node computes ``±scale`` (a BipolarQuant, or a 1-bit signed Quant, which QONNX executes
    the same way); its type is then 2-bit narrow signed. A Quant's rounding must be ``ROUND``."""
    scale = _parameter(node, 1, "scale")
    if np.any(scale <= 0):
        raise UnsupportedModelError(f"{_label(node)} has a scale that is not positive", "re-export the model")
    if node.op_type == "BipolarQuant":
        return IntType(2, True, narrow=True), scale, np.zeros(1, dtype=np.int64), True
    rounding = attribute(node, "rounding_mode", "ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
    if rounding.upper() not in ("ROUND", "HALF_EVEN"):
        raise UnsupportedModelError(f"{_label(node)} rounds with {rounding}",
                                    "use Brevitas' default ROUND (round half to even) quantizers")
    zero_point = _integral(node, _parameter(node, 2, "zero point"), "zero point")
    bits = _integral(node, _parameter(node, 3, "bit width"), "bit width")
    if bits.size != 1 or not 1 <= int(bits.ravel()[0]) <= 32:
        raise UnsupportedModelError(f"{_label(node)} has bit width {bits.ravel()[:4].tolist()}",
                                    "use one bit width of 1 to 32 bits per tensor")
    signed, narrow, bit_width = bool(attribute(node, "signed", 1)), bool(attribute(node, "narrow", 0)), int(bits.ravel()[0])
    if bit_width == 1 and signed:
        return IntType(2, True, narrow=True), scale, zero_point, True
    return IntType(bit_width, signed, narrow and bit_width > 1), scale, zero_point, False


def _quant(x: np.ndarray, int_type: IntType, scale: np.ndarray, zero_point: np.ndarray, bipolar: bool) -> np.ndarray:
    """What a Quant/BipolarQuant node computes on the constant ``x`` (QONNX's ``int_quant``,
    ``binary_quant``), in float64 from float32 operands: exact for the rounding step."""
    scale = scale.astype(np.float32).astype(np.float64)
    y = x.astype(np.float32).astype(np.float64) / scale + zero_point
    if bipolar:
        return np.where(y >= 0.0, 1.0, -1.0) * scale
    return (np.round(np.clip(y, int_type.min, int_type.max)) - zero_point) * scale


def _weight_axis(reader: ir.Node) -> int:
    """The output-channel axis of ``reader``'s weight (input 1), as passes.lower_compute reads it."""
    if reader.op_type == "Gemm":
        return 0 if attribute(reader, "transB", 0) else 1
    return 1 if reader.op_type == "MatMul" else 0


def _weight_reader(value: ir.Value) -> ir.Node | None:
    """The Conv/Gemm/MatMul reading ``value`` as its weight, when that is its only use."""
    uses = list(value.uses())
    if len(uses) != 1 or value.is_graph_output():
        return None
    reader, index = uses[0].node, uses[0].idx
    return reader if reader.op_type in _WEIGHT_READERS and reader.domain == "" and index == 1 else None


class AbsorbQONNXPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if not is_qonnx_node(node):
                continue
            if node.op_type in ("Quant", "BipolarQuant") and constant_of(node.inputs[0]) is not None:
                self._fold_constant(graph, node)
            elif node.op_type == "Quant":
                self._remove_activation_quant(graph, node)
            else:
                raise _unsupported(node)
            modified = True
        if modified:
            model.metadata_props[ops.ROUNDING_KEY] = SINGLE_ROUNDING
        return ir.passes.PassResult(model, modified)

    @staticmethod
    def _fold_constant(graph: ir.Graph, node: ir.Node) -> None:
        x = constant_of(node.inputs[0])
        int_type, scale, zero_point, bipolar = _quant_type(node)
        real = _quant(x, int_type, scale, zero_point, bipolar)
        folded = add_initializer(graph, f"{node.inputs[0].name}_quantized", real.astype(np.float32))
        reader = _weight_reader(node.outputs[0])
        if reader is not None and int_type.bits in VALUE_BITS:
            if np.any(zero_point != 0):
                raise UnsupportedModelError(f"{_label(node)} quantizes the weights of '{reader.name}' with a "
                                            "nonzero zero point", "use symmetric weight quantizers (zero point 0)")
            axis = _weight_axis(reader)
            channels = x.shape[axis] if x.ndim > axis else 1
            if scale.size not in (1, channels):
                raise UnsupportedModelError(f"{_label(node)} has {scale.size} scales for {channels} channels",
                                            "quantize weights per tensor or per output channel")
            scales = np.broadcast_to(scale.astype(np.float32).reshape(-1), (channels,))
            set_channel_scales(folded, scales, axis, int_type)
        replace_value(node.outputs[0], folded)
        graph.remove(node, safe=True)

    @staticmethod
    def _remove_activation_quant(graph: ir.Graph, node: ir.Node) -> None:
        int_type, scale, zero_point, bipolar = _quant_type(node)
        if bipolar:
            raise _unsupported(node)
        if scale.size != 1 or zero_point.size != 1:
            raise UnsupportedModelError(f"{_label(node)} quantizes an activation per channel", _MODEL_FIX)
        if int_type.bits not in VALUE_BITS:
            raise UnsupportedModelError(f"{_label(node)} quantizes an activation to {int_type.bits} bits", _MODEL_FIX)
        zero = int(zero_point.ravel()[0])
        if not int_type.signed and int_type.bits == 8:
            if int_type.narrow:
                raise UnsupportedModelError(f"{_label(node)} quantizes an activation to narrow unsigned 8 bits",
                                            "use narrow_range=False for unsigned 8-bit activations")
            int_type, zero = INT8, zero - 128
        qparams = QParams(float(np.float32(scale.ravel()[0])), zero, int_type)
        source = node.inputs[0]
        recorded = get_qparams(source)
        if recorded is not None and recorded != qparams:
            raise UnsupportedModelError(f"tensor '{source.name}' is quantized twice with different parameters "
                                        f"({_label(node)})", "quantize each tensor with one quantizer")
        if node.outputs[0].is_graph_output() and (source.is_graph_input() or source.is_graph_output()):
            raise UnsupportedModelError(f"{_label(node)} connects a graph input or output straight to a graph "
                                        "output", "give the model at least one layer between them")
        set_qparams(source, qparams)
        if source.is_graph_input():
            source.metadata_props[ops.QUANTIZE_ROUNDING_KEY] = HALF_EVEN
        replace_value(node.outputs[0], source)
        graph.remove(node, safe=True)


def _unsupported(node: ir.Node) -> UnsupportedModelError:
    if node.op_type == "BipolarQuant":
        return UnsupportedModelError(f"{_label(node)} binarizes an activation",
                                     "edgec takes binary (bipolar) weights but activations of 2 to 8 bits")
    if node.op_type == "Trunc":
        return UnsupportedModelError(
            f"{_label(node)} (Brevitas TruncAvgPool2d) rounds the pooled sum half to even, which edgec's "
            "AveragePool (half away from zero) does not reproduce",
            "use a MaxPool, or a QuantIdentity after a plain AvgPool2d, instead of TruncAvgPool2d")
    if node.op_type == "MultiThreshold":
        return UnsupportedModelError(
            f"{_label(node)} (a FINN-streamlined graph) is not supported",
            "compile the Brevitas QONNX export before FINN's streamlining (Quant nodes, not thresholds)")
    return UnsupportedModelError(f"QONNX operator {node.op_type} (node '{node.name}') is not supported",
                                 "edgec takes QONNX Quant and BipolarQuant nodes")
