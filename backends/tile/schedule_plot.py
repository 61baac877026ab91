"""The figure of ``edgec schedule --plot``: tiles needed and reallocation waste per policy, and
each policy's tile occupancy over the first frames.

Top left: tiles each policy needs to miss no deadline. Top right: reallocation waste (share of
held tile-time stalled reloading weights and moving features, or lost to stopped layers) on
the tiles it needs. Below, one panel per policy: each
tile's jobs over the first :data:`WINDOW_MS` milliseconds of the simulation on the tiles it
needs, coloured by network, stalls in black. Written with matplotlib's Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Patch  # noqa: E402

from edgec.backends.tile.schedule_run import ScheduleReport  # noqa: E402
from edgec.files import atomic_write  # noqa: E402

WINDOW_MS = 100


def plot_report(report: ScheduleReport, path: str | Path) -> None:
    """Write the figure as a PNG to ``path``."""
    entries = report.policies
    figure = plt.figure(figsize=(12, 3.5 + 3.0 * len(entries)))
    grid = figure.add_gridspec(1 + len(entries), 2, height_ratios=[1.2] + [1.0] * len(entries))
    names = [e.policy for e in entries]
    needed = [e.tiles_needed or 0 for e in entries]
    bars = figure.add_subplot(grid[0, 0])
    bars.bar(names, needed, color=["0.6" if n == 0 else "tab:blue" for n in needed])
    for x, n in enumerate(needed):
        bars.annotate(str(n) if n else f">{report.target.grid.tiles}", (x, n), ha="center", va="bottom")
    bars.set_ylabel("tiles needed for 0 misses")
    bars.set_title(f"{report.workload.name} on {report.target.name}")
    waste = figure.add_subplot(grid[0, 1])
    values = [100 * e.at_needed.reallocation_waste if e.at_needed else 0 for e in entries]
    waste.bar(names, values, color="tab:red")
    for x, v in enumerate(values):
        waste.annotate(f"{v:.2f} %", (x, v), ha="center", va="bottom")
    waste.set_ylabel("reallocation waste (% of held tile-time)")
    colours = plt.get_cmap("tab10")
    networks = sorted(report.workload.networks)
    clock = report.target.grid.clock_hz
    for row, entry in enumerate(entries, start=1):
        axis = figure.add_subplot(grid[row, :])
        result = entry.at_needed
        if result is None:
            axis.set_title(f"{entry.policy}: misses deadlines even on all {report.target.grid.tiles} tiles")
            axis.axis("off")
            continue
        window = WINDOW_MS * clock / 1000
        for run in result.runs:
            if run.start >= window:
                continue
            start, stall = run.start / clock * 1e3, run.stall / clock * 1e3
            width = (min(run.end, window) - run.start) / clock * 1e3
            colour = colours(networks.index(run.network) % 10)
            for tile in run.tiles:
                axis.broken_barh([(start, width)], (tile - 0.4, 0.8), color=colour)
                if stall:
                    axis.broken_barh([(start, min(stall, width))], (tile - 0.4, 0.8), color="black")
        axis.set_xlim(0, WINDOW_MS)
        axis.set_ylim(-0.6, result.tiles - 0.4)
        axis.set_ylabel("tile")
        axis.set_title(f"{entry.policy} on {result.tiles} tiles: utilisation {result.utilisation:.0%}, "
                       f"waste {result.reallocation_waste:.2%}", fontsize=9)
    axis.set_xlabel("ms")
    handles = [Patch(color=colours(i % 10), label=n) for i, n in enumerate(networks)]
    handles.append(Patch(color="black", label="reallocation stall"))
    figure.legend(handles=handles, loc="lower center", ncol=min(9, len(handles)), fontsize=8)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
