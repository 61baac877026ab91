"""Speed and size of edgec's Cortex-M code on the emulated cores, against TFLM + CMSIS-NN.

For every model and core: compile with edgec, run on the core's QEMU board and print
instructions per inference (QEMU -icount + CMSDK timer: deterministic), instructions per MAC,
flash (library: code + weights and parameters), RAM (arena + stack bound), the arena's
live-range bound, and for the four MLPerf Tiny int8 TFLite models (the very models TFLM ran)
the ratio to TFLM + CMSIS-NN measured on the same boards (shared/benchmarks/peers.md).
The int8 models run on the TFLM golden input (and are checked against TFLM's output); the
float ONNX models are quantized with 20 uniform [0, 1] samples (AD: 20 real windows) and
run on one more.

Low-bit weights (``--weight-bits``, default 8,4,2): every model again with 4-bit and 2-bit
weights, packed two or four to a byte in flash, with a second table of flash (weights and
parameters) and instructions per inference against the model's int8 build. The float ONNX
models are quantized with ``weight_bits``; the int8 TFLite models, already quantized, have
their weights clipped to the narrow range and typed so ("clipped": accuracy is not the point,
speed and size are). Low-bit rows are checked against the integer reference.

16-bit activations (``--activation-bits``, default 16; ``none`` for none): every float ONNX
model again in TFLite's 16x8 scheme (int16 activations, int8 weights, int64 biases), in the
same second table against its int8 build, checked against its integer reference.

Delta-encoded weights (``--delta``, default ``4/closed-loop/channel``; ``none`` for none):
every model's int8 build again with its Conv/FC weights stored as references plus deltas
(docs/delta.md) and decoded in the MAC loops, in the same second table. These models were not
trained for the encoding, so it saturates them (the graph changes, the rows are still checked
against its integer reference): the kernels' speed and flash do not depend on the weights'
values, so these are the figures of a model trained for the scheme.

Estimated cycles (``--cycles``, the default; ``--no-cycles`` skips the traced runs): each
MLPerf Tiny int8 row's profile build runs once more under QEMU's block log and the core's cycle
model prices what ran (backends/cortex_m/cycle_model.py). The estimate, per MAC of the count
the published figures use, is printed beside X-CUBE-AI's and Plumerai's published cycles/MAC
on the same core (peer_figures.py). It is an estimate of cycles, not a measurement.

Usage: python benchmarks/cortex_m.py [--shared DIR] [--cores cortex-m3,...] [--models ...] [--weight-bits 8,4,2]
       [--activation-bits 16|none] [--delta 4/closed-loop/channel,...] [--no-cycles] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from peer_figures import published_cycles_per_mac, published_macs, tflm_figures
from rich.console import Console
from rich.table import Table

import edgec
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.backends.cortex_m.cycle_model import MODELS
from edgec.backends.cortex_m.packing import with_narrowed_weights
from edgec.backends.cortex_m.trace import traced_layer_cycles, traced_layer_traces
from edgec.delta import DeltaScheme
from edgec.errors import EdgecWarning
from edgec.target import get_target

TFLITE = {"kws": "kws_dscnn_int8", "vww": "vww_mobilenetv1_025_int8", "resnet8": "ic_resnet8_int8",
          "ad": "ad_autoencoder_int8"}
ONNX = {"vww (onnx)": "vww_mobilenetv1_025", "resnet8 (onnx)": "ic_resnet8", "ad (onnx)": "ad_autoencoder"}
def integer_model(name: str, file: str, shared: Path, weight_bits: int = 8, activation_bits: int = 8):
    """(integer model, one input row, expected output or None, how its weights were made).

    With ``weight_bits`` < 8 the TFLite models are clipped (no golden output then) and the ONNX
    models quantized to that width; ``activation_bits`` (ONNX models only) 16 makes the 16x8
    scheme."""
    if name in TFLITE:
        golden = np.load(shared / "benchmarks" / "tflm_golden" / f"{file}.npz")
        model = edgec.load(shared / "models" / "tflite" / f"{file}.tflite")
        if weight_bits == 8:
            return model, golden["input"].reshape(1, -1), golden["output"].ravel(), "int8"
        return with_narrowed_weights(model, weight_bits), golden["input"].reshape(1, -1), None, "clipped"
    float_model = edgec.load(shared / "models" / f"{file}.onnx")
    spec = input_specs(float_model)[0]
    rng = np.random.default_rng(0)
    if "ad" in name:
        windows = np.load(shared / "models" / "ad_autoencoder_samples.npy").astype(np.float32)
        calibration, sample = windows[:20], windows[20:21]
    else:
        calibration = rng.random((20, *spec.shape[1:]), dtype=np.float32)
        sample = rng.random((1, *spec.shape[1:]), dtype=np.float32)
    model = edgec.quantize(float_model, calibration, weight_bits=weight_bits, activation_bits=activation_bits)
    made_by = "int8" if weight_bits == activation_bits == 8 else "quantized"
    return model, cortex_m.int8_inputs(model, [{spec.name: sample}]), None, made_by


def delta_encoded(model, scheme: DeltaScheme):
    """The integer ``model`` with its weights delta-encoded by ``scheme`` (saturated: it was not
    trained for it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)  # the saturation warning: expected here
        return edgec.quantize(model, delta=scheme)


