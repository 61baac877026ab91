"""Per-layer summaries of float and integer graphs (what ``edgec inspect`` prints).

MACs count multiply-accumulates of the layers that have weights, the convention of the
MLPerf Tiny figures: Conv ``N*Cout*prod(out_spatial)*(Cin/group)*prod(kernel)``, Gemm/MatMul
and FullyConnected ``prod(output)*K``, depthwise ``N*prod(out_spatial)*Cout*prod(kernel)``.
Other operators count 0. Parameters are the elements of the constant inputs of the layers
that have weights (:data:`PARAMETER_OPS` and every edgec operator, whose configuration is
in attributes); the constant inputs of other operators (a Reshape's shape, a Pad's pads, a
ReduceMean's axes, a Clip's bounds) configure them and count 0.

In an integer graph each layer also shows its integer types (``types``: ``"w int4n / out
int4"``, the first weight's and the output's, :mod:`edgec.inttype`), and ``packed_bytes``
counts its parameters at their bit width, packed (``ceil(elements * bits / 8)`` per tensor:
an int4 weight takes half the bytes of its int8 storage, an int32 bias four bytes each);
in a float graph ``packed_bytes`` equals ``param_bytes``.

A layer is marked ``unsupported`` when edgec cannot compile its operator
(:func:`edgec.support.unsupported_nodes`).

In a graph that branches (:mod:`edgec.control_flow`) the layers of every branch are listed,
each ``If`` before its branches, with the ``branch`` choices leading to them (``(0, 1)``:
then, then else); the totals count every branch (what flash holds), and :attr:`ModelSummary.paths`
gives what one inference reads and computes on each path.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx_ir as ir

from edgec import ops
from edgec.control_flow import branches, has_control_flow, is_branching, path_nodes, paths
from edgec.delta import get_scheme, weight_rows
from edgec.passes.graph_utils import attribute, static_shape
from edgec.passes.qparams import int_type_of
from edgec.support import unsupported_nodes, unsupported_warning

#: Float operators whose constant inputs are parameters: weights, biases, and the per-channel
#: scale and shift of a BatchNorm that could not be folded into a convolution (a Mul and an Add).
PARAMETER_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul",
                           "BatchNormalization", "PRelu"})


@dataclasses.dataclass(frozen=True)
class Layer:
    """One node: name, operator, activation input/output shapes, parameter count and bytes, MACs,
    whether edgec cannot compile its operator, its integer types and its parameters' packed
    bytes (see the module docstring)."""

    name: str
    op: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    params: int
    param_bytes: int
    macs: int
    unsupported: bool
    types: str = ""
    packed_bytes: int = 0
    branch: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class PathSummary:
    """What one inference on ``path`` reads and computes: its layers' parameters, their
    bytes packed at their widths, and MACs."""

    path: tuple[int, ...]
    params: int
    packed_bytes: int
    macs: int


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """Layers of a model in execution order, with totals."""

    kind: str  # "float" or "integer"
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    layers: list[Layer]
    paths: list[PathSummary] = dataclasses.field(default_factory=list)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_param_bytes(self) -> int:
        return sum(layer.param_bytes for layer in self.layers)

    @property
    def total_packed_bytes(self) -> int:
        return sum(layer.packed_bytes for layer in self.layers)

    @property
    def unsupported(self) -> list[Layer]:
        """The layers whose operator edgec cannot compile."""
        return [layer for layer in self.layers if layer.unsupported]

    def unsupported_warning(self) -> str | None:
        """A sentence naming the unsupported layers and what will fail; ``None`` when there are none."""
        if not self.unsupported:
            return None
        return unsupported_warning([(layer.op, layer.name) for layer in self.unsupported], self.kind == "integer")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "layers": [dataclasses.asdict(layer) for layer in self.layers],
            "total_macs": self.total_macs,
            "total_params": self.total_params,
            "total_param_bytes": self.total_param_bytes,
            "total_packed_bytes": self.total_packed_bytes,
            "unsupported": [{"name": layer.name, "op": layer.op} for layer in self.unsupported],
            "paths": [{**dataclasses.asdict(path), "path": list(path.path)} for path in self.paths],
        }


def _macs(node: ir.Node, out_shape: tuple[int, ...] | None, weight: np.ndarray | None) -> int:
    if out_shape is None or weight is None:
        return 0
    op = node.op_type
    if node.domain == "" and op == "Conv":
        groups = int(attribute(node, "group", 1))
        cin_per_group = weight.shape[1]
        return math.prod(out_shape) * cin_per_group * math.prod(weight.shape[2:]) if groups else 0
    if node.domain == "" and op in ("Gemm", "MatMul"):
        k = weight.shape[1] if op == "Gemm" and attribute(node, "transB", 0) else weight.shape[0]
        return math.prod(out_shape) * k
    if node.domain == ops.DOMAIN and op == "Conv":
        return math.prod(out_shape) * math.prod(weight.shape[1:])
    if node.domain == ops.DOMAIN and op == "DepthwiseConv":
        return math.prod(out_shape) * weight.shape[1] * weight.shape[2]
    if node.domain == ops.DOMAIN and op == "FullyConnected":
        return math.prod(out_shape) * weight.shape[1]
    if node.domain == ops.DOMAIN and op == "Router":
        return weight.size
    return 0


def _parameters(node: ir.Node) -> list[ir.Value]:
    """The constant inputs of ``node`` that are parameters (see the module docstring)."""
    if node.domain != ops.DOMAIN and not (node.domain == "" and node.op_type in PARAMETER_OPS):
        return []
    return [v for v in node.inputs if v is not None and v.const_value is not None]


def _is_integer(value: ir.Value) -> bool:
    return value.dtype is not None and np.dtype(value.dtype.numpy()).kind in "iu"


def packed_bytes(value: ir.Value, op_type: str = "") -> int:
    """Bytes of the constant ``value`` with its elements at their type's bit width (integers),
    or in its delta encoding (:mod:`edgec.delta`) when it has one (``op_type``: its reader's)."""
    if not _is_integer(value):
        return value.const_value.nbytes
    scheme = get_scheme(value)
    if scheme is not None:
        rows, length = weight_rows(op_type, value.const_value.numpy()).shape
        return -(-scheme.stored_bits(rows, length, int_type_of(value).bits) // 8)
    return -(-value.const_value.size * int_type_of(value).bits // 8)


def layer_types(node: ir.Node, weights: list[ir.Value]) -> str:
    """``"w <type> [as <b>-bit <scheme> deltas/<scope>] / out <type>"`` for an integer node (either part
    left out where not integer; the deltas when the weights are delta-encoded)."""
    parts = [f"w {int_type_of(weights[0])}"] if weights and _is_integer(weights[0]) else []
    scheme = get_scheme(weights[0]) if parts else None
    if scheme is not None:
        parts[0] += f" as {scheme.bits}-bit {scheme.scheme} deltas/{scheme.scope_name}"
    if _is_integer(node.outputs[0]):
        parts.append(f"out {int_type_of(node.outputs[0])}")
    return " / ".join(parts)


def _layer(node: ir.Node, integer: bool, unsupported: bool, branch: tuple[int, ...]) -> Layer:
    activations = [v for v in node.inputs if v is not None and v.const_value is None]
    constants = _parameters(node)
    weight = constants[0].const_value.numpy() if constants else None
    out_shape = static_shape(node.outputs[0])
    return Layer(
        name=node.name or node.outputs[0].name, op=node.op_type,
        input_shape=static_shape(activations[0]) if activations else None, output_shape=out_shape,
        params=sum(math.prod(v.shape.numpy()) for v in constants if v.shape is not None),
        param_bytes=sum(v.const_value.nbytes for v in constants), macs=_macs(node, out_shape, weight),
        unsupported=unsupported,
        types=layer_types(node, constants) if integer else "",
        packed_bytes=sum(packed_bytes(v, node.op_type) for v in constants), branch=branch,
    )


def summarize(model: ir.Model) -> ModelSummary:
    """Summarize a canonical float model or an integer graph."""
    integer = ops.is_integer_model(model)
    by_node: dict[ir.Node, Layer] = {}
    unsupported = set(unsupported_nodes(model.graph, integer))

    def walk(graph: ir.Graph, branch: tuple[int, ...]) -> None:
        for node in graph:
            by_node[node] = _layer(node, integer, node in unsupported, branch)
            if is_branching(node):
                for choice, subgraph in enumerate(branches(node)):
                    walk(subgraph, (*branch, choice))

    walk(model.graph, ())
    path_summaries = []
    if has_control_flow(model.graph):
        for path in paths(model.graph):
            on_path = [by_node[node] for node in path_nodes(model.graph, path)]
            path_summaries.append(PathSummary(path, sum(layer.params for layer in on_path),
                                              sum(layer.packed_bytes for layer in on_path),
                                              sum(layer.macs for layer in on_path)))
    return ModelSummary(
        kind="integer" if integer else "float",
        inputs={v.name: static_shape(v) for v in model.graph.inputs},
        outputs={v.name: static_shape(v) for v in model.graph.outputs},
        layers=list(by_node.values()),
        paths=path_summaries,
    )
