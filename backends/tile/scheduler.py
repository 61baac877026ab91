"""The multi-network discrete-event simulation: pipelines release frames, a policy places jobs
on tiles, the engine runs them and accounts deadlines, utilisation and reallocation waste.

Time is integer cycles of the target's clock. Pipeline ``p`` releases frame ``i`` at
``i * period_p`` (all pipelines in phase at 0, the synchronous worst case), ``period_p =
round(clock / rate_hz)``, for as many frames as fit the horizon (``frames`` periods of the
fastest pipeline). A frame's job of a stage is ready once its predecessors' jobs of that frame
are done; the frame meets its deadline when its sinks' jobs all end at most
``round(deadline_ms * clock / 1000)`` cycles after its release (a miss otherwise; late jobs
still run).

A job of network ``n`` on ``k`` tiles needs ``cycles_n[k] * X`` cycles of compute (its factor
``X`` drawn once per job from the workload's seed, the same for every policy). The policy
(:mod:`.policies`) answers every change of state with actions: **start** a ready job on a set
of free tiles, or **resize** a running job to another set.

Weights live in the tiles' SRAM (stop-migrate-restart). A network mapped on the tile set ``T``
keeps its per-tile share of the weights (``resident_bytes``, 0 when they stream) in every
tile of ``T``; each tile holds such shares of several networks while they fit its resident
capacity (:func:`.mapping.resident_capacity`), and placing a new one evicts the least
recently used others (never the share of the job running there). A job placed on ``T`` finds
its weights when every tile of ``T`` still holds its network's share for ``T``; otherwise it
first stalls for the network's ``load`` on ``k`` tiles (from DRAM; a network's first job
finds them loaded at configuration time, before the first frame). A running job that is
resized is stopped at once: it keeps the layers it has completed (``layer_ends``: a layer
split over ``k`` tiles cannot be carried over half done to another split), the work of the
layers in flight is lost, and it stalls to move its live intermediate features onto the new
tiles (``feature_move``) before it restarts from the next layer. A placement with a stall is
a **reallocation**; the tile-cycles held during stalls, and those of work lost, are
**reallocation waste**. Reported:

* ``miss_rate``: missed frames over all frames;
* ``utilisation``: tile-cycles computing (lost work excluded) over ``tiles * makespan``;
* ``reallocation_waste``: tile-cycles stalled in reallocations or lost to stopped layers over
  tile-cycles held by jobs.

Invariants checked as it runs: a tile is never given to two jobs, a job never holds a tile it
was not given, and every job of every frame runs exactly once; the same seed gives the same
schedule (:attr:`Result.runs`).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import OrderedDict
from fractions import Fraction

import numpy as np

from edgec.backends.tile.latency_model import NetworkProfile, draw_factors
from edgec.backends.tile.workload import Workload


@dataclasses.dataclass
class Job:
    """One inference of a network for one frame."""

    id: int
    network: str
    pipeline: str
    frame: int
    frame_release: int
    deadline: int
    ready: int
    factor: Fraction
    layers_done: int = 0
    tiles: tuple[int, ...] = ()
    compute_start: int = 0
    end: int | None = None
    version: int = 0


@dataclasses.dataclass(frozen=True)
class Run:
    """A stretch of a job on a set of tiles: ``[start, end)``, the first ``stall`` cycles stalled (reallocation)."""

    job: int
    network: str
    frame: int
    tiles: tuple[int, ...]
    start: int
    end: int
    stall: int


@dataclasses.dataclass(frozen=True)
class Result:
    policy: str
    tiles: int
    frames: int
    missed: int
    makespan: int
    compute_tile_cycles: int
    stall_tile_cycles: int
    lost_tile_cycles: int
    held_tile_cycles: int
    reallocations: int
    runs: tuple[Run, ...]
    latencies: dict[str, tuple[int, ...]]

    @property
    def miss_rate(self) -> float:
        return self.missed / self.frames if self.frames else 0.0

    @property
    def utilisation(self) -> float:
        return self.compute_tile_cycles / (self.tiles * self.makespan) if self.makespan else 0.0

    @property
    def reallocation_waste(self) -> float:
        wasted = self.stall_tile_cycles + self.lost_tile_cycles
        return wasted / self.held_tile_cycles if self.held_tile_cycles else 0.0


class Engine:
    """One simulation of ``workload`` on ``tiles`` tiles under ``policy`` (module docstring)."""

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int,
                 policy, resident_capacity: int, frames: int | None = None) -> None:
        self.workload, self.profiles, self.clock, self.tiles = workload, profiles, clock_hz, tiles
        self.capacity = resident_capacity
        self.policy = policy
        self.periods = {p.name: round(clock_hz / p.rate_hz) for p in workload.pipelines}
        self.deadlines = {p.name: round(p.deadline_ms * clock_hz / 1000) for p in workload.pipelines}
        horizon = (frames or workload.frames) * min(self.periods.values())
        self.frames = {p.name: max(1, horizon // self.periods[p.name]) for p in workload.pipelines}
        rng = np.random.default_rng(workload.seed)
        self.factors = {name: [Fraction(f).limit_denominator(10**6)
                               for f in draw_factors(workload.variability, self.frames[workload.pipeline_of(name).name], rng)]
                        for name in sorted(workload.networks)}
        self.owner: list[int | None] = [None] * tiles
        #: Per tile, the weight shares it holds, ``(network, tile set) -> bytes``, least
        #: recently used first.
        self.held: list[OrderedDict[tuple[str, tuple[int, ...]], int]] = [OrderedDict() for _ in range(tiles)]
        self.configured: set[str] = set()  # networks whose first job has been placed
        self.jobs: dict[int, Job] = {}
        self.ready: list[Job] = []
        self.running: dict[int, Job] = {}
        self.done: dict[tuple[str, int], set[str]] = {}
        self.runs: list[Run] = []
        self.events: list[tuple[int, int, str, int, int]] = []
        self.sequence = 0
        self.stall_tile_cycles = self.compute_tile_cycles = self.held_tile_cycles = self.reallocations = 0
        self.lost_tile_cycles = 0
        self.missed = 0
        self.latencies: dict[str, list[int]] = {p.name: [] for p in workload.pipelines}
        self._open: dict[int, tuple[int, tuple[int, ...], int]] = {}

    # -- events -----------------------------------------------------------------------------
    def _push(self, time: int, kind: str, payload: int, version: int = 0) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (time, self.sequence, kind, payload, version))

    def _release_stage(self, pipeline, stage: str, frame: int, now: int) -> None:
        job = Job(len(self.jobs), stage, pipeline.name, frame, frame * self.periods[pipeline.name],
                  frame * self.periods[pipeline.name] + self.deadlines[pipeline.name], now, self.factors[stage][frame])
        self.jobs[job.id] = job
        self.ready.append(job)

    def free_tiles(self) -> list[int]:
        return [t for t, owner in enumerate(self.owner) if owner is None]

    def remaining_cycles(self, job: Job, tiles: int) -> int:
        """Cycles of compute ``job`` still needs on ``tiles`` tiles (its factor applied)."""
        ends = self.profiles[job.network].layer_ends[tiles - 1]
        done = ends[job.layers_done - 1] if job.layers_done else 0
        return math.ceil((ends[-1] - done) * job.factor)

    # -- actions ----------------------------------------------------------------------------
    def _close_run(self, job: Job, now: int) -> None:
        start, tiles, stall = self._open.pop(job.id)
        self.runs.append(Run(job.id, job.network, job.frame, tiles, start, now, stall))
        self.held_tile_cycles += (now - start) * len(tiles)
        self.compute_tile_cycles += max(0, now - start - stall) * len(tiles)

    def weights_resident(self, network: str, tiles: tuple[int, ...]) -> bool:
        """Whether a job of ``network`` placed on ``tiles`` finds its weights there (always when
        they stream, or before the network's first job)."""
        tiles = tuple(sorted(tiles))
        if not self.profiles[network].resident_bytes[len(tiles) - 1] or network not in self.configured:
            return True
        return all((network, tiles) in self.held[t] for t in tiles)

    def resident_sets(self, network: str) -> list[tuple[int, ...]]:
        """The tile sets on which ``network``'s weights are resident now."""
        sets = {tiles for held in self.held for (name, tiles) in held if name == network}
        return sorted(tiles for tiles in sets if all((network, tiles) in self.held[t] for t in tiles))

    def _hold(self, network: str, tiles: tuple[int, ...]) -> None:
        """Record ``network``'s share on every tile of ``tiles`` as the most recently used,
        evicting the least recently used other shares that no longer fit."""
        key, size = (network, tiles), self.profiles[network].resident_bytes[len(tiles) - 1]
        if not size:
            return
        for tile in tiles:
            held = self.held[tile]
            held.pop(key, None)
            held[key] = size
            while sum(held.values()) > self.capacity:
                held.pop(next(iter(held)))
            assert key in held, f"{network}'s weights do not fit tile {tile}"

    def _place(self, job: Job, tiles: tuple[int, ...], now: int) -> None:
        for tile in tiles:
            assert self.owner[tile] in (None, job.id), f"tile {tile} given to job {job.id} while job {self.owner[tile]} holds it"
            self.owner[tile] = job.id
        profile = self.profiles[job.network]
        stall = 0 if self.weights_resident(job.network, tiles) else profile.load[len(tiles) - 1]
        if job.layers_done:
            stall += profile.feature_move[len(tiles) - 1]
        if stall:
            self.reallocations += 1
            self.stall_tile_cycles += stall * len(tiles)
        self.configured.add(job.network)
        self._hold(job.network, tiles)
        job.tiles, job.compute_start = tiles, now + stall
        job.version += 1
        self._open[job.id] = (now, tiles, stall)
        finish = job.compute_start + self.remaining_cycles(job, len(tiles))
        self._push(finish, "finish", job.id, job.version)

    def start(self, job: Job, tiles: tuple[int, ...], now: int) -> None:
        assert job in self.ready and tiles, f"job {job.id} is not ready or gets no tiles"
        self.ready.remove(job)
        self.running[job.id] = job
        self._place(job, tuple(sorted(tiles)), now)

    def resize(self, job: Job, tiles: tuple[int, ...], now: int) -> None:
        assert job.id in self.running and tiles, f"job {job.id} is not running or gets no tiles"
        if now > job.compute_start:
            ends = self.profiles[job.network].layer_ends[len(job.tiles) - 1]
            before = ends[job.layers_done - 1] if job.layers_done else 0
            reached = before + Fraction(now - job.compute_start) / job.factor
            while job.layers_done < len(ends) - 1 and ends[job.layers_done] <= reached:
                job.layers_done += 1
            kept = ends[job.layers_done - 1] if job.layers_done else 0
            self.lost_tile_cycles += math.floor((reached - kept) * job.factor) * len(job.tiles)
        self._close_run(job, now)
        for tile in job.tiles:
            if tile not in tiles:
                self.owner[tile] = None
        self._place(job, tuple(sorted(tiles)), now)

    def _finish(self, job: Job, now: int) -> None:
        self._close_run(job, now)
        for tile in job.tiles:
            self.owner[tile] = None
        job.end = now
        del self.running[job.id]
        pipeline = self.workload.pipeline_of(job.network)
        done = self.done.setdefault((pipeline.name, job.frame), set())
        done.add(job.network)
        for stage, after in pipeline.stages.items():
            if stage not in done and job.network in after and all(a in done for a in after):
                self._release_stage(pipeline, stage, job.frame, now)
        if all(s in done for s in pipeline.stages):
            latency = now - job.frame_release
            self.latencies[pipeline.name].append(latency)
            self.missed += latency > self.deadlines[pipeline.name]

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> Result:
        for pipeline in self.workload.pipelines:
            for frame in range(self.frames[pipeline.name]):
                self._push(frame * self.periods[pipeline.name], "release", self.workload.pipelines.index(pipeline))
        now = 0
        while self.events:
            now = self.events[0][0]
            while self.events and self.events[0][0] == now:
                _, _, kind, payload, version = heapq.heappop(self.events)
                if kind == "release":
                    pipeline = self.workload.pipelines[payload]
                    frame = now // self.periods[pipeline.name]
                    for stage, after in pipeline.stages.items():
                        if not after:
                            self._release_stage(pipeline, stage, frame, now)
                elif version == self.jobs[payload].version and self.jobs[payload].end is None:
                    self._finish(self.jobs[payload], now)
            self.policy.dispatch(self, now)
        expected = sum(len(p.stages) * self.frames[p.name] for p in self.workload.pipelines)
        finished = sum(1 for job in self.jobs.values() if job.end is not None)
        assert finished == len(self.jobs) == expected, f"{finished} of {expected} jobs ran"
        return Result(self.policy.name, self.tiles, sum(self.frames.values()), self.missed, now,
                      self.compute_tile_cycles - self.lost_tile_cycles, self.stall_tile_cycles, self.lost_tile_cycles,
                      self.held_tile_cycles, self.reallocations,
                      tuple(sorted(self.runs, key=lambda r: (r.start, r.job))),
                      {name: tuple(values) for name, values in self.latencies.items()})


def check_no_double_booking(result: Result) -> None:
    """Raise AssertionError if two runs hold one tile at the same time."""
    by_tile: dict[int, list[Run]] = {}
    for run in result.runs:
        for tile in run.tiles:
            by_tile.setdefault(tile, []).append(run)
    for tile, runs in by_tile.items():
        runs.sort(key=lambda r: (r.start, r.end))
        for before, after in zip(runs, runs[1:]):
            assert after.start >= before.end, f"tile {tile}: jobs {before.job} and {after.job} overlap"