def low_bit_table(rows: list[dict]) -> Table:
    """Flash (weights and parameters), arena and instructions of each low-bit, delta-encoded or
    16-bit-activation row against its int8 row."""
    table = Table(title="low-bit and delta-encoded weights, 16-bit activations (A16) vs int8, same model and core")
    for column in ("model", "core", "build", "made by", "weights+params B", "vs int8", "arena B", "vs int8",
                   "instructions", "vs int8", "exact"):
        table.add_column(column, justify="right")
    int8 = {(row["model"], row["core"]): row for row in rows if row["weights"] == "W8"}
    for row in rows:
        base = int8.get((row["model"], row["core"]))
        if row["weights"] == "W8" or base is None:
            continue
        table.add_row(row["model"], row["core"], row["weights"], row["weights_from"],
                      f"{row['weights_and_parameters']:,}",
                      f"{row['weights_and_parameters'] / base['weights_and_parameters']:.3f}",
                      f"{row['arena']:,}", f"{row['arena'] / base['arena']:.3f}",
                      f"{row['instructions']:,}", f"{row['instructions'] / base['instructions']:.3f}",
                      "yes" if row["exact"] else "NO")
    return table


def estimated_cycles(out: Path, manifest: dict, row: np.ndarray, core: str) -> float:
    """The core's cycle-model estimate of one inference of the built project at ``out`` (the
    profile build run under QEMU's block log: see backends/cortex_m/trace.py). An estimate."""
    cortex_m.run_project(out, row, variant="profile")
    called = sum(1 for layer in manifest["layers"] if layer["kernel"] != "alias")
    target = get_target(core)
    return sum(traced_layer_cycles(cortex_m.executable_path(out, variant="profile"), target, row.tobytes(), called,
                                   MODELS[target.core.cpu]))


#: The cost classes of the instruction-mix table, in its column order (cycle_model.classify).
MIX_CLASSES = ("alu", "mul", "mul_acc", "mul_long", "load", "store", "load_double", "multiple", "branch", "it",
               "other")


def instruction_mix_table(model, inputs, out: Path, file: str, core: str) -> Table:
    """For the first layer of each operator of ``model`` on ``core``: its executed instructions
    by cost class and the cycle model's estimate from them (why the estimate is what it is)."""
    manifest = cortex_m.compile_project(model, get_target(core), out, file, ignore_size_limits=True)
    cortex_m.run_project(out, inputs[:1], variant="profile")
    called = [layer for layer in manifest["layers"] if layer["kernel"] != "alias"]
    target = get_target(core)
    traces = traced_layer_traces(cortex_m.executable_path(out, variant="profile"), target, inputs[:1].tobytes(),
                                 len(called), MODELS[target.core.cpu], manifest["api"]["invoke"])
    table = Table(title=f"instruction mix of one layer of each kind, {file} on {core}: what the cycle model prices "
                        f"({MODELS[target.core.cpu].sources}; an ESTIMATE)")
    for column in ("layer", "op", "MACs", "instructions", *MIX_CLASSES, "est. cycles", "cycles/instr", "cycles/MAC"):
        table.add_column(column, justify="right")
    seen = set()
    for layer, trace in zip(called, traces, strict=True):
        if layer["op"] in seen:
            continue
        seen.add(layer["op"])
        count = sum(trace.mix.values())
        table.add_row(str(layer["index"]), layer["op"], f"{layer['macs']:,}", f"{count:,}",
                      *(f"{trace.mix.get(kind, 0):,}" for kind in MIX_CLASSES), f"{trace.cycles:,.0f}",
                      f"{trace.cycles / max(count, 1):.2f}",
                      f"{trace.cycles / layer['macs']:.2f}" if layer["macs"] else "")
    return table


