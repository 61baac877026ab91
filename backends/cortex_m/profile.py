"""Per-layer profile of a compiled Cortex-M project on its target's QEMU board.

Three runs of the same int8 input row:

1. the plain harness: the whole-model instruction count (measured, no instrumentation);
2. the profile build, which reads the CMSDK timer after every layer: instructions per layer
   (measured; QEMU -icount makes them exact and repeatable);
3. the profile build again under QEMU's block log: what ran, priced per instruction by the
   core's cycle model (:mod:`backends.cortex_m.cycle_model`): cycles and milliseconds at the
   part's clock. These are **estimates**, labelled as such everywhere.

Memory comes from the manifest: weight bytes per layer (flash), tensor bytes live during each
layer (plus its scratch) and the arena peak.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgec.backend import Project
from edgec.backends.cortex_m import executable_path, run_project
from edgec.backends.cortex_m.cycle_model import MODELS
from edgec.backends.cortex_m.qemu import row_bytes, row_layout
from edgec.backends.cortex_m.trace import traced_layer_cycles
from edgec.profiling import LayerProfile, TargetProfile


def profile_project(project: Project, row: np.ndarray, advance: Callable[[str], None]) -> TargetProfile:
    """Profile ``project`` on one integer input ``row`` (shape ``[1, input size]``; see the module
    docstring); ``advance(stage)`` is called as each run starts."""
    manifest, target = project.manifest, project.target
    advance("whole-model run")
    whole = run_project(project.path, row)
    advance("per-layer timer run")
    timed = run_project(project.path, row, variant="profile")
    called = [layer["index"] for layer in manifest["layers"] if layer["kernel"] != "alias"]
    path = None
    if manifest.get("paths"):  # a model that branches: the layers of the path this input takes
        called = [index for index in called if index in timed.layer_instructions]
        path = next(tuple(p["path"]) for p in manifest["paths"] if set(called) <= set(p["layers"]))
    advance("block-log run (cycle estimate)")
    model_cycles = MODELS[target.core.cpu]
    cycles = traced_layer_cycles(executable_path(project.path, variant="profile"), target, row_bytes(row, row_layout(manifest["inputs"])),
                                 len(called), model_cycles, manifest["api"]["invoke"])
    layers = []
    for index, estimate in zip(called, cycles, strict=True):
        entry = manifest["layers"][index]
        layers.append(LayerProfile(index, entry["name"], entry["op"], entry["macs"],
                                   timed.layer_instructions.get(index, 0), estimate,
                                   estimate / target.part.clock_hz * 1e3, entry["weight_bytes"], entry["live_bytes"]))
    return TargetProfile(target.name, target.part.name, target.part.clock_hz, target.part.ram_bytes,
                         manifest["flash"]["total"], manifest["ram"]["arena"], whole.instructions[0],
                         model_cycles.sources, layers, path)
