"""The three scheduling policies the engine (:mod:`.scheduler`) can run.

A policy is built for a workload on a number of tiles (``feasible`` is False when it cannot
place every network on them at all) and answers every event with ``dispatch(engine, now)``,
calling the engine's ``start`` and ``resize``.

* ``reservation``: fixed degrees of parallelism on dedicated tiles. Offline, each network
  gets the fewest tiles with which every pipeline's critical path meets its deadline and
  every network keeps up with its rate at the **worst-case** execution time (``variability``
  times the simulated one; :func:`size_dops`). At run time each network runs its jobs in
  frame order on its own tiles; tiles beyond the sizing stay idle.
* ``work-conserving``: one pool. At every event the running jobs and as many ready ones as
  there are tiles left (earliest frame deadline first, each job's deadline its frame's:
  deadlines taken as independent) share the tiles equally, each capped at the tiles that still speed it up; a running job whose share
  changes is resized at once. No tile idles while a job could use it; reallocation is taken
  to be free (the engine charges it anyway), though a job starts on tiles that hold its
  weights when such a set of its share's size is free.
* ``ads-tile`` (after ADS-Tile, arXiv 2606.10303): configurable isolation, elastic reservation
  and a DAG-aware runtime. Each network's base DoP is sized by the probabilistic latency
  model at the :data:`QUANTILE` of its execution time (not the worst case). Tiles are
  partitioned into isolation groups (the workload's ``isolation``: per pipeline, per network,
  one for all, or ``auto``: a pipeline whose deadline is shorter than another pipeline's
  longest job gets its own group, the others share one); a group gets its largest base and a
  share of the spare tiles by its work per second. The networks of a group share its tiles
  over time (colocation): each has a **home**, its base number of the group's tiles, chosen
  so that every tile's resident weights fit its SRAM and the least busy tiles are used, so
  that homes keep their weights and run without reloading. Jobs are ordered by DAG-aware
  deadlines (the frame's deadline less the longest path after the stage, at the quantile)
  and start on their home when it is free and meets that deadline at the quantile; otherwise
  on the fewest free tiles of the group that do, loading included (the home's tiles first,
  never the homes of the group's other waiting jobs: elastic reservation); otherwise on the
  home when it is free; otherwise they wait. Running jobs are never resized: a DoP changes
  only when a job starts, so reallocation is bounded in time (job boundaries) and space (the
  group).
"""

from __future__ import annotations

from edgec.backends.tile.latency_model import NetworkProfile, factor_quantile
from edgec.backends.tile.workload import Pipeline, Workload

#: The share of executions ADS-Tile's base reservations are sized to cover.
QUANTILE = 0.999


def _path_times(pipeline: Pipeline, time) -> dict[str, float]:
    """For each stage, the longest path from the pipeline's start through its end, given
    ``time(stage)``."""
    finish: dict[str, float] = {}
    for stage in pipeline.order():
        finish[stage] = time(stage) + max((finish[a] for a in pipeline.stages[stage]), default=0.0)
    return finish


def _tails(pipeline: Pipeline, time) -> dict[str, float]:
    """For each stage, the longest path after it to a sink (its own time excluded)."""
    tail: dict[str, float] = {}
    for stage in reversed(pipeline.order()):
        successors = [s for s, after in pipeline.stages.items() if stage in after]
        tail[stage] = max((time(s) + tail[s] for s in successors), default=0.0)
    return tail


def size_dops(workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, factor: float,
              budget: int) -> dict[str, int]:
    """Degrees of parallelism at execution-time ``factor``: from one tile each, add tiles where
    they shorten the worst violation most per tile, until every pipeline's critical path meets
    its deadline and every network its period (or nothing helps); then, while over
    ``budget`` tiles, take tiles back where they cost least."""
    dops = {name: 1 for name in workload.networks}

    def time(name: str, k: int | None = None) -> float:
        return profiles[name].cycles[(k or dops[name]) - 1] * factor

    def violation(pipeline: Pipeline) -> float:
        deadline = pipeline.deadline_ms * clock_hz / 1000
        period = clock_hz / pipeline.rate_hz
        worst = max(_path_times(pipeline, time).values()) - deadline
        return max(worst, *(time(s) - period for s in pipeline.stages))

    while True:
        late = [p for p in workload.pipelines if violation(p) > 0]
        if not late:
            break
        best = None
        for pipeline in late:
            for name in pipeline.stages:
                k = dops[name]
                if k >= profiles[name].useful_tiles():
                    continue
                gain = violation(pipeline)
                dops[name] = k + 1
                gain -= violation(pipeline)
                dops[name] = k
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, name)
        if best is None:
            break
        dops[best[1]] += 1
    while sum(dops.values()) > budget:
        shrinkable = [n for n in dops if dops[n] > 1]
        if not shrinkable:
            break
        name = min(shrinkable, key=lambda n: time(n, dops[n] - 1) - time(n))
        dops[name] -= 1
    return dops


