"""FoldConstantsPass: evaluate every node whose inputs are all constants.

A thin pass around onnxscript's maintained constant folder (``onnxscript.optimizer.
fold_constants``, which also infers shapes as it goes), with size limits raised so that
weight-sized tensors (transposed or reshaped weights from exporters) fold too.

1. A node with only constant inputs is replaced by an initializer holding its result.
2. Shape computations (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``) over static
   shapes fold to constants.

Invariant: float semantics unchanged. A node the folder fails to evaluate stays as it is;
the folder's log of that failure is kept off the terminal (the model was validated on
import, see :mod:`edgec.frontend.validate`; a later pass reports what is still wrong).
"""

from __future__ import annotations

import contextlib
import logging

import onnx_ir as ir
import onnxscript.optimizer

#: Up to 64 Mi elements: larger than any model edgec can place on a microcontroller.
SIZE_LIMIT = 1 << 26


class FoldConstantsPass(ir.passes.InPlacePass):
    """See the module docstring."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        with _quiet(logging.getLogger("onnxscript.optimizer")):
            result = onnxscript.optimizer.fold_constants(
                model, onnx_shape_inference=True, input_size_limit=SIZE_LIMIT, output_size_limit=SIZE_LIMIT
            )
        return ir.passes.PassResult(model, bool(result.modified))


@contextlib.contextmanager
def _quiet(logger: logging.Logger):
    """Only errors from ``logger`` (and its children) while the block runs."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
