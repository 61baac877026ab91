"""The project's report (``report.json``): what the plan knows, and what the build measured.

:func:`planned_report` holds everything known without building: the interface (the C API's
names, ``api``; per input and output its shape, quantization and, for inputs, layout, in
``inputs``/``outputs``; ``input``/``output`` repeat the first of each), MACs, the arena (with the bytes that keep the input and output
apart), the weights, every layer, for a model that branches every path (the layers it runs,
their MACs and weight bytes), and the files edgec wrote. Its flash, static RAM and
stack figures are ``null`` and ``built`` is false (an ``--emit-only`` project).
:func:`measured_report` fills them in from a build of the library; :func:`check_limits`
compares what is known with the target's part.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgec import __version__
from edgec.backends.cortex_m import emitter, toolchain
from edgec.backends.cortex_m.branching import Branch, path_layers
from edgec.backends.cortex_m.clayer import element_bytes, shape_of
from edgec.backends.cortex_m.network import Network
from edgec.errors import SizeLimitError
from edgec.passes.input_layout import input_layout, layout_name
from edgec.target import Target

_ARENA_NOTE = ("arena: every tensor (input and output included) and kernel scratch; memory.buffers lists where each "
               "lies and when it is used, an output overlapping the input that dies at it below the live-range bound")
_IO_NOTES = {True: "io_separation_bytes: arena bytes that keep the input and output apart, so the next input "
                   "can be written while the last output is read",
             False: "input and output may share arena bytes (--overlap-io): read the output before writing "
                    "the next input"}
_WEIGHTS_NOTE = ("flash.weights: bytes of the model's constant arrays (weights, biases, tables), known without "
                 "building; a layer's weight_bytes count its weights as stored (weight_encoding: the delta "
                 "encoding of delta-encoded weights, null for plain values)")
_BUILT_NOTES = ["flash and static RAM: the library built with arm-none-eabi-gcc (harness excluded)",
                "stack_bound: deepest edgec_invoke call chain from -fcallgraph-info, C library calls excluded"]
_NOT_BUILT_NOTE = ("not built (--emit-only): flash, static RAM and stack are not measured (null); "
                   "'edgec run' or 'make' builds the project")


def _layers(network: Network) -> list[dict]:
    layers = []
    for index, layer in enumerate(network.layers):
        node = layer.node
        layers.append({
            "index": index, "name": node.name, "op": node.op_type, "output": node.outputs[0].name,
            "output_bytes": math.prod(shape_of(node.outputs[0])) * element_bytes(node.outputs[0]),
            "macs": emitter.layer_macs(layer), "weight_bytes": sum(a.values.nbytes for a in layer.arrays),
            "weight_encoding": layer.encoding,
            "scratch_bytes": layer.scratch_bytes, "kernel": layer.call.split("(")[0] if layer.call else "alias",
            "live_bytes": network.live_bytes[index],
        })
    return layers


def _boundary(boundary, with_layout: bool) -> dict:
    fields = {"shape": boundary.shape, "dtype": boundary.ctype.removesuffix("_t"), "scale": boundary.qparams.scale,
              "zero_point": boundary.qparams.zero_point, "name": boundary.value.name}
    if with_layout:
        fields["layout"] = layout_name(input_layout(boundary.value), len(boundary.shape))
    return fields


def planned_report(network: Network, target: Target, model_name: str, files: list[str], api: dict) -> dict:
    """The report of a project not built yet (see the module docstring). ``api``: the names of
    the generated C interface (:func:`backends.cortex_m.emitter.api_names`)."""
    layers = _layers(network)
    inputs = [_boundary(boundary, True) for boundary in network.inputs]
    outputs = [_boundary(boundary, False) for boundary in network.outputs]
    return {
        "generator": "edgec", "version": __version__, "model": model_name, "target": target.name,
        "part": target.part.name, "rounding": network.rounding, "built": False, "api": api,
        "input": inputs[0], "output": outputs[0], "inputs": inputs, "outputs": outputs,
        "macs": sum(layer["macs"] for layer in layers),
        "flash": {"weights": sum(layer["weight_bytes"] for layer in layers), "code": None,
                  "weights_and_parameters": None, "kernel_tables": None, "data": None, "total": None},
        "memory": _memory(network),
        "ram": {"arena": network.plan.size, "arena_live_bound": network.live_bound,
                "io_separation_bytes": network.io_separation_bytes, "static_total": None, "stack_bound": None,
                "total": None},
        "notes": [_ARENA_NOTE, _IO_NOTES[network.separate_io], _WEIGHTS_NOTE, _NOT_BUILT_NOTE],
        "layers": layers,
        "paths": _paths(network, layers),
        "files": files,
    }


def _memory(network: Network) -> dict:
    """The arena plan, buffer by buffer: ``tensor:NAME`` (a tensor and the views and in-place
    results sharing its bytes) or ``scratch:LAYER``, its offset and size, and the first and
    last layer using it (-1: the input, before the first layer); ``overlaps``: the buffer it
    starts ``lag`` bytes before, sharing bytes with it (its input, dying at the layer that
    writes it; :mod:`backends.cortex_m.overlap`)."""
    overlapping = {}
    for chain in network.chains:
        for (before, at_before), (after, at_after) in zip(chain, chain[1:]):
            overlapping[after] = {"buffer": before, "lag": at_before - at_after}
    buffers = [{"name": b.name, "offset": network.plan.offsets[b.name], "size": b.size, "first": b.first,
                "last": b.last, **({"overlaps": overlapping[b.name]} if b.name in overlapping else {})}
               for b in sorted(network.buffers, key=lambda b: (network.plan.offsets[b.name], b.first))]
    return {"buffers": buffers}


def _paths(network: Network, layers: list[dict]) -> list[dict]:
    """For a model that branches, each path's layers (indices), MACs and weight bytes: what one
    inference taking it runs and reads; empty otherwise."""
    if not any(isinstance(step, Branch) for step in network.body):
        return []
    return [{"path": list(path), "layers": indices, "macs": sum(layers[i]["macs"] for i in indices),
             "weight_bytes": sum(layers[i]["weight_bytes"] for i in indices)}
            for path, indices in path_layers(network.body)]


def measured_report(report: dict, project: Path) -> dict:
    """``report`` with flash, static RAM and stack from the library built in ``project``."""
    sizes = toolchain.library_sizes(project, Path(report["api"]["source"]).stem)
    stack = toolchain.stack_bound(project, report["api"]["invoke"])
    flash = {**report["flash"], "code": sizes.code, "weights_and_parameters": sizes.model_constants,
             "kernel_tables": sizes.kernel_constants, "data": sizes.data, "total": sizes.flash}
    ram = {**report["ram"], "static_total": sizes.static_ram, "stack_bound": stack, "total": sizes.static_ram + stack}
    notes = [note for note in report["notes"] if note != _NOT_BUILT_NOTE] + _BUILT_NOTES
    return {**report, "built": True, "flash": flash, "ram": ram, "notes": notes}


def check_limits(report: dict, target: Target) -> None:
    """A :class:`SizeLimitError` when what is known of flash or RAM exceeds the target's part
    (unbuilt: the weights and the arena)."""
    flash = report["flash"]["total"] if report["built"] else report["flash"]["weights"]
    ram = report["ram"]["total"] if report["built"] else report["ram"]["arena"]
    problems = []
    if flash > target.part.flash_bytes:
        problems.append(f"flash {flash:,} B > {target.part.flash_bytes:,} B")
    if ram > target.part.ram_bytes:
        problems.append(f"RAM {ram:,} B > {target.part.ram_bytes:,} B")
    if problems:
        raise SizeLimitError(f"the model does not fit {target.part.name} ({target.name}): {', '.join(problems)}",
                             "choose a larger target, shrink the model, or pass --ignore-size-limits")
