"""Targets per kind: each kind's schema and checks, the packaged FPGA, tile and host targets
as data, and ``edgec targets`` grouping them by kind."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from importlib import resources

import pytest
from test_errors import assert_one_line_error

from edgec.errors import EdgecError
from edgec.target import KINDS, all_targets, get_target, kind_of, parse_target, target_toml
from edgec.target_kinds.cortex_m import CortexMTarget
from edgec.target_kinds.fpga import FpgaTarget, Memory
from edgec.target_kinds.host import HostTarget
from edgec.target_kinds.tile import TileTarget

from conftest import invoke


def _packaged_text(name: str) -> str:
    return (resources.files("edgec.targets") / f"{name}.toml").read_text()


def _rejected(text: str, *fragments: str) -> str:
    with pytest.raises(EdgecError) as raised:
        parse_target(text, "'board.toml'")
    message = raised.value.one_line()
    for fragment in ("'board.toml'", *fragments):
        assert fragment in message, message
    return message


def test_every_packaged_target_has_the_record_of_its_kind():
    targets = all_targets()
    kinds = {name: type(target) for name, target in targets.items()}
    assert kinds == {"cortex-m3": CortexMTarget, "cortex-m4": CortexMTarget, "cortex-m7": CortexMTarget,
                     "cortex-m33": CortexMTarget, "cortex-m55": CortexMTarget, "pynq-z2": FpgaTarget, "zcu104": FpgaTarget, "kv260": FpgaTarget,
                     "ice40-up5k": FpgaTarget, "tile-4x4": TileTarget, "tile-8x8": TileTarget, "host": HostTarget}
    for target in targets.values():
        assert kind_of(target).record is type(target) and parse_target(target_toml(target), "copy") == target


def test_the_fpga_targets_carry_their_parts_resources():
    figures = {name: (t.device.part, t.dsp.primitive, t.dsp.count, t.dsp.a_bits, t.dsp.b_bits, t.logic.luts,
                      t.logic.ffs, t.block_ram.count, t.block_ram.bits, t.large_ram and t.large_ram.count, t.lut_inputs)
               for name, t in all_targets().items() if isinstance(t, FpgaTarget)}
    assert figures == {
        "pynq-z2": ("xc7z020clg400-1", "DSP48E1", 220, 25, 18, 53_200, 106_400, 140, 36_864, None, 6),
        "zcu104": ("xczu7ev-ffvc1156-2-e", "DSP48E2", 1_728, 27, 18, 230_400, 460_800, 312, 36_864, 96, 6),
        "kv260": ("xck26-sfvc784-2LV-c", "DSP48E2", 1_248, 27, 18, 117_120, 234_240, 144, 36_864, 64, 6),
        "ice40-up5k": ("iCE40UP5K-SG48", "SB_MAC16", 8, 16, 16, 5_280, 5_280, 30, 4_096, 4, 4),
    }
    ice40 = get_target("ice40-up5k")
    assert (ice40.block_ram.total_bits, ice40.large_ram.total_bits) == (30 * 4_096, 1_048_576)
    assert (ice40.device.clock_hz, ice40.device.board) == (12_000_000, "icebreaker")
    assert get_target("pynq-z2").device.board == "PYNQ-Z2"


def test_the_tile_and_host_targets():
    tile = get_target("tile-4x4")
    assert (tile.grid.tiles, tile.grid.tile.macs_per_cycle, tile.grid.tile.sram_bytes) == (16, 64, 262_144)
    assert (tile.noc.topology, tile.noc.link_bytes_per_cycle, tile.dram.bytes_per_cycle) == ("mesh", 32, 32)
    assert tile.peak_macs_per_second == 16 * 64 * 1_000_000_000
    assert "not a product" in tile.description.lower()
    large = get_target("tile-8x8")
    assert (large.grid.tiles, large.grid.tile.array_rows, large.grid.tile.array_cols) == (64, 32, 32)
    assert (large.noc.topology, large.dram.bytes_per_cycle, large.grid.tile.sram_bytes) == ("torus", 200, 2**20)
    host = get_target("host")
    assert (host.compiler.cc, host.compiler.flags) == ("cc", ("-O2",))


def test_core_features_are_a_set_with_a_dsp_property():
    m4, m3 = get_target("cortex-m4"), get_target("cortex-m3")
    assert m4.core.features == frozenset({"dsp", "fpu"}) and m4.core.dsp
    assert m3.core.features == frozenset() and not m3.core.dsp
    reordered = _packaged_text("cortex-m4").replace('features = ["dsp", "fpu"]', 'features = ["fpu", "dsp"]')
    assert parse_target(reordered, "reordered") == m4
    assert m4.compiler_flags == ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


@pytest.mark.parametrize("old", ["dsp = true\n", 'fpu = "fpv4-sp-d16"\n'])
def test_an_old_core_table_says_how_to_write_features(old):
    text = _packaged_text("cortex-m4").replace('features = ["dsp", "fpu"]\n', old)
    message = _rejected(text, f"core.{old.split()[0]}", "no longer reads")
    assert 'features = ["dsp", "fpu"]' in message


@pytest.mark.parametrize("features,fragments", [
    ('["simd"]', ["'simd'", "does not know", "dsp, fpu, mve"]),
    ('["mve"]', ["'mve'", "a cortex-m4 does not have", "dsp, fpu"]),
    ('["dsp", "dsp"]', ["core.features names 'dsp' twice"]),
])
def test_bad_core_features(features, fragments):
    _rejected(_packaged_text("cortex-m4").replace('["dsp", "fpu"]', features), *fragments)


def test_a_cortex_m3_has_no_dsp_extension():
    _rejected(_packaged_text("cortex-m3").replace("features = []", 'features = ["dsp"]'),
              "'dsp'", "a cortex-m3 does not have", "can have: none")


@pytest.mark.parametrize("edit,fragments", [
    (lambda t: t.replace('family = "xilinx-ultrascale+"', 'family = "stratix"'), ["device.family 'stratix'", "ice40"]),
    (lambda t: t.replace('primitive = "DSP48E2"', 'primitive = "DSP48E1"'),
     ["dsp.primitive 'DSP48E1'", 'primitive = "DSP48E2"']),
    (lambda t: t.replace("a_bits = 27", "a_bits = 25"), ["dsp.a_bits = 25", "a_bits = 27"]),
    (lambda t: t.replace("count = 96", "count = 0"), ["large_ram.count must be positive"]),
    (lambda t: t.replace("luts = 230_400", "luts = 230_400\nlut_inputs = 6"), ["unknown key 'logic.lut_inputs'"]),
    (lambda t: t.replace("[block_ram]", "[bram]"), ["unknown key 'bram'"]),
    (lambda t: t.replace('part = "xczu7ev-ffvc1156-2-e"\n', ""), ["lacks device.part"]),
    (lambda t: t.replace('board = "ZCU104"', "board = 104"), ["device.board must be str"]),
])
def test_bad_fpga_files(edit, fragments):
    _rejected(edit(_packaged_text("zcu104")), *fragments)


def test_the_optional_fpga_tables_and_keys():
    text = _packaged_text("zcu104")
    bare = text.split("[large_ram]")[0].replace('board = "ZCU104"\n', "")
    target = parse_target(bare, "bare")
    assert (target.large_ram, target.device.board) == (None, None)
    assert "large_ram" not in target_toml(target) and "board" not in target_toml(target)
    assert parse_target(target_toml(target), "copy") == target
    restored = dataclasses.replace(target, large_ram=Memory("URAM288", 96, 294_912),
                                   device=dataclasses.replace(target.device, board="ZCU104"))
    assert restored == get_target("zcu104")


@pytest.mark.parametrize("edit,fragments", [
    (lambda t: t.replace('topology = "mesh"', 'topology = "crossbar"'), ["noc.topology 'crossbar'", "mesh, torus"]),
    (lambda t: t.replace("[grid.tile]", "[tiles]"), ["unknown key 'tiles'"]),
    (lambda t: t.replace("array_rows = 8\narray_cols = 8\nsram_bytes = 262_144\n", "").replace("[grid.tile]\n", ""),
     ["lacks the [grid.tile] table"]),
    (lambda t: t.replace("array_rows = 8\narray_cols = 8", "macs_per_cycle = 64"),
     ["'grid.tile.macs_per_cycle', which edgec no longer reads", "array_rows = 8"]),
    (lambda t: t.replace("rows = 4", "rows = 0"), ["grid.rows must be positive"]),
    (lambda t: t.replace("\nbytes_per_cycle = 32 ", "\ngbytes_per_second = 32 "), ["unknown key 'dram.gbytes_per_second'"]),
])
def test_bad_tile_files(edit, fragments):
    _rejected(edit(_packaged_text("tile-4x4")), *fragments)


def test_bad_host_and_header():
    _rejected(_packaged_text("host").replace('cc = "cc"', 'cc = ""'), "compiler.cc must not be empty")
    _rejected(_packaged_text("host").replace('kind = "host"', 'kind = "gpu"'), "unknown kind 'gpu'",
              ", ".join(KINDS))
    _rejected(_packaged_text("host").replace('kind = "host"', 'kind = "tile"'), "unknown key 'compiler'",
              "grid, noc, dram")


def test_targets_groups_by_kind_and_lists_a_users_fpga_file(tmp_path):
    board = tmp_path / "my_fpga.toml"
    board.write_text(_packaged_text("pynq-z2").replace('name = "pynq-z2"', 'name = "my-zynq"')
                     .replace('board = "PYNQ-Z2"', 'board = "MYBOARD"'))
    listed = invoke("targets", board)
    assert listed.exit_code == 0, listed.output
    titles = [line.strip() for line in listed.output.splitlines() if line.strip().endswith(" targets")]
    assert titles == ["cortex-m targets", "fpga targets", "tile targets", "host targets"]
    fpga_part = listed.output.split("fpga targets")[1].split("tile targets")[0]
    assert "my-zynq" in fpga_part and "MYBOARD" in fpga_part and "220 DSP48E1 25×18" in fpga_part
    assert "1,728 DSP48E2 27×18" in fpga_part and "5,280 LUT4" in fpga_part and "96 × 288 Kib" in fpga_part
    assert "mps2-an385" in listed.output.split("fpga targets")[0]
    assert "4×4 (mesh)" in listed.output.split("tile targets")[1]
    shown = invoke("targets", "--show", "zcu104")
    assert shown.exit_code == 0 and parse_target(shown.output, "shown") == get_target("zcu104")
    help_text = invoke("targets", "--help").output
    for kind in KINDS:
        assert f"{kind}:" in help_text
    assert "docs/targets.md" in help_text


def test_a_bad_fpga_file_is_one_error_line(tmp_path):
    path = tmp_path / "bad_fpga.toml"
    path.write_text(_packaged_text("kv260").replace("b_bits = 18", "b_bits = 24"))
    assert_one_line_error(invoke("targets", path), str(path), "dsp.b_bits = 24", "b_bits = 18")


def test_loading_targets_imports_no_backend():
    code = ("import sys; from edgec.target import all_targets; all_targets(); "
            "print([m for m in sys.modules if m.startswith('edgec.backends.') or m.startswith('edgec.target_kinds.')])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "edgec.backends." not in loaded and "edgec.target_kinds.fpga" in loaded
