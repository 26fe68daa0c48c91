"""The planted trace the tiny-model tests teach and read: smooth random images, the fakes with a faint
zero-mean grid of period 4. One copy for the multimodal (train lmm) and image-classifier tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMG = 32  # the tiny models' input size: no resampling on any backend
GRID_AMPLITUDE = 16.0  # grey levels between grid lines and the rest; faint against the content


def planted_image(rng: np.random.Generator, fake: bool) -> np.ndarray:
    """Smooth random content (tint, gradient, soft blobs, sensor-like noise); fakes add a faint
    zero-mean grid of period 4 — the trace the model has to find."""
    y, x = np.mgrid[0:IMG, 0:IMG].astype(np.float32)
    arr = rng.uniform(40, 200, 3)[None, None, :] + (
        rng.uniform(-3, 3) * (x - IMG / 2) + rng.uniform(-3, 3) * (y - IMG / 2))[..., None]
    for _ in range(3):
        cx, cy, r = rng.uniform(0, IMG), rng.uniform(0, IMG), rng.uniform(4, 12)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        arr = arr + rng.uniform(-40, 40, 3)[None, None, :] * blob[..., None]
    arr = arr + rng.normal(0, 6, arr.shape)
    if fake:
        grid = ((x % 4 == 0) | (y % 4 == 0)).astype(np.float32)
        arr = arr + GRID_AMPLITUDE * (grid - grid.mean())[..., None]
    return np.clip(arr, 0, 255).round().astype(np.uint8)


def make_planted(root: Path, n_per_class: int, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.fromarray(planted_image(rng, label == "fake")).save(root / label / f"{label}{i:03d}.png")
    return root
