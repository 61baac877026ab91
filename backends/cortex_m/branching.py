"""The C control flow of a graph that branches (ONNX ``If``, :mod:`edgec.control_flow`).

:func:`linearize` puts every kernel layer of the graph and its branches in one order — an
``If``'s then-branch layers, then its else-branch layers, where the ``If`` stands — and
records the blocks of ``edgec_invoke``: a :class:`Branch` per ``If``, whose condition is the
``int`` its ``Router`` layer returned. The memory planner works on that linear order: one
inference runs a subsequence of it, so two buffers live together in any run are live
together in the linear order, and the plan is valid for every path. Buffers of sibling
branches have disjoint linear lifetimes and share arena bytes; a value read inside a branch
and defined before it stays live over every branch of its ``If`` (the planner cannot know
which runs).

Each branch's outputs are written straight into its ``If``'s outputs: they join one buffer
(:func:`output_aliases`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection

import onnx_ir as ir

from edgec.control_flow import branches, is_branching
from edgec.errors import UnsupportedModelError


@dataclasses.dataclass(frozen=True)
class Branch:
    """An ``If`` in ``edgec_invoke``: ``condition`` is the index of its Router layer."""

    node: ir.Node
    condition: int
    then_body: list
    else_body: list


def linearize(graph: ir.Graph, skip: Collection[ir.Node] = ()) -> tuple[list[ir.Node], list]:
    """(the kernel nodes in linear order, the body of ``edgec_invoke``: layer indices and
    :class:`Branch` blocks); ``skip``: nodes that are no layers (the model's float edges)."""
    nodes: list[ir.Node] = []

    def walk(subgraph: ir.Graph) -> list:
        body: list = []
        for node in subgraph:
            if node in skip:
                continue
            if not is_branching(node):
                body.append(len(nodes))
                nodes.append(node)
                continue
            router = node.inputs[0].producer()
            if router is None or router.op_type != "Router" or router not in nodes:
                raise UnsupportedModelError(f"the condition of If node '{node.name}' is not a Router of its graph",
                                            "quantize the model with edgec quantize")
            then_graph, else_graph = branches(node)
            body.append(Branch(node, nodes.index(router), walk(then_graph), walk(else_graph)))
        return body

    return nodes, walk(graph)


def branch_nodes(body: list) -> list[ir.Node]:
    """The ``If`` nodes of ``body``, outer before inner."""
    found = []
    for step in body:
        if isinstance(step, Branch):
            found.append(step.node)
            found += branch_nodes(step.then_body) + branch_nodes(step.else_body)
    return found


def output_aliases(body: list) -> list[tuple[ir.Value, ir.Value]]:
    """Pairs (``If`` output, a branch's output) that share one buffer."""
    return [(out, result) for node in branch_nodes(body) for branch in branches(node)
            for out, result in zip(node.outputs, branch.outputs, strict=True)]


def invoke_lines(body: list, statements: Callable[[int], list[str]], comment: Callable[[str], str],
                 indent: str = "    ") -> list[str]:
    """The C statements of ``body``: ``statements(index)`` gives a layer's lines; a branch
    becomes ``if (route<condition>) { ... } else { ... }``, commented with its node's name
    made safe by ``comment``."""
    lines = []
    for step in body:
        if isinstance(step, Branch):
            lines.append(f"{indent}if (route{step.condition}) {{ /* {comment(step.node.name)} */")
            lines += invoke_lines(step.then_body, statements, comment, indent + "    ")
            lines.append(f"{indent}}} else {{")
            lines += invoke_lines(step.else_body, statements, comment, indent + "    ")
            lines.append(f"{indent}}}")
        else:
            lines += [indent + line for line in statements(step)]
    return lines


def path_layers(body: list) -> list[tuple[tuple[int, ...], list[int]]]:
    """Every path through ``body`` (the order of :func:`edgec.control_flow.paths`) with the
    indices of the layers it runs, in order."""
    result: list[tuple[tuple[int, ...], list[int]]] = [((), [])]
    for step in body:
        if isinstance(step, Branch):
            result = [(path + (choice,) + below, layers + more) for path, layers in result
                      for choice, block in enumerate((step.then_body, step.else_body))
                      for below, more in path_layers(block)]
        else:
            result = [(path, [*layers, step]) for path, layers in result]
    return result