def measure(model, inputs, expected, out: Path, name: str, file: str, core: str, peer: dict,
            cycles: bool = False) -> dict:
    """Compile ``model`` (named ``file``) for ``core`` under ``out``, run ``inputs`` on QEMU: the
    benchmark row; with ``cycles``, also the cycle model's estimate of one inference."""
    manifest = cortex_m.compile_project(model, get_target(core), out, file, ignore_size_limits=True)
    result = cortex_m.run_project(out, inputs)
    reference = cortex_m.reference_outputs(model, inputs)[0] if expected is None else expected
    return {"estimated_cycles": estimated_cycles(out, manifest, inputs[:1], core) if cycles else None, "model": name, "core": core, "instructions": result.instructions[0],
            "instructions_per_mac": result.instructions[0] / manifest["macs"],
            "tflm_instructions": peer.get("instructions"),
            "ratio": result.instructions[0] / peer["instructions"] if peer else None,
            "flash": manifest["flash"]["total"], "weights_and_parameters": manifest["flash"]["weights_and_parameters"],
            "ram": manifest["ram"]["total"], "arena": manifest["ram"]["arena"],
            "live_bound": manifest["ram"]["arena_live_bound"], "tflm_arena": peer.get("arena"),
            "exact": bool(np.array_equal(result.outputs[0], reference))}


def core_ratio_lines(rows: list[dict], core: str, others: tuple[str, ...]) -> list[str]:
    """Per int8 model, ``core``'s instructions per inference over each of ``others``' (the
    Cortex-M55 has no TFLM figure here: this places it next to the M4 and M7)."""
    by_key = {(row["model"], row["core"]): row["instructions"] for row in rows if row["weights"] == "W8"}
    lines = []
    for other in others:
        ratios = [f"{model} {count / by_key[(model, other)]:.3f}" for (model, name), count in by_key.items()
                  if name == core and (model, other) in by_key]
        if ratios:
            lines.append(f"{core} instructions / {other}'s: " + ", ".join(ratios))
    return lines


def cycles_table(rows: list[dict], peers: Path) -> Table:
    """edgec's estimated cycles/MAC beside the engines' published ones on the same core."""
    published, macs = published_cycles_per_mac(peers), published_macs(peers)
    table = Table(title="estimated cycles/MAC (edgec: the cycle model on the QEMU trace, an ESTIMATE) vs published "
                        "(MLPerf Tiny latency x clock / MACs, real boards)")
    for column in ("model", "core", "edgec est. cycles", "edgec est. cyc/MAC", "published cyc/MAC, same core"):
        table.add_column(column, justify="right")
    for row in rows:
        if row["weights"] != "W8" or row["estimated_cycles"] is None or row["model"] not in macs:
            continue
        figures = published.get((row["model"], row["core"]), {})
        table.add_row(row["model"], row["core"], f"{row['estimated_cycles']:,.0f}",
                      f"{row['estimated_cycles'] / macs[row['model']]:.2f}",
                      " · ".join(f"{engine} {value:.2f}" for engine, value in figures.items()) or "none")
    return table


