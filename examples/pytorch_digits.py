"""From a PyTorch model to an int8 integer graph: train, quantize, compare.

Trains the small CNN of digits_model.py on scikit-learn's 8x8 digits (a few seconds on a
CPU), quantizes it with edgec using 100 training images for calibration, and prints float
and int8 test accuracy. Run from the repository root after ./scripts/setup.sh:

    .venv/bin/python examples/pytorch_digits.py [--output digits_int8.onnx]
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx_ir as ir
import torch

import edgec

from digits_model import build, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", help="also save the integer graph here (.onnx)")
    args = parser.parse_args()

    x, labels = images()
    model = build()  # trained on the first 1200 images
    test_x, test_y = x[1200:], labels[1200:]
    with torch.no_grad():
        float_accuracy = (model(torch.from_numpy(test_x)).argmax(1).numpy() == test_y).mean()

    integer_model = edgec.quantize(model, x[:100], example_inputs=(torch.from_numpy(x[:1]),))
    predictions = [next(iter(outputs.values())).argmax() for outputs in edgec.run(integer_model, test_x)]
    int8_accuracy = (np.array(predictions) == test_y).mean()

    summary = edgec.summarize(integer_model)
    print(f"integer graph: {len(summary.layers)} operators, {summary.total_param_bytes:,} bytes of weights, "
          f"{summary.total_macs:,} MACs")
    print(f"test accuracy on {len(test_y)} images: float {float_accuracy:.2%}, int8 {int8_accuracy:.2%}")
    if args.output:
        ir.save(integer_model, args.output)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
