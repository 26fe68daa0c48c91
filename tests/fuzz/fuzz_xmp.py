#!/usr/bin/env python3
"""Fuzz the XMP reader: packets handed over by Pillow and packets found by its raw byte scan.

Input: byte 0 picks the container, the rest is
  0: an XMP packet in a JPEG APP1 "http://ns.adobe.com/xap/1.0/" segment
  1: an XMP packet in a PNG iTXt "XML:com.adobe.xmp" chunk
  2: bytes after a GIF signature that Pillow cannot parse, so the reader scans them raw
  3: a whole file (HEIF, JPEG … as on disk)
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
MODES = 4

xmp: Any = None


def load() -> None:
    global xmp
    import xml.etree.ElementTree  # noqa: F401  (imported lazily by the reader)

    from fakescope_cli.evidence import xmp as xmp_mod

    xmp = xmp_mod


def build(data: bytes) -> bytes:
    mode, body = (data[0] % MODES, data[1:]) if data else (3, b"")
    if mode == 0:
        return fl.jpeg_file([(0xE1, fl.XMP_APP1 + body)])
    if mode == 1:
        return fl.png_file([fl.png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + body)])
    if mode == 2:
        return b"GIF89a" + body
    return body


def one_input(data: bytes) -> None:
    if xmp is None:
        load()
    fl.run_reader(xmp.read, fl.media(build(data)), "xmp")


def _packets(data: bytes) -> list[bytes]:
    """XMP packets of a fixture: JPEG APP1 XMP segments, PNG iTXt, else the raw <x:xmpmeta> span."""
    found: list[bytes] = []
    if data.startswith(b"\xff\xd8"):
        found = [p[len(fl.XMP_APP1):] for m, p in fl.jpeg_segments(data) if m == 0xE1 and p.startswith(fl.XMP_APP1)]
    elif data.startswith(fl.PNG_SIG):
        for ctype, body in fl.png_chunks(data):
            if ctype == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\0"):
                found.append(body[len(b"XML:com.adobe.xmp\0") + 4 :])
    if not found:
        start = data.find(b"<x:xmpmeta")
        end = data.find(b"</x:xmpmeta>", start)
        if start >= 0 and end > start:
            found.append(data[start : end + 12])
    return found


def seeds() -> Iterator[tuple[str, bytes]]:
    for path in fl.fixture_files("exif-samples/**/*", "provenance/**/*"):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".heic", ".heif", ".tiff"):
            continue
        data = path.read_bytes()
        for n, packet in enumerate(_packets(data)[:2]):
            if len(packet) >= MAX_LEN - 1:
                continue
            yield f"jpeg-{path.stem}-{n}", b"\0" + packet
            yield f"png-{path.stem}-{n}", b"\1" + packet
            yield f"gif-{path.stem}-{n}", b"\2" + packet
        if _packets(data) and len(data) < MAX_LEN - 1:
            yield f"raw-{path.stem}", b"\3" + data
    # No fixture declares a source type or a provenance link; graft both onto a real packet so
    # the mutations start next to those branches.
    packet = _packets((fl.FIXTURES / "exif-samples/jpg/xmp/BlueSquare.jpg").read_bytes())[0]
    packet = packet.replace(
        b"<rdf:Description ",
        b'<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        b'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" '
        b'xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="self#jumbf=c2pa/urn:c2pa:1" ',
        1,
    )
    yield "jpeg-grafted", b"\0" + packet
    yield "gif-grafted", b"\2" + packet


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
