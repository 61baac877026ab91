"""Speed and size of edgec's Cortex-M code on the emulated cores, against TFLM + CMSIS-NN.

For every model and core: compile with edgec, run on the core's QEMU board and print
instructions per inference (QEMU -icount + CMSDK timer: deterministic), instructions per MAC,
flash (library: code + weights and parameters), RAM (arena + stack bound), the arena's
live-range bound, and for the four MLPerf Tiny int8 TFLite models (the very models TFLM ran)
the ratio to TFLM + CMSIS-NN measured on the same boards (shared/benchmarks/peers.md).
The int8 models run on the TFLM golden input (and are checked against TFLM's output); the
float ONNX models are quantized with 20 uniform [0, 1] samples (AD: 20 real windows) and
run on one more.

Usage: python benchmarks/cortex_m.py [--shared DIR] [--cores cortex-m3,...] [--models ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgec
from edgec.api import input_specs
from edgec.backends import cortex_m
from edgec.target import get_target

TFLITE = {"kws": "kws_dscnn_int8", "vww": "vww_mobilenetv1_025_int8", "resnet8": "ic_resnet8_int8",
          "ad": "ad_autoencoder_int8"}
ONNX = {"vww (onnx)": "vww_mobilenetv1_025", "resnet8 (onnx)": "ic_resnet8", "ad (onnx)": "ad_autoencoder"}
PEER_NAMES = {"KWS": "kws", "VWW": "vww", "IC ResNet-8": "resnet8", "AD": "ad"}
PEER_CORES = {"M3": "cortex-m3", "M4": "cortex-m4", "M7": "cortex-m7"}


def tflm_figures(peers: Path) -> dict[tuple[str, str], dict]:
    """(model key, core) -> TFLM instructions and arena, from the peers table."""
    figures = {}
    if not peers.exists():
        return figures
    for line in peers.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] in PEER_NAMES and cells[1] in PEER_CORES:
            instructions = int(cells[2].replace(",", ""))
            arena = int(re.match(r"[\d,]+", cells[4]).group(0).replace(",", ""))
            figures[(PEER_NAMES[cells[0]], PEER_CORES[cells[1]])] = {"instructions": instructions, "arena": arena}
    return figures


def integer_model(name: str, file: str, shared: Path):
    """(integer model, one int8 input row, expected int8 output or None)."""
    if name in TFLITE:
        golden = np.load(shared / "benchmarks" / "tflm_golden" / f"{file}.npz")
        return edgec.load(shared / "models" / "tflite" / f"{file}.tflite"), golden["input"].reshape(1, -1), golden["output"].ravel()
    float_model = edgec.load(shared / "models" / f"{file}.onnx")
    spec = input_specs(float_model)[0]
    rng = np.random.default_rng(0)
    if "ad" in name:
        windows = np.load(shared / "models" / "ad_autoencoder_samples.npy").astype(np.float32)
        calibration, sample = windows[:20], windows[20:21]
    else:
        calibration = rng.random((20, *spec.shape[1:]), dtype=np.float32)
        sample = rng.random((1, *spec.shape[1:]), dtype=np.float32)
    model = edgec.quantize(float_model, calibration)
    return model, cortex_m.int8_inputs(model, [{spec.name: sample}]), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_shared = Path(os.environ.get("EDGEC_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--cores", default="cortex-m3,cortex-m4,cortex-m7,cortex-m33")
    parser.add_argument("--models", default=",".join([*TFLITE, *ONNX]))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    peers = tflm_figures(args.shared / "benchmarks" / "peers.md")
    wanted = args.models.split(",")
    table = Table(title="edgec on QEMU (instructions, not cycles) vs TFLM + CMSIS-NN on the same boards")
    for column in ("model", "core", "instructions", "instr/MAC", "TFLM instr", "ratio", "flash B", "RAM B",
                   "arena B", "live bound B", "TFLM arena B", "exact"):
        table.add_column(column, justify="right")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        for name, file in [*TFLITE.items(), *ONNX.items()]:
            if name not in wanted:
                continue
            model, inputs, expected = integer_model(name, file, args.shared)
            for core in args.cores.split(","):
                out = Path(tmp) / f"{file}-{core}"
                manifest = cortex_m.compile_project(model, get_target(core), out, file, ignore_size_limits=True)
                result = cortex_m.run_project(out, inputs)
                reference = cortex_m.reference_outputs(model, inputs)[0] if expected is None else expected
                peer = peers.get((name, core), {})
                row = {"model": name, "core": core, "instructions": result.instructions[0],
                       "instructions_per_mac": result.instructions[0] / manifest["macs"],
                       "tflm_instructions": peer.get("instructions"),
                       "ratio": result.instructions[0] / peer["instructions"] if peer else None,
                       "flash": manifest["flash"]["total"], "ram": manifest["ram"]["total"],
                       "arena": manifest["ram"]["arena"], "live_bound": manifest["ram"]["arena_live_bound"],
                       "tflm_arena": peer.get("arena"), "exact": bool(np.array_equal(result.outputs[0], reference))}
                rows.append(row)
                table.add_row(name, core, f"{row['instructions']:,}", f"{row['instructions_per_mac']:.2f}",
                              f"{row['tflm_instructions']:,}" if peer else "n/a",
                              f"{row['ratio']:.3f}" if peer else "n/a", f"{row['flash']:,}", f"{row['ram']:,}",
                              f"{row['arena']:,}", f"{row['live_bound']:,}",
                              f"{row['tflm_arena']:,}" if peer else "n/a", "yes" if row["exact"] else "NO")
    Console(width=220).print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
