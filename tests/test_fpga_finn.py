"""The FINN flow: the plan as FINN's QONNX graph, FINN's build and numpy execution, the CLI.

The graph and error tests need only edgec's environment. The build tests need FINN's
(``scripts/setup-finn.sh``; ``scripts/setup.sh`` makes it, so CI has it) and skip without it,
saying so; they are in the slow tier (FINN's import alone takes 6-10 s).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess

import numpy as np
import onnx
import pytest
from onnx import save
from test_fpga_backend import cnn_files  # noqa: F401, F811 (a fixture)

from edgec.backends.fpga import finn_flow
from edgec.backends.fpga.dataflow_model import run_plan
from edgec.backends.fpga.finn_graph import check_finn_plan, finn_model, range_datatype, stream_offsets
from edgec.backends.fpga.layers import AddLayer, PoolLayer, Window
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.inttype import IntType

from conftest import invoke
from fpga_rtl_plans import PLANS, plan, random_rows


def _finn_available() -> bool:
    try:
        finn_flow.finn_python()
    except EdgecError:
        return False
    return True


needs_finn = pytest.mark.skipif(not _finn_available(), reason="FINN's environment is absent: run "
                                "scripts/setup-finn.sh (or set EDGEC_FINN_PYTHON)")
ZCU104, PYNQ_Z2 = "xczu7ev-ffvc1156-2-e", "xc7z020clg400-1"  # DSP48E2 and DSP48E1 parts
#: The plans FINN takes (``pool`` pads its max pool, which FINN's pool unit cannot).
FINN_PLANS = [name for name in PLANS if name != "pool"]


def unfolded(layers):
    return [dataclasses.replace(layer, pe=1, simd=1) if hasattr(layer, "pe") else layer for layer in layers]


def annotations(model: onnx.ModelProto) -> dict[str, dict[str, str]]:
    return {a.tensor_name: {e.key: e.value for e in a.quant_parameter_tensor_names}
            for a in model.graph.quantization_annotation}


def test_range_datatypes_are_the_narrowest():
    assert [range_datatype(*r) for r in [(0, 15), (0, 255), (-8, 7), (-9, 7), (0, 1), (-1, 0), (-128, 127)]] == \
        ["UINT4", "UINT8", "INT4", "INT5", "UINT1", "INT1", "INT8"]


def test_graph_keeps_widths_and_layouts():
    model = finn_model(unfolded(plan("chain")), "chain")
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Im2Col", "MatMul", "MultiThreshold", "MaxPoolNHWC", "Im2Col", "MatMul", "MultiThreshold",
                   "Reshape", "MatMul", "MultiThreshold"]
    notes = annotations(model)
    assert notes["global_in"] == {"finn_datatype": "UINT4", "tensor_layout": "['N', 'H', 'W', 'C']"}
    assert notes["L0_weights"]["finn_datatype"] == "INT4"
    assert notes["L3_flat"]["tensor_layout"] == "['N', 'C']"
    assert notes["global_out"]["finn_datatype"] == "INT4"


def test_a_padded_stream_is_offset_by_its_zero_point():
    layers = unfolded(plan("conv_s2"))  # pads with 5, its input is uint4
    assert stream_offsets(layers) == [5]
    model = finn_model(layers, "conv_s2")
    im2col = model.graph.node[0]
    assert {a.name: onnx.helper.get_attribute_value(a) for a in im2col.attribute}["pad_value"] == 0
    assert annotations(model)["global_in"]["finn_datatype"] == "INT5"  # [0, 15] - 5
    thresholds = onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "L0_thresholds"))
    layer = layers[0]
    np.testing.assert_array_equal(thresholds, layer.thresholds - 5 * layer.weights.sum(axis=1, keepdims=True))


def test_what_finn_cannot_build_is_named():
    u4 = IntType(4, False)
    add = AddLayer(2, "skip", "Add", "s", u4, u4, u4, 6, 0, np.arange(16), np.arange(16), np.zeros((1, 15), int))
    with pytest.raises(UnsupportedModelError, match="'skip' .*residual adds"):
        check_finn_plan([add])
    with pytest.raises(UnsupportedModelError, match="'pool0' .*no padding"):
        finn_model(plan("pool"), "pool")
    square = PoolLayer(0, "p", "MaxPool", "p", IntType(4, True), Window(4, 4, 2, (2, 2), (2, 2), (0, 0, 0, 0), -8))
    finn_model([square], "pool")


def test_missing_environment_names_the_setup_script(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEC_FINN_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(EdgecError, match="not an executable Python") as error:
        finn_flow.finn_python()
    assert "setup-finn.sh" in error.value.hint
    monkeypatch.delenv("EDGEC_FINN_PYTHON")
    monkeypatch.setattr(finn_flow.sys, "prefix", str(tmp_path / ".venv"))
    monkeypatch.setattr(finn_flow, "__file__", str(tmp_path / "a" / "b" / "c" / "finn_flow.py"))
    with pytest.raises(EdgecError, match="needs FINN's environment") as error:
        finn_flow.finn_python()
    assert "scripts/setup-finn.sh" in error.value.hint


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "cortex-m3", "--flow", "finn"], "the Cortex-M backend has no option flow"),
    (["--target", "ice40-up5k", "--flow", "finn"], "FINN builds for AMD parts"),
    (["--target", "zcu104", "--flow", "vivado"], "no FPGA flow 'vivado'"),
    (["--target", "zcu104", "--flow", "finn", "--max-dsp", "4"], "the FINN flow has no max-dsp option"),
])
def test_flow_errors_are_one_line(cnn_files, args, message):  # noqa: F811
    out = cnn_files / "out"
    result = invoke("compile", cnn_files / "cnn.onnx", "-o", out, "--calib", cnn_files / "calib.npy", *args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_folding_config_needs_the_finn_flow(cnn_files):  # noqa: F811
    (cnn_files / "fold.json").write_text("{}")
    result = invoke("compile", cnn_files / "cnn.onnx", "-o", cnn_files / "out", "--calib", cnn_files / "calib.npy",
                    "--target", "zcu104", "--folding-config", cnn_files / "fold.json")
    assert result.exit_code != 0 and "--folding-config is a FINN folding file" in result.output


def _driver(command: str, request: dict, work) -> dict:
    request = {**request, "result": str(work / f"{command}.json")}
    (work / f"{command}-request.json").write_text(json.dumps(request))
    done = subprocess.run([str(finn_flow.finn_python()), "-P", str(finn_flow.DRIVER), command,
                           str(work / f"{command}-request.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((work / f"{command}.json").read_text())


@pytest.mark.slow
@needs_finn
@pytest.mark.parametrize(("name", "part"), [(name, ZCU104) for name in FINN_PLANS]
                         + [("fc_int8", PYNQ_Z2), ("chain", PYNQ_Z2)])
def test_finn_executes_the_plan_bit_for_bit(tmp_path, name, part):
    layers = unfolded(plan(name))
    save(finn_model(layers, name), tmp_path / "model.onnx")
    built = _driver("build", {"model": str(tmp_path / "model.onnx"), "output_dir": str(tmp_path / "out"),
                              "build_dir": str(tmp_path / "codegen"), "fpga_part": part,
                              "clock_ns": 10.0, "target_fps": None, "folding_config": None, "impl_style": "rtl",
                              "board": None, "vendor_steps": False}, tmp_path)
    assert built["error"] is None and built["steps"][-1]["name"] == "step_hw_codegen"
    mvaus = [n["op_type"] for n in built["nodes"] if n["op_type"].startswith("MVAU")]
    assert len(mvaus) == sum(hasattr(layer, "weights") for layer in layers)
    if part == ZCU104:  # DSP48E2: FINN's RTL MVU; DSP48E1 takes it only for narrow-range weights
        assert mvaus == ["MVAU_rtl"] * len(mvaus)
    rows = random_rows(layers, 12)
    np.save(tmp_path / "in.npy", rows - stream_offsets(layers)[0])
    run = _driver("execute", {"model": built["execution_model"], "inputs": str(tmp_path / "in.npy"),
                              "outputs": str(tmp_path / "out.npy")}, tmp_path)
    assert run["error"] is None
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), run_plan(layers, rows)[0])


@pytest.mark.slow
@needs_finn
def test_compile_with_the_finn_flow_and_check_it(cnn_files):  # noqa: F811
    out = cnn_files / "out"
    result = invoke("compile", cnn_files / "cnn.onnx", "--target", "zcu104", "-o", out, "--calib",
                    cnn_files / "calib.npy", "--weight-bits", "4", "--activation-bits", "4", "--flow", "finn",
                    "--fps", "50000")
    assert result.exit_code == 0, result.output
    assert "through FINN" in result.output and "step_hw_ipgen: Vitis HLS" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["flow"] == "finn" and report["finn"]["stopped_after"] == "step_hw_codegen"
    assert [layer["op"] for layer in report["layers"]] == ["Conv", "MaxPool", "Conv", "FullyConnected"]
    fps = report["inferences_per_second"]
    assert fps >= 50000 and report["cycles_per_inference"] == max(layer["cycles"] for layer in report["layers"])
    assert report["resources"]["dsp"] == sum(n["dsp"] for layer in report["layers"] for n in layer["finn_nodes"])
    for name in ("estimate_layer_cycles.json", "estimate_layer_resources.json", "auto_folding_config.json"):
        assert (out / "finn" / "report" / name).is_file()
    assert (out / "finn" / "intermediate_models" / "step_streamline.onnx").is_file()
    assert list((out / "finn" / "codegen").glob("code_gen_ipgen_MVAU_rtl_0_*/MVAU_rtl_0_wrapper.v"))
    assert str(cnn_files) in (out / "finn" / "intermediate_models" / "step_hw_codegen.onnx").read_bytes().decode(
        "latin-1") and ".edgec-" not in (out / "finn" / "intermediate_models" / "step_hw_codegen.onnx"
                                          ).read_bytes().decode("latin-1")

    result = invoke("run", out, "--input", cnn_files / "x.npy", "--check")
    assert result.exit_code == 0, result.output
    assert "check: all 4 outputs equal the integer reference bit for bit" in result.output

    folding = json.loads((out / "finn" / "report" / "auto_folding_config.json").read_text())
    folding["MVAU_rtl_0"].update(PE=2, SIMD=1)
    (cnn_files / "fold.json").write_text(json.dumps(folding))
    result = invoke("compile", cnn_files / "cnn.onnx", "--target", "zcu104", "-o", out, "--calib",
                    cnn_files / "calib.npy", "--weight-bits", "4", "--activation-bits", "4", "--flow", "finn",
                    "--folding-config", cnn_files / "fold.json")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["layers"][0]["pe"] == 2 and report["finn"]["folding"] == "file fold.json"
