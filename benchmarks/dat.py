"""Delta-Aware Training: accuracy, weight storage and Cortex-M4 cost of delta-encoded weights.

Two tasks (data made here, see ``benchmarks/dat_data.py``: no registry package ships
FashionMNIST):

* ``mlp``: the paper's MLP 784-150-16-400-120-84-10 with HardTanh on the MNIST-sized synthetic
  task (60,000 / 10,000 images), pretrained in float for 8 epochs, fine-tuned for 5;
* ``conv``: a small CNN (conv 3x3 8, depthwise 3x3, conv 3x3 16 stride 2, FC 10) on
  scikit-learn's digits, pretrained for 40 epochs, fine-tuned for 40 (1,437 training images).

Rows: the baseline — the float model fine-tuned in float for as many epochs as the delta rows,
then int8 post-training quantized (edgec's calibration, 500 training images); the same with
4-bit weights (what packed W4 storage, the other way to halve weight flash, gives); the pretrained
model in int8 without fine-tuning; the pretrained model delta-encoded without training
(saturated); and each delta configuration fine-tuned with ``edgec.train.delta_aware`` and
quantized with it (it must encode with zero error). Trained graphs are cached, so a second run
(e.g. with ``--qemu``) only measures.
Accuracy is the integer graph's top-1 on the whole test set, run by edgec's reference
executor (the numbers every backend reproduces bit for bit); weight bytes are the encoded
weights of the Conv/FC layers (``DeltaEncodePass``' report; int8: one byte per weight); M4
instructions per inference are measured on QEMU (mps2-an386, one test image) with
``--qemu`` (once per scheme: the kernels' counts do not depend on the weights' values).
Seeds are fixed; models are cached under ``.cache/dat/``.

Usage: python benchmarks/dat.py [--tasks mlp,conv] [--epochs N] [--qemu] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx_ir as ir
import torch
from dat_data import digits, synthetic_mnist
from rich.console import Console
from rich.table import Table

import edgec
from edgec.backends import cortex_m
from edgec.delta import DeltaScheme
from edgec.errors import EdgecError, EdgecWarning
from edgec.passes.delta_encode import read_report
from edgec.passes.delta_encode import total as delta_total
from edgec.target import get_target
from edgec.train import delta_aware
from edgec.train.files import loader

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "dat"
#: The row the others are compared with: the float model fine-tuned for the same epochs, int8.
BASELINE = "int8 (fine-tuned in float, post-training)"
#: (label, scheme, scale) of the trained rows; "paper" is arXiv 2606.16516's schemes on its
#: arithmetic (8-bit fixed point per layer: one power-of-two grid); the others are ours.
CONFIGS = [
    ("paper: fixed ref per tensor", DeltaScheme(4, "fixed", "tensor"), "pow2"),
    ("paper: consecutive per tensor", DeltaScheme(4, "consecutive", "tensor"), "pow2"),
    ("closed-loop per tensor", DeltaScheme(4, "closed-loop", "tensor"), "pow2"),
    ("closed-loop per channel", DeltaScheme(4, "closed-loop", "channel"), "int8"),
    ("closed-loop per channel, fit", DeltaScheme(4, "closed-loop", "channel"), "fit"),
    ("fixed per channel, fit", DeltaScheme(4, "fixed", "channel"), "fit"),
    ("fixed per channel, fit, 3-bit", DeltaScheme(3, "fixed", "channel"), "fit"),
]


def mlp() -> torch.nn.Module:
    layers, width = [torch.nn.Flatten()], 784
    for size in (150, 16, 400, 120, 84):
        layers += [torch.nn.Linear(width, size), torch.nn.Hardtanh()]
        width = size
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))


def conv() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16 * 4 * 4, 10))


#: task -> (model, data, pretraining epochs, batch, fine-tuning epochs)
TASKS = {"mlp": (mlp, synthetic_mnist, 8, 128, 5), "conv": (conv, digits, 40, 64, 40)}


def pretrained(task: str, data: dict, quick: bool) -> torch.nn.Module:
    """The float model of ``task``, trained once with seed 0 and cached."""
    factory, _, epochs, batch, _ = TASKS[task]
    path = CACHE / f"{task}{'-quick' if quick else ''}.pt"
    torch.manual_seed(0)
    model = factory()
    if path.exists():
        model.load_state_dict(torch.load(path))
        return model.eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3 if task == "mlp" else 5e-3)
    for _ in range(1 if quick else epochs):
        for x, y in loader(data["x_train"], data["y_train"], batch, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()


def finetuned(model: torch.nn.Module, data: dict, epochs: int, batch: int) -> torch.nn.Module:
    """``model`` trained ``epochs`` more epochs in float as the delta rows are (the fair baseline)."""
    model = copy.deepcopy(model).train()
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    for _ in range(epochs):
        for x, y in loader(data["x_train"], data["y_train"], batch, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def quantized(module, data: dict, scheme: DeltaScheme | None, cached: Path | None = None, weight_bits: int = 8):
    """``module`` quantized (with ``scheme``, or to ``weight_bits``-bit weights) on 500 training
    images; read from / written to ``cached`` (an .onnx file) when given."""
    if cached is not None and cached.exists():
        return ir.load(cached)
    x, calib = data["x_test"], data["x_train"][:500]
    graph = edgec.quantize(module, calib, example_inputs=(torch.from_numpy(x[:1]),), delta=scheme,
                           weight_bits=weight_bits)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        ir.save(graph, cached)
    return graph


def integer_row(label: str, graph, data: dict, scheme: DeltaScheme | None, qemu: dict | None,
                weight_bits: int = 8) -> dict:
    """Score the integer ``graph`` (delta-encoded by ``scheme``, or of ``weight_bits``-bit
    weights) on the test set and (``qemu``: a cache of counts per scheme) measure it on the M4."""
    x = data["x_test"]
    outputs = edgec.run(graph, x)
    predicted = np.array([next(iter(out.values())).argmax() for out in outputs])
    report = read_report(graph)
    totals = delta_total(report) if report else None
    weights = sum(int(np.prod(layer.shape)) for layer in _weight_values(graph))
    plain = f"int{weight_bits}"
    row = {"config": label, "scheme": scheme.scheme if scheme else plain, "bits": scheme.bits if scheme else weight_bits,
           "scope": scheme.scope_name if scheme else "-", "accuracy": float((predicted == data["y_test"]).mean()),
           "weight_bytes": totals["stored_bits"] / 8 if totals else weights * weight_bits / 8, "int8_bytes": weights,
           "changed": totals["changed"] if totals else 0, "m4_instructions": None}
    if qemu is not None:
        key = scheme.to_json() if scheme else plain
        if key not in qemu:  # the kernels' instruction counts do not depend on the weights' values
            qemu[key] = m4_instructions(graph, x[:1])
        row["m4_instructions"] = qemu[key]
    return row


def _weight_values(graph):
    for node in graph.graph:
        if node.op_type in ("Conv", "DepthwiseConv", "FullyConnected"):
            yield node.inputs[1]


def m4_instructions(graph, x: np.ndarray) -> int | None:
    """Instructions per inference on QEMU's Cortex-M4 (None when the build cannot run)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cortex_m.compile_project(graph, get_target("cortex-m4"), Path(tmp) / "p", "dat", ignore_size_limits=True)
            result = cortex_m.run_project(Path(tmp) / "p", x)
        except EdgecError as error:
            print(f"  M4 run failed: {error}")
            return None
        if not np.array_equal(result.outputs[0], cortex_m.reference_outputs(graph, x)[0]):
            raise SystemExit("the M4 build differs from the integer reference")
        return int(result.instructions[0])


