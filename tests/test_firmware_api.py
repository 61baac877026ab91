"""The generated C interface: one buffer per input and output, and a prefix per model so that
several models link into one firmware and share the kernels.

The models are TFLM golden cases (:mod:`tflm_cases`), so each run is checked against TFLM's
own output: a two-input BATCH_MATMUL, a two-output SPLIT, and two single-operator models
linked together into one host program.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edgec
from edgec.backends import cortex_m
from edgec.backends.cortex_m.emitter import api_names
from edgec.errors import EdgecError
from edgec.target import get_target

from conftest import invoke, needs_host_compiler, needs_toolchain
from tflm_cases import cases, golden

CASES = {case.name: case for case in cases()}


def _compile(tmp_path: Path, name: str, prefix: str = "edgec", core: str = "cortex-m4", **options) -> Path:
    case = CASES[name]
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(case.model)
    out = tmp_path / f"{name}-{prefix}"
    cortex_m.compile_project(edgec.load(path), get_target(core), out, name, prefix=prefix, **options)
    return out


def _sample(name: str) -> np.ndarray:
    return np.concatenate([x.ravel() for x in CASES[name].inputs])


@pytest.mark.parametrize("name", ["batch_matmul_two_inputs", "split_outputs"])
def test_each_input_and_output_gets_its_own_buffer_and_parameter(tmp_path, name):
    out = _compile(tmp_path, name, emit_only=True)
    header = (out / "include" / "edgec_model.h").read_text()
    manifest = cortex_m.emitter.read_manifest(out)
    inputs, outputs = manifest["inputs"], manifest["outputs"]
    assert f"#define EDGEC_INPUTS {len(inputs)}u" in header and f"#define EDGEC_OUTPUTS {len(outputs)}u" in header
    for kind, boundaries in (("INPUT", inputs), ("OUTPUT", outputs)):
        suffixes = [str(k) for k in range(len(boundaries))] if len(boundaries) > 1 else [""]
        for suffix, boundary in zip(suffixes, boundaries):
            assert f"#define EDGEC_{kind}{suffix}_SIZE {int(np.prod(boundary['shape']))}u" in header
    parameters = [f"const int8_t *input{k}" for k in range(len(inputs))] if len(inputs) > 1 else ["const int8_t *input"]
    parameters += [f"int8_t *output{k}" for k in range(len(outputs))] if len(outputs) > 1 else ["int8_t *output"]
    assert f"int edgec_run({', '.join(parameters)});" in header
    assert "int8_t *edgec_input_at(uint32_t k);" in header and "const int8_t *edgec_output_at(uint32_t k);" in header


@needs_toolchain
@pytest.mark.parametrize("name", ["batch_matmul_two_inputs", "split_outputs"])
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4"])
def test_models_with_several_inputs_or_outputs_reproduce_tflm_on_qemu(tmp_path, name, core):
    out = _compile(tmp_path, name, core=core)
    result = cortex_m.run_project(out, np.stack([_sample(name), _sample(name)]))
    np.testing.assert_array_equal(result.outputs, np.stack([golden(CASES[name])] * 2))


@needs_host_compiler
@pytest.mark.parametrize("name", ["batch_matmul_two_inputs", "split_outputs"])
def test_models_with_several_inputs_or_outputs_reproduce_tflm_under_sanitizers(tmp_path, name):
    out = _compile(tmp_path, name, emit_only=True)
    result = cortex_m.run_project(out, _sample(name)[None], host=True)
    np.testing.assert_array_equal(result.outputs[0], golden(CASES[name]))


_TWO_MODELS = r"""
#include <stdio.h>
#include "alpha_model.h"
#include "beta_model.h"

