"""What the schedulers know of each network: its simulated latency on every number of tiles,
the cost of moving it to another number, and the probabilistic spread of its execution times.

:func:`network_profile` imports a workload network (a float model is quantized on seeded
uniform random calibration data: timing depends on shapes, not on values), maps and simulates
it on every ``k`` of the target (:func:`.project.sweep`) and keeps:

* ``cycles[k - 1]``: the simulated latency of one inference on ``k`` tiles;
* ``resident_bytes[k - 1]``: the most weight bytes one of the ``k`` tiles keeps resident in
  its SRAM (0 when the weights stream from DRAM with every inference);
* ``load[k - 1]``: the cycles to load those resident weights onto ``k`` tiles from DRAM (all
  tiles at once over the shared DRAM; :func:`.simulator.weight_load_cycles`), 0 when they stream;
* ``feature_move[k - 1]``: the cycles to move a stopped job's live intermediate features onto
  ``k`` new tiles: the largest feature map spread over their ``k`` NoC ports, plus the grid's
  diameter in hops;
* ``tiles_used[k - 1]``: the tiles the fastest mapping on at most ``k`` actually uses;
* ``layer_ends[k - 1][i]``: the cycle by which layers ``0..i`` have all ended on ``k`` tiles
  (the checkpoints a stopped job keeps; the last is ``cycles[k - 1]``).

Profiles are cached as JSON under the cache directory, keyed by the integer graph's bytes,
the target's TOML and :data:`PROFILE_VERSION`.

Execution times vary (input-dependent work, contention): a job's time is its simulated time
times a factor ``X = 1 + (V - 1) B``, ``V`` the workload's ``variability`` and ``B`` Beta(2, 5)
distributed: most jobs run near the simulated time, the slowest ``V`` times it (ADS-Tile
reports spans up to 3.3x; the Beta shape is edgec's assumption). :func:`factor_quantile` is
the exact inverse of its CDF, ``F(b) = 1 - (1 - b)^6 - 6 b (1 - b)^5``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec import progress
from edgec.backends.tile.layers import plan_layers
from edgec.backends.tile.project import sweep
from edgec.backends.tile.simulator import Simulation, weight_load_cycles
from edgec.backends.tile.workload import Network, Workload
from edgec.errors import EdgecWarning
from edgec.target import target_toml
from edgec.target_kinds.tile import TileTarget

#: Bump when the mapping, the simulator or the profile's fields change (it invalidates caches).
PROFILE_VERSION = 3
#: Beta(ALPHA, BETA) shapes the execution-time factor.
ALPHA, BETA = 2, 5


@dataclasses.dataclass(frozen=True)
class NetworkProfile:
    name: str
    macs: int
    parameter_bytes: int
    cycles: tuple[int, ...]
    resident_bytes: tuple[int, ...]
    load: tuple[int, ...]
    feature_move: tuple[int, ...]
    tiles_used: tuple[int, ...]
    layer_ends: tuple[tuple[int, ...], ...]

    def useful_tiles(self) -> int:
        """The most tiles that still make it faster (more buy nothing)."""
        return self.tiles_used[-1]


def factor_quantile(variability: float, probability: float) -> float:
    """The execution-time factor that a share ``probability`` of jobs stays within."""
    if variability == 1 or probability <= 0:
        return 1.0
    if probability >= 1:
        return variability
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        cdf = 1 - (1 - middle) ** 6 - 6 * middle * (1 - middle) ** 5
        low, high = (middle, high) if cdf < probability else (low, middle)
    return 1 + (variability - 1) * high


def draw_factors(variability: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` execution-time factors (see the module docstring)."""
    return 1 + (variability - 1) * rng.beta(ALPHA, BETA, size=count)


def cache_directory() -> Path:
    """Where profiles are cached: ``$EDGEC_CACHE/tile``, else the user cache directory."""
    root = os.environ.get("EDGEC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgec"
    return Path(root) / "tile"


def integer_network(network: Network, workload: Workload, seed: int = 0) -> ir.Model:
    """The network's integer graph (quantized on seeded random data when it is a float model)."""
    import edgec
    from edgec.frontend.torch_frontend import is_module_spec

    source = network.model
    if not is_module_spec(source):
        source = str((workload.directory / source).resolve())
    shapes = {"": list(network.input_shape)} if network.input_shape else None
    sys.path.insert(0, str(workload.directory))
    try:
        model = edgec.load(source, input_shapes=shapes)
    finally:
        sys.path.remove(str(workload.directory))
    if edgec.ops.is_integer_model(model):
        return model
    shape = [int(d) for d in model.graph.inputs[0].shape.numpy()]
    calibration = np.random.default_rng(seed).random((4, *shape[1:]), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)
        return edgec.quantize(model, calibration)


def _feature_move(target: TileTarget, feature_bytes: int, tiles: int) -> int:
    diameter = target.grid.rows + target.grid.cols - 2
    if target.noc.topology == "torus":
        diameter = target.grid.rows // 2 + target.grid.cols // 2
    return math.ceil(feature_bytes / (tiles * target.noc.link_bytes_per_cycle)) + diameter * target.noc.hop_cycles


def build_profile(name: str, model: ir.Model, target: TileTarget) -> NetworkProfile:
    """Map and simulate ``model`` on every number of tiles of ``target``."""
    layers = plan_layers(model)
    runs = sweep(layers, target)
    feature = max((layer.output_bytes for layer in layers), default=0)
    return NetworkProfile(name, sum(layer.macs for layer in layers), sum(layer.parameter_bytes for layer in layers),
                          tuple(s.cycles for _, s in runs), tuple(m.resident_bytes for m, _ in runs),
                          tuple(weight_load_cycles(m, target) for m, _ in runs),
                          tuple(_feature_move(target, feature, m.tiles) for m, _ in runs),
                          tuple(m.tiles for m, _ in runs), tuple(_layer_ends(s) for _, s in runs))


def _layer_ends(simulation: Simulation) -> tuple[int, ...]:
    ends, latest = [], 0
    for _, end in simulation.layer_spans:
        latest = max(latest, end)
        ends.append(latest)
    return (*ends[:-1], simulation.cycles) if ends else (simulation.cycles,)


def network_profile(network: Network, workload: Workload, target: TileTarget, use_cache: bool = True) -> NetworkProfile:
    """The network's profile on ``target`` (cached, see the module docstring)."""
    progress.stage(f"importing and quantizing {network.name}")
    model = integer_network(network, workload)
    key = hashlib.sha256(ir.to_proto(model).SerializeToString() + target_toml(target).encode()
                         + str(PROFILE_VERSION).encode()).hexdigest()[:24]
    path = cache_directory() / f"{key}.json"  # networks of the same model share it
    if use_cache and path.is_file():
        data = json.loads(path.read_text())
        data["name"] = network.name
        data["layer_ends"] = [tuple(ends) for ends in data["layer_ends"]]
        return NetworkProfile(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    progress.stage(f"simulating {network.name} on 1 to {target.grid.tiles} tiles")
    profile = build_profile(network.name, model, target)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dataclasses.asdict(profile)))
    return profile