def run_task(task: str, epochs: int, qemu: bool, quick: bool, console: Console) -> list[dict]:
    _, make_data, _, batch, _ = TASKS[task]
    data = make_data(train=4000, test=1000) if quick and task == "mlp" else make_data()
    model = pretrained(task, data, quick)
    counts = {} if qemu else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgecWarning)  # the untrained row's saturation warning
        tuned = finetuned(model, data, epochs, batch)
        rows = [integer_row(BASELINE, quantized(tuned, data, None), data, None, counts),
                integer_row("int4 weights (same, post-training; packed)", quantized(tuned, data, None, weight_bits=4),
                            data, None, counts, weight_bits=4),
                integer_row("int8, no fine-tuning", quantized(model, data, None), data, None, counts),
                integer_row("closed-loop per channel, untrained",
                            quantized(model, data, DeltaScheme(4, "closed-loop", "channel")), data,
                            DeltaScheme(4, "closed-loop", "channel"), counts)]
    for label, scheme, scale in CONFIGS:
        start = time.time()
        cached = CACHE / f"{task}{'-quick' if quick else ''}-e{epochs}-{scale}-{scheme.scheme}-{scheme.bits}-" \
                         f"{scheme.scope_name.replace(':', '')}.onnx"
        result = None
        if not cached.exists():
            torch.manual_seed(0)
            result = delta_aware(model, loader(data["x_train"], data["y_train"], batch, shuffle=True), scheme=scheme,
                                 epochs=epochs, scale=scale, lr=5e-4)
        row = integer_row(label, quantized(result and result.module, data, scheme, cached), data, scheme, counts)
        if row["changed"]:
            raise SystemExit(f"{task}: {label}: the trained model did not encode exactly")
        row["train_seconds"] = time.time() - start
        rows.append(row)
        console.print(f"  {task}: {label}: {row['accuracy']:.2%} in {row['train_seconds']:.0f} s")
    for row in rows:
        row["task"] = task
    return rows


def table(rows: list[dict]) -> Table:
    out = Table(title="Delta-Aware Training (accuracy: integer graph, whole test set)")
    for column in ("task", "configuration", "scheme", "bits", "scope", "accuracy", "vs int8", "weight bytes",
                   "ratio to int8", "M4 instructions"):
        out.add_column(column, justify="left" if column in ("task", "configuration", "scheme", "scope") else "right")
    for row in rows:
        base = next(r for r in rows if r["task"] == row["task"] and r["config"] == BASELINE)
        out.add_row(row["task"], row["config"], row["scheme"], str(row["bits"]), row["scope"],
                    f"{row['accuracy']:.2%}", f"{(row['accuracy'] - base['accuracy']) * 100:+.2f}",
                    f"{row['weight_bytes']:,.0f}", f"{row['weight_bytes'] / row['int8_bytes']:.3f}",
                    f"{row['m4_instructions']:,}" if row["m4_instructions"] else "n/a")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mlp,conv")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs per configuration (default: mlp 5, conv 40)")
    parser.add_argument("--qemu", action="store_true", help="measure M4 instructions per inference on QEMU")
    parser.add_argument("--quick", action="store_true", help="small data and 1 epoch: a smoke run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console(width=200)
    rows = []
    for task in args.tasks.split(","):
        epochs = 1 if args.quick else args.epochs or TASKS[task][4]
        rows += run_task(task, epochs, args.qemu, args.quick, console)
    console.print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
