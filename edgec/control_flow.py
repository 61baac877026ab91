"""Control flow in edgec graphs: ONNX ``If`` nodes whose branches are subgraphs.

A float graph branches where a Sigma-Branch tree routes (``edgec.train.sigma_branch``
exports one ``If`` per router). The integer graph keeps the standard ONNX ``If``: its
condition is the boolean output of an ``edgec::Router`` node, and each branch is an
integer subgraph with no inputs of its own (it reads values of the enclosing graphs by
name, as ONNX allows) whose outputs share the ``If`` outputs' quantization. Every
initializer lives in the main graph, so weights are found in one place whichever branch
reads them.

Every pass, the reference executor and calibration walk branches through these helpers.
A *path* is one choice of branch at every ``If`` met from the main graph down, the
branches numbered ``then`` = 0, ``else`` = 1; :func:`paths` lists them depth first, then
before else (the leaves of a Sigma-Branch tree left to right).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import onnx_ir as ir

#: The branch attributes of an ``If``, in path order (choice 0 then 1).
BRANCHES = ("then_branch", "else_branch")


def is_branching(node: ir.Node) -> bool:
    """True when ``node`` is an ONNX ``If``."""
    return node.op_type == "If" and node.domain == ""


def branches(node: ir.Node) -> tuple[ir.Graph, ir.Graph]:
    """The then and else subgraphs of an ``If`` node."""
    return tuple(node.attributes[name].as_graph() for name in BRANCHES)


def all_nodes(graph: ir.Graph) -> Iterator[ir.Node]:
    """Every node of ``graph`` and of the subgraphs of its nodes, recursively, each ``If``
    before the nodes of its branches."""
    return iter(ir.traversal.RecursiveGraphIterator(graph))


def has_control_flow(graph: ir.Graph) -> bool:
    """True when ``graph`` holds an ``If`` (at any depth)."""
    return any(is_branching(node) for node in all_nodes(graph))


def paths(graph: ir.Graph) -> list[tuple[int, ...]]:
    """Every path through ``graph`` (see the module docstring); ``[()]`` without ``If``.

    A graph with several ``If`` nodes in sequence has a path per combination of their
    choices, the first ``If``'s choice first.
    """
    result: list[tuple[int, ...]] = [()]
    for node in graph:
        if is_branching(node):
            result = [above + (choice,) + below for above in result
                      for choice, branch in enumerate(branches(node)) for below in paths(branch)]
    return result


def path_nodes(graph: ir.Graph, path: tuple[int, ...]) -> list[ir.Node]:
    """The nodes that run on ``path``, in execution order: the ``If`` nodes themselves
    included, each followed by the nodes of its chosen branch."""
    nodes, rest = _path_nodes(graph, tuple(path))
    if rest:
        raise ValueError(f"path {list(path)} is longer than the graph's branching")
    return nodes


def _path_nodes(graph: ir.Graph, path: tuple[int, ...]) -> tuple[list[ir.Node], tuple[int, ...]]:
    nodes: list[ir.Node] = []
    for node in graph:
        nodes.append(node)
        if is_branching(node):
            if not path:
                raise ValueError("the path is shorter than the graph's branching")
            inner, path = _path_nodes(branches(node)[path[0]], path[1:])
            nodes.extend(inner)
    return nodes, path


def outer_values(graph: ir.Graph) -> list[ir.Value]:
    """The values a subgraph reads from enclosing graphs (not produced inside it, not its
    inputs, not its initializers), in first-use order."""
    inside = {value.name for value in graph.inputs} | set(graph.initializers)
    inside |= {out.name for node in all_nodes(graph) for out in node.outputs}
    seen: dict[str, ir.Value] = {}
    for node in all_nodes(graph):
        for value in node.inputs:
            if value is not None and value.name not in inside and value.name not in seen:
                seen[value.name] = value
    for value in graph.outputs:
        if value.name not in inside and value.name not in seen:
            seen[value.name] = value
    return list(seen.values())


def taken_path(graph: ir.Graph, values: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    """The path a run took, read from its values (e.g. the reference executor's
    intermediates): at each ``If`` met, 0 when its condition held, else 1."""
    path: tuple[int, ...] = ()
    for node in graph:
        if is_branching(node):
            choice = 0 if bool(np.asarray(values[node.inputs[0].name]).reshape(-1)[0]) else 1
            path += (choice,) + taken_path(branches(node)[choice], values)
    return path


def copy_model(model: ir.Model) -> ir.Model:
    """A deep copy of ``model`` (through its protobuf)."""
    return ir.from_proto(ir.to_proto(model))


def inline_branch(graph: ir.Graph, node: ir.Node, choice: int) -> None:
    """Replace the ``If`` ``node`` of ``graph`` by the nodes of its branch ``choice``; uses
    of its outputs (graph outputs included) read the branch's outputs instead."""
    branch = branches(node)[choice]
    moved = list(branch)
    branch.remove(moved)
    graph.insert_before(node, moved)
    for value in list(branch.initializers.values()):
        branch.initializers.pop(value.name)
        graph.register_initializer(value)
    results = list(branch.outputs)
    branch.outputs.clear()
    for if_output, result in zip(node.outputs, results, strict=True):
        graph.outputs[:] = [result if value is if_output else value for value in graph.outputs]
        ir.convenience.replace_all_uses_with(if_output, result)
    graph.remove(node, safe=True)


def inline_path(model: ir.Model, path: tuple[int, ...]) -> ir.Model:
    """A copy of ``model`` without control flow: every ``If`` on ``path`` replaced by its
    chosen branch (what runs for an input taking that path)."""
    copy = copy_model(model)
    remaining = list(path)
    while (node := next((n for n in copy.graph if is_branching(n)), None)) is not None:
        if not remaining:
            raise ValueError(f"path {list(path)} is shorter than the graph's branching")
        inline_branch(copy.graph, node, remaining.pop(0))
    if remaining:
        raise ValueError(f"path {list(path)} is longer than the graph's branching")
    return copy


def path_words(path: tuple[int, ...] | list[int]) -> str:
    """A path (or a branch's choices) in words, e.g. ``then › else``; empty for none."""
    return " › ".join("then" if choice == 0 else "else" for choice in path)
