"""The tile project's figure: the simulated schedule per tile, and latency against tiles.

Top: one lane per tile of the group; each compute operation is a bar coloured by its layer,
loads and stores thin bars above and below it (so a tile's DMA and compute overlap visibly).
Bottom: simulated latency (ms) for every degree of parallelism, the chosen one marked.
Written with matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Patch  # noqa: E402

from edgec.backends.tile.mapping import NetworkMapping  # noqa: E402
from edgec.backends.tile.simulator import COMPUTE, LOAD, Simulation  # noqa: E402
from edgec.files import atomic_write  # noqa: E402
from edgec.target_kinds.tile import TileTarget  # noqa: E402


def plot(simulation: Simulation, mapping: NetworkMapping, target: TileTarget, path: Path, title: str,
         latency_by_tiles: list[int] | None = None) -> None:
    """Write the figure as a PNG to ``path``."""
    panels = 2 if latency_by_tiles else 1
    figure, axes = plt.subplots(panels, 1, figsize=(11, 2.2 + 0.35 * mapping.tiles + 2.8 * (panels - 1)),
                                gridspec_kw={"height_ratios": [max(2, mapping.tiles * 0.35), 2.5][:panels]},
                                squeeze=False)
    schedule = axes[0][0]
    colours = plt.get_cmap("tab20")
    to_us = 1e6 / target.grid.clock_hz
    for event in simulation.events:
        start, width = event.start * to_us, (event.end - event.start) * to_us
        if event.kind == COMPUTE:
            schedule.barh(event.tile, width, left=start, height=0.5, color=colours(event.layer % 20))
        else:
            offset = -0.33 if event.kind == LOAD else 0.33
            schedule.barh(event.tile + offset, width, left=start, height=0.12, color="0.45")
    names = {m.layer.index: f"{m.layer.index} {m.layer.op}" for m in mapping.layers if m.shares}
    handles = [Patch(color=colours(index % 20), label=label) for index, label in names.items()]
    schedule.set_yticks(range(mapping.tiles), [f"tile {t}" for t in range(mapping.tiles)])
    schedule.invert_yaxis()
    schedule.set_xlabel("µs (grey: DMA loads above, stores below each tile's compute)")
    schedule.set_title(f"{title}: {simulation.cycles:,} cycles ({simulation.cycles * to_us / 1e3:.3f} ms)")
    schedule.legend(handles=handles, fontsize=7, ncol=max(1, len(names) // 12 + 1), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if latency_by_tiles:
        curve = axes[1][0]
        tiles = range(1, len(latency_by_tiles) + 1)
        curve.plot(tiles, [c * to_us / 1e3 for c in latency_by_tiles], marker="o", markersize=3)
        curve.axvline(mapping.tiles, color="0.6", linestyle="--", label=f"this project: {mapping.tiles} tiles")
        curve.set_xlabel("tiles (degree of parallelism)")
        curve.set_ylabel("latency (ms)")
        curve.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
