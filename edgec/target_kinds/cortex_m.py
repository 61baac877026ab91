"""The ``cortex-m`` kind: an Arm Cortex-M core, the typical part it comes in, the compiler
flags for it and the QEMU board that emulates it.

``[core] features`` is the set of optional extensions the core has and edgec's kernels may use:
``dsp`` (the DSP extension's SIMD multiply-accumulate, SMLAD), ``fpu`` and ``mve`` (Helium, the
M-profile vector extension of Armv8.1-M: the Cortex-M55's kernels).
Which FPU the build targets is the business of ``[compiler] flags`` (``-mfpu=...``,
``-mfloat-abi=...``), which the C build uses as they are; the feature only says there is one.
A core may have only the features it can have (:data:`CORE_FEATURES`).
"""

from __future__ import annotations

import dataclasses

from edgec.errors import EdgecError
from edgec.target_kinds.schema import Address, Kind, Positive, Target

#: The optional extensions a ``[core] features`` set may name.
FEATURES = ("dsp", "fpu", "mve")
#: The cores edgec's kernels and cycle models cover (``core.cpu``), each with the features it can have.
CORE_FEATURES = {
    "cortex-m3": frozenset(),
    "cortex-m4": frozenset({"dsp", "fpu"}),
    "cortex-m7": frozenset({"dsp", "fpu"}),
    "cortex-m33": frozenset({"dsp", "fpu"}),
    "cortex-m55": frozenset({"dsp", "fpu", "mve"}),
}
#: The counters the QEMU harness can time inference with (``[qemu] timer``): a CMSDK APB timer
#: (the default), or the SSE-300 system counter (Corstone-300 boards: its CNTCR at ``timer_base``).
TIMERS = ("cmsdk", "sse-counter")
CORES = tuple(CORE_FEATURES)
_FEATURES_FIX = ('write the core\'s extensions as a set: core.features = ["dsp", "fpu"] '
                 '(any of dsp, fpu, mve; features = [] for none); the FPU itself is chosen by compiler.flags')


@dataclasses.dataclass(frozen=True)
class Core:
    """The core edgec generates code for and the extensions it has."""

    cpu: str
    arch: str
    features: frozenset[str]

    @property
    def dsp(self) -> bool:
        """Whether the core has the DSP extension (the kernels' SIMD multiply-accumulate)."""
        return "dsp" in self.features


@dataclasses.dataclass(frozen=True)
class Part:
    """The typical part whose clock and memories are used for reports and size checks."""

    name: str
    clock_hz: Positive
    flash_bytes: Positive
    ram_bytes: Positive


@dataclasses.dataclass(frozen=True)
class Compiler:
    """The arm-none-eabi-gcc flags that select the core, instruction set and float ABI."""

    flags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Qemu:
    """The emulated board: machine name, memory map and the counter used for counting: at
    ``timer_base``, counting at ``timer_hz``, a CMSDK APB timer unless ``timer`` names
    another of :data:`TIMERS`."""

    machine: str
    flash_origin: Address
    flash_bytes: Positive
    ram_origin: Address
    ram_bytes: Positive
    timer_base: Address
    timer_hz: Positive
    timer: str | None = None


@dataclasses.dataclass(frozen=True)
class CortexMTarget(Target):
    """A Cortex-M target: the core, its typical part, the build's flags and the emulating board."""

    core: Core
    part: Part
    compiler: Compiler
    qemu: Qemu

    @property
    def compiler_flags(self) -> tuple[str, ...]:
        """``[compiler] flags``, as the C build and the firmware contract take them."""
        return self.compiler.flags


def check(target: CortexMTarget, source: str) -> None:
    """A core edgec covers, with only features it names and that core can have."""
    cpu = target.core.cpu
    if cpu not in CORE_FEATURES:
        raise EdgecError(f"target file {source}: core.cpu '{cpu}' is not a core edgec supports",
                         f"use one of {', '.join(CORES)} (the core your part has)")
    if target.qemu.timer not in (None, *TIMERS):
        raise EdgecError(f"target file {source}: qemu.timer '{target.qemu.timer}' is not a counter edgec reads",
                         f"use one of {', '.join(TIMERS)} (or leave it out for a CMSDK APB timer)")
    for feature in sorted(target.core.features):
        if feature not in FEATURES:
            raise EdgecError(f"target file {source}: core.features names '{feature}', which edgec does not know",
                             f"use only {', '.join(FEATURES)}")
        if feature not in CORE_FEATURES[cpu]:
            allowed = ", ".join(sorted(CORE_FEATURES[cpu])) or "none"
            raise EdgecError(f"target file {source}: core.features names '{feature}', which a {cpu} does not have",
                             f"a {cpu} can have: {allowed}")


def _kib(size: int) -> str:
    return f"{size // 1024} KiB"


KIND = Kind(
    name="cortex-m",
    record=CortexMTarget,
    summary="an Arm Cortex-M core: [core] cpu, arch, features; [part] name, clock_hz, flash_bytes, ram_bytes; "
            "[compiler] flags; [qemu] machine and memory map",
    columns=(
        ("core", lambda t: t.core.cpu),
        ("arch", lambda t: t.core.arch),
        ("features", lambda t: ", ".join(sorted(t.core.features)) or "-"),
        ("typical part", lambda t: t.part.name),
        ("clock", lambda t: f"{t.part.clock_hz / 1e6:g} MHz"),
        ("flash", lambda t: _kib(t.part.flash_bytes)),
        ("RAM", lambda t: _kib(t.part.ram_bytes)),
        ("QEMU machine", lambda t: t.qemu.machine),
    ),
    check=check,
    replaced_keys={"core.dsp": _FEATURES_FIX, "core.fpu": _FEATURES_FIX},
)
