"""edgec profile: measured per-layer instructions, estimated cycles, memory, outputs."""

from __future__ import annotations

import json

import onnx
import pytest
from click.testing import CliRunner

import edgec
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.backends.cortex_m.cycle_model import MODELS, classify, register_count
from edgec.backends.cortex_m.trace import executions, traced_layer_cycles, traced_layer_traces
from edgec.cli import cli
from edgec.data import random_samples
from edgec.errors import EdgecError
from edgec.target import get_target

from conftest import SHARED_MODELS, big_fc_model, needs_toolchain, quantized_shared_model


@pytest.mark.parametrize("name,operands,groups,kind", [
    ("smlad", "r3, r7, r5, r0", set(), "mul_acc"),
    ("smlal", "r2, r0, r4, r0", set(), "mul_long"),
    ("mla", "r0, r1, r2, r0", set(), "mul_acc"),
    ("ldr", "r3, [r2, #0xd88]", set(), "load"),
    ("ldrd", "r8, r9, [r2], #8", set(), "load_double"),
    ("strb", "r3, [r1, #1]!", set(), "store"),
    ("b", "#0xa", {"jump", "branch_relative"}, "branch"),
    ("pop", "{r4, pc}", set(), "branch"),
    ("push", "{r4, r5, r6, lr}", set(), "multiple"),
    ("sxtb16", "r3, r3, ror #8", set(), "alu"),
    ("it", "eq", set(), "it"),
])
def test_instruction_classes(name, operands, groups, kind):
    assert classify(name, operands, groups) == kind


def test_every_cortex_m_core_has_a_cycle_model():
    assert set(MODELS) >= {"cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"}


def test_register_lists_are_counted():
    assert register_count("{r4, r5, r6, r7, r8, r9, sl, fp, lr}") == 9
    assert register_count("r0, r1") == 0


def test_block_log_parsing_counts_rewound_blocks_partially(tmp_path):
    log = tmp_path / "qemu.log"
    log.write_text(
        "----------------\nIN: f\n0x00000100:  f04f 22e0  mov.w r2, #0\n0x00000104:  b508  push {r3, lr}\n"
        "0x00000106:  6813  ldr r3, [r2]\n\n"
        "Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] f\n"
        "cpu_io_recompile: rewound execution of TB to 00000106\n"
        "----------------\nIN: f\n0x00000106:  6813  ldr r3, [r2]\n\n"
        "Trace 0: 0x7f0000000200 [00800408/00000106/00000110/ff020200] f\n"
        "Trace 0: 0x7f0000000100 [00800408/00000100/00000110/ff020200] f\n")
    runs = list(executions(log))
    assert [(tb[0], count) for tb, count in runs] == [(0x100, 2), (0x106, 1), (0x100, 3)]


@needs_toolchain
def test_profile_measures_layers_and_estimates_cycles_deterministically(small_integer_model):
    first = edgec.profile(small_integer_model, "cortex-m3,cortex-m4")
    second = edgec.profile(small_integer_model, ["cortex-m3", "cortex-m4"])
    assert [t.target for t in first.targets] == ["cortex-m3", "cortex-m4"]
    for a, b in zip(first.targets, second.targets, strict=True):
        assert [layer.instructions for layer in a.layers] == [layer.instructions for layer in b.layers]
        assert a.estimated_cycles == b.estimated_cycles and a.uninstrumented_instructions == b.uninstrumented_instructions
        assert a.instrumentation_error < 0.02
        assert all(layer.instructions > 0 and layer.estimated_cycles > 0 for layer in a.layers)
        assert a.estimated_ms == pytest.approx(a.estimated_cycles / a.clock_hz * 1e3)
        assert max(layer.live_bytes for layer in a.layers) <= a.arena_bytes
        assert sum(layer.macs for layer in a.layers) == edgec.summarize(small_integer_model).total_macs
    m3, m4 = first.targets
    assert m3.estimated_cycles > m4.estimated_cycles  # no single-cycle MACs on the M3


