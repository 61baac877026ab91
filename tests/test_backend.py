"""The backend contract: lazy loading, registration without CLI edits, up-front checks, planned
kinds, and the backend-neutral per-layer comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest

import edgec
from edgec import backend as backend_module
from edgec.api import input_specs, int8_output_names
from edgec.backend import QONNX_GRAPH, Backend, Project, RunResult, backend_for, open_project
from edgec.backends.cortex_m import CortexMBackend, check_model
from edgec.data import random_samples
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.inttype import IntType, weight_type
from edgec.passes.qparams import set_int_type
from edgec.reference import ReferenceExecutor
from edgec.target import PROJECT_FILE, get_target, project_target, target_toml
from edgec.trace_compare import first_difference, reference_outputs

from conftest import invoke

HEAVY_MODULES = ("edgec.backends", "capstone", "elftools", "torch")


class FakeBackend(Backend):
    """A backend of a kind edgec has no backend for (``host``): its project is the integer
    graph, and its run is the reference executor's, with one layer's values off by one when
    ``corrupt_layer`` is set."""

    kind = "host"
    name = "fake"
    options = {"flavour": "plain"}
    corrupt_layer: int | None = None

    def check(self, model: ir.Model, target) -> None:
        for node in model.graph:
            if node.op_type == "Softmax":
                raise UnsupportedModelError(f"the fake backend has no Softmax (node '{node.name}')", "remove it")

    def compile(self, model: ir.Model, target, out_dir: Path, *, name: str, **options) -> dict:
        out_dir.mkdir(parents=True, exist_ok=True)
        nodes = [node for node in model.graph if node.op_type not in ("Quantize", "Dequantize")]
        output_name = int8_output_names(model)[0]
        manifest = {"generator": "edgec", "target": target.name, "model": name, "options": options,
                    "input": {"name": model.graph.inputs[0].name,
                              "shape": [int(d) for d in model.graph.inputs[0].shape.numpy()]},
                    "output": {"name": output_name, "shape": [int(d) for d in model.graph.outputs[0].shape.numpy()]},
                    "layers": [{"index": i, "name": n.name, "op": n.op_type, "output": n.outputs[0].name}
                               for i, n in enumerate(nodes)]}
        (out_dir / "report.json").write_text(json.dumps(manifest))
        (out_dir / PROJECT_FILE).write_text(target_toml(target))
        ir.save(model, out_dir / "model.onnx")
        return manifest

    def load_project(self, directory: Path) -> Project:
        manifest = json.loads((directory / "report.json").read_text())
        return Project(directory, manifest, project_target(directory, manifest["target"]),
                       ir.load(directory / "model.onnx"))

    def run(self, project: Project, rows: np.ndarray, *, variant: str | None = None,
            trace: bool = False) -> RunResult:
        outputs = reference_outputs(project.model, rows)
        layers = _reference_trace(project.model, project.manifest["layers"], rows[0]) if trace else []
        if self.corrupt_layer is not None:
            outputs = outputs + np.int8(1)
            layers = [(index, data + np.int8(index == self.corrupt_layer)) for index, data in layers]
        return RunResult(outputs, {"steps": [len(project.manifest["layers"])] * len(rows)}, layers,
                         f"fake run of {len(rows)} rows")

    def profile(self, project: Project, row: np.ndarray, advance):
        raise EdgecError("the fake backend does not profile")


def _reference_trace(model: ir.Model, layers: list[dict], row: np.ndarray) -> list[tuple[int, np.ndarray]]:
    executor = ReferenceExecutor(model)
    feed = row.reshape([int(d) for d in model.graph.inputs[0].shape.numpy()])
    values = executor.run({executor.input_names[0]: feed}, keep_intermediates=True)
    return [(layer["index"], values[layer["output"]].ravel()) for layer in layers]


class FakeEntryPoint:
    def __init__(self, name: str, loaded) -> None:
        self.name, self._loaded = name, loaded

    def load(self):
        return self._loaded


@pytest.fixture
def fake_in_table(monkeypatch):
    monkeypatch.setitem(backend_module.BACKENDS, "host", f"{__name__}:FakeBackend")
    monkeypatch.setattr(FakeBackend, "corrupt_layer", None)


def _rows(model: ir.Model, count: int) -> np.ndarray:
    return backend_for("cortex-m").input_rows(model, random_samples(input_specs(model), count, seed=3))


def test_import_edgec_loads_no_backend_capstone_pyelftools_or_torch():
    code = ("import sys, edgec, edgec.cli; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r} "
            f"or m.startswith('edgec.backends')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_backend_in_the_table_compiles_and_runs_through_the_api_and_the_cli(
        tmp_path, small_integer_model, fake_in_table):
    manifest = edgec.compile(small_integer_model, "host", tmp_path / "api", flavour="spicy")
    assert manifest["options"] == {"flavour": "spicy"} and manifest["target"] == "host"
    ir.save(small_integer_model, tmp_path / "m.onnx")
    result = invoke("compile", tmp_path / "m.onnx", "--target", "host", "-o", tmp_path / "cli")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'cli'}: host, {len(manifest['layers'])} layers" in result.output

    rows = _rows(small_integer_model, 3)
    np.save(tmp_path / "x.npy", rows.reshape(3, *input_specs(small_integer_model)[0].shape[1:]))
    result = invoke("run", tmp_path / "cli", "--input", tmp_path / "x.npy", "--check", "--int8",
                    "--output", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    assert "fake run of 3 rows" in result.output and "check: all 3 outputs equal" in result.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(3, -1),
                                  reference_outputs(small_integer_model, rows))
    backend, project = open_project(tmp_path / "cli")
    assert isinstance(backend, FakeBackend) and project.manifest["model"] == "m"


def test_a_wrong_backend_run_names_the_first_differing_layer(tmp_path, small_integer_model, fake_in_table,
                                                            monkeypatch):
    edgec.compile(small_integer_model, "host", tmp_path / "out")
    monkeypatch.setattr(FakeBackend, "corrupt_layer", 2)
    np.save(tmp_path / "x.npy", _rows(small_integer_model, 2).reshape(2, *input_specs(small_integer_model)[0].shape[1:]))
    result = invoke("run", tmp_path / "out", "--input", tmp_path / "x.npy", "--check")
    layer = json.loads((tmp_path / "out" / "report.json").read_text())["layers"][2]
    assert result.exit_code == 2
    assert f"2 of 2 samples differ from the integer reference; first at sample 0, layer 2 ({layer['op']} " \
           f"'{layer['name']}')" in result.output


def test_backend_options_unknown_ones_and_host_runs_are_checked(tmp_path, small_integer_model, fake_in_table):
    with pytest.raises(EdgecError, match="the fake backend has no option emit_only") as raised:
        edgec.compile(small_integer_model, "host", tmp_path / "out", emit_only=True)
    assert "its options: flavour" in raised.value.one_line()
    ir.save(small_integer_model, tmp_path / "m.onnx")
    result = invoke("compile", tmp_path / "m.onnx", "--target", "host", "-o", tmp_path / "out", "--emit-only")
    assert result.exit_code == 2 and "has no option emit_only" in result.output
    assert not (tmp_path / "out").exists()
    edgec.compile(small_integer_model, "host", tmp_path / "out")
    np.save(tmp_path / "x.npy", _rows(small_integer_model, 1).reshape(1, *input_specs(small_integer_model)[0].shape[1:]))
    result = invoke("run", tmp_path / "out", "--input", tmp_path / "x.npy", "--host")
    assert result.exit_code == 2 and ("the fake backend has no host run (fix: run the project without --host (its other runs: "
                                     "none))") in result.output


def test_an_entry_point_adds_a_backend_and_must_name_a_backend_class(monkeypatch):
    monkeypatch.setattr(backend_module, "entry_points",
                        lambda group: [FakeEntryPoint("host", FakeBackend), FakeEntryPoint("odd", dict)]
                        if group == "edgec.backends" else [])
    assert isinstance(backend_for("host"), FakeBackend)
    with pytest.raises(EdgecError, match="the backend registered for 'odd' targets is not an edgec.backend.Backend"):
        backend_for("odd")


def test_planned_and_unknown_kinds_say_what_is_missing(tmp_path, small_integer_model):
    with pytest.raises(EdgecError, match="no backend for host targets yet") as raised:
        edgec.compile(small_integer_model, "host", tmp_path / "host")
    assert "edgec run MODEL" in raised.value.hint
    with pytest.raises(EdgecError, match="no backend compiles for targets of kind 'quantum'") as raised:
        backend_for("quantum")
    assert raised.value.hint == "backends exist for: cortex-m, fpga, tile"
    ir.save(small_integer_model, tmp_path / "m.onnx")
    result = invoke("compile", tmp_path / "m.onnx", "--target", "host", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "error: no backend for host targets yet" in result.output
    assert not (tmp_path / "host").exists() and not (tmp_path / "out").exists()


def test_a_qonnx_level_backend_is_refused_until_edgec_can_feed_one(tmp_path, small_integer_model, monkeypatch):
    class QonnxBackend(FakeBackend):
        graph_level = QONNX_GRAPH

    monkeypatch.setattr(edgec.api, "backend_for_target", lambda target: QonnxBackend())
    with pytest.raises(UnsupportedModelError, match="the fake backend takes a qonnx graph"):
        edgec.compile(small_integer_model, "host", tmp_path / "out")


def _copy(model: ir.Model) -> ir.Model:
    return ir.from_proto(ir.to_proto(model))


def test_cortex_m_check_names_the_first_node_it_cannot_take(small_integer_model):
    check = CortexMBackend().check
    m4 = get_target("cortex-m4")
    check(small_integer_model, m4)
    model = _copy(small_integer_model)
    nodes = [node for node in model.graph if node.op_type not in ("Quantize", "Dequantize")]
    nodes[1].op_type, nodes[2].op_type = "Gelu", "Erf"
    with pytest.raises(UnsupportedModelError) as raised:
        check(model, m4)
    assert raised.value.problem == f"the Cortex-M backend has no kernel for Gelu (node '{nodes[1].name}')"

    model = _copy(small_integer_model)
    conv = next(node for node in model.graph if node.op_type == "Conv")
    set_int_type(conv.inputs[1], weight_type(2))
    check_model(model)  # 2..8-bit weights are held in int8 storage; their values are the width rules' concern:
    with pytest.raises(UnsupportedModelError, match=f"initializer '{conv.inputs[1].name}' holds values outside"):
        check(model, m4)
    set_int_type(conv.outputs[0], IntType(8, False))
    with pytest.raises(UnsupportedModelError) as raised:
        check(model, m4)
    assert raised.value.problem == (f"activation '{conv.outputs[0].name}' of node '{conv.name}' is uint8; the "
                                    "Cortex-M kernels take values that int8 storage holds (at most 8 bits)")


def test_compile_checks_before_writing_anything(tmp_path, small_integer_model):
    model = _copy(small_integer_model)
    next(node for node in model.graph if node.op_type == "Conv").op_type = "Gelu"
    with pytest.raises(UnsupportedModelError, match="no kernel for Gelu"):
        edgec.compile(model, "cortex-m4", tmp_path / "out", emit_only=True)
    assert not (tmp_path / "out").exists()


def test_first_difference_compares_any_manifest_and_arrays(small_integer_model):
    row = _rows(small_integer_model, 1)[0]
    nodes = [node for node in small_integer_model.graph if node.op_type not in ("Quantize", "Dequantize")]
    layers = [{"index": i, "name": n.name, "op": n.op_type, "output": n.outputs[0].name} for i, n in enumerate(nodes)]
    trace = _reference_trace(small_integer_model, layers, row)
    assert first_difference(small_integer_model, layers, row, trace) is None
    changed = trace[1][1].copy()
    changed[:3] += 1
    mismatch = first_difference(small_integer_model, layers, row, [trace[0], (1, changed), *trace[2:]])
    assert (mismatch.index, mismatch.name, mismatch.op) == (1, nodes[1].name, nodes[1].op_type)
    assert (mismatch.differing, mismatch.elements) == (3, changed.size)
    short = first_difference(small_integer_model, layers, row, [(2, trace[2][1][:-1])])
    assert (short.index, short.differing, short.elements) == (2, trace[2][1].size, trace[2][1].size)
