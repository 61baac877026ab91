"""A residual block for networks that Sigma-Branch rebuilds: ``activation(body(x) + shortcut(x))``.

``body`` is an ``nn.Sequential`` of plain layers (typically Conv, BatchNorm, ReLU, Conv,
BatchNorm); ``shortcut`` is the identity or an ``nn.Sequential`` projection (a 1x1 Conv with
its stride, and a BatchNorm) giving the body's output channels. A network of such blocks in an
``nn.Sequential`` (a ResNet) is one chain of layers for :mod:`edgec.train.sigma_tree`, and the
block exports to ONNX as the layers of both paths and an ``Add``.

Narrowing (:mod:`edgec.train.sigma_narrow`) keeps the sum's operands on one channel set: with
the identity shortcut the block's output channels are its input's (only the body's inner
channels narrow); with a projection they are the ``width`` fraction most active at the sum,
which the body's last layers and the projection both keep.
"""

from __future__ import annotations

import torch


class ResidualBlock(torch.nn.Module):
    """``activation(body(x) + shortcut(x))``; ``shortcut`` None is the identity, ``activation``
    None is a ReLU."""

    def __init__(self, body: torch.nn.Sequential, shortcut: torch.nn.Sequential | None = None,
                 activation: torch.nn.Module | None = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else torch.nn.Identity()
        self.activation = activation if activation is not None else torch.nn.ReLU()

    @property
    def projects(self) -> bool:
        """True when the shortcut is a projection (it has layers of its own)."""
        return not isinstance(self.shortcut, torch.nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))
