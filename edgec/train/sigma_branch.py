"""Sigma-Branch: a pretrained dense network rebuilt as a single-path tree and fine-tuned.

:func:`sigma_branch` takes an ``nn.Sequential`` and its training data and returns the tree of
:mod:`edgec.train.sigma_tree`, in three steps:

1. **Reconstruction.** On ``calibration`` training samples (a seeded random subset) the dense
   network's activations are captured level by level; each inner node's router comes from a
   spherical 2-means of its outputs and each child is its dense segment narrowed to the
   ``widths`` fraction of the hidden channels most active on its cluster.
2. **Fine-tune with soft routing.** Adam on every parameter of the tree (routers included),
   the learning rate decaying from ``lr`` to zero on a cosine over the steps; the output is the mixture of the leaves weighted by their path probabilities at
   temperature ``T``, annealed geometrically from ``temperature[0]`` to ``temperature[1]``
   over the steps; the loss is the task's cross-entropy on that mixture plus ``balance`` times
   the load-balancing term ``sum_l m_l log(m_l * L)`` (``m`` the batch's mean leaf
   probabilities, ``L`` the number of leaves): zero when every leaf gets an equal share,
   growing as one starves.
3. **Hard routing.** The result's module is in eval mode: one path per sample. Its
   BatchNorms' statistics are re-estimated under hard routing on the training data (soft
   routing showed every branch every sample; deployed, a branch sees only its cluster), the
   backbone's kept as trained.

Split points (``split``): one layer index per tree level (or the first level's alone). Levels
start at cut points (right after a layer that is not a Conv, Linear or BatchNorm) and each must
hold a Conv/Linear its branches can narrow; by default each level starts at the latest cut
point that allows it, from the last level up (the deepest shared backbone).

The report (:class:`SigmaBranchReport`) gives the dense parameters, the tree's total, the
parameters one inference reads on each path (segments and routers along it), the share of
samples each leaf takes, and top-1 accuracy of the dense network and of the tree under hard
routing before and after the fine-tune (on ``test`` when given, else on the training data).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from edgec.errors import EdgecError, EdgecWarning
from edgec.train.sigma_narrow import narrowable_layers
from edgec.train.sigma_tree import SigmaBranchNet, build_tree, check_splits

_NOT_CUT_AFTER = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)


@dataclasses.dataclass(frozen=True)
class SigmaBranchReport:
    """What the tree costs and how it routes (see the module docstring)."""

    dense_parameters: int
    tree_parameters: int
    path_parameters: list[int]
    leaf_shares: list[float]
    dense_accuracy: float
    accuracy_before: float
    accuracy_after: float
    splits: list[int]
    widths: list[float]

    @property
    def active_reduction(self) -> float:
        """1 - the largest path's parameters over the dense network's."""
        return 1 - max(self.path_parameters) / self.dense_parameters

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "active_reduction": self.active_reduction}


@dataclasses.dataclass(frozen=True)
class SigmaBranchResult:
    """``module``: the tree in eval mode (hard routing); ``report``; ``log``: one record per
    epoch (``epoch``, ``loss``, ``temperature``, ``train_accuracy``, ``test_accuracy``)."""

    module: SigmaBranchNet
    report: SigmaBranchReport
    log: list[dict]


def cut_points(dense: torch.nn.Sequential) -> list[int]:
    """Indices where a tree level may start: right after a layer that is not a Conv, Linear or
    BatchNorm (an activation, a pooling, a Flatten), leaving at least one layer after it."""
    return [i for i in range(1, len(dense)) if not isinstance(dense[i - 1], _NOT_CUT_AFTER)]


def default_splits(dense: torch.nn.Sequential, depth: int, first: int | None = None) -> list[int]:
    """``depth`` split points, chosen from the last level up: each level starts at the latest
    cut point that leaves it a layer to narrow (:func:`~edgec.train.sigma_narrow.narrowable_layers`)
    before the next level; ``first``, when given, is the first level's start."""
    narrowable = narrowable_layers(dense)
    points = cut_points(dense)
    splits: list[int] = []
    end = len(dense)
    for level in range(depth, 0, -1):
        if level == 1 and first is not None:
            candidates = [first] if any(first <= i < end for i in narrowable) else []
        else:
            candidates = [p for p in points if any(p <= i < end for i in narrowable) and p < end
                          and (first is None or p > first)]
        if not candidates:
            raise EdgecError(f"the network has no room for a tree of depth {depth}"
                             + ("" if first is None else f" from layer {first}")
                             + f": each level needs a Conv/Linear to narrow (cut points {points})",
                             "give split=[...] (one layer index per level), a smaller depth or an earlier split")
        end = candidates[-1]
        splits.insert(0, end)
    return splits


