"""The schema machinery every target kind shares: records are frozen dataclasses, read from
TOML tables and written back as TOML text by the same field list.

A kind's record is a dataclass that extends :class:`Target` (the common header: ``name``,
``kind``, ``description``). :func:`read_record` builds any such record from a parsed TOML
table, field by field, from the field's type:

* ``str``, ``bool``, ``int`` (zero allowed), :data:`Positive` (above zero), :data:`Address`
  (an ``int`` written back in hex); ``tuple[str, ...]`` and ``frozenset[str]`` (TOML arrays of
  strings; the set refuses repeats);
* another dataclass: a nested TOML table (``[part]``, ``[grid.tile]``);
* ``X | None`` with the default ``None``: an optional key or table.

Every field without a default is required and no other key is allowed. Each error is an
:class:`~edgec.errors.EdgecError` naming the file and the dotted key. :func:`record_lines`
writes a record so that :func:`read_record` reads back an equal one.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from edgec.errors import EdgecError

_POSITIVE = "positive"
_ADDRESS = "address"
#: An integer that must be above zero (sizes, clocks, counts of things that exist).
Positive = Annotated[int, _POSITIVE]
#: A memory address: an integer of zero or more, written back as ``0x%08X``.
Address = Annotated[int, _ADDRESS]


@dataclasses.dataclass(frozen=True)
class Target:
    """The header every target has, whatever its kind; each kind's record extends it."""

    name: str
    kind: str
    description: str


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of target: its record, what ``edgec targets`` shows of it, and its own checks.

    ``columns`` are (header, figure of a target) pairs, shown after the target's name.
    ``check(target, source)``, where a kind has one, raises an :class:`~edgec.errors.EdgecError`
    for a value the types allow but the kind does not (an unknown core, a DSP width that is not
    the primitive's).
    ``replaced_keys`` maps a dotted key an older edgec read to the fix saying what to write now.
    """

    name: str
    record: type[Target]
    summary: str
    columns: tuple[tuple[str, Callable[[Any], str]], ...]
    check: Callable[[Any, str], None] | None = None
    replaced_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _optional(hint) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, ``(hint, False)`` otherwise."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return members[0], True
    return hint, False


def _dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _fail(source: str, problem: str, fix: str = "fix the value"):
    raise EdgecError(f"target file {source}{problem}", fix)


def _value(hint, value, source: str, key: str, replaced: Mapping[str, str]):
    """``value`` checked against ``hint`` (the type of the field at dotted ``key``)."""
    hint, _ = _optional(hint)
    marks = getattr(hint, "__metadata__", ())
    base = hint.__origin__ if marks else hint  # Annotated[int, ...] -> int
    if dataclasses.is_dataclass(base):
        if not isinstance(value, dict):
            _fail(source, f": {key} must be a table, got {value!r}")
        return read_record(base, value, source, key, replaced)
    origin = typing.get_origin(base)
    if origin in (tuple, frozenset):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            _fail(source, f": {key} must be a list of strings, got {value!r}")
        if origin is frozenset:
            repeated = sorted({item for item in value if value.count(item) > 1})
            if repeated:
                _fail(source, f": {key} names '{repeated[0]}' twice", "name each item once")
            return frozenset(value)
        return tuple(value)
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        _fail(source, f": {key} must be {base.__name__}, got {value!r}")
    if base is int and (value < 0 or (_POSITIVE in marks and value == 0)):
        _fail(source, f": {key} must be positive, got {value}")
    if base is str and not value:
        _fail(source, f": {key} must not be empty")
    return value


def read_record(cls, table: dict, source: str, section: str = "", replaced: Mapping[str, str] | None = None):
    """The ``cls`` record the TOML ``table`` at dotted ``section`` describes (``""``: the file's
    top level); ``source`` names the file in errors. ``replaced``: see :attr:`Kind.replaced_keys`.
    Unknown keys are reported before missing ones, so a misspelt key is named as such."""
    replaced = replaced or {}
    fields = dataclasses.fields(cls)
    names = [field.name for field in fields]
    for key in table:
        if key not in names:
            where = _dotted(section, key)
            if where in replaced:
                _fail(source, f" has the key '{where}', which edgec no longer reads", replaced[where])
            _fail(source, f" has an unknown key '{where}'", f"the keys are: {', '.join(names)}")
    hints = _hints(cls)
    values = {}
    for field in fields:
        key = _dotted(section, field.name)
        if field.name not in table:
            if field.default is not dataclasses.MISSING:
                continue
            if dataclasses.is_dataclass(_optional(hints[field.name])[0]):
                _fail(source, f" lacks the [{key}] table", "add it (see the packaged targets)")
            _fail(source, f" lacks {key}", "add the key")
        values[field.name] = _value(hints[field.name], table[field.name], source, key, replaced)
    return cls(**values)


def _toml_value(hint, value) -> str:
    hint, _ = _optional(hint)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0x{value:08X}" if _ADDRESS in getattr(hint, "__metadata__", ()) else str(value)
    if isinstance(value, (tuple, frozenset)):
        items = sorted(value) if isinstance(value, frozenset) else value
        return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in items) + "]"
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def record_lines(record, section: str = "") -> list[str]:
    """TOML lines for ``record`` at dotted ``section``: its scalar keys first (under a
    ``[section]`` line unless at the top level), then each nested record as its own table.
    Optional values that are ``None`` are left out."""
    hints = _hints(type(record))
    scalars, tables = [], []
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            tables += ["", *record_lines(value, _dotted(section, field.name))]
        else:
            scalars.append(f"{field.name} = {_toml_value(hints[field.name], value)}")
    return ([f"[{section}]"] if section else []) + scalars + tables

