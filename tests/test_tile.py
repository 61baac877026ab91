"""The tile backend: mapping, the functional model (bit-exact tile by tile), the simulator's
invariants, the project it writes and its errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

import edgec
from edgec.api import int8_output_names
from edgec.backend import int8_input_rows
from edgec.backends.tile import timing
from edgec.backends.tile.functional import run_tiled
from edgec.backends.tile.layers import plan_layers
from edgec.backends.tile.mapping import map_network, split_ranges
from edgec.backends.tile.project import default_tiles, sweep
from edgec.backends.tile.simulator import COMPUTE, LOAD, check_no_overlap, simulate
from edgec.errors import EdgecError, UnsupportedModelError
from edgec.reference import ReferenceExecutor
from edgec.target import get_target

from conftest import invoke, make_model, quantized_shared_model, shared_samples, tensor_info


def _mixed_cnn() -> tuple[ir.Model, np.ndarray]:
    """x[1,8,12,12] -> Conv 3x3 pad 1 (16) -> Relu -> Conv 3x3 stride 2 pad 1 (12) -> Relu ->
    depthwise 3x3 pad 1 -> Add (the previous) -> MaxPool 2 -> GlobalAveragePool -> Flatten ->
    Gemm (5) -> Softmax, quantized on 16 samples; and 2 test samples."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Conv", ["r2", "wd", "bd"], ["d"], name="depthwise", pads=[1, 1, 1, 1], group=12),
             helper.make_node("Add", ["d", "r2"], ["a"], name="add"),
             helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y0"], name="fc", transB=1),
             helper.make_node("Softmax", ["y0"], ["y"], name="softmax")]
    inits = {"w1": rng.normal(size=(16, 8, 3, 3)), "b1": rng.normal(size=16) * 0.1,
             "w2": rng.normal(size=(12, 16, 3, 3)), "b2": rng.normal(size=12) * 0.1,
             "wd": rng.normal(size=(12, 1, 3, 3)), "bd": rng.normal(size=12) * 0.1,
             "fw": rng.normal(size=(5, 12)), "fb": rng.normal(size=5) * 0.1}
    model = make_model(nodes, [tensor_info("x", [1, 8, 12, 12])], [tensor_info("y", [1, 5])],
                       {k: v.astype(np.float32) for k, v in inits.items()})
    calibration = rng.random((16, 8, 12, 12), dtype=np.float32)
    return edgec.quantize(model, calibration), rng.random((2, 1, 8, 12, 12), dtype=np.float32)


@pytest.fixture(scope="module")
def mixed():
    return _mixed_cnn()


def _small_sram(target_name: str, sram: int):
    target = get_target(target_name)
    tile = dataclasses.replace(target.grid.tile, sram_bytes=sram)
    return dataclasses.replace(target, grid=dataclasses.replace(target.grid, tile=tile))


def _assert_exact(model, mapping, sample):
    feed = {model.graph.inputs[0].name: sample}
    row = int8_input_rows(model, [feed])[0]
    reference = ReferenceExecutor(model).run(feed, keep_intermediates=True)
    output, trace = run_tiled(model, mapping, row, trace=True)
    np.testing.assert_array_equal(output, reference[int8_output_names(model)[0]].reshape(-1))
    layers = {layer.index: layer for layer in plan_layers(model)}
    for index, values in trace:
        np.testing.assert_array_equal(values, reference[layers[index].output], err_msg=layers[index].name)


@pytest.mark.parametrize("sram", [262_144, 3_000, 1_200])
def test_the_functional_model_equals_the_reference_on_every_degree_of_parallelism(mixed, sram):
    model, samples = mixed
    target = _small_sram("tile-4x4", sram)
    layers = plan_layers(model)
    cut = False
    for tiles in range(1, target.grid.tiles + 1):
        mapping = map_network(layers, target, tiles)
        cut |= any(b.region.reduction is not None for m in mapping.layers for s in m.shares for b in s.blocks)
        for sample in samples:
            _assert_exact(model, mapping, sample)
    assert cut == (sram == 1_200)  # the smallest SRAM cuts reductions into partial sums


