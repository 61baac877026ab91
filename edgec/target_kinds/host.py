"""The ``host`` kind: the machine edgec runs on, for backends that build and run C here (a
simulation, a reference build). It names the C compiler (a command found on ``PATH`` or a
path) and the flags every build passes it; nothing else about the machine is assumed, and
nothing is checked beyond the types (whether the compiler exists is known when a build runs it).
"""

from __future__ import annotations

import dataclasses

from edgec.target_kinds.schema import Kind, Target


@dataclasses.dataclass(frozen=True)
class Compiler:
    cc: str
    flags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class HostTarget(Target):
    """The machine edgec runs on, described by the C compiler builds use."""

    compiler: Compiler


KIND = Kind(
    name="host",
    record=HostTarget,
    summary="the machine edgec runs on: [compiler] cc, flags",
    columns=(
        ("C compiler", lambda t: t.compiler.cc),
        ("flags", lambda t: " ".join(t.compiler.flags) or "-"),
    ),
)
