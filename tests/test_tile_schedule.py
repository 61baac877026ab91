"""Scheduling several networks on a tile target: the workload file, the discrete-event engine's
invariants and exact deadline accounting, the three policies and ``edgec schedule``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest

from edgec.backends.tile.latency_model import NetworkProfile, factor_quantile
from edgec.backends.tile.policies import POLICIES, AdsTile, Reservation, size_dops
from edgec.backends.tile.schedule_run import schedule_workload, simulate_policy, tiles_needed_search
from edgec.backends.tile.scheduler import Engine, check_no_double_booking
from edgec.backends.tile.workload import Network, Pipeline, Workload, parse_workload
from edgec.errors import EdgecError
from edgec.target import get_target

from conftest import invoke, pool_cnn, small_conv_model

CLOCK = 1_000_000  # 1 MHz: one cycle a microsecond
CAPACITY = 4096  # resident weight bytes per tile


def _profile(name: str, cycles: list[int], load: int = 50, resident: int = 1000, layers: int = 1,
             feature_move: int = 10) -> NetworkProfile:
    """A made-up profile: ``layers`` layers of equal length, ``resident`` weight bytes per tile."""
    used = []
    for k in range(1, len(cycles) + 1):
        used.append(k if cycles[k - 1] < (cycles[used[-1] - 1] if used else 10**12) else used[-1])
    ends = tuple(tuple(c * (i + 1) // layers for i in range(layers)) for c in cycles)
    count = len(cycles)
    return NetworkProfile(name, 1000, 100, tuple(cycles), (resident,) * count, (load,) * count,
                          (feature_move,) * count, tuple(used), ends)


def _workload(pipelines, variability=1.0, frames=20, seed=0, isolation="pipeline") -> Workload:
    names = {s for p in pipelines for s in p.stages}
    return Workload("test", Path("."), variability, frames, seed, isolation,
                    {n: Network(n, "unused.onnx", None) for n in sorted(names)}, tuple(pipelines))


def _target(tiles: int):
    target = get_target("tile-4x4")
    rows = 1 if tiles < 4 else tiles // 4
    grid = dataclasses.replace(target.grid, rows=rows, cols=tiles // rows, clock_hz=CLOCK)
    return dataclasses.replace(target, grid=grid)


def test_deadlines_are_accounted_exactly_with_queueing():
    # one network of 15,000 cycles every 10,000: frame i ends at 15,000 (i + 1), its latency
    # 15,000 + 5,000 i; with a 30 ms deadline frames 0..3 meet it and the other 16 miss.
    workload = _workload([Pipeline("p", 100.0, 30.0, {"n": ()})])
    profiles = {"n": _profile("n", [15_000])}
    policy = Reservation(workload, profiles, CLOCK, 1, CAPACITY)
    result = Engine(workload, profiles, CLOCK, 1, policy, CAPACITY).run()
    assert result.frames == 20 and result.latencies["p"] == tuple(15_000 + 5_000 * i for i in range(20))
    assert result.missed == 16 and result.miss_rate == 16 / 20
    assert result.makespan == 15_000 * 20 and result.utilisation == 1.0 and result.reallocation_waste == 0
    on_time = _workload([Pipeline("p", 100.0, 15.0, {"n": ()})])
    assert Engine(on_time, {"n": _profile("n", [9_000])}, CLOCK, 1,
                  Reservation(on_time, {"n": _profile("n", [9_000])}, CLOCK, 1, CAPACITY), CAPACITY).run().missed == 0
    exactly = _workload([Pipeline("p", 100.0, 9.0, {"n": ()})])  # ends exactly at its deadline: met
    assert Engine(exactly, {"n": _profile("n", [9_000])}, CLOCK, 1,
                  Reservation(exactly, {"n": _profile("n", [9_000])}, CLOCK, 1, CAPACITY), CAPACITY).run().missed == 0


class _Fixed:
    """A test policy: every ready job starts on ``place(job)``; at ``resize_at`` the running
    job of network ``n`` is resized to ``resize_to``."""

    name, feasible = "fixed", True

    def __init__(self, place, resize_at=None, resize_to=()):
        self.place, self.resize_at, self.resize_to = place, resize_at, resize_to

    def dispatch(self, engine, now):
        if now == self.resize_at:
            engine.resize(next(j for j in engine.running.values() if j.network == "n"), self.resize_to, now)
        for job in sorted(engine.ready, key=lambda j: j.id):
            if all(engine.owner[t] is None for t in self.place(job)):
                engine.start(job, self.place(job), now)


def test_weights_stay_on_their_tiles_until_evicted_and_reloads_stall_exactly():
    workload = _workload([Pipeline("p", 100.0, 5.0, {"n": ()})], frames=6)
    profiles = {"n": _profile("n", [4_000, 3_000], load=700)}
    # frame i on tile i % 2: the second tile loads the weights once, then both keep them
    result = Engine(workload, profiles, CLOCK, 2, _Fixed(lambda job: (job.frame % 2,)), CAPACITY).run()
    assert result.latencies["p"] == (4_000, 4_700, 4_000, 4_000, 4_000, 4_000)
    assert result.reallocations == 1 and result.reallocation_waste == 700 / (6 * 4_000 + 700)
    assert result.utilisation == 6 * 4_000 / (2 * result.makespan)
    # two networks on one tile whose SRAM holds one's weights: each evicts the other
    chain = _workload([Pipeline("p", 100.0, 9.0, {"a": (), "b": ("a",)})], frames=3)
    pair = {name: _profile(name, [2_000], load=300, resident=800) for name in "ab"}
    tight = Engine(chain, pair, CLOCK, 1, _Fixed(lambda job: (0,)), 1_000).run()
    assert tight.latencies["p"] == (4_000, 4_600, 4_600) and tight.reallocations == 4
    roomy = Engine(chain, pair, CLOCK, 1, _Fixed(lambda job: (0,)), 1_600).run()
    assert roomy.latencies["p"] == (4_000,) * 3 and roomy.reallocations == 0


def test_a_resized_job_keeps_its_completed_layers_and_stalls_for_weights_and_features():
    # n: four layers of 1,000 cycles on one tile, 600 on two; at 1,500 it moves from tile 0
    # to tiles 0-1: layer 1 is half done (500 cycles lost), 300 + 20 cycles of load and feature
    # move, then layers 1-3 on two tiles (1,800 cycles): it ends at 3,620.
    slow = Pipeline("slow", 100.0, 9.0, {"n": ()})
    quick = Pipeline("quick", 1e6 / 1_500, 1.0, {"m": ()})  # released at 0 and 1,500
    workload = _workload([slow, quick], frames=2)
    profiles = {"n": _profile("n", [4_000, 2_400], load=300, layers=4, feature_move=20),
                "m": _profile("m", [100])}
    policy = _Fixed(lambda job: (0,) if job.network == "n" else (2,), resize_at=1_500, resize_to=(0, 1))
    result = Engine(workload, profiles, CLOCK, 3, policy, CAPACITY).run()
    assert result.latencies["slow"] == (3_620,) and result.reallocations == 1
    assert result.stall_tile_cycles == 2 * 320 and result.lost_tile_cycles == 500
    held = 1_500 + 2 * (3_620 - 1_500) + 2 * 100
    assert result.reallocation_waste == (2 * 320 + 500) / held
    check_no_double_booking(result)


def _busy_workload(variability=3.3, seed=0):
    camera = Pipeline("camera", 50.0, 18.0, {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")})
    fast = Pipeline("fast", 200.0, 4.0, {"e": ()})
    profiles = {"a": _profile("a", [8000, 4200, 3000, 2400, 2100, 2000, 2000, 2000]),
                "b": _profile("b", [3000, 1600, 1200, 1000, 900, 900, 900, 900]),
                "c": _profile("c", [2500, 1300, 900, 800, 800, 800, 800, 800]),
                "d": _profile("d", [600, 400, 300, 300, 300, 300, 300, 300]),
                "e": _profile("e", [900, 500, 400, 400, 400, 400, 400, 400])}
    return _workload([camera, fast], variability, frames=60, seed=seed), profiles


@pytest.mark.parametrize("policy", list(POLICIES))
def test_no_tile_is_double_booked_and_the_same_seed_gives_the_same_schedule(policy):
    workload, profiles = _busy_workload()
    target = _target(8)
    first = simulate_policy(workload, profiles, target, policy, 8)
    check_no_double_booking(first)
    assert first == simulate_policy(workload, profiles, target, policy, 8)
    other = simulate_policy(dataclasses.replace(workload, seed=1), profiles, target, policy, 8)
    assert [r.end for r in other.runs] != [r.end for r in first.runs]
    jobs = {(r.network, r.frame) for r in first.runs}  # every job of every frame ran
    horizon = 60 * 5_000  # 60 periods of the 200 Hz pipeline
    assert len(jobs) == sum(len(p.stages) * (horizon // round(CLOCK / p.rate_hz)) for p in workload.pipelines)
    for run in first.runs:
        assert 0 <= run.stall <= run.end - run.start and run.tiles and max(run.tiles) < 8


def test_the_engine_refuses_a_policy_that_double_books():
    workload, profiles = _busy_workload()

    class Greedy:
        name, feasible = "greedy", True

        def dispatch(self, engine, now):
            for job in list(engine.ready):
                engine.start(job, (0,), now)

    with pytest.raises(AssertionError, match="tile 0 given to job"):
        Engine(workload, profiles, CLOCK, 2, Greedy(), CAPACITY).run()


def test_policies_trade_tiles_and_reallocation_as_designed():
    workload, profiles = _busy_workload()
    target = _target(8)
    worst = size_dops(workload, profiles, CLOCK, workload.variability, 99)
    likely = size_dops(workload, profiles, CLOCK, factor_quantile(workload.variability, 0.999), 99)
    assert sum(likely.values()) <= sum(worst.values())
    assert factor_quantile(3.3, 1.0) == pytest.approx(3.3) and factor_quantile(3.3, 0.5) < 2
    assert factor_quantile(1.0, 0.9) == 1.0
    results = {p: simulate_policy(workload, profiles, target, p, 8) for p in POLICIES}
    assert results["reservation"].reallocations == 0  # fixed DoP: never moves
    assert results["work-conserving"].reallocations > results["ads-tile"].reallocations
    assert results["ads-tile"].reallocation_waste <= results["work-conserving"].reallocation_waste
    assert simulate_policy(workload, profiles, target, "reservation", 2) is None  # 5 dedicated networks


def test_ads_tile_isolates_a_pipeline_that_cannot_wait_and_fits_homes_in_sram():
    workload, profiles = _busy_workload()
    auto = dataclasses.replace(workload, isolation="auto")
    profiles = {name: dataclasses.replace(p, resident_bytes=(3_000,) * 8) for name, p in profiles.items()}
    policy = AdsTile(auto, profiles, CLOCK, 8, CAPACITY)
    # the 4 ms "fast" pipeline cannot wait for the camera's longest job: its own group
    assert policy.group_of["e"] != policy.group_of["a"]
    assert len({policy.group_of[n] for n in "abcd"}) == 1
    for tile in range(8):  # 3,000 bytes each: no tile holds two of them in its 4,096
        assert sum(3_000 for home in policy.home.values() if tile in home) <= CAPACITY
    assert not AdsTile(auto, profiles, CLOCK, 2, CAPACITY).feasible  # the camera group: four homes of 3,000 bytes on one tile


def test_the_search_finds_the_fewest_tiles_without_misses():
    workload, profiles = _busy_workload(variability=1.5)
    target = _target(8)
    for policy in POLICIES:
        needed, result, checked = tiles_needed_search(workload, profiles, target, policy, None)
        if needed is None:
            continue
        assert result.miss_rate == 0 and result.tiles == needed
        if needed > 1:
            below = simulate_policy(workload, profiles, target, policy, needed - 1)
            assert below is None or below.miss_rate > 0
        assert (needed, 0.0) in checked


@pytest.mark.parametrize("text,fragment", [
    ('[networks.a]\nmodel = "a.onnx"\n[[pipelines]]\nrate_hz = 10\ndeadline_ms = 50\nstages = { a = ["b"] }',
     "stages.a must list stages of the same pipeline"),
    ('[networks.a]\nmodel = "a.onnx"\n[networks.b]\nmodel = "b.onnx"\n[[pipelines]]\nrate_hz = 10\n'
     'deadline_ms = 50\nstages = { a = ["b"], b = ["a"] }', "has a cycle among a, b"),
    ('[networks.a]\nmodel = "a.onnx"\n[[pipelines]]\nrate_hz = 10\ndeadline_ms = 50\nstages = { x = [] }',
     "names 'x', which is not a network"),
    ('[networks.a]\nmodel = "a.onnx"\n[[pipelines]]\nrate_hz = 10\ndeadline_ms = 50\nstages = { a = [] }\n'
     '[[pipelines]]\nrate_hz = 10\ndeadline_ms = 50\nstages = { a = [] }', "network 'a' is in pipelines"),
    ('[networks.a]\nmodel = "a.onnx"\n[[pipelines]]\nrate_hz = 0\ndeadline_ms = 50\nstages = { a = [] }',
     "rate_hz must be a number above 0"),
    ('isolation = "tiles"\n[networks.a]\nmodel = "a.onnx"\n[[pipelines]]\nrate_hz = 10\ndeadline_ms = 5\n'
     'stages = { a = [] }', "isolation 'tiles' is not one edgec knows"),
    ('variability = 0.5\n[networks.a]\nmodel = "a.onnx"\n[[pipelines]]\nrate_hz = 10\ndeadline_ms = 5\n'
     'stages = { a = [] }', "variability must be at least 1"),
    ('[networks.a]\nmodel = "a.onnx"\n[networks.b]\nmodel = "b.onnx"\n[[pipelines]]\nrate_hz = 10\n'
     'deadline_ms = 5\nstages = { a = [] }', "network 'b' is in no pipeline"),
    ('frame = 3\n[networks.a]\nmodel = "a.onnx"', "unknown key 'frame'"),
    ('[networks.a', "is not valid TOML"),
])
def test_bad_workload_files_are_one_line_errors(text, fragment):
    with pytest.raises(EdgecError) as raised:
        parse_workload(text, "w.toml", Path("."))
    assert fragment in str(raised.value)


def test_edgec_schedule_writes_json_and_a_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_CACHE", str(tmp_path / "cache"))
    import numpy as np

    onnx.save(small_conv_model(np.random.default_rng(1), batch=1), tmp_path / "small.onnx")
    onnx.save(pool_cnn(), tmp_path / "pool.onnx")
    (tmp_path / "w.toml").write_text(
        'name = "tiny"\nvariability = 2.0\nframes = 30\n'
        '[networks.a]\nmodel = "small.onnx"\n[networks.b]\nmodel = "pool.onnx"\n'
        '[[pipelines]]\nname = "chain"\nrate_hz = 1000\ndeadline_ms = 0.2\nstages = { a = [], b = ["a"] }\n')
    result = invoke("schedule", tmp_path / "w.toml", "--target", "tile-4x4", "--json", tmp_path / "s.json",
                    "--plot", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    assert "tiny on tile-4x4" in result.output and "ads-tile" in result.output
    data = json.loads((tmp_path / "s.json").read_text())
    for policy in POLICIES:
        assert {"tiles_needed", "miss_rate", "reallocation_waste"} <= set(data["policies"][policy])
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "cache" / "tile").glob("*.json"))) == 2  # profiles cached
    bad = invoke("schedule", tmp_path / "w.toml", "--target", "cortex-m4")
    assert bad.exit_code != 0 and "the Cortex-M backend does not schedule several networks" in bad.output
    missing = invoke("schedule", tmp_path / "nope.toml", "--target", "tile-4x4")
    assert missing.exit_code != 0 and "workload file" in missing.output
    with pytest.raises(EdgecError, match="--tiles 17 is not a number of tiles of tile-4x4"):
        schedule_workload(parse_workload((tmp_path / "w.toml").read_text(), "w.toml", tmp_path),
                          get_target("tile-4x4"), tiles=17)