def test_mappings_fit_the_sram_and_cover_every_output_element_once(mixed):
    model, _ = mixed
    target = _small_sram("tile-4x4", 3_000)
    for tiles in (1, 3, 7, 16):
        mapping = map_network(plan_layers(model), target, tiles)
        for layer_mapping in mapping.layers:
            assert layer_mapping.tiles <= tiles
            assert layer_mapping.sram_bytes + mapping.resident_bytes <= target.grid.tile.sram_bytes
            if not layer_mapping.shares:
                continue
            covered = np.zeros(layer_mapping.layer.output_shape, dtype=np.int64)
            layer = layer_mapping.layer
            for share in layer_mapping.shares:
                for block in share.blocks:
                    if block.region.reduction is not None and block.region.reduction[0] != 0:
                        continue
                    index = [slice(None)] * covered.ndim
                    if block.region.rows is not None:
                        index[layer.row_axis] = slice(*block.region.rows)
                    if block.region.channels is not None:
                        index[layer.channel_axis] = slice(*block.region.channels)
                    covered[tuple(index)] += 1
            assert (covered == 1).all(), layer.name


def test_the_simulator_never_double_books_a_unit_and_is_deterministic(mixed):
    model, _ = mixed
    target = get_target("tile-4x4")
    layers = plan_layers(model)
    for tiles in (1, 4, 16):
        mapping = map_network(layers, target, tiles)
        first, second = simulate(mapping, target), simulate(map_network(layers, target, tiles), target)
        assert first == second
        check_no_overlap(first, target)
        assert first.cycles == max(e.end for e in first.events)
        computes = [e for e in first.events if e.kind == COMPUTE]
        assert first.busy_cycles == sum(e.end - e.start for e in computes)
        assert 0 < first.utilisation(tiles) <= 1
        # every layer starts after the one before it has finished
        spans = [s for s, m in zip(first.layer_spans, mapping.layers) if m.shares]
        assert all(after[0] >= before[1] for before, after in zip(spans, spans[1:]))
    with pytest.raises(AssertionError, match="runs two operations"):
        mapping = map_network(layers, target, 1)
        simulation = simulate(mapping, target)
        clash = [dataclasses.replace(e, start=0) for e in simulation.events if e.kind == COMPUTE][:2]
        check_no_overlap(dataclasses.replace(simulation, events=tuple(clash)), target)


