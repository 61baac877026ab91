"""QuantizePass: lower a canonical float graph to an edgec integer graph.

Input: a canonical float model (standard ONNX, static shapes; see :mod:`edgec.pipeline`)
and, for every float tensor without recorded QDQ parameters, a calibrated range
``(min, max)``. Output: a new model whose nodes are all edgec operators (:mod:`edgec.ops`),
following the TFLite/CMSIS-NN int8 specification (:mod:`passes.qparams`) generalized to
``weight_bits``-bit weights (symmetric per channel, narrow: ``weight_type(bits)``) and
``activation_bits``-bit activations (asymmetric, signed), both 8 by default. With 16-bit
activations the graph is TFLite's 16x8 scheme: int16 activations, symmetric (zero point 0),
in INT16 storage, int64 biases, Add/Sub's left shift 15, and only the operators with such a
form (:data:`passes.integer_builder.INT16_OPERATORS`; any other is an error naming it).

1. Each float graph input becomes ``Quantize`` (float -> int8 storage, saturated to the
   input's type, rounded as the input's :data:`edgec.ops.QUANTIZE_ROUNDING_KEY` says,
   half away from zero by default); each float graph output is produced by
   ``Dequantize``. Input and output names and shapes are the float model's.
2. Every other float node is lowered by the function for its op type in
   :data:`passes.lower_ops.LOWERINGS`. Weights become integers per output channel, biases
   int32, multipliers and shifts are precomputed into attributes.
3. 4-D (and 3-D) activations produced by convolutions and pools are kept channels-last
   (NHWC); the builder inserts ``Transpose`` (or a zero-copy ``Reshape`` when the data order
   allows) wherever an operator needs the other layout.
4. Quantization of a tensor: recorded QDQ/QONNX parameters (with their type) if present;
   else its calibrated range in the activation type — except that the output of a
   Conv/Gemm/MatMul/Add/Sub/Mul read only by a Relu/Clip takes the activation's range, so
   the activation becomes a ``Clamp`` that
   :class:`passes.fuse_activations.FuseActivationsPass` folds into the producer.
   Scale-preserving operators (pools, reshapes, pad, ...) keep their input's parameters
   and type; Softmax outputs int8.
5. Control flow: an ONNX ``If`` stays an ``If`` whose branches are lowered into integer
   subgraphs, and the router deciding it becomes ``edgec::Router``
   (:mod:`passes.lower_control`).

Invariant: every int8 value of the result carries its scale, zero point and integer type
in ``metadata_props``, weights and biases their type; the widths satisfy
:func:`edgec.widths.check_widths`; the graph contains no standard ONNX operator but ``If``. With the
default 8 bits the graph is the int8 graph of the TFLite specification.
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx_ir as ir

from edgec import ops
from edgec.control_flow import all_nodes, is_branching
from edgec.errors import UnsupportedModelError
from edgec.inttype import ACTIVATION_BITS, INT8, VALUE_BITS, IntType, weight_type
from edgec.passes.integer_builder import IntegerGraphBuilder
from edgec.passes.lower_control import absorbed_nodes, find_routers
from edgec.passes.lower_ops import LOWERINGS
from edgec.passes.qparams import QParams, get_qparams
from edgec.support import supported_operators, unsupported_nodes
from edgec.widths import first_width_problem


class QuantizePass(ir.passes.FunctionalPass):
    """See the module docstring. ``ranges`` maps float tensor names to calibrated ``(min, max)``;
    ``weight_bits`` (2 to 8) and ``activation_bits`` (2 to 8, or 16: the 16x8 scheme) are the
    widths of post-training quantization."""

    def __init__(self, ranges: Mapping[str, tuple[float, float]], rounding: str = "double",
                 weight_bits: int = 8, activation_bits: int = 8) -> None:
        super().__init__()
        self.ranges = ranges
        self.rounding = rounding
        if activation_bits not in ACTIVATION_BITS:
            raise ValueError(f"activations have {VALUE_BITS.start} to {VALUE_BITS.stop - 1} or 16 bits, "
                             f"not {activation_bits}")
        self.weight_type = weight_type(weight_bits)
        self.activation_type = IntType(activation_bits, signed=True)

    def requires(self, model: ir.Model) -> None:
        unsupported = unsupported_nodes(model.graph)
        if unsupported:
            node = unsupported[0]
            others = len({(n.domain, n.op_type) for n in unsupported}) - 1
            more = f" (and {others} other unsupported operator types)" if others > 0 else ""
            raise UnsupportedModelError(
                f"operator {node.domain + '::' if node.domain else ''}{node.op_type} (node '{node.name}') "
                f"is not supported{more}",
                f"supported operators: {', '.join(supported_operators())}",
            )

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        routers = find_routers(graph)
        builder = IntegerGraphBuilder(model, self.ranges, self.weight_type, self.activation_type, lowerings=LOWERINGS,
                                      routers=routers, absorbed=absorbed_nodes(routers))
        inputs = []
        for value in graph.inputs:
            if value.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE):
                raise UnsupportedModelError(
                    f"model input '{value.name}' is {value.dtype}", "edgec takes models with float inputs"
                )
            shape = builder.shape_of(value)
            new_input = ir.Value(name=value.name, shape=ir.Shape(shape), type=ir.TensorType(ir.DataType.FLOAT))
            inputs.append(new_input)
            q = builder.desired_qparams(value)
            quantized = builder.emit("Quantize", [new_input], quantize_attributes(value, q),
                                     shape=shape, name=value.name, qparams=q)
            builder.bind(value, quantized, channels_last=False)
        builder.lower_graph(graph)
        outputs = []
        for value in graph.outputs:
            quantized = builder.value_in_layout(value, channels_last=False)
            q = builder.qparams_of(quantized)
            node = ir.node("Dequantize", [quantized], {"scale": q.scale, "zero_point": q.zero_point},
                           domain=ops.DOMAIN, name=f"{value.name}_dequantize")
            node.outputs[0].name = value.name
            node.outputs[0].shape = ir.Shape(builder.shape_of(value))
            node.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
            builder.nodes.append(node)
            outputs.append(node.outputs[0])
        new_graph = ir.Graph(inputs, outputs, nodes=builder.nodes, initializers=builder.initializers,
                             opset_imports={"": 13, ops.DOMAIN: ops.OPSET_VERSION}, name=graph.name or "edgec")
        new_model = ir.Model(new_graph, ir_version=10, producer_name="edgec")
        new_model.metadata_props[ops.ROUNDING_KEY] = self.rounding
        return ir.passes.PassResult(new_model, modified=True)

    def ensures(self, model: ir.Model) -> None:
        for node in all_nodes(model.graph):
            if node.domain != ops.DOMAIN and not is_branching(node):
                raise ir.passes.PostconditionError(f"node {node.name} is {node.op_type}, not an edgec operator")
            for out in node.outputs:
                if out.dtype in (ir.DataType.INT8, ir.DataType.INT16) and get_qparams(out) is None:
                    raise ir.passes.PostconditionError(f"value {out.name} lacks quantization parameters")
        problem = first_width_problem(model)
        if problem is not None:
            raise ir.passes.PostconditionError(problem)


def quantize_attributes(float_input: ir.Value, q: QParams) -> dict:
    """Attributes of the ``Quantize`` of ``float_input`` to ``q``: scale and zero point, and
    (only where they differ from the defaults) the type's bounds and the rounding the input
    records."""
    attrs = {"scale": q.scale, "zero_point": q.zero_point}
    if q.int_type != INT8:
        attrs.update(min=q.int_type.min, max=q.int_type.max)
    rounding = float_input.metadata_props.get(ops.QUANTIZE_ROUNDING_KEY, "half_away")
    if rounding not in ops.QUANTIZE_ROUNDINGS:
        raise UnsupportedModelError(f"model input '{float_input.name}' asks for Quantize rounding '{rounding}'",
                                    f"use one of {', '.join(ops.QUANTIZE_ROUNDINGS)}")
    if rounding != "half_away":
        attrs["rounding"] = rounding
    return attrs
