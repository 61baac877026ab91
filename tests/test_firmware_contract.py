"""What the generated C promises a firmware engineer, and how edgec treats their project directory.

* the arena keeps the C input and output apart, and the host harness (which writes each next
  input before it reads the previous output) proves it bit for bit;
* the header states the input layout and what edgec_invoke() returns;
* the optimisation level is an overridable default and the arena and weights can be placed in
  named sections;
* recompiling keeps the user's files, cleans stale staging directories, and path problems are
  one-line errors;
* ``--emit-only`` writes the project without any toolchain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import helper

import edgec
from edgec import project_dir
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.backends.cortex_m.memory_plan import Buffer, plan_arena
from edgec.backends.cortex_m.network import build_network
from edgec.data import random_samples
from edgec.errors import EdgecError, EdgecWarning, SizeLimitError
from edgec.target import get_target

from conftest import (
    big_fc_model,
    emit_project,
    invoke,
    make_model,
    needs_host_compiler,
    needs_toolchain,
    quantized_shared_model,
    small_conv_model,
    small_tflite_model,
    tensor_info,
)


def io_ranges(network) -> tuple[range, range]:
    start_in, start_out = network.offsets[network.input.value.name], network.offsets[network.output.value.name]
    return range(start_in, start_in + network.input.size), range(start_out, start_out + network.output.size)


# -- 1. input and output apart -------------------------------------------------------------

def test_the_planner_keeps_apart_pairs_apart_at_no_cost_when_a_gap_fits():
    buffers = [Buffer("in", 64, 0, 1), Buffer("mid", 64, 1, 2), Buffer("t", 32, 2, 3), Buffer("out", 32, 3, 4)]
    assert plan_arena(buffers, 8).offsets["out"] == 32  # unconstrained: inside the dead input
    plan = plan_arena(buffers, 8, apart=[("in", "out")])
    assert plan.offsets == {"in": 0, "mid": 64, "t": 0, "out": 64}
    assert plan.size == 128 and plan.apart_cost == 0


def test_the_planner_pays_at_most_the_smaller_buffer_to_keep_a_pair_apart():
    buffers = [Buffer("in", 64, 0, 1), Buffer("mid", 64, 1, 2), Buffer("out", 16, 2, 3)]
    assert plan_arena(buffers, 8).offsets["out"] == 0
    plan = plan_arena(buffers, 8, apart=[("in", "out")])
    assert plan.offsets == {"in": 0, "mid": 64, "out": 128}
    assert plan.size == 144 and plan.apart_cost == 16



def test_a_constrained_plan_smaller_than_the_unconstrained_one_costs_nothing():
    """Greedy first fit is no optimum: here keeping b6 and b1 apart happens to pack tighter."""
    specs = [(7, 1, 4), (37, 7, 11), (19, 0, 0), (48, 0, 3), (23, 7, 11), (46, 4, 5), (48, 5, 6), (47, 7, 10),
             (46, 2, 5), (35, 6, 7), (62, 8, 12)]
    buffers = [Buffer(f"b{i}", size, first, last) for i, (size, first, last) in enumerate(specs)]
    plan = plan_arena(buffers, 4, apart=[("b6", "b1")])
    assert (plan.size, plan_arena(buffers, 4).size, plan.apart_cost) == (176, 180, 0)

lifetimes = st.lists(st.tuples(st.integers(1, 64), st.integers(0, 10), st.integers(0, 4)), min_size=2, max_size=12)


@given(lifetimes, st.data())
def test_apart_buffers_never_share_a_byte(specs, data):
    buffers = [Buffer(f"b{i}", size, first, first + length) for i, (size, first, length) in enumerate(specs)]
    a, b = data.draw(st.lists(st.sampled_from(buffers), min_size=2, max_size=2, unique=True))
    shared, plan = plan_arena(buffers, 4), plan_arena(buffers, 4, apart=[(a.name, b.name)])
    start_a, start_b = plan.offsets[a.name], plan.offsets[b.name]
    assert start_a + a.size <= start_b or start_b + b.size <= start_a
    for x, y in ((x, y) for x in buffers for y in buffers if x is not y and x.overlaps_in_time(y)):
        assert plan.offsets[x.name] + x.size <= plan.offsets[y.name] or \
            plan.offsets[y.name] + y.size <= plan.offsets[x.name]
    smaller = (min(a.size, b.size) + 3) // 4 * 4
    assert plan.apart_cost == max(0, plan.size - shared.size) and plan.apart_cost <= smaller


def test_the_network_keeps_the_c_input_and_output_apart(small_integer_model):
    shared = build_network(small_integer_model, dsp=True, separate_io=False)
    apart = build_network(small_integer_model, dsp=True)
    assert not set(io_ranges(apart)[0]) & set(io_ranges(apart)[1])
    assert apart.plan.size <= shared.plan.size + (min(apart.input.size, apart.output.size) + 7) // 8 * 8


def test_the_separation_costs_at_most_the_smaller_buffer_on_the_autoencoder():
    # the plan of a core without DSP (on DSP cores the first layer's prepared column, in scratch,
    # leaves room for the separation at no cost)
    network = build_network(quantized_shared_model("ad", seed=11), dsp=False)
    assert not set(io_ranges(network)[0]) & set(io_ranges(network)[1])
    assert network.io_separation_bytes == 512 <= network.output.size


def _one_op_model(node, shape_in, shape_out):
    model = make_model([node], [tensor_info("x", shape_in)], [tensor_info("y", shape_out)], {})
    return edgec.quantize(model, np.random.default_rng(0).normal(size=(16, *shape_in[1:])).astype(np.float32))


@needs_host_compiler
@pytest.mark.parametrize("node, shape_in, shape_out, kernel", [
    (helper.make_node("Relu", ["x"], ["y"]), [1, 40], [1, 40], "edgec_lookup"),      # in place unless apart
    (helper.make_node("Flatten", ["x"], ["y"]), [1, 4, 10], [1, 40], "memcpy"),     # a view unless apart
])
def test_an_output_that_would_alias_the_input_gets_its_own_buffer(tmp_path, node, shape_in, shape_out, kernel):
    integer = _one_op_model(node, shape_in, shape_out)
    network = build_network(integer, dsp=False)
    assert not set(io_ranges(network)[0]) & set(io_ranges(network)[1])
    report = cortex_m.compile_project(integer, get_target("cortex-m3"), tmp_path / "out", "m", emit_only=True)
    assert [layer["kernel"] for layer in report["layers"]] == [kernel]
    inputs = cortex_m.int8_inputs(integer, random_samples(input_specs(integer), 4, seed=1))
    host = cortex_m.run_project(tmp_path / "out", inputs, host=True)
    np.testing.assert_array_equal(host.outputs, cortex_m.reference_outputs(integer, inputs))


@needs_host_compiler
def test_the_next_input_may_be_written_while_the_last_output_is_read(tmp_path, monkeypatch):
    """The host harness (ASan/UBSan) reads sample k+1 into edgec_input() before it writes out
    output k: bit-exact with apart buffers; with shared ones (the read-ahead forced) every output
    but the last is lost, and the harness of such a project writes each output first. The
    autoencoder is the model whose shared plan (on the M3) puts its output over its input."""
    model = quantized_shared_model("ad", seed=11)
    inputs = cortex_m.int8_inputs(model, random_samples(input_specs(model), 6, seed=4))
    expected = cortex_m.reference_outputs(model, inputs)
    shared_network = build_network(model, dsp=False, separate_io=False)
    assert set(io_ranges(shared_network)[0]) & set(io_ranges(shared_network)[1])

    def emit_m3(out, **kwargs):
        cortex_m.compile_project(model, get_target("cortex-m3"), out, "model", emit_only=True, **kwargs)

    emit_m3(tmp_path / "apart")
    np.testing.assert_array_equal(cortex_m.run_project(tmp_path / "apart", inputs, host=True).outputs, expected)
    emit_m3(tmp_path / "shared", separate_io=False)
    np.testing.assert_array_equal(cortex_m.run_project(tmp_path / "shared", inputs, host=True).outputs, expected)
    emit_m3(tmp_path / "read_ahead", separate_io=False)
    monkeypatch.setenv("EXTRA_CFLAGS", "-DEDGEC_HARNESS_READ_AHEAD=1")
    overwritten = cortex_m.run_project(tmp_path / "read_ahead", inputs, host=True).outputs
    assert all(not np.array_equal(overwritten[i], expected[i]) for i in range(5))
    np.testing.assert_array_equal(overwritten[5], expected[5])


def test_the_header_states_the_contract_of_each_plan(tmp_path, small_integer_model):
    emit_project(small_integer_model, tmp_path / "apart")
    emit_project(small_integer_model, tmp_path / "shared", separate_io=False)
    apart = (tmp_path / "apart" / "include" / "edgec_model.h").read_text()
    shared = (tmp_path / "shared" / "include" / "edgec_model.h").read_text()
    assert "edgec_invoke() may overwrite the input" in apart
    assert "valid from the return of edgec_invoke() until the next call starts" in apart
    assert "never share a byte: the next input may be written" in apart and "may share bytes" not in apart
    assert "may share bytes (compiled with --overlap-io): read the output" in shared
    report = json.loads((tmp_path / "shared" / "report.json").read_text())
    assert report["ram"]["io_separation_bytes"] == 0 and any("--overlap-io" in note for note in report["notes"])


# -- 2. header comments ------------------------------------------------------------------------

def test_the_header_names_the_input_layout_of_onnx_and_tflite_models(tmp_path, small_integer_model):
    emit_project(small_integer_model, tmp_path / "onnx")
    emit_project(small_tflite_model(tmp_path), tmp_path / "tflite")
    onnx_header = (tmp_path / "onnx" / "include" / "edgec_model.h").read_text()
    tflite_header = (tmp_path / "tflite" / "include" / "edgec_model.h").read_text()
    assert "(NCHW, as EDGEC_INPUT_SHAPE)" in onnx_header and "EDGEC_INPUT_SHAPE { 1, 3, 8, 8 }" in onnx_header
    assert "(NHWC, as EDGEC_INPUT_SHAPE)" in tflite_header and "EDGEC_INPUT_SHAPE { 1, 5, 5, 2 }" in tflite_header
    assert "NCHW" not in tflite_header
    assert json.loads((tmp_path / "tflite" / "report.json").read_text())["input"]["layout"] == "NHWC"


def test_edgec_invoke_returns_the_zero_the_header_documents(tmp_path, small_integer_model):
    emit_project(small_integer_model, tmp_path / "out")
    header = (tmp_path / "out" / "include" / "edgec_model.h").read_text()
    source = (tmp_path / "out" / "src" / "edgec_model.c").read_text()
    assert re.search(r"Returns 0[^/]*\*/\nint edgec_invoke\(void\);", header)
    body = source.split("int edgec_invoke(void)\n{\n")[1].split("\n}\n")[0]
    assert re.findall(r"\breturn\b[^;]*;", body) == ["return 0;"]


# -- 3. optimisation flags and section placement --------------------------------------------------

def symbol_sections(objdump_output: str) -> dict[str, str]:
    """Symbol name -> section, from ``objdump -t``."""
    sections = {}
    for line in objdump_output.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-3].startswith("."):
            sections[parts[-1]] = parts[-3]
    return sections


PLACEMENT = ['-DEDGEC_ARENA_SECTION=__attribute__((section(".myram")))',
             '-DEDGEC_WEIGHTS_SECTION=__attribute__((section(".myflash")))']


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("objdump") is None, reason="needs gcc and objdump")
@pytest.mark.parametrize("placement", [False, True])
def test_the_placement_macros_put_the_arena_and_weights_in_named_sections(tmp_path, small_integer_model, placement):
    emit_project(small_integer_model, tmp_path / "out")
    obj = tmp_path / "model.o"
    subprocess.run(["gcc", "-std=c99", "-O2", "-fno-pic", "-Wall", "-Wextra", "-Werror", "-c", "-Iinclude", "-Isrc",
                    *(PLACEMENT if placement else []), "src/edgec_model.c", "-o", str(obj)],
                   cwd=tmp_path / "out", check=True)
    sections = symbol_sections(subprocess.run(["objdump", "-t", str(obj)], capture_output=True, text=True,
                                              check=True).stdout)
    constants = {name: section for name, section in sections.items() if name.startswith("layer")}
    assert constants
    if placement:
        assert sections["edgec_arena"] == ".myram" and set(constants.values()) == {".myflash"}
    else:
        assert sections["edgec_arena"] == ".bss" and all(s.startswith(".rodata") for s in constants.values())


def cmake_command(project, build, *definitions) -> str:
    """The compile command CMake configures for src/edgec_model.c."""
    subprocess.run(["cmake", "-S", str(project), "-B", str(build), "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                    *definitions], check=True, capture_output=True)
    commands = json.loads((build / "compile_commands.json").read_text())
    return next(c["command"] for c in commands if c["file"].endswith("edgec_model.c"))


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("gcc") is None, reason="needs cmake and gcc")
def test_cmake_optimisation_and_placement_are_overridable(tmp_path, small_integer_model):
    project = tmp_path / "out"
    emit_project(small_integer_model, project)
    assert " -O2 " in cmake_command(project, tmp_path / "default")
    custom = cmake_command(project, tmp_path / "os", "-DEDGEC_OPT_FLAGS=-Os -g")
    assert " -Os -g " in custom and "-O2" not in custom
    assert not re.search(r" -O\w* ", cmake_command(project, tmp_path / "none", "-DCMAKE_BUILD_TYPE=", "-DEDGEC_OPT_FLAGS="))
    build = tmp_path / "placed"
    cmake_command(project, build, *PLACEMENT)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    obj = next(build.rglob("edgec_model.c.o"))
    sections = symbol_sections(subprocess.run(["objdump", "-t", str(obj)], capture_output=True, text=True,
                                              check=True).stdout)
    assert sections["edgec_arena"] == ".myram"
    assert {s for name, s in sections.items() if name.startswith("layer")} == {".myflash"}


# -- 4. the project directory ----------------------------------------------------------------------

def test_recompiling_keeps_the_files_a_user_added(tmp_path, small_integer_model):
    out = tmp_path / "out"
    first = emit_project(small_integer_model, out)
    assert "src/edgec_model.c" in first["files"] and "report.json" in first["files"]
    (out / "my_main.c").write_text("int main(void) { return 0; }\n")
    (out / "app").mkdir()
    (out / "app" / "board.h").write_text("#define BOARD 1\n")
    (out / "build").mkdir()
    (out / "build" / "stale.o").write_text("old build output")
    (out / "src" / "edgec_model.c").write_text("edited by hand")
    with pytest.warns(EdgecWarning, match=r"kept 2 files edgec did not write in .*: app/board.h, my_main.c"):
        second = emit_project(small_integer_model, out)
    assert (out / "my_main.c").read_text() == "int main(void) { return 0; }\n"
    assert (out / "app" / "board.h").read_text() == "#define BOARD 1\n"
    assert not (out / "build").exists()
    assert (out / "src" / "edgec_model.c").read_text().startswith("/* generated by edgec")
    assert second["files"] == first["files"] and "my_main.c" not in second["files"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_user_file_where_the_new_project_writes_is_refused(tmp_path, small_integer_model, rng):
    out = tmp_path / "out"
    emit_project(small_integer_model, out)
    (out / "src" / "edgec_softmax.c").write_text("my softmax")
    softmax = small_conv_model(rng, batch=1, extra_nodes=[helper.make_node("Softmax", ["g"], ["s"], axis=1)])
    integer = edgec.quantize(softmax, rng.random((16, 3, 8, 8), dtype=np.float32))
    before = (out / "report.json").read_text()
    with pytest.raises(EdgecError) as raised:
        emit_project(integer, out)
    assert "src/edgec_softmax.c' was not written by edgec" in raised.value.one_line()
    assert (out / "src" / "edgec_softmax.c").read_text() == "my softmax"
    assert (out / "report.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_compile_killed_by_sigkill_leaves_staging_that_the_next_compile_removes(tmp_path, small_integer_model):
    out = tmp_path / "out"
    code = ("import os, signal\nfrom pathlib import Path\n"
            "from edgec.project_dir import staged_project\n"
            f"with staged_project(Path({str(out)!r}), []) as staging:\n"
            "    (staging / 'half.c').write_text('x')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    stale = list(tmp_path.glob(".out.edgec-*"))
    assert len(stale) == 1 and (stale[0] / "half.c").exists()
    in_use = tmp_path / f".out.edgec-{os.getpid()}-running"
    in_use.mkdir()
    emit_project(small_integer_model, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [in_use.name, "out"]


def test_an_old_project_renamed_aside_by_a_killed_compile_comes_back(tmp_path, small_integer_model):
    emit_project(small_integer_model, tmp_path / "elsewhere")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    aside = tmp_path / f".out.edgec-{dead.stdout.strip()}-abc-old"
    (tmp_path / "elsewhere").rename(aside)
    project_dir.clean_stale(tmp_path / "out")
    assert project_dir.is_edgec_project(tmp_path / "out") and not aside.exists()


def test_path_options_report_one_line_errors(tmp_path, model_path, calib_path):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()
    f, d = str(tmp_path / "a_file"), str(tmp_path / "a_dir")
    cases = [
        ("compile", model_path, "-t", "cortex-m4", "--calib", calib_path, "-o", f),
        ("quantize", model_path, "--calib", calib_path, "-o", d),
        ("quantize", model_path, "--calib", calib_path, "-o", tmp_path / "q.onnx", "--dump-dir", f),
        ("run", model_path, "--calib", calib_path, "--input", d),
        ("run", model_path, "--calib", calib_path, "--input", f, "--output", d),
        ("profile", model_path, "-t", "cortex-m4", "--input", d),
        ("profile", model_path, "-t", "cortex-m4", "--json", d),
        ("profile", model_path, "-t", "cortex-m4", "--csv", d),
        ("profile", model_path, "-t", "cortex-m4", "--plot", d),
    ]
    for args in cases:
        result = invoke(*args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, (args, result.output)
        assert lines[0].startswith("error: ") and "(fix: " in lines[0] and "Usage" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a_file", "a_dir", model_path.name,
                                                                 calib_path.name])



@pytest.mark.parametrize("output", [".", ".."])
def test_the_current_directory_is_never_swapped_out_as_a_project(tmp_path, small_integer_model, monkeypatch, output):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(EdgecError) as raised:
        emit_project(small_integer_model, Path(output))
    assert "current directory" in raised.value.one_line() and "-o project" in raised.value.one_line()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"] and not any(here.iterdir())

# -- 5. --emit-only ------------------------------------------------------------------------------

def test_emit_only_needs_no_toolchain(tmp_path, model_path, calib_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    result = invoke("compile", model_path, "--calib", calib_path, "-t", "cortex-m4", "-o", tmp_path / "out",
                    "--emit-only")
    assert result.exit_code == 0, result.output
    assert "not built: weights 288 B, arena 488 B; flash and stack not measured" in result.output
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["built"] is False
    assert report["flash"]["total"] is None and report["ram"]["stack_bound"] is None
    assert report["flash"]["weights"] == sum(layer["weight_bytes"] for layer in report["layers"]) == 288
    assert report["ram"]["arena"] == 488 and any("--emit-only" in note for note in report["notes"])
    assert all((out / name).is_file() for name in report["files"])
    assert not (out / "build").exists()
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    run = invoke("run", out, "--input", tmp_path / "x.npy")
    assert run.exit_code == 2 and "is not installed (fix: sudo apt-get install" in run.output


def test_emit_only_still_refuses_weights_beyond_the_part(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    integer = edgec.quantize(big_fc_model(), np.random.default_rng(0).random((16, 1024), dtype=np.float32))
    with pytest.raises(SizeLimitError) as raised:
        cortex_m.compile_project(integer, get_target("cortex-m3"), tmp_path / "big", "big", emit_only=True)
    assert re.search(r"flash 1,1\d\d,\d{3} B > 1,048,576 B", raised.value.one_line())
    assert not (tmp_path / "big").exists()


@needs_toolchain
def test_an_emitted_project_is_built_and_measured_when_first_run(tmp_path, small_integer_model):
    emit_project(small_integer_model, tmp_path / "out")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report, _, model = cortex_m.load_project(tmp_path / "out")
    assert report["built"] is True and report["flash"]["total"] > report["flash"]["weights"] > 0
    assert report["ram"]["stack_bound"] > 0 and json.loads((tmp_path / "out" / "report.json").read_text()) == report
    inputs = cortex_m.int8_inputs(model, random_samples(input_specs(model), 2, seed=8))
    result = cortex_m.run_project(tmp_path / "out", inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(model, inputs))