def test_loads_wait_for_the_double_buffer_and_the_dram_is_shared():
    target = _small_sram("tile-4x4", 1_200)
    model, _ = _mixed_cnn()
    mapping = map_network(plan_layers(model), target, 2)
    simulation = simulate(mapping, target)
    by_tile_layer: dict = {}
    for event in simulation.events:
        by_tile_layer.setdefault((event.tile, event.layer, event.kind), []).append(event)
    for (tile, layer, kind), events in by_tile_layer.items():
        if kind != LOAD:
            continue
        computes = sorted(by_tile_layer[(tile, layer, COMPUTE)], key=lambda e: e.block)
        ends = {e.block: e.end for e in computes}
        for load in events:
            if load.block >= 2:
                assert load.start >= ends[load.block - 2]  # two buffers: block i reuses block i-2's
    transfers = sorted((e for e in simulation.events if e.kind != COMPUTE), key=lambda e: e.start)
    busy_until = 0
    for transfer in transfers:  # the DRAM serves one transfer at a time
        assert transfer.start >= busy_until
        busy_until = transfer.start + -(-transfer.size // target.dram.bytes_per_cycle)


def test_latency_never_grows_with_tiles_and_the_default_is_the_knee(mixed):
    model, _ = mixed
    runs = sweep(plan_layers(model), get_target("tile-4x4"))
    latencies = [simulation.cycles for _, simulation in runs]
    assert all(b <= a for a, b in zip(latencies, latencies[1:]))
    assert latencies[-1] < latencies[0]
    assert default_tiles([100, 60, 52, 50, 50]) == 3
    assert default_tiles([10]) == 1


def test_analytic_unit_timing():
    target = get_target("tile-4x4")  # 8 x 8 arrays
    assert timing.array_cycles(target, 100, 8, 8) == 2 * 8 + 8 + 100 - 2
    assert timing.array_cycles(target, 10, 72, 16) == 9 * 2 * (16 + 8 + 10 - 2)
    assert timing.array_cycles(target, 0, 72, 16) == 0
    assert timing.vector_cycles(target, 64, 9) == timing.VECTOR_FILL + 72
    assert [timing.dram_hops(target, t) for t in (0, 3, 4, 7)] == [1, 4, 1, 4]
    assert timing.dram_hops(get_target("tile-8x8"), 7) == 1  # a torus reaches the controller from the east
    assert timing.transfer_cycles(target, 320, 2) == 10 + 2
    assert timing.transfer_cycles(target, 320, 0, sharing=4) == 40
    assert split_ranges(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]


def test_compile_writes_the_project_and_run_checks_it_bit_for_bit(tmp_path, mixed):
    model, samples = mixed
    ir.save(model, tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", samples[:, 0])
    out = tmp_path / "out"
    result = invoke("compile", tmp_path / "m.onnx", "--target", "tile-4x4", "-o", out, "--tiles", "6")
    assert result.exit_code == 0, result.output
    assert "on 6 of 16 tiles" in result.output and "ms by tiles: 1:" in result.output
    manifest = json.loads((out / "report.json").read_text())
    assert manifest["tiles"] == 6 and manifest["backend"] == "tile"
    assert set(manifest["latency_by_tiles"]) == {str(k) for k in range(1, 17)}
    assert manifest["latency_cycles"] == manifest["latency_by_tiles"]["6"]
    assert manifest["latency_ms"] == pytest.approx(manifest["latency_cycles"] / 1e6)
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"])
    schedule = json.loads((out / "schedule.json").read_text())
    assert schedule["cycles"] == manifest["latency_cycles"] and schedule["events"]
    assert (out / "gantt.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "layers.csv").read_text().count("\n") == len(manifest["layers"]) + 1
    run = invoke("run", out, "--input", tmp_path / "x.npy", "--check")
    assert run.exit_code == 0, run.output
    assert "equal the integer reference bit for bit" in run.output and "simulated latency" in run.output


def test_bad_degree_of_parallelism_and_unsupported_graphs_are_one_line_errors(tmp_path, mixed, small_integer_model):
    model, _ = mixed
    ir.save(model, tmp_path / "m.onnx")
    result = invoke("compile", tmp_path / "m.onnx", "--target", "tile-4x4", "-o", tmp_path / "out", "--tiles", "17")
    assert result.exit_code != 0 and "--tiles 17 is not a degree of parallelism of tile-4x4" in result.output
    assert "give 1 to 16" in result.output and not (tmp_path / "out").exists()
    with pytest.raises(UnsupportedModelError, match="does not fit one tile's 64 B of SRAM"):
        map_network(plan_layers(small_integer_model), _small_sram("tile-4x4", 64), 1)
    with pytest.raises(EdgecError, match="per-layer profiles of tile projects are written at compile time"):
        edgec.compile(small_integer_model, "tile-4x4", tmp_path / "p")
        from edgec.backend import open_project
        backend, project = open_project(tmp_path / "p")
        backend.profile(project, None, lambda stage: None)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["resnet8", "vww", "ad"])
def test_mlperf_tiny_models_run_tile_by_tile_bit_exact(key):
    model = quantized_shared_model(key, 0)
    x, _ = shared_samples(key, np.random.default_rng(0))
    layers = plan_layers(model)
    for name in ("tile-4x4", "tile-8x8"):
        target = get_target(name)
        for tiles in (1, 5, target.grid.tiles):
            mapping = map_network(layers, target, tiles)
            check_no_overlap(simulate(mapping, target), target)
            _assert_exact(model, mapping, x[:1])


def test_the_array_timing_equals_scalesims_compute_model(mixed):
    pytest.importorskip("scalesim", reason="SCALE-Sim is not installed (pip install 'edgec[tile]')")
    from edgec.backends.tile.scalesim_check import scalesim_cycles

    model, _ = mixed
    arrays = [layer for layer in plan_layers(model) if layer.kind == "array"]
    assert [layer.op for layer in arrays] == ["Conv", "Conv", "FullyConnected"]  # one strided
    for name in ("tile-4x4", "tile-8x8"):
        target = get_target(name)
        for layer in arrays:
            positions = layer.output_bytes // layer.output_shape[-1]
            analytic = timing.array_cycles(target, positions, layer.reduction, layer.output_shape[-1])
            assert scalesim_cycles(layer, target) == analytic, (name, layer.name)
    with pytest.raises(EdgecError, match="does not run on the MAC array"):
        scalesim_cycles(next(layer for layer in plan_layers(model) if layer.op == "MaxPool"), target)