def _check_room(dense: torch.nn.Sequential, splits: list[int]) -> None:
    """Raise when a level holds no layer its branches can narrow (they would copy it whole)."""
    narrowable = narrowable_layers(dense)
    for start, end in zip(splits, [*splits[1:], len(dense)], strict=True):
        if not any(start <= i < end for i in narrowable):
            raise EdgecError(f"the tree level from layer {start} to {end - 1} has no Conv/Linear to narrow "
                             "(the classifier keeps every class): its branches would copy the dense layers",
                             f"split earlier or at other layers (cut points {cut_points(dense)})")


def _tensors(data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        x, y = data
    except (TypeError, ValueError):
        raise EdgecError(f"{what} is not a pair (inputs, labels)", f"give {what} as (x, y)") from None
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if len(x) != len(y) or len(x) == 0:
        raise EdgecError(f"{what} has {len(x)} inputs and {len(y)} labels", "give one label per input, at least one")
    return x, y


def _accuracy(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    with torch.no_grad():
        predicted = torch.cat([module(x[i:i + batch]).argmax(dim=1) for i in range(0, len(x), batch)])
    return float((predicted == y).float().mean())


def _leaf_shares(tree: SigmaBranchNet, x: torch.Tensor) -> list[float]:
    with torch.no_grad():
        leaves = torch.cat([tree.route(x[i:i + 512]) for i in range(0, len(x), 512)])
    return (torch.bincount(leaves, minlength=tree.root.leaves).double() / len(x)).tolist()


def balance_loss(leaf_probabilities: torch.Tensor) -> torch.Tensor:
    """``sum_l m_l log(m_l * L)`` of the mean leaf probabilities: 0 at an even split."""
    mean = leaf_probabilities.mean(dim=0).clamp_min(1e-9)
    return (mean * torch.log(mean * len(mean))).sum()


def sigma_branch(module: torch.nn.Module, data, *, depth: int = 1, split: int | Sequence[int] | None = None,
                 widths: float | Sequence[float] = 0.5, epochs: int = 5, lr: float = 1e-3, batch_size: int = 64,
                 temperature: tuple[float, float] = (1.0, 0.05), balance: float = 0.1, test=None,
                 calibration: int = 512, seed: int = 0, max_steps: int | None = None,
                 on_step: Callable[[int, int, float], None] | None = None,
                 on_epoch: Callable[[dict], None] | None = None) -> SigmaBranchResult:
    """Rebuild ``module`` as a Sigma-Branch tree of ``depth`` levels and fine-tune it on
    ``data`` = (inputs, labels) (see the module docstring). ``widths``: the fraction of hidden
    channels each level's children keep (one value, or one per level). ``max_steps`` caps the
    fine-tune's steps; ``on_step(step, steps, loss)`` and ``on_epoch(record)`` report progress."""
    if not isinstance(module, torch.nn.Sequential):
        raise EdgecError(f"Sigma-Branch needs an nn.Sequential (a chain of layers), got {type(module).__name__}",
                         "wrap the network's layers, in order, in torch.nn.Sequential")
    if depth < 1:
        raise EdgecError(f"tree depth {depth}", "give depth 1 or more")
    splits = list(split) if isinstance(split, Sequence) else default_splits(module, depth, split)
    check_splits(module, splits)
    _check_room(module, splits)
    if len(splits) != depth:
        raise EdgecError(f"{len(splits)} split points for depth {depth}", "give one split point per tree level")
    level_widths = [float(widths)] * depth if isinstance(widths, (int, float)) else [float(w) for w in widths]
    x, y = _tensors(data, "the training data")
    x_test, y_test = _tensors(test, "the test data") if test is not None else (x, y)
    dense = copy.deepcopy(module).eval()
    generator = torch.Generator().manual_seed(seed)
    calib = x[torch.randperm(len(x), generator=generator)[:calibration]]
    torch.manual_seed(seed)
    tree = build_tree(dense, splits, calib, level_widths, seed).eval()
    dense_accuracy, before = _accuracy(dense, x_test, y_test), _accuracy(tree, x_test, y_test)
    classes = int(y.max()) + 1
    if dense_accuracy < 1.5 / classes:
        warnings.warn(f"the dense network scores {dense_accuracy:.1%} on {classes} classes, near chance: "
                      "Sigma-Branch rebuilds a trained network (its clusters and channel choices come from what "
                      "it has learnt); train it first", EdgecWarning, stacklevel=2)
    log = _fine_tune(tree, x, y, x_test, y_test, epochs=epochs, lr=lr, batch_size=batch_size, temperature=temperature,
                     balance=balance, generator=generator, max_steps=max_steps, on_step=on_step, on_epoch=on_epoch)
    tree.eval()
    report = SigmaBranchReport(
        dense_parameters=sum(p.numel() for p in dense.parameters()),
        tree_parameters=sum(p.numel() for p in tree.parameters()), path_parameters=tree.path_parameters(),
        leaf_shares=_leaf_shares(tree, x_test), dense_accuracy=dense_accuracy, accuracy_before=before,
        accuracy_after=_accuracy(tree, x_test, y_test), splits=splits, widths=level_widths)
    return SigmaBranchResult(tree, report, log)


def recalibrate_norms(tree: SigmaBranchNet, x: torch.Tensor, batch_size: int = 512) -> None:
    """Re-estimate the BatchNorm statistics of ``tree``'s branches under hard routing on ``x``
    (each branch over the samples routed to it; the backbone's stay), leaving it in eval mode."""
    tree.eval()
    norms = [m for child in tree.root.branches for m in child.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over every batch
        norm.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            tree.root.hard(x[start:start + batch_size])
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
        norm.eval()


def _fine_tune(tree: SigmaBranchNet, x, y, x_test, y_test, *, epochs: int, lr: float, batch_size: int,
               temperature: tuple[float, float], balance: float, generator: torch.Generator,
               max_steps: int | None, on_step, on_epoch) -> list[dict]:
    """Soft-routing fine-tune (step 2 of the module docstring); the per-epoch log."""
    optimizer = torch.optim.Adam(tree.parameters(), lr=lr)
    per_epoch = math.ceil(len(x) / batch_size)
    steps = min(epochs * per_epoch, max_steps if max_steps is not None else math.inf)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: 0.5 * (1 + math.cos(math.pi * done / steps)))
    start, end = temperature
    log, step = [], 0
    for epoch in range(1, epochs + 1):
        if step >= steps:
            break
        tree.train()
        order = torch.randperm(len(x), generator=generator)
        total, done = 0.0, 0
        for batch in range(per_epoch):
            if step >= steps:
                break
            tree.temperature = start * (end / start) ** (step / max(steps - 1, 1))
            rows = order[batch * batch_size:(batch + 1) * batch_size]
            output, leaves = tree.root.soft(x[rows], tree.temperature)
            loss = torch.nn.functional.cross_entropy(output, y[rows]) + balance * balance_loss(leaves)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step, done = step + 1, done + 1
            total += loss.item()
            if on_step is not None:
                on_step(step, int(steps), loss.item())
        recalibrate_norms(tree, x)
        record = {"epoch": epoch, "loss": total / done, "temperature": tree.temperature,
                  "train_accuracy": _accuracy(tree, x, y), "test_accuracy": _accuracy(tree, x_test, y_test)}
        log.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return log
