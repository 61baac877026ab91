"""The instruction counter: timer ticks under QEMU -icount (a CMSDK APB timer, or the SSE-300
system counter on the Cortex-M55's board), calibrated on every board against loops of known length."""

from __future__ import annotations

import re
import subprocess

import pytest

from edgec.backends.cortex_m import emitter, qemu
from edgec.target import get_target

from conftest import needs_toolchain

LOOP_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#define TIMER ((volatile uint32_t *)TIMER_BASE)
__attribute__((noinline)) static void spin(uint32_t n) { __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n)); }
#ifdef SSE_COUNTER
#define START() (TIMER[0] = 1)
#define NOW() (TIMER[2])
#else
#define START() (TIMER[0] = 0, TIMER[2] = 0xFFFFFFFFu, TIMER[1] = 0xFFFFFFFFu, TIMER[0] = 1)
#define NOW() (0xFFFFFFFFu - TIMER[1])
#endif
static uint32_t measure(uint32_t n)
{
    START();
    const uint32_t start = NOW();
    spin(n);
    return NOW() - start;
}
int main(void)
{
    printf("ticks %lu %lu\n", (unsigned long)measure(500000), (unsigned long)measure(1000000));
    return 0;
}
"""


@needs_toolchain
@pytest.mark.parametrize("name", ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"])
def test_ticks_convert_to_the_exact_instruction_count(tmp_path, name):
    target = get_target(name)
    (tmp_path / "linker.ld").write_text(emitter.template_environment().get_template("linker.ld.j2").render(
        version="test", target=target, stack_bytes=emitter.STACK_RESERVE_BYTES))
    (tmp_path / "loop.c").write_text(LOOP_PROGRAM)
    kind = ["-DSSE_COUNTER"] if target.qemu.timer == "sse-counter" else []
    subprocess.run(["arm-none-eabi-gcc", *target.compiler_flags, "-O2", f"-DTIMER_BASE={target.qemu.timer_base}u", *kind,
                    str(tmp_path / "loop.c"), str(emitter.PACKAGE / "harness" / "startup.c"), "--specs=rdimon.specs",
                    "-T", str(tmp_path / "linker.ld"), "-o", str(tmp_path / "loop.elf")], check=True,
                   capture_output=True)
    result = subprocess.run(qemu.qemu_command(target, tmp_path / "loop.elf"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    ticks = re.search(r"ticks (\d+) (\d+)", result.stdout)
    assert ticks is not None, result.stdout
    short, long = (int(t) for t in ticks.groups())
    # two instructions per iteration, plus the call, return and timer read around the loop
    short_count = qemu.ticks_to_instructions(short, target.qemu.timer_hz)
    long_count = qemu.ticks_to_instructions(long, target.qemu.timer_hz)
    assert long_count - short_count == 1_000_000
    assert 1_000_000 <= short_count <= 1_000_010
