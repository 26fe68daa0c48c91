#!/usr/bin/env python3
"""Fuzz the invisible-watermark reader: its decoder on pixel arrays of fuzzed size and content,
and read() on PNGs made of those pixels and on raw files.

Input: byte 0 picks the mode (0: decode_bits / block_bits on the array, 1: read() on a PNG of
the array, 2: read() on the rest as a raw file). For modes 0 and 1: height and width (2 bytes
each, 0-1024), channels (3 or 4), n_bits (1-256) and the variant, then pixel content that is
tiled to fill the array.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzzlib as fl  # noqa: E402

TARGETS = ("fakescope_cli",)
MAX_LEN = 200_000  # a 256x256 RGB seed (the smallest image the SD encoder marks) is 196,608 bytes
MAX_SIDE = 1024

wm: Any = None
np: Any = None


def load() -> None:
    global wm, np
    import numpy

    from fakescope_cli.evidence import watermark as wm_mod

    wm, np = wm_mod, numpy


def one_input(data: bytes) -> None:
    if wm is None:
        load()
    cur = fl.Cursor(data)
    mode = cur.u8() % 3
    if mode == 2:
        fl.run_reader(wm.read, fl.media(cur.rest()), "watermark")
        return
    height, width = cur.u16() % (MAX_SIDE + 1), cur.u16() % (MAX_SIDE + 1)
    channels = 3 + cur.u8() % 2
    n_bits = cur.u8() + 1
    variant = wm.VARIANTS[cur.u8() % len(wm.VARIANTS)]
    content = cur.rest()
    if mode == 1:
        png = fl.png_file(mode="RGBA" if channels == 4 else "RGB", width=max(width, 1),
                          height=max(height, 1), pixels=content)
        fl.run_reader(wm.read, fl.media(png), "watermark")
        return
    size = height * width * channels
    flat = np.frombuffer(content, dtype=np.uint8) if content else np.zeros(1, dtype=np.uint8)
    arr = np.resize(flat, size).reshape(height, width, channels)
    bits = wm.decode_bits(arr, n_bits, variant)
    if bits.dtype != np.uint8 or bits.shape != (n_bits,) or not np.isin(bits, (0, 1)).all():
        raise fl.Finding(f"decode_bits gave {bits.dtype} {bits.shape} {np.unique(bits)}")
    reads = wm.block_bits(arr, wm.VARIANTS)
    expected = (height // 8) * (width // 8)
    if any(r.shape != (expected,) for r in reads.values()):
        raise fl.Finding(f"block_bits sizes {[r.shape for r in reads.values()]}, expected {expected}")


def seeds() -> Iterator[tuple[str, bytes]]:
    import struct

    import numpy
    from PIL import Image

    def head(mode: int, h: int, w: int, channels: int = 3, n_bits: int = 48, variant: int = 0) -> bytes:
        return bytes((mode,)) + struct.pack(">HH", h, w) + bytes((channels - 3, n_bits - 1, variant))

    photo = Image.open(fl.FIXTURES / "exif-samples/jpg/Canon_40D.jpg").convert("RGB")
    for h, w in ((8, 8), (64, 48), (255, 257), (1, 1000)):
        content = photo.resize((w, h)).tobytes()[:MAX_LEN - 16]
        yield f"decode-{h}x{w}", head(0, h, w) + content
        yield f"png-{h}x{w}", head(1, h, w, variant=1) + content
    # Really marked images (the SD 1.x/2.x path) when the encoder package is installed; this
    # fixture has enough texture for the embedding to survive (smooth thumbnails do not).
    textured = Image.open(fl.FIXTURES / "exif-samples/jpg/Sony_HDR-HC3.jpg").convert("RGB").resize((256, 256))
    crop = numpy.ascontiguousarray(numpy.asarray(textured))
    try:
        import cv2
        import imwatermark
    except ImportError:
        imwatermark = None
    for text in (b"SDV2", b"StableDiffusionV1"):
        marked = crop
        if imwatermark is not None:
            enc = imwatermark.WatermarkEncoder()
            enc.set_watermark("bytes", text)
            bgr = enc.encode(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), "dwtDct")
            marked = numpy.ascontiguousarray(bgr[:, :, ::-1])
        tag = text.decode()
        yield f"png-marked-{tag}", head(1, 256, 256, n_bits=len(text) * 8) + marked.tobytes()
        yield f"decode-marked-{tag}", head(0, 256, 256, n_bits=len(text) * 8) + marked.tobytes()
    for path in fl.fixture_files("exif-samples/jpg/*.jpg", "provenance/sd-parsers/*.png", max_size=30000):
        yield f"raw-{path.stem}", b"\2" + path.read_bytes()


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
