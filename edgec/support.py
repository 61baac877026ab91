"""Which operators edgec can compile, asked before quantizing or compiling.

A float graph's node is supported when the quantizer has a lowering for its operator
type (:data:`passes.lower_ops.LOWERINGS`, the list :class:`passes.quantize.QuantizePass`
checks and names in its error) or a QONNX ``Quant``/``BipolarQuant`` node, which the
canonical passes absorb (:class:`passes.absorb_qonnx.AbsorbQONNXPass`; the other QONNX
operators it rejects with their own error); an integer graph's node when it is an edgec operator
(:data:`edgec.ops.OPS`). The check is by operator type: a supported operator with an
attribute its lowering rejects (e.g. a 3-D convolution) still fails later, with its own error.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir

from edgec import ops
from edgec.control_flow import all_nodes, is_branching
from edgec.passes.absorb_qonnx import ABSORBED_OPS, is_qonnx_node
from edgec.passes.lower_control import absorbed_nodes, find_routers
from edgec.passes.lower_ops import LOWERINGS


def is_supported(node: ir.Node, integer: bool = False) -> bool:
    """True when edgec can compile ``node`` of a float graph, or of an integer graph if ``integer``."""
    if integer:
        return node.domain == ops.DOMAIN and node.op_type in ops.OPS
    if is_qonnx_node(node):
        return node.op_type in ABSORBED_OPS
    return node.domain == "" and node.op_type in LOWERINGS


def unsupported_nodes(graph: ir.Graph, integer: bool = False) -> list[ir.Node]:
    """The nodes of ``graph`` and its branches that edgec cannot compile, in graph order (see
    :func:`is_supported`); a float router's picks (:mod:`passes.lower_control`) are supported,
    and an integer graph's ``If``."""
    if integer:
        return [node for node in all_nodes(graph) if not (is_supported(node, True) or is_branching(node))]
    routed = absorbed_nodes(find_routers(graph))
    return [node for node in all_nodes(graph) if not (is_supported(node) or node in routed)]


def supported_operators(integer: bool = False) -> list[str]:
    """The operator types :func:`is_supported` accepts, sorted."""
    return sorted(ops.OPS if integer else LOWERINGS)


def unsupported_warning(nodes: Sequence[tuple[str, str]], integer: bool = False) -> str:
    """One sentence naming unsupported ``(operator, node name)`` pairs, grouped by operator,
    and saying what will fail: quantize and compile (a float graph), compile (``integer``)."""
    by_op: dict[str, list[str]] = {}
    for op, name in nodes:
        by_op.setdefault(op, []).append(name)
    parts = []
    for op, names in by_op.items():
        shown = ", ".join(f"'{n}'" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        parts.append(f"{op} (node{'s' if len(names) > 1 else ''} {shown})")
    steps = "compile" if integer else "quantize and compile"
    return (f"edgec does not support {'; '.join(parts)}: {steps} will fail "
            f"(supported operators: {', '.join(supported_operators(integer))})")
