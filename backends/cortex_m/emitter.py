"""Writing the C project: library sources, build files, the QEMU harness, the integer graph.

:func:`render_sources` renders the Jinja2 templates (``StrictUndefined``: a missing value
fails) and adds the kernel sources the network calls. Output is deterministic: the same
model and target give byte-identical files. The project directory itself is replaced by
:mod:`edgec.project_dir`; the manifest (``report.json``) is read and written here.

Contracts the templates state in ``edgec_model.h``: the input layout (from the integer
graph, :func:`edgec.passes.input_layout.input_layout`), what inference overwrites (the
input; the output never shares bytes with it unless compiled with ``separate_io=False``),
``edgec_invoke()``'s return value (always 0), and the placement macros
``EDGEC_ARENA_SECTION`` (on the arena) and ``EDGEC_WEIGHTS_SECTION`` (on every constant in
``edgec_model.c``), empty unless defined on the compiler's command line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jinja2
import onnx_ir as ir

from edgec import __version__
from edgec.api import PROJECT_MODEL
from edgec.backend import MANIFEST, read_manifest  # noqa: F401 (read_manifest: part of this module's API)
from edgec.backends.cortex_m.branching import invoke_lines
from edgec.backends.cortex_m.layers import CLayer, shape_of
from edgec.backends.cortex_m.network import Network
from edgec.backends.cortex_m.printers import c_array, c_struct, c_struct_array, c_value
from edgec.fixedpoint import operator_rounding
from edgec.passes.input_layout import input_layout, layout_name
from edgec.target import PROJECT_FILE, Target, target_toml

PACKAGE = Path(__file__).resolve().parent
KERNEL_HEADERS = ("edgec_kernels.h", "edgec_arith.h", "edgec_dot.h", "edgec_im2col.h",
                  "edgec_depthwise_walk.h", "edgec_depthwise_block.h", "edgec_conv_sums.h", "edgec_pair_channels.h")
#: Headers only the packed-weight and delta-weight kernels include (copied with them).
PACKED_HEADERS = {"edgec_conv_w4.c": ("edgec_conv_packed.h", "edgec_dot_packed.h"),
                  "edgec_conv_w2.c": ("edgec_conv_packed.h", "edgec_dot_packed.h"),
                  "edgec_depthwise_w4.c": ("edgec_depthwise_packed.h",),
                  "edgec_depthwise_w2.c": ("edgec_depthwise_packed.h",),
                  "edgec_conv_delta.c": ("edgec_delta.h",),
                  "edgec_depthwise_delta.c": ("edgec_delta.h",)}
ALWAYS_NEEDED = ("edgec_layout.c",)  # Quantize/Dequantize of the float wrapper
#: The Makefile's build directories (``make clean`` removes them).
BUILD_DIRS = ("build", "build-trace", "build-profile", "build-host", "build-host-trace", "build-host-profile")
WEIGHTS_SECTION = "EDGEC_WEIGHTS_SECTION"
STACK_RESERVE_BYTES = 16384


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of the project templates (``templates/*.j2``)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False, lstrip_blocks=False)


def comment_text(text: str) -> str:
    """``text`` made safe inside a C block comment: no ``/*`` or ``*/`` (an error under
    ``-Werror``, or the comment's end), no line breaks."""
    return " ".join(text.replace("*/", "* /").replace("/*", "/ *").split())


def _layer_view(network: Network, index: int, layer: CLayer) -> dict:
    """What the model template needs of one layer: its constants and its filled-in call."""
    node = layer.node
    constants = [c_struct_array(a.ctype, a.name, a.values, section=WEIGHTS_SECTION) if a.ctype.startswith("edgec_")
                 else c_array(a.ctype, a.name, a.values, section=WEIGHTS_SECTION) for a in layer.arrays]
    constants += [c_struct(ctype, name, fields, section=WEIGHTS_SECTION) for ctype, name, fields in layer.structs]
    if layer.params_type is not None:
        constants.append(c_struct(layer.params_type, f"layer{index}", layer.params, section=WEIGHTS_SECTION))
    pointers = {f"in{i}": network.pointer(v) for i, v in enumerate(node.inputs) if v is not None and v.const_value is None}
    out = node.outputs[0]
    condition = out.dtype == ir.DataType.BOOL  # a Router: its call is the branch condition
    pointers["out"] = "NULL" if condition else network.pointer(out)
    pointers["scratch"] = f"(edgec_arena + {network.scratch_offsets[index]})" if layer.scratch_bytes else "NULL"
    return {"index": index, "op": node.op_type, "name": comment_text(node.name), "constants": constants,
            "call": layer.call.format(**pointers) if layer.call else None, "output": pointers["out"],
            "output_bytes": 0 if condition else math.prod(shape_of(out)), "condition": condition}


def _statements(view: dict) -> list[str]:
    """The lines of one layer in ``edgec_invoke``: its call, trace and profile hooks (a
    Router's call sets its branch condition ``route<index>``)."""
    if view["call"] is None:
        return []
    index = view["index"]
    if view["condition"]:
        return [f"const int route{index} = {view['call']};", f"EDGEC_PROFILE_LAYER({index}u);"]
    return [f"{view['call']};", f"EDGEC_TRACE_LAYER({index}u, {view['output']}, {view['output_bytes']}u);",
            f"EDGEC_PROFILE_LAYER({index}u);"]


def render_sources(network: Network, target: Target, model_name: str) -> dict[str, str]:
    """Every generated text file of the project, by relative path."""
    env = template_environment()
    layers = [_layer_view(network, i, layer) for i, layer in enumerate(network.layers)]
    sources = sorted({layer.source for layer in network.layers if layer.source} | set(ALWAYS_NEEDED))
    macs = sum(layer_macs(layer) for layer in network.layers)
    common = {
        "version": __version__, "target": target, "model_name": model_name, "rounding": network.rounding,
        "prefix": "EDGEC", "function": "edgec_run", "header": "edgec_model.h", "input": network.input,
        "output": network.output, "input_scale": c_value(float(network.input.qparams.scale)),
        "output_scale": c_value(float(network.output.qparams.scale)), "arena_bytes": network.plan.size,
        "live_bound": network.live_bound, "macs": macs, "layers": layers,
        "invoke": invoke_lines(network.body, lambda index: _statements(layers[index]), comment_text),
        "input_pointer": network.pointer(network.input.value), "output_pointer": network.pointer(network.output.value),
        "sources": ["src/edgec_model.c", *(f"src/{s}" for s in sources)], "stack_bytes": STACK_RESERVE_BYTES,
        "input_layout": input_description(network), "separate_io": network.separate_io,
        "io_separation_bytes": network.io_separation_bytes, "build_dirs": BUILD_DIRS,
        "guard": "EDGEC_MODEL_H",
        "single": int(operator_rounding(network.rounding, "Conv") == "single"),
        "fc_single": int(operator_rounding(network.rounding, "FullyConnected") == "single"),
    }
    files = {
        "include/edgec_model.h": env.get_template("model.h.j2").render(common),
        "src/edgec_model.c": env.get_template("model.c.j2").render(common),
        "src/edgec_config.h": env.get_template("config.h.j2").render(common),
        "Makefile": env.get_template("Makefile.j2").render(common),
        "CMakeLists.txt": env.get_template("CMakeLists.txt.j2").render(common),
        "harness/linker.ld": env.get_template("linker.ld.j2").render(common),
        PROJECT_FILE: target_toml(target),
    }
    headers = sorted({header for source in sources for header in PACKED_HEADERS.get(source, ())})
    for name in (*KERNEL_HEADERS, *headers, *sources):
        files[f"src/{name}"] = (PACKAGE / "kernels" / name).read_text(encoding="utf-8")
    for name in ("main.c", "startup.c"):
        files[f"harness/{name}"] = (PACKAGE / "harness" / name).read_text(encoding="utf-8")
    return files


def input_description(network: Network) -> str:
    """The input's element order as the header states it, e.g. ``NHWC, as EDGEC_INPUT_SHAPE``."""
    name = layout_name(input_layout(network.input.value), len(network.input.shape))
    return f"{name}, as EDGEC_INPUT_SHAPE" if name else "row-major, as EDGEC_INPUT_SHAPE"


def _block_macs(params_type: str | None, p: dict) -> int:
    if params_type == "edgec_conv_params":
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"] * p["in_c"]
    if params_type == "edgec_depthwise_params":
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"]
    if params_type == "edgec_transpose_conv_params":  # every input pixel meets every tap (cropped ones too)
        return p["batches"] * p["in_h"] * p["in_w"] * p["in_c"] * p["k_h"] * p["k_w"] * p["out_c"]
    return 0


def layer_macs(layer: CLayer) -> int:
    """Multiply-accumulates of one layer (convolutions and fully connected layers; a grouped
    Conv's are its groups' parameter blocks)."""
    return _block_macs(layer.params_type, layer.params) + sum(
        _block_macs(ctype, fields) for ctype, _, fields in layer.structs)


def write_files(directory: Path, files: dict[str, str], model: ir.Model) -> None:
    """Write the rendered ``files`` and the integer graph (``model.onnx``) under ``directory``."""
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    ir.save(model, directory / PROJECT_MODEL)


def written_files(files: dict[str, str]) -> list[str]:
    """Relative paths of everything :func:`write_files` and :func:`write_manifest` write."""
    return sorted([*files, PROJECT_MODEL, MANIFEST])


def write_manifest(directory: Path, manifest: dict) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


