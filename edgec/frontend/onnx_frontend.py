"""Reading ONNX files: validation, opset conversion and input-shape overrides.

Contract of :func:`read_onnx_model`: returns an ``onnx_ir.Model`` whose default-domain
opset is at least :data:`CANONICAL_MIN_OPSET` and whose graph inputs all have static
shapes; otherwise raises :class:`~edgec.errors.ModelLoadError` or
:class:`~edgec.errors.UnsupportedModelError` with a one-line reason and fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from edgec.errors import ModelLoadError, UnsupportedModelError

MIN_OPSET = 11
#: Models below this opset are converted up (onnxruntime's per-channel quantizer and
#: edgec's lowering both assume opset-13 operator forms).
CANONICAL_MIN_OPSET = 13


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def read_proto(path: str | Path) -> onnx.ModelProto:
    """Parse and check an ONNX file."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file '{path}' does not exist", "check the path")
    if not path.is_file():
        raise ModelLoadError(f"'{path}' is not a file", "pass the path of a .onnx file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file '{path}' is empty", "re-export or re-download the model")
    try:
        proto = onnx.load(str(path))
    except (DecodeError, RuntimeError, ValueError, OSError) as error:
        raise ModelLoadError(
            f"'{path}' is not an ONNX model ({_first_line(error)})",
            "pass a complete .onnx file; a truncated or corrupted download fails this way",
        ) from None
    if not proto.graph.node or not proto.opset_import:
        raise ModelLoadError(
            f"'{path}' holds no ONNX graph (no nodes or no opset)",
            "pass a complete .onnx file; a truncated or corrupted download fails this way",
        )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise ModelLoadError(
            f"'{path}' is not a valid ONNX model: {_first_line(error)}",
            "re-export the model; a truncated file fails this way",
        ) from None
    return proto


def default_opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def upgrade_opset(proto: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """Convert models older than :data:`CANONICAL_MIN_OPSET` with onnx's version converter."""
    version = default_opset(proto)
    if version < MIN_OPSET:
        raise UnsupportedModelError(
            f"'{source}' uses ONNX opset {version}; edgec needs opset {MIN_OPSET} or newer",
            f"re-export with opset_version>={CANONICAL_MIN_OPSET}",
        )
    if version >= CANONICAL_MIN_OPSET:
        return proto
    try:
        return onnx.version_converter.convert_version(proto, CANONICAL_MIN_OPSET)
    except Exception as error:  # the converter raises bare RuntimeErrors from C++
        raise UnsupportedModelError(
            f"'{source}' could not be converted from opset {version} to {CANONICAL_MIN_OPSET}: {_first_line(error)}",
            f"re-export with opset_version>={CANONICAL_MIN_OPSET}",
        ) from None


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
            dims = "unknown" if value.shape is None else list(value.shape)
            example = ",".join(str(d) if isinstance(d, int) else "1" for d in (value.shape or [1]))
            raise UnsupportedModelError(
                f"input '{value.name}' of '{source}' has a dynamic shape {dims}",
                f"give a static shape, e.g. --input-shape {value.name}={example}",
            )


def read_onnx_model(path: str | Path, input_shapes: Mapping[str, Sequence[int]] | None = None) -> ir.Model:
    """Read, check and upgrade an ONNX file (see the module contract)."""
    proto = upgrade_opset(read_proto(path), str(path))
    model = ir.serde.deserialize_model(proto)
    apply_input_shapes(model, input_shapes, str(path))
    return model
