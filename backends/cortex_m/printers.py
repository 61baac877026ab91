"""Deterministic C text for constants: arrays, scalars and parameter-block initializers."""

from __future__ import annotations

import numpy as np

_PER_LINE = 24


def c_value(value) -> str:
    """A C literal for an int, a float or a list of them (as a brace list)."""
    if isinstance(value, list | tuple | np.ndarray):
        return "{" + ", ".join(c_value(v) for v in np.asarray(value).ravel().tolist()) + "}"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value!r}f"
    return str(int(value))


def _attributes(section: str, align: int | None) -> str:
    """`` SECTION __attribute__((aligned(N)))``: a placement macro and an alignment, each optional."""
    return (f" {section}" if section else "") + (f" __attribute__((aligned({align})))" if align else "")


def c_array(ctype: str, name: str, values: np.ndarray, align: int = 4, section: str = "") -> str:
    """``static const ctype name[n] = {...};`` with a fixed number of values per line; ``section``
    (a macro name) goes before the alignment attribute."""
    flat = np.asarray(values).ravel().tolist()
    suffix = "u" if ctype.startswith("uint") else ""
    lines = []
    for start in range(0, len(flat), _PER_LINE):
        lines.append("    " + ", ".join(f"{int(v)}{suffix}" for v in flat[start:start + _PER_LINE]) + ",")
    body = "\n".join(lines) if lines else "    0,"
    return (f"static const {ctype} {name}[{max(len(flat), 1)}]{_attributes(section, align)} = {{\n"
            f"{body}\n}};")


def c_struct_array(ctype: str, name: str, rows: np.ndarray, align: int = 4, section: str = "") -> str:
    """``static const ctype name[n] = {{a, b, ...}, ...};`` one struct per line (integer fields)."""
    lines = ["    {" + ", ".join(str(int(v)) for v in row) + "}," for row in np.asarray(rows).tolist()]
    return (f"static const {ctype} {name}[{len(lines)}]{_attributes(section, align)} = {{\n"
            + "\n".join(lines) + "\n};")


def c_struct(ctype: str, name: str, fields: dict[str, object], section: str = "") -> str:
    """``static const ctype name = {.field = value, ...};``"""
    body = ",\n".join(f"    .{key} = {c_value(value)}" for key, value in fields.items())
    return f"static const {ctype} {name}{_attributes(section, None)} = {{\n{body},\n}};"
