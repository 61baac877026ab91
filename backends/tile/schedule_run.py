"""``edgec schedule``: every policy on a workload, the tiles each needs, and the report.

:func:`schedule_workload` profiles every network of the workload on the target
(:mod:`.latency_model`), then per policy (:mod:`.policies`):

* **tiles needed**: the fewest tiles of the grid on which the simulation (:mod:`.scheduler`)
  misses no deadline, by bisection over 1 to the grid's tiles (assuming that more tiles never
  make a policy miss more, which the report's ``checked`` list shows for the tiles it tried);
  ``None`` when even the whole grid misses;
* the simulation on ``tiles`` tiles (default: the whole grid): miss rate, utilisation,
  reallocation waste and reallocations.

:func:`write_json` writes, per policy, ``tiles_needed``, ``miss_rate``,
``reallocation_waste`` (and the rest); :func:`plot_report` the figure.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from edgec import progress
from edgec.backends.tile.latency_model import NetworkProfile, network_profile
from edgec.backends.tile.mapping import resident_capacity
from edgec.backends.tile.policies import POLICIES
from edgec.backends.tile.scheduler import Engine, Result, check_no_double_booking
from edgec.backends.tile.workload import Workload
from edgec.errors import EdgecError
from edgec.files import atomic_write
from edgec.target_kinds.tile import TileTarget


@dataclasses.dataclass(frozen=True)
class PolicyReport:
    policy: str
    tiles_needed: int | None
    at_needed: Result | None
    at_tiles: Result | None
    checked: tuple[tuple[int, float], ...]  # (tiles, miss rate) tried by the search


@dataclasses.dataclass(frozen=True)
class ScheduleReport:
    workload: Workload
    target: TileTarget
    tiles: int
    profiles: dict[str, NetworkProfile]
    policies: tuple[PolicyReport, ...]


def simulate_policy(workload: Workload, profiles: dict[str, NetworkProfile], target: TileTarget, policy: str,
                    tiles: int, frames: int | None = None) -> Result | None:
    """One simulation of ``policy`` on ``tiles`` tiles; ``None`` when it cannot place the workload."""
    capacity = resident_capacity(target)
    instance = POLICIES[policy](workload, profiles, target.grid.clock_hz, tiles, capacity)
    if not instance.feasible:
        return None
    result = Engine(workload, profiles, target.grid.clock_hz, tiles, instance, capacity, frames).run()
    check_no_double_booking(result)
    return result


def tiles_needed_search(workload: Workload, profiles: dict[str, NetworkProfile], target: TileTarget, policy: str,
                        frames: int | None) -> tuple[int | None, Result | None, list[tuple[int, float]]]:
    """The fewest tiles on which ``policy`` misses no deadline (``None``: not even the whole
    grid), its simulation there, and the ``(tiles, miss rate)`` pairs the bisection tried."""
    checked: list[tuple[int, float]] = []
    results: dict[int, Result | None] = {}

    def misses(tiles: int) -> bool:
        progress.stage(f"{policy}: simulating {workload.name} on {tiles} tiles")
        results[tiles] = simulate_policy(workload, profiles, target, policy, tiles, frames)
        rate = 1.0 if results[tiles] is None else results[tiles].miss_rate
        checked.append((tiles, rate))
        return rate > 0

    low, high = 1, target.grid.tiles
    if misses(high):
        return None, None, checked
    while low < high:
        middle = (low + high) // 2
        if misses(middle):
            low = middle + 1
        else:
            high = middle
    if high not in results:
        misses(high)
    return high, results[high], checked


def schedule_workload(workload: Workload, target: TileTarget, tiles: int | None = None, frames: int | None = None,
                      policies: list[str] | None = None) -> ScheduleReport:
    """Profile the networks and run every policy (module docstring)."""
    tiles = tiles or target.grid.tiles
    if not 1 <= tiles <= target.grid.tiles:
        raise EdgecError(f"--tiles {tiles} is not a number of tiles of {target.name}",
                         f"give 1 to {target.grid.tiles}")
    chosen = policies or list(POLICIES)
    unknown = [p for p in chosen if p not in POLICIES]
    if unknown:
        raise EdgecError(f"no scheduling policy '{unknown[0]}'", f"use {', '.join(POLICIES)}")
    profiles = {name: network_profile(network, workload, target) for name, network in workload.networks.items()}
    reports = []
    for policy in chosen:
        needed, at_needed, checked = tiles_needed_search(workload, profiles, target, policy, frames)
        progress.stage(f"{policy}: simulating {workload.name} on {tiles} tiles")
        at_tiles = simulate_policy(workload, profiles, target, policy, tiles, frames)
        reports.append(PolicyReport(policy, needed, at_needed, at_tiles, tuple(checked)))
    return ScheduleReport(workload, target, tiles, profiles, tuple(reports))


def _figures(result: Result | None, clock_hz: int) -> dict | None:
    """A simulation's figures; ``None`` for a policy that could not place the workload."""
    if result is None:
        return None
    return {"tiles": result.tiles, "miss_rate": result.miss_rate, "missed_frames": result.missed,
            "frames": result.frames, "utilisation": result.utilisation,
            "reallocation_waste": result.reallocation_waste, "reallocations": result.reallocations,
            "worst_latency_ms": {p: max(v, default=0) / clock_hz * 1e3 for p, v in result.latencies.items()}}


