"""A small CNN for scikit-learn's 8x8 digits, for the walk-through in examples/README.md.

``build()`` (a zero-argument factory, as ``edgec ... digits_model:build`` expects) returns the
model trained for a few seconds with a fixed seed. Run as a script, it writes the data the
walk-through uses: ``digits_calib.npy`` (100 training images for calibration),
``digits_test.npy`` (10 test images) and ``digits_labels.npy`` (their labels).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits


def images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 images (float32 in [0, 1], shape [N, 1, 8, 8]) and their labels."""
    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32)[:, None], digits.target


def build() -> torch.nn.Module:
    """The trained model (train split: the first 1200 images)."""
    pixels, labels = images()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    x, y = torch.from_numpy(pixels[:1200]), torch.from_numpy(labels[:1200])
    for _ in range(40):
        for start in range(0, len(x), 100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[start:start + 100]), y[start:start + 100]).backward()
            optimizer.step()
    return model.eval()


if __name__ == "__main__":
    pixels, labels = images()
    np.save("digits_calib.npy", pixels[:100])
    np.save("digits_test.npy", pixels[1200:1210])
    np.save("digits_labels.npy", labels[1200:1210])
    print("wrote digits_calib.npy (100 images), digits_test.npy and digits_labels.npy (10 images)")
