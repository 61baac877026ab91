"""Delta-Aware Training: fine-tune a PyTorch network so its int8 weights fit a delta encoding.

:func:`delta_aware` trains every ``Linear``/``Conv1d``/``Conv2d`` (plain or depthwise) of a
module with its weights seen through the encoding (arXiv 2606.16516's straight-through
estimator): the forward pass uses ``s * reconstruct(round(w / s))`` — the int8 grid of
per-output-channel scale ``s``, then the delta scheme's reconstruction (:mod:`edgec.delta`, the
very codec the compiler uses, so training and compilation cannot disagree) — and the
backward pass treats that projection as the identity.

Scales (``scale``): ``"int8"`` is edgec's own post-training rule ``max|w| / 127``, the grid a
plain int8 build would use; ``"pow2"`` is 8-bit fixed point per layer (the paper's arithmetic):
one grid ``2^-f`` for the whole tensor, ``f`` the most fractional bits that keep ``max|w|``
within 127 steps; ``"fit"`` (default) makes each output channel's grid coarse
enough that its weights fit the deltas without saturating — for ``fixed`` a group's spread
within ``2^b - 1`` steps, for running schemes each step between neighbours within
``2^(b-1) - 1`` — and never finer than ``max|w| / 127``.

The result's ``module`` is the trained network with its weights on the grid and exactly
representable in the scheme; it exports with its scales as ONNX QuantizeLinear/
DequantizeLinear pairs, so ``edgec.quantize(result.module, calib, delta=result.scheme)``
recovers those integers and encodes them with zero error. A BatchNorm would rescale the
weights of the layer before it after training, so BatchNorms are first folded into their
Conv/Linear layers (``torch.fx``'s conv-bn fusion, in eval mode); one that follows anything
else is an error.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch.nn.utils import parametrize

from edgec.delta import DeltaScheme, reconstruct
from edgec.errors import EdgecError, first_line
from edgec.inttype import IntType

#: Symmetric narrow int8, the type of edgec's int8 weights.
INT8_WEIGHTS = IntType(8, True, True)
SCALES = ("fit", "int8", "pow2")
_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)


def _rows(weights: torch.Tensor) -> torch.Tensor:
    """``[out, in, *kernel]`` -> ``[out, K]`` in edgec's row order (kernel positions, then input
    channel: the order of :func:`edgec.delta.weight_rows` after the frontend's OHWI layout)."""
    return weights.movedim(1, -1).reshape(weights.shape[0], -1) if weights.dim() > 2 else weights


def _from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.dim() == 2:
        return rows
    moved = list(like.movedim(1, -1).shape)
    return rows.reshape(moved).movedim(-1, 1)


def channel_scales(weights: torch.Tensor, scheme: DeltaScheme, scale: str) -> torch.Tensor:
    """Per-output-channel scales of ``weights`` under the ``scale`` rule (module docstring)."""
    rows = _rows(weights.detach()).to(torch.float64)
    scales = rows.abs().amax(dim=1) / INT8_WEIGHTS.max
    if scale == "pow2":
        largest = float(scales.max())
        scales = torch.full_like(scales, 2.0 ** math.ceil(math.log2(largest)) if largest > 0 else 1.0)
    if scale == "fit":
        length = rows.shape[1]
        size = scheme.block if scheme.scope == "block" else length
        pad = math.ceil(length / size) * size - length
        padded = torch.nn.functional.pad(rows, (0, pad), value=float("nan")).reshape(rows.shape[0], -1, size)
        if scheme.running:
            steps = torch.nan_to_num(padded.diff(dim=2).abs(), nan=0.0).amax(dim=(1, 2))
            needed = steps / scheme.delta_max
        else:
            spread = (torch.nan_to_num(padded, nan=-math.inf).amax(dim=2)
                      - torch.nan_to_num(padded, nan=math.inf).amin(dim=2)).amax(dim=1)
            needed = spread / (2**scheme.bits - 1)
        scales = torch.maximum(scales, needed)
    return torch.where(scales > 0, scales, torch.ones_like(scales)).to(torch.float32)


def project(weights: torch.Tensor, scales: torch.Tensor, scheme: DeltaScheme) -> torch.Tensor:
    """``weights`` on the int8 grid of ``scales``, reconstructed through ``scheme`` (float32)."""
    shape = (-1,) + (1,) * (weights.dim() - 1)
    q = torch.clamp(torch.round(weights.detach() / scales.reshape(shape)), INT8_WEIGHTS.min, INT8_WEIGHTS.max)
    rows = _rows(q).cpu().numpy().astype(np.int64)
    rebuilt = torch.from_numpy(reconstruct(rows, scheme, INT8_WEIGHTS).astype(np.float32)).to(weights.device)
    return _from_rows(rebuilt, weights) * scales.reshape(shape)


class DeltaProjection(torch.nn.Module):
    """Training-time parametrization: the projected weights forward, the identity backward."""

    def __init__(self, scheme: DeltaScheme, scale: str) -> None:
        super().__init__()
        self.scheme, self.scale = scheme, scale

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        projected = project(weights, channel_scales(weights, self.scheme, self.scale), self.scheme)
        return weights + (projected - weights).detach()


