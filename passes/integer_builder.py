"""IntegerGraphBuilder: the state of a float-to-integer lowering in progress.

Used by :class:`passes.quantize.QuantizePass` and the per-operator functions of
:mod:`passes.lower_ops`. It owns the new graph's nodes and initializers, the map from
float values to integer values (with their layout), and the choice of quantization
parameters for each float tensor (see :mod:`passes.quantize`, case 4), in the activation
type it was built with unless the float model recorded another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.control_flow import all_nodes
from edgec.errors import UnsupportedModelError
from edgec.inttype import INT8, INT8_WEIGHTS, IntType
from edgec.passes.graph_utils import const_array, sole_consumer, static_shape
from edgec.passes.multipliers import MultiplierRangeError, requantize_attributes
from edgec.passes.normalize_reshapes import keeps_data_order
from edgec.passes.qparams import (
    QParams,
    activation_qparams,
    get_qparams,
    set_channel_scales,
    set_int_type,
    set_qparams,
)

#: Float ops whose output may take the range of the Relu/Clip that alone reads it.
FUSABLE_PRODUCERS = frozenset({"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul"})
ACTIVATIONS = frozenset({"Relu", "Clip"})


def channels_last_perm(rank: int) -> list[int]:
    """Permutation taking ``[N, C, *spatial]`` to ``[N, *spatial, C]``."""
    return [0, *range(2, rank), 1]


def channels_first_perm(rank: int) -> list[int]:
    """Inverse of :func:`channels_last_perm`."""
    return [0, rank - 1, *range(1, rank - 1)]


class IntegerGraphBuilder:
    """Accumulates the integer graph while the float graph is lowered node by node.

    Each float value maps to one integer value plus a layout flag: ``channels_last`` means
    the integer tensor holds the float tensor permuted by :func:`channels_last_perm`.
    ``weight_type`` and ``activation_type`` are the types post-training quantization gives
    weights and activations that the float model does not quantize itself. ``lowerings``
    maps float op types to their lowering functions (:data:`passes.lower_ops.LOWERINGS`);
    ``routers`` are the graph's float routers by comparison node and ``absorbed`` the nodes
    they stand for, which are not lowered on their own (:mod:`passes.lower_control`).

    ``nodes`` collects the graph being built: the main graph, or while a branch is lowered
    (:meth:`lower_branch`) that branch's. Initializers all go to the main graph.
    """

    def __init__(self, float_model: ir.Model, ranges: Mapping[str, tuple[float, float]],
                 weight_type: IntType = INT8_WEIGHTS, activation_type: IntType = INT8, *,
                 lowerings: Mapping[str, Callable] | None = None, routers: Mapping | None = None,
                 absorbed: set[ir.Node] | None = None) -> None:
        self.float_model = float_model
        self.ranges = ranges
        self.weight_type = weight_type
        self.activation_type = activation_type
        self.lowerings = lowerings or {}
        self.routers = routers or {}
        self.absorbed = absorbed or set()
        self.nodes: list[ir.Node] = []
        self.initializers: list[ir.Value] = []
        self._values: dict[str, tuple[ir.Value, bool]] = {}
        self._converted: dict[tuple[str, bool], ir.Value] = {}
        #: Float value name -> parameters a branch output must have (those of its If's output).
        self._forced: dict[str, QParams] = {}
        graph = float_model.graph
        self._interface = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
        self._names: set[str] = set(self._interface)
        #: Float value name -> name of the float node computing it: the integer node emitted
        #: for that value takes the float node's name (the layer name users see).
        self._layer_names = {out.name: node.name for node in all_nodes(graph) for out in node.outputs if node.name}
        #: Node names given so far (unique over the whole model, branches included).
        self.node_names: set[str] = set()

    # -- names and shapes ------------------------------------------------------------
    def unique_name(self, base: str, taken: set[str] | None = None) -> str:
        """A name not yet in ``taken`` (default: the integer graph's value names), added to it;
        ``base`` itself when free."""
        taken = self._names if taken is None else taken
        base = base or "t"
        name, counter = base, 1
        while name in taken:
            name, counter = f"{base}_{counter}", counter + 1
        taken.add(name)
        return name

    @staticmethod
    def shape_of(value: ir.Value) -> tuple[int, ...]:
        shape = static_shape(value)
        if shape is None:
            raise UnsupportedModelError(
                f"tensor '{value.name}' has no static shape", "give --input-shape so every shape is known"
            )
        return shape

    # -- quantization parameters --------------------------------------------------------
    def desired_qparams(self, value: ir.Value) -> QParams:
        """The parameters ``value`` should be quantized with (module docstring, case 4); a
        branch output's are its ``If`` output's."""
        if value.name in self._forced:
            return self._forced[value.name]
        recorded = get_qparams(value)
        if recorded is not None:
            return stored_as_int8(recorded, value.name)
        producer = value.producer()
        consumer = sole_consumer(value)
        if (producer is not None and producer.op_type in FUSABLE_PRODUCERS and consumer is not None
                and consumer.op_type in ACTIVATIONS and consumer.domain == ""):
            return self.desired_qparams(consumer.outputs[0])
        if value.name not in self.ranges:
            raise UnsupportedModelError(
                f"no calibration range for tensor '{value.name}'",
                "give calibration data (--calib FILE) that reaches every tensor",
            )
        low, high = self.ranges[value.name]
        return activation_qparams(low, high, self.activation_type)

    @staticmethod
    def qparams_of(value: ir.Value) -> QParams:
        """Parameters of an int8 value of the integer graph."""
        q = get_qparams(value)
        assert q is not None, f"integer value {value.name} lacks quantization parameters"
        return q

    # -- building -------------------------------------------------------------------
    def constant(self, base: str, array: np.ndarray, qparams: QParams | None = None,
                 channel_scales: tuple[np.ndarray, int] | None = None, int_type: IntType | None = None) -> ir.Value:
        """Add an initializer (int8 weights, int32 bias ...) to the integer graph.

        ``qparams`` (per-tensor, with its type) or ``channel_scales`` (scales, axis) and
        ``int_type`` (weights: int8n ..., biases: int32) are recorded on it.
        """
        name = self.unique_name(base)
        tensor = ir.tensor(np.ascontiguousarray(array), name=name)
        value = ir.Value(name=name, shape=ir.Shape(array.shape), type=ir.TensorType(tensor.dtype),
                         const_value=tensor)
        if qparams is not None:
            set_qparams(value, qparams)
        if channel_scales is not None:
            set_channel_scales(value, *channel_scales)
        if int_type is not None:
            set_int_type(value, int_type)
        self.initializers.append(value)
        return value

    def emit(self, op_type: str, inputs: list[ir.Value | None], attrs: dict, *, shape, name: str,
             qparams: QParams | None, dtype: ir.DataType | None = None, node_name: str | None = None) -> ir.Value:
        """Append an edgec node; returns its (single) output value, named after the float
        value ``name``, the node after the float node computing that value (or ``node_name``);
        of ``dtype``, by default the storage of ``qparams``' type (:func:`activation_dtype`)."""
        out_name = self._value_name(name)
        node_name = self.unique_name(node_name, self.node_names) if node_name else self.node_name(name, out_name)
        node = ir.node(op_type, inputs, attrs, domain=ops.DOMAIN, name=node_name)
        out = node.outputs[0]
        out.name = out_name
        out.shape = ir.Shape(list(shape))
        out.type = ir.TensorType(dtype or activation_dtype(qparams))
        if qparams is not None:
            set_qparams(out, qparams)
        self.nodes.append(node)
        return out

    def _value_name(self, float_name: str) -> str:
        return self.unique_name(f"{float_name}_int8" if float_name in self._interface else float_name)

    def node_name(self, float_value_name: str, fallback: str | None = None) -> str:
        """A unique node name: that of the float node computing ``float_value_name``."""
        return self.unique_name(self._layer_names.get(float_value_name, fallback or float_value_name),
                                self.node_names)

    def name_output(self, out: ir.Value, float_value: ir.Value, qparams: QParams) -> None:
        """Name, shape and quantize ``out`` (an output of a node built by hand) as
        :meth:`emit` does for the integer value of ``float_value``."""
        out.name = self._value_name(float_value.name)
        out.shape = ir.Shape(list(self.shape_of(float_value)))
        out.type = ir.TensorType(activation_dtype(qparams))
        set_qparams(out, qparams)

    # -- lowering ---------------------------------------------------------------------
    @property
    def wide(self) -> bool:
        """Whether activations are int16 (the 16x8 scheme): int64 biases, the operators of
        :data:`INT16_OPERATORS` in int16 and those of :data:`INT8_ISLANDS` in int8."""
        return self.activation_type.bits == 16

    def lower_graph(self, graph: ir.Graph) -> None:
        """Lower every node of ``graph`` (not absorbed by a router) with :attr:`lowerings`."""
        for node in graph:
            if node in self.absorbed:
                continue
            if self.wide and node.op_type in INT8_ISLANDS:
                self._lower_in_int8(node)
                continue
            if self.wide and node.op_type not in INT16_OPERATORS:
                raise UnsupportedModelError(
                    f"{node.op_type} node '{node.name}' has no 16-bit activation form",
                    f"with --activation-bits 16 edgec quantizes {', '.join(sorted(INT16_OPERATORS | INT8_ISLANDS))}; "
                    "use 8 bits")
            try:
                self.lowerings[node.op_type](self, node)
            except MultiplierRangeError as error:
                raise UnsupportedModelError(
                    f"{node.op_type} node '{node.name}' cannot be requantized in int8: {error}",
                    "the ranges of its inputs and output differ by too many orders of magnitude; check its "
                    "weights and the calibration data") from None

    def _lower_in_int8(self, node: ir.Node) -> None:
        """Lower ``node`` (an :data:`INT8_ISLANDS` operator in a 16-bit graph) with int8
        activations: its int16 inputs requantized to int8 (each with the int8 parameters of its
        range) first, its outputs back to int16 after."""
        saved_values, saved_converted = dict(self._values), dict(self._converted)
        inputs = {v.name: v for v in node.inputs if v is not None and v.name in self._values}
        self._converted = {key: value for key, value in self._converted.items() if key[0] not in inputs}
        self.activation_type, wide_type = INT8, self.activation_type
        try:
            for name, float_value in inputs.items():
                value, channels_last = self._values[name]
                narrow = self.to_qparams(value, self.desired_qparams(float_value), f"{name}_int8")
                self._values[name] = (narrow, channels_last)
            self.lowerings[node.op_type](self, node)
        finally:
            self.activation_type = wide_type
            outputs = {out.name: self._values[out.name] for out in node.outputs if out.name in self._values}
            self._values, self._converted = {**saved_values, **outputs}, saved_converted
        for out in node.outputs:
            value, channels_last = self._values[out.name]
            self._values[out.name] = (self.to_qparams(value, self.desired_qparams(out), f"{out.name}_int16"),
                                      channels_last)

    def lower_branch(self, branch: ir.Graph, targets: list[QParams]) -> ir.Graph:
        """The integer subgraph of ``branch`` (a float ``If`` branch), its outputs channels-first
        with the parameters ``targets`` (see :mod:`passes.lower_control`)."""
        saved = self.nodes, dict(self._values), dict(self._converted), dict(self._forced)
        self.nodes = []
        self._forced.update({out.name: q for out, q in zip(branch.outputs, targets, strict=True)})
        self.lower_graph(branch)
        outputs = []
        for out_f, q in zip(branch.outputs, targets, strict=True):
            value = self.to_qparams(self.value_in_layout(out_f, channels_last=False), q, f"{out_f.name}_requantized")
            if value.producer() is None or value.producer() not in self.nodes:  # read from outside: a copy
                value = self.emit("Reshape", [value], {"shape": list(value.shape.numpy())}, shape=value.shape.numpy(),
                                  name=f"{out_f.name}_branch", qparams=q)
            outputs.append(value)
        graph = ir.Graph([], outputs, nodes=self.nodes, name=branch.name)
        self.nodes, self._values, self._converted, self._forced = saved
        return graph

    def bind(self, float_value: ir.Value, int_value: ir.Value, channels_last: bool) -> None:
        """Record that ``int_value`` holds ``float_value`` (tagging it, unless already tagged)."""
        self._values[float_value.name] = (int_value, channels_last)
        if ops.SOURCE_KEY not in int_value.metadata_props and not int_value.is_graph_input():
            int_value.metadata_props[ops.SOURCE_KEY] = float_value.name
            if channels_last and len(self.shape_of(float_value)) >= 3:
                int_value.metadata_props[ops.LAYOUT_KEY] = "nhwc"

    def lookup(self, float_value: ir.Value) -> tuple[ir.Value, bool]:
        if float_value.name not in self._values:
            raise UnsupportedModelError(
                f"tensor '{float_value.name}' is not produced by a supported operator",
                "edgec needs every non-constant tensor to come from a supported operator",
            )
        return self._values[float_value.name]

    def value_in_layout(self, float_value: ir.Value, channels_last: bool) -> ir.Value:
        """The integer value of ``float_value`` in the requested layout (converting once)."""
        value, current = self.lookup(float_value)
        rank = len(self.shape_of(float_value))
        if current == channels_last or rank < 3:
            return value
        key = (float_value.name, channels_last)
        if key not in self._converted:
            perm = channels_last_perm(rank) if channels_last else channels_first_perm(rank)
            self._converted[key] = self.permute(value, perm, f"{float_value.name}_{'nhwc' if channels_last else 'nchw'}")
        return self._converted[key]

    def permute(self, value: ir.Value, perm: list[int], name: str) -> ir.Value:
        """``Transpose`` of ``value`` by ``perm``, or a zero-copy ``Reshape`` when the order is kept."""
        shape = tuple(int(d) for d in value.shape.numpy())
        new_shape = [shape[p] for p in perm]
        if perm == sorted(perm):
            return value
        q = self.qparams_of(value)
        if keeps_data_order(shape, perm):
            return self.emit("Reshape", [value], {"shape": new_shape}, shape=new_shape, name=name, qparams=q)
        return self.emit("Transpose", [value], {"perm": perm}, shape=new_shape, name=name, qparams=q)

    def to_qparams(self, value: ir.Value, target: QParams, name: str, clamp: tuple[int, int] | None = None) -> ir.Value:
        """``value`` requantized to ``target`` and clamped to ``clamp`` (default: the whole of
        ``target``'s type); the value itself when already there and unclamped."""
        source = self.qparams_of(value)
        full = (target.int_type.min, target.int_type.max)
        clamp = full if clamp is None else clamp
        if source == target and clamp == full:
            return value
        attrs = requantize_attributes(source, target)
        attrs.update(activation_min=clamp[0], activation_max=clamp[1])
        return self.emit("Requantize", [value], attrs, shape=value.shape.numpy(), name=name, qparams=target)

    def finish_preserving(self, float_out: ir.Value, value: ir.Value, channels_last: bool) -> None:
        """Bind the output of a scale-preserving op, requantizing if QDQ asked for other parameters."""
        recorded = get_qparams(float_out)
        if recorded is not None and recorded != self.qparams_of(value):
            value = self.to_qparams(value, recorded, f"{float_out.name}_requantized")
        self.bind(float_out, value, channels_last)


#: The float operators with a 16-bit activation form (``--activation-bits 16``): those whose
#: integer operators the 16x8 scheme has (:mod:`edgec.frontend.tflite_types`), and the layout ones.
INT16_OPERATORS = frozenset({
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Relu", "Clip", "AveragePool", "MaxPool", "GlobalAveragePool",
    "GlobalMaxPool", "Concat", "Pad", "Slice", "Split", "Resize", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
    "Transpose",
})


#: The float operators that, with 16-bit activations, run in int8 between two Requantizes:
#: their integer forms are int8 ones (256-entry tables, Softmax's int8 output).
INT8_ISLANDS = frozenset({"Softmax", "Sigmoid", "Tanh", "HardSwish", "LeakyRelu"})


def activation_dtype(qparams: QParams | None) -> ir.DataType:
    """The storage of an activation quantized with ``qparams``: INT16 for a type wider than
    int8 holds (the 16x8 scheme's int16), else INT8."""
    return ir.DataType.INT16 if qparams is not None and not qparams.int_type.fits_int8() else ir.DataType.INT8


def stored_as_int8(qparams: QParams, name: str) -> QParams:
    """``qparams`` recorded on tensor ``name``, checked to be of a type int8 storage holds."""
    if not qparams.int_type.fits_int8():
        raise UnsupportedModelError(
            f"tensor '{name}' is quantized to {qparams.int_type}, which int8 storage cannot hold",
            "quantize activations to at most 8 bits (unsigned 8-bit ones shifted to int8 by -128)",
        )
    return qparams


def constant_input(node: ir.Node, index: int, what: str) -> np.ndarray:
    """The constant input ``index`` of ``node``; an error naming ``what`` if it is computed."""
    value = node.inputs[index] if index < len(node.inputs) else None
    array = const_array(value)
    if array is None:
        raise UnsupportedModelError(
            f"{node.op_type} node '{node.name}' has a non-constant {what}",
            f"edgec needs the {what} of {node.op_type} to be a constant (initializer)",
        )
    return array
