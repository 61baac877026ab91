"""The network as the C code will run it: boundary, layers in order, buffers and their places.

:func:`build_network` takes an integer graph and decides

* the C interface: ``inputs`` are the int8 (or int16) tensors the application fills (after each
  float ``Quantize``, if any), ``outputs`` the ones it reads (before ``Dequantize``), one
  per graph input and output, in graph order; all live in the arena, like every other
  tensor, each in its own buffer. With ``separate_io`` (the default) no input shares a byte
  with an output, so the next inputs can be written while the last outputs are read: the
  planner keeps them apart (:attr:`ArenaPlan.apart_cost` bytes), no layer writing an output
  writes over an input in place, and a Reshape from an input straight to an output becomes
  a copy;
* one :class:`~backends.cortex_m.layers.CLayer` per remaining node, in graph order (a
  delta-encoded layer's from :mod:`backends.cortex_m.delta_layers`), the layers of a graph
  that branches in the linear order of :mod:`backends.cortex_m.branching` (each ``If``'s
  outputs one buffer with its branches' outputs);
* which tensors share storage: a Reshape views its input; an elementwise operator whose
  input dies at it writes over that input (in place); tensors joined this way form one group;
* where each group lives: an offset in the arena planned by
  :mod:`backends.cortex_m.memory_plan` together with per-layer scratch. The inputs are live
  from before the first layer, the outputs until after the last.
"""

from __future__ import annotations

import dataclasses
import math

import onnx_ir as ir

from edgec import ops
from edgec.backends.cortex_m.branching import Branch, linearize, output_aliases
from edgec.backends.cortex_m.clayer import element_bytes
from edgec.backends.cortex_m.delta_layers import lower_layer
from edgec.backends.cortex_m.layers import CLayer, shape_of
from edgec.backends.cortex_m.memory_plan import ArenaPlan, Buffer, live_bytes_bound, plan_arena
from edgec.errors import UnsupportedModelError
from edgec.passes.qparams import QParams, get_qparams

ARENA_ALIGNMENT = 8


#: The activation storage of the C interface (and the arena), with the C element type.
ACTIVATION_CTYPES = {ir.DataType.INT8: "int8_t", ir.DataType.INT16: "int16_t"}


@dataclasses.dataclass(frozen=True)
class Boundary:
    """One side of the C interface: the int8 (or int16) tensor, its shape and quantization."""

    value: ir.Value
    shape: list[int]
    qparams: QParams

    @property
    def size(self) -> int:
        """Elements."""
        return math.prod(self.shape)

    @property
    def ctype(self) -> str:
        return ACTIVATION_CTYPES[self.value.dtype]

    @property
    def bytes(self) -> int:
        return self.size * element_bytes(self.value)


@dataclasses.dataclass
class Network:
    layers: list[CLayer]
    inputs: list[Boundary]           # the C inputs, in graph input order
    outputs: list[Boundary]          # the C outputs, in graph output order
    offsets: dict[str, int]          # value name -> arena offset
    scratch_offsets: dict[int, int]  # layer index -> arena offset of its scratch
    plan: ArenaPlan
    live_bound: int                  # largest sum of tensor bytes live at one step (no scratch)
    rounding: str
    live_bytes: list[int]            # per layer: arena bytes its live tensors and scratch cover
    separate_io: bool                # input and output never share arena bytes
    body: list                       # edgec_invoke's steps: layer indices and Branch blocks
    buffers: list[Buffer] = dataclasses.field(default_factory=list)  # what the plan placed
    chains: list[list[tuple[str, int]]] = dataclasses.field(default_factory=list)  # overlapping ones

    @property
    def input(self) -> Boundary:
        """The first input (the only one of most models)."""
        return self.inputs[0]

    @property
    def output(self) -> Boundary:
        """The first output (the only one of most models)."""
        return self.outputs[0]

    @property
    def io_separation_bytes(self) -> int:
        """Arena bytes spent keeping the input and output apart (0 when they may share)."""
        return self.plan.apart_cost

    def pointer(self, value: ir.Value) -> str:
        """The C expression addressing ``value``'s data."""
        return f"(edgec_arena + {self.offsets[value.name]})"


