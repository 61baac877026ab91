"""An FPGA layer plan as the QONNX graph FINN builds from: integer MatMuls and MultiThresholds.

FINN's own front end (``step_qonnx_to_finn`` and ``step_streamline``) turns a Brevitas/QONNX
model's ``Quant`` nodes and float scales into integer MatMuls feeding MultiThresholds. The
plan (:mod:`.layers`) already is that: every matrix-vector stage is a plain dot product of raw
integers followed by exact thresholds. :func:`finn_model` writes it in the form FINN's
streamlined graphs take, so that FINN builds the same integer function edgec's reference
computes, widths kept, and nothing is re-derived from floats:

* the graph input is the plan's input stream, ``[1, k]`` for a vector or ``[1, H, W, C]``
  (NHWC) for a feature map, annotated with its QONNX DataType (``INT8``, ``UINT4``, ...);
* a fully connected stage is ``MatMul(x, W^T)`` (weights annotated with their DataType, held in
  float32 as every FINN graph holds integers), preceded by a ``Reshape`` to ``[1, k]`` when the
  stream is a feature map (the plan's weights are already in stream order, NHWC);
* a convolution is ``Im2Col`` (qonnx, NHWC, windows in ``kh, kw, c`` order: the plan's weight
  order; padding with the plan's pad value) then that ``MatMul``;
* each matrix-vector stage ends in ``MultiThreshold(acc, thresholds)`` with ``out_bias`` the
  output type's minimum, so that its output is ``min + #{t : acc >= t}``: the plan's definition;
* a max pool is qonnx's ``MaxPoolNHWC``;
* every stream carries qonnx's layout annotation (NHWC or NC): FINN takes an unannotated 4-D
  value for NCHW.

FINN's padding unit pads with zeros only, and a convolution pads with its input's zero point
(an asymmetric int8 activation's is -128). So a stream that a padded convolution reads (through
max pools, which commute with the shift) is carried *offset*: FINN's value is the raw value
minus that zero point (int8 becomes UINT8 ``[0, 255]``), the producer's ``out_bias`` moves by the
offset and the consumer's thresholds by ``offset * sum(weights of the channel)``, so the
integers the graph computes are unchanged. :func:`stream_offsets` gives the offsets; the graph
input's (``offsets[0]``) is subtracted from the rows fed to FINN; the output is never offset.

What FINN cannot take is refused here, by layer, with :class:`UnsupportedModelError`: residual
adds (FINN would need the two rescaling tables as layers of their own), padded max pools and
non-square kernels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.backends.fpga.layers import AddLayer, Layer, MvuLayer, PoolLayer, check_plan
from edgec.errors import UnsupportedModelError
from edgec.inttype import IntType

#: The ONNX domain of qonnx's general custom ops (MultiThreshold, Im2Col, MaxPoolNHWC).
QONNX_DOMAIN = "qonnx.custom_op.general"
#: qonnx's layout annotation of a stream by its rank: feature maps are NHWC, vectors NC.
_LAYOUTS = {2: ["N", "C"], 4: ["N", "H", "W", "C"]}
_EDGEC_FLOW = "compile with the edgec flow instead (drop --flow finn)"


def finn_datatype(int_type: IntType) -> str:
    """QONNX's DataType name for ``int_type`` (``INT4``, ``UINT8``; narrow ranges are not a
    DataType of their own: an ``int4n`` value is an ``INT4``)."""
    return f"{'INT' if int_type.signed else 'UINT'}{int_type.bits}"


def range_datatype(low: int, high: int) -> str:
    """The narrowest QONNX integer DataType holding ``[low, high]``."""
    if low >= 0:
        return f"UINT{max(1, int(high).bit_length())}"
    bits = max((-int(low) - 1).bit_length(), int(high).bit_length()) + 1
    return f"INT{bits}"


def stream_offsets(layers: list[Layer]) -> list[int]:
    """Per layer, the offset of the stream it reads (FINN value = raw value - offset): the pad
    value of the padded convolution that reads the stream, directly or through max pools; 0
    where none pads."""
    offsets = [0] * len(layers)
    for position in range(len(layers) - 1, -1, -1):
        layer = layers[position]
        window = getattr(layer, "window", None)
        if isinstance(layer, MvuLayer) and window is not None and any(window.pads):
            offsets[position] = int(window.pad_value)
        elif isinstance(layer, PoolLayer) and position + 1 < len(layers):
            offsets[position] = offsets[position + 1]
    return offsets


def threshold_datatype(thresholds: np.ndarray) -> str:
    """The narrowest signed DataType holding every threshold (FINN rounds and clips them further)."""
    bound = max(int(np.abs(thresholds).max(initial=0)), 1)
    return f"INT{max(2, bound.bit_length() + 1)}"


def _refuse(layer: Layer, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"FINN cannot build layer '{layer.name}' ({layer.op}): {why}", _EDGEC_FLOW)


def check_finn_plan(layers: list[Layer]) -> None:
    """Raise :class:`UnsupportedModelError` naming the first layer FINN's build cannot take."""
    for layer in layers:
        if isinstance(layer, AddLayer):
            raise _refuse(layer, "residual adds rescale both inputs, which FINN's AddStreams does not")
        window = layer.window
        if isinstance(layer, PoolLayer) and any(window.pads):
            raise _refuse(layer, "FINN's max pool takes no padding")
        if isinstance(layer, MvuLayer) and window is not None and window.kernel[0] != window.kernel[1]:
            raise _refuse(layer, f"its {window.kernel[0]}x{window.kernel[1]} kernel is not square")


