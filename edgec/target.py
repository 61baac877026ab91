"""Targets are data: a TOML file per target, loaded into frozen records.

The packaged targets are the files in ``edgec.targets``; a user describes their own part in
a TOML file of the same form and passes its path wherever a target name is taken
(:func:`get_target` resolves both). Every file is validated on load (required tables and
keys, no unknown keys, types, positive sizes, a core edgec has kernels and a cycle model
for); a malformed file is an :class:`~edgec.errors.EdgecError` naming the file and the key.
A compiled project keeps a copy of its target (:func:`target_toml`, :data:`PROJECT_FILE`) so
that it runs without the file it was compiled from.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from importlib import resources
from pathlib import Path

from edgec.errors import EdgecError

KINDS = ("cortex-m",)
#: The cores edgec's kernels and cycle models cover (``core.cpu``).
CORES = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")
#: The copy of its target that every compiled project holds.
PROJECT_FILE = "target.toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEX_KEYS = ("flash_origin", "ram_origin", "timer_base")


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


_TABLES = {"core": Core, "part": Part, "qemu": Qemu}
_TOP_KEYS = ("name", "kind", "description", "core", "part", "compiler", "qemu")


def _unknown_keys(table: dict, known, source: str, section: str = "") -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        where = f"{section}.{unknown[0]}" if section else unknown[0]
        raise EdgecError(f"target file {source} has an unknown key '{where}'", f"the keys are: {', '.join(known)}")


def _table(data: dict, key: str, source: str) -> dict:
    table = data.get(key)
    if not isinstance(table, dict):
        raise EdgecError(f"target file {source} lacks the [{key}] table", "add it (see the packaged targets)")
    return table


def _record(cls, table: dict, source: str, section: str):
    names = [field.name for field in dataclasses.fields(cls)]
    _unknown_keys(table, names, source, section)
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
    """Validate and build a :class:`Target` from TOML text (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EdgecError(f"target file {source} is not valid TOML ({error})", "fix the syntax") from None
    _unknown_keys(data, _TOP_KEYS, source)
    for key in ("name", "kind", "description"):
        if not isinstance(data.get(key), str):
            raise EdgecError(f"target file {source} lacks the string '{key}'", "add it")
    if not _NAME.fullmatch(data["name"]):
        raise EdgecError(f"target file {source}: name '{data['name']}' is not a plain name",
                         "use letters, digits, '.', '_' and '-' (it names directories and reports)")
    if data["kind"] not in KINDS:
        raise EdgecError(f"target file {source} has unknown kind '{data['kind']}'", f"use one of {KINDS}")
    compiler = _table(data, "compiler", source)
    _unknown_keys(compiler, ("flags",), source, "compiler")
    flags = compiler.get("flags")
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise EdgecError(f"target file {source}: compiler.flags must be a list of strings", "fix the value")
    records = {key: _record(cls, _table(data, key, source), source, key) for key, cls in _TABLES.items()}
    if records["core"].cpu not in CORES:
        raise EdgecError(f"target file {source}: core.cpu '{records['core'].cpu}' is not a core edgec supports",
                         f"use one of {', '.join(CORES)} (the core your part has)")
    return Target(name=data["name"], kind=data["kind"], description=data["description"],
                  compiler_flags=tuple(flags), **records)


def _toml_value(key: str, value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0x{value:08X}" if key in _HEX_KEYS else str(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def target_toml(target: Target) -> str:
    """TOML text describing ``target``: :func:`parse_target` reads it back as an equal record."""
    lines = ["# an edgec target (validated on load; see 'edgec targets --help')", ""]
    lines += [f"{key} = {_toml_value(key, getattr(target, key))}" for key in ("name", "kind", "description")]
    for section in ("core", "part", "compiler", "qemu"):
        lines += ["", f"[{section}]"]
        if section == "compiler":
            lines.append(f"flags = [{', '.join(_toml_value('', flag) for flag in target.compiler_flags)}]")
            continue
        record = getattr(target, section)
        lines += [f"{f.name} = {_toml_value(f.name, getattr(record, f.name))}" for f in dataclasses.fields(record)]
    return "\n".join(lines) + "\n"


def all_targets() -> dict[str, Target]:
    """Every packaged target, by name, sorted."""
    targets = {}
    for entry in sorted(resources.files("edgec.targets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            target = parse_target(entry.read_text(encoding="utf-8"), entry.name)
            targets[target.name] = target
    return targets


def load_target_file(path: str | Path) -> Target:
    """The target described by the TOML file at ``path``; an error naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"target file '{path}' does not exist",
                         f"check the path, or use a packaged target: {', '.join(all_targets())}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EdgecError(f"target file '{path}' cannot be read ({type(error).__name__})",
                         "give a UTF-8 TOML file") from None
    return parse_target(text, f"'{path}'")


def _is_path(name: str | Path) -> bool:
    text = str(name)
    return isinstance(name, Path) or text.lower().endswith(".toml") or "/" in text or "\\" in text


def get_target(name_or_path: str | Path | Target) -> Target:
    """The one place a target is resolved: a :class:`Target` as it is, a path to a TOML file
    (a :class:`~pathlib.Path`, anything ending in ``.toml`` or containing a path separator,
    or an existing file that is no packaged name), or a packaged target's name. An unknown name is
    an error listing the packaged targets."""
    if isinstance(name_or_path, Target):
        return name_or_path
    if _is_path(name_or_path):
        return load_target_file(name_or_path)
    targets = all_targets()
    if name_or_path in targets:
        return targets[name_or_path]
    if Path(name_or_path).is_file():
        return load_target_file(name_or_path)
    raise EdgecError(f"unknown target '{name_or_path}'",
                     f"known targets: {', '.join(targets)}; or give the path of your own target .toml file")


def project_target(project: str | Path, name: str) -> Target:
    """The target a compiled project was made for: its copy :data:`PROJECT_FILE`, or, in a
    project without one (made before edgec wrote it), the packaged target ``name``."""
    copy = Path(project) / PROJECT_FILE
    return load_target_file(copy) if copy.is_file() else get_target(name)