def _boundaries(model: ir.Model) -> tuple[list[ir.Value], list[ir.Value], set[ir.Node]]:
    """(the C inputs, the C outputs, the float edge nodes that are no layers), in graph order."""
    graph = model.graph
    edges: set[ir.Node] = set()
    firsts, lasts = [], []
    for value in graph.inputs:
        if value.dtype not in ACTIVATION_CTYPES:
            consumers = value.consumers()
            if len(consumers) != 1 or consumers[0].op_type != "Quantize":
                raise UnsupportedModelError(f"the model's float input '{value.name}' is not read by a single Quantize",
                                            "quantize the model with edgec quantize")
            edges.add(consumers[0])
            value = consumers[0].outputs[0]
        firsts.append(value)
    for value in graph.outputs:
        if value.dtype not in ACTIVATION_CTYPES:
            producer = value.producer()
            if producer is None or producer.op_type != "Dequantize":
                raise UnsupportedModelError(f"the model's float output '{value.name}' is not produced by Dequantize",
                                            "quantize the model with edgec quantize")
            edges.add(producer)
            value = producer.inputs[0]
        lasts.append(value)
    names = [value.name for value in lasts]
    if set(names) & {value.name for value in firsts}:
        raise UnsupportedModelError("a model output is a model input: it computes nothing",
                                    "compile a model with at least one operator between input and output")
    if len(set(names)) != len(names):
        raise UnsupportedModelError("the model returns one tensor as two outputs",
                                    "give every model output its own computed tensor")
    return firsts, lasts, edges


def _bytes(value: ir.Value) -> int:
    return math.prod(shape_of(value)) * element_bytes(value)


