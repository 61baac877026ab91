"""The command line: every command runs, documents itself and writes what it says."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import edgec
from edgec.backend import dequantized_outputs
from edgec.cli import cli

from conftest import invoke


@pytest.fixture
def input_path(tmp_path, rng):
    """Three input samples for the small model, saved as ``x.npy``."""
    path = tmp_path / "x.npy"
    np.save(path, rng.random((3, 3, 8, 8), dtype=np.float32))
    return path


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and edgec.__version__ in result.output


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_targets_lists_the_cortex_m_cores():
    result = invoke("targets")
    assert result.exit_code == 0
    for name in ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "mps2-an385", "STM32"):
        assert name in result.output


def test_inspect_table_and_json(model_path):
    table = invoke("inspect", model_path)
    assert table.exit_code == 0 and "Conv" in table.output and "MACs" in table.output
    summary = json.loads(invoke("inspect", model_path, "--json").output)
    assert summary["kind"] == "float"
    assert summary["total_macs"] == 4 * 8 * 8 * 27 + 2 * 4


def test_quantize_writes_a_checked_integer_graph_and_run_executes_it(tmp_path, model_path, calib_path, input_path):
    out = tmp_path / "int8.onnx"
    result = invoke("quantize", model_path, "--calib", calib_path, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    proto = onnx.load(out)
    onnx.checker.check_model(proto)
    assert {node.domain for node in proto.graph.node} == {"edgec"}
    assert json.loads(invoke("inspect", out, "--json").output)["kind"] == "integer"

    result = invoke("run", out, "--input", input_path, "--output", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 2) and y.dtype == np.float32
    model = edgec.load(out)
    expected = np.concatenate([o["g"] for o in edgec.run(model, input_path)])
    np.testing.assert_array_equal(y, expected)

    result = invoke("run", out, "--input", input_path, "--int8", "--output", tmp_path / "y8.npy")
    assert result.exit_code == 0, result.output
    y8 = np.load(tmp_path / "y8.npy")
    assert y8.dtype == np.int8
    np.testing.assert_array_equal(dequantized_outputs(model, y8), y)  # y is these int8 outputs dequantized


def test_run_quantizes_a_float_model_on_the_fly(tmp_path, model_path, calib_path, input_path):
    result = invoke("run", model_path, "--calib", calib_path, "--input", input_path, "--output", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    assert "float32 [3, 2]" in result.output
    expected = np.concatenate([o["g"] for o in edgec.run(edgec.quantize(model_path, calib_path), input_path)])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


def test_quantize_is_deterministic_and_accepts_every_calibration_method(tmp_path, model_path, calib_path):
    outputs = []
    for index, method in enumerate(["minmax", "minmax", "percentile", "entropy"]):
        out = tmp_path / f"q{index}.onnx"
        result = invoke("quantize", model_path, "--calib", calib_path, "--method", method, "-o", out)
        assert result.exit_code == 0, result.output
        assert json.loads(invoke("inspect", out, "--json").output)["kind"] == "integer"
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_dump_dir_saves_every_pass(tmp_path, model_path, calib_path):
    dump = tmp_path / "dump"
    result = invoke("quantize", model_path, "--calib", calib_path, "-o", tmp_path / "q.onnx",
                    "--dump-dir", dump)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in dump.iterdir())
    assert names[0].startswith("00_AbsorbQONNXPass") and names[1].startswith("01_AbsorbQDQPass")
    assert any("QuantizePass" in n for n in names)
    assert any("FuseActivationsPass" in n for n in names)


def test_single_rounding_is_recorded_in_the_model(tmp_path, model_path, calib_path):
    out = tmp_path / "single.onnx"
    assert invoke("quantize", model_path, "--calib", calib_path, "--rounding", "single",
                  "-o", out).exit_code == 0
    assert {p.key: p.value for p in onnx.load(out).metadata_props}["edgec.rounding"] == "single"
