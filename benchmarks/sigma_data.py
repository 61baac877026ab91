"""The 10-class colour image set of the Sigma-Branch benchmark, made here: nothing is downloaded.

No package on the registries ships CIFAR-10 (torchvision, keras and tfds download it at run
time, which this project does not do), so the ResNet-8-class network is benchmarked, as the
issue allows, on a documented substitute of CIFAR-10's form: :func:`shapes10`, 16x16 RGB images
(CIFAR-10's 32x32 at a quarter of the pixels, so that training fits in minutes on two cores),
10 classes, 12,000 training and 2,000 test images.

A class is one of five shapes (disc, square, triangle, ring, cross) in one of two palettes
(warm: hues around red/yellow; cool: around green/blue): 10 classes. An image is its class's
shape at a random centre, size (radius 3 to 6 pixels) and hue within the palette, on a random
two-colour gradient background, with a second shape of another class as a smaller, fainter
distractor (so classes overlap), brightness jitter and Gaussian noise. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

SIDE = 16
CLASSES = 10
SHAPES = 5


def _masks(shape: np.ndarray, cy: np.ndarray, cx: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """``[N, SIDE, SIDE]`` soft masks of shape ``shape[i]`` centred at ``(cy, cx)`` of ``radius``."""
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    dy = (ys[None] - cy[:, None, None]) / radius[:, None, None]
    dx = (xs[None] - cx[:, None, None]) / radius[:, None, None]
    r = np.hypot(dy, dx)
    fields = np.stack([
        1.0 - r,                                            # disc
        1.0 - np.maximum(np.abs(dy), np.abs(dx)),           # square
        np.minimum(dy + 0.5, 0.8 - np.abs(dx) * 1.6 + 0.5 * dy) * 1.5,  # triangle
        0.35 - np.abs(r - 0.7),                             # ring
        np.maximum(0.3 - np.abs(dy), 0.3 - np.abs(dx)) * (1.0 - np.maximum(np.abs(dy), np.abs(dx))) * 3,  # cross
    ])
    field = fields[shape, np.arange(len(shape))]
    return np.clip(field * radius[:, None, None], 0.0, 1.0)


def _hues(palette: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[N, 3]`` RGB colours: warm (palette 0) or cool (palette 1) hues, jittered."""
    warm = np.stack([rng.uniform(0.7, 1.0, len(palette)), rng.uniform(0.1, 0.7, len(palette)),
                     rng.uniform(0.0, 0.3, len(palette))], axis=1)
    cool = np.stack([rng.uniform(0.0, 0.3, len(palette)), rng.uniform(0.3, 0.9, len(palette)),
                     rng.uniform(0.6, 1.0, len(palette))], axis=1)
    return np.where(palette[:, None] == 0, warm, cool)


def _images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLASSES, count)
    others = (labels + rng.integers(1, CLASSES, count)) % CLASSES
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) / (SIDE - 1)
    angle = rng.uniform(0, 2 * np.pi, count)
    ramp = np.cos(angle)[:, None, None] * ys[None] + np.sin(angle)[:, None, None] * xs[None]
    low, high = rng.uniform(0.0, 0.6, (count, 3)), rng.uniform(0.0, 0.6, (count, 3))
    images = low[:, :, None, None] + (high - low)[:, :, None, None] * ramp[:, None]
    for which, strength, sizes in ((others, rng.uniform(0.3, 0.6, count), (2.0, 3.5)),
                                   (labels, np.ones(count), (3.0, 6.0))):
        radius = rng.uniform(*sizes, count)
        cy, cx = rng.uniform(radius - 1, SIDE - radius, count), rng.uniform(radius - 1, SIDE - radius, count)
        mask = _masks(which % SHAPES, cy, cx, radius) * strength[:, None, None]
        colour = _hues(which // SHAPES, rng)
        images = images * (1 - mask[:, None]) + colour[:, :, None, None] * mask[:, None]
    images = images * rng.uniform(0.7, 1.2, count)[:, None, None, None] + rng.normal(0.0, 0.08, images.shape)
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels.astype(np.int64)


def shapes10(seed: int = 0, train: int = 12_000, test: int = 2_000) -> dict[str, np.ndarray]:
    """``x_train`` ``[train, 3, 16, 16]``, ``y_train``, ``x_test``, ``y_test`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    x_train, y_train = _images(train, rng)
    x_test, y_test = _images(test, rng)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
