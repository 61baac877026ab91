"""Outputs overlapping the inputs that die at them: the lag, the chained plan, and bit-exact runs.

A window layer's output may start ``lag`` bytes before its input (backends/cortex_m/overlap.py);
the planner places such pairs as chains and so goes below the live-range bound. The runs check
the C kernels (scalar on the host under ASan/UBSan, SWAR on the M3, DSP on the M4, Helium on the
M55) against the reference on networks of depthwise and pointwise layers with every stride,
padding and dilation pattern the lag has to account for.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import edgec
from edgec.backends import cortex_m
from edgec.backends.cortex_m import network as network_module
from edgec.backends.cortex_m.memory_plan import Buffer, plan_arena
from edgec.backends.cortex_m.network import build_network
from edgec.backends.cortex_m.overlap import output_lag, rows_lag
from edgec.target import get_target

from conftest import make_model, needs_host_compiler, needs_toolchain, tensor_info

SAME_3X3 = {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1]}
POINTWISE = {"strides": [1, 1], "dilations": [1, 1], "pads": [0, 0, 0, 0]}


def test_a_depthwise_lags_by_a_row_and_two_pixels_and_a_pointwise_pair_by_its_outputs():
    assert output_lag([1, 25, 5, 64], [1, 25, 5, 64], 3, 3, SAME_3X3, 1) == (5 + 2) * 64
    assert output_lag([1, 25, 5, 64], [1, 25, 5, 64], 1, 1, POINTWISE, 2) == 2 * 64
    # an expanding pointwise layer: at the last pair, 16 pixels x 16 channels written while
    # pixel 14's 8 input channels are still to be read
    assert output_lag([1, 4, 4, 8], [1, 4, 4, 16], 1, 1, POINTWISE, 2) == 16 * 16 - 14 * 8


def test_a_chain_keeps_its_offsets_and_its_members_their_lifetimes():
    buffers = [Buffer("a", 100, 0, 1), Buffer("b", 100, 1, 2), Buffer("c", 40, 2, 3), Buffer("d", 64, 0, 3)]
    plan = plan_arena(buffers, 8, chains=[[("a", 24), ("b", 0)]])
    assert plan.offsets["a"] - plan.offsets["b"] == 24
    unchained = plan_arena(buffers, 8)
    assert plan.size < unchained.size
    with pytest.raises(ValueError, match="multiples of the alignment"):
        plan_arena(buffers, 8, chains=[[("a", 4), ("b", 0)]])


def _network(seed: int, channels: int, size: tuple[int, int], stride: int, dilation: int):
    """``x -> Conv 3x3 -> depthwise 3x3 (stride, dilation) -> pointwise (same width) -> depthwise
    -> pointwise (wider) -> Relu -> global average``: a chain of layers each overlapping the one
    before (the small output keeps the peak inside the chain)."""
    rng = np.random.default_rng(seed)
    c, wide = channels, channels + 4
    nodes = [helper.make_node("Conv", ["x", "w0"], ["h0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["h0", "w1"], ["h1"], name="dw1", group=c, strides=[stride, stride],
                              dilations=[dilation, dilation], pads=[dilation] * 4),
             helper.make_node("Conv", ["h1", "w2"], ["h2"], name="pw2"),
             helper.make_node("Conv", ["h2", "w3"], ["h3"], name="dw3", group=c, pads=[0, 1, 2, 1]),
             helper.make_node("Conv", ["h3", "w4"], ["h4"], name="pw4"),
             helper.make_node("Relu", ["h4"], ["h5"], name="relu"),
             helper.make_node("GlobalAveragePool", ["h5"], ["y"], name="pool")]
    h, w = size
    weights = {"w0": rng.normal(0, 0.4, (c, 2, 3, 3)), "w1": rng.normal(0, 0.4, (c, 1, 3, 3)),
               "w2": rng.normal(0, 0.3, (c, c, 1, 1)), "w3": rng.normal(0, 0.4, (c, 1, 3, 3)),
               "w4": rng.normal(0, 0.3, (wide, c, 1, 1))}
    model = make_model(nodes, [tensor_info("x", [1, 2, h, w])], [tensor_info("y", [1, wide, 1, 1])],
                       {name: array.astype(np.float32) for name, array in weights.items()})
    return model, rng.normal(0, 1, (16, 1, 2, h, w)).astype(np.float32)


NETWORKS = [(1, 16, (12, 9), 1, 1), (2, 8, (14, 14), 2, 1), (3, 20, (9, 11), 1, 2), (4, 12, (13, 8), 2, 1)]


def _compiled(tmp_path, network, core: str, emit_only: bool, rounding=None):
    model, samples = _network(*network)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    integer = edgec.quantize(edgec.load(path), {"x": samples}, rounding=rounding)
    out = tmp_path / core
    target = get_target(core)
    network_plan = build_network(integer, target.core.dsp, mve="mve" in target.core.features)
    assert any(_overlaps(network_plan, layer) for layer in network_plan.layers)  # the chains took effect
    cortex_m.compile_project(integer, target, out, "chain", emit_only=emit_only)
    return integer, out, cortex_m.int8_inputs(integer, [{"x": x} for x in samples[:3]])


def _overlaps(network, layer) -> bool:
    """Whether the layer's output shares arena bytes with its input."""
    x, y = layer.node.inputs[0], layer.node.outputs[0]
    if x.name not in network.offsets or y.name not in network.offsets:
        return False
    x_at, y_at = network.offsets[x.name], network.offsets[y.name]
    return x_at < y_at + int(np.prod(y.shape.numpy())) and y_at < x_at + int(np.prod(x.shape.numpy()))


