"""Lowering of ONNX's element-wise activations to edgec ``Table`` nodes.

``Sigmoid``, ``Tanh``, ``HardSwish`` and ``LeakyRelu`` become one ``Table`` whose 256 entries
are TFLM's int8 arithmetic for LOGISTIC, TANH, HARD_SWISH and LEAKY_RELU
(:mod:`passes.activation_tables`), so an ONNX model and its TFLite conversion compute the
same integers. ``Sigmoid`` outputs scale 1/256 and zero point -128, ``Tanh`` 1/128 and 0
(TFLite's fixed output quantizations; a QDQ model's other recorded parameters are reached
by a ``Requantize`` after the table); ``HardSwish`` and ``LeakyRelu`` take the calibrated (or
recorded) output parameters. Input and output are 8-bit: the tables are TFLM's int8 ones.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.errors import UnsupportedModelError
from edgec.inttype import INT8
from edgec.passes.activation_tables import (
    LOGISTIC_OUTPUT,
    TANH_OUTPUT,
    hard_swish_table,
    leaky_relu_table,
    logistic_table,
    tanh_table,
)
from edgec.passes.graph_utils import attribute
from edgec.passes.integer_builder import IntegerGraphBuilder
from edgec.passes.qparams import QParams


def _check_int8(node: ir.Node, which: str, q: QParams) -> None:
    if q.int_type != INT8:
        raise UnsupportedModelError(
            f"{node.op_type} node '{node.name}' has a {q.int_type} {which}; its table is TFLM's int8 arithmetic",
            "quantize the activations around it to 8 bits")


def _lower_table(b: IntegerGraphBuilder, node: ir.Node, function: str, entries, fixed_output: QParams | None) -> None:
    """Emit the ``Table`` of ``node``: ``entries(q_in, q_out)`` gives its 256 values."""
    out_f = node.outputs[0]
    x, channels_last = b.lookup(node.inputs[0])
    q_in = b.qparams_of(x)
    q_out = fixed_output if fixed_output is not None else b.desired_qparams(out_f)
    _check_int8(node, "input", q_in)
    _check_int8(node, "output", q_out)
    try:
        values = entries(q_in, q_out)
    except UnsupportedModelError as error:
        raise UnsupportedModelError(f"{node.op_type} node '{node.name}': {error.problem}", error.hint) from None
    table = b.constant(f"{out_f.name}_{function}_table", values)
    y = b.emit("Table", [x, table], {"function": function}, shape=x.shape.numpy(), name=out_f.name, qparams=q_out)
    if fixed_output is not None:
        b.finish_preserving(out_f, y, channels_last)
    else:
        b.bind(out_f, y, channels_last)


def lower_sigmoid(b: IntegerGraphBuilder, node: ir.Node) -> None:
    _lower_table(b, node, "logistic", lambda q_in, q_out: logistic_table(q_in), LOGISTIC_OUTPUT)


def lower_tanh(b: IntegerGraphBuilder, node: ir.Node) -> None:
    _lower_table(b, node, "tanh", lambda q_in, q_out: tanh_table(q_in), TANH_OUTPUT)


def lower_hard_swish(b: IntegerGraphBuilder, node: ir.Node) -> None:
    _lower_table(b, node, "hard_swish", hard_swish_table, None)


def lower_leaky_relu(b: IntegerGraphBuilder, node: ir.Node) -> None:
    alpha = float(np.float32(attribute(node, "alpha", 0.01)))
    _lower_table(b, node, "leaky_relu", lambda q_in, q_out: leaky_relu_table(q_in, q_out, alpha), None)


TABLE_LOWERINGS = {
    "Sigmoid": lower_sigmoid,
    "Tanh": lower_tanh,
    "HardSwish": lower_hard_swish,
    "LeakyRelu": lower_leaky_relu,
}
