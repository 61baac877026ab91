"""DeltaEncodePass: store the weights of an integer graph as references plus narrow deltas.

The codec and its exact meaning are :mod:`edgec.delta`. For every weight initializer read by a
``Conv``, ``DepthwiseConv`` or ``FullyConnected`` node, anywhere in the graph or its subgraphs:

1. Weights of at least ``bits + 1`` bits: the tensor is replaced by its reconstruction under
   the scheme (:func:`edgec.delta.reconstruct`, saturating), keeping its name, scales and
   integer type, and the scheme is recorded on it (:data:`edgec.delta.DELTA_KEY`). When the
   scheme does not saturate, a weight the deltas cannot reach is an :class:`EdgecError`
   naming the layer instead.
2. Weights already as narrow as the deltas (or narrower) are left as they are and reported
   as kept.

The reference executor and every backend run the reconstructed weights, so "bit-exact" keeps
its meaning; a backend stores them in the encoded form (:func:`edgec.delta.encode_exact`).
The pass's :attr:`report` (also ``metadata_props['edgec.delta_report']`` as JSON) gives per
layer the weights, bits stored against int8, and the reconstruction error introduced: zero
everywhere when the model was trained for the scheme (``edgec train --delta``).

Invariant: afterwards every encoded weight is exactly representable in its recorded scheme.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.delta import (
    ENCODABLE_OPS,
    DeltaScheme,
    encode_exact,
    get_scheme,
    reconstruct,
    rows_to_weights,
    set_scheme,
    weight_rows,
)
from edgec.errors import EdgecError
from edgec.passes.qparams import int_type_of
from edgec.reference.conv import conv_groups

REPORT_KEY = "edgec.delta_report"


@dataclasses.dataclass(frozen=True)
class LayerDeltaReport:
    """One weight tensor's encoding: ``stored_bits`` against ``int8_bits`` (8 per weight), and
    the error introduced: how many weights changed, the largest and the mean absolute change
    in integer steps. ``encoded`` is False for weights left as they were (rule 2)."""

    layer: str
    op_type: str
    weights: int
    int8_bits: int
    stored_bits: int
    changed: int
    max_error: int
    mean_abs_error: float
    encoded: bool

    @property
    def ratio(self) -> float:
        return self.stored_bits / self.int8_bits


def total(report: list[LayerDeltaReport]) -> dict:
    """Totals over the layers of a report: weights, bits, ratio, weights changed, largest error."""
    weights = sum(layer.weights for layer in report)
    int8_bits = sum(layer.int8_bits for layer in report)
    stored = sum(layer.stored_bits for layer in report)
    return {"weights": weights, "int8_bits": int8_bits, "stored_bits": stored,
            "ratio": stored / int8_bits if int8_bits else 1.0,
            "changed": sum(layer.changed for layer in report),
            "max_error": max((layer.max_error for layer in report), default=0)}


def read_report(model: ir.Model) -> list[LayerDeltaReport]:
    """The report a :class:`DeltaEncodePass` left on ``model`` (empty when none ran)."""
    text = model.metadata_props.get(REPORT_KEY)
    return [LayerDeltaReport(**layer) for layer in json.loads(text)] if text else []


def _weight_nodes(model: ir.Model):
    seen: set[int] = set()
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.domain != ops.DOMAIN or node.op_type not in ENCODABLE_OPS:
            continue
        weight = node.inputs[1]
        if weight is None or weight.const_value is None or id(weight) in seen or _grouped(node):
            continue
        seen.add(id(weight))
        yield node, weight


def _grouped(node: ir.Node) -> bool:
    """A grouped Conv: the Cortex-M delta kernels take ungrouped ones only, so it stays plain."""
    return node.op_type == "Conv" and conv_groups(int(node.inputs[0].shape[3]), node.inputs[1].shape) > 1


class DeltaEncodePass(ir.passes.InPlacePass):
    """See the module docstring."""

    def __init__(self, scheme: DeltaScheme) -> None:
        super().__init__()
        self.scheme = scheme
        self.report: list[LayerDeltaReport] = []

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self.report = [self._encode(node, weight) for node, weight in _weight_nodes(model)]
        model.metadata_props[REPORT_KEY] = json.dumps([dataclasses.asdict(layer) for layer in self.report])
        return ir.passes.PassResult(model, any(layer.encoded for layer in self.report))

    def _encode(self, node: ir.Node, weight: ir.Value) -> LayerDeltaReport:
        int_type = int_type_of(weight)
        array = weight.const_value.numpy()
        rows = weight_rows(node.op_type, array).astype(np.int64)
        count, length = rows.shape
        int8_bits = rows.size * 8
        if int_type.bits <= self.scheme.bits:
            return LayerDeltaReport(node.name, node.op_type, rows.size, int8_bits, rows.size * int_type.bits,
                                    0, 0, 0.0, encoded=False)
        rebuilt = reconstruct(rows, self.scheme, int_type)
        error = np.abs(rebuilt - rows)
        changed = int(np.count_nonzero(error))
        if changed and not self.scheme.saturate:
            raise EdgecError(f"layer '{node.name}': {changed} of {rows.size} weights do not fit "
                             f"{self.scheme.describe()} (largest error {int(error.max())})",
                             "allow saturation, widen the deltas, or train the model with edgec train --delta")
        new_array = rows_to_weights(node.op_type, rebuilt, array.shape).astype(array.dtype)
        weight.const_value = ir.tensor(new_array, name=weight.name)
        set_scheme(weight, self.scheme)
        return LayerDeltaReport(node.name, node.op_type, rows.size, int8_bits,
                                self.scheme.stored_bits(count, length, int_type.bits), changed,
                                int(error.max()), float(error.mean()), encoded=True)

    def ensures(self, model: ir.Model) -> None:
        for node, weight in _weight_nodes(model):
            scheme = get_scheme(weight)
            if scheme is not None:
                encode_exact(weight_rows(node.op_type, weight.const_value.numpy()), scheme, int_type_of(weight))
