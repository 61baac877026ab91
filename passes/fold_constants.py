"""FoldConstantsPass: evaluate every node whose inputs are all constants.

A thin pass around onnxscript's maintained constant folder (``onnxscript.optimizer.
fold_constants``, which also infers shapes as it goes), with size limits raised so that
weight-sized tensors (transposed or reshaped weights from exporters) fold too.

1. A node with only constant inputs is replaced by an initializer holding its result.
2. Shape computations (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``) over static
   shapes fold to constants.

Invariant: float semantics unchanged.
"""

from __future__ import annotations

import onnx_ir as ir
import onnxscript.optimizer

#: Up to 64 Mi elements: larger than any model edgec can place on a microcontroller.
SIZE_LIMIT = 1 << 26


class FoldConstantsPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        result = onnxscript.optimizer.fold_constants(
            model, onnx_shape_inference=True, input_size_limit=SIZE_LIMIT, output_size_limit=SIZE_LIMIT
        )
        return ir.passes.PassResult(model, bool(result.modified))
