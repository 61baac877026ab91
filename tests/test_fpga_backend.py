"""The FPGA backend through the command line and the API: compile for iCE40 and AMD targets,
the report's keys, the bitstream, the bit-for-bit simulation check, and its refusals.

A user's float model is quantized here by the command line itself (``--weight-bits 4
--activation-bits 4`` and calibration data), so these tests cover the options as typed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from onnx import helper, save

import edgec
from edgec.backend import open_project
from edgec.errors import EdgecError, ToolchainError, UnsupportedModelError
from edgec.trace_compare import reference_outputs

from conftest import invoke, make_model, pool_cnn, tensor_info

ICE40_TOOLS = ("yosys", "nextpnr-ice40", "icepack", "iverilog")
needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
needs_ice40_flow = pytest.mark.skipif(any(shutil.which(t) is None for t in ICE40_TOOLS),
                                      reason=f"the iCE40 flow needs {', '.join(ICE40_TOOLS)}")
needs_yosys = pytest.mark.skipif(any(shutil.which(t) is None for t in ("yosys", "iverilog")),
                                 reason="the AMD estimate needs yosys (and iverilog to measure cycles)")
REPORT_KEYS = {"resources", "fmax_mhz", "cycles_per_inference", "inferences_per_second", "bitstream", "layers"}


def float_residual():
    """A model adding a constant, which the dataflow design does not take (only residual Adds)."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
             helper.make_node("Add", ["h", "c"], ["y"], name="skip")]
    inits = {"w": np.eye(8, dtype=np.float32), "b": np.zeros(8, np.float32),
             "c": np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)}
    return make_model(nodes, [tensor_info("x", [1, 8])], [tensor_info("y", [1, 8])], inits)


@pytest.fixture
def cnn_files(tmp_path):
    save(pool_cnn(), tmp_path / "cnn.onnx")
    samples = np.random.default_rng(5).random((16, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "calib.npy", samples)
    np.save(tmp_path / "x.npy", samples[:4])
    return tmp_path


def w4a4(tmp_path):
    return edgec.quantize(pool_cnn(), np.load(tmp_path / "calib.npy"), weight_bits=4, activation_bits=4)


@pytest.mark.slow
@needs_ice40_flow
def test_compile_for_the_up5k_writes_a_bitstream_and_its_simulation_equals_the_reference(cnn_files):
    out = cnn_files / "out"
    result = invoke("compile", cnn_files / "cnn.onnx", "--target", "ice40-up5k", "-o", out, "--calib",
                    cnn_files / "calib.npy", "--weight-bits", "4", "--activation-bits", "4")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert set(report["resources"]) == {"lut", "ff", "dsp", "bram", "spram"}
    assert 0 < report["resources"]["lut"] <= 5280 and report["fmax_mhz"] > 0
    assert report["inferences_per_second"] == pytest.approx(
        min(12.0, report["fmax_mhz"]) * 1e6 / report["cycles_per_inference"], rel=1e-3)
    bitstream = (out / report["bitstream"]).read_bytes()
    assert bitstream.find(bytes([0x7E, 0xAA, 0x99, 0x7E])) >= 0, "not an iCE40 bitstream (no preamble)"
    assert [layer["op"] for layer in report["layers"]] == ["Conv", "MaxPool", "Conv", "FullyConnected"]
    assert {"primitive", "lanes", "macs_per_dsp"} <= set(report["layers"][0]["packing"])
    assert (out / "board" / "icebreaker.pcf").is_file()
    assert "bitstream" in result.output and "inferences/s" in result.output

    result = invoke("run", out, "--input", cnn_files / "x.npy", "--check")
    assert result.exit_code == 0, result.output
    assert "check: all 4 outputs equal the integer reference bit for bit" in result.output


@needs_iverilog
def test_emit_only_simulates_bit_for_bit_and_measures_the_cycles_the_fold_model_predicts(cnn_files):
    model = w4a4(cnn_files)
    report = edgec.compile(model, "ice40-up5k", cnn_files / "rtl_only", emit_only=True)
    assert report["bitstream"] is None and "--emit-only" in report["bitstream_note"]
    assert report["resources"] is None
    backend, project = open_project(cnn_files / "rtl_only")
    rows = backend.input_rows(project.model, [{"x": x[None]} for x in np.load(cnn_files / "x.npy")])
    result = backend.run(project, rows)
    np.testing.assert_array_equal(result.outputs, reference_outputs(project.model, rows))
    traced = backend.run(project, rows[:1], trace=True)
    assert [index for index, _ in traced.trace] == list(range(len(report["layers"])))
    # Streams carry one element a cycle, so the measured interval may exceed the fold model's by
    # the pipeline's fill and drain, never undercut it.
    assert report["modelled_cycles_per_inference"] <= report["cycles_per_inference"] \
        <= 1.25 * report["modelled_cycles_per_inference"]


@needs_iverilog
def test_fps_and_max_dsp_choose_the_folding_and_an_unreachable_rate_is_refused(cnn_files):
    model = w4a4(cnn_files)
    slow = edgec.compile(model, "ice40-up5k", cnn_files / "slow", emit_only=True)
    fast = edgec.compile(model, "ice40-up5k", cnn_files / "fast", emit_only=True, fps=12e6 / 700)
    assert fast["cycles_per_inference"] < slow["cycles_per_inference"]
    assert max(layer.get("pe", 1) for layer in fast["layers"]) > 1
    with pytest.raises(EdgecError, match="out of reach") as raised:
        edgec.compile(model, "ice40-up5k", cnn_files / "never", emit_only=True, fps=1e9)
    assert "(fix:" in raised.value.one_line() and not (cnn_files / "never").exists()
    budget = edgec.compile(model, "ice40-up5k", cnn_files / "budget", emit_only=True, max_dsp=6)
    assert sum(layer["packing"]["dsps"] for layer in budget["layers"] if layer["packing"]) <= 6
    assert budget["cycles_per_inference"] < slow["cycles_per_inference"]


@pytest.mark.slow
@needs_yosys
def test_an_amd_target_reports_yosys_estimates_per_layer_and_leaves_the_vivado_script(cnn_files):
    report = edgec.compile(w4a4(cnn_files), "zcu104", cnn_files / "zcu")
    assert report["bitstream"] is None and "Vivado is not on PATH" in report["bitstream_note"]
    assert report["fmax_mhz"] is None
    assert (cnn_files / "zcu" / "vivado" / "build.tcl").read_text().count("write_bitstream") == 1
    compute = [layer for layer in report["layers"] if layer["op"] != "MaxPool"]
    assert all(layer["resources"]["lut"] > 0 for layer in compute)
    total = sum(layer["resources"]["lut"] for layer in report["layers"])
    assert total <= report["resources"]["lut"] <= total + 16  # the top adds no more than glue


def test_a_model_the_design_cannot_take_is_refused_naming_the_node(tmp_path):
    model = edgec.quantize(float_residual(), np.random.default_rng(0).random((16, 8)).astype(np.float32))
    with pytest.raises(UnsupportedModelError, match="Add") as raised:
        edgec.compile(model, "ice40-up5k", tmp_path / "out")
    assert "skip" in raised.value.one_line() and not (tmp_path / "out").exists()


def test_fpga_options_are_refused_by_the_cortex_m_backend_and_an_unknown_board_is_named(cnn_files):
    result = invoke("compile", cnn_files / "cnn.onnx", "--target", "cortex-m4", "-o", cnn_files / "m4",
                    "--calib", cnn_files / "calib.npy", "--fps", "100")
    assert result.exit_code == 2 and "the Cortex-M backend has no option fps" in result.output
    result = invoke("compile", cnn_files / "cnn.onnx", "--target", "ice40-up5k", "-o", cnn_files / "up5k",
                    "--calib", cnn_files / "calib.npy", "--board", "nonesuch")
    assert result.exit_code == 2 and "unknown board 'nonesuch'" in result.output
    assert not (cnn_files / "up5k").exists()


@needs_iverilog
def test_a_missing_tool_is_named_and_leaves_no_output(cnn_files, monkeypatch):
    model = w4a4(cnn_files)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "yosys" else real_which(name, *a, **k))
    with pytest.raises(EdgecError, match="yosys") as raised:
        edgec.compile(model, "ice40-up5k", cnn_files / "out")
    assert "apt-get install yosys" in raised.value.one_line()
    assert not (cnn_files / "out").exists()


