"""Data sets of the Delta-Aware Training benchmark, made here: nothing is downloaded.

No package on the registries ships FashionMNIST (torchvision, keras and tfds download it at
run time, which this project does not do), so the benchmark uses, as the issue allows:

* :func:`synthetic_mnist`: an MNIST-sized task made by code — 28x28 grey images, 10 classes,
  60,000 training and 10,000 test images. Each class is a fixed random "glyph" of three
  blurred strokes; an image is its class's glyph, shifted by up to 2 pixels, with random
  contrast, blended with a second class's glyph at up to 70 % strength (so classes overlap
  and no network reaches 100 %), plus Gaussian noise. Deterministic for a seed.
* :func:`digits`: scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the
  package), 1,200 for training and 597 for testing.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
CLASSES = 10


def _stroke(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, width: float) -> None:
    """Add a blurred line segment from ``start`` to ``end`` (pixel coordinates) to ``canvas``."""
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    direction = end - start
    length = max(float(np.hypot(*direction)), 1e-9)
    t = np.clip(((ys - start[0]) * direction[0] + (xs - start[1]) * direction[1]) / length**2, 0.0, 1.0)
    distance = np.hypot(ys - (start[0] + t * direction[0]), xs - (start[1] + t * direction[1]))
    canvas += np.exp(-(distance**2) / (2 * width**2))


def glyphs(seed: int = 0) -> np.ndarray:
    """The 10 class glyphs, ``[10, 28, 28]`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    out = np.zeros((CLASSES, SIDE, SIDE))
    for canvas in out:
        for _ in range(3):
            _stroke(canvas, rng.uniform(5, 23, 2), rng.uniform(5, 23, 2), rng.uniform(1.0, 1.8))
        canvas /= canvas.max()
    return out


def _images(prototypes: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLASSES, count)
    others = (labels + rng.integers(1, CLASSES, count)) % CLASSES
    blend = rng.uniform(0.0, 0.7, count)[:, None, None]
    images = prototypes[labels] * rng.uniform(0.6, 1.0, count)[:, None, None] + blend * prototypes[others]
    shifts = rng.integers(-2, 3, (count, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            chosen = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            images[chosen] = np.roll(images[chosen], (dy, dx), axis=(1, 2))
    images += rng.normal(0.0, 0.5, images.shape)
    return np.clip(images, 0.0, 1.5).astype(np.float32)[:, None], labels.astype(np.int64)


def synthetic_mnist(seed: int = 0, train: int = 60_000, test: int = 10_000) -> dict[str, np.ndarray]:
    """``x_train`` ``[train, 1, 28, 28]``, ``y_train``, ``x_test``, ``y_test`` (see the module docstring)."""
    rng = np.random.default_rng(seed + 1)
    prototypes = glyphs(seed)
    x_train, y_train = _images(prototypes, train, rng)
    x_test, y_test = _images(prototypes, test, rng)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def digits() -> dict[str, np.ndarray]:
    """scikit-learn's digits as ``[N, 1, 8, 8]`` float32 in [0, 1]: 1,200 train, 597 test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    return {"x_train": x[:1200], "y_train": y[:1200], "x_test": x[1200:], "y_test": y[1200:]}
