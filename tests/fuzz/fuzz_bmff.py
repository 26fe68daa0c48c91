#!/usr/bin/env python3
"""Fuzz the ISO-BMFF box walker (fakescope_cli/bmff.py) and what the container tags become.

Input: an MP4/MOV/HEIF-like file. bmff.read must never raise, must stay within its bounds (tags,
XMP packet sizes, boxes visited) and give JSON-ready facts; the container-tag evidence built from
the tags it found must keep the EvidenceItem contract. Decoding (FFmpeg, not Python) is not fuzzed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fuzzlib as fl  # noqa: E402

TARGETS = ("fakescope_cli",)
MAX_LEN = 65536

bmff: Any = None
tag_evidence: Any = None


def load() -> None:
    global bmff, tag_evidence
    from fakescope_cli import bmff as walker
    from fakescope_cli.video_evidence import tag_evidence as from_tags

    bmff, tag_evidence = walker, from_tags


def one_input(data: bytes) -> None:
    if bmff is None:
        load()
    budget = bmff.WalkBudget()
    visited = sum(1 for _ in bmff.walk(data, budget))
    if visited > bmff.MAX_BOXES:
        raise fl.Finding(f"walked {visited} boxes, over MAX_BOXES")
    info = bmff.read(data)
    if len(info.tags) > bmff.MAX_TAGS or any(len(v) > bmff.MAX_TEXT for v in info.tags.values()):
        raise fl.Finding("tags over their bounds")
    if any(len(p) > bmff.MAX_XMP for p in info.xmp):
        raise fl.Finding("an XMP packet over MAX_XMP")
    for track in info.tracks:
        for value in (track.width, track.height):
            if value is not None and not 0 <= value < 1 << 32:
                raise fl.Finding(f"track size {value}")
    try:
        json.dumps(bmff.summary(info), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise fl.Finding(f"summary not JSON-ready: {exc}") from None
    fl.check_items(tag_evidence(info.tags), "container")


def _box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def seeds() -> Iterator[tuple[str, bytes]]:
    # HEIF/AVIF fixtures are ISO-BMFF too.
    for path in fl.fixture_files("**/*.heic", "**/*.heif", "**/*.avif", max_size=MAX_LEN):
        yield f"raw-{path.stem}", path.read_bytes()
    # A small QuickTime header with the metadata layouts the walker reads (keys/ilst, udta text, XMP).
    keys = _box(b"keys", b"\0\0\0\0" + (2).to_bytes(4, "big")
                + _box(b"mdta", b"com.apple.quicktime.make") + _box(b"mdta", b"com.apple.quicktime.model"))
    data_box = lambda text: _box(b"data", (1).to_bytes(4, "big") + b"\0\0\0\0" + text)  # noqa: E731
    ilst = _box(b"ilst", _box((1).to_bytes(4, "big"), data_box(b"Apple"))
                + _box((2).to_bytes(4, "big"), data_box(b"iPhone 15 Pro")))
    meta = _box(b"meta", _box(b"hdlr", b"\0" * 8 + b"mdta" + b"\0" * 12) + keys + ilst)
    udta = _box(b"udta", _box(b"\xa9too", (9).to_bytes(2, "big") + b"\x15\xc7" + b"Lavf61.1.")
                + _box(b"XMP_", b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>") + meta)
    mvhd = _box(b"mvhd", b"\0" * 12 + (1000).to_bytes(4, "big") + (5000).to_bytes(4, "big") + b"\0" * 80)
    entry = _box(b"avc1", b"\0" * 24 + (320).to_bytes(2, "big") + (240).to_bytes(2, "big") + b"\0" * 50)
    stsd = _box(b"stsd", b"\0\0\0\0" + (1).to_bytes(4, "big") + entry)
    trak = _box(b"trak", _box(b"tkhd", b"\0" * 84) + _box(b"mdia", _box(b"hdlr", b"\0" * 8 + b"vide" + b"\0" * 12)
                                                          + _box(b"minf", _box(b"stbl", stsd))))
    xmp_uuid = (24 + 20).to_bytes(4, "big") + b"uuid" + bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC") + b"<x:xmpmeta/>" + b"\0" * 8
    yield "quicktime-metadata", _box(b"ftyp", b"qt  \0\0\0\0qt  ") + _box(b"moov", mvhd + trak + udta) + xmp_uuid
    yield "largesize-and-zero", (1).to_bytes(4, "big") + b"ftyp" + (32).to_bytes(8, "big") + b"isom" * 4 + b"\0\0\0\0mdat"
    try:  # a real muxer's output, when PyAV is installed
        import io

        import av
        import numpy as np

        for fmt in ("mp4", "mov"):
            buf = io.BytesIO()
            out = av.open(buf, "w", format=fmt)
            stream = out.add_stream("mpeg4", rate=10)
            stream.width, stream.height = 32, 32
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
            out.close()
            yield f"muxed-{fmt}", buf.getvalue()
    except ImportError:
        pass


if __name__ == "__main__":
    fl.main(sys.modules[__name__])
