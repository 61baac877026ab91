"""Channel allocation for Sigma-Branch children: a copy of a dense segment that keeps only the
hidden channels most active on its cluster's samples.

A segment is an ``nn.Sequential`` slice of the dense network. Its *hidden* channels are the
outputs of every ``Conv``/``Linear`` but the last one (the segment's output keeps its full
width, so the next level's router and the classifier see the dense network's features). For
each such layer the copy keeps ``round(width * channels)`` outputs (at least one), those with
the largest mean absolute output over the cluster's samples, in their original order; the
layers after it take the matching input channels:

* a plain ``Conv1d``/``Conv2d`` or ``Linear``: rows of the kept outputs, columns of the kept
  inputs;
* a depthwise ``Conv`` (``groups`` = channels): it cannot choose, its channels are its input's;
* ``BatchNorm1d``/``BatchNorm2d``: the kept channels' statistics and affine terms;
* ``Flatten`` of ``[C, *spatial]``: the ``Linear`` after it takes every column of a kept channel;
* element-wise and pooling layers (ReLU, Hardtanh, …, MaxPool, AvgPool, Dropout, Identity) pass
  the channels through.

Any other layer is refused with an error naming it. The copy's parameters are fresh tensors
(slices of the dense ones, copied), so children train apart from each other and the dense model.
"""

from __future__ import annotations

import copy
import math

import torch

from edgec.errors import EdgecError

_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d)
_WEIGHTED = (*_CONVS, torch.nn.Linear)
_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
_PASS_THROUGH = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardtanh, torch.nn.LeakyReLU, torch.nn.Sigmoid, torch.nn.Tanh,
                 torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.AvgPool1d, torch.nn.AvgPool2d,
                 torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d, torch.nn.Dropout, torch.nn.Identity)


def _is_depthwise(layer: torch.nn.Module) -> bool:
    return isinstance(layer, _CONVS) and layer.groups > 1 and layer.groups == layer.in_channels == layer.out_channels


def hidden_layers(segment: torch.nn.Sequential) -> list[int]:
    """Indices of the layers whose output channels a child may narrow: every plain Conv/Linear
    but the segment's last weighted layer."""
    weighted = [i for i, layer in enumerate(segment) if isinstance(layer, _WEIGHTED) and not _is_depthwise(layer)]
    return weighted[:-1]


def channel_activity(segment: torch.nn.Sequential, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
    """Mean absolute output per channel of each of :func:`hidden_layers`, over ``inputs``."""
    activity: dict[int, torch.Tensor] = {}
    wanted = set(hidden_layers(segment))
    x = inputs
    with torch.no_grad():
        for index, layer in enumerate(segment):
            x = layer(x)
            if index in wanted:
                activity[index] = x.abs().transpose(0, 1).reshape(x.shape[1], -1).mean(dim=1)
    return activity


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


def narrowed_copy(segment: torch.nn.Sequential, inputs: torch.Tensor, width: float) -> torch.nn.Sequential:
    """A copy of ``segment`` keeping the ``width`` fraction of each hidden layer's channels most
    active on ``inputs`` (the module docstring states the rule); ``width`` 1 copies it whole."""
    if not 0 < width <= 1:
        raise EdgecError(f"a child's width is {width}", "give a fraction of the dense channels in (0, 1]")
    if width == 1:
        return copy.deepcopy(segment)
    activity = channel_activity(segment, inputs)
    layers: list[torch.nn.Module] = []
    kept: torch.Tensor | None = None  # input channels of the next layer still kept (None: all)
    spatial = 1  # positions per channel after a Flatten
    x = inputs
    for index, layer in enumerate(segment):
        if isinstance(layer, _CONVS) and layer.groups > 1 and not _is_depthwise(layer):
            raise EdgecError(f"Sigma-Branch cannot narrow the grouped convolution at layer {index} "
                             f"({layer.groups} groups)", "give width 1 for this segment")
        with torch.no_grad():
            out = layer(x)
        if index in activity:
            count = max(1, round(width * activity[index].numel()))
            rows = activity[index].topk(count).indices.sort().values
            layers.append(_slice_weighted(layer, rows, _input_columns(kept, spatial)))
            kept, spatial = rows, 1
        elif _is_depthwise(layer):
            layers.append(copy.deepcopy(layer) if kept is None else _slice_depthwise(layer, kept))
        elif isinstance(layer, _WEIGHTED):  # the segment's last weighted layer: all outputs
            layers.append(_slice_weighted(layer, None, _input_columns(kept, spatial)))
            kept, spatial = None, 1
        elif isinstance(layer, _NORMS):
            layers.append(copy.deepcopy(layer) if kept is None else _slice_norm(layer, kept))
        elif isinstance(layer, (torch.nn.Flatten, *_PASS_THROUGH)):
            if isinstance(layer, torch.nn.Flatten):
                spatial = math.prod(x.shape[2:]) if x.dim() > 2 else 1
            layers.append(copy.deepcopy(layer))
        else:
            raise EdgecError(f"Sigma-Branch cannot narrow the channels through {type(layer).__name__} (layer {index})",
                             "give width 1 for this segment, or use Conv/Linear/BatchNorm/activation/pooling layers")
        x = out
    return torch.nn.Sequential(*layers)
