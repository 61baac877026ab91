"""Per-layer profiles of a model on its targets: measured instructions, estimated cycles, memory.

:func:`profile` compiles a model for each requested target (or takes a compiled project) and
asks the target's backend to profile it (:meth:`edgec.backend.Backend.profile`; for Cortex-M,
:mod:`edgec.backends.cortex_m.profile`) on one input row. The result is a :class:`Profile`:
per target, per layer, measured instructions, estimated cycles and milliseconds (**estimates**,
labelled as such everywhere: :data:`ESTIMATE_NOTE`), weight bytes and live bytes.
No backend is imported until one is needed.
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
from edgec.backend import Backend, Project, backend_for_target, open_project
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
    #: For a model that branches, the path the profiled input took (its layers are those shown).
    path: tuple[int, ...] | None = None

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


def _sample_row(backend: Backend, model, inputs) -> np.ndarray:
    """One input row: the first sample of ``inputs`` (path, array), or fixed random int8 data."""
    if inputs is None:
        rng = np.random.default_rng(0)
        return rng.integers(-128, 128, math.prod(api.input_specs(model)[0].shape)).astype(np.int8)[None]
    return backend.input_rows(model, api.input_samples(model, inputs)[:1])


def _profile_project(backend: Backend, project: Project, inputs, advance: Callable[[str], None]) -> TargetProfile:
    return backend.profile(project, _sample_row(backend, project.model, inputs), advance)


def profile(source, targets: Sequence[str] | str | None = None, *, calib=None, inputs=None, method: str = "minmax",
            rounding: str | None = None, example_inputs=None, input_shapes=None, ignore_size_limits: bool = False,
            weight_bits: int = 8, activation_bits: int = 8, advance: Callable[[str], None] | None = None) -> Profile:
    """Profile ``source`` (a model, or a compiled project directory) on each of ``targets``.

    Exported as ``edgec.profile``. ``targets``: names or a comma-separated string (not
    needed for a project, which has its own). ``inputs``: the sample to run (default: fixed
    random int8 data). A model too large for a target's part raises
    :class:`~edgec.errors.SizeLimitError` unless ``ignore_size_limits`` (the QEMU board
    has room beyond the part). ``advance(description)`` is called as each stage starts.
    """
    names = targets.split(",") if isinstance(targets, str) else list(targets or [])
    step = advance or (lambda what: None)
    if isinstance(source, str | Path) and Path(source).is_dir():
        backend, project = open_project(source)
        if names and [get_target(name).name for name in names] != [project.target.name]:
            raise EdgecError(f"'{source}' is compiled for {project.target.name}, not {', '.join(names)}",
                             "profile the model file for other targets, or omit --target")
        return Profile(project.manifest["model"], [_profile_project(backend, project, inputs, step)])
    if not names:
        raise EdgecError("no target to profile on", "give --target, e.g. --target cortex-m3,cortex-m4")
    resolved: list[Target] = [get_target(name) for name in names]
    backends = [backend_for_target(target) for target in resolved]
    model = api.quantize(source, calib, method=method, rounding=rounding, example_inputs=example_inputs,
                         input_shapes=input_shapes, weight_bits=weight_bits, activation_bits=activation_bits)
    name = api.model_name(source)
    options = {"ignore_size_limits": True} if ignore_size_limits else {}
    results = []
    with tempfile.TemporaryDirectory(prefix="edgec-profile-") as tmp:
        for target, backend in zip(resolved, backends, strict=True):
            step(f"{target.name}: compiling")
            out = Path(tmp) / target.name
            api.compile_model(model, target, out, name=name, **options)
            results.append(_profile_project(backend, backend.load_project(out), inputs,
                                            lambda what, t=target: step(f"{t.name}: {what}")))
    return Profile(name, results)
