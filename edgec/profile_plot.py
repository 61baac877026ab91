"""The profile figure: per-layer latency per target, and activation memory against RAM.

Top: estimated milliseconds per layer, one bar per target (a logarithmic axis when layers
differ by more than a hundredfold). Bottom: tensor bytes live during each layer (the
activation-memory timeline, the same on every target) with the arena peak and each target
part's RAM as horizontal lines. Written with matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from edgec.files import atomic_write  # noqa: E402
from edgec.profiling import Profile  # noqa: E402


def plot_profile(profile: Profile, path: str | Path) -> None:
    """Write the figure as a PNG to ``path``."""
    targets = profile.targets
    layers = targets[0].layers
    labels = [f"{layer.index} {layer.op}" for layer in layers]
    positions = range(len(layers))
    figure, (latency, memory) = plt.subplots(2, 1, figsize=(max(8.0, 0.45 * len(layers) + 3), 8.5),
                                             gridspec_kw={"height_ratios": [3, 2]}, sharex=True)
    width = 0.8 / len(targets)
    for number, target in enumerate(targets):
        offsets = [p - 0.4 + width * (number + 0.5) for p in positions]
        latency.bar(offsets, [layer.estimated_ms for layer in target.layers], width,
                    label=f"{target.target} @ {target.clock_hz / 1e6:g} MHz: {target.estimated_ms:.1f} ms")
    values = [layer.estimated_ms for target in targets for layer in target.layers if layer.estimated_ms > 0]
    if values and max(values) > 100 * min(values):
        latency.set_yscale("log")
    latency.set_ylabel("estimated latency per layer (ms)")
    latency.set_title(f"{profile.model}: per-layer latency (estimate from a cycle model) and activation memory")
    latency.legend(fontsize=8)
    latency.grid(axis="y", alpha=0.3)

    live_kib = [layer.live_bytes / 1024 for layer in layers]
    memory.step(list(positions), live_kib, where="mid", color="tab:blue", label="live tensors + scratch")
    memory.fill_between(list(positions), live_kib, step="mid", alpha=0.25, color="tab:blue")
    memory.axhline(targets[0].arena_bytes / 1024, color="tab:blue", linestyle="--",
                   label=f"arena peak {targets[0].arena_bytes / 1024:.1f} KiB")
    ceiling = max(live_kib + [targets[0].arena_bytes / 1024])
    off_scale = 0
    for target in targets:
        ram = target.ram_bytes / 1024
        if ram <= 10 * ceiling:
            memory.axhline(ram, linestyle=":", color="tab:red", label=f"{target.part} RAM {ram:.0f} KiB")
        else:
            memory.annotate(f"{target.part} RAM {ram:.0f} KiB: above the scale", xy=(0.99, 0.72 - 0.08 * off_scale),
                            xycoords="axes fraction", ha="right", fontsize=8, color="tab:red")
            off_scale += 1
    memory.set_ylabel("activation memory (KiB)")
    memory.set_xticks(list(positions))
    memory.set_xticklabels(labels, rotation=70, ha="right", fontsize=8)
    memory.legend(fontsize=8, loc="upper left")
    memory.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)
