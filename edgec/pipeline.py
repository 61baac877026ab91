"""The pass pipelines, as explicit lists read top to bottom, and the runner that applies them.

* :func:`canonical_passes`: raw imported model -> canonical float model (standard ONNX,
  static shapes, BatchNorm folded, no Identity/Dropout, one Reshape spelling, QDQ scales
  absorbed). onnxruntime can run it: it is the float oracle and what is calibrated.
* :func:`integer_passes`: canonical float model + calibration ranges -> edgec integer graph.

:func:`run_passes` applies a list, optionally saving the model after every step to a dump
directory (``NN_PassName.onnx``). A pass that fails with anything but a user-facing
:class:`~edgec.errors.EdgecError` is reported as a :class:`PassFailure` naming the pass and
the passes before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx_ir as ir
from onnx_ir.passes import common

from edgec.errors import EdgecError
from edgec.passes.absorb_qdq import AbsorbQDQPass
from edgec.passes.absorb_qonnx import AbsorbQONNXPass
from edgec.passes.check_static_shapes import CheckStaticShapesPass
from edgec.passes.eliminate_noops import EliminateNoOpsPass
from edgec.passes.fold_batchnorm import FoldBatchNormPass
from edgec.passes.fold_constants import FoldConstantsPass
from edgec.passes.fuse_activations import FuseActivationsPass
from edgec.passes.infer_shapes import InferShapesPass
from edgec.passes.normalize_reshapes import NormalizeReshapesPass
from edgec.passes.quantize import QuantizePass


class PassFailure(RuntimeError):
    """An unexpected failure inside a pass: a bug in edgec. (A malformed model is an error on
    import, :mod:`edgec.frontend.validate`, before any pass runs.)"""


def canonical_passes() -> list[ir.passes.PassBase]:
    """Raw float (or QDQ) model -> canonical float model."""
    return [
        AbsorbQONNXPass(),
        AbsorbQDQPass(),
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        common.RemoveInitializersFromInputsPass(),
        FoldConstantsPass(),
        InferShapesPass(),
        ir.passes.PassManager(
            [EliminateNoOpsPass(), FoldBatchNormPass(), NormalizeReshapesPass(), FoldConstantsPass()],
            steps=8, early_stop=True,
        ),
        common.RemoveUnusedNodesPass(),
        common.TopologicalSortPass(),
        common.NameFixPass(),
        InferShapesPass(),
        CheckStaticShapesPass(),
    ]


def integer_passes(ranges: Mapping[str, tuple[float, float]], rounding: str = "double", weight_bits: int = 8,
                   activation_bits: int = 8) -> list[ir.passes.PassBase]:
    """Canonical float model -> edgec integer graph, post-training quantized to ``weight_bits``-bit
    weights and ``activation_bits``-bit activations (2 to 8) where the model records no quantization."""
    return [
        QuantizePass(ranges, rounding, weight_bits=weight_bits, activation_bits=activation_bits),
        FuseActivationsPass(),
        common.RemoveUnusedNodesPass(),
        common.TopologicalSortPass(),
    ]


def _user_error(error: BaseException) -> EdgecError | None:
    while error is not None:
        if isinstance(error, EdgecError):
            return error
        error = error.__cause__ or error.__context__
    return None


def run_passes(model: ir.Model, passes: Sequence[ir.passes.PassBase], dump_dir: str | Path | None = None,
               first_index: int = 0) -> ir.Model:
    """Apply ``passes`` in order; see the module docstring for dumps and failures."""
    done: list[str] = []
    for index, pass_ in enumerate(passes, start=first_index):
        name = type(pass_).__name__
        try:
            model = pass_(model).model
        except Exception as error:
            user_error = _user_error(error)
            if user_error is not None:
                raise user_error from None
            raise PassFailure(f"pass {name} failed (after {', '.join(done) or 'no other pass'}): {error}") from error
        done.append(name)
        if dump_dir is not None:
            Path(dump_dir).mkdir(parents=True, exist_ok=True)
            ir.save(model, Path(dump_dir) / f"{index:02d}_{name}.onnx")
    return model
