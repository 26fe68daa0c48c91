#!/usr/bin/env python3
"""Fuzz the generators reader over PNG text chunks (tEXt, zTXt, iTXt, before and after IDAT),
stealth pixels, and raw files.

Input: byte 0 holds flags (bit 0: raw file, bit 1: pixels may be decoded). A raw input is the
file itself after byte 0. Otherwise bytes 1-3 give the colour layout and the size (1-256 px a
side), then records follow, each [kind][length, 2 bytes big-endian][payload]:
  kind & 0x7f mod 6: 0 tEXt (payload = keyword NUL text), 1 zTXt (payload compressed by the
  harness), 2 iTXt, 3 compressed iTXt, 4 any chunk verbatim (4-byte type, then body),
  5 pixel bytes (tiled to the image size);
  kind & 0x80: the chunk goes after IDAT (read by the reader's own walker, not Pillow).
Every chunk gets a valid CRC so Pillow accepts the file and the reader sees the content.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzzlib as fl  # noqa: E402

TARGETS = ("fakescope_cli", "PIL.PngImagePlugin")
MAX_LEN = 80000
LAYOUTS = ("RGB", "RGBA", "LA", "L")
RAW, PIXELS = 1, 2
TEXT, ZTXT, ITXT, ITXT_Z, VERBATIM, PIXEL_DATA = range(6)
LATE = 0x80

generators: Any = None


def load() -> None:
    global generators
    from fakescope_cli.evidence import generators as gen_mod

    generators = gen_mod


def _text_chunk(kind: int, payload: bytes) -> bytes:
    key, _, text = payload.partition(b"\0")
    if kind == TEXT:
        return fl.png_chunk(b"tEXt", payload)
    if kind == ZTXT:
        return fl.png_chunk(b"zTXt", key + b"\0\0" + zlib.compress(text, 1))
    if kind == ITXT:
        return fl.png_chunk(b"iTXt", key + b"\0\0\0\0\0" + text)
    return fl.png_chunk(b"iTXt", key + b"\0\1\0\0\0" + zlib.compress(text, 1))


def build(data: bytes) -> tuple[bytes, bool]:
    cur = fl.Cursor(data)
    flags = cur.u8()
    if flags & RAW:
        return cur.rest(), bool(flags & PIXELS)
    mode = LAYOUTS[cur.u8() % len(LAYOUTS)]
    width, height = cur.u8() + 1, cur.u8() + 1
    before: list[bytes] = []
    after: list[bytes] = []
    pixels = b""
    while cur.left >= 3:
        kind = cur.u8()
        payload = cur.take(cur.u16())
        base = (kind & 0x7F) % 6
        if base == PIXEL_DATA:
            pixels = payload
            continue
        if base == VERBATIM:
            chunk = fl.png_chunk(payload[:4].ljust(4, b"\0"), payload[4:])
        else:
            chunk = _text_chunk(base, payload)
        (after if kind & LATE else before).append(chunk)
    png = fl.png_file(before, after, mode=mode, width=width, height=height, pixels=pixels)
    return png, bool(flags & PIXELS)


def one_input(data: bytes) -> None:
    if generators is None:
        load()
    blob, allow_pixels = build(data)
    fl.run_reader(generators.read, fl.media(blob, allow_pixels=allow_pixels), "generator")


def record(kind: int, payload: bytes) -> bytes:
    return bytes((kind,)) + struct.pack(">H", len(payload)) + payload


def seeds() -> Iterator[tuple[str, bytes]]:
    from PIL import Image

    for path in fl.fixture_files("provenance/**/*.png", "provenance/sd-parsers/*.jpg"):
        data = path.read_bytes()
        if len(data) < MAX_LEN - 1:
            yield f"raw-{path.stem}", bytes((RAW | PIXELS,)) + data
        if not data.startswith(fl.PNG_SIG):
            continue
        plain: list[bytes] = []
        verbatim: list[bytes] = []
        for ctype, body in fl.png_chunks(data):
            if ctype == b"tEXt":
                plain.append(record(TEXT, body))
            elif ctype == b"zTXt":
                key, _, rest = body.partition(b"\0")
                try:
                    plain.append(record(ZTXT, key + b"\0" + zlib.decompress(rest[1:])))
                except zlib.error:
                    pass
            elif ctype == b"iTXt":
                key, _, rest = body.partition(b"\0")
                _lang, _, rest = rest[2:].partition(b"\0")
                _tr, _, text = rest.partition(b"\0")
                if body[len(key) + 1] == 1:
                    try:
                        text = zlib.decompress(text)
                    except zlib.error:
                        continue
                plain.append(record(ITXT, key + b"\0" + text))
            else:
                continue
            if len(body) + 4 < 65536:
                verbatim.append(record(VERBATIM, ctype + body))
        if not plain:
            continue
        head = bytes((PIXELS, 0, 0, 0))
        yield f"text-{path.stem}", head + b"".join(plain)
        yield f"late-{path.stem}", head + b"".join(bytes((r[0] | LATE,)) + r[1:] for r in plain)
        yield f"verbatim-{path.stem}", head + b"".join(verbatim)
    # Stealth metadata lives in the pixels: give the harness the fixture's pixels as a record.
    img = Image.open(fl.FIXTURES / "provenance/sd-parsers/automatic1111_stealth.png")
    w, h = img.size
    head = bytes((PIXELS, LAYOUTS.index(img.mode), w - 1, h - 1))
    yield "stealth-alpha", head + record(PIXEL_DATA, img.tobytes())
    yield "stealth-rgb", bytes((PIXELS, 0, w - 1, h - 1)) + record(PIXEL_DATA, img.convert("RGB").tobytes())


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
