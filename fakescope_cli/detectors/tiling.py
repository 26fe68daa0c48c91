"""Where the tile detectors look: a fixed grid of native-resolution tiles (numpy + Pillow, no torch).

Shared by inference and by the training/validation code so both score images the same way. The shipped
builtin and cycle detectors read their tile size, grid and scale from their JSON config; `scaled_tiles`
cuts tiles larger and shrinks each by a fixed factor.
With `jpeg_quality` every tile is re-encoded once as JPEG at that quality before the network sees it:
an earlier, milder JPEG (say q90) then leaves almost no trace of its own, so the file format stops being
a cue (the "format flip" check). Tile offsets are multiples of 16, the JPEG MCU size, so the re-encoding
grid coincides with the grid of a JPEG the image may already have come from.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Defaults of the label-trained builtin recipes (train/builtin.py): that net, trained on 64-px crops, ranked
# the pool the same on 48-px tiles (mean per-source AUC 0.575 vs 0.574) at 56% of the pixels (model card).
TILE = 48
MAX_GRID = 3
ALIGN = 16


def tile_layout(height: int, width: int, tile: int = TILE, max_grid: int = MAX_GRID,
                align: int = ALIGN) -> tuple[int, list[int], list[int]]:
    """Return (tile size, row offsets, column offsets) for an image of the given size.

    Tiles are spread evenly over the image (overlapping on small images), offsets rounded down to a
    multiple of `align`; an image smaller than a tile on one side uses a smaller square tile rounded down
    to a multiple of 4 (the net's stride).
    """
    t = min(tile, height, width)
    t = max(4, t - t % 4)

    def axis(n: int) -> list[int]:
        count = max(1, min(max_grid, n // t))
        if count == 1:
            starts = [(n - t) // 2]
        else:
            starts = [round(i * (n - t) / (count - 1)) for i in range(count)]
        return [s - s % align for s in starts]

    return t, axis(height), axis(width)


def jpeg_roundtrip(tile: Image.Image, quality: int) -> Image.Image:
    """One JPEG encode/decode at `quality`, 4:2:0 chroma (set explicitly: Pillow's default can change)."""
    buf = io.BytesIO()
    tile.save(buf, "JPEG", quality=quality, subsampling=2)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


def extract_tiles(image: Image.Image | np.ndarray, tile: int = TILE, max_grid: int = MAX_GRID,
                  jpeg_quality: int = 0) -> tuple[np.ndarray, int, int, int]:
    """8-bit RGB image (Pillow or H,W,3 uint8) -> (N,3,t,t float32 0..255, rows, cols, t).

    A Pillow image is cropped tile by tile, so the full frame is never copied into an array.
    """
    im = _as_image(image)
    w, h = im.size
    t, ys, xs = tile_layout(h, w, tile, max_grid)
    batch = np.empty((len(ys) * len(xs), 3, t, t), dtype=np.float32)
    for k, crop in enumerate(_cut(im, t, ys, xs, jpeg_quality)):
        batch[k] = np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1)
    return batch, len(ys), len(xs), t


def _as_image(image: Image.Image | np.ndarray) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))


def _cut(im: Image.Image, t: int, ys: list[int], xs: list[int], jpeg_quality: int):
    """The t x t tiles at those offsets, row by row, each re-encoded once at jpeg_quality if it is set."""
    for y in ys:
        for x in xs:
            crop = im.crop((x, y, x + t, y + t))
            yield jpeg_roundtrip(crop, jpeg_quality) if jpeg_quality else crop


def scaled_tiles(image: Image.Image | np.ndarray, tile: int, max_grid: int = MAX_GRID, downscale: float = 1.0,
                 jpeg_quality: int = 0, multiple: int = 4, resample: str = "bicubic") -> tuple[np.ndarray, int, int, int]:
    """Tiles seen at a coarser scale: N,3,s,s float32 0..255 (s a multiple of `multiple`), rows, cols, and the
    tile side in pixels of the original image.

    With `downscale` > 1 the tiles are cut `downscale` times larger at native resolution and each is shrunk
    back to about `tile` pixels: "bicubic" (Pillow, antialiased) or "box" (Pillow's `reduce`, the mean of
    each downscale x downscale block; an integer factor, and about 5x cheaper). Shrinking tiles, not the
    whole image, keeps the cost independent of the image's size, and every image gets the same fixed
    reduction whatever its size: no resize to a common size happens. Used by the `cycle` detector (bicubic;
    its autoencoder downsamples 8x, hence multiple=8) and by builtin weights trained at that scale (box).
    """
    if downscale == 1.0:
        tiles, rows, cols, t = extract_tiles(image, tile, max_grid, jpeg_quality)
        side = t - t % multiple
        return np.ascontiguousarray(tiles[:, :, :side, :side]), rows, cols, t
    if resample not in ("bicubic", "box"):
        raise ValueError(f"unknown resample {resample!r}: bicubic or box")
    if resample == "box" and not float(downscale).is_integer():
        raise ValueError(f"box reduction needs an integer factor, not {downscale}")
    im = _as_image(image)
    w, h = im.size
    t, ys, xs = tile_layout(h, w, round(tile * downscale), max_grid)
    small = t // int(downscale) if resample == "box" else max(multiple, round(t / downscale))
    side = small - small % multiple
    batch = np.empty((len(ys) * len(xs), 3, side, side), dtype=np.float32)
    for k, crop in enumerate(_cut(im, t, ys, xs, jpeg_quality)):
        crop = crop.reduce(int(downscale)) if resample == "box" else crop.resize((small, small), Image.BICUBIC)
        batch[k] = np.asarray(crop, dtype=np.uint8)[:side, :side].transpose(2, 0, 1)
    return batch, len(ys), len(xs), t