def add_row(table: Table, row: dict) -> None:
    peer = row["tflm_instructions"] is not None
    table.add_row(row["model"], row["core"], f"{row['instructions']:,}", f"{row['instructions_per_mac']:.2f}",
                  f"{row['tflm_instructions']:,}" if peer else "n/a", f"{row['ratio']:.3f}" if peer else "n/a",
                  f"{row['flash']:,}", f"{row['ram']:,}", f"{row['arena']:,}", f"{row['live_bound']:,}",
                  f"{row['tflm_arena']:,}" if row["tflm_arena"] is not None else "n/a",
                  "yes" if row["exact"] else "NO")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_shared = Path(os.environ.get("EDGEC_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--cores", default="cortex-m3,cortex-m4,cortex-m7,cortex-m33,cortex-m55")
    parser.add_argument("--models", default=",".join([*TFLITE, *ONNX]))
    parser.add_argument("--weight-bits", default="8,4,2", help="weight widths to build each model with")
    parser.add_argument("--activation-bits", default="16",
                        help="activation widths besides 8 to build each ONNX model with (16: the 16x8 scheme; 'none')")
    parser.add_argument("--delta", default="4/closed-loop/channel",
                        help="delta encodings (bits/scheme/scope, comma-separated, or 'none') of each int8 model")
    parser.add_argument("--cycles", action=argparse.BooleanOptionalAction, default=True,
                        help="estimate cycles/MAC with the cycle model for the MLPerf Tiny int8 rows (a traced run each)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--mix", default="kws:cortex-m4",
                        help="MODEL:CORE whose instruction mix per layer kind is printed ('none': none)")
    args = parser.parse_args()
    peers = tflm_figures(args.shared / "benchmarks" / "peers.md")
    wanted = args.models.split(",")
    schemes = [] if args.delta == "none" else [DeltaScheme.parse(int(spec.split("/", 2)[0]), *spec.split("/", 2)[1:])
                                                for spec in args.delta.split(",")]
    table = Table(title="edgec on QEMU (instructions, not cycles) vs TFLM + CMSIS-NN on the same boards")
    for column in ("model", "core", "instructions", "instr/MAC", "TFLM instr", "ratio", "flash B", "RAM B",
                   "arena B", "live bound B", "TFLM arena B", "exact"):
        table.add_column(column, justify="right")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        for name, file in [*TFLITE.items(), *ONNX.items()]:
            if name not in wanted:
                continue
            builds = []
            for bits in [int(b) for b in args.weight_bits.split(",")]:
                model, inputs, expected, made_by = integer_model(name, file, args.shared, bits)
                builds.append((f"W{bits}", model, inputs, expected, made_by))
                if bits == 8 and name in ONNX and args.activation_bits != "none":
                    for activation_bits in (int(b) for b in args.activation_bits.split(",")):
                        wide, wide_inputs, _, _ = integer_model(name, file, args.shared, 8, activation_bits)
                        builds.append((f"A{activation_bits}", wide, wide_inputs, None, "quantized"))
                if bits == 8:
                    builds += [(f"\N{GREEK CAPITAL LETTER DELTA}{scheme.bits} {scheme.scheme}/{scheme.scope_name}",
                                delta_encoded(model, scheme), inputs, None, "saturated") for scheme in schemes]
            for label, model, inputs, expected, made_by in builds:
                for core in args.cores.split(","):
                    row = measure(model, inputs, expected, Path(tmp) / f"{file}-{len(rows)}-{core}", name, file, core,
                                  peers.get((name, core), {}) if label == "W8" else {},
                                  cycles=args.cycles and label == "W8" and name in TFLITE)
                    rows.append({**row, "weights": label, "weights_from": made_by})
                    if label == "W8":
                        add_row(table, row)
    console = Console(width=220)
    console.print(table)
    if args.cycles:
        console.print(cycles_table(rows, args.shared / "benchmarks" / "peers.md"))
    if any(row["weights"] != "W8" for row in rows):
        console.print(low_bit_table(rows))
    for line in core_ratio_lines(rows, "cortex-m55", ("cortex-m4", "cortex-m7")):
        console.print(line)
    if args.mix != "none":
        name, core = args.mix.split(":")
        model, inputs, _, _ = integer_model(name, {**TFLITE, **ONNX}[name], args.shared, 8)
        with tempfile.TemporaryDirectory(prefix="edgec-mix-") as tmp:
            console.print(instruction_mix_table(model, inputs, Path(tmp) / "mix", {**TFLITE, **ONNX}[name], core))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
