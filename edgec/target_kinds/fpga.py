"""The ``fpga`` kind: a device of a known family, its DSP primitive with the multiplier's
operand widths, and its logic and on-chip memory counted in primitives.

The family fixes the DSP primitive and the LUT size (:data:`FAMILIES`); the primitive fixes
the multiplier's widths and the accumulator's (:data:`DSP_PRIMITIVES`). A file states both
anyway, so that it reads on its own, and is checked against these tables. Memory comes in
two tables of the same form: ``[block_ram]`` (BRAM36 on AMD parts, EBR on iCE40) and the
optional ``[large_ram]`` (UltraRAM on UltraScale+, SPRAM on iCE40 UltraPlus).
"""

from __future__ import annotations

import dataclasses

from edgec.errors import EdgecError
from edgec.target_kinds.schema import Kind, Positive, Target


@dataclasses.dataclass(frozen=True)
class Family:
    dsp_primitive: str
    lut_inputs: int


#: The device families edgec knows (the fabric, as yosys' synth_xilinx -family xc7 / xcup and synth_ice40 see it).
FAMILIES = {
    "xilinx-7series": Family("DSP48E1", 6),
    "xilinx-ultrascale+": Family("DSP48E2", 6),
    "ice40": Family("SB_MAC16", 4),
}


@dataclasses.dataclass(frozen=True)
class Multiplier:
    a_bits: int
    b_bits: int
    accumulator_bits: int


#: Each DSP primitive's signed multiplier (a_bits × b_bits) and accumulator. AMD UG953 (DSP48E1:
#: A[24:0] × B[17:0] into 48-bit P), UG579 (DSP48E2: 27 × 18 + 48); Lattice's DSP Function Usage
#: Guide (SB_MAC16: 16 × 16 into a 32-bit accumulator).
DSP_PRIMITIVES = {
    "DSP48E1": Multiplier(25, 18, 48),
    "DSP48E2": Multiplier(27, 18, 48),
    "SB_MAC16": Multiplier(16, 16, 32),
}


@dataclasses.dataclass(frozen=True)
class Device:
    """The chip (``part`` as the vendor's tools name it), the default fabric clock, the board it sits on."""

    family: str
    part: str
    clock_hz: Positive
    board: str | None = None


@dataclasses.dataclass(frozen=True)
class Dsp:
    """The hard multiplier blocks: how many, and the signed widths one of them multiplies."""

    primitive: str
    count: int
    a_bits: Positive
    b_bits: Positive
    accumulator_bits: Positive


@dataclasses.dataclass(frozen=True)
class Logic:
    luts: Positive
    ffs: Positive


@dataclasses.dataclass(frozen=True)
class Memory:
    """``count`` blocks of the ``primitive``, each of ``bits`` (parity bits included)."""

    primitive: str
    count: Positive
    bits: Positive

    @property
    def total_bits(self) -> int:
        return self.count * self.bits


@dataclasses.dataclass(frozen=True)
class FpgaTarget(Target):
    """An FPGA target: the device, its DSP blocks, logic and on-chip memory."""

    device: Device
    dsp: Dsp
    logic: Logic
    block_ram: Memory
    large_ram: Memory | None = None

    @property
    def lut_inputs(self) -> int:
        """The LUT size of the family (6 on AMD 7-series and UltraScale+, 4 on iCE40)."""
        return FAMILIES[self.device.family].lut_inputs


def check(target: FpgaTarget, source: str) -> None:
    """A known family, its own DSP primitive, and that primitive's widths."""
    family = target.device.family
    if family not in FAMILIES:
        raise EdgecError(f"target file {source}: device.family '{family}' is not a family edgec knows",
                         f"use one of {', '.join(FAMILIES)}")
    expected = FAMILIES[family].dsp_primitive
    if target.dsp.primitive != expected:
        raise EdgecError(f"target file {source}: dsp.primitive '{target.dsp.primitive}' is not the {family} DSP",
                         f"write primitive = \"{expected}\"")
    widths = DSP_PRIMITIVES[expected]
    for key in ("a_bits", "b_bits", "accumulator_bits"):
        if getattr(target.dsp, key) != getattr(widths, key):
            raise EdgecError(f"target file {source}: dsp.{key} = {getattr(target.dsp, key)} does not match {expected}",
                             f"a {expected} has {key} = {getattr(widths, key)}")


def _memory(memory: Memory | None) -> str:
    return "-" if memory is None else f"{memory.count:,} × {memory.bits / 1024:g} Kib"


KIND = Kind(
    name="fpga",
    record=FpgaTarget,
    summary="an FPGA: [device] family, part, clock_hz, board (optional); [dsp] primitive, count, a_bits, b_bits, "
            "accumulator_bits; [logic] luts, ffs; [block_ram] and optional [large_ram]: primitive, count, bits",
    columns=(
        ("family", lambda t: t.device.family),
        ("part", lambda t: t.device.part),
        ("board", lambda t: t.device.board or "-"),
        ("DSP", lambda t: f"{t.dsp.count:,} {t.dsp.primitive} {t.dsp.a_bits}×{t.dsp.b_bits}"),
        ("LUTs", lambda t: f"{t.logic.luts:,} LUT{t.lut_inputs}"),
        ("FFs", lambda t: f"{t.logic.ffs:,}"),
        ("block RAM", lambda t: _memory(t.block_ram)),
        ("large RAM", lambda t: _memory(t.large_ram)),
        ("clock", lambda t: f"{t.device.clock_hz / 1e6:g} MHz"),
    ),
    check=check,
)
