"""Writing the C project: library sources, build files, the QEMU harness, the integer graph.

:func:`render_sources` renders the Jinja2 templates (``StrictUndefined``: a missing value
fails) and adds the kernel sources the network calls. Output is deterministic: the same
model and target give byte-identical files. :func:`staged_project` gives a fresh directory
next to the output that replaces it only when everything (rendering, building, size checks)
succeeded.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
from pathlib import Path

import jinja2
import onnx_ir as ir

from edgec import __version__
from edgec.backends.cortex_m.layers import CLayer, shape_of
from edgec.backends.cortex_m.network import Network
from edgec.backends.cortex_m.printers import c_array, c_struct, c_struct_array, c_value
from edgec.errors import EdgecError
from edgec.fixedpoint import operator_rounding
from edgec.target import Target

PACKAGE = Path(__file__).resolve().parent
KERNEL_HEADERS = ("edgec_kernels.h", "edgec_arith.h", "edgec_dot.h")
ALWAYS_NEEDED = ("edgec_layout.c",)  # Quantize/Dequantize of the float wrapper
MANIFEST = "report.json"
STACK_RESERVE_BYTES = 16384


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of the project templates (``templates/*.j2``)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False, lstrip_blocks=False)


def _layer_view(network: Network, index: int, layer: CLayer) -> dict:
    """What the model template needs of one layer: its constants and its filled-in call."""
    node = layer.node
    constants = [c_struct_array(a.ctype, a.name, a.values) if a.ctype.startswith("edgec_")
                 else c_array(a.ctype, a.name, a.values) for a in layer.arrays]
    if layer.params_type is not None:
        constants.append(c_struct(layer.params_type, f"layer{index}", layer.params))
    pointers = {f"in{i}": network.pointer(v) for i, v in enumerate(node.inputs) if v is not None and v.const_value is None}
    out = node.outputs[0]
    pointers["out"] = network.pointer(out)
    pointers["scratch"] = f"(edgec_arena + {network.scratch_offsets[index]})" if layer.scratch_bytes else "NULL"
    return {"index": index, "op": node.op_type, "name": node.name, "constants": constants,
            "call": layer.call.format(**pointers) if layer.call else None, "output": pointers["out"],
            "output_bytes": math.prod(shape_of(out))}


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
        "input_pointer": network.pointer(network.input.value), "output_pointer": network.pointer(network.output.value),
        "sources": ["src/edgec_model.c", *(f"src/{s}" for s in sources)], "stack_bytes": STACK_RESERVE_BYTES,
        "input_layout": "NCHW as the model's input" if len(network.input.shape) == 4 and
                        network.input.value.metadata_props.get("edgec.layout") != "nhwc" else "the model's layout",
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
    }
    for name in (*KERNEL_HEADERS, *sources):
        files[f"src/{name}"] = (PACKAGE / "kernels" / name).read_text(encoding="utf-8")
    for name in ("main.c", "startup.c"):
        files[f"harness/{name}"] = (PACKAGE / "harness" / name).read_text(encoding="utf-8")
    return files


def layer_macs(layer: CLayer) -> int:
    """Multiply-accumulates of one layer (convolutions and fully connected layers)."""
    p = layer.params
    if layer.params_type == "edgec_conv_params":
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"] * p["in_c"]
    if layer.params_type == "edgec_depthwise_params":
        return p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * p["k_h"] * p["k_w"]
    return 0


def _is_edgec_project(path: Path) -> bool:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("generator") == "edgec"
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def staged_project(out_dir: Path):
    """A fresh directory next to ``out_dir`` that replaces it when the block succeeds.

    Nothing is left behind if the block raises. An existing ``out_dir`` is replaced only if
    it is empty or an edgec project.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not _is_edgec_project(out_dir))):
        raise EdgecError(f"output '{out_dir}' exists and is not an edgec project",
                         "choose a new directory (edgec only replaces projects it generated)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield staging
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_files(directory: Path, files: dict[str, str], model: ir.Model) -> None:
    """Write the rendered ``files`` and the integer graph (``model.onnx``) under ``directory``."""
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    ir.save(model, directory / "model.onnx")


def write_manifest(directory: Path, manifest: dict) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> dict:
    """The manifest of a compiled project; an error if ``directory`` is not one."""
    if not _is_edgec_project(Path(directory)):
        raise EdgecError(f"'{directory}' is not a compiled edgec project (no {MANIFEST})",
                         "compile one with: edgec compile MODEL --target TARGET -o DIR")
    return json.loads((Path(directory) / MANIFEST).read_text())
