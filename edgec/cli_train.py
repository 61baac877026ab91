"""What ``edgec train`` does for each kind of training: a progress bar over the steps (with the
loss), one line per epoch, and a summary line naming what was written.

* ``--delta``: Delta-Aware Training (:func:`edgec.train.files.train_delta_from_files`);
* ``--sigma-branch``: Sigma-Branch tree reconstruction and fine-tune
  (:func:`edgec.train.files.train_sigma_branch_from_files`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgec.cli_output import console, error_console
from edgec.delta import DeltaScheme
from edgec.errors import EdgecError


@contextlib.contextmanager
def training_progress(what: str) -> Iterator[tuple]:
    """``(on_step, on_epoch)`` callbacks drawing a transient bar on stderr and printing a line
    per epoch, for the duration of the block."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=error_console, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def on_step(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps or None, description=f"{what} (loss {loss:.4f})")

        def on_epoch(record: dict) -> None:
            accuracy = f", test accuracy {record['test_accuracy']:.2%}" if "test_accuracy" in record else ""
            console.print(f"epoch {record['epoch']}: loss {record['loss']:.4f}, "
                          f"train accuracy {record['train_accuracy']:.2%}{accuracy}")

        yield on_step, on_epoch


def train_delta(network, data: str, output: str, scheme: DeltaScheme, **options) -> None:
    """Delta-Aware Training of ``network`` on ``data``, written to ``output``."""
    from edgec.train.files import train_delta_from_files

    with training_progress(f"training for {scheme.describe()}") as (on_step, on_epoch):
        result = train_delta_from_files(network, data, output, scheme, on_step=on_step, on_epoch=on_epoch, **options)
    stored = sum(layer["stored_bits"] for layer in result.layers)
    int8 = sum(layer["int8_bits"] for layer in result.layers)
    console.print(f"wrote {output} and {Path(output).with_suffix('.train.json')}: {len(result.layers)} layers, "
                  f"weights {stored / 8:,.0f} bytes as {scheme.describe()} ({stored / int8:.1%} of int8); "
                  f"compile it with: edgec compile {output} --target TARGET --calib FILE")


def parse_numbers(text: str | None, kind: type, what: str) -> list | None:
    """``"a,b,..."`` as numbers of ``kind`` (None stays None); a one-line error otherwise."""
    if text is None:
        return None
    try:
        return [kind(part) for part in text.split(",")]
    except ValueError:
        raise EdgecError(f"{what} '{text}' is not a comma-separated list of {kind.__name__} values",
                         f"write e.g. {'5,8' if kind is int else '0.5,0.4'}") from None


def train_sigma_branch(network, data: str, output: str, *, depth: int, split: str | None, widths: str,
                       **options) -> None:
    """Sigma-Branch reconstruction and fine-tune of ``network`` on ``data``, written to ``output``."""
    from edgec.train.files import train_sigma_branch_from_files

    splits = parse_numbers(split, int, "--split")
    fractions = parse_numbers(widths, float, "--widths")
    with training_progress(f"fine-tuning a depth-{depth} Sigma-Branch tree") as (on_step, on_epoch):
        result = train_sigma_branch_from_files(
            network, data, output, depth=depth, split=splits[0] if splits and len(splits) == 1 else splits,
            widths=fractions[0] if len(fractions) == 1 else fractions, on_step=on_step, on_epoch=on_epoch,
            **options)
    report = result.report
    console.print(f"wrote {output} and {Path(output).with_suffix('.train.json')}: {len(report.path_parameters)} "
                  f"leaves (splits at layers {report.splits}), {max(report.path_parameters):,} parameters per "
                  f"path of {report.dense_parameters:,} dense ({report.active_reduction:.1%} fewer); top-1 "
                  f"{report.dense_accuracy:.2%} dense, {report.accuracy_before:.2%} rebuilt, "
                  f"{report.accuracy_after:.2%} fine-tuned; leaf shares "
                  + ", ".join(f"{share:.0%}" for share in report.leaf_shares))
