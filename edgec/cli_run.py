"""What ``edgec run`` does: a model file on the integer reference executor, or a compiled
project on its backend's runner, checked bit for bit against the reference with ``--check``.

A ``--check`` mismatch is an :class:`~edgec.errors.EdgecError` naming how many samples differ,
the first one, its first differing output element (reference value and value got) and, where
the run can record per-layer values, the first differing layer: the project is run once more
on that sample with a per-layer trace. A run variant that records none (a backend's
:attr:`~edgec.backend.Backend.untraced_variants`, e.g. an FPGA netlist) is not rerun; the
error says which run locates the layer instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec import api
from edgec.backend import Backend, Project, open_project, split_row
from edgec.cli_output import console, quantize_with_progress, status
from edgec.errors import EdgecError
from edgec.reference import ReferenceExecutor
from edgec.trace_compare import first_difference, reference_outputs


def run_reference(model: str, input_path: str, raw: bool, calib, method, rounding, input_shapes,
                  widths: tuple[int, int]) -> dict[str, np.ndarray]:
    """The outputs of model file ``model`` on the samples of ``input_path``, stacked, from the
    integer reference executor (a float model quantized first); ``raw``: the integer tensors
    the outputs are dequantized from."""
    loaded = quantize_with_progress(model, calib, method, rounding, input_shapes, None, widths=widths)
    samples = api.input_samples(loaded, input_path)
    executor = ReferenceExecutor(loaded)
    names = api.int8_output_names(loaded) if raw else executor.output_names
    results = []
    for sample in samples:
        values = executor.run(sample, keep_intermediates=raw)
        results.append({name: values[name] for name in names})
    return {name: np.concatenate([r[name] for r in results]) for name in names}


def run_compiled(directory: Path, input_path: str, raw: bool, check: bool, variant: str | None) -> dict:
    """The outputs of the compiled project in ``directory`` on the samples of ``input_path``,
    run by its backend (``variant``: one of its run variants, or None for the target's own
    runner); ``raw``: the integer outputs. ``check``: compare them with the integer reference
    first (see the module docstring)."""
    backend, project = open_project(directory)
    variant = backend.checked_variant(variant)
    model = project.model
    inputs = backend.input_rows(model, api.input_samples(model, input_path))
    where = backend.run_variants[variant] if variant else project.target.name
    with status(f"building and running on {where}"):
        result = backend.run(project, inputs, variant=variant)
    if result.summary:
        console.print(result.summary)
    if check:
        _check(backend, project, directory, inputs, result.outputs, variant, input_path)
        console.print(f"check: all {len(inputs)} outputs equal the integer reference bit for bit")
    rows = result.outputs if raw else backend.float_outputs(model, result.outputs)
    names = api.int8_output_names(model) if raw else [value.name for value in model.graph.outputs]
    per_sample = [split_row(model.graph.outputs, row) for row in rows]
    return {name: np.concatenate([parts[index] for parts in per_sample]) for index, name in enumerate(names)}


def output_difference(expected: np.ndarray, got: np.ndarray) -> str:
    """Where one sample's output ``got`` first differs from the reference's ``expected`` (both
    flattened): the element, both values and how many differ; or the sizes when they differ."""
    expected, got = np.ravel(expected), np.ravel(got)
    if got.size != expected.size:
        return f"the output has {got.size} values, the reference {expected.size}"
    differing = np.flatnonzero(got != expected)
    first = int(differing[0])
    return (f"output element {first}: reference {expected[first]}, got {got[first]} "
            f"({differing.size} of {expected.size} output values differ)")


def _check(backend: Backend, project: Project, directory: Path, inputs: np.ndarray, outputs: np.ndarray,
           variant: str | None, input_path: str) -> None:
    """Nothing when every row of ``outputs`` equals the integer reference's output for its input
    row; otherwise the error of the module docstring."""
    expected = reference_outputs(project.model, inputs)
    bad = [i for i in range(len(inputs)) if not np.array_equal(outputs[i], expected[i])]
    if not bad:
        return
    first = bad[0]
    differ = f"{len(bad)} of {len(inputs)} samples differ from the integer reference; first at sample {first}, "
    element = output_difference(expected[first], outputs[first])
    if variant in backend.untraced_variants:
        raise EdgecError(f"{differ}{element}; the {variant} run records no per-layer values to locate the first "
                         f"differing layer", f"locate it with {backend.untraced_variants[variant]}: "
                         f"edgec run {directory} --input {input_path} --check")
    traced = backend.run(project, inputs[first:first + 1], variant=variant, trace=True)
    mismatch = first_difference(project.model, project.manifest["layers"], inputs[first], traced.trace)
    where = (f"layer {mismatch.index} ({mismatch.op} '{mismatch.name}'): {mismatch.differing} of "
             f"{mismatch.elements} values differ; {element}") if mismatch else f"{element}, no traced layer differs"
    raise EdgecError(f"{differ}{where}", "report this with the model and input")
