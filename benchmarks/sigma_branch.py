"""Sigma-Branch: a dense network against its single-path tree, trained, quantized and run on the M4.

Two tasks, data made or shipped locally (nothing is downloaded):

* ``shapes``: a ResNet-8-class network — MLPerf Tiny's ResNet-8 layout (a 3x3 stem of 16,
  residual blocks of 16, 32 and 64 channels, the last two projecting with stride 2, average
  pooling, FC 10; 78,042 parameters) — on ``shapes10`` (``benchmarks/sigma_data.py``), the
  documented CIFAR-10 substitute: 16x16 RGB, 10 classes, 12,000 / 2,000 images. Pretrained 15
  epochs; trees split after the stem (layer 3) and, at depth 2, after the first block.
* ``digits``: the CNN of ``docs/sigma_branch.md`` (conv 8, conv 16, max-pool, conv 32, FC 10)
  on scikit-learn's digits (1,200 / 597 images). Pretrained 40 epochs.

Each tree (depth and widths per row) is rebuilt from the pretrained network and fine-tuned
with ``edgec.train.sigma_branch`` (20 epochs; the depth-2 shapes tree, whose four leaves each
see a quarter of the data, 40). Dense network and tree are then quantized by edgec (int8,
512 training images to calibrate) and compiled for the Cortex-M4.

Columns:
* top-1 of the float and of the int8 graphs on the whole test set (int8: edgec's reference
  executor, which the C reproduces bit for bit);
* parameters one inference reads (the integer graph's weights and biases, BatchNorm folded:
  ``edgec inspect``'s per-path figure; the tree's worst path) and the tree's total;
* M4 instructions per inference on QEMU (mps2-an386): the mean over ``--qemu-samples`` test
  images, and the worst path (the largest count of an input routed to each leaf);
* flash (library, built) and arena;
* routing agreement: the share of test images that the int8 graph's routers send to the leaf
  the float tree's routers choose.

Seeds are fixed; networks and trees are cached under ``.cache/sigma/`` (a second run only
measures).

Usage: python benchmarks/sigma_branch.py [--tasks shapes,digits] [--qemu-samples N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from dat_data import digits
from rich.console import Console
from rich.table import Table
from sigma_data import shapes10

import edgec
from edgec.backends import cortex_m
from edgec.control_flow import paths, taken_path
from edgec.reference import ReferenceExecutor
from edgec.summary import summarize
from edgec.target import get_target
from edgec.train import ResidualBlock, sigma_branch

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "sigma"
TARGET = "cortex-m4"


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> list[torch.nn.Module]:
    return [torch.nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), torch.nn.BatchNorm2d(cout)]


def _block(cin: int, cout: int, stride: int) -> ResidualBlock:
    body = torch.nn.Sequential(*_conv_bn(cin, cout, 3, stride), torch.nn.ReLU(), *_conv_bn(cout, cout))
    projection = None if cin == cout and stride == 1 else torch.nn.Sequential(*_conv_bn(cin, cout, 1, stride))
    return ResidualBlock(body, projection)


def resnet8() -> torch.nn.Sequential:
    """MLPerf Tiny's ResNet-8 layout (layers 0-2 stem, 3-5 blocks, 6-8 head)."""
    return torch.nn.Sequential(*_conv_bn(3, 16), torch.nn.ReLU(), _block(16, 16, 1), _block(16, 32, 2),
                               _block(32, 64, 2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(64, 10))


def digits_cnn() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(32 * 4 * 4, 10))


#: task -> (data, network, pretraining epochs, rows: (depth, splits, widths, fine-tune epochs))
TASKS = {
    "shapes": (shapes10, resnet8, 15, [(1, [3], [0.5], 20), (2, [3, 5], [0.5, 0.5], 40)]),
    "digits": (digits, digits_cnn, 40, [(1, [2], [0.4], 20), (2, [2, 5], [0.5, 0.5], 20)]),
}