def _shares(total: int, weights: list[float], floor: list[int] | None = None) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders first), plus ``floor``."""
    floor = floor or [0] * len(weights)
    whole = sum(weights) or 1
    parts = [int(total * w // whole) for w in weights]
    for index in sorted(range(len(weights)), key=lambda i: -weights[i])[:total - sum(parts)]:
        parts[index] += 1
    return [p + f for p, f in zip(parts, floor)]


def _fill(total: int, need: list[int]) -> list[int]:
    """``total`` tiles for groups that need more: one each, then one at a time to the group
    furthest from its need (relative to it)."""
    sizes = [min(1, total)] * len(need)
    for _ in range(total - sum(sizes)):
        short = [i for i in range(len(need)) if sizes[i] < need[i]]
        if not short:
            break
        sizes[max(short, key=lambda i: ((need[i] - sizes[i]) / need[i], -i))] += 1
    return sizes


class Reservation:
    """Fixed DoPs on dedicated tiles (see the module docstring)."""

    name = "reservation"

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int,
                 resident_capacity: int) -> None:
        self.dops = size_dops(workload, profiles, clock_hz, workload.variability, tiles)
        self.owned: dict[str, tuple[int, ...]] = {}
        start = 0
        for name in sorted(workload.networks):
            count = self.dops[name]
            self.owned[name] = tuple(range(start, start + count))
            start += count
        self.feasible = start <= tiles

    def dispatch(self, engine, now: int) -> None:
        for job in sorted(engine.ready, key=lambda j: (j.frame_release, j.id)):
            tiles = self.owned[job.network]
            if all(engine.owner[t] is None for t in tiles):
                engine.start(job, tiles, now)


class WorkConserving:
    """Equal shares of one pool, resized at every event (see the module docstring)."""

    name = "work-conserving"

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int,
                 resident_capacity: int) -> None:
        self.profiles = profiles
        self.feasible = tiles >= 1

    def dispatch(self, engine, now: int) -> None:
        def urgency(job):
            return job.deadline, job.frame_release, job.id

        waiting = sorted(engine.ready, key=urgency)[:engine.tiles - len(engine.running)]
        active = sorted([*engine.running.values(), *waiting], key=urgency)
        share = {job.id: 1 for job in active}
        left = engine.tiles - len(active)
        growing = [job for job in active if self.profiles[job.network].useful_tiles() > 1]
        while left > 0 and growing:
            for job in list(growing):
                if left == 0:
                    break
                share[job.id] += 1
                left -= 1
                if share[job.id] >= self.profiles[job.network].useful_tiles():
                    growing.remove(job)
        for job in active:  # shrink first, so that growing jobs find the tiles free
            if job.id in engine.running and share[job.id] < len(job.tiles):
                engine.resize(job, job.tiles[:share[job.id]], now)
        for job in active:
            free = engine.free_tiles()
            if job.id in engine.running and share[job.id] > len(job.tiles):
                engine.resize(job, job.tiles + tuple(free[:share[job.id] - len(job.tiles)]), now)
            elif job.id not in engine.running:
                kept = [t for t in engine.resident_sets(job.network)
                        if len(t) == share[job.id] and all(engine.owner[i] is None for i in t)]
                engine.start(job, kept[0] if kept else tuple(free[:share[job.id]]), now)


class AdsTile:
    """Isolation groups, homes, elastic reservation and a DAG-aware runtime (module docstring)."""

    name = "ads-tile"

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int,
                 resident_capacity: int) -> None:
        self.profiles = profiles
        self.factor = factor_quantile(workload.variability, QUANTILE)
        # Dedicated networks share the budget; colocated ones share their group over time.
        budget = tiles if workload.isolation == "network" else tiles * len(workload.networks)
        self.base = size_dops(workload, profiles, clock_hz, self.factor, budget)
        groups = self._groups(workload, clock_hz)
        # A group needs its largest base; the tiles are shared in proportion to the needs.
        need = [max(self.base[n] for n in group) for group in groups]
        sizes = _fill(tiles, need) if sum(need) > tiles else _shares(tiles - sum(need), [
            sum(profiles[n].cycles[self.base[n] - 1] * workload.pipeline_of(n).rate_hz for n in group)
            for group in groups], need)
        self.group_of, self.group_tiles, self.home, start = {}, [], {}, 0
        self.demand = {name: profiles[name].cycles[self.base[name] - 1] * workload.pipeline_of(name).rate_hz
                       for name in workload.networks}
        homes_fit = len(groups) <= tiles
        for number, (group, size) in enumerate(zip(groups, sizes)):
            members = tuple(range(start, start + size))
            self.group_tiles.append(members)
            start += size
            for name in group:
                self.group_of[name] = number
                self.base[name] = max(1, min(self.base[name], size))
            homes = self._homes(group, members, resident_capacity) if size else None
            homes_fit = homes_fit and homes is not None
            self.home.update(homes or {})
        self.feasible = homes_fit
        self.offset = {}  # the share of a frame's deadline left after each stage, at the quantile
        for pipeline in workload.pipelines:
            tails = _tails(pipeline, lambda s: profiles[s].cycles[self.base[s] - 1] * self.factor)
            for stage in pipeline.stages:
                self.offset[stage] = int(tails[stage])

    def _groups(self, workload: Workload, clock_hz: int) -> list[list[str]]:
        """The isolation groups of the workload's ``isolation``: one per pipeline, one per
        network, one for all, or ``auto``: a pipeline whose deadline is shorter than the
        longest job (at the quantile) of the other pipelines could not wait for one to end,
        so it is isolated; the other pipelines share one group."""
        if workload.isolation == "pipeline":
            return [sorted(p.stages) for p in workload.pipelines]
        if workload.isolation == "network":
            return [[name] for name in sorted(workload.networks)]
        if workload.isolation == "none":
            return [sorted(workload.networks)]

        def longest(pipeline: Pipeline) -> float:
            return max(self.profiles[n].cycles[self.base[n] - 1] * self.factor for n in pipeline.stages)

        isolated = [p for p in workload.pipelines
                    if any(p.deadline_ms * clock_hz / 1000 < longest(q) for q in workload.pipelines if q is not p)]
        shared = sorted(n for p in workload.pipelines if p not in isolated for n in p.stages)
        return [sorted(p.stages) for p in isolated] + ([shared] if shared else [])

    def _homes(self, group: list[str], members: tuple[int, ...], capacity: int) -> dict[str, tuple[int, ...]] | None:
        """Each network's home: its base number of the group's tiles whose resident weights
        then still fit ``capacity``, the least busy ones (by the tile-time per second of the
        homes already placed there), largest networks first; ``None`` when they do not fit."""
        used = {tile: 0 for tile in members}
        busy = {tile: 0.0 for tile in members}
        homes = {}
        for name in sorted(group, key=lambda n: (-self.demand[n] * self.base[n], n)):
            share = self.profiles[name].resident_bytes[self.base[name] - 1]
            fits = sorted((t for t in members if used[t] + share <= capacity), key=lambda t: (busy[t], used[t], t))
            if len(fits) < self.base[name]:
                return None
            homes[name] = tuple(sorted(fits[:self.base[name]]))
            for tile in homes[name]:
                used[tile] += share
                busy[tile] += self.demand[name]
        return homes

    def dispatch(self, engine, now: int) -> None:
        waiting = sorted(engine.ready, key=lambda j: (j.deadline - self.offset[j.network], j.id))
        for job in waiting:
            group = self.group_of[job.network]
            free = [t for t in self.group_tiles[group] if engine.owner[t] is None]
            # Elastic reservation: the homes of the group's other waiting jobs stay theirs.
            reserved = {t for other in engine.ready if other is not job and self.group_of[other.network] == group
                        for t in self.home[other.network]}
            tiles = self._tiles(engine, job, free, reserved, now)
            if tiles:
                engine.start(job, tiles, now)

    def _tiles(self, engine, job, free: list[int], reserved: set[int], now: int) -> tuple[int, ...] | None:
        """The job's home when it is free and meets the DAG-aware deadline at the quantile;
        else the fewest free tiles (its home's first, then those fewest homes claim, none
        reserved) that meet it, weight loading included; else its home if free; else wait."""
        profile, home = self.profiles[job.network], self.home[job.network]
        deadline = job.deadline - self.offset[job.network]

        def finish(tiles: tuple[int, ...]) -> float:
            load = 0 if engine.weights_resident(job.network, tiles) else profile.load[len(tiles) - 1]
            return now + load + profile.cycles[len(tiles) - 1] * self.factor

        home_free = set(home) <= set(free)
        if home_free and finish(home) <= deadline:
            return home
        claims = {t: sum(t in h for h in self.home.values()) for t in free}
        order = [t for t in free if t in home] + sorted((t for t in free if t not in home and t not in reserved),
                                                         key=lambda t: (claims[t], t))
        for count in range(1, min(len(order), profile.useful_tiles()) + 1):
            tiles = tuple(sorted(order[:count]))
            if finish(tiles) <= deadline:
                return tiles
        return home if home_free else None


POLICIES = {policy.name: policy for policy in (Reservation, WorkConserving, AdsTile)}
