"""Per-core cycle estimates for executed Thumb-2 instructions.

An *estimate*, never a measurement: the emulator counts instructions exactly, and this model
turns the instructions that really ran (see :mod:`backends.cortex_m.trace`) into cycles with
per-class costs taken from the cores' technical reference manuals:

* Cortex-M3 TRM (r2p1), "Processor instruction timings": ALU 1; MUL 1, MLA/MLS 2;
  SMULL/UMULL 3-5 and SMLAL/UMLAL 4-7 (early termination: taken as 4 and 5); SDIV/UDIV 2-12
  (7); LDR/STR 2, 1 when following another load or store (address/data phases pipeline);
  LDRD/STRD 3; LDM/STM/PUSH/POP 1 + registers; branch taken 1 + P with P = 1-3 pipeline
  refill (3 in all), not taken 1; IT 1 (folding not modelled).
* Cortex-M4 TRM (r0p1), "Processor instruction timings": as the M3, but every multiply and
  multiply-accumulate (MLA, SMULL, SMLAL, SMLAD, SMLABB, ...) is single-cycle; SIMD and
  saturating instructions 1.
* Cortex-M33 TRM (r0p4), "Cycle timing": as the M4 for these classes; taken branches 2.
* Cortex-M55: no per-instruction table is used. Scalar instructions take the M33's costs;
  Helium (MVE) vector instructions and the Armv8.1-M loop instructions (LE, WLS, DLS),
  which capstone 5 does not decode, count as ``other`` (1 cycle), although the dual-beat core
  spends two cycles on most vector instructions (overlapping the next one's first beats).
  Coarse, as the M7's.
* Cortex-M7: ARM publishes no per-instruction table for this dual-issue core. The model takes
  ALU instructions as pairing (0.5 cycles each), loads, stores and multiplies as 1, LDM/STM as
  1 + registers / 2, and branches as correctly predicted (1). The coarsest of the four.

Not modelled on any core: flash wait states and accelerators (ART, caches, TCM), bus
contention, interrupts, the pipeline's data dependencies beyond load pipelining.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class CycleModel:
    """Costs per instruction class; ``branch_taken`` replaces ``branch`` for taken branches;
    ``pipelined_memory`` is the cost of a single load or store that follows another one;
    ``per_register`` is added per register of LDM/STM/PUSH/POP."""

    core: str
    costs: dict[str, float]
    branch_taken: float
    pipelined_memory: float
    per_register: float
    sources: str


_M3 = {"alu": 1, "mul": 1, "mul_long": 4, "div": 7, "load": 2, "store": 2, "load_double": 3, "multiple": 1,
       "branch": 1, "it": 1, "float": 1, "other": 1}
_M4 = {**_M3, "mul_long": 1}

MODELS = {
    "cortex-m3": CycleModel("cortex-m3", {**_M3, "mul_acc": 2}, 3, 1, 1, "Cortex-M3 TRM r2p1, instruction timings"),
    "cortex-m4": CycleModel("cortex-m4", {**_M4, "mul_acc": 1}, 3, 1, 1, "Cortex-M4 TRM r0p1, instruction timings"),
    "cortex-m33": CycleModel("cortex-m33", {**_M4, "mul_acc": 1}, 2, 1, 1, "Cortex-M33 TRM r0p4, cycle timing"),
    "cortex-m55": CycleModel("cortex-m55", {**_M4, "mul_acc": 1}, 2, 1, 1,
                             "coarse model: the Cortex-M33's timings for scalar code, MVE instructions 1 cycle"),
    "cortex-m7": CycleModel("cortex-m7", {"alu": 0.5, "mul": 1, "mul_acc": 1, "mul_long": 1, "div": 7, "load": 1,
                                          "store": 1, "load_double": 1, "multiple": 1, "branch": 1, "it": 0.5,
                                          "float": 1, "other": 1}, 1, 1, 0.5,
                            "coarse dual-issue model (no public per-instruction table for the Cortex-M7)"),
}

_MUL_LONG = {"smull", "umull", "smlal", "umlal", "smlald", "smlaldx", "smlsld", "smlsldx", "umaal", "smlalbb",
             "smlalbt", "smlaltb", "smlaltt"}
_MUL_ACC = {"mla", "mls", "smlad", "smladx", "smlsd", "smlsdx", "smlabb", "smlabt", "smlatb", "smlatt", "smlawb",
            "smlawt", "smmla", "smmls", "smmlar", "smmlsr", "usada8"}
_MUL = {"mul", "smulbb", "smulbt", "smultb", "smultt", "smulwb", "smulwt", "smuad", "smuadx", "smusd", "smusdx",
        "smmul", "smmulr"}
_LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "ldrt", "ldrbt", "ldrht", "ldrsbt",
          "ldrsht"}
_STORES = {"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht"}
_OTHER = {"nop", "dsb", "dmb", "isb", "bkpt", "svc", "wfi", "wfe", "msr", "mrs", "cps"}


def classify(name: str, op_str: str, groups: set[str]) -> str:
    """The cost class of one instruction from capstone's base name (``insn_name()``, no
    condition or width suffix), operand text and group names."""
    writes_pc = op_str.split(",")[0].strip() == "pc" or (name in ("pop", "ldm") and "pc" in op_str)
    if "jump" in groups or "call" in groups or writes_pc or name in ("bx", "blx", "tbb", "tbh"):
        return "branch"
    if name in _MUL_LONG:
        return "mul_long"
    if name in _MUL_ACC:
        return "mul_acc"
    if name in _MUL:
        return "mul"
    if name in ("sdiv", "udiv"):
        return "div"
    if name in ("ldrd", "strd"):
        return "load_double"
    if name.startswith(("ldm", "stm")) or name in ("push", "pop"):
        return "multiple"
    if name in _LOADS:
        return "load"
    if name in _STORES:
        return "store"
    if name == "it":
        return "it"
    if name.startswith("v"):
        return "float"
    if name in _OTHER:
        return "other"
    return "alu"


def register_count(op_str: str) -> int:
    """Registers in the list of an LDM/STM/PUSH/POP operand string (``{r4, r5, ...}``)."""
    inside = op_str[op_str.find("{") + 1:op_str.find("}")] if "{" in op_str else ""
    count = 0
    for part in (p.strip() for p in inside.split(",") if p.strip()):
        if "-" in part:
            low, high = (int(re.sub(r"\D", "", r) or 0) for r in part.split("-"))
            count += high - low + 1
        else:
            count += 1
    return count