@needs_toolchain
@needs_toolchain
def test_the_instruction_mix_is_what_the_cycle_estimate_prices(tmp_path, small_integer_model):
    """Per layer, the traced instructions by cost class add up to the timer's count (within
    the profile build's hooks) and their cycles are the estimate's."""
    out = tmp_path / "m4"
    manifest = cortex_m.compile_project(small_integer_model, get_target("cortex-m4"), out, "m")
    row = cortex_m.int8_inputs(small_integer_model, random_samples(input_specs(small_integer_model), 1, seed=2))
    timed = cortex_m.run_project(out, row, variant="profile")
    called = [layer["index"] for layer in manifest["layers"] if layer["kernel"] != "alias"]
    arguments = (cortex_m.executable_path(out, variant="profile"), get_target("cortex-m4"), row.tobytes(),
                 len(called), MODELS["cortex-m4"])
    traces = traced_layer_traces(*arguments)
    assert [trace.cycles for trace in traces] == traced_layer_cycles(*arguments)
    for index, trace in zip(called, traces, strict=True):
        assert set(trace.mix) <= {"alu", "mul", "mul_acc", "mul_long", "div", "load", "store", "load_double",
                                  "multiple", "branch", "it", "float", "other"}
        assert sum(trace.mix.values()) == pytest.approx(timed.layer_instructions[index], rel=0.02, abs=40)


def test_profile_cli_writes_json_csv_and_a_plot_and_takes_a_project(tmp_path, small_integer_model):
    import onnx_ir as ir

    ir.save(small_integer_model, tmp_path / "small.onnx")
    result = CliRunner().invoke(cli, ["profile", str(tmp_path / "small.onnx"), "-t", "cortex-m4",
                                      "--json", str(tmp_path / "p.json"), "--csv", str(tmp_path / "p.csv"),
                                      "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert "est. cycles" in result.output and "estimates" in result.output
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["targets"][0]["target"] == "cortex-m4" and data["targets"][0]["layers"]
    assert (tmp_path / "p.csv").read_text().startswith("target,index,layer,op,macs,instructions")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert CliRunner().invoke(cli, ["compile", str(tmp_path / "small.onnx"), "-t", "cortex-m3",
                                    "-o", str(tmp_path / "m3")]).exit_code == 0
    result = CliRunner().invoke(cli, ["profile", str(tmp_path / "m3"), "--json", str(tmp_path / "m3.json")])
    assert result.exit_code == 0 and "cortex-m3" in result.output
    layers = json.loads((tmp_path / "m3.json").read_text())["targets"][0]["layers"]
    expected = edgec.profile(small_integer_model, "cortex-m3").targets[0].layers
    assert [(layer["instructions"], layer["estimated_cycles"]) for layer in layers] == [
        (layer.instructions, layer.estimated_cycles) for layer in expected]
    mismatch = CliRunner().invoke(cli, ["profile", str(tmp_path / "m3"), "-t", "cortex-m4"])
    assert mismatch.exit_code == 2 and "compiled for cortex-m3" in mismatch.stderr


def test_profile_errors(tmp_path, small_integer_model, monkeypatch):
    result = CliRunner().invoke(cli, ["profile", "missing.onnx", "-t", "cortex-m99"])
    assert result.exit_code == 2 and "cortex-m99" in result.stderr and "cortex-m3" in result.stderr
    with pytest.raises(EdgecError, match="no target"):
        edgec.profile(small_integer_model)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EdgecError) as raised:
        edgec.profile(small_integer_model, "cortex-m4")
    assert "apt-get install" in raised.value.one_line()


@needs_toolchain
def test_a_model_too_large_for_the_part_is_refused_unless_overridden(tmp_path):
    onnx.save(big_fc_model(), tmp_path / "big.onnx")
    args = ["profile", str(tmp_path / "big.onnx"), "-t", "cortex-m3", "--calib", "random"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "does not fit" in refused.stderr and "--ignore-size-limits" in refused.stderr
    profiled = CliRunner().invoke(cli, [*args, "--ignore-size-limits"])
    assert profiled.exit_code == 0, profiled.output
    assert "1,126,400" in profiled.output  # the MACs of the one layer


@needs_toolchain
@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(SHARED_MODELS))
def test_shared_models_per_layer_sum_matches_the_whole_model(key):
    result = edgec.profile(quantized_shared_model(key, seed=0), "cortex-m3,cortex-m4")
    for target in result.targets:
        print(f"{key} {target.target}: per-layer sum {target.instructions:,}, whole model "
              f"{target.uninstrumented_instructions:,} ({target.instrumentation_error:.4%}), "
              f"est. {target.estimated_ms:.1f} ms")
        assert target.instrumentation_error < 5e-4  # README: within 0.05 %
