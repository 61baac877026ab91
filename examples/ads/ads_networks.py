"""The networks of the ADS-like example workload (workload.toml), as PyTorch modules.

Each is a stand-in for a network class of an autonomous-driving stack, built from the layers
edgec's frontend imports (convolutions, batch norms folded on import, ReLUs, residual adds,
pooling, linear layers). Their sizes are ours, chosen so that both their multiply-accumulates
and their parameters (which decide what a tile's SRAM must hold, and so what moving a network
costs) fall in the range of the published networks they stand for, at the reduced input
resolutions given here; they are not those networks and are not trained (the schedulers need
their shapes, not their weights):

* ``camera_backbone``: a ResNet-style feature extractor on a 3 x 256 x 448 camera crop, 5.7
  GMAC and 5.0 M parameters (the role of ResNet-18: 1.8 GMAC at 224 x 224, so 4.2 GMAC at
  this crop, and 11.7 M parameters);
* ``detection_head``, ``segmentation_head``, ``depth_head``: dense heads on its 1/16-scale
  features, 0.4-0.8 GMAC and 1-1.8 M parameters each (the roles of a YOLO-style detection
  head, an FCN segmentation decoder and a monocular depth decoder);
* ``tracking``: an MLP over 64 tracked objects' features, 1.6 M parameters (the role of an
  association network);
* ``lidar_backbone`` and ``lidar_detection``: a PointPillars-style 2-D backbone over a
  32 x 256 x 256 bird's-eye-view pseudo-image and its detection head, 3.9 + 0.6 GMAC and
  1.9 + 0.6 M parameters (PointPillars: 4.8 M parameters in all);
* ``planner``: a small convolutional encoder of a 16 x 64 x 64 occupancy grid and a wide MLP,
  1.3 M parameters and 15 M MACs, run at a high rate.

``python examples/ads/ads_networks.py`` prints each network's MACs (edgec inspect's count).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels), nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x):
        return torch.relu(x + self.body(x))


def camera_backbone() -> nn.Module:
    """3 x 256 x 448 -> 384 x 16 x 28 features (1/16 scale)."""
    torch.manual_seed(1)
    return nn.Sequential(_conv(3, 48, 2), _conv(48, 96, 2), _Residual(96), _conv(96, 192, 2), _Residual(192),
                         _Residual(192), _conv(192, 384, 2), _Residual(384)).eval()


def _head(widths: tuple[int, ...], outputs: int) -> nn.Module:
    layers = [_conv(a, b) for a, b in zip(widths, widths[1:])]
    return nn.Sequential(*layers, nn.Conv2d(widths[-1], outputs, 1)).eval()


def detection_head() -> nn.Module:
    """384 x 16 x 28 -> 3 anchors x (4 box + 1 score + 8 classes) per position."""
    torch.manual_seed(2)
    return _head((384, 256, 256), 39)


def segmentation_head() -> nn.Module:
    """384 x 16 x 28 -> 16 classes per position."""
    torch.manual_seed(3)
    return _head((384, 256, 256, 128), 16)


def depth_head() -> nn.Module:
    """384 x 16 x 28 -> one depth per position."""
    torch.manual_seed(4)
    return _head((384, 192, 128, 64), 1)


def tracking() -> nn.Module:
    """64 objects x 256 features (1 x 64 x 256) -> 64 association embeddings each."""
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 64)).eval()


def lidar_backbone() -> nn.Module:
    """32 x 256 x 256 pillar pseudo-image -> 256 x 32 x 32 features."""
    torch.manual_seed(6)
    return nn.Sequential(_conv(32, 64, 2), _conv(64, 64), _conv(64, 128, 2), _Residual(128), _conv(128, 256, 2),
                         _Residual(256)).eval()


def lidar_detection() -> nn.Module:
    """256 x 32 x 32 -> 2 anchors x (7 box + 1 score + 3 classes) per cell."""
    torch.manual_seed(7)
    return _head((256, 256), 22)


def planner() -> nn.Module:
    """16 x 64 x 64 occupancy grid -> 32 trajectory scores: a small encoder and a wide MLP."""
    torch.manual_seed(8)
    return nn.Sequential(_conv(16, 32, 2), _conv(32, 64, 2), _conv(64, 128, 2), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(128, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 32)).eval()


if __name__ == "__main__":
    import edgec

    shapes = {"camera_backbone": [1, 3, 256, 448], "detection_head": [1, 384, 16, 28],
              "segmentation_head": [1, 384, 16, 28], "depth_head": [1, 384, 16, 28], "tracking": [1, 64, 256],
              "lidar_backbone": [1, 32, 256, 256], "lidar_detection": [1, 256, 32, 32], "planner": [1, 16, 64, 64]}
    for name, shape in shapes.items():
        summary = edgec.summarize(edgec.load(globals()[name](), example_inputs=(torch.rand(*shape),)))
        print(f"{name:18s} {summary.total_macs / 1e9:7.3f} GMAC  {summary.total_params:>10,} parameters")
