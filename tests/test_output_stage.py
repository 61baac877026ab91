"""The kernels' fast output stage (edgec_arith.h: requantization from the doubled accumulator,
the zero point folded into the rounding term) against the exact model of TFLite's arithmetic.

The rows come from backends/cortex_m/layers.py's requant_table, so the generator and the C
agree on the table's meaning; the C is compiled for the host with sanitizers. The DSP form
(SMMLAR/SMMLA) runs in every model test on the emulated Cortex-M4.
"""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from edgec.backends.cortex_m import emitter
from edgec.backends.cortex_m.output_stage import FAST_ACCUMULATOR_BOUND, FAST_RIGHT_MAX, requant_table

from exact_arith import clamp, mbqm

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler (cc)")

PROGRAM = r"""
#include <stdio.h>
#include "edgec_arith.h"

int main(void)
{
    long x, m, right, rounding, zp;
    while (scanf("%ld %ld %ld %ld %ld", &x, &m, &right, &rounding, &zp) == 5) {
        const edgec_requant_t q = {(int32_t)m, (int32_t)right, (int32_t)rounding};
        const edgec_outputs_t full = {0, &q, (int32_t)zp, -128, 127, 0};
        const edgec_outputs_t narrow = {0, &q, (int32_t)zp, -100, 90, 0};
        printf("%d %d %d\n", edgec_requantize(&full, q, (int32_t)x, EDGEC_SINGLE_ROUNDING, EDGEC_STAGE_FULL_RANGE),
               edgec_requantize(&narrow, q, (int32_t)x, EDGEC_SINGLE_ROUNDING, EDGEC_STAGE_CLAMP),
               edgec_requantize(&full, q, (int32_t)x, EDGEC_SINGLE_ROUNDING, EDGEC_STAGE_GENERIC));
    }
    return 0;
}
"""


def cases(seed: int, count: int) -> list[tuple[int, int, int, int]]:
    """(x, multiplier, right, zero point): uniform accumulators, small ones, and accumulators
    whose scaled value lies within a few units of a rounding tie, at every fast right shift."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < count:
        right = rng.randint(1, FAST_RIGHT_MAX)
        multiplier = rng.randint(1 << 30, (1 << 31) - 1) if rng.random() < 0.8 else rng.randint(1, 1 << 30)
        zero_point = rng.randint(-128, 127)
        kind = rng.random()
        if kind < 0.25:
            x = rng.randint(-FAST_ACCUMULATOR_BOUND + 1, FAST_ACCUMULATOR_BOUND - 1)
        elif kind < 0.5:
            x = rng.randint(-3000, 3000)
        else:
            tie = (2 * rng.randint(-300, 300) + 1) * (1 << (30 + right - 1))  # an odd multiple of half a unit
            x = tie // multiplier + rng.randint(-2, 2)
        if abs(x) < FAST_ACCUMULATOR_BOUND:
            rows.append((x, multiplier, right, zero_point))
    rows += [(FAST_ACCUMULATOR_BOUND - 1, (1 << 31) - 1, FAST_RIGHT_MAX, 127),
             (-FAST_ACCUMULATOR_BOUND + 1, (1 << 31) - 1, FAST_RIGHT_MAX, -128), (-1, 1 << 30, 1, 0), (1, 1 << 30, 1, 0)]
    return rows


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_fast_output_stage_is_tflite_requantization(tmp_path, rounding):
    (tmp_path / "edgec_config.h").write_text(
        f"#define EDGEC_SINGLE_ROUNDING {int(rounding == 'single')}\n#define EDGEC_FC_SINGLE_ROUNDING 0\n")
    (tmp_path / "edgec_arith.h").write_text((emitter.PACKAGE / "kernels" / "edgec_arith.h").read_text())
    (tmp_path / "main.c").write_text(PROGRAM)
    subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-I", str(tmp_path), "-o", str(tmp_path / "check"),
                    str(tmp_path / "main.c")], check=True)
    rows = cases(seed=7, count=20000)
    lines = []
    for x, multiplier, right, zero_point in rows:
        table = requant_table("t", [multiplier], [-right], zero_point).values[0]
        lines.append(f"{x} {table[0]} {table[1]} {table[2]} {zero_point}")
    result = subprocess.run([str(tmp_path / "check")], input="\n".join(lines) + "\n", capture_output=True,
                            text=True, check=True)
    outputs = [tuple(map(int, line.split())) for line in result.stdout.splitlines()]
    assert len(outputs) == len(rows)
    for (x, multiplier, right, zero_point), (full, narrow, generic) in zip(rows, outputs, strict=True):
        exact = mbqm(x, multiplier, -right, rounding) + zero_point
        assert (full, narrow, generic) == (clamp(exact, -128, 127), clamp(exact, -100, 90), clamp(exact, -128, 127)), \
            (x, multiplier, right, zero_point)
