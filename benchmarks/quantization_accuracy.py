"""Quantization accuracy of edgec on the shared MLPerf Tiny float models.

For each model: quantize with 100 calibration inputs (uniform [0, 1] images; AD: 20 of its
40 real windows), evaluate on 100 others (AD: the other 20), and print

* SQNR of edgec's dequantized output and of onnxruntime's own QDQ quantization against
  the float model (onnxruntime), and their difference;
* top-1 agreement with the float model;
* against onnxruntime running the QDQ twin with edgec's own scales: end-to-end top-1
  agreement and largest int8 output difference, and the worst layer's identical fraction
  and largest difference (layer by layer, same int8 inputs).

Usage: python benchmarks/quantization_accuracy.py [--shared DIR] [--method minmax] [--rounding double]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import edgec
from edgec.accuracy import accuracy_report

MODELS = {"vww": "vww_mobilenetv1_025.onnx", "resnet8": "ic_resnet8.onnx", "ad": "ad_autoencoder.onnx"}


def samples_for(key: str, shared: Path, input_name: str, rng: np.random.Generator):
    if key == "ad":
        windows = np.load(shared / "models" / "ad_autoencoder_samples.npy").astype(np.float32)
        calibration, evaluation = windows[:20], windows[20:]
    else:
        shape = (3, 96, 96) if key == "vww" else (3, 32, 32)
        calibration = rng.random((100, *shape), dtype=np.float32)
        evaluation = rng.random((100, *shape), dtype=np.float32)
    return ([{input_name: c[None]} for c in calibration], [{input_name: e[None]} for e in evaluation])


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_shared = Path(os.environ.get("EDGEC_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--method", default="minmax", choices=["minmax", "percentile", "entropy"])
    parser.add_argument("--rounding", default="double", choices=["double", "single"])
    args = parser.parse_args()
    table = Table(title=f"edgec int8 quantization accuracy (calibration: {args.method}, rounding: {args.rounding})")
    for column in ("model", "edgec SQNR dB", "ORT QDQ SQNR dB", "Δ dB", "top-1 vs float", "top-1 vs twin",
                   "max out diff (LSB)", "worst layer identical", "worst layer diff (LSB)"):
        table.add_column(column, justify="right")
    for key, file in MODELS.items():
        path = args.shared / "models" / file
        float_model = edgec.load(path)
        input_name = float_model.graph.inputs[0].name
        calibration, evaluation = samples_for(key, args.shared, input_name, np.random.default_rng(0))
        int_model = edgec.quantize(float_model, calibration, method=args.method, rounding=args.rounding)
        r = accuracy_report(key, path, float_model, int_model, calibration, evaluation, classifier=key != "ad")
        table.add_row(key, f"{r.edgec_sqnr_db:.2f}", f"{r.onnxruntime_qdq_sqnr_db:.2f}",
                      f"{r.edgec_sqnr_db - r.onnxruntime_qdq_sqnr_db:+.2f}", percent(r.top1_vs_float),
                      percent(r.top1_vs_twin), str(r.max_output_diff_lsb), f"{r.worst_layer_identical:.4%}",
                      str(r.worst_layer_max_diff))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
