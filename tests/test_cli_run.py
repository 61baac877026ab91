"""``edgec run``: one run variant at a time, the --check mismatch message (with and without a
per-layer trace), and input data the run would misread refused.

The FPGA project is the RTL of a small W4A4 network (``--emit-only``: no place and route);
its backend's ``run`` is replaced by one returning the integer reference with chosen values
changed, so that no simulation runs and the mismatch is known.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.api import input_samples
from edgec.backend import RunResult, int8_input_rows, open_project
from edgec.backends.fpga import FpgaBackend
from edgec.reference import ReferenceExecutor
from edgec.trace_compare import reference_outputs

from conftest import invoke, make_model, tensor_info

needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None,
                                    reason="iverilog is not installed (compile measures the cycles with it)")


def float_mlp():
    """x[1,8] -> Gemm (6) -> Relu -> Gemm (5)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)]
    inits = {"w1": rng.normal(size=(6, 8)), "b1": rng.normal(size=6) * 0.1,
             "w2": rng.normal(size=(5, 6)), "b2": rng.normal(size=5) * 0.1}
    return make_model(nodes, [tensor_info("x", [1, 8])], [tensor_info("y", [1, 5])],
                      {key: value.astype(np.float32) for key, value in inits.items()})


@pytest.fixture
def fpga_project(tmp_path):
    """An emitted ice40-up5k project of :func:`float_mlp` (W4A4) and four input samples, ``x.npy``."""
    samples = np.random.default_rng(5).random((16, 8)).astype(np.float32)
    model = edgec.quantize(float_mlp(), samples, weight_bits=4, activation_bits=4)
    edgec.compile(model, "ice40-up5k", tmp_path / "out", emit_only=True)
    np.save(tmp_path / "x.npy", samples[:4])
    return tmp_path


class FakeRun:
    """``FpgaBackend.run`` without simulation: the integer reference's outputs, with output
    element ``element`` of sample ``sample`` off by one; the calls it got, as ``(variant, trace)``."""

    def __init__(self, sample: int, element: int) -> None:
        self.sample, self.element, self.calls = sample, element, []

    def __call__(self, project, rows, *, variant=None, trace=False) -> RunResult:
        self.calls.append((variant, trace))
        outputs = reference_outputs(project.model, rows).copy()
        outputs[min(self.sample, len(rows) - 1), self.element] += 1
        layers = []
        if trace:  # the reference's layer values, the last one changed as the output is
            values = ReferenceExecutor(project.model).run({"x": rows[0].reshape(1, -1)}, keep_intermediates=True)
            layers = [(layer["index"], values[layer["output"]].ravel().copy()) for layer in project.manifest["layers"]]
            layers[-1][1][self.element] += 1
        return RunResult(outputs, {}, layers, f"fake {variant or 'RTL'} run of {len(rows)} samples")


def test_two_run_variants_at_once_are_refused_naming_both(tmp_path):
    for model in (tmp_path, tmp_path / "model.onnx"):  # before anything is read
        result = invoke("run", model, "--input", tmp_path / "x.npy", "--host", "--netlist")
        assert result.exit_code == 2
        assert "error: --host and --netlist choose different runs of the project (fix: pick one of --host and " \
               "--netlist)" in " ".join(result.output.split())


def test_one_run_variant_still_reaches_the_backend(tmp_path):
    result = invoke("run", tmp_path / "model.onnx", "--input", tmp_path / "x.npy", "--netlist")
    assert result.exit_code == 2 and "--netlist applies to compiled projects" in result.output


@needs_iverilog
def test_a_netlist_mismatch_names_the_output_element_without_a_rerun(fpga_project, monkeypatch):
    fake = FakeRun(sample=2, element=3)
    monkeypatch.setattr(FpgaBackend, "run", fake)
    out, x = fpga_project / "out", fpga_project / "x.npy"
    result = invoke("run", out, "--input", x, "--check", "--netlist")
    assert result.exit_code == 2, result.output
    model = open_project(out)[1].model
    expected = reference_outputs(model, int8_input_rows(model, input_samples(model, x)))[2, 3]
    message = " ".join(result.output.split())
    assert (f"error: 1 of 4 samples differ from the integer reference; first at sample 2, output element 3: "
            f"reference {expected}, got {expected + 1} (1 of 5 output values differ); the netlist run records no "
            "per-layer values to locate the first differing layer (fix: locate it with the RTL simulation: "
            f"edgec run {out} --input {x} --check)") in message
    assert fake.calls == [("netlist", False)]


@needs_iverilog
def test_an_rtl_mismatch_reruns_the_sample_with_a_trace_and_names_the_layer(fpga_project, monkeypatch):
    fake = FakeRun(sample=1, element=0)
    monkeypatch.setattr(FpgaBackend, "run", fake)
    result = invoke("run", fpga_project / "out", "--input", fpga_project / "x.npy", "--check")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "1 of 4 samples differ from the integer reference; first at sample 1, layer 1 (FullyConnected " in message
    assert "1 of 5 values differ; output element 0: reference" in message
    assert fake.calls == [(None, False), (None, True)]


@needs_iverilog
def test_an_unsigned_image_for_a_compiled_project_is_refused_not_misread(fpga_project):
    np.save(fpga_project / "image.npy", np.full((2, 8), 200, dtype=np.uint8))
    result = invoke("run", fpga_project / "out", "--input", fpga_project / "image.npy")
    assert result.exit_code == 2 and "uint8" in result.output and "float32" in result.output
