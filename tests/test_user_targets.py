"""A user's own target TOML: resolved by get_target wherever a target is taken, validated by
the packaged targets' schema, and kept in every project compiled for it."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from test_errors import assert_one_line_error

from edgec.backends import cortex_m
from edgec.backends.cortex_m.cycle_model import MODELS
from edgec.errors import EdgecError
from edgec.target import CORES, PROJECT_FILE, all_targets, get_target, parse_target, target_toml

from conftest import REPO, invoke, needs_toolchain


def board_text(ram_bytes: int = 262_144) -> str:
    """The packaged Cortex-M4 target described as the user's own part 'my-board'."""
    board = dataclasses.replace(get_target("cortex-m4"), name="my-board", description="my board",
                                part=dataclasses.replace(get_target("cortex-m4").part, name="MYPART",
                                                         ram_bytes=ram_bytes))
    return target_toml(board)


@pytest.fixture
def board(tmp_path):
    path = tmp_path / "my_board.toml"
    path.write_text(board_text())
    return path


def test_every_packaged_target_survives_its_toml_text():
    for target in all_targets().values():
        assert parse_target(target_toml(target), "copy") == target


def test_a_toml_path_resolves_to_the_users_target(board, tmp_path, monkeypatch):
    target = get_target(str(board))
    assert (target.name, target.part.name, target.part.ram_bytes) == ("my-board", "MYPART", 262_144)
    assert target.core == get_target("cortex-m4").core
    assert get_target(board) == target and get_target(target) is target
    monkeypatch.chdir(tmp_path)
    assert get_target("my_board.toml") == target
    plain = tmp_path / "board"
    plain.write_text(board_text())
    assert get_target("board") == target  # an existing file without the suffix
    assert get_target("cortex-m4").part.name == "STM32L4R5ZI"


def test_the_supported_cores_are_the_cycle_models_cores():
    assert set(CORES) == set(MODELS)


@pytest.mark.parametrize("edit,fragments", [
    (lambda t: t.replace("clock_hz", "clock_mhz"), ["unknown key 'part.clock_mhz'"]),
    (lambda t: t.replace("ram_bytes = 262144", 'ram_bytes = "256K"'), ["part.ram_bytes must be int"]),
    (lambda t: t.replace('cpu = "cortex-m4"', 'cpu = "cortex-m0plus"'), ["core.cpu 'cortex-m0plus'", "cortex-m33"]),
    (lambda t: t.replace('name = "my-board"', 'name = "my board/2"'), ["name 'my board/2'"]),
    (lambda t: t.replace("[qemu]", "[emulator]"), ["unknown key 'emulator'"]),
    (lambda t: t.replace('flags = ["-mcpu=cortex-m4"', 'flags = [4, "-mcpu=cortex-m4"'), ["compiler.flags"]),
    (lambda t: t.replace("timer_hz = 25000000\n", ""), ["lacks qemu.timer_hz"]),
])
def test_a_bad_user_target_is_one_error_naming_the_file_and_key(tmp_path, model_path, calib_path, edit, fragments):
    path = tmp_path / "bad_board.toml"
    path.write_text(edit(board_text()))
    out = tmp_path / "out"
    result = invoke("compile", model_path, "--target", path, "--calib", calib_path, "-o", out)
    assert_one_line_error(result, str(path), *fragments)
    assert not out.exists()


def test_a_missing_or_unreadable_target_file(tmp_path, model_path, calib_path):
    out = tmp_path / "out"
    missing = invoke("compile", model_path, "--target", tmp_path / "nothere.toml", "--calib", calib_path, "-o", out)
    assert_one_line_error(missing, "nothere.toml", "does not exist", "cortex-m4")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    assert_one_line_error(invoke("targets", binary), "binary.toml", "cannot be read")
    assert not out.exists()


def test_an_unknown_name_mentions_own_target_files():
    with pytest.raises(EdgecError) as raised:
        get_target("my-board")
    assert "my-board" in raised.value.one_line() and "your own target .toml" in raised.value.one_line()


def test_targets_lists_and_shows_a_users_file(board):
    listed = invoke("targets", board)
    assert listed.exit_code == 0, listed.output
    assert "my-board" in listed.output and "MYPART" in listed.output and "cortex-m3" in listed.output
    shown = invoke("targets", "--show", "cortex-m7")
    assert shown.exit_code == 0 and parse_target(shown.output, "shown") == get_target("cortex-m7")
    assert "--show" in invoke("targets", "--help").output


@needs_toolchain
def test_a_project_for_a_users_target_keeps_it_and_runs_without_the_file(tmp_path, board, model_path, calib_path,
                                                                      rng):
    project = tmp_path / "proj"
    np.save(tmp_path / "x.npy", rng.random((3, 3, 8, 8), dtype=np.float32))
    result = invoke("compile", model_path, "--target", board, "--calib", calib_path, "-o", project)
    assert result.exit_code == 0, result.output
    assert "my-board (MYPART)" in result.output
    assert json.loads((project / "report.json").read_text())["target"] == "my-board"
    expected = get_target(board)
    board.unlink()
    assert parse_target((project / PROJECT_FILE).read_text(), "copy") == expected
    assert cortex_m.load_project(project)[1] == expected
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    run = invoke("run", moved, "--input", tmp_path / "x.npy", "--check")
    assert run.exit_code == 0, run.output
    assert "my-board (mps2-an386)" in run.output and "check: all 3 outputs equal" in run.output


@needs_toolchain
def test_the_users_part_sets_the_size_limits(tmp_path, model_path, calib_path):
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(board_text(ram_bytes=512))
    out = tmp_path / "out"
    result = invoke("compile", model_path, "--target", tiny, "--calib", calib_path, "-o", out)
    assert_one_line_error(result, "does not fit MYPART (my-board)", "> 512 B")
    assert not out.exists()


def test_the_readme_example_target_is_valid():
    readme = (REPO / "README.md").read_text()
    text = readme.split("**Your own part.**", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    target = parse_target(text, "README.md")
    assert (target.name, target.part.ram_bytes, target.core.cpu) == ("my-board", 65_536, "cortex-m4")