@needs_host_compiler
@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: f"c{n[1]}-{n[2][0]}x{n[2][1]}-s{n[3]}-d{n[4]}")
def test_overlapping_layers_stay_bit_exact_under_sanitizers(tmp_path, network):
    integer, out, inputs = _compiled(tmp_path, network, "cortex-m4", emit_only=True)
    result = cortex_m.run_project(out, inputs, host=True)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))


@needs_toolchain
@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("network", [(5, 22, (7, 11), 1, 1), (6, 22, (9, 11), 2, 1)], ids=["s1", "s2"])
def test_the_m3_depthwise_pairs_walk_stays_bit_exact_in_place(tmp_path, network, rounding):
    """edgec_depthwise_pairs.h on the M3: 22 channels (a group of sixteen, a partial group of one
    block, two channels after the blocks), rows of 11 pixels (a chunk of eight, then three: a lone
    last pixel), stride 1 and 2, both roundings, overlapping its input."""
    integer, out, inputs = _compiled(tmp_path, network, "cortex-m3", emit_only=False, rounding=rounding)
    result = cortex_m.run_project(out, inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m3", "cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("network", NETWORKS[:2], ids=lambda n: f"c{n[1]}-s{n[3]}")
def test_overlapping_layers_stay_bit_exact_on_every_kernel_family(tmp_path, network, core):
    integer, out, inputs = _compiled(tmp_path, network, core, emit_only=False)
    result = cortex_m.run_project(out, inputs)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))


def test_the_rows_walk_lets_a_depthwise_run_in_place():
    """Stride 1 SAME and stride 2: every output row is written after the input rows it reads
    were widened, so the output may start where the input does."""
    assert rows_lag([1, 25, 5, 64], [1, 25, 5, 64], SAME_3X3) == 0
    assert rows_lag([1, 48, 48, 16], [1, 24, 24, 16], {"strides": [2, 2], "pads": [0, 0, 1, 1]}) == 0
    assert rows_lag([1, 6, 6, 8], [1, 4, 4, 8], POINTWISE) == 0  # a VALID window
    # padded three rows at the top: output row oy (pixels up to 6 (oy + 1) - 1) is written when
    # input rows up to oy - 1 are widened (pixels below 6 oy): six pixels ahead
    assert rows_lag([1, 8, 6, 12], [1, 8, 6, 12], {"strides": [1, 1], "pads": [3, 1, 0, 1]}) == 6 * 12


def _rows_walk_run(tmp_path, monkeypatch, network, host: bool) -> None:
    """The network forced onto the rows walk (build_network takes it only where the arena is no
    larger): some depthwise output starts at its input, and the C equals the reference."""
    monkeypatch.setattr(cortex_m, "build_network",
                        lambda model, dsp, separate_io=True, mve=False: _rows_network(model, dsp, separate_io, mve))
    integer, out, inputs = _compiled(tmp_path, network, "cortex-m4", emit_only=host)
    forced = _rows_network(integer, True, True, False)
    walked = [layer for layer in forced.layers if network_module._walks_rows(layer)]
    assert walked and any(forced.offsets[layer.node.inputs[0].name] == forced.offsets[layer.node.outputs[0].name]
                          for layer in walked)
    result = cortex_m.run_project(out, inputs, host=host)
    np.testing.assert_array_equal(result.outputs, cortex_m.reference_outputs(integer, inputs))


def _rows_network(model, dsp: bool, separate_io: bool, mve: bool):
    return network_module._network(model, dsp, separate_io, mve, rows=None)


ROWS_NETWORKS = [NETWORKS[0], NETWORKS[1], NETWORKS[3]]  # NETWORKS[2] is dilated: the raster walk


@needs_host_compiler
@pytest.mark.parametrize("network", ROWS_NETWORKS, ids=lambda n: f"c{n[1]}-s{n[3]}")
def test_the_rows_walk_stays_bit_exact_in_place_under_sanitizers(tmp_path, monkeypatch, network):
    _rows_walk_run(tmp_path, monkeypatch, network, host=True)


@needs_toolchain
@pytest.mark.parametrize("network", ROWS_NETWORKS, ids=lambda n: f"c{n[1]}-s{n[3]}")
def test_the_rows_walk_stays_bit_exact_in_place_on_the_m4(tmp_path, monkeypatch, network):
    _rows_walk_run(tmp_path, monkeypatch, network, host=False)
