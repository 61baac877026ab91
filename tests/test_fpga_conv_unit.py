"""The convolution packed MAC unit (``edgec_conv_mac``, scheme ``conv``): lint-clean, and bit-exact
in iverilog and Verilator against segment sums computed directly with numpy (and the Python model
``packed_datapath.run`` on the same vectors).

Vectors per plan: every weight value x every activation value at every (weight, activation)
operand position (the other operands random; at 8 bits a random 256 of the pairs per position),
grouped into accumulations of random length, with bubbles and clock-enable stalls between beats
and accumulations back to back; then corner accumulations of the plan's full length ``K`` (the
largest accumulation the plan's packing allows; the fast tests cap it at :data:`K_CAP` and
the slow tier runs the corners at the full ``K``): all four (min/max weight, min/max
activation) combinations, e.g. all weights ``-2**(W-1)`` with the largest unsigned activation,
and two sequences of random corners. Plans cover DSP48E2 and
DSP48E1, signed and unsigned activations and weights, narrow and non-narrow weights, operands
narrower than the canary. One W4A4 unit goes through yosys ``synth_xilinx -family xcup``.
Each tool's tests skip, saying so, when the tool is absent.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from edgec.backends.fpga import conv_packed_rtl, packed_rtl
from edgec.backends.fpga import packed_datapath as pd
from edgec.backends.fpga.lanes import Packing, plan_packing
from edgec.errors import EdgecError
from edgec.inttype import IntType

from fpga_units_helpers import (
    assert_lint_clean,
    decode,
    run_iverilog,
    run_verilator,
    vector_lines,
    write_testbench,
    xilinx_cells,
)

#: Longest accumulation of the fast tests; plans that allow more run their longest corners in the slow tier.
K_CAP = 1024
#: Above this many (w, x) value pairs, a random sample of them per operand position.
PAIR_LIMIT = 256
#: How often a bubble, and a stall, falls before a beat (twice per beat).
GAP_RATE = 0.05

#: name -> (primitive, weight type, activation type, K: the plan's largest accumulation).
PLANS = {
    "w4_int4_e2": ("DSP48E2", IntType(4, True), IntType(4, True), 1984),
    "w4n_uint4_e2": ("DSP48E2", IntType(4, True, True), IntType(4, False), 4915),
    "w4_uint4_e1": ("DSP48E1", IntType(4, True), IntType(4, False), 1090),
    "w3_int3_e2": ("DSP48E2", IntType(3, True), IntType(3, True), 28807),
    "w3n_int3_e2": ("DSP48E2", IntType(3, True, True), IntType(3, True), 2400),
    "w3n_uint3_e2": ("DSP48E2", IntType(3, True, True), IntType(3, False), 94),
    "w3_uint3_e1": ("DSP48E1", IntType(3, True), IntType(3, False), 4393),
    "w2_int2_e2": ("DSP48E2", IntType(2, True), IntType(2, True), 450),
    "w2n_uint2_e1": ("DSP48E1", IntType(2, True, True), IntType(2, False), 9600),
    "w2_uint3_e2": ("DSP48E2", IntType(2, True), IntType(3, False), 128),
    "u3_int2_e1": ("DSP48E1", IntType(3, False), IntType(2, True), 2057),
    "u2_uint2_e2": ("DSP48E2", IntType(2, False), IntType(2, False), 200),
    "w4_int2_e2": ("DSP48E2", IntType(4, True), IntType(2, True), 240),
    "w2_int8_e2": ("DSP48E2", IntType(2, True), IntType(8, True), 127),
}

def plan(name: str, longest: bool = False) -> Packing:
    """The plan for accumulations of ``K`` cycles (``longest``), else of ``min(K, K_CAP)``."""
    primitive, wt, it, k = PLANS[name]
    return plan_packing(primitive, wt, it, kind="conv", accumulation=k if longest else min(k, K_CAP))


def shape(packing: Packing) -> tuple:
    return (packing.scheme, packing.weights_per_word, packing.inputs_per_word, packing.lane_width,
            packing.canary_bits)


def segment_sums(packing: Packing, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Segment ``k`` of each accumulation: ``sum_t sum_{i+j=k} w[t, i] * x[t, j]`` (a 1-D
    convolution of each cycle's operands, summed over cycles)."""
    out = np.zeros(packing.lanes, dtype=np.int64)
    for t in range(len(w)):
        out += np.convolve(w[t], x[t])
    return out


