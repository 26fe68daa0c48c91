"""Where the builtin detector looks: a fixed grid of native-resolution tiles (numpy only, no torch).

Shared by inference and by the training/validation code so both score images the same way.
"""

from __future__ import annotations

import numpy as np

TILE = 96
MAX_GRID = 3


def tile_layout(height: int, width: int, tile: int = TILE, max_grid: int = MAX_GRID) -> tuple[int, list[int], list[int]]:
    """Return (tile size, row offsets, column offsets) for an image of the given size.

    Tiles are spread evenly over the image (overlapping on small images); an image smaller than a tile
    on one side uses a smaller square tile rounded down to a multiple of 4 (the net's stride).
    """
    t = min(tile, height, width)
    t = max(4, t - t % 4)

    def axis(n: int) -> list[int]:
        count = max(1, min(max_grid, n // t))
        if count == 1:
            return [(n - t) // 2]
        return [round(i * (n - t) / (count - 1)) for i in range(count)]

    return t, axis(height), axis(width)


def extract_tiles(rgb: np.ndarray, tile: int = TILE, max_grid: int = MAX_GRID) -> tuple[np.ndarray, int, int, int]:
    """rgb: H,W,3 uint8 -> (N,3,t,t float32 0..255, rows, cols, t)."""
    h, w = rgb.shape[:2]
    t, ys, xs = tile_layout(h, w, tile, max_grid)
    batch = np.empty((len(ys) * len(xs), 3, t, t), dtype=np.float32)
    k = 0
    for y in ys:
        for x in xs:
            batch[k] = rgb[y : y + t, x : x + t].transpose(2, 0, 1)
            k += 1
    return batch, len(ys), len(xs), t
