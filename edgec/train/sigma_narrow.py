"""Channel allocation for Sigma-Branch children: a copy of a dense segment that keeps only the
channels most active on its cluster's samples.

A segment is an ``nn.Sequential`` slice of the dense network; its input may itself be narrowed
(``kept_in``: the dense channels the parent kept, in order). Every plain ``Conv``/``Linear``
of the copy keeps :func:`kept_count` outputs (``width * channels`` to a multiple of four),
those with the largest mean absolute output over the cluster's samples, in their original
order; the last one of a ``final`` segment keeps every output (the classifier, every class). Each layer takes the input channels
its predecessor kept:

* a plain ``Conv1d``/``Conv2d`` or ``Linear``: rows of the kept outputs, columns of the kept
  inputs;
* a depthwise ``Conv`` (``groups`` = channels): it cannot choose, its channels are its input's;
* ``BatchNorm1d``/``BatchNorm2d``: the kept channels' statistics and affine terms;
* ``Flatten`` of ``[C, *spatial]``: the ``Linear`` after it takes every column of a kept channel;
* element-wise and pooling layers (ReLU, Hardtanh, …, MaxPool, AvgPool, Dropout, Identity) pass
  the channels through;
* a :class:`~edgec.train.residual.ResidualBlock`: its body narrowed like a segment, its output
  channels shared by the body's last layer and the shortcut (see that module).

So the copy computes exactly what the dense segment computes on the kept channels with the
dropped ones removed. Any other layer, and grouped (not depthwise) convolutions, are refused
with an error naming them. The copy's parameters are fresh tensors (copied slices), so children
train apart from each other and from the dense model.
"""

from __future__ import annotations

import copy
import math

import torch

from edgec.errors import EdgecError
from edgec.train.residual import ResidualBlock

_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d)
_WEIGHTED = (*_CONVS, torch.nn.Linear)
_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
_PASS_THROUGH = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardtanh, torch.nn.LeakyReLU, torch.nn.Sigmoid, torch.nn.Tanh,
                 torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.AvgPool1d, torch.nn.AvgPool2d,
                 torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d, torch.nn.Dropout, torch.nn.Identity)


def _is_depthwise(layer: torch.nn.Module) -> bool:
    return isinstance(layer, _CONVS) and layer.groups > 1 and layer.groups == layer.in_channels == layer.out_channels


#: Marks a layer that keeps every output channel (the classifier of a leaf).
WHOLE = "whole"


def _is_plain_weighted(layer: torch.nn.Module) -> bool:
    return isinstance(layer, _WEIGHTED) and not _is_depthwise(layer)


def narrowable_layers(network: torch.nn.Sequential) -> list[int]:
    """Indices of the layers a branch can narrow when ``network`` ends a tree: every residual
    block and every plain Conv/Linear but the last (the classifier keeps every class)."""
    weighted = [i for i, layer in enumerate(network) if _is_plain_weighted(layer)]
    blocks = [i for i, layer in enumerate(network) if isinstance(layer, ResidualBlock)]
    return sorted([*weighted[:-1], *blocks])


def _slice_weighted(layer: torch.nn.Module, rows: torch.Tensor | None, columns: torch.Tensor | None) -> torch.nn.Module:
    weight = layer.weight.detach()
    if rows is not None:
        weight = weight[rows]
    if columns is not None:
        weight = weight[:, columns]
    narrowed = copy.deepcopy(layer)
    narrowed.weight = torch.nn.Parameter(weight.clone())
    if layer.bias is not None:
        narrowed.bias = torch.nn.Parameter((layer.bias.detach() if rows is None else layer.bias.detach()[rows]).clone())
    if isinstance(layer, torch.nn.Linear):
        narrowed.out_features, narrowed.in_features = weight.shape
    else:
        narrowed.out_channels, narrowed.in_channels = weight.shape[0], weight.shape[1] * layer.groups
    return narrowed


def _slice_depthwise(layer: torch.nn.Module, kept: torch.Tensor) -> torch.nn.Module:
    narrowed = _slice_weighted(layer, kept, None)
    narrowed.groups = narrowed.out_channels = narrowed.in_channels = len(kept)
    return narrowed


def _slice_norm(layer: torch.nn.Module, kept: torch.Tensor) -> torch.nn.Module:
    narrowed = copy.deepcopy(layer)
    narrowed.num_features = len(kept)
    for name in ("weight", "bias"):
        if getattr(layer, name) is not None:
            setattr(narrowed, name, torch.nn.Parameter(getattr(layer, name).detach()[kept].clone()))
    for name in ("running_mean", "running_var"):
        if getattr(layer, name) is not None:
            setattr(narrowed, name, getattr(layer, name)[kept].clone())
    return narrowed


def _input_columns(kept: torch.Tensor | None, spatial: int) -> torch.Tensor | None:
    """The input columns of the kept channels: each channel's ``spatial`` positions after a
    Flatten (channel-major, as NCHW flattens), the channels themselves otherwise."""
    if kept is None or spatial == 1:
        return kept
    return (kept[:, None] * spatial + torch.arange(spatial)).reshape(-1)


#: Kept channel counts are multiples of this (see :func:`kept_count`).
CHANNEL_STEP = 4


