"""What the Cortex-M backend makes of one integer-graph node: a :class:`CLayer` (a kernel
call with its parameter blocks, flash arrays and scratch), and the helpers every layer
builder shares (:mod:`backends.cortex_m.layers`, :mod:`backends.cortex_m.layout_layers`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.errors import UnsupportedModelError


@dataclasses.dataclass(frozen=True)
class CArray:
    """A constant array in flash: C name, element type and values."""

    name: str
    ctype: str
    values: np.ndarray


@dataclasses.dataclass
class CLayer:
    """The C for one node (``call`` is ``None`` for a zero-copy Reshape)."""

    node: ir.Node
    source: str | None                  # kernel source file the call needs
    call: str | None
    arrays: list[CArray] = dataclasses.field(default_factory=list)
    params_type: str | None = None
    params: dict[str, object] = dataclasses.field(default_factory=dict)
    scratch_bytes: int = 0
    in_place: bool = False              # the output may reuse input 0's buffer
    #: more parameter blocks (C type, name, fields), emitted before ``params``
    structs: list[tuple[str, str, dict[str, object]]] = dataclasses.field(default_factory=list)
    encoding: str | None = None         # how the weights are stored, when not as plain values
    #: when input 0 dies here, the output may start this many bytes before it, overlapping it
    #: (raster-order window kernels, :func:`backends.cortex_m.overlap.output_lag`); None: never
    lag: int | None = None


def shape_of(value: ir.Value) -> list[int]:
    """The shape of ``value``; static by contract (CheckStaticShapesPass ran on every model)."""
    return [int(d) for d in value.shape.numpy()]


def to_4d(shape: list[int], node: ir.Node) -> list[int]:
    if len(shape) > 4:
        raise UnsupportedModelError(f"node '{node.name}' ({node.op_type}) works on a rank-{len(shape)} tensor",
                                    "the Cortex-M kernels handle tensors of rank 4 or less")
    return [1] * (4 - len(shape)) + list(shape)


def constant_operands(node: ir.Node, prefix: str, arrays: list[CArray]) -> list[str]:
    """C pointers for the node's inputs: ``{inN}`` placeholders for tensors, and flash arrays
    (appended to ``arrays``) for constant inputs."""
    operands = []
    for index, value in enumerate(node.inputs):
        if value.const_value is None:
            operands.append(f"{{in{index}}}")
        elif value.dtype == ir.DataType.INT16:  # a byte view, as the layout kernels take it
            arrays.append(CArray(f"{prefix}_input{index}", "int16_t", value.const_value.numpy()))
            operands.append(f"(const int8_t *){prefix}_input{index}")
        else:
            arrays.append(CArray(f"{prefix}_input{index}", "int8_t", value.const_value.numpy()))
            operands.append(f"{prefix}_input{index}")
    return operands


def element_bytes(value: ir.Value) -> int:
    """Bytes per element of an activation: 1 (int8) or 2 (int16, the 16x8 scheme)."""
    return 2 if value.dtype == ir.DataType.INT16 else 1


def broadcast_strides(in_shape: list[int], out_shape: list[int]) -> list[int]:
    """Element strides of a 4-D ``in_shape`` input read in ``out_shape``'s index space: 0 along
    the axes it is broadcast over."""
    strides, step = [0] * 4, 1
    for axis in range(3, -1, -1):
        strides[axis] = step if in_shape[axis] != 1 or out_shape[axis] == 1 else 0
        step *= in_shape[axis]
    return strides
