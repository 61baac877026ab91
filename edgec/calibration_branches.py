"""Calibration of a graph that branches: every tensor of a branch is calibrated on exactly
the samples routed into that branch.

onnxruntime's calibrators observe the tensors of a model's main graph only; a branch's
tensors live in a subgraph. So the graph is calibrated level by level. A *level* is the
main graph, or one branch reached through a chain of ``If`` choices. For each level,
:func:`inlined` builds a model whose main graph is the original one with every ``If`` of
the chain replaced by its chosen branch (its nodes moved into the enclosing graph), so the
level's own tensors — its ``If`` outputs and conditions included — are main-graph tensors;
the level's ``If`` nodes stay whole. That model is calibrated on the level's samples; the
level's conditions, computed by onnxruntime on the same samples, split them between its
branches, which are calibrated next. Each tensor's range therefore comes from the samples
that reach it, whatever the calibration method, and each sample runs once per level of its
path.

A branch that no calibration sample reaches cannot be quantized: the error names the
``If`` node and the branch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
import onnx_ir as ir

from edgec.control_flow import BRANCHES, branches, copy_model, inline_branch, is_branching
from edgec.errors import InputDataError
from edgec.oracle import ort_session

Samples = Sequence[dict[str, np.ndarray]]
Calibrate = Callable[[ir.Model, Samples, Callable[[], None] | None], dict[str, tuple[float, float]]]
#: A chain of ``If`` choices: (node name, 0 for then / 1 for else), from the main graph down.
Chain = tuple[tuple[str, int], ...]


def inlined(model: ir.Model, chain: Chain) -> tuple[ir.Model, list[ir.Node]]:
    """A copy of ``model`` with the ``If`` nodes of ``chain`` inlined (see the module
    docstring), and the nodes of the level at the end of the chain (now in the copy's main
    graph)."""
    copy = copy_model(model)
    level = list(copy.graph)
    for name, choice in chain:
        node = next(n for n in copy.graph if n.name == name)
        level = list(branches(node)[choice])
        inline_branch(copy.graph, node, choice)
    return copy, level


def _conditions(model: ir.Model, ifs: list[ir.Node], samples: Samples) -> np.ndarray:
    """``[samples, ifs]`` booleans: each ``If``'s condition on each sample."""
    proto = ir.to_proto(model)
    declared = {output.name for output in proto.graph.output}
    names = [node.inputs[0].name for node in ifs]
    proto.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.BOOL, None)
                              for name in dict.fromkeys(names) if name not in declared)
    session = ort_session(proto)
    return np.array([[bool(np.asarray(c).reshape(-1)[0]) for c in session.run(names, sample)] for sample in samples],
                    dtype=bool).reshape(len(samples), len(ifs))


def calibrate_branches(model: ir.Model, samples: Samples, calibrate: Calibrate,
                       advance: Callable[[], None] | None = None) -> dict[str, tuple[float, float]]:
    """Ranges of every float tensor of ``model``, branches included (see the module
    docstring); ``calibrate`` calibrates a model's main graph on samples. ``advance`` is
    called once per sample of the main graph's pass."""
    ranges: dict[str, tuple[float, float]] = {}
    inputs = [value.name for value in model.graph.inputs]
    pending: list[tuple[Chain, list[int]]] = [((), list(range(len(samples))))]
    while pending:
        chain, chosen = pending.pop(0)
        flat, level = inlined(model, chain)
        level_samples = [samples[i] for i in chosen]
        found = calibrate(flat, level_samples, advance if not chain else None)
        names = {out.name for node in level for out in node.outputs} | (set(inputs) if not chain else set())
        ranges.update({name: bounds for name, bounds in found.items() if name in names})
        ifs = [node for node in level if is_branching(node)]
        if not ifs:
            continue
        conditions = _conditions(flat, ifs, level_samples)
        for column, node in enumerate(ifs):
            for choice, taken in ((0, conditions[:, column]), (1, ~conditions[:, column])):
                routed = [index for index, t in zip(chosen, taken, strict=True) if t]
                if not routed:
                    raise InputDataError(
                        f"no calibration sample reaches the {BRANCHES[choice].split('_')[0]} branch of If node "
                        f"'{node.name}'", "give more (or more varied) calibration data: every branch of the "
                        "model needs samples routed to it to be quantized")
                pending.append(((*chain, (node.name, choice)), routed))
    return ranges
