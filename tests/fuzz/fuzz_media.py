#!/usr/bin/env python3
"""Fuzz Media itself: format sniffing, the lazy Pillow header, info, and guarded pixel decoding.

Input: byte 0 holds flags (bit 0: pixels may be decoded), the rest is the file. InputError is an
accepted outcome everywhere; any other exception is a finding, as is a decoded image whose size
disagrees with the header or an rgb() that is not 8-bit RGB.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzzlib as fl  # noqa: E402

TARGETS = ("fakescope_cli", "PIL")
MAX_LEN = 65536

InputError: Any = None


def load() -> None:
    global InputError
    import PIL.Image  # noqa: F401  (imported lazily by Media; imported here to instrument it)

    from fakescope_cli import imageops  # noqa: F401
    from fakescope_cli.errors import InputError as error
    from fakescope_cli.media import _prepare_pillow

    for fmt in ("PNG", "HEIF"):
        _prepare_pillow(fmt)  # the PNG text limits and the HEIF/AVIF openers, as the first such file would
    InputError = error


def one_input(data: bytes) -> None:
    if InputError is None:
        load()
    allow = bool(data[:1]) and bool(data[0] & 1)
    m = fl.media(data[1:], allow_pixels=allow)
    _ = m.sha256, m.format, m.width, m.height
    info = m.info
    if not isinstance(info, dict):
        raise fl.Finding(f"info is {type(info).__name__}")
    if not allow and m.format == "JPEG":
        _walk_reads_as_pillow(data[1:])
    try:
        img = m.pixels()
    except InputError:
        return
    if not allow:
        raise fl.Finding("pixels() decoded with allow_pixels=False")
    try:
        rgb = m.rgb()
    except InputError:
        return
    if rgb.mode != "RGB" or rgb.size != img.size or img.size != (m.width, m.height):
        raise fl.Finding(f"rgb() gave {rgb.mode} {rgb.size} for {img.mode} {img.size}, header {m.width}x{m.height}")


def _walk_reads_as_pillow(jpeg: bytes) -> None:
    """A JPEG that jpeg_header's walk reads (metadata-only scans) Pillow reads too, with the same size
    and segments; the one divergence jpeg_header.py owns to (Pillow's EXIF DPI reading) excepted."""
    import io
    import traceback
    import warnings

    from PIL import JpegImagePlugin

    from fakescope_cli.jpeg_header import read_jpeg_header

    header = read_jpeg_header(jpeg, lambda: None)
    if header is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = JpegImagePlugin.jpeg_factory(io.BytesIO(jpeg))
    except Exception as exc:  # noqa: BLE001 - any refusal is compared with the walk's acceptance
        if any(frame.name == "_read_dpi_from_exif" for frame in traceback.extract_tb(exc.__traceback__)):
            return
        raise fl.Finding(f"the walk read a JPEG Pillow refuses: {type(exc).__name__}: {exc}") from None
    if img.size != header.size:
        raise fl.Finding(f"walk size {header.size}, Pillow {img.size}")
    for key in ("exif", "xmp", "comment", "progressive", "progression"):
        if img.info.get(key) != header.info.get(key):
            raise fl.Finding(f"walk and Pillow disagree on {key}")


def seeds() -> Iterator[tuple[str, bytes]]:
    import io

    from PIL import Image

    for path in fl.fixture_files("exif-samples/**/*", "provenance/**/*", max_size=MAX_LEN - 1):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".tiff", ".heif", ".heic"):
            yield f"raw-{path.stem}", b"\1" + path.read_bytes()
        if path.suffix.lower() in (".jpg", ".jpeg"):
            yield f"meta-{path.stem}", b"\0" + path.read_bytes()  # metadata only: jpeg_header's walk
    # The other formats Media names, converted at run time from a fixture photo.
    photo = Image.open(fl.FIXTURES / "exif-samples/jpg/Canon_40D.jpg").convert("RGB").resize((24, 16))
    variants = (("GIF", {}), ("WEBP", {"lossless": True}), ("WEBP", {"quality": 50}), ("BMP", {}),
                ("TIFF", {"compression": "tiff_lzw"}), ("PNG", {"bits": 4}), ("AVIF", {}))
    for n, (fmt, opts) in enumerate(variants):
        for mode in ("RGB", "RGBA", "L", "I;16", "CMYK", "P"):
            buf = io.BytesIO()
            try:
                photo.convert(mode).save(buf, fmt, **opts)
            except (OSError, ValueError, KeyError):
                continue  # not every format stores every mode
            yield f"conv-{n}-{fmt.lower()}-{mode.replace(';', '')}", b"\1" + buf.getvalue()


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