@needs_iverilog
def test_a_failing_tool_keeps_its_log_outside_the_removed_staging_directory(cnn_files, monkeypatch):
    from edgec.backends.fpga import flow_ice40

    def failing(synthesis, pcf, work_dir, clock_mhz, **options):
        (work_dir / "pnr.log").write_text("ERROR: no placement found\n")
        raise ToolchainError("nextpnr-ice40 place and route failed: ERROR: no placement found",
                             f"see the whole log in {work_dir / 'pnr.log'}")

    synthesised = flow_ice40.Synthesis("edgec_board_top", Path("top.json"), Path("top.v"), Path("synth.log"), {},
                                       {"lut": 1, "ff": 1, "dsp": 0, "bram": 0, "spram": 0})
    monkeypatch.setattr(flow_ice40, "synthesize", lambda sources, top, work_dir, advance=None: synthesised)
    monkeypatch.setattr(flow_ice40, "place_and_route", failing)
    with pytest.raises(ToolchainError) as raised:
        edgec.compile(w4a4(cnn_files), "ice40-up5k", cnn_files / "out")
    log = Path(raised.value.hint.rsplit(" ", 1)[-1])
    assert log.read_text() == "ERROR: no placement found\n"
    assert not (cnn_files / "out").exists()
    shutil.rmtree(log.parent)


def test_a_design_larger_than_the_device_is_refused_naming_the_resource():
    from edgec.backends.fpga.project import check_fits
    from edgec.target import get_target

    up5k = get_target("ice40-up5k")
    check_fits({"lut": 5280, "ff": 10, "dsp": 8, "bram": 30, "spram": 4}, up5k)
    with pytest.raises(EdgecError) as raised:
        check_fits({"lut": 100, "ff": 10, "dsp": 2, "bram": 34, "spram": 0}, up5k)
    assert raised.value.problem == ("the design does not fit ice40-up5k: it needs 34 SB_RAM40_4K block RAMs, "
                                    "the device has 30")
