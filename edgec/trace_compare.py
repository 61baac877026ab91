"""A backend's outputs and per-layer trace against the integer reference (the bit-exact oracle).

Backend-neutral: everything comes from the integer graph, the manifest's ``layers`` (each
naming the graph value it computes, see :mod:`edgec.backend`), input rows (the graph's
quantized inputs flattened and concatenated) and the arrays a backend recorded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import onnx_ir as ir

from edgec.api import int8_output_names
from edgec.backend import input_parts
from edgec.control_flow import taken_path
from edgec.reference import ReferenceExecutor


@dataclasses.dataclass(frozen=True)
class LayerMismatch:
    """The first layer whose output differs: its index, name and operator, and how many of
    its ``elements`` values differ (all of them when the sizes differ)."""

    index: int
    name: str
    op: str
    differing: int
    elements: int


def _reference_values(executor: ReferenceExecutor, model: ir.Model, row: np.ndarray) -> dict[str, np.ndarray]:
    parts = input_parts(model, row)
    return executor.run(dict(zip(executor.input_names, parts)), keep_intermediates=True)


def taken_paths(model: ir.Model, rows: np.ndarray) -> list[tuple[int, ...]]:
    """The path (:mod:`edgec.control_flow`) the integer reference takes for each input row;
    ``()`` for every row of a model that does not branch."""
    executor = ReferenceExecutor(model)
    return [taken_path(model.graph, _reference_values(executor, model, row)) for row in rows]


def reference_outputs(model: ir.Model, rows: np.ndarray) -> np.ndarray:
    """The integer reference's outputs (each graph output's integer tensor flattened, in output
    order) for each input row: what a bit-exact backend run returns."""
    executor = ReferenceExecutor(model)
    names = int8_output_names(model)
    return np.stack([np.concatenate([values[name].ravel() for name in names])
                     for values in (_reference_values(executor, model, row) for row in rows)])


def first_difference(model: ir.Model, layers: Sequence[dict], row: np.ndarray,
                     trace: Sequence[tuple[int, np.ndarray]]) -> LayerMismatch | None:
    """The first traced layer whose values differ from the integer reference on input ``row``.

    ``layers``: the manifest's layer list; ``trace``: ``(layer index, values)`` in execution
    order (:attr:`edgec.backend.RunResult.trace`). ``None`` when every traced layer agrees.
    """
    reference = _reference_values(ReferenceExecutor(model), model, row)
    for index, data in trace:
        layer = layers[index]
        expected = reference[layer["output"]].ravel()
        data = np.asarray(data).ravel()
        if not np.array_equal(data, expected):
            differing = int((data != expected).sum()) if data.size == expected.size else expected.size
            return LayerMismatch(index, layer["name"], layer["op"], differing, expected.size)
    return None
