"""Targets are data: one TOML file per target in ``edgec.targets``, loaded into frozen records.

Every file is validated on load (required tables and keys, types, positive sizes); a
malformed file is an :class:`~edgec.errors.EdgecError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources

from edgec.errors import EdgecError

KINDS = ("cortex-m",)


@dataclasses.dataclass(frozen=True)
class Core:
    cpu: str
    arch: str
    dsp: bool
    fpu: str


@dataclasses.dataclass(frozen=True)
class Part:
    """The typical part whose clock and memories are used for reports and size checks."""

    name: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int


@dataclasses.dataclass(frozen=True)
class Qemu:
    """The emulated board: machine name, memory map and the CMSDK timer used for counting."""

    machine: str
    flash_origin: int
    flash_bytes: int
    ram_origin: int
    ram_bytes: int
    timer_base: int
    timer_hz: int


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    kind: str
    description: str
    core: Core
    part: Part
    compiler_flags: tuple[str, ...]
    qemu: Qemu


def _table(data: dict, key: str, source: str) -> dict:
    table = data.get(key)
    if not isinstance(table, dict):
        raise EdgecError(f"target file {source} lacks the [{key}] table", "add it (see the other targets)")
    return table


def _record(cls, table: dict, source: str, section: str):
    values = {}
    for field in dataclasses.fields(cls):
        if field.name not in table:
            raise EdgecError(f"target file {source} lacks {section}.{field.name}", "add the key")
        value = table[field.name]
        expected = {"int": int, "str": str, "bool": bool}[field.type]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise EdgecError(f"target file {source}: {section}.{field.name} must be {field.type}, got {value!r}",
                             "fix the value")
        if expected is int and value < 0 or (field.name.endswith(("_bytes", "_hz")) and value <= 0):
            raise EdgecError(f"target file {source}: {section}.{field.name} must be positive", "fix the value")
        values[field.name] = value
    return cls(**values)


def parse_target(text: str, source: str) -> Target:
    """Validate and build a :class:`Target` from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EdgecError(f"target file {source} is not valid TOML ({error})", "fix the syntax") from None
    for key in ("name", "kind", "description"):
        if not isinstance(data.get(key), str):
            raise EdgecError(f"target file {source} lacks the string '{key}'", "add it")
    if data["kind"] not in KINDS:
        raise EdgecError(f"target file {source} has unknown kind '{data['kind']}'", f"use one of {KINDS}")
    flags = _table(data, "compiler", source).get("flags")
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise EdgecError(f"target file {source}: compiler.flags must be a list of strings", "fix the value")
    return Target(
        name=data["name"], kind=data["kind"], description=data["description"],
        core=_record(Core, _table(data, "core", source), source, "core"),
        part=_record(Part, _table(data, "part", source), source, "part"),
        compiler_flags=tuple(flags),
        qemu=_record(Qemu, _table(data, "qemu", source), source, "qemu"),
    )


def all_targets() -> dict[str, Target]:
    """Every packaged target, by name, sorted."""
    targets = {}
    for entry in sorted(resources.files("edgec.targets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            target = parse_target(entry.read_text(encoding="utf-8"), entry.name)
            targets[target.name] = target
    return targets


def get_target(name: str) -> Target:
    """The target called ``name``; an error listing the known ones otherwise."""
    targets = all_targets()
    if name not in targets:
        raise EdgecError(f"unknown target '{name}'", f"known targets: {', '.join(targets)}")
    return targets[name]
