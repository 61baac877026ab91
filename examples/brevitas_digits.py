"""A 4-bit Brevitas network from training to a bit-exact run on a Cortex-M4 or an FPGA.

Trains a small W4A4 convolutional net on scikit-learn's 8x8 digits with Brevitas
(quantization-aware, a few seconds), hands the module to ``edgec.quantize`` (exported through
Brevitas' QONNX export; no calibration data: the network carries every scale and width),
checks that edgec's integer reference computes Brevitas' own integer outputs, then compiles
for ``--target`` and runs the compiled project on 20 test images against the reference,
through the backend contract (:func:`edgec.backend.open_project`): for a Cortex-M target the
C on QEMU (needs arm-none-eabi-gcc and QEMU), for an FPGA target the generated RTL in iverilog
(needs yosys and iverilog; ``ice40-up5k`` also nextpnr-ice40 and icepack, and writes a
bitstream). Exits 1 when an output differs. Needs the ``qonnx`` extra
(``pip install 'edgec[qonnx]'``).

    python brevitas_digits.py [--output DIR] [--target cortex-m4 | ice40-up5k | pynq-z2 | ...]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias
from sklearn.datasets import load_digits

import edgec
from edgec.api import int8_output_names
from edgec.backend import backend_for_target, open_project
from edgec.reference import ReferenceExecutor
from edgec.target import Target, get_target
from edgec.trace_compare import reference_outputs

BITS = 4
CHECKED_IMAGES = 20
#: What each target kind's backend ``run`` executes, for the line naming the result.
RUNNERS = {"cortex-m": "QEMU", "fpga": "RTL simulation"}


def w4a4_net() -> torch.nn.Module:
    """8-bit input, two 4-bit 3x3 convolutions with 4-bit ReLUs, max pooling, a 4-bit linear layer
    with an 8-bit output (a QuantTensor, whose integers are the reference)."""
    return torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=BITS, bias_quant=Int32Bias, return_quant_tensor=True),
        qnn.QuantReLU(bit_width=BITS, return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        qnn.QuantConv2d(8, 16, 3, weight_bit_width=BITS, bias=False, return_quant_tensor=True),
        qnn.QuantReLU(bit_width=BITS, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(64, 10, weight_bit_width=BITS, bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat,
                        return_quant_tensor=True),
    )


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 10) -> None:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(inputs)).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(inputs[batch]).value, labels[batch])
            loss.backward()
            optimizer.step()
    net.eval()


def needed_tools(target: Target) -> tuple[str, ...]:
    """The programs compiling and running for ``target`` needs."""
    if target.kind == "cortex-m":
        return ("arm-none-eabi-gcc", "qemu-system-arm")
    tools = ("yosys", "iverilog", "vvp")
    return tools + (("nextpnr-ice40", "icepack") if target.device.family == "ice40" else ())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="digits_w4a4", help="project directory to write")
    parser.add_argument("--target", default="cortex-m4")
    args = parser.parse_args()

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    train_x, test_x = images[:1200], images[1200:]
    net = w4a4_net()
    train(net, train_x, digits.target[:1200].astype(np.int64))
    with torch.no_grad():
        brevitas = net(torch.from_numpy(test_x)).int().numpy()
    print(f"trained W{BITS}A{BITS}: test accuracy {np.mean(brevitas.argmax(1) == digits.target[1200:]):.3f}")

    model = edgec.quantize(net, example_inputs=torch.zeros(1, 1, 8, 8))
    summary = edgec.summarize(model)
    print(f"integer graph: {summary.total_packed_bytes:,} bytes of parameters at their widths "
          f"({summary.total_param_bytes:,} stored one per byte)")
    executor, output = ReferenceExecutor(model), int8_output_names(model)[0]
    reference = np.concatenate([executor.run({executor.input_names[0]: x[None]}, keep_intermediates=True)[output]
                                for x in test_x])
    print(f"edgec reference vs Brevitas' integers: {int((reference != brevitas).sum())} of {reference.size} differ")

    target = get_target(args.target)
    missing = [tool for tool in needed_tools(target) if shutil.which(tool) is None]
    if missing:
        print(f"{', '.join(missing)} missing: skipping the compile for {target.name} and the run")
        return
    report = edgec.compile(model, target, args.output)
    for line in backend_for_target(target).compile_summary(report, target, Path(args.output)):
        print(line)
    backend, project = open_project(args.output)
    rows = backend.input_rows(project.model, [{project.model.graph.inputs[0].name: x[None]}
                                              for x in test_x[:CHECKED_IMAGES]])
    result = backend.run(project, rows)
    exact = np.array_equal(result.outputs, reference_outputs(project.model, rows))
    print(f"{result.summary}\n{RUNNERS.get(target.kind, target.name)} outputs "
          f"{'equal' if exact else 'DIFFER FROM'} the integer reference on {len(rows)} images")
    if not exact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