class _Groups:
    """Union-find over value names (tensors sharing storage)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(b)] = self.find(a)


def _copy_layer(layer: CLayer) -> CLayer:
    """A zero-copy Reshape made a copy (its input and output then have buffers of their own)."""
    size = _bytes(layer.node.outputs[0])
    return dataclasses.replace(layer, call=f"memcpy({{out}}, {{in0}}, {size}u)")


def build_network(model: ir.Model, dsp: bool, separate_io: bool = True, mve: bool = False) -> Network:
    """Analyse ``model`` (an edgec integer graph) for a core with (``dsp``) or without the DSP
    extension, and with or without Helium (``mve``), as described in the module docstring.

    DepthwiseConv layers that can take the rows walk (DSP cores, :func:`overlap.rows_walk`)
    take it where the arena comes out no larger than with the raster walk everywhere: it is
    faster and may run in place, but its overlaps chain differently, and first-fit planning can
    end larger. Every such layer takes it when that plan is no larger; otherwise each in turn
    does when it keeps the arena within the smallest found so far."""
    every = _network(model, dsp, separate_io, mve, rows=None)
    walkers = [index for index, layer in enumerate(every.layers) if _walks_rows(layer)]
    if not walkers:
        return every
    best, chosen = _network(model, dsp, separate_io, mve, rows=frozenset()), frozenset()
    if every.plan.size <= best.plan.size:
        return every
    for index in walkers:
        trial = _network(model, dsp, separate_io, mve, rows=chosen | {index})
        if trial.plan.size <= best.plan.size:
            best, chosen = trial, chosen | {index}
    return best


def _walks_rows(layer: CLayer) -> bool:
    return layer.params_type == "edgec_depthwise_params" and bool(layer.params.get("rows"))


def _network(model: ir.Model, dsp: bool, separate_io: bool, mve: bool, rows: frozenset[int] | None) -> Network:
    """The network with the rows walk allowed for the layers of index in ``rows`` (all: ``None``)."""
    rounding = model.metadata_props.get(ops.ROUNDING_KEY, "double")
    firsts, lasts, edges = _boundaries(model)
    nodes, body = linearize(model.graph, edges)
    layers = [lower_layer(node, index, rounding, dsp, mve, rows is None or index in rows)
              for index, node in enumerate(nodes)]
    end = len(layers)
    defined = {first.name: -1 for first in firsts}
    used = {**{first.name: -1 for first in firsts}, **{last.name: end for last in lasts}}
    for index, node in enumerate(nodes):
        for value in node.inputs:
            if value is not None and value.const_value is None:
                used[value.name] = max(used.get(value.name, -1), index)
        if node.outputs[0].dtype != ir.DataType.BOOL:  # a Router's condition lives in a register
            defined[node.outputs[0].name] = index
    aliases = output_aliases(body)
    for out, result in reversed(aliases):  # an If output: written by its branches' last layers (inner Ifs first)
        defined[out.name] = min(defined.get(out.name, end), defined[result.name])
    last_use = {name: used.get(name, index) for name, index in defined.items()}
    groups = _Groups()
    for out, result in aliases:
        groups.join(out.name, result.name)
    input_roots = {groups.find(first.name) for first in firsts}
    for index, layer in enumerate(layers):
        source, result = layer.node.inputs[0], layer.node.outputs[0]
        if result.name not in defined:
            continue
        if separate_io and _is_output(groups, result.name, lasts) and groups.find(source.name) in input_roots:
            if layer.call is None:
                layers[index] = _copy_layer(layer)
        elif layer.call is None:
            groups.join(source.name, result.name)
        elif layer.in_place:
            root = groups.find(source.name)
            if max(last_use[name] for name in defined if groups.find(name) == root) == index:
                groups.join(source.name, result.name)
    members: dict[str, list[str]] = {}
    for value_name in defined:
        members.setdefault(groups.find(value_name), []).append(value_name)
    sizes = {v.name: _bytes(v) for node in nodes for v in node.outputs if v.name in defined}
    sizes.update({out.name: _bytes(out) for out, _ in aliases})
    sizes.update({first.name: _bytes(first) for first in firsts})
    tensors = [Buffer(f"tensor:{root}", max(sizes[n] for n in names), min(defined[n] for n in names),
                      max(last_use[n] for n in names)) for root, names in members.items()]
    scratch = [Buffer(f"scratch:{index}", layer.scratch_bytes, index, index)
               for index, layer in enumerate(layers) if layer.scratch_bytes]
    input_groups = {f"tensor:{groups.find(first.name)}" for first in firsts}
    output_groups = {f"tensor:{groups.find(last.name)}" for last in lasts}
    if input_groups & output_groups or len(output_groups) < len(lasts):
        raise UnsupportedModelError("a model output shares its storage with an input or another output",
                                    "give every model output its own computed tensor")
    apart = sorted((a, b) for a in input_groups for b in output_groups) if separate_io else []
    plan, chains = plan_arena(tensors + scratch, ARENA_ALIGNMENT, apart), []
    if not any(isinstance(step, Branch) for step in body):
        plan, chains = _overlapped_plan(layers, groups, tensors, scratch, apart, plan)
    offsets = {name: plan.offsets[f"tensor:{groups.find(name)}"] for name in defined}
    scratch_offsets = {buffer.first: plan.offsets[buffer.name] for buffer in scratch}
    inputs, outputs = ([Boundary(v, shape_of(v), get_qparams(v) or QParams(1.0, 0)) for v in side]
                       for side in (firsts, lasts))
    live = [_occupied([(plan.offsets[b.name], b.size) for b in tensors + scratch if b.first <= index <= b.last])
            for index in range(len(layers))]
    return Network(layers, inputs, outputs, offsets, scratch_offsets, plan,
                   live_bytes_bound(tensors, 1), rounding, live, separate_io, body, tensors + scratch, chains)


def _overlap_chains(layers: list[CLayer], groups: _Groups, buffers: dict[str, Buffer],
                    apart: set[tuple[str, str]], span_limit: int | None) -> list[list[tuple[str, int]]]:
    """The tensor buffers placed at fixed offsets from one another: a layer with a ``lag``
    whose input buffer dies at it puts its output buffer ``lag`` bytes before the input's
    (:mod:`backends.cortex_m.overlap`), when that saves bytes (the lag is below the output's
    size) and the two need not be kept apart. Linked buffers form chains (a buffer dies at one
    layer and is written by one), each as ``(buffer name, offset from the chain's base)``.

    Each lag moves a chain's end down, and a rigid chain spanning more than the arena needs
    only grows it: with ``span_limit``, a chain that would outgrow it is cut at the link whose
    two buffers, kept apart, cost least, among the cuts that bring it back within the limit."""
    offset_of: dict[str, int] = {}
    chains: list[list[str]] = []
    chain_of: dict[str, list[str]] = {}

    def span(names: list[str]) -> int:
        return max(offset_of[n] + buffers[n].size for n in names) - min(offset_of[n] for n in names)

    for index, layer in enumerate(layers):
        source, result = layer.node.inputs[0], layer.node.outputs[0]
        if layer.lag is None or source is None or result.name not in groups.parent:
            continue
        src, dst = (buffers.get(f"tensor:{groups.find(v.name)}") for v in (source, result))
        if src is None or dst is None or src is dst or src.last != index or layer.lag >= dst.size or \
                dst.name in chain_of:
            continue
        chain = chain_of.get(src.name) or [src.name]
        offset_of.setdefault(src.name, 0)
        offset_of[dst.name] = offset_of[src.name] - layer.lag
        if any(_clash(buffers[name], offset_of[name], dst, offset_of[dst.name], apart) for name in chain):
            continue
        grown = [*chain, dst.name]
        if span_limit is not None and span(grown) > span_limit:
            cuts = [i for i in range(1, len(grown) - 1) if span(grown[i:]) <= span_limit]
            if not cuts:
                continue
            cut = min(cuts, key=lambda i: buffers[grown[i - 1]].size + buffers[grown[i]].size)
            head, grown = grown[:cut], grown[cut:]
            if chain in chains:
                chains.remove(chain)
            if len(head) > 1:
                chains.append(head)
            chain_of.update({name: head for name in head})
        elif chain in chains:
            chains.remove(chain)
        chains.append(grown)
        chain_of.update({name: grown for name in grown})
    return [[(name, offset_of[name] - min(offset_of[n] for n in chain)) for name in chain] for chain in chains]


#: Chain span limits tried, as fractions of the live-range bound (None: no limit).
_SPAN_LIMITS = (None, 1.0, 0.85, 0.75)


def _overlapped_plan(layers: list[CLayer], groups: _Groups, tensors: list[Buffer], scratch: list[Buffer],
                     apart: list[tuple[str, str]], plan: ArenaPlan) -> tuple[ArenaPlan, list]:
    """The smallest of ``plan`` and the plans with overlapping outputs under each chain span
    limit of :data:`_SPAN_LIMITS` (first fit is greedy: overlapping can plan larger), with
    the chains it uses."""
    bound, by_name = live_bytes_bound(tensors, 1), {buffer.name: buffer for buffer in tensors}
    best = (plan, [])
    for fraction in _SPAN_LIMITS:
        limit = None if fraction is None else int(bound * fraction)
        chains = _overlap_chains(layers, groups, by_name, set(apart), limit)
        if chains:
            overlapped = plan_arena(tensors + scratch, ARENA_ALIGNMENT, apart, chains)
            best = (overlapped, chains) if overlapped.size < best[0].size else best
    return best


def _clash(a: Buffer, a_at: int, b: Buffer, b_at: int, apart: set[tuple[str, str]]) -> bool:
    """Whether buffers that must stay apart would share bytes at these fixed offsets."""
    kept_apart = (a.name, b.name) in apart or (b.name, a.name) in apart
    return kept_apart and a_at < b_at + b.size and b_at < a_at + a.size


def _occupied(ranges: list[tuple[int, int]]) -> int:
    """Bytes covered by ``(offset, size)`` ranges (overlapping ones counted once)."""
    covered, end = 0, 0
    for start, size in sorted(ranges):
        covered += max(0, start + size - max(start, end))
        end = max(end, start + size)
    return covered


def _is_output(groups: _Groups, name: str, lasts: list[ir.Value]) -> bool:
    return any(groups.find(name) == groups.find(last.name) for last in lasts)