def accumulations(packing: Packing, rng: np.random.Generator, exhaustive: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """The module docstring's vectors (``exhaustive``: all of them, else only the corners): a
    list of (w [cycles, N], x [cycles, M])."""
    wt, it = packing.weight_type, packing.input_type
    n, m, k = packing.weights_per_word, packing.inputs_per_word, packing.accumulation
    out = exhaustive_accumulations(packing, rng) if exhaustive else []
    for wv, xv in itertools.product((wt.min, wt.max), (it.min, it.max)):
        out.append((np.full((k, n), wv), np.full((k, m), xv)))
    for _ in range(2):
        out.append((rng.choice([wt.min, wt.max], (k, n)), rng.choice([it.min, it.max], (k, m))))
    return out


def exhaustive_accumulations(packing: Packing, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every weight value x activation value at every operand position, in random-length accumulations."""
    wt, it = packing.weight_type, packing.input_type
    n, m, k = packing.weights_per_word, packing.inputs_per_word, packing.accumulation
    pairs = np.array(list(itertools.product(range(wt.min, wt.max + 1), range(it.min, it.max + 1))))
    beats_w, beats_x = [], []
    for i, j in itertools.product(range(n), range(m)):
        chosen = pairs if len(pairs) <= PAIR_LIMIT else pairs[rng.choice(len(pairs), PAIR_LIMIT, replace=False)]
        w = rng.integers(wt.min, wt.max + 1, (len(chosen), n))
        x = rng.integers(it.min, it.max + 1, (len(chosen), m))
        w[:, i], x[:, j] = chosen[:, 0], chosen[:, 1]
        beats_w.append(w)
        beats_x.append(x)
    w_all, x_all = np.concatenate(beats_w), np.concatenate(beats_x)
    order = rng.permutation(len(w_all))
    w_all, x_all = w_all[order], x_all[order]
    out, start = [], 0
    while start < len(w_all):
        length = int(rng.integers(1, min(k, 24) + 1))
        out.append((w_all[start:start + length], x_all[start:start + length]))
        start += length
    return out


def model_sums(packing: Packing, sums: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``packed_datapath.run`` on every accumulation (batched by length), in order."""
    out = np.empty((len(sums), packing.lanes), dtype=np.int64)
    by_length: dict[int, list[int]] = {}
    for index, (w, _) in enumerate(sums):
        by_length.setdefault(len(w), []).append(index)
    for indices in by_length.values():
        w = np.stack([sums[i][0] for i in indices])
        x = np.stack([sums[i][1] for i in indices])
        out[indices] = pd.run(packing, w, x)
    return out


def prepare(packing: Packing, directory: Path, seed: int, exhaustive: bool = True) -> tuple[list[Path], np.ndarray]:
    """The testbench and the unit's files in ``directory``, and the expected segment sums (the
    model is checked against them on the way)."""
    rng = np.random.default_rng(seed)
    sums = accumulations(packing, rng, exhaustive)
    want = np.array([segment_sums(packing, w, x) for w, x in sums])
    np.testing.assert_array_equal(model_sums(packing, sums), want)
    lines = vector_lines(packing, sums, rng, GAP_RATE)
    (directory / "vectors.hex").write_text("\n".join(lines) + "\n")
    files = conv_packed_rtl.render(packing, directory / "rtl")
    bench = write_testbench(directory, packing, len(lines), conv_packed_rtl.MODULE,
                            conv_packed_rtl.parameter_list(packing), "seg")
    return [bench, *files], want


def test_w4a4_on_dsp48e2_packs_at_least_six_products() -> None:
    for wt, it in ((IntType(4, True), IntType(4, True)), (IntType(4, True), IntType(4, False)), (IntType(4, True, True), IntType(4, True))):
        packing = plan_packing("DSP48E2", wt, it, kind="conv", accumulation=64)
        assert packing.scheme == "conv" and packing.weights_per_word * packing.inputs_per_word >= 6, packing
        assert conv_packed_rtl.parameters(packing)["N"] * conv_packed_rtl.parameters(packing)["M"] >= 6


@pytest.mark.parametrize("name", list(PLANS))
def test_k_is_the_plans_longest_accumulation(name: str) -> None:
    primitive, wt, it, k = PLANS[name]
    longest = shape(plan(name, longest=True))
    assert shape(plan_packing(primitive, wt, it, kind="conv", accumulation=k + 1)) != longest
    assert shape(plan_packing(primitive, wt, it, kind="conv", accumulation=1)) == longest == shape(plan(name))


def test_parameters_and_sources_are_exact_and_deterministic() -> None:
    packing = plan("w4_int4_e2")
    assert packing.weights_per_word == 4 and packing.inputs_per_word == 3 and packing.lane_width == 6
    params = conv_packed_rtl.parameters(packing)
    assert params == {"N": 4, "M": 3, "W": 4, "A": 4, "W_SIGNED": 1, "X_SIGNED": 1, "L": 6, "CB": 3,
                      "SB": packing.sideband_bits, "ACC": packing.acc_bits, "CARRY_LOW": 0xFEFDFDFEFF,
                      "AD_BITS": 27}
    assert ".CARRY_LOW(40'hfefdfdfeff)" in conv_packed_rtl.parameter_list(packing)
    sources = conv_packed_rtl.unit_sources(packing)
    assert list(sources) == [*packed_rtl.DSP48_FILES, "edgec_conv_mac.v"] == list(conv_packed_rtl.FILES)
    assert all(text.startswith("// generated by edgec") for text in sources.values())
    assert sources == conv_packed_rtl.unit_sources(plan("w4_int4_e2"))


def test_other_schemes_are_refused() -> None:
    sdv = plan_packing("DSP48E2", IntType(4, True), IntType(4, False), kind="mvu", accumulation=64)
    with pytest.raises(EdgecError, match="edgec_conv_mac implements the 'conv' packing"):
        conv_packed_rtl.render(sdv, Path("unused"))
    dual = plan_packing("SB_MAC16", IntType(4, True), IntType(4, False), kind="conv", accumulation=64)
    with pytest.raises(EdgecError, match="not 'dual8x8' on SB_MAC16"):
        conv_packed_rtl.parameters(dual)


def test_corner_vectors_need_the_carry_correction() -> None:
    """The naive read-out is wrong on the corner accumulations, so they exercise the canaries."""
    packing = plan("w4_int4_e2")
    k, wt, it = packing.accumulation, packing.weight_type, packing.input_type
    w = np.full((1, k, packing.weights_per_word), wt.min)
    x = np.full((1, k, packing.inputs_per_word), it.max)
    exact = pd.reference(packing, w, x)
    np.testing.assert_array_equal(pd.run(packing, w, x), exact)
    assert not np.array_equal(pd.naive_extract(packing, pd.accumulator(packing, w, x)), exact)


@pytest.mark.parametrize("name", list(PLANS))
def test_lint_clean(name: str, tmp_path: Path) -> None:
    packing = plan(name)
    files = conv_packed_rtl.render(packing, tmp_path)
    assert_lint_clean(tmp_path, files, conv_packed_rtl.MODULE, conv_packed_rtl.parameters(packing), packing)


@pytest.mark.parametrize("name", list(PLANS))
def test_iverilog_bit_exact(name: str, tmp_path: Path) -> None:
    packing = plan(name)
    files, want = prepare(packing, tmp_path, seed=len(name))
    np.testing.assert_array_equal(decode(run_iverilog(tmp_path, files), packing), want)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, spec in PLANS.items() if spec[3] > K_CAP])
