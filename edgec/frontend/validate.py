"""Up-front validation of an ONNX model, before any pass or onnxruntime reads it.

Two entry points, each raising :class:`~edgec.errors.ModelLoadError` (a malformed model) or
:class:`~edgec.errors.UnsupportedModelError` (valid, but not something edgec takes) with a
one-line problem naming the node or tensor, and a fix:

* :func:`validate_proto` checks the model as parsed: every text field is valid UTF-8, the
  default-domain opset is one edgec knows (:data:`MIN_OPSET` to onnx's newest), every
  initializer (and ``Constant`` tensor) has a supported dtype, non-negative dims, exactly
  as much data as its dims need and finite float values, float attributes are finite,
  graph inputs are float32 (or float16) tensors (int8 too in an edgec integer graph), and
  ``onnx.checker`` (full check) passes.
* :func:`validate_shapes` runs strict shape inference (type checks, data propagation) on the
  model with its final input shapes, then :mod:`edgec.frontend.shape_rules`' per-operator
  rules that onnx does not check (channels, windows, bias shapes, element counts). Where
  the user's ``--input-shape`` is the cause, the error says so and gives the shape to use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import TensorProto

from edgec import ops
from edgec.errors import ModelLoadError, UnsupportedModelError, first_line
from edgec.frontend.shape_rules import RULES, ShapeProblem, node_label, too_large

MIN_OPSET = 11
#: Models below this opset are converted up (onnxruntime's per-channel quantizer and
#: edgec's lowering both assume opset-13 operator forms).
CANONICAL_MIN_OPSET = 13
#: The newest default-domain opset the installed onnx knows.
MAX_OPSET = onnx.defs.onnx_opset_version()
#: ONNX IR version 3 introduced opset imports; onnxruntime reads nothing older.
MIN_IR_VERSION = 3
INPUT_DTYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16})
#: Initializer dtypes edgec reads (all whole bytes per element).
INITIALIZER_DTYPES = frozenset({
    TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16, TensorProto.INT8,
    TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32, TensorProto.UINT32,
    TensorProto.INT64, TensorProto.UINT64, TensorProto.BOOL,
})
_FLOAT_DTYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16})
_CORRUPT_FIX = "pass an uncorrupted .onnx file (re-download or re-export it)"
_CHECKER_FIX = "fix or re-export the model (onnx.checker.check_model(model, full_check=True) shows the same)"
_REEXPORT_FIX = "fix or re-export the model"


def _dtype_name(dtype: int) -> str:
    return TensorProto.DataType.Name(dtype) if dtype in TensorProto.DataType.values() else f"unknown dtype {dtype}"


# -- validate_proto ------------------------------------------------------------------------
def _undecodable_text(message: Message, where: str) -> tuple[str, bytes] | None:
    """The first string field of ``message`` (recursively) that protobuf left as bytes."""
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        if field.type == field.TYPE_MESSAGE:
            for index, item in enumerate(items):
                label = f"{where}.{field.name}[{index}]" if field.is_repeated else f"{where}.{field.name}"
                found = _undecodable_text(item, label)
                if found is not None:
                    return found
        elif field.type == field.TYPE_STRING:
            for item in items:
                if isinstance(item, bytes):
                    return f"{where}.{field.name}", item
    return None


def check_opset(proto: onnx.ModelProto, source: str) -> int:
    """The default-domain opset version; an error unless edgec can read it."""
    version = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if version < MIN_OPSET:
        raise UnsupportedModelError(f"'{source}' uses ONNX opset {version}; edgec needs opset {MIN_OPSET} or newer",
                                    f"re-export with opset_version>={CANONICAL_MIN_OPSET}")
    if version > MAX_OPSET:
        raise UnsupportedModelError(
            f"'{source}' uses ONNX opset {version}, newer than the newest onnx release edgec runs with ({MAX_OPSET})",
            f"re-export with an opset_version from {MIN_OPSET} to {MAX_OPSET}")
    return version


def _constant_tensors(graph: onnx.GraphProto):
    """(label, tensor) for every initializer and every ``Constant`` node's tensor."""
    for tensor in graph.initializer:
        yield f"initializer '{tensor.name}'", tensor
    for index, node in enumerate(graph.node):
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield f"tensor attribute '{attr.name}' of {node_label(node, index)}", attr.t


