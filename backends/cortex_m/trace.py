"""What ran, instruction by instruction: QEMU's execution log joined with the ELF's code.

Two maintained tools, one for each half:

* QEMU (``-d in_asm,exec,nochain``) logs every translation block (TB) when it is translated
  (the guest addresses it covers) and every time it executes; with chaining off, no TB
  execution goes unlogged. A TB cut short by an I/O access under ``-icount`` is logged as
  ``rewound`` and re-executed from that instruction.
* capstone decodes each executed address from the ELF's bytes (read with pyelftools), giving
  the instruction class the cycle model prices (:mod:`backends.cortex_m.cycle_model`).

:func:`layer_traces` walks the executions in order: from the entry of ``edgec_invoke``, every
call of ``edgec_profile`` (after each layer, in the profile build) moves on to the next
layer; a branch is taken when the next TB does not start right after it. Each layer gets its
estimated cycles and its executed instructions by cost class (its instruction mix, what the
estimate is made of).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs
from elftools.elf.elffile import ELFFile

from edgec.backends.cortex_m.cycle_model import CycleModel, classify, register_count
from edgec.backends.cortex_m.qemu import execute, qemu_command
from edgec.errors import ToolchainError
from edgec.target import Target

_TRACE = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/")
_INSN = re.compile(r"^0x([0-9a-f]+):")
_REWOUND = re.compile(r"rewound execution of TB to ([0-9a-f]+)")


@dataclasses.dataclass(frozen=True)
class Instruction:
    address: int
    size: int
    kind: str        # cost class (cycle_model.classify)
    registers: int   # registers moved by LDM/STM/PUSH/POP


class Program:
    """The executable's code and function addresses, decoded on demand."""

    def __init__(self, elf_path: Path) -> None:
        self._segments: list[tuple[int, bytes]] = []
        self.symbols: dict[str, int] = {}
        with open(elf_path, "rb") as handle:
            elf = ELFFile(handle)
            for section in elf.iter_sections():
                if section["sh_flags"] & 0x4 and section["sh_size"]:  # SHF_EXECINSTR
                    self._segments.append((section["sh_addr"], section.data()))
            symtab = elf.get_section_by_name(".symtab")
            for symbol in symtab.iter_symbols() if symtab is not None else ():
                if symbol["st_info"]["type"] == "STT_FUNC":
                    self.symbols[symbol.name] = symbol["st_value"] & ~1
        self._decoder = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
        self._decoder.detail = True
        self._cache: dict[int, Instruction] = {}

    def instruction(self, address: int) -> Instruction:
        """The instruction at ``address``. One capstone cannot decode (Helium's vector
        instructions and Armv8.1-M's loop instructions: capstone 5 predates them) is an
        ``other`` of the width its first halfword gives (Thumb-2: 32-bit when its top five
        bits are 11101, 11110 or 11111)."""
        if address not in self._cache:
            for base, data in self._segments:
                if base <= address < base + len(data):
                    code = data[address - base:address - base + 4]
                    decoded = next(self._decoder.disasm(code, address, 1), None)
                    break
            else:
                raise ToolchainError(f"no instruction at 0x{address:08x} in the executable", "report this as a bug")
            if decoded is None:
                wide = len(code) >= 2 and int.from_bytes(code[:2], "little") >> 11 in (0b11101, 0b11110, 0b11111)
                self._cache[address] = Instruction(address, 4 if wide else 2, "other", 0)
            else:
                groups = {decoded.group_name(g) for g in decoded.groups}
                self._cache[address] = Instruction(address, decoded.size,
                                                   classify(decoded.insn_name(), decoded.op_str, groups),
                                                   register_count(decoded.op_str))
        return self._cache[address]


def executions(log_path: Path) -> Iterator[tuple[list[int], int]]:
    """(addresses of the TB, number of them that executed) for every logged TB execution."""
    blocks: dict[str, list[int]] = {}
    pending: dict[int, list[int]] = {}
    current: list[int] | None = None
    last: tuple[list[int], int] | None = None
    with open(log_path, errors="replace") as log:
        for line in log:
            if line.startswith("IN:"):
                current = []
                continue
            if current is not None:
                match = _INSN.match(line)
                if match:
                    current.append(int(match.group(1), 16))
                    continue
                if current:
                    pending[current[0]] = current
                current = None
            match = _TRACE.match(line)
            if match:
                host, pc = match.group(1), int(match.group(2), 16)
                if host not in blocks or blocks[host][0] != pc:
                    blocks[host] = pending.pop(pc, None) or blocks.get(host) or [pc]
                if last is not None:
                    yield last
                last = (blocks[host], len(blocks[host]))
                continue
            match = _REWOUND.search(line)
            if match and last is not None:
                stop = int(match.group(1), 16)
                last = (last[0], sum(1 for address in last[0] if address < stop))
    if last is not None:
        yield last