class _Builder:
    """Appends nodes, initializers and annotations to one graph, tracking the stream."""

    def __init__(self, first: Layer, offset: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.annotations: dict[str, str] = {}
        self.shapes: dict[str, list[int]] = {}
        window = getattr(first, "window", None)
        shape = [1, first.input_elements] if window is None else [1, window.in_h, window.in_w, window.channels]
        self.stream = self.input = "global_in"
        self.shapes[self.stream] = shape
        self.annotations[self.stream] = range_datatype(first.input_type.min - offset, first.input_type.max - offset)

    def value(self, name: str, shape: list[int], datatype: str) -> str:
        self.shapes[name] = shape
        self.annotations[name] = datatype
        return name

    def constant(self, name: str, array: np.ndarray, datatype: str | None, dtype=np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        if datatype is not None:
            self.annotations[name] = datatype
        return name

    def node(self, op_type: str, inputs: list[str], output: str, name: str, domain: str = "", **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, domain=domain, **attrs))
        self.stream = output

    def mvu(self, layer: MvuLayer, position: int, offset: int, out_offset: int) -> None:
        """``layer`` reading a stream offset by ``offset``, writing one offset by ``out_offset``."""
        prefix = f"L{position}"
        window, shape = layer.window, self.shapes[self.stream]
        if window is not None:
            out_shape = [1, window.out_h, window.out_w, layer.vector_length]
            self.node("Im2Col", [self.stream], self.value(f"{prefix}_windows", out_shape, self.annotations[self.stream]),
                      f"{prefix}_Im2Col", QONNX_DOMAIN, stride=list(window.stride), kernel_size=list(window.kernel),
                      input_shape=str(tuple(shape)), pad_amount=list(window.pads),
                      pad_value=int(window.pad_value) - offset)
        elif len(shape) != 2:
            flat = self.constant(f"{prefix}_flat_shape", np.array([1, layer.vector_length]), None, np.int64)
            self.node("Reshape", [self.stream, flat],
                      self.value(f"{prefix}_flat", [1, layer.vector_length], self.annotations[self.stream]),
                      f"{prefix}_Reshape")
        stream_shape = self.shapes[self.stream]
        weights = self.constant(f"{prefix}_weights", layer.weights.T, finn_datatype(layer.weight_type))
        acc = self.value(f"{prefix}_acc", [*stream_shape[:-1], layer.out_channels], "INT32")
        self.node("MatMul", [self.stream, weights], acc, f"{prefix}_MatMul")
        # acc over offset inputs = acc - offset * sum(w): the thresholds move with it.
        moved = layer.thresholds - offset * layer.weights.sum(axis=1, keepdims=True)
        thresholds = self.constant(f"{prefix}_thresholds", moved, threshold_datatype(moved))
        out_type = range_datatype(layer.output_type.min - out_offset, layer.output_type.max - out_offset)
        out = self.value(f"{prefix}_out", self.shapes[acc], out_type)
        self.node("MultiThreshold", [acc, thresholds], out, f"{prefix}_MultiThreshold", QONNX_DOMAIN,
                  out_dtype=out_type, out_bias=float(layer.output_type.min - out_offset),
                  out_scale=1.0, data_layout="NHWC" if len(stream_shape) == 4 else "NC")

    def pool(self, layer: PoolLayer, position: int) -> None:
        w = layer.window
        out = self.value(f"L{position}_out", [1, w.out_h, w.out_w, w.channels], self.annotations[self.stream])
        self.node("MaxPoolNHWC", [self.stream], out, f"L{position}_MaxPoolNHWC", QONNX_DOMAIN,
                  kernel_shape=list(w.kernel), strides=list(w.stride), pads=list(w.pads))


def finn_model(layers: list[Layer], name: str) -> onnx.ModelProto:
    """The QONNX graph of ``layers`` (see the module docstring): input ``global_in`` (raw values
    less ``stream_offsets(layers)[0]``), output ``global_out``, every value annotated with its DataType. Refuses what FINN cannot build
    (:func:`check_finn_plan`)."""
    check_plan(layers)
    check_finn_plan(layers)
    offsets = stream_offsets(layers) + [0]
    builder = _Builder(layers[0], offsets[0])
    for position, layer in enumerate(layers):
        if isinstance(layer, MvuLayer):
            builder.mvu(layer, position, offsets[position], offsets[position + 1])
        else:
            builder.pool(layer, position)
    last = builder.nodes[-1]
    out_shape = builder.shapes[builder.stream]
    last.output[0] = "global_out"
    builder.value("global_out", out_shape, builder.annotations[builder.stream])
    del builder.shapes[builder.stream], builder.annotations[builder.stream]
    graph = helper.make_graph(
        builder.nodes, name,
        [helper.make_tensor_value_info(builder.input, TensorProto.FLOAT, builder.shapes[builder.input])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, out_shape)],
        builder.initializers,
        value_info=[helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in builder.shapes.items()
                    if n not in (builder.input, "global_out")])
    for tensor, datatype in builder.annotations.items():
        annotation = onnx.TensorAnnotation(tensor_name=tensor)
        annotation.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="finn_datatype",
                                                                                  value=datatype))
        if tensor in builder.shapes:  # a stream: FINN would take a 4-D one for NCHW
            layout = _LAYOUTS[len(builder.shapes[tensor])]
            annotation.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="tensor_layout",
                                                                                      value=str(layout)))
        graph.quantization_annotation.append(annotation)
    return helper.make_model(graph, producer_name="edgec",
                             opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
