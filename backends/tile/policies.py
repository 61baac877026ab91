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
  to be free (the engine charges it anyway).
* ``ads-tile`` (after ADS-Tile, arXiv 2606.10303): configurable isolation, elastic reservation
  and a DAG-aware runtime. Tiles are partitioned into isolation groups (per pipeline, per
  network, or one; the workload's ``isolation``); the networks of a group share its tiles
  over time (colocation). Each network's base reservation is sized by the probabilistic
  latency model at the :data:`QUANTILE` of its execution time (not the worst case); a group
  gets its largest base and a share of the other tiles by its work per second. Jobs are ordered by
  DAG-aware deadlines (the frame's deadline less the longest path after the stage, at the
  quantile) and start on the tiles their network's weights are laid out for when that meets
  their deadline; otherwise on the fewest tiles that do, growing beyond the base only into
  tiles that no waiting job of the group needs for its own base (elastic reservation).
  Running jobs are never resized: a DoP changes only when a job starts, so reallocation is
  bounded in time (job boundaries) and space (the group).
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


class Reservation:
    """Fixed DoPs on dedicated tiles (see the module docstring)."""

    name = "reservation"

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int) -> None:
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

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int) -> None:
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
                engine.start(job, tuple(free[:share[job.id]]), now)


class AdsTile:
    """Isolation groups, elastic reservation and a DAG-aware runtime (see the module docstring)."""

    name = "ads-tile"

    def __init__(self, workload: Workload, profiles: dict[str, NetworkProfile], clock_hz: int, tiles: int) -> None:
        self.profiles = profiles
        self.factor = factor_quantile(workload.variability, QUANTILE)
        self.base = size_dops(workload, profiles, clock_hz, self.factor, tiles)
        if workload.isolation == "pipeline":
            groups = [sorted(p.stages) for p in workload.pipelines]
        elif workload.isolation == "network":
            groups = [[name] for name in sorted(workload.networks)]
        else:
            groups = [sorted(workload.networks)]
        # A group's networks share its tiles over time (colocation): it needs its largest base
        # reservation at least, and shares the rest of the tiles by its work per second.
        need = [max(self.base[n] for n in group) for group in groups]
        self.feasible = sum(need) <= tiles
        work = [sum(profiles[n].cycles[self.base[n] - 1] * workload.pipeline_of(n).rate_hz for n in group)
                for group in groups]
        spare = max(0, tiles - sum(need))
        extra = [int(spare * w // max(1e-9, sum(work))) for w in work]
        for index in sorted(range(len(groups)), key=lambda i: -work[i])[:spare - sum(extra)]:
            extra[index] += 1
        self.group_of, self.group_tiles, start = {}, [], 0
        for number, (group, size) in enumerate(zip(groups, (n + e for n, e in zip(need, extra)))):
            self.group_tiles.append(tuple(t for t in range(start, min(start + size, tiles))))
            start += size
            for name in group:
                self.group_of[name] = number
        self.offset = {}  # the share of a frame's deadline left after each stage, at the quantile
        for pipeline in workload.pipelines:
            tails = _tails(pipeline, lambda s: profiles[s].cycles[self.base[s] - 1] * self.factor)
            for stage in pipeline.stages:
                self.offset[stage] = int(tails[stage])

    def dispatch(self, engine, now: int) -> None:
        waiting = sorted(engine.ready, key=lambda j: (j.deadline - self.offset[j.network], j.id))
        for job in waiting:
            group = self.group_tiles[self.group_of[job.network]]
            free = [t for t in group if engine.owner[t] is None]
            others = sum(self.base[j.network] for j in engine.ready if j is not job
                         and self.group_of[j.network] == self.group_of[job.network])
            base = min(self.base[job.network], len(group))
            if len(free) < base:
                continue
            limit = max(base, min(len(free) - others, self.profiles[job.network].useful_tiles()))
            engine.start(job, self._tiles(engine, job, free, base, limit, now), now)

    def _tiles(self, engine, job, free: list[int], base: int, limit: int, now: int) -> tuple[int, ...]:
        """The tiles its weights are laid out on if they are free and meet the job's DAG-aware
        deadline at the quantile; else the fewest tiles in ``[base, limit]`` that do (those of
        the layout first), else the fastest count."""
        profile = self.profiles[job.network]
        deadline = job.deadline - self.offset[job.network]
        laid_out = engine.layout[job.network] or ()

        def finish(k: int, stall: bool = True) -> float:
            return now + (profile.migration[k - 1] if stall else 0) + profile.cycles[k - 1] * self.factor

        if laid_out and set(laid_out) <= set(free) and finish(len(laid_out), stall=False) <= deadline:
            return laid_out
        options = range(base, limit + 1)
        meeting = [k for k in options if finish(k) <= deadline]
        count = meeting[0] if meeting else min(options, key=finish)
        preferred = [t for t in free if t in laid_out] + [t for t in free if t not in laid_out]
        return tuple(preferred[:count])


POLICIES = {policy.name: policy for policy in (Reservation, WorkConserving, AdsTile)}