int main(void)
{
    static int8_t a_in[ALPHA_INPUT_SIZE], a_out[ALPHA_OUTPUT_SIZE], b_in[BETA_INPUT_SIZE], b_out[BETA_OUTPUT_SIZE];
    if (fread(a_in, 1, sizeof a_in, stdin) != sizeof a_in || fread(b_in, 1, sizeof b_in, stdin) != sizeof b_in) {
        return 1;
    }
    alpha_run(a_in, a_out);
    beta_run(b_in, b_out);
    fwrite(a_out, 1, sizeof a_out, stdout);
    fwrite(b_out, 1, sizeof b_out, stdout);
    return 0;
}
"""


def _archive(project: Path, build: Path) -> Path:
    """The project's sources compiled for the host (-Wall -Wextra -Werror) into one archive."""
    objects = []
    for source in sorted((project / "src").glob("*.c")):
        obj = build / f"{project.name}-{source.stem}.o"
        subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(project / "include"),
                        "-I", str(project / "src"), "-c", str(source), "-o", str(obj)], check=True)
        objects.append(str(obj))
    archive = build / f"lib{project.name}.a"
    subprocess.run(["ar", "rcs", str(archive), *objects], check=True)
    return archive


@needs_host_compiler
@pytest.mark.skipif(shutil.which("ar") is None, reason="needs ar (binutils)")
def test_two_prefixed_models_link_into_one_program_sharing_the_kernels(tmp_path):
    alpha = _compile(tmp_path, "prelu_channels_0", prefix="alpha", core="cortex-m3", emit_only=True)
    beta = _compile(tmp_path, "resize_bilinear_7x9", prefix="beta", core="cortex-m3", emit_only=True)
    assert (alpha / "include" / "alpha_model.h").is_file() and (beta / "src" / "beta_model.c").is_file()
    shared = sorted(p.name for p in (alpha / "src").glob("edgec_*") if (beta / "src" / p.name).is_file())
    assert "edgec_layout.c" in shared
    for name in shared:  # one build of the kernels serves both models
        assert (alpha / "src" / name).read_bytes() == (beta / "src" / name).read_bytes()
    build = tmp_path / "build"
    build.mkdir()
    main = build / "main.c"
    main.write_text(_TWO_MODELS)
    program = build / "two_models"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(alpha / "include"), "-I",
                    str(beta / "include"), str(main), str(_archive(alpha, build)), str(_archive(beta, build)),
                    "-o", str(program)], check=True)
    sample = np.concatenate([_sample("prelu_channels_0"), _sample("resize_bilinear_7x9")]).tobytes()
    result = subprocess.run([str(program)], input=sample, capture_output=True, check=True)
    expected = np.concatenate([golden(CASES["prelu_channels_0"]), golden(CASES["resize_bilinear_7x9"])])
    np.testing.assert_array_equal(np.frombuffer(result.stdout, dtype=np.int8), expected)


@pytest.mark.parametrize("prefix", ["Kws", "1kws", "int", "edgec_kws", "", "kws-model"])
def test_a_prefix_that_is_no_c_identifier_of_its_own_is_an_error(prefix):
    with pytest.raises(EdgecError, match="cannot prefix the generated C interface"):
        api_names(prefix)


def test_the_prefix_names_every_file_and_function(tmp_path):
    out = _compile(tmp_path, "prelu_channels_0", prefix="kws", emit_only=True)
    manifest = cortex_m.emitter.read_manifest(out)
    assert manifest["api"] == {"prefix": "kws", "header": "include/kws_model.h", "source": "src/kws_model.c",
                               "library": "build/libkws_model.a", "invoke": "kws_invoke", "run": "kws_run"}
    header = (out / "include" / "kws_model.h").read_text()
    assert "#define KWS_INPUT_SIZE 256u" in header and "int kws_invoke(void);" in header
    assert "edgec_input" not in header and not (out / "include" / "edgec_model.h").exists()
    assert "libkws_model.a" in (out / "Makefile").read_text()
    assert "add_library(kws_model STATIC" in (out / "CMakeLists.txt").read_text()


def test_compile_names_the_interface_from_the_command_line(tmp_path):
    path = tmp_path / "prelu.tflite"
    path.write_bytes(CASES["prelu_channels_0"].model)
    result = invoke("compile", path, "--target", "cortex-m4", "--name", "kws", "--emit-only", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "API include/kws_model.h" in " ".join(result.output.split())
    assert (tmp_path / "out" / "include" / "kws_model.h").is_file()
    bad = invoke("compile", path, "--target", "cortex-m4", "--name", "Kws", "--emit-only", "-o", tmp_path / "bad")
    assert bad.exit_code != 0 and "'Kws' cannot prefix the generated C interface" in " ".join(bad.output.split())
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()
