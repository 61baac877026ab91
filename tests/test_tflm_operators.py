"""edgec against TFLM's own kernels on one-operator models: the goldens of ``tests/data/tflm_operators.npz``.

The models are rebuilt from :mod:`tflm_cases`; the stored SHA-256 proves each golden belongs
to the model built here (regenerate with ``scripts/tflm/make_goldens.py`` after changing a
case). The reference must equal TFLM on every input, and so must the Cortex-M C. A golden is
every output's bytes in output order, as a backend's output row holds them; a sample is every
input's bytes in input order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgec
from edgec.backends import cortex_m
from edgec.backends.tile.functional import run_tiled
from edgec.backends.tile.layers import plan_layers
from edgec.backends.tile.mapping import map_network
from edgec.errors import UnsupportedModelError
from edgec.inttype import INT_TYPE_KEY
from edgec.reference import ReferenceExecutor
from edgec.target import get_target
from edgec.widths import first_width_problem

from conftest import needs_host_compiler, needs_toolchain
from tflm_cases import OP, OPTIONS, cases, golden, goldens, layout_model, options, schema, unary_model

CASES = cases()


def load_case(tmp_path: Path, case):
    path = tmp_path / f"{case.name}.tflite"
    path.write_bytes(case.model)
    return edgec.load(path)


def test_every_case_has_a_golden():
    assert sorted(key for key in goldens().files if not key.endswith(".sha256")) == sorted(c.name for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reference_reproduces_tflm(tmp_path, case):
    executor = ReferenceExecutor(load_case(tmp_path, case), "double")
    values = executor.run(dict(zip(executor.input_names, case.inputs)))
    ours = np.concatenate([values[name].ravel() for name in executor.output_names])
    np.testing.assert_array_equal(ours, golden(case))


@pytest.mark.parametrize("builtin,q_out,message", [
    (OP.LOGISTIC, (1 / 128, 0), "LOGISTIC output is not quantized with scale 1/256 and zero point -128"),
    (OP.TANH, (1 / 256, -128), "TANH output is not quantized with scale 1/128 and zero point 0"),
    (OP.HARD_SWISH, (0.0001, 0), "HARD_SWISH output scale 0.0001 is below the input scale / 128"),
])
def test_quantizations_tflm_rejects_are_errors_naming_the_operator(tmp_path, builtin, q_out, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(unary_model(builtin, (0.05, 3), q_out))
    with pytest.raises(UnsupportedModelError, match="operator 0") as error:
        edgec.load(path)
    assert message in error.value.problem


_LAYOUT_REJECTIONS = [
    (layout_model((1, 4, 5, 3), (1, 8, 5, 3), OP.MIRROR_PAD, ["x", [[0, 0], [4, 0], [0, 0], [0, 0]]],
                  OPTIONS.MirrorPadOptions, options(schema.MirrorPadOptionsT, mode=0)),
     "MIRROR_PAD REFLECT pads [[0, 0], [4, 0], [0, 0], [0, 0]] exceed the input [1, 4, 5, 3]"),
    (layout_model((1, 4, 5, 3), (1, 4, 5, 3), OP.STRIDED_SLICE, ["x", [0] * 4, [1, 4, 5, 3], [1] * 4],
                  OPTIONS.StridedSliceOptions, options(schema.StridedSliceOptionsT, ellipsisMask=1)),
     "STRIDED_SLICE uses an ellipsis or new-axis mask"),
    (layout_model((1, 4, 5, 3), (1, 8, 10, 3), OP.RESIZE_BILINEAR, ["x", [8, 10]], OPTIONS.ResizeBilinearOptions,
                  options(schema.ResizeBilinearOptionsT, alignCorners=True, halfPixelCenters=True)),
     "the resize sets both align_corners and half_pixel_centers"),
    (layout_model((1, 4, 5, 3), (1, 2, 5, 3), OP.SLICE, ["x", [0, 3, 0, 0], [1, 2, 5, 3]]),
     "SLICE begin [0, 3, 0, 0] size [1, 2, 5, 3] leaves the input [1, 4, 5, 3]"),
]


@pytest.mark.parametrize("model,message", _LAYOUT_REJECTIONS, ids=lambda v: v[:24] if isinstance(v, str) else "")
def test_layout_operators_tflm_rejects_are_errors_naming_the_operator(tmp_path, model, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(model)
    with pytest.raises(UnsupportedModelError, match="operator 0") as error:
        edgec.load(path)
    assert message in error.value.problem


def _first_of_each_operator():
    return list({case.operator: case for case in reversed(CASES)}.values())


def _run_on_core(tmp_path: Path, case, core: str, host: bool = False) -> None:
    out = tmp_path / f"{case.name}-{core}"
    cortex_m.compile_project(load_case(tmp_path, case), get_target(core), out, "op")
    result = cortex_m.run_project(out, np.concatenate([x.ravel() for x in case.inputs])[None], host=host)
    np.testing.assert_array_equal(result.outputs[0], golden(case))


@needs_host_compiler
@pytest.mark.parametrize("case", _first_of_each_operator(), ids=lambda c: c.name)
def test_host_build_under_sanitizers_reproduces_tflm(tmp_path, case):
    _run_on_core(tmp_path, case, "cortex-m4", host=True)


def _core_runs():
    """Each operator's first case on M3, M4 and M55; the 16x8 ones (plain C, the same on every
    core) on the M4, and every core in the slow tier."""
    return [(case, core) for case in _first_of_each_operator()
            for core in (("cortex-m4",) if "16x8" in case.operator else ("cortex-m3", "cortex-m4", "cortex-m55"))]


@needs_toolchain
@pytest.mark.parametrize("case,core", _core_runs(), ids=lambda v: getattr(v, "name", v))
def test_cortex_m_reproduces_tflm(tmp_path, case, core):
    _run_on_core(tmp_path, case, core)


@needs_toolchain
@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m33", "cortex-m55"])  # the DSP kernels, and Helium's
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cortex_m_reproduces_tflm_on_every_case(tmp_path, case, core):
    _run_on_core(tmp_path, case, core)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tile_functional_model_reproduces_tflm(tmp_path, case):
    model = load_case(tmp_path, case)
    if len(model.graph.inputs) != 1 or len(model.graph.outputs) != 1:
        pytest.skip("the tile backend compiles models with one input and one output")
    if "16x8" in case.operator:
        pytest.skip("the tile backend compiles int8 activations (test_16x8.py checks it says so)")
    mapping = map_network(plan_layers(model), get_target("tile-4x4"), 4)
    output, _ = run_tiled(model, mapping, np.concatenate([x.ravel() for x in case.inputs]))
    np.testing.assert_array_equal(output.ravel(), golden(case))


def test_a_table_with_entries_outside_its_output_type_breaks_the_width_rules(tmp_path):
    model = load_case(tmp_path, CASES[0])
    table = next(node for node in model.graph if node.op_type == "Table")
    assert first_width_problem(model) is None
    table.outputs[0].metadata_props[INT_TYPE_KEY] = "int4"
    assert "has table entries outside its output type int4" in first_width_problem(model)
