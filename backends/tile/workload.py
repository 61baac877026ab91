"""A multi-network workload: networks, and the pipelines (DAGs of them) that run them per frame
under end-to-end deadlines, read from a TOML file.

::

    name = "ads"
    variability = 3.3        # the slowest execution is this many times the simulated one
    frames = 300             # frames of the fastest pipeline to simulate (default 300)
    seed = 0                 # execution-time draws (default 0)
    isolation = "auto"       # ADS-Tile's isolation groups: auto | pipeline | network | none

    [networks.backbone]
    model = "ads_networks:camera_backbone"   # package.module:factory beside this file, or a model file
    input_shape = [1, 3, 192, 320]           # needed for a PyTorch factory

    [[pipelines]]
    name = "camera"
    rate_hz = 30
    deadline_ms = 100
    stages = { backbone = [], detection = ["backbone"] }   # network -> the networks it waits for

Each pipeline releases a frame every ``1 / rate_hz``; a frame's job of a stage is ready when
its predecessors' jobs of that frame are done, and the frame meets its deadline when its last
job ends at most ``deadline_ms`` after the release. Every network belongs to exactly one
pipeline. :func:`load_workload` checks all of this, each problem one error naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from edgec.errors import EdgecError

ISOLATIONS = ("auto", "pipeline", "network", "none")


@dataclasses.dataclass(frozen=True)
class Network:
    """One network: where its model comes from (a path relative to the workload file, or a
    ``package.module:factory`` importable from the workload's directory) and its input shape."""

    name: str
    model: str
    input_shape: tuple[int, ...] | None


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A DAG of networks run once per frame: ``stages`` maps each to the ones it waits for."""

    name: str
    rate_hz: float
    deadline_ms: float
    stages: dict[str, tuple[str, ...]]

    def order(self) -> list[str]:
        """The stages in a topological order (each after the ones it waits for)."""
        done: list[str] = []
        while len(done) < len(self.stages):
            done += [s for s, after in self.stages.items() if s not in done and all(a in done for a in after)]
        return done

    def sinks(self) -> list[str]:
        """The stages no other stage waits for: a frame is done when they are."""
        waited = {a for after in self.stages.values() for a in after}
        return [s for s in self.stages if s not in waited]


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    directory: Path
    variability: float
    frames: int
    seed: int
    isolation: str
    networks: dict[str, Network]
    pipelines: tuple[Pipeline, ...]

    def pipeline_of(self, network: str) -> Pipeline:
        return next(p for p in self.pipelines if network in p.stages)


def _fail(source: str, problem: str, fix: str) -> None:
    raise EdgecError(f"workload {source}: {problem}", fix)


def _number(source: str, table: dict, key: str, where: str, default=None, minimum: float = 0.0,
            integer: bool = False):
    value = table.get(key, default)
    if value is None:
        _fail(source, f"{where}{key} is missing", f"add {key} = ...")
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= minimum:
        _fail(source, f"{where}{key} must be {'an integer' if integer else 'a number'} above {minimum:g}, "
                      f"got {value!r}", f"fix {where}{key}")
    return value


def _acyclic(source: str, pipeline: Pipeline) -> None:
    placed: set[str] = set()
    while len(placed) < len(pipeline.stages):
        ready = {s for s, after in pipeline.stages.items() if s not in placed and set(after) <= placed}
        if not ready:
            cycle = sorted(set(pipeline.stages) - placed)
            _fail(source, f"pipeline '{pipeline.name}' has a cycle among {', '.join(cycle)}",
                  "make the stages a DAG: no stage may wait, directly or not, for itself")
        placed |= ready


def parse_workload(text: str, source: str, directory: Path) -> Workload:
    """The workload in TOML ``text`` (``source`` names it in errors; model paths and module
    specs are resolved from ``directory``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        _fail(source, f"is not valid TOML ({error})", "fix the syntax")
    known = {"name", "variability", "frames", "seed", "isolation", "networks", "pipelines"}
    for key in data:
        if key not in known:
            _fail(source, f"has an unknown key '{key}'", f"the keys are: {', '.join(sorted(known))}")
    networks = {}
    for name, table in (data.get("networks") or {}).items():
        if not isinstance(table, dict) or "model" not in table or set(table) - {"model", "input_shape"}:
            _fail(source, f"networks.{name} must have model (and optionally input_shape) only",
                  'write [networks.NAME] model = "file.onnx or package.module:factory"')
        shape = table.get("input_shape")
        if shape is not None and not (isinstance(shape, list) and shape and all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            _fail(source, f"networks.{name}.input_shape must be a list of positive integers, got {shape!r}",
                  "write input_shape = [1, 3, 224, 224]")
        networks[name] = Network(name, str(table["model"]), tuple(shape) if shape else None)
    if not networks:
        _fail(source, "has no [networks.NAME] table", "add the networks the pipelines run")
    pipelines, owner = [], {}
    for number, table in enumerate(data.get("pipelines") or []):
        where = f"pipelines[{number}]."
        name = table.get("name") or f"pipeline{number}"
        stages = table.get("stages")
        if not isinstance(stages, dict) or not stages:
            _fail(source, f"{where}stages must map each network to the networks it waits for",
                  'write stages = { backbone = [], detection = ["backbone"] }')
        for stage, after in stages.items():
            if stage not in networks:
                _fail(source, f"{where}stages names '{stage}', which is not a network",
                      f"define [networks.{stage}] or use one of {', '.join(networks)}")
            if stage in owner:
                _fail(source, f"network '{stage}' is in pipelines '{owner[stage]}' and '{name}'",
                      "give each pipeline its own networks (define a second network with the same model)")
            owner[stage] = name
            if not isinstance(after, list) or any(a not in stages for a in after):
                _fail(source, f"{where}stages.{stage} must list stages of the same pipeline, got {after!r}",
                      f"name stages of '{name}': {', '.join(stages)}")
        pipeline = Pipeline(str(name), float(_number(source, table, "rate_hz", where)),
                            float(_number(source, table, "deadline_ms", where)),
                            {s: tuple(a) for s, a in stages.items()})
        _acyclic(source, pipeline)
        pipelines.append(pipeline)
    if not pipelines:
        _fail(source, "has no [[pipelines]] table", "add at least one pipeline")
    unused = sorted(set(networks) - set(owner))
    if unused:
        _fail(source, f"network '{unused[0]}' is in no pipeline", "add it to a pipeline's stages or remove it")
    isolation = data.get("isolation", "auto")
    if isolation not in ISOLATIONS:
        _fail(source, f"isolation '{isolation}' is not one edgec knows", f"use one of {', '.join(ISOLATIONS)}")
    variability = float(_number(source, data, "variability", "", default=1.0, minimum=0.0))
    if variability < 1:
        _fail(source, f"variability must be at least 1 (the slowest over the simulated time), got {variability:g}",
              "write variability = 3.3 for executions up to 3.3 times the simulated time")
    return Workload(str(data.get("name") or Path(source).stem), directory, variability,
                    int(_number(source, data, "frames", "", default=300, integer=True)),
                    int(data.get("seed", 0)), isolation, networks, tuple(pipelines))


def load_workload(path: str | Path) -> Workload:
    """The workload file at ``path`` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise EdgecError(f"workload file '{path}' does not exist", "give the path of a workload .toml file")
    return parse_workload(path.read_text(encoding="utf-8"), str(path), path.resolve().parent)