def _stored_elements(tensor: TensorProto) -> int:
    """How many elements ``tensor``'s data holds (raw bytes or the typed field)."""
    if tensor.HasField("raw_data"):
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        return len(tensor.raw_data) // itemsize if len(tensor.raw_data) % itemsize == 0 else -1
    return len(getattr(tensor, onnx.helper.tensor_dtype_to_field(tensor.data_type)))


def _check_tensor(label: str, tensor: TensorProto, source: str) -> None:
    if tensor.data_type not in INITIALIZER_DTYPES:
        raise UnsupportedModelError(f"'{source}': {label} is {_dtype_name(tensor.data_type)}",
                                    "edgec reads float, integer and bool constants; re-export the model")
    if any(d < 0 for d in tensor.dims):
        raise ModelLoadError(f"'{source}': {label} has negative dims {list(tensor.dims)}", _CORRUPT_FIX)
    if tensor.data_location == TensorProto.EXTERNAL:
        raise ModelLoadError(f"'{source}': the data of {label} is stored outside the file and was not found",
                             "keep the external data file beside the model, or save the model with its data inside")
    expected, stored = math.prod(tensor.dims), _stored_elements(tensor)
    if stored != expected:
        raise ModelLoadError(f"'{source}': {label} has dims {list(tensor.dims)} ({expected} elements) but its data "
                             f"holds {'a partial element' if stored < 0 else stored}", _CORRUPT_FIX)
    if tensor.data_type in _FLOAT_DTYPES:
        bad = int(np.count_nonzero(~np.isfinite(onnx.numpy_helper.to_array(tensor).astype(np.float64))))
        if bad:
            raise ModelLoadError(f"'{source}': {label} holds {bad} NaN or infinite values",
                                 "fix the weights (a diverged training run or a corrupted file gives these)")


def _check_attributes(graph: onnx.GraphProto, source: str) -> None:
    for index, node in enumerate(graph.node):
        for attr in node.attribute:
            values = [attr.f] if attr.type == onnx.AttributeProto.FLOAT else list(attr.floats)
            if not all(math.isfinite(v) for v in values):
                raise ModelLoadError(f"'{source}': attribute '{attr.name}' of {node_label(node, index)} is "
                                     f"{values[0] if len(values) == 1 else values}", "give a finite value")


def _check_inputs(proto: onnx.ModelProto, source: str) -> None:
    """Float inputs (an edgec integer graph may also take int8 ones, as TFLite models do)."""
    integer_graph = any(o.domain == ops.DOMAIN for o in proto.opset_import)
    allowed = INPUT_DTYPES | {TensorProto.INT8} if integer_graph else INPUT_DTYPES
    graph = proto.graph
    constants = {t.name for t in graph.initializer}
    for value in graph.input:
        if value.name in constants:
            continue
        if not value.type.HasField("tensor_type"):
            raise UnsupportedModelError(f"'{source}': input '{value.name}' is not a tensor",
                                        "edgec takes models whose inputs are float tensors")
        dtype = value.type.tensor_type.elem_type
        if dtype not in allowed:
            raise UnsupportedModelError(
                f"'{source}': input '{value.name}' is {_dtype_name(dtype)}; edgec takes float32 (or float16) inputs",
                "export the model with float inputs (quantization adds the int8 conversion)")


def validate_proto(proto: onnx.ModelProto, source: str) -> None:
    """Check ``proto`` as parsed (see the module docstring); returns nothing or raises."""
    found = _undecodable_text(proto, "model")
    if found is not None:
        raise ModelLoadError(f"'{source}' is corrupt: the text of {found[0]} is not valid UTF-8 ({found[1][:40]!r})",
                             _CORRUPT_FIX)
    if proto.ir_version < MIN_IR_VERSION:
        raise ModelLoadError(f"'{source}' declares ONNX IR version {proto.ir_version}; edgec reads {MIN_IR_VERSION} "
                             "or newer", _CORRUPT_FIX)
    check_opset(proto, source)
    for label, tensor in _constant_tensors(proto.graph):
        _check_tensor(label, tensor, source)
    _check_attributes(proto.graph, source)
    _check_inputs(proto, source)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ModelLoadError(f"'{source}' is not a valid ONNX model: {_inference_detail(error)}", _CHECKER_FIX) from None


# -- validate_shapes ------------------------------------------------------------------------
_NODE_IN_MESSAGE = re.compile(r"\(op_type:([^,]*), node name: ([^)]*)\):")
_NODE_CONTEXT = re.compile(r"\s*==> Context: Bad node spec for node\. Name: (.*?) OpType: (\S+)\s*$")


