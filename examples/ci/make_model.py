"""Make the model the FPGA pipeline compiles: a Brevitas W4A4 MLP trained on the 8x8 digits.

Trains (quantization-aware, seeded, a few seconds on a CPU) an MLP with an 8-bit input
quantizer, 4-bit weights and a 4-bit hidden ReLU and an 8-bit output, on scikit-learn's
digits, and writes into the current directory (or ``--output-dir``):

* ``model.onnx``: its QONNX export (Brevitas' ``export_qonnx``), which ``edgec compile``
  takes as it is: every width and scale is in the file, no calibration data is needed;
* ``samples.npy``: ``--samples`` float32 test images ``[N, 1, 8, 8]`` in [0, 1], the input
  of ``edgec run OUT --input samples.npy --check``.

    python make_model.py [--output-dir DIR] [--samples 20] [--epochs 8]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias
from sklearn.datasets import load_digits

BITS = 4
TRAIN_SAMPLES = 1200


def w4a4_mlp() -> torch.nn.Module:
    """Input quantizer (8 bits), Linear(64, 32) + ReLU (4-bit weights and activations),
    Linear(32, 10) with 4-bit weights and an 8-bit output quantizer."""
    return torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(64, 32, weight_bit_width=BITS, bias_quant=Int32Bias, return_quant_tensor=True),
        qnn.QuantReLU(bit_width=BITS, return_quant_tensor=True),
        qnn.QuantLinear(32, 10, weight_bit_width=BITS, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                        return_quant_tensor=True),
    )


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """Adam, batch 64, seeded: the same net on every run."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(inputs)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(inputs[batch]).value, labels[batch]).backward()
            optimizer.step()
    net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("."))
    parser.add_argument("--samples", type=int, default=20, help="test images written to samples.npy")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    net = w4a4_mlp()
    train(net, images[:TRAIN_SAMPLES], labels[:TRAIN_SAMPLES], args.epochs)
    test_x, test_y = images[TRAIN_SAMPLES:], labels[TRAIN_SAMPLES:]
    with torch.no_grad():
        accuracy = float(np.mean(net(torch.from_numpy(test_x)).value.argmax(1).numpy() == test_y))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.output_dir / "model.onnx"
    # The exporter's own warnings and log lines are about its internals, not this model.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        export_qonnx(net, args=torch.zeros(1, 1, 8, 8), export_path=str(model_path))
    np.save(args.output_dir / "samples.npy", test_x[:args.samples])
    print(f"trained W{BITS}A{BITS} MLP: test accuracy {accuracy:.3f}; wrote {model_path} and "
          f"{args.output_dir / 'samples.npy'} ({args.samples} images)")


if __name__ == "__main__":
    main()
