"""The lane planner's numbers and the exactness of the packed datapath's integer model.

Exhaustive over every weight/activation pair at 2 to 4 bits (jointly over all lanes where
that space is small, pair by pair per lane with the other lanes random otherwise), over
multi-cycle accumulations in which every combination occurs at every cycle after different
histories, plus the corners (all weights most negative, activations at their extremes) over
the longest accumulation a plan is made for; random and corner vectors at 8 bits.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgec.backends.fpga import packed_datapath as pd
from edgec.backends.fpga.lanes import Packing, finn_lanes, plan_packing
from edgec.errors import EdgecError
from edgec.inttype import IntType

SMALL_TYPES = [(IntType(w, True, narrow), IntType(a, signed))
               for w in (2, 3, 4) for a in (2, 3, 4) for narrow in (False, True) for signed in (True, False)]
JOINT_LIMIT = 1 << 16


def operand_columns(packing: Packing) -> int:
    return packing.weights_per_word + packing.inputs_per_word


def values(int_type: IntType) -> np.ndarray:
    return np.arange(int_type.min, int_type.max + 1, dtype=np.int64)


def one_cycle_space(packing: Packing, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (weights, inputs) for one cycle covering every pair: the whole joint space
    when it is small, else every (w_i, x_j) pair per operand position, the rest random."""
    wv, xv = values(packing.weight_type), values(packing.input_type)
    n, m = packing.weights_per_word, packing.inputs_per_word
    if len(wv) ** n * len(xv) ** m <= JOINT_LIMIT:
        grid = np.array(list(itertools.product(*([wv] * n + [xv] * m))), dtype=np.int64)
        return grid[:, :n], grid[:, n:]
    pairs = np.array(list(itertools.product(wv, xv)), dtype=np.int64)
    rows_w, rows_x = [], []
    for i in range(n):
        for j in range(m):
            w = rng.choice(wv, (len(pairs) * 32, n))
            x = rng.choice(xv, (len(pairs) * 32, m))
            w[:, i], x[:, j] = np.repeat(pairs[:, 0], 32), np.repeat(pairs[:, 1], 32)
            rows_w.append(w)
            rows_x.append(x)
    return np.concatenate(rows_w), np.concatenate(rows_x)