def test_iverilog_bit_exact_at_the_longest_accumulation(name: str, tmp_path: Path) -> None:
    packing = plan(name, longest=True)
    files, want = prepare(packing, tmp_path, seed=len(name), exhaustive=False)
    np.testing.assert_array_equal(decode(run_iverilog(tmp_path, files), packing), want)


@pytest.mark.parametrize("name", ["w4_int4_e2"])
def test_verilator_bit_exact(name: str, tmp_path: Path) -> None:
    packing = plan(name)
    files, want = prepare(packing, tmp_path, seed=len(name))
    np.testing.assert_array_equal(decode(run_verilator(tmp_path, files), packing), want)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["w3_int3_e2", "w2_int2_e2", "w4_uint4_e1"])
def test_verilator_bit_exact_more_plans(name: str, tmp_path: Path) -> None:
    test_verilator_bit_exact(name, tmp_path)


def test_w4a4_unit_maps_to_one_dsp48e2(tmp_path: Path) -> None:
    packing = plan("w4_int4_e2")
    files = conv_packed_rtl.render(packing, tmp_path)
    by_type = xilinx_cells(tmp_path, files, conv_packed_rtl.MODULE, conv_packed_rtl.parameters(packing))
    assert by_type.get("DSP48E2") == 1, by_type
    luts = sum(count for cell, count in by_type.items() if cell.startswith("LUT"))
    ffs = sum(count for cell, count in by_type.items() if cell.startswith("FD"))
    print(f"edgec_conv_mac {packing.describe()}: 1 DSP48E2, {luts} LUTs, {ffs} FFs, {by_type}")