@dataclasses.dataclass
class LayerTrace:
    """One layer call's estimated cycles and its executed instructions by cost class (the
    cycle model's inputs: :func:`backends.cortex_m.cycle_model.classify`)."""

    cycles: float = 0.0
    mix: dict[str, int] = dataclasses.field(default_factory=dict)


def _instructions(program: Program, addresses: list[int], executed: int) -> Iterator[Instruction]:
    """The first ``executed`` instructions of a TB (an instruction QEMU's disassembler lacks,
    MVE, is listed as two halfwords: taken once)."""
    end = 0
    for address in addresses[:executed]:
        if address < end:
            continue
        instruction = program.instruction(address)
        end = address + instruction.size
        yield instruction


def block_cycles(program: Program, addresses: list[int], executed: int, model: CycleModel) -> float:
    """Estimated cycles of the first ``executed`` instructions of a TB, assuming its last branch
    is not taken; load/store pipelining is counted within the block only."""
    cycles, memory_before = 0.0, False
    for instruction in _instructions(program, addresses, executed):
        kind = instruction.kind
        cycles += model.pipelined_memory if kind in ("load", "store") and memory_before else model.costs[kind]
        if kind == "multiple" or (kind == "branch" and instruction.registers):
            cycles += model.per_register * instruction.registers
        memory_before = kind in ("load", "store", "load_double", "multiple")
    return cycles


def layer_traces(program: Program, log_path: Path, layer_count: int, model: CycleModel,
                 invoke_symbol: str = "edgec_invoke") -> list[LayerTrace]:
    """Estimated cycles and instruction mix of each layer call of one ``edgec_invoke`` (the
    project's invoke function, ``invoke_symbol``; see the module docstring); ``layer_count``
    is the number of layers that call a kernel."""
    invoke, profile = program.symbols[invoke_symbol], program.symbols["edgec_profile"]
    traces = [LayerTrace() for _ in range(layer_count)]
    known: dict[tuple[int, int, int], tuple[float, dict[str, int]]] = {}
    layer, active, previous = 0, False, None
    for addresses, executed in executions(log_path):
        start = addresses[0]
        if previous is not None:
            previous_tail, previous_layer = previous
            branch = program.instruction(previous_tail)
            if branch.kind == "branch" and start != branch.address + branch.size:
                traces[previous_layer].cycles += model.branch_taken - model.costs["branch"]
        previous = None
        if start == invoke and not active:
            active, layer = True, 0
        elif active and start == profile:
            layer += 1
            if layer == layer_count:
                active = False
        if not active:
            continue
        key = (start, len(addresses), executed)
        if key not in known:
            mix: dict[str, int] = {}
            for instruction in _instructions(program, addresses, executed):
                mix[instruction.kind] = mix.get(instruction.kind, 0) + 1
            known[key] = (block_cycles(program, addresses, executed, model), mix)
        cycles, mix = known[key]
        traces[layer].cycles += cycles
        for kind, count in mix.items():
            traces[layer].mix[kind] = traces[layer].mix.get(kind, 0) + count
        if executed == len(addresses):
            previous = (addresses[-1], layer)
    return traces


def traced_layer_traces(executable: Path, target: Target, sample: bytes, layer_count: int,
                        model: CycleModel, invoke_symbol: str = "edgec_invoke", timeout: int = 600) -> list[LayerTrace]:
    """Run the profile build once under block logging and return :func:`layer_traces`."""
    with tempfile.TemporaryDirectory(prefix="edgec-trace-") as tmp:
        work = Path(tmp)
        command = qemu_command(target, executable, "-d", "in_asm,exec,nochain", "-D", str(work / "qemu.log"))
        result = execute(command, work, sample, target.qemu.machine, timeout)
        if result.returncode != 0:
            raise ToolchainError(f"traced run of {executable.name} failed (exit {result.returncode})",
                                 "rerun edgec run on the project to see the failure")
        return layer_traces(Program(executable), work / "qemu.log", layer_count, model, invoke_symbol)


def traced_layer_cycles(executable: Path, target: Target, sample: bytes, layer_count: int,
                        model: CycleModel, invoke_symbol: str = "edgec_invoke", timeout: int = 600) -> list[float]:
    """The estimated cycles of :func:`traced_layer_traces`."""
    return [trace.cycles for trace in traced_layer_traces(executable, target, sample, layer_count, model,
                                                          invoke_symbol, timeout)]
