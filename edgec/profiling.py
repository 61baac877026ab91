"""Per-layer profiles on the emulated cores: measured instructions, estimated cycles, memory.

:func:`profile` compiles a model for each requested target (or takes a compiled project),
then runs on the target's QEMU board:

1. the plain harness: the whole-model instruction count (measured, no instrumentation);
2. the profile build, which reads the CMSDK timer after every layer: instructions per layer
   (measured; QEMU -icount makes them exact and repeatable);
3. the profile build again under QEMU's block log: what ran, priced per instruction by the
   core's cycle model (:mod:`edgec.backends.cortex_m.cycle_model`): cycles and milliseconds
   at the part's clock. These are **estimates**, labelled as such everywhere.

Memory comes from the compiled project: weight bytes per layer (flash), tensor bytes live
during each layer (plus its scratch) and the arena peak.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgec import api
from edgec.backends import cortex_m
from edgec.backends.cortex_m import emitter
from edgec.backends.cortex_m.cycle_model import MODELS
from edgec.backends.cortex_m.trace import traced_layer_cycles
from edgec.errors import EdgecError
from edgec.target import Target, get_target

ESTIMATE_NOTE = ("cycles and ms are estimates: executed instructions priced by a per-core cycle model from the "
                 "technical reference manuals, without flash wait states, caches or bus contention")


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    index: int
    name: str
    op: str
    macs: int
    instructions: int        # measured
    estimated_cycles: float  # estimate
    estimated_ms: float      # estimate
    weight_bytes: int
    live_bytes: int

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


@dataclasses.dataclass(frozen=True)
class TargetProfile:
    target: str
    part: str
    clock_hz: int
    ram_bytes: int
    flash_total: int
    arena_bytes: int
    uninstrumented_instructions: int
    cycle_model: str
    layers: list[LayerProfile]

    @property
    def instructions(self) -> int:
        return sum(layer.instructions for layer in self.layers)

    @property
    def estimated_cycles(self) -> float:
        return sum(layer.estimated_cycles for layer in self.layers)

    @property
    def estimated_ms(self) -> float:
        return self.estimated_cycles / self.clock_hz * 1e3

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def instrumentation_error(self) -> float:
        """|sum of per-layer counts - whole-model count| / whole-model count."""
        return abs(self.instructions - self.uninstrumented_instructions) / self.uninstrumented_instructions


@dataclasses.dataclass(frozen=True)
class Profile:
    model: str
    targets: list[TargetProfile]

    def to_dict(self) -> dict:
        def target_dict(t: TargetProfile) -> dict:
            return {**{k: v for k, v in dataclasses.asdict(t).items() if k != "layers"},
                    "instructions": t.instructions, "estimated_cycles": t.estimated_cycles,
                    "estimated_ms": t.estimated_ms, "macs": t.macs,
                    "instrumentation_error": t.instrumentation_error,
                    "layers": [{**dataclasses.asdict(layer), "instructions_per_mac": layer.instructions_per_mac}
                               for layer in t.layers]}
        return {"model": self.model, "note": ESTIMATE_NOTE, "targets": [target_dict(t) for t in self.targets]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["target", "index", "layer", "op", "macs", "instructions", "instructions_per_mac",
                         "estimated_cycles", "estimated_ms", "weight_bytes", "live_bytes"])
        for t in self.targets:
            for layer in t.layers:
                per_mac = f"{layer.instructions_per_mac:.4f}" if layer.macs else ""
                writer.writerow([t.target, layer.index, layer.name, layer.op, layer.macs, layer.instructions, per_mac,
                                 f"{layer.estimated_cycles:.0f}", f"{layer.estimated_ms:.4f}", layer.weight_bytes,
                                 layer.live_bytes])
        return out.getvalue()


def _sample_row(model, inputs) -> np.ndarray:
    """One int8 input row: the first sample of ``inputs`` (path, array), or fixed random data."""
    if inputs is None:
        rng = np.random.default_rng(0)
        return rng.integers(-128, 128, math.prod(api.input_specs(model)[0].shape)).astype(np.int8)[None]
    return cortex_m.int8_inputs(model, api.input_samples(model, inputs)[:1])


def profile_project(project: Path, inputs=None, advance: Callable[[str], None] | None = None) -> TargetProfile:
    """Profile a compiled project directory on its target's board (see the module docstring)."""
    project = Path(project).resolve()
    manifest, target, model = cortex_m.load_project(project)
    step = advance or (lambda what: None)
    row = _sample_row(model, inputs)
    step("whole-model run")
    whole = cortex_m.run_project(project, row)
    step("per-layer timer run")
    timed = cortex_m.run_project(project, row, variant="profile")
    called = [layer["index"] for layer in manifest["layers"] if layer["kernel"] != "alias"]
    step("block-log run (cycle estimate)")
    model_cycles = MODELS[target.core.cpu]
    cycles = traced_layer_cycles(cortex_m.executable_path(project, variant="profile"), target, row.tobytes(),
                                 len(called), model_cycles)
    layers = []
    for index, estimate in zip(called, cycles, strict=True):
        entry = manifest["layers"][index]
        layers.append(LayerProfile(index, entry["name"], entry["op"], entry["macs"],
                                   timed.layer_instructions.get(index, 0), estimate,
                                   estimate / target.part.clock_hz * 1e3, entry["weight_bytes"], entry["live_bytes"]))
    return TargetProfile(target.name, target.part.name, target.part.clock_hz, target.part.ram_bytes,
                         manifest["flash"]["total"], manifest["ram"]["arena"], whole.instructions[0],
                         model_cycles.sources, layers)


def profile(source, targets: Sequence[str] | str | None = None, *, calib=None, inputs=None, method: str = "minmax",
            rounding: str | None = None, example_inputs=None, input_shapes=None, ignore_size_limits: bool = False,
            advance: Callable[[str], None] | None = None) -> Profile:
    """Profile ``source`` (a model, or a compiled project directory) on each of ``targets``.

    Exported as ``edgec.profile``. ``targets``: names or a comma-separated string (not
    needed for a project, which has its own). ``inputs``: the sample to run (default: fixed
    random int8 data). A model too large for a target's part raises
    :class:`~edgec.errors.SizeLimitError` unless ``ignore_size_limits`` (the QEMU board
    has room beyond the part). ``advance(description)`` is called as each stage starts.
    """
    names = targets.split(",") if isinstance(targets, str) else list(targets or [])
    if isinstance(source, str | Path) and Path(source).is_dir():
        manifest = emitter.read_manifest(Path(source))
        if names and [get_target(name).name for name in names] != [manifest["target"]]:
            raise EdgecError(f"'{source}' is compiled for {manifest['target']}, not {', '.join(names)}",
                             "profile the model file for other targets, or omit --target")
        return Profile(manifest["model"], [profile_project(Path(source), inputs, advance)])
    if not names:
        raise EdgecError("no target to profile on", "give --target, e.g. --target cortex-m3,cortex-m4")
    resolved: list[Target] = [get_target(name) for name in names]
    model = api.quantize(source, calib, method=method, rounding=rounding, example_inputs=example_inputs,
                         input_shapes=input_shapes)
    name = api.model_name(source)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgec-profile-") as tmp:
        for target in resolved:
            if advance:
                advance(f"{target.name}: compiling")
            out = Path(tmp) / target.name
            cortex_m.compile_project(model, target, out, name, ignore_size_limits=ignore_size_limits)
            results.append(profile_project(out, inputs, advance and (lambda what, t=target: advance(f"{t.name}: {what}"))))
    return Profile(name, results)