def kept_count(width: float, channels: int) -> int:
    """How many of ``channels`` a layer narrowed to ``width`` keeps: ``width * channels``
    rounded to the nearest multiple of :data:`CHANNEL_STEP` (the channels the Cortex-M kernels
    handle at once, so a narrowed layer keeps their speed per MAC), at least one step; every
    channel when that rounds to all of them or the layer has at most one step."""
    wanted = round(width * channels)
    if wanted >= channels or channels <= CHANNEL_STEP:
        return channels
    return min(channels, max(CHANNEL_STEP, CHANNEL_STEP * round(width * channels / CHANNEL_STEP)))


def _most_active(out: torch.Tensor, width: float) -> torch.Tensor:
    """The :func:`kept_count` channels of ``out`` with the largest mean absolute value, in order."""
    activity = out.abs().transpose(0, 1).reshape(out.shape[1], -1).mean(dim=1)
    return activity.topk(kept_count(width, activity.numel())).indices.sort().values


def _narrow_block(block: ResidualBlock, x: torch.Tensor, width: float, kept: torch.Tensor | None,
                  out_rows) -> tuple[ResidualBlock, torch.Tensor | None]:
    """A residual block narrowed on ``x`` (channels ``kept``): its output channels are
    ``out_rows`` (a tensor, :data:`WHOLE`) or, when None, chosen as the residual module states."""
    if out_rows is None and not block.projects:
        out_rows = WHOLE if kept is None else kept
    if out_rows is None:
        body, _ = _narrow(block.body, x, 1.0, kept, _last(block.body, WHOLE))
        shortcut, _ = _narrow(block.shortcut, x, 1.0, kept, _last(block.shortcut, WHOLE))
        with torch.no_grad():
            out_rows = _most_active(body(x) + shortcut(x), width)
    body, out = _narrow(block.body, x, width, kept, _last(block.body, out_rows))
    shortcut = (_narrow(block.shortcut, x, width, kept, _last(block.shortcut, out_rows))[0] if block.projects
                else copy.deepcopy(block.shortcut))
    return ResidualBlock(body, shortcut, copy.deepcopy(block.activation)), out


def _last(segment: torch.nn.Sequential, rows) -> dict[int, object]:
    """``rows`` fixed for the last layer of ``segment`` that chooses channels (a plain
    Conv/Linear or a residual block)."""
    shaping = [i for i, layer in enumerate(segment) if _is_plain_weighted(layer) or isinstance(layer, ResidualBlock)]
    return {shaping[-1]: rows} if shaping else {}


def _narrow(segment: torch.nn.Sequential, inputs: torch.Tensor, width: float, kept_in: torch.Tensor | None,
            fixed: dict[int, object]) -> tuple[torch.nn.Sequential, torch.Tensor | None]:
    """``segment`` narrowed on ``inputs`` (channels ``kept_in``); the layers in ``fixed`` output
    the channels given there (a tensor of dense channels, :data:`WHOLE`), the others the most
    active ones."""
    layers: list[torch.nn.Module] = []
    kept, spatial, x = kept_in, 1, inputs
    for index, layer in enumerate(segment):
        rows = fixed.get(index)
        if isinstance(layer, _CONVS) and layer.groups > 1 and not _is_depthwise(layer):
            raise EdgecError(f"Sigma-Branch cannot narrow the grouped convolution at layer {index} "
                             f"({layer.groups} groups)", "split the tree after it, or use plain or depthwise convolutions")
        if isinstance(layer, ResidualBlock):
            narrowed, kept = _narrow_block(layer, x, width, kept, rows)
        elif _is_plain_weighted(layer):
            narrowed = _slice_weighted(layer, None, _input_columns(kept, spatial))
            if rows is WHOLE:
                kept = None
            else:
                if rows is None:
                    with torch.no_grad():
                        rows = _most_active(narrowed(x), width)
                kept = rows
                narrowed = _slice_weighted(narrowed, kept, None)
            spatial = 1
        elif _is_depthwise(layer):
            narrowed = copy.deepcopy(layer) if kept is None else _slice_depthwise(layer, kept)
        elif isinstance(layer, _NORMS):
            narrowed = copy.deepcopy(layer) if kept is None else _slice_norm(layer, kept)
        elif isinstance(layer, (torch.nn.Flatten, *_PASS_THROUGH)):
            if isinstance(layer, torch.nn.Flatten):
                spatial = math.prod(x.shape[2:]) if x.dim() > 2 else 1
            narrowed = copy.deepcopy(layer)
        else:
            raise EdgecError(f"Sigma-Branch cannot narrow the channels through {type(layer).__name__} (layer {index})",
                             "split the tree after it, or build the levels of Conv/Linear/BatchNorm/activation/pooling "
                             "layers and edgec.train.ResidualBlock")
        with torch.no_grad():
            x = narrowed(x)
        layers.append(narrowed)
    return torch.nn.Sequential(*layers), kept


def narrowed_copy(segment: torch.nn.Sequential, inputs: torch.Tensor, width: float,
                  kept_in: torch.Tensor | None = None, final: bool = False
                  ) -> tuple[torch.nn.Sequential, torch.Tensor | None]:
    """A copy of ``segment`` narrowed to ``width`` on ``inputs`` (already narrowed to
    ``kept_in``, None: all channels), as the module docstring states (``final``: its last
    plain Conv/Linear keeps every output); and the dense channels its output keeps (None: all)."""
    if not 0 < width <= 1:
        raise EdgecError(f"a child's width is {width}", "give a fraction of the dense channels in (0, 1]")
    weighted = [i for i, layer in enumerate(segment) if _is_plain_weighted(layer)]
    return _narrow(segment, inputs, width, kept_in, {weighted[-1]: WHOLE} if final and weighted else {})
