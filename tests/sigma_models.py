"""Small Sigma-Branch trees for the tests: an untrained CNN of four stages on 8 x 8 one-channel
inputs, its calibration samples, and trees built from it (routers from the samples' clusters,
so every leaf is taken by some of them)."""

from __future__ import annotations

import functools

import torch

from edgec.train.residual import ResidualBlock
from edgec.train.sigma_tree import SigmaBranchNet, build_tree


def dense_cnn() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),                    # 0-1: backbone
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),  # 2-4: level 1
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),                  # 5-6
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 32), torch.nn.ReLU(),    # 7-9: level 2
        torch.nn.Linear(32, 10)).eval()


def samples(count: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(count, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@functools.cache
def tree(depth: int) -> SigmaBranchNet:
    """A tree of ``depth`` levels (splits after the backbone and level 1), half width, eval mode."""
    return build_tree(dense_cnn(), [2, 7][:depth], samples(256), [0.5] * depth).eval()


def resnet() -> torch.nn.Sequential:
    """A small untrained ResNet on 8 x 8 RGB: stem, an identity block, a projecting block, head;
    BatchNorm statistics made distinct (layers 0-2 stem, 3-4 blocks, 5-7 head)."""
    torch.manual_seed(3)

    def conv_bn(cin, cout, kernel=3, stride=1):
        return [torch.nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2), torch.nn.BatchNorm2d(cout)]

    network = torch.nn.Sequential(
        *conv_bn(3, 8), torch.nn.ReLU(),
        ResidualBlock(torch.nn.Sequential(*conv_bn(8, 8), torch.nn.ReLU(), *conv_bn(8, 8))),
        ResidualBlock(torch.nn.Sequential(*conv_bn(8, 16, stride=2), torch.nn.ReLU(), *conv_bn(16, 16)),
                      torch.nn.Sequential(*conv_bn(8, 16, kernel=1, stride=2))),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10))
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    return network.eval()
