"""Integer graph -> FPGA layer plan (:mod:`edgec.backends.fpga.layers`).

The FPGA backend takes a *chain*: one graph input, one graph output, every node reading the
value the node before it wrote, except residual blocks: a value read by two nodes (a *fork*),
one of them an ``Add`` that later joins it with the chain's value of the same shape (no
broadcasting), the branch in between holding at least one stage and the skip branch none
(the Add reads the forked value itself). One fork is open at a time (blocks follow one
another, never nest). Walking the graph in order, :func:`plan_layers`:

1. skips the input ``Quantize`` (the hardware input is its quantized integer stream, as the
   Cortex-M backend's input rows are) and the output ``Dequantize``;
2. skips ``Reshape`` (the same elements in the same order: a no-op on a stream);
3. absorbs a ``Transpose`` (or several) that, through Reshapes, feeds a ``FullyConnected``:
   the FC reads its vector in transposed order, so its weight columns are permuted to the
   stream's order instead (exact: the same products, summed in another order);
4. turns ``FullyConnected`` (one vector per inference) and ``Conv`` (NHWC, any kernel, stride
   and padding, dilation 1) into an :class:`MvuLayer` whose thresholds
   (:mod:`edgec.backends.fpga.thresholds`) fold bias, zero points and the requantization in;
   a convolution pads with its input zero point, which contributes nothing, as in the reference;
   weights delta-encoded (:func:`edgec.delta.get_scheme`) keep their scheme on the layer, and
   a FullyConnected whose absorbed Transpose reorders them is refused unless the scheme holds
   in the new column order;
5. turns ``MaxPool`` into a :class:`PoolLayer` padding with the input type's minimum (never
   larger than a valid element, so it never wins, as in the reference);
6. turns the joining ``Add`` into an :class:`AddLayer`: each input's rescaled term is the
   reference's own :func:`edgec.reference.elementwise.rescale_input` on every value of the
   input's type (a table), and the output requantization of the sum becomes thresholds over
   the reachable sum range; every pair of input values is then evaluated both ways, so an
   add whose thresholds would differ from the reference anywhere is refused.

:func:`check_model` makes the same walk without computing thresholds and raises
:class:`UnsupportedModelError` naming the first node it cannot take.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.backends.fpga.layers import AddLayer, Layer, MvuLayer, PoolLayer, Window, apply_thresholds, check_layer
from edgec.backends.fpga.thresholds import Requant, accumulator_range, exact_thresholds, node_requant
from edgec.delta import get_scheme, reconstruct
from edgec.errors import UnsupportedModelError
from edgec.fixedpoint import operator_rounding
from edgec.inttype import IntType
from edgec.passes.qparams import int_type_of
from edgec.reference.elementwise import rescale_input
from edgec.reference.executor import node_attributes

#: Why an operator is refused, for the operators of the edgec set the backend does not take.
_LATER = {
    "Sub": "elementwise operators are not dataflow stages yet",
    "Mul": "elementwise operators are not dataflow stages yet",
    "Concat": "the dataflow design is a single chain (no concatenation yet)",
    "DepthwiseConv": "depthwise convolutions are not a dataflow stage yet",
    "AveragePool": "only MaxPool is a pooling stage so far",
    "Mean": "global means are not a dataflow stage yet",
    "Softmax": "softmax has no threshold form; leave it to the host",
    "Requantize": "a standalone requantization is not a stage; fold it into the layer before it",
    "Clamp": "a standalone clamp is not a stage; fold it into the layer before it (edgec quantize fuses it)",
    "Pad": "explicit Pad nodes are not a stage; use the convolution's own padding",
}
#: The operators the walk takes (as stages, or as no-ops on the stream).
_HANDLED = frozenset({"Quantize", "Dequantize", "Reshape", "Transpose", "FullyConnected", "Conv", "MaxPool",
                      "Add"})
_CHAIN_FIX = "compile for a cortex-m target"
_FIX = "remove or replace the operator in the model, or compile for a cortex-m target"


def _refuse(node: ir.Node, why: str, fix: str = _FIX) -> UnsupportedModelError:
    return UnsupportedModelError(f"node '{node.name}' ({node.op_type}) is not supported on fpga targets: {why}", fix)


def _shape(value: ir.Value) -> list[int]:
    return [int(d) for d in value.shape.numpy()]


def _stream_type(node: ir.Node, value: ir.Value) -> IntType:
    """The integer type of a streamed value: 2 to 8 bits."""
    if value.dtype is None or not value.dtype.is_integer():
        raise _refuse(node, f"value '{value.name}' is not an integer tensor", "quantize the model first (edgec quantize)")
    int_type = int_type_of(value)
    if int_type.bits > 8:
        raise _refuse(node, f"value '{value.name}' is {int_type}; streams carry 2- to 8-bit values",
                      "quantize activations to at most 8 bits")
    return int_type


def _constant(node: ir.Node, index: int) -> np.ndarray | None:
    value = node.inputs[index] if index < len(node.inputs) else None
    if value is None:
        return None
    if value.const_value is None:
        raise _refuse(node, f"input '{value.name}' is not a constant", "give the layer constant weights and bias")
    return value.const_value.numpy()


class _Walk:
    """One walk over a chain graph; ``build`` computes the layers (else only checks)."""

    def __init__(self, model: ir.Model, build: bool) -> None:
        self.model = model
        self.build = build
        self.rounding = model.metadata_props.get(ops.ROUNDING_KEY, "double")
        self.layers: list[Layer] = []
        self.stages = 0  # stages seen (also when only checking, where ``layers`` stays empty)
        self.stream: ir.Value | None = None
        self.order: np.ndarray | None = None  # stream element read at each position (absorbed Transposes)
        self.transpose: ir.Node | None = None
        self.fork: tuple[ir.Value, int] | None = None  # the open fork: its value, the stage writing it (-1: input)

    def run(self) -> list[Layer]:
        graph = self.model.graph
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise UnsupportedModelError(
                f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                "fpga targets take one of each", "export a single-input single-output model")
        for node in graph:  # operators first: the first node of an operator the design lacks is named
            node_attributes(node)  # raises for a node that is not an edgec integer operator
            if node.op_type not in _HANDLED:
                raise _refuse(node, _LATER.get(node.op_type, "not an operator of the dataflow design"))
        self.stream = graph.inputs[0]
        for node in graph:
            self._node(node)
        output = graph.outputs[0]
        if self.transpose is not None:
            raise self._transpose_error()
        if output is not self.stream or not self.stages:
            raise UnsupportedModelError("the model's output is not computed by a chain of Conv/FullyConnected/"
                                        "MaxPool layers and residual Adds", "compile for a cortex-m target")
        return self.layers

    def _node(self, node: ir.Node) -> None:
        data = node.inputs[0] if node.inputs else None
        if node.op_type == "Quantize" and data is self.model.graph.inputs[0]:
            self._quantize(node, data)
            return
        if node.op_type == "Add":
            self._add(node, node_attributes(node))
            return
        if data is not self.stream:
            raise _refuse(node, f"it reads '{data.name if data is not None else None}', not the chain's "
                          f"current value '{self.stream.name}' (fpga designs are single chains)",
                          "compile for a cortex-m target")
        if len(data.consumers()) != 1 or data in self.model.graph.outputs:
            self._open_fork(node, data)
        if self.transpose is not None and node.op_type not in ("Reshape", "Transpose", "FullyConnected"):
            raise self._transpose_error()
        if node.op_type == "Quantize":
            raise _refuse(node, "a Quantize is only taken at the model's input", "compile for a cortex-m target")
        handler = {"Reshape": self._reshape, "Transpose": self._transpose, "FullyConnected": self._mvu,
                   "Conv": self._mvu, "MaxPool": self._pool, "Dequantize": self._dequantize}[node.op_type]
        handler(node, node_attributes(node))

    def _open_fork(self, node: ir.Node, data: ir.Value) -> None:
        """Take ``data`` (read by ``node`` and others) as the fork of a residual block, or refuse."""
        others = [reader for reader in data.consumers() if reader is not node]
        if len(others) != 1 or others[0].op_type != "Add" or data in self.model.graph.outputs:
            raise _refuse(node, f"value '{data.name}' has several readers; fpga designs are chains whose only "
                          "forks are residual blocks (a value read by the next stage and by the Add joining "
                          "the branch)", _CHAIN_FIX)
        if self.fork is not None:
            raise _refuse(node, f"value '{data.name}' forks inside the residual block forked at "
                          f"'{self.fork[0].name}' (residual blocks do not nest yet)", _CHAIN_FIX)
        if self.transpose is not None:
            raise self._transpose_error()
        self.fork = (data, self.stages - 1)

    def _add(self, node: ir.Node, attrs: dict) -> None:
        """The Add joining the open fork (the skip input) with the chain's value (the main one)."""
        inputs, y = list(node.inputs), node.outputs[0]
        fork = self.fork[0] if self.fork is not None else None
        if len(inputs) != 2 or inputs[0] is inputs[1] or self.stream not in inputs or fork not in inputs:
            raise _refuse(node, "an Add is a stage only where it joins the chain's current value "
                          f"'{self.stream.name}' with a value forked earlier in the chain, read directly "
                          "(the skip branch holds no stage yet)", _CHAIN_FIX)
        if self.transpose is not None:
            raise self._transpose_error()
        skip_from = self.fork[1]
        if skip_from == self.stages - 1:
            raise _refuse(node, "its main branch holds no Conv/FullyConnected/MaxPool stage", _CHAIN_FIX)
        main_position = inputs.index(self.stream)
        main, skip = inputs[main_position], inputs[1 - main_position]
        if _shape(main) != _shape(skip):
            raise _refuse(node, f"it adds shapes {_shape(inputs[0])} and {_shape(inputs[1])}; broadcasting is "
                          "not a dataflow stage", "add values of the same shape")
        if len(main.consumers()) != 1:
            raise _refuse(node, f"value '{main.name}' has several readers inside a residual block", _CHAIN_FIX)
        in_type, skip_type, out_type = _stream_type(node, main), _stream_type(node, skip), _stream_type(node, y)
        if self.build:
            rounding = operator_rounding(self.rounding, node.op_type)

            def table(position: int, int_type: IntType) -> np.ndarray:
                values = np.arange(int_type.min, int_type.max + 1, dtype=np.int64)
                return np.asarray(rescale_input(attrs, rounding, position + 1, values), dtype=np.int64)

            main_table, skip_table = table(main_position, in_type), table(1 - main_position, skip_type)
            layer = AddLayer(len(self.layers), node.name, node.op_type, y.name, in_type, skip_type, out_type,
                             int(np.prod(_shape(y))), skip_from, main_table, skip_table,
                             self._add_thresholds(node, attrs, rounding, main_table, skip_table, out_type))
            check_layer(layer)
            self.layers.append(layer)
        self.stages += 1
        self.fork = None
        self.stream = y

    def _add_thresholds(self, node: ir.Node, attrs: dict, rounding: str, main_table: np.ndarray,
                        skip_table: np.ndarray, out_type: IntType) -> np.ndarray:
        """``[1, levels - 1]`` thresholds of the Add's output requantization over its reachable
        sums, checked against the reference on the sum of every pair of input values."""
        def one(key: str) -> np.ndarray:
            return np.array([int(attrs[key])], dtype=np.int64)

        requant = Requant(np.zeros(1, dtype=np.int64), one("output_multiplier"), one("output_shift"),
                          int(attrs["output_zero_point"]), int(attrs["activation_min"]),
                          int(attrs["activation_max"]), rounding, out_type)
        lo = np.array([int(main_table.min()) + int(skip_table.min())], dtype=np.int64)
        hi = np.array([int(main_table.max()) + int(skip_table.max())], dtype=np.int64)
        thresholds = exact_thresholds(requant, lo, hi, node.name)
        sums = (main_table[:, None] + skip_table[None, :]).reshape(-1, 1)
        if np.any(apply_thresholds(sums, thresholds, out_type) != requant(sums)):
            raise _refuse(node, "its requantization is not monotone in the sum of its rescaled inputs",
                          "re-run edgec quantize")
        return thresholds

    def _transpose_error(self) -> UnsupportedModelError:
        """The error for a Transpose that does not end in a FullyConnected."""
        fix = "let the Transpose feed a flatten and a FullyConnected, or drop it"
        if self.transpose.inputs[0].producer() is None or self.transpose.inputs[0].producer().op_type == "Quantize":
            fix = "quantize with --input-layout nhwc, so that the input stream is already channels-last"
        return _refuse(self.transpose, "a Transpose is only absorbed into a FullyConnected after it", fix)

    def _quantize(self, node: ir.Node, data: ir.Value) -> None:
        if len(data.consumers()) != 1:
            raise _refuse(node, f"value '{data.name}' has several readers (fpga designs are single chains)",
                          "compile for a cortex-m target")
        _stream_type(node, node.outputs[0])
        self.stream = node.outputs[0]

    def _reshape(self, node: ir.Node, attrs: dict) -> None:
        self.stream = node.outputs[0]

    def _transpose(self, node: ir.Node, attrs: dict) -> None:
        shape = _shape(node.inputs[0])
        order = np.arange(int(np.prod(shape))) if self.order is None else self.order
        self.order = order.reshape(shape).transpose([int(p) for p in attrs["perm"]]).ravel()
        self.transpose = self.transpose or node
        self.stream = node.outputs[0]

    def _dequantize(self, node: ir.Node, attrs: dict) -> None:
        if node.outputs[0] not in self.model.graph.outputs:
            raise _refuse(node, "a Dequantize is only taken at the model's output", "compile for a cortex-m target")
        self.stream = node.outputs[0]

    def _pool(self, node: ir.Node, attrs: dict) -> None:
        x, y = node.inputs[0], node.outputs[0]
        in_type, out_type = _stream_type(node, x), _stream_type(node, y)
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        pads = tuple(int(p) for p in attrs["pads"])
        if int(attrs["activation_min"]) > in_type.min or int(attrs["activation_max"]) < in_type.max \
                or not out_type.contains(in_type):
            raise _refuse(node, f"its clamp or output type narrows its {in_type} input",
                          "fold the clamp into the layer before the pool")
        if max(pads[0], pads[2]) >= kernel[0] or max(pads[1], pads[3]) >= kernel[1]:
            raise _refuse(node, "a padding as large as the kernel leaves windows without elements",
                          "use a padding smaller than the kernel")
        window = self._window(node, x, kernel, attrs, in_type.min)
        if self.build:
            self.layers.append(PoolLayer(len(self.layers), node.name, node.op_type, y.name, in_type, window))
        self.stages += 1
        self.stream = y

    def _window(self, node: ir.Node, x: ir.Value, kernel: tuple[int, int], attrs: dict, pad_value: int) -> Window:
        shape = _shape(x)
        if len(shape) != 4 or shape[0] != 1:
            raise _refuse(node, f"its input has shape {shape}, not [1, H, W, C] (NHWC, batch 1)",
                          "export the model with batch 1")
        window = Window(shape[1], shape[2], shape[3], kernel, tuple(int(s) for s in attrs["strides"]),
                        tuple(int(p) for p in attrs["pads"]), pad_value)
        if window.out_h < 1 or window.out_w < 1:
            raise _refuse(node, f"its window does not fit its {shape[1]}x{shape[2]} input", "check the input shape")
        return window

    def _mvu(self, node: ir.Node, attrs: dict) -> None:
        x, y = node.inputs[0], node.outputs[0]
        in_type, out_type = _stream_type(node, x), _stream_type(node, y)
        weights = _constant(node, 1)
        weight_type = int_type_of(node.inputs[1])
        if weight_type.bits > 8:
            raise _refuse(node, f"its weights are {weight_type}", "quantize weights to at most 8 bits")
        zero_point = int(attrs["input_zero_point"])
        window = None
        if node.op_type == "Conv":
            if [int(d) for d in attrs["dilations"]] != [1, 1]:
                raise _refuse(node, "dilated convolutions are not a stage yet", "use dilation 1")
            if not in_type.min <= zero_point <= in_type.max:
                raise _refuse(node, f"its input zero point {zero_point} is not a value of {in_type}",
                              "re-run edgec quantize")
            window = self._window(node, x, (int(weights.shape[1]), int(weights.shape[2])), attrs, zero_point)
            if weights.shape[3] != window.channels:
                raise _refuse(node, "its weights do not match its input channels", "re-run edgec quantize")
        else:
            shape = _shape(x)
            if int(np.prod(shape[:-1])) != 1:
                raise _refuse(node, f"its input has shape {shape}: one vector per inference is a stage, "
                              "several are not", "flatten the input before the FullyConnected")
        matrix = weights.reshape(weights.shape[0], -1).astype(np.int64)
        delta = get_scheme(node.inputs[1])
        if node.op_type == "FullyConnected" and self.order is not None:
            permuted = np.empty_like(matrix)
            permuted[:, self.order] = matrix
            matrix, self.order, self.transpose = permuted, None, None
            if delta is not None and not np.array_equal(reconstruct(matrix, delta, weight_type), matrix):
                raise _refuse(node, f"its {delta.describe()} do not hold in the order the absorbed Transpose "
                              "gives its columns (the stream's order, which the decoder follows)",
                              "flatten channels-last in the model (or quantize with --input-layout nhwc where "
                              "the Transpose is the input's), or use --delta-scheme fixed --delta-scope channel")
        if self.build:
            rounding = operator_rounding(self.rounding, node.op_type)
            requant = node_requant(attrs, rounding, matrix, _constant(node, 2), out_type)
            lo, hi = accumulator_range(matrix, in_type)
            layer = MvuLayer(len(self.layers), node.name, node.op_type, y.name, in_type, weight_type, out_type,
                             matrix, exact_thresholds(requant, lo, hi, node.name), window, delta=delta)
            check_layer(layer)
            self.layers.append(layer)
        self.stages += 1
        self.stream = y


def check_model(model: ir.Model) -> None:
    """Raise :class:`UnsupportedModelError` naming the first node an fpga target cannot take."""
    _Walk(model, build=False).run()


def plan_layers(model: ir.Model) -> list[Layer]:
    """The layer plan of ``model`` (an edgec integer graph), stage ``i`` at index ``i``, with
    ``pe = simd = 1`` (:func:`edgec.backends.fpga.folding.fold` chooses the folding)."""
    return _Walk(model, build=True).run()
