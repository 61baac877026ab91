"""Reading ONNX files: validation, opset conversion and input-shape overrides.

Contract of :func:`import_validated` (for a proto from :func:`read_proto`) and
:func:`import_proto`: an edgec integer graph comes back as written; any other model as an
``onnx_ir.Model``
that passed :mod:`edgec.frontend.validate` (structure, dtypes, initializers, strict shape
inference and per-operator shape rules with the final input shapes), whose default-domain
opset is at least :data:`CANONICAL_MIN_OPSET` and whose graph inputs all have static
shapes; otherwise raise :class:`~edgec.errors.ModelLoadError` or
:class:`~edgec.errors.UnsupportedModelError` with a one-line reason and fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from edgec import ops
from edgec.errors import ModelLoadError, UnsupportedModelError, first_line
from edgec.frontend.validate import CANONICAL_MIN_OPSET, check_opset, validate_proto, validate_shapes


def read_proto(path: str | Path) -> onnx.ModelProto:
    """Parse an ONNX file and check it with :func:`~edgec.frontend.validate.validate_proto`."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file '{path}' does not exist", "check the path")
    if not path.is_file():
        raise ModelLoadError(f"'{path}' is not a file", "pass the path of a .onnx file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file '{path}' is empty", "re-export or re-download the model")
    try:
        proto = onnx.load(str(path))
    except (DecodeError, RuntimeError, ValueError, OSError, onnx.checker.ValidationError) as error:
        raise ModelLoadError(
            f"'{path}' is not an ONNX model ({first_line(error)})",
            "pass a complete .onnx file; a truncated or corrupted download fails this way",
        ) from None
    if not proto.graph.node or not proto.opset_import:
        raise ModelLoadError(
            f"'{path}' holds no ONNX graph (no nodes or no opset)",
            "pass a complete .onnx file; a truncated or corrupted download fails this way",
        )
    validate_proto(proto, str(path))
    return proto


def upgrade_opset(proto: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """Convert models older than :data:`CANONICAL_MIN_OPSET` with onnx's version converter
    (an error for opsets edgec cannot read, see :func:`~edgec.frontend.validate.check_opset`)."""
    version = check_opset(proto, source)
    if version >= CANONICAL_MIN_OPSET:
        return proto
    try:
        return onnx.version_converter.convert_version(proto, CANONICAL_MIN_OPSET)
    except Exception as error:  # the converter raises bare RuntimeErrors from C++
        raise UnsupportedModelError(
            f"'{source}' could not be converted from opset {version} to {CANONICAL_MIN_OPSET}: {first_line(error)}",
            f"re-export with opset_version>={CANONICAL_MIN_OPSET}",
        ) from None


def _dim_text(dim: int | ir.SymbolicDim) -> str:
    """A dimension as a user reads it: ``3``, ``N``, or ``?`` when it has no name."""
    return str(dim) if isinstance(dim, int) or dim.value is not None else "?"


def apply_input_shapes(model: ir.Model, input_shapes: Mapping[str, Sequence[int]] | None, source: str) -> None:
    """Fix the graph inputs' shapes; require every input shape to be static afterwards.

    ``input_shapes`` maps input names to shapes; the key ``""`` applies to a single-input
    model. Unknown names and rank mismatches are errors.
    """
    inputs = [v for v in model.graph.inputs if not v.is_initializer()]
    shapes = dict(input_shapes or {})
    if "" in shapes:
        if len(inputs) != 1:
            raise UnsupportedModelError(
                f"'{source}' has {len(inputs)} inputs; an --input-shape without a name is ambiguous",
                f"name the input: --input-shape NAME=1,3,224,224 with NAME one of {[v.name for v in inputs]}",
            )
        shapes[inputs[0].name] = shapes.pop("")
    names = {v.name for v in inputs}
    for name in shapes:
        if name not in names:
            raise UnsupportedModelError(f"--input-shape names '{name}', which is not an input of '{source}'",
                                        f"the inputs are {sorted(names)}")
    for value in inputs:
        if value.name in shapes:
            shape = [int(d) for d in shapes[value.name]]
            if value.shape is not None and value.shape.rank() != len(shape):
                raise UnsupportedModelError(
                    f"--input-shape gives input '{value.name}' rank {len(shape)}, the model has rank {value.shape.rank()}",
                    f"give {value.shape.rank()} dimensions",
                )
            value.shape = ir.Shape(shape)
        if value.shape is None or not value.shape.is_static():
            dims = "unknown" if value.shape is None else f"[{', '.join(_dim_text(d) for d in value.shape)}]"
            example = ",".join(str(d) if isinstance(d, int) else "1" for d in (value.shape or [1]))
            raise UnsupportedModelError(
                f"input '{value.name}' of '{source}' has a dynamic shape {dims}",
                f"give a static shape, e.g. --input-shape {value.name}={example}",
            )


def _forget_derived_shapes(model: ir.Model) -> None:
    """Drop the shapes a file declares for the values its nodes compute (``value_info``, the
    outputs'): they held for the declared input shapes; for inputs of other shapes (another
    batch size) they are inferred anew."""
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        for value in node.outputs:
            value.shape = None


def import_validated(proto: onnx.ModelProto, source: str,
                     input_shapes: Mapping[str, Sequence[int]] | None = None) -> ir.Model:
    """A proto that passed :func:`~edgec.frontend.validate.validate_proto` (as :func:`read_proto`
    returns it) as the module contract says: upgraded, input shapes set, shapes checked."""
    if any(o.domain == ops.DOMAIN for o in proto.opset_import):
        return ir.serde.deserialize_model(proto)
    model = ir.serde.deserialize_model(upgrade_opset(proto, source))
    inputs = [v for v in model.graph.inputs if not v.is_initializer()]
    declared = {v.name: list(v.shape) for v in inputs if v.shape is not None}
    apply_input_shapes(model, input_shapes, source)
    named = set(input_shapes or {})
    given = {v.name: list(v.shape) for v in inputs if v.name in named or "" in named}
    if any(shape != declared.get(name) for name, shape in given.items()):
        _forget_derived_shapes(model)
    validate_shapes(ir.to_proto(model), source, given, declared)
    return model


def import_proto(proto: onnx.ModelProto, source: str,
                 input_shapes: Mapping[str, Sequence[int]] | None = None) -> ir.Model:
    """An in-memory ``onnx.ModelProto``, validated and imported as a file is (``source`` names it)."""
    validate_proto(proto, source)
    return import_validated(proto, source, input_shapes)
