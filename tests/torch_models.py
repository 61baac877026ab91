"""Small PyTorch models with awkward shapes, shared by the quantizer and backend tests."""

from __future__ import annotations

import torch

nn = torch.nn
F = torch.nn.functional


class Awkward(nn.Module):
    """Odd channel counts, non-square kernels, asymmetric padding, stride 2, depth multiplier 2,
    residual add, concat, relu6, max/avg pooling with padding, a constant scale (Mul)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 5, (3, 2), stride=2, padding=(1, 0))
        self.depthwise = nn.Conv2d(5, 10, 3, groups=5, padding=1)
        self.pointwise = nn.Conv2d(10, 10, 1)
        self.same = nn.Conv2d(20, 7, 2, padding="same")
        self.bn = nn.BatchNorm2d(7)
        self.fc = nn.Linear(7, 3)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        x = F.pad(x, (1, 0, 2, 1))
        d = F.relu(self.depthwise(x))
        r = F.relu(self.pointwise(d) + d)
        x = torch.cat([r, d], dim=1)
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        x = self.bn(self.same(x)) * 0.5
        x = F.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)
        return self.fc(x.mean(dim=(2, 3)))


class Sequence1d(nn.Module):
    """1-D convolutions and pooling (keyword-spotting style), then a softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 5, stride=2, padding=2)
        self.dw = nn.Conv1d(6, 6, 3, groups=6, padding=1)
        self.fc = nn.Linear(6 * 8, 4)

    def forward(self, x):
        x = F.relu(self.dw(F.relu(self.conv(x))))
        x = F.max_pool1d(x, 2)
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=-1)


AWKWARD_MODELS = [(Awkward, (1, 3, 17, 14)), (Sequence1d, (1, 4, 32))]


def awkward_module(factory) -> nn.Module:
    """``factory()`` seeded, in eval mode, every BatchNorm with non-trivial running statistics
    (so that folding them matters)."""
    torch.manual_seed(0)
    module = factory()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return module.eval()
