"""Bit-exactness of edgec's Brevitas/QONNX import: the table of issue 10, item 4.

Trains the six Brevitas nets of tests/brevitas_models.py on scikit-learn digits (linear MLP
and conv net, W8A8, W4A4, W2A2), quantizes each with ``edgec.quantize(module)`` (no
calibration data) and compares, on the 597 test images, the integer outputs of edgec's
reference executor with Brevitas' own ``QuantTensor`` integers and with qonnx's executor on
the QONNX export. Prints, per net: widths, outputs compared, mismatches against each, and the
outputs of samples where Brevitas' float32 arithmetic rounds a layer value to the other side of
a .5 boundary from the exact value (float-tie samples: a mismatch there is Brevitas', not
edgec's), and the mismatches outside those samples (the target: 0).

Usage: python benchmarks/qonnx_exactness.py [--epochs 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import brevitas_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per net (default 8)")
    args = parser.parse_args()
    data = brevitas_models.digits()
    x = data.test_x
    table = Table(title="edgec vs Brevitas vs qonnx: integer outputs on the digits test split",
                  caption="hidden activations after ReLU; input and output quantizers are int8")
    for header in ("model", "weights", "activations", "outputs", "accuracy", "≠ Brevitas", "≠ qonnx",
                   "float-tie samples", "≠ outside them"):
        table.add_column(header, justify="left" if header == "model" else "right")
    with tempfile.TemporaryDirectory() as directory:
        for name, kind, bits in brevitas_models.NETS:
            net = brevitas_models.train(kind, bits, data, epochs=args.epochs)
            brevitas = brevitas_models.brevitas_int_outputs(net, x)
            edgec_out = brevitas_models.edgec_int_outputs(brevitas_models.quantize(net), x)
            qonnx = brevitas_models.qonnx_int_outputs(brevitas_models.export(net, Path(directory) / f"{name}.onnx",
                                                                             len(x)), x)
            ties = brevitas_models.float_ties(net, x) > 0
            outside = np.count_nonzero(edgec_out[~ties] != brevitas[~ties]) + np.count_nonzero(
                edgec_out[~ties] != qonnx[~ties])
            table.add_row(name, f"int{bits}n", f"uint{bits}", f"{brevitas.size:,}",
                          f"{(edgec_out.argmax(1) == data.test_y).mean():.3f}",
                          str(np.count_nonzero(edgec_out != brevitas)), str(np.count_nonzero(edgec_out != qonnx)),
                          str(np.count_nonzero(ties)), str(outside))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
