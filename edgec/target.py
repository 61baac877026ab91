"""Targets are data: a TOML file per target, loaded into frozen records.

Every file starts with the common header (``name``, ``kind``, ``description``); the rest is
the schema of its kind, owned by that kind's module in :mod:`edgec.target_kinds` and listed
in :data:`KINDS`, the one table of kinds (adding a kind is a module there and a line here).
The packaged targets are the files in ``edgec.targets``; a user describes their own part in
a TOML file of the same form and passes its path wherever a target name is taken
(:func:`get_target` resolves both). Every file is validated on load (required tables and
keys, no unknown keys, types, positive sizes, then the kind's own checks, such as a core
edgec has kernels and a cycle model for); a malformed file is an
:class:`~edgec.errors.EdgecError` naming the file and the key. A compiled project keeps a
copy of its target (:func:`target_toml`, :data:`PROJECT_FILE`) so that it runs without the
file it was compiled from. Loading a target needs no backend, whether or not its kind has one.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

from edgec.errors import EdgecError
from edgec.target_kinds import cortex_m, fpga, host, tile
from edgec.target_kinds.cortex_m import CORES, CortexMTarget
from edgec.target_kinds.schema import Kind, Target, read_record, record_lines

__all__ = ["CORES", "KINDS", "PROJECT_FILE", "CortexMTarget", "Kind", "Target", "all_targets", "get_target", "kind_of",
           "load_target_file", "parse_target", "project_target", "target_toml"]

#: Every kind of target, by name, in the order ``edgec targets`` shows them.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (cortex_m.KIND, fpga.KIND, tile.KIND, host.KIND)}
#: The copy of its target that every compiled project holds.
PROJECT_FILE = "target.toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def kind_of(target: Target) -> Kind:
    """The :class:`~edgec.target_kinds.schema.Kind` of a loaded target."""
    return KINDS[target.kind]


def parse_target(text: str, source: str) -> Target:
    """Validate and build the record of the target the TOML ``text`` describes, of the class its
    kind names (``source`` names the text in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EdgecError(f"target file {source} is not valid TOML ({error})", "fix the syntax") from None
    for key in ("name", "kind", "description"):
        if not isinstance(data.get(key), str):
            raise EdgecError(f"target file {source} lacks the string '{key}'", "add it")
    if not _NAME.fullmatch(data["name"]):
        raise EdgecError(f"target file {source}: name '{data['name']}' is not a plain name",
                         "use letters, digits, '.', '_' and '-' (it names directories and reports)")
    kind = KINDS.get(data["kind"])
    if kind is None:
        raise EdgecError(f"target file {source} has unknown kind '{data['kind']}'", f"use one of {', '.join(KINDS)}")
    target = read_record(kind.record, data, source, replaced=kind.replaced_keys)
    if kind.check is not None:
        kind.check(target, source)
    return target


def target_toml(target: Target) -> str:
    """TOML text describing ``target``: :func:`parse_target` reads it back as an equal record."""
    lines = ["# an edgec target (validated on load; see 'edgec targets --help')", ""]
    return "\n".join(lines + record_lines(target)) + "\n"


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
