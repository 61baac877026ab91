"""The peer figures of shared/benchmarks/peers.md, read for benchmarks/cortex_m.py.

Two tables of that file are used:

* TFLM + CMSIS-NN measured on the same QEMU boards: instructions per inference and arena per
  (model, core) — the side-by-side peer (:func:`tflm_figures`);
* the MLPerf Tiny published latencies, with each engine's cycles per MAC in parentheses
  (latency x clock / MACs, the MAC counts stated above that table): what other engines reach on
  real boards (:func:`published_cycles_per_mac`), set beside edgec's cycle-model estimate.
"""

from __future__ import annotations

import re
from pathlib import Path

PEER_NAMES = {"KWS": "kws", "VWW": "vww", "IC ResNet-8": "resnet8", "AD": "ad"}
PEER_CORES = {"M3": "cortex-m3", "M4": "cortex-m4", "M7": "cortex-m7", "M33": "cortex-m33"}
#: The published table's model columns, in order.
PUBLISHED_MODELS = ("kws", "vww", "resnet8", "ad")
#: Published rows whose engines edgec is compared with: (the core it ran on, a short name).
PUBLISHED_ENGINES = {"X-CUBE-AI 10.2 (ST)": ("cortex-m4", "X-CUBE-AI 10.2"),
                     "Plumerai inference engine": ("cortex-m4", "Plumerai"),
                     "X-CUBE-AI 9.0": ("cortex-m7", "X-CUBE-AI 9.0"), "Plumerai": ("cortex-m33", "Plumerai")}


def _rows(peers: Path) -> list[list[str]]:
    if not peers.exists():
        return []
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in peers.read_text().splitlines()
            if line.startswith("|")]


def tflm_figures(peers: Path) -> dict[tuple[str, str], dict]:
    """(model key, core) -> TFLM instructions and arena, from the peers table."""
    figures = {}
    for cells in _rows(peers):
        if len(cells) >= 5 and cells[0] in PEER_NAMES and cells[1] in PEER_CORES:
            instructions = int(cells[2].replace(",", ""))
            arena = int(re.match(r"[\d,]+", cells[4]).group(0).replace(",", ""))
            figures[(PEER_NAMES[cells[0]], PEER_CORES[cells[1]])] = {"instructions": instructions, "arena": arena}
    return figures


def published_macs(peers: Path) -> dict[str, int]:
    """Model key -> the MAC count the published cycles/MAC were computed with."""
    text = peers.read_text() if peers.exists() else ""
    return {key: int(count.replace(",", "")) for name, key in PEER_NAMES.items()
            for count in re.findall(rf"{re.escape(name)} ([\d,]+)", text)[:1]}


def published_cycles_per_mac(peers: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(model key, core) -> {engine's short name: published cycles/MAC} for PUBLISHED_ENGINES."""
    figures: dict[tuple[str, str], dict[str, float]] = {}
    for cells in _rows(peers):
        engine = PUBLISHED_ENGINES.get(cells[0]) if cells else None
        if engine is None or len(cells) < 2 + len(PUBLISHED_MODELS):
            continue
        core, name = engine
        for model, cell in zip(PUBLISHED_MODELS, cells[2:], strict=False):
            match = re.search(r"\(([\d.]+)\)", cell)
            if match:
                figures.setdefault((model, core), {})[name] = float(match.group(1))
    return figures
