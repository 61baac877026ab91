"""Backends turn an edgec integer graph into a deployable artifact (installed as ``edgec.backends``).

Backends register here, in one explicit table keyed by target kind (the ``kind`` of a target
TOML file); third-party backends add themselves through the ``edgec.backends`` entry-point
group (name: target kind, value: module). A backend module provides
``compile_project(model, target, out_dir, model_name, ignore_size_limits) -> dict``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType

from edgec.errors import EdgecError

BACKENDS = {
    "cortex-m": "edgec.backends.cortex_m",
}


def backend_for(kind: str) -> ModuleType:
    """The backend module compiling for targets of ``kind``."""
    modules = dict(BACKENDS)
    modules.update({entry.name: entry.value for entry in entry_points(group="edgec.backends")})
    if kind not in modules:
        raise EdgecError(f"no backend compiles for targets of kind '{kind}'",
                         f"backends exist for: {', '.join(sorted(modules))}")
    return importlib.import_module(modules[kind])