class FakeQuantized(torch.nn.Module):
    """Deployment parametrization: weights (already on the grid) fake-quantized per output
    channel with fixed ``scales``; exports as QuantizeLinear/DequantizeLinear."""

    def __init__(self, scales: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scales", scales.detach().to(torch.float32))
        self.register_buffer("zero_points", torch.zeros_like(scales, dtype=torch.int32))

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return torch.fake_quantize_per_channel_affine(weights, self.scales, self.zero_points, 0, -128, 127)


@dataclasses.dataclass
class DeltaTrainingResult:
    """``module``: the trained network (eval mode, weights exactly representable, exports with
    its scales); ``scheme``: what they fit; ``log``: one record per epoch (``epoch``, ``loss``,
    ``train_accuracy``, ``test_accuracy`` when a test loader was given); ``layers``: per trained
    layer its name, weights and bits stored against int8."""

    module: torch.nn.Module
    scheme: DeltaScheme
    log: list[dict]
    layers: list[dict]


def delta_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The layers :func:`delta_aware` trains; a grouped (not depthwise) convolution is an error."""
    layers = []
    for name, layer in module.named_modules():
        if isinstance(layer, _LAYERS):
            groups = getattr(layer, "groups", 1)
            if groups != 1 and groups != layer.in_channels:
                raise EdgecError(f"layer '{name}' is a grouped convolution ({groups} groups)",
                                 "edgec takes plain and depthwise convolutions only")
            layers.append((name or type(layer).__name__, layer))
    if not layers:
        raise EdgecError("the module has no Linear or Conv layer to delta-encode",
                         "give a network with Conv1d/Conv2d/Linear layers")
    return layers


def _without_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with each BatchNorm folded into the Conv/Linear layer it follows."""
    if not any(isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) for layer in module.modules()):
        return module
    from torch.fx.experimental.optimization import fuse

    try:
        fused = fuse(module.eval())
    except Exception as error:
        raise EdgecError(f"cannot fold the module's BatchNorm layers before training ({first_line(error)})",
                         "fold them into the layers before them, or remove them") from None
    if any(isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) for layer in fused.modules()):
        raise EdgecError("a BatchNorm layer does not follow a Conv or Linear layer",
                         "delta-aware training folds BatchNorm into the layer before it; move or remove it")
    return fused


def evaluate(module: torch.nn.Module, loader: Iterable) -> float:
    """Top-1 accuracy of ``module`` (eval mode, no gradients) over ``(x, label)`` batches."""
    was_training = module.training
    module.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((module(x).argmax(dim=1) == y).sum())
            total += len(y)
    module.train(was_training)
    return correct / max(total, 1)


def delta_aware(module: torch.nn.Module, train_loader: Iterable, *, scheme: DeltaScheme | None = None,
                epochs: int = 3, lr: float = 1e-3, scale: str = "fit", test_loader: Iterable | None = None,
                loss_fn: Callable | None = None, max_steps: int | None = None,
                on_step: Callable[[int, int, float], None] | None = None,
                on_epoch: Callable[[dict], None] | None = None) -> DeltaTrainingResult:
    """Fine-tune a copy of ``module`` for ``scheme`` (default 4-bit closed-loop per channel).

    ``train_loader`` (and ``test_loader``) yield ``(inputs, labels)`` batches; ``loss_fn``
    defaults to cross entropy; Adam with learning rate ``lr`` for ``epochs`` epochs (at most
    ``max_steps`` steps in all). ``on_step(step, steps, loss)`` and ``on_epoch(record)`` report
    progress. The caller's module is not modified.
    """
    scheme = scheme or DeltaScheme()
    if scale not in SCALES:
        raise EdgecError(f"unknown scale rule '{scale}'", f"use one of {', '.join(SCALES)}")
    if epochs < 1:
        raise EdgecError(f"{epochs} epochs", "train for at least one epoch")
    model = _without_batchnorm(copy.deepcopy(module))
    layers = delta_layers(model)
    for _, layer in layers:
        parametrize.register_parametrization(layer, "weight", DeltaProjection(scheme, scale))
    loss_fn = loss_fn or torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = len(train_loader) if hasattr(train_loader, "__len__") else 0
    steps = min(epochs * steps_per_epoch, max_steps or math.inf) if steps_per_epoch else (max_steps or 0)
    log, step = [], 0
    for epoch in range(1, epochs + 1):
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        for x, y in train_loader:
            if max_steps is not None and step >= max_steps:
                break
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(y)
            seen += len(y)
            correct += int((out.argmax(dim=1) == y).sum())
            if on_step is not None:
                on_step(step, int(steps), loss.item())
        record = {"epoch": epoch, "loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1)}
        if test_loader is not None:
            record["test_accuracy"] = evaluate(model, test_loader)
        log.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if max_steps is not None and step >= max_steps:
            break
    return DeltaTrainingResult(_frozen(model, layers, scheme, scale), scheme, log, _layer_table(layers, scheme))


def _frozen(model: torch.nn.Module, layers, scheme: DeltaScheme, scale: str) -> torch.nn.Module:
    """``model`` with each layer's weights replaced by their projection and fake-quantized."""
    for _, layer in layers:
        latent = layer.parametrizations.weight.original.detach()
        scales = channel_scales(latent, scheme, scale)
        projected = project(latent, scales, scheme)
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        with torch.no_grad():
            layer.weight.copy_(projected)
        parametrize.register_parametrization(layer, "weight", FakeQuantized(scales))
    return model.eval()


def _layer_table(layers, scheme: DeltaScheme) -> list[dict]:
    table = []
    for name, layer in layers:
        rows = _rows(layer.weight.detach())
        count, length = rows.shape
        table.append({"layer": name, "weights": count * length, "int8_bits": count * length * 8,
                      "stored_bits": scheme.stored_bits(count, length)})
    return table
