#!/usr/bin/env python3
"""Fuzz the EXIF readers: the exif reader (camera, exposure, GPS, Software) and the generators
reader (UserComment, Make/Model, MakerNote), both on our one IFD walker (tiff_ifd), on the same file.

Input: byte 0 picks the container, the rest is
  0: a whole file (TIFF, JPEG, HEIF … as found on disk; the reader looks for the EXIF block itself)
  1: an EXIF block (TIFF header + IFDs) in a JPEG APP1 "Exif\\0\\0" segment
  2: an EXIF block in a PNG eXIf chunk
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzzlib as fl  # noqa: E402

TARGETS = ("fakescope_cli",)
MAX_LEN = 65536
MODES = 3

exif: Any = None
generators: Any = None


def load() -> None:
    global exif, generators
    from fakescope_cli.evidence import exif as exif_mod
    from fakescope_cli.evidence import generators as gen_mod

    exif, generators = exif_mod, gen_mod


def build(data: bytes) -> bytes:
    mode, body = (data[0] % MODES, data[1:]) if data else (0, b"")
    if mode == 1:
        return fl.jpeg_file([(0xE1, b"Exif\0\0" + body)])
    if mode == 2:
        return fl.png_file([fl.png_chunk(b"eXIf", body)])
    return body


def one_input(data: bytes) -> None:
    if exif is None:
        load()
    m = fl.media(build(data))
    fl.run_reader(exif.read, m, "exif")
    fl.run_reader(generators.read, m, "generator")


def seeds() -> Iterator[tuple[str, bytes]]:
    from PIL import Image

    for path in fl.fixture_files("exif-samples/**/*.jp*g", "exif-samples/tiff/*.tiff", "exif-samples/heic/*.heif",
                                 "provenance/sd-parsers/*.jpg", max_size=MAX_LEN - 1):
        yield f"raw-{path.stem}", b"\0" + path.read_bytes()
    blobs: list[tuple[str, bytes]] = []
    for path in fl.fixture_files("exif-samples/jpg/**/*.jp*g", "provenance/**/*.jpg"):
        for marker, payload in fl.jpeg_segments(path.read_bytes()):
            if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
                blobs.append((path.stem, payload[6:]))
                break
    # Generator-style EXIF as Fooocus and ComfyUI's WebP saver write it, from the fixtures' text.
    fooocus = Image.open(fl.FIXTURES / "provenance/sd-parsers/fooocus1_cropped.png").info["parameters"]
    ex = Image.Exif()
    ex[0x0131] = "Fooocus v2.5.5"
    ex[0x927C] = "fooocus"
    ex[0x9286] = fooocus
    blobs.append(("fooocus", ex.tobytes()[6:] if ex.tobytes().startswith(b"Exif") else ex.tobytes()))
    comfy = Image.open(fl.FIXTURES / "provenance/sd-parsers/unclip_2pass_cropped.png").info
    ex = Image.Exif()
    ex[0x0110] = "prompt:" + comfy["prompt"]
    ex[0x010F] = "workflow:" + comfy["workflow"]
    raw = ex.tobytes()
    blobs.append(("comfy-webp", raw[6:] if raw.startswith(b"Exif") else raw))
    for name, blob in blobs:
        if len(blob) < MAX_LEN - 1:
            yield f"app1-{name}", b"\1" + blob
    for name, blob in blobs[:8]:
        if len(blob) < MAX_LEN - 1:
            yield f"exif-png-{name}", b"\2" + blob


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