def report_json(report: ScheduleReport) -> dict:
    """The report as JSON-ready data: per policy ``tiles_needed`` and, on the report's tiles,
    ``miss_rate``, ``reallocation_waste``, ``utilisation``, ``reallocations`` and the worst
    end-to-end latency per pipeline (a policy that cannot place the workload there: miss rate
    1, the others ``null``); ``attiles_needed_search``: the same figures on the tiles it needs."""
    clock = report.target.grid.clock_hz
    policies = {}
    for entry in report.policies:
        figures = _figures(entry.at_tiles, clock) or {"miss_rate": 1.0, "reallocation_waste": None,
                                                      "utilisation": None, "reallocations": None}
        policies[entry.policy] = {"tiles_needed": entry.tiles_needed, **figures,
                                  "attiles_needed_search": _figures(entry.at_needed, clock),
                                  "search": [list(c) for c in entry.checked]}
    return {"generator": "edgec", "workload": report.workload.name, "target": report.target.name,
            "tiles": report.tiles, "variability": report.workload.variability,
            "networks": {name: {"macs": p.macs, "parameter_bytes": p.parameter_bytes,
                                "latency_ms_by_tiles": [c / clock * 1e3 for c in p.cycles],
                                "weight_load_ms_by_tiles": [c / clock * 1e3 for c in p.load],
                                "resident_bytes_by_tiles": list(p.resident_bytes)}
                         for name, p in report.profiles.items()},
            "policies": policies}


def write_json(report: ScheduleReport, path: str | Path) -> None:
    data = report_json(report)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


def summary_lines(report: ScheduleReport) -> list[str]:
    """The table the command line prints: one row per policy."""
    lines = [f"{report.workload.name} on {report.target.name}: {len(report.workload.networks)} networks in "
             f"{len(report.workload.pipelines)} pipelines, execution times up to {report.workload.variability:g}x; "
             f"miss rate, utilisation and waste on {report.tiles} tiles",
             f"  {'policy':16s} {'tiles needed':>12s} {'miss rate':>10s} {'utilisation':>12s} "
             f"{'realloc. waste':>15s} {'reallocations':>14s}"]
    for entry in report.policies:
        needed = str(entry.tiles_needed) if entry.tiles_needed else f">{report.target.grid.tiles}"
        at = entry.at_tiles
        if at is None:
            lines.append(f"  {entry.policy:16s} {needed:>12s}   cannot place the workload on {report.tiles} tiles")
            continue
        lines.append(f"  {entry.policy:16s} {needed:>12s} {at.miss_rate:10.2%} {at.utilisation:12.1%} "
                     f"{at.reallocation_waste:15.2%} {at.reallocations:14,}")
    return lines