def multi_cycle(w: np.ndarray, x: np.ndarray, cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """``cycles`` cycles where cycle ``t`` takes the rows shifted by ``t * step``: each row's
    combination occurs at every cycle position, after different earlier cycles."""
    step = max(1, len(w) // cycles + 7)
    order = [np.roll(np.arange(len(w)), t * step) for t in range(cycles)]
    return np.stack([w[o] for o in order], axis=1), np.stack([x[o] for o in order], axis=1)


def corner_sequences(packing: Packing, cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """Constant and alternating extreme operands for ``cycles`` cycles (P and every counter at
    their extremes)."""
    wt, it = packing.weight_type, packing.input_type
    n, m = packing.weights_per_word, packing.inputs_per_word
    rows = []
    for wa, wb, xa, xb in itertools.product((wt.min, wt.max), (wt.min, wt.max), (it.min, it.max), (it.min, it.max)):
        w = np.where(np.arange(cycles)[:, None] % 2 == 0, wa, wb) * np.ones((cycles, n), dtype=np.int64)
        x = np.where(np.arange(cycles)[:, None] % 2 == 0, xa, xb) * np.ones((cycles, m), dtype=np.int64)
        rows.append((w, x))
        stagger = w.copy()
        stagger[:, ::2] = wt.min if wa == wt.max else wt.max
        rows.append((stagger, x))
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def check(packing: Packing, w: np.ndarray, x: np.ndarray) -> None:
    np.testing.assert_array_equal(pd.run(packing, w, x), pd.reference(packing, w, x), err_msg=packing.describe())


@pytest.mark.parametrize("primitive, kind", [("DSP48E2", "mvu"), ("DSP48E2", "conv"), ("DSP48E1", "mvu"),
                                             ("DSP48E1", "conv"), ("SB_MAC16", "mvu")])
def test_exhaustive_small_widths(primitive: str, kind: str) -> None:
    rng = np.random.default_rng(11)
    for weight_type, input_type in SMALL_TYPES:
        packing = plan_packing(primitive, weight_type, input_type, kind=kind, accumulation=256)
        w1, x1 = one_cycle_space(packing, rng)
        check(packing, w1[:, None], x1[:, None])
        check(packing, *multi_cycle(w1, x1, 3))
        check(packing, *corner_sequences(packing, 256))


@pytest.mark.parametrize("weight_bits, input_bits", [(8, 8), (8, 4), (4, 8)])
def test_eight_bit_random_and_corners(weight_bits: int, input_bits: int) -> None:
    rng = np.random.default_rng(weight_bits * 10 + input_bits)
    for primitive, kind, narrow, signed in itertools.product(("DSP48E2", "DSP48E1", "SB_MAC16"), ("mvu", "conv"),
                                                            (False, True), (True, False)):
        wt, it = IntType(weight_bits, True, narrow), IntType(input_bits, signed)
        packing = plan_packing(primitive, wt, it, kind=kind, accumulation=300)
        w = rng.integers(wt.min, wt.max + 1, (400, 300, packing.weights_per_word))
        x = rng.integers(it.min, it.max + 1, (400, 300, packing.inputs_per_word))
        check(packing, w, x)
        check(packing, *corner_sequences(packing, 300))


def test_meets_finn_lane_table_on_dsp48e2() -> None:
    goals = {2: 9, 3: 5, 4: 4, 8: 2}
    for bits, lanes in goals.items():
        for narrow, signed in itertools.product((False, True), (True, False)):
            packing = plan_packing("DSP48E2", IntType(bits, True, narrow), IntType(bits, signed), accumulation=512)
            assert packing.scheme == "sdv" and packing.canary
            assert packing.macs_per_dsp >= lanes, packing.describe()
    for w, a in itertools.product(range(2, 9), repeat=2):
        wt, it = IntType(w, True, True), IntType(a, True)
        assert plan_packing("DSP48E2", wt, it, accumulation=512).macs_per_dsp >= finn_lanes(wt, it)


def test_exact_plan_for_w4_uint4() -> None:
    packing = plan_packing("DSP48E2", IntType(4, True, True), IntType(4, False), accumulation=64)
    assert (packing.scheme, packing.lanes, packing.offsets, packing.lane_width) == ("sdv", 4, (0, 7, 14, 21), 7)
    assert (packing.canary_bits, packing.carry_low, packing.macs_per_dsp) == (2, (-1, -1, -1), 4)
    assert (packing.sideband_bits, packing.acc_bits) == (7, 14)
    assert packing.describe() == ("DSP48E2 int4nxuint4 K=64: sdv, 4 lanes of 7 bits at [0, 7, 14, 21], 2-bit canary, "
                                  "7-bit sideband, 14-bit sums, 4 MACs/DSP")


def test_convolution_and_ice40_goals() -> None:
    for signed in (True, False):
        conv = plan_packing("DSP48E2", IntType(4, True, True), IntType(4, signed), kind="conv", accumulation=576)
        assert conv.scheme == "conv" and conv.macs_per_dsp >= 6, conv.describe()
        assert conv.lanes == conv.weights_per_word + conv.inputs_per_word - 1
    for bits in (4, 8):
        dual = plan_packing("SB_MAC16", IntType(bits, True), IntType(bits, False), accumulation=1024)
        assert (dual.scheme, dual.macs_per_dsp, dual.offsets) == ("dual8x8", 2, (0, 16))


def test_long_accumulations_cost_lanes_then_fall_back() -> None:
    wt, it = IntType(8, True), IntType(8, True)
    short = plan_packing("DSP48E2", wt, it, accumulation=64)
    long = plan_packing("DSP48E2", wt, it, accumulation=1 << 27)
    assert short.lanes == 2 and long.scheme == "none" and long.macs_per_dsp == 1
    check(long, np.full((1, 3, 1), -128), np.full((1, 3, 1), -128))
    with pytest.raises(EdgecError):
        plan_packing("DSP48E2", wt, it, accumulation=1 << 34)
    with pytest.raises(EdgecError):
        plan_packing("DSP58", wt, it, accumulation=4)


def test_correction_matters() -> None:
    """Sommer et al. (arXiv 2203.11028): packed int4 products read out naively are wrong."""
    packing = plan_packing("DSP48E2", IntType(4, True), IntType(4, False), accumulation=4)
    w = np.array([[[-8, 3, -8, 7], [-8, -5, 7, -1]]])
    x = np.array([[[15], [15]]])
    expected = pd.reference(packing, w, x)
    np.testing.assert_array_equal(pd.run(packing, w, x), expected)
    p = pd.accumulator(packing, w, x)
    assert not np.array_equal(pd.naive_extract(packing, p), expected)
    # -8 * 15 alone already needs 8 bits, more than the 7-bit lane holds.
    p1 = pd.accumulator(packing, w[:, :1], x[:, :1])
    assert not np.array_equal(pd.naive_extract(packing, p1), pd.reference(packing, w[:, :1], x[:, :1]))
    # Products that fit their lanes: the naive read-out with the borrow is right, without it wrong.
    w_small, x_small = np.array([[[3, -5, 2, -1]]]), np.array([[[5]]])
    small = pd.reference(packing, w_small, x_small)
    p_small = pd.accumulator(packing, w_small, x_small)
    np.testing.assert_array_equal(pd.naive_extract(packing, p_small), small)
    fields = [pd.wrap(pd.field(p_small, o, packing.lane_width), packing.lane_width) for o in packing.offsets]
    assert not np.array_equal(np.array(fields).T, small)


def test_every_canary_bit_is_needed() -> None:
    """Dropping a canary bit breaks the carry counters on a W4A4 accumulation."""
    packing = plan_packing("DSP48E2", IntType(4, True), IntType(4, False), accumulation=16)
    rng = np.random.default_rng(3)
    w = rng.integers(-8, 8, (500, 16, packing.lanes))
    x = rng.integers(0, 16, (500, 16, 1))
    check(packing, w, x)
    narrower = Packing(**{**packing.__dict__, "canary_bits": packing.canary_bits - 1})
    assert not np.array_equal(pd.run(narrower, w, x), pd.reference(packing, w, x))


# ---- the packing a compiled design realises (project.layer_packing, report.json)

def fc_layer(in_type: IntType, w_type: IntType, window=None):
    from edgec.backends.fpga.layers import MvuLayer
    k = 18
    weights = np.zeros((6, k), dtype=np.int64)
    return MvuLayer(0, "l", "FullyConnected" if window is None else "Conv", "v", in_type, w_type, IntType(4, False),
                    weights, np.zeros((6, 15), dtype=np.int64), window)


def test_the_realised_packing_is_the_planners_mvu_scheme_on_every_primitive() -> None:
    from edgec.backends.fpga.layers import Window
    from edgec.backends.fpga.project import layer_packing
    from edgec.target import get_target
    w4, u4 = IntType(4, True), IntType(4, False)
    conv = fc_layer(u4, w4, Window(4, 4, 2, (3, 3), (1, 1), (1, 1, 1, 1), 0))
    for target, scheme, lanes in (("zcu104", "sdv", 4), ("pynq-z2", "sdv", 4), ("ice40-up5k", "dual8x8", 2)):
        for layer in (fc_layer(u4, w4), conv):  # the row packing is a folding variant (conv_rows)
            packing = layer_packing(layer, get_target(target))
            assert (packing.scheme, packing.lanes, packing.accumulation) == (scheme, lanes, 18), target
        assert layer_packing(fc_layer(u4, w4), get_target(target), "none") is None
    with pytest.raises(EdgecError, match="unknown packing"):
        layer_packing(conv, get_target("zcu104"), "dense")


@pytest.mark.skipif(not __import__("shutil").which("iverilog"), reason="iverilog is not installed")
def test_report_packing_is_what_the_rtl_realises_and_max_dsp_budgets_realised_dsps(tmp_path) -> None:
    from onnx import helper

    import edgec

    from conftest import make_model, tensor_info
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)]
    inits = {"w1": rng.normal(size=(16, 12)), "b1": rng.normal(size=16) * 0.1, "w2": rng.normal(size=(8, 16)),
             "b2": rng.normal(size=8) * 0.1}
    model = make_model(nodes, [tensor_info("x", [1, 12])], [tensor_info("y", [1, 8])],
                       {key: value.astype(np.float32) for key, value in inits.items()})
    quantized = edgec.quantize(model, rng.random((16, 1, 12)).astype(np.float32), weight_bits=4, activation_bits=4)
    reports = {p: edgec.compile(quantized, "zcu104", tmp_path / p, emit_only=True, packing=p, max_dsp=4)
               for p in ("auto", "none")}
    packed, plain = ([layer["packing"] for layer in reports[p]["layers"]] for p in ("auto", "none"))
    assert [e["scheme"] for e in packed] == ["sdv", "sdv"] and [e["scheme"] for e in plain] == ["none", "none"]
    assert all(e["lanes"] == e["planned"]["lanes"] > 1 for e in packed)
    for layer in reports["auto"]["layers"]:  # what the DSPs compute per cycle at the folding
        used = layer["packing"]
        assert used["macs_per_dsp"] == round(layer["pe"] * layer["simd"] / used["dsps"], 2) > 1, layer
    assert all(e["macs_per_dsp"] == 1 for e in plain)
    assert sum(e["dsps"] for e in packed) <= 4 and sum(e["dsps"] for e in plain) <= 4
    sources = (tmp_path / "auto" / "rtl").iterdir()
    assert {"edgec_l0_mac.v", "edgec_sdv_mac.v"} <= {p.name for p in sources}
