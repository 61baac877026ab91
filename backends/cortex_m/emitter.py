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
import re
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
from edgec.errors import EdgecError
from edgec.fixedpoint import operator_rounding
from edgec.passes.input_layout import input_layout, layout_name
from edgec.target import PROJECT_FILE, Target, target_toml

PACKAGE = Path(__file__).resolve().parent
KERNEL_HEADERS = ("edgec_kernels.h", "edgec_arith.h", "edgec_dot.h", "edgec_im2col.h",
                  "edgec_dot_lanes.h", "edgec_depthwise_walk.h", "edgec_depthwise_block.h", "edgec_conv_sums.h",
                  "edgec_pair_channels.h", "edgec_block_channels.h", "edgec_depthwise_pairs.h",
                  "edgec_mve.h")
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


#: The default prefix of the generated C interface (``edgec_invoke``, ``edgec_model.h``).
DEFAULT_PREFIX = "edgec"
_C_KEYWORDS = frozenset("auto break case char const continue default do double else enum extern float for goto if "
                        "inline int long register restrict return short signed sizeof static struct switch typedef "
                        "union unsigned void volatile while".split())


def api_names(prefix: str) -> dict[str, str]:
    """The names of the C interface generated with ``prefix``: its functions (``<prefix>_invoke``,
    ...), the header and model source, and the library. An error unless ``prefix`` is a
    lower-case C identifier that is no keyword and leaves the kernels' ``edgec_`` names alone."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", prefix or "") or prefix in _C_KEYWORDS or \
            (prefix != DEFAULT_PREFIX and prefix.startswith("edgec_")):
        raise EdgecError(f"'{prefix}' cannot prefix the generated C interface",
                         "use a lower-case C identifier (letters, digits, _) not starting with edgec_, e.g. kws")
    return {"prefix": prefix, "header": f"include/{prefix}_model.h", "source": f"src/{prefix}_model.c",
            "library": f"build/lib{prefix}_model.a", "invoke": f"{prefix}_invoke", "run": f"{prefix}_run"}


def _boundary_views(boundaries, pointer, role: str) -> list[dict]:
    """What the templates need of each input or output (``role``): size (elements), bytes, C
    element type and the suffix of its kernels (``_s16`` for int16), shape, quantization,
    where it lies, its tensor's name, element order (row-major unless the graph records a
    layout) and its parameter's name in the copying functions (``input``, or ``input0``, ...)."""
    return [{"index": index, "size": b.size, "bytes": b.bytes, "ctype": b.ctype,
             "suffix": "_s16" if b.ctype == "int16_t" else "", "shape": b.shape, "zero_point": b.qparams.zero_point,
             "scale": c_value(float(b.qparams.scale)), "pointer": pointer(b.value), "name": comment_text(b.value.name),
             "layout": layout_name(input_layout(b.value), len(b.shape)) or "row-major",
             "argument": role if len(boundaries) == 1 else f"{role}{index}"}
            for index, b in enumerate(boundaries)]


def _parameters(inputs: list[dict], outputs: list[dict], element: str | None) -> str:
    """The copying function's parameter list: every input, then every output, of type
    ``element`` (or each of its own C type when ``None``)."""
    return ", ".join([f"const {element or b['ctype']} *{b['argument']}" for b in inputs] +
                     [f"{element or b['ctype']} *{b['argument']}" for b in outputs])


def render_sources(network: Network, target: Target, model_name: str, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Every generated text file of the project, by relative path; the C interface's names
    start with ``prefix`` (:func:`api_names`)."""
    api = api_names(prefix)
    env = template_environment()
    layers = [_layer_view(network, i, layer) for i, layer in enumerate(network.layers)]
    sources = sorted({layer.source for layer in network.layers if layer.source} | set(ALWAYS_NEEDED))
    macs = sum(layer_macs(layer) for layer in network.layers)
    header = Path(api["header"]).name
    inputs = _boundary_views(network.inputs, network.pointer, "input")
    outputs = _boundary_views(network.outputs, network.pointer, "output")
    common = {
        "version": __version__, "target": target, "model_name": model_name, "rounding": network.rounding,
        "prefix": prefix.upper(), "api": prefix, "function": api["run"], "header": header,
        "library": Path(api["library"]).name,
        "inputs": inputs, "outputs": outputs,
        "run_parameters": _parameters(inputs, outputs, None),
        "any_type": "int8_t" if all(b["ctype"] == "int8_t" for b in inputs + outputs) else "void", "float_parameters": _parameters(inputs, outputs, "float"),
        "arena_bytes": network.plan.size,
        "live_bound": network.live_bound, "macs": macs, "layers": layers,
        "invoke": invoke_lines(network.body, lambda index: _statements(layers[index]), comment_text),
        "sources": [api["source"], *(f"src/{s}" for s in sources)], "stack_bytes": STACK_RESERVE_BYTES,
        "separate_io": network.separate_io,
        "io_separation_bytes": network.io_separation_bytes, "build_dirs": BUILD_DIRS,
        "guard": f"{prefix.upper()}_MODEL_H",
        "single": int(operator_rounding(network.rounding, "Conv") == "single"),
        "fc_single": int(operator_rounding(network.rounding, "FullyConnected") == "single"),
    }
    files = {
        api["header"]: env.get_template("model.h.j2").render(common),
        api["source"]: env.get_template("model.c.j2").render(common),
        "src/edgec_config.h": env.get_template("config.h.j2").render(common),
        "Makefile": env.get_template("Makefile.j2").render(common),
        "CMakeLists.txt": env.get_template("CMakeLists.txt.j2").render(common),
        "harness/linker.ld": env.get_template("linker.ld.j2").render(common),
        "harness/edgec_harness.h": env.get_template("harness.h.j2").render(common),
        PROJECT_FILE: target_toml(target),
    }
    headers = sorted({header for source in sources for header in PACKED_HEADERS.get(source, ())})
    for name in (*KERNEL_HEADERS, *headers, *sources):
        files[f"src/{name}"] = (PACKAGE / "kernels" / name).read_text(encoding="utf-8")
    for name in ("main.c", "startup.c"):
        files[f"harness/{name}"] = (PACKAGE / "harness" / name).read_text(encoding="utf-8")
    return files


def _block_macs(params_type: str | None, p: dict) -> int:
    if params_type == "edgec_conv_params":
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"] * p["in_c"]
    if params_type == "edgec_s16_conv_params":  # depth 0: depthwise, one input channel per output
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"] * max(p["depth"], 1)
    if params_type == "edgec_depthwise_params":
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"]
    if params_type == "edgec_batch_matmul_params":
        return math.prod(p["batches"]) * p["rows"] * p["columns"] * p["depth"]
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