def _inference_detail(error: Exception) -> str:
    """onnx's message shortened to its first error, naming the node it is about."""
    text = re.sub(r"\[\w+Error\]\s*|Inference error\(s\):\s*", "", " ".join(str(error).split())).strip()
    match = _NODE_IN_MESSAGE.search(text) or _NODE_CONTEXT.search(text)
    if match is None:
        return text or first_line(error)
    if match.re is _NODE_CONTEXT:
        op_type, name, detail = match.group(2), match.group(1), text[:match.start()]
    else:
        op_type, name, detail = match.group(1), match.group(2), text[match.end():]
        following = _NODE_IN_MESSAGE.search(detail)
        detail = detail[:following.start()] if following else detail
    return f"node '{name}' ({op_type}): {detail.strip()}"


def _shapes(inferred: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Tensor name -> dims (``None`` where unknown) for every typed value and initializer."""
    shapes = {t.name: list(t.dims) for t in inferred.graph.initializer}
    graph = inferred.graph
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            shapes.setdefault(value.name, [d.dim_value if d.HasField("dim_value") else None
                                           for d in tensor_type.shape.dim])
    return shapes


def _input_shape_fix(name: str, shape: Sequence[int]) -> str:
    return f"use --input-shape {name}={','.join(str(d) for d in shape)}"


def _problem_error(problem: ShapeProblem, source: str, inputs: set[str], given: Mapping[str, Sequence[int]],
                   declared: Mapping[str, list], hint: str = _REEXPORT_FIX) -> Exception:
    """The error for a rule's problem, blaming ``--input-shape`` where it is the cause."""
    text = problem.text
    if problem.tensor is not None:
        kind = "input" if problem.tensor in inputs else "tensor"
        text = f"{kind} '{problem.tensor}' has shape {problem.shape} but {problem.text}"
    if problem.tensor in inputs and problem.expected is not None:
        return UnsupportedModelError(f"'{source}': {text}", _input_shape_fix(problem.tensor, problem.expected))
    changed = [name for name in given if list(given[name]) != declared.get(name)]
    if changed:  # an --input-shape that is the declared shape is not the cause
        static = {n: declared[n] for n in changed if declared.get(n) and all(isinstance(d, int) for d in declared[n])}
        if static:
            hint = f"{_input_shape_fix(*next(iter(static.items())))} (the shape the model declares), or omit it"
        else:
            shown = ", ".join(f"{n}={','.join(map(str, given[n]))}" for n in changed)
            hint = f"check --input-shape {shown}: the model's layers do not take it"
        return UnsupportedModelError(f"'{source}': {text}", hint)
    return ModelLoadError(f"'{source}': {text}", hint)


def _check_rules(proto: onnx.ModelProto, source: str, given: Mapping[str, Sequence[int]],
                 declared: Mapping[str, list]) -> None:
    shapes = _shapes(proto)
    inputs = {v.name for v in proto.graph.input} - {t.name for t in proto.graph.initializer}
    for name in sorted(inputs):
        if name in shapes and any(d is not None and d < 1 for d in shapes[name]):
            raise ModelLoadError(f"'{source}': input '{name}' has shape {shapes[name]}, with no elements",
                                 f"give every dimension a size of 1 or more (--input-shape {name}=...)")
    for index, node in enumerate(proto.graph.node):
        rule = RULES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        problem = (rule(node, index, shapes) if rule is not None else None) or too_large(node, index, shapes)
        if problem is not None:
            raise _problem_error(problem, source, inputs, given, declared)


def validate_shapes(proto: onnx.ModelProto, source: str, given: Mapping[str, Sequence[int]] | None = None,
                    declared: Mapping[str, list] | None = None) -> None:
    """Strict shape inference and :mod:`edgec.frontend.shape_rules` on ``proto`` (inputs shaped).

    ``given`` holds the shapes the user set with ``--input-shape`` (by input name) and
    ``declared`` the shapes the file declared for them, for the hint of an error. Where
    inference fails, the rules run first on the shapes known without it (a first layer's
    rule names the cause more precisely than onnx).
    """
    given, declared = dict(given or {}), dict(declared or {})
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        _check_rules(proto, source, given, declared)
        inputs = {v.name for v in proto.graph.input}
        problem = ShapeProblem(f"shape inference fails at {_inference_detail(error)}")
        raise _problem_error(problem, source, inputs, given, declared, _CHECKER_FIX) from None
    _check_rules(inferred, source, given, declared)