def pretrained(task: str, data: dict, epochs: int) -> torch.nn.Module:
    """The dense network of ``task`` trained with seed 0 (Adam, batch 128), cached."""
    path = CACHE / f"{task}-dense-e{epochs}.pt"
    if path.exists():
        return torch.load(path, weights_only=False).eval()
    torch.manual_seed(0)
    network = TASKS[task][1]()
    x, y = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * -(-len(x) // 128))
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        network.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            loss = torch.nn.functional.cross_entropy(network(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.eval(), path)
    return network.eval()


def tree_for(task: str, dense: torch.nn.Module, data: dict, row: tuple, quick: bool):
    """The fine-tuned tree of ``row`` (cached) and its training report."""
    depth, splits, widths, epochs = row
    epochs = 1 if quick else epochs
    key = f"{task}-d{depth}-s{'_'.join(map(str, splits))}-w{'_'.join(map(str, widths))}-e{epochs}{'-quick' if quick else ''}"
    path = CACHE / f"{key}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["module"].eval(), saved["report"]
    result = sigma_branch(dense, (data["x_train"], data["y_train"]), depth=depth, split=splits, widths=widths,
                          epochs=epochs, lr=1e-3, batch_size=64, test=(data["x_test"], data["y_test"]), seed=0,
                          max_steps=20 if quick else None)
    torch.save({"module": result.module, "report": result.report.to_dict()}, path)
    return result.module.eval(), result.report.to_dict()


def float_accuracy(module: torch.nn.Module, data: dict) -> float:
    with torch.no_grad():
        return float((module(torch.from_numpy(data["x_test"])).argmax(1).numpy() == data["y_test"]).mean())


def integer_run(graph, data: dict) -> tuple[float, list[int]]:
    """int8 top-1 on the test set and each test image's leaf (0 without branches)."""
    executor = ReferenceExecutor(graph)
    name, output = executor.input_names[0], graph.graph.outputs[0].name
    order = paths(graph.graph)
    correct, leaves = 0, []
    for image, label in zip(data["x_test"], data["y_test"], strict=True):
        values = executor.run({name: image[None]}, keep_intermediates=True)
        correct += int(values[output].argmax() == label)
        leaves.append(order.index(taken_path(graph.graph, values)))
    return correct / len(data["y_test"]), leaves


def on_m4(graph, data: dict, leaves: list[int], samples: int, directory: Path) -> dict:
    """Mean and worst-path M4 instructions, flash and arena of ``graph`` compiled for the M4."""
    manifest = cortex_m.compile_project(graph, get_target(TARGET), directory, "model")
    feeds = [{"x": data["x_test"][i:i + 1]} for i in range(len(leaves))]
    name = graph.graph.inputs[0].name
    feeds = [{name: feed["x"]} for feed in feeds]
    rows = cortex_m.int8_inputs(graph, feeds[:samples])
    mean = float(np.mean(cortex_m.run_project(directory, rows).instructions))
    firsts = [leaves.index(leaf) for leaf in sorted(set(leaves))]
    worst = max(cortex_m.run_project(directory, cortex_m.int8_inputs(graph, [feeds[i] for i in firsts])).instructions)
    return {"instructions_mean": mean, "instructions_worst": int(worst), "flash": manifest["flash"]["total"],
            "arena": manifest["ram"]["arena"], "macs_paths": [p["macs"] for p in manifest["paths"]] or [manifest["macs"]]}


def quantized(module: torch.nn.Module, data: dict):
    return edgec.quantize(module, data["x_train"][:512], example_inputs=(torch.from_numpy(data["x_train"][:1]),))


def run_task(task: str, samples: int, quick: bool, console: Console) -> list[dict]:
    make_data, _, pre_epochs, rows = TASKS[task]
    data = make_data()
    if quick:
        data = {**data, "x_test": data["x_test"][:200], "y_test": data["y_test"][:200]}
    started = time.monotonic()
    dense = pretrained(task, data, 2 if quick else pre_epochs)
    console.print(f"{task}: dense network ready ({time.monotonic() - started:.0f} s)")
    dense_graph = quantized(dense, data)
    dense_int8, dense_leaves = integer_run(dense_graph, data)
    dense_params = summarize(dense_graph).total_params
    with_dense = {"float": float_accuracy(dense, data), "int8": dense_int8, "params": dense_params}
    with tempfile.TemporaryDirectory(prefix="edgec-sigma-") as tmp:
        with_dense.update(on_m4(dense_graph, data, dense_leaves, samples, Path(tmp) / "dense"))
        results = []
        for row in rows:
            started = time.monotonic()
            tree, report = tree_for(task, dense, data, row, quick)
            graph = quantized(tree, data)
            tree_int8, leaves = integer_run(graph, data)
            with torch.no_grad():
                float_leaves = tree.route(torch.from_numpy(data["x_test"])).tolist()
            summary = summarize(graph)
            m4 = on_m4(graph, data, leaves, samples, Path(tmp) / f"tree{len(results)}")
            results.append({
                "task": task, "depth": row[0], "splits": row[1], "widths": row[2], "epochs": row[3],
                "dense": with_dense,
                "float": float_accuracy(tree, data), "int8": tree_int8,
                "path_params": max(p.params for p in summary.paths), "total_params": summary.total_params,
                "leaf_shares": list(np.bincount(leaves, minlength=2 ** row[0]) / len(leaves)),
                "router_agreement": float(np.mean(np.array(leaves) == np.array(float_leaves))),
                "training": report, **m4})
            console.print(f"{task} depth {row[0]}: done ({time.monotonic() - started:.0f} s)")
    return results


def table(results: list[dict]) -> Table:
    out = Table(title=f"Sigma-Branch: dense vs tree (int8, {TARGET} on QEMU)")
    for column in ("task", "tree", "top-1 float", "top-1 int8", "Δ int8", "params/inference", "fewer",
                   "tree params", "M4 instr mean", "worst path", "fewer", "flash B", "arena B", "router agree"):
        out.add_column(column, justify="left" if column in ("task", "tree") else "right")
    shown = set()
    for r in results:
        d = r["dense"]
        if r["task"] not in shown:
            shown.add(r["task"])
            out.add_row(r["task"], "dense", f"{d['float']:.1%}", f"{d['int8']:.1%}", "", f"{d['params']:,}", "",
                        "", f"{d['instructions_mean']:,.0f}", "", "", f"{d['flash']:,}", f"{d['arena']:,}", "")
        out.add_row("", f"d{r['depth']} {r['splits']} {'/'.join(map(str, r['widths']))}", f"{r['float']:.1%}",
                    f"{r['int8']:.1%}", f"{(r['int8'] - d['int8']) * 100:+.1f} pt", f"{r['path_params']:,}",
                    f"{1 - r['path_params'] / d['params']:.0%}", f"{r['total_params']:,}",
                    f"{r['instructions_mean']:,.0f}", f"{r['instructions_worst']:,}",
                    f"{1 - r['instructions_mean'] / d['instructions_mean']:.0%}", f"{r['flash']:,}",
                    f"{r['arena']:,}", f"{r['router_agreement']:.2%}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="shapes,digits", help="comma-separated: shapes, digits")
    parser.add_argument("--qemu-samples", type=int, default=64, help="test images run on QEMU per graph")
    parser.add_argument("--quick", action="store_true", help="a few steps only (a smoke run, not figures)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    console = Console(width=200)
    results = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            parser.error(f"unknown task '{task}' (tasks: {', '.join(TASKS)})")
        results += run_task(task, args.qemu_samples, args.quick, console)
    console.print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
