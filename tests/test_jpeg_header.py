"""jpeg_header: a metadata-only scan reads a plain JPEG's size and segments without Pillow, and gets
what Pillow's header gives for them; anything the walk is not sure of goes to Pillow."""

from __future__ import annotations

import io
import os
import struct

import pytest
from PIL import Image

from fakescope_cli.jpeg_header import JpegHeader, read_jpeg_header
from fakescope_cli.media import Media, sniff_format
from tests.conftest import DATA, FIXTURES

KEYS = ("exif", "xmp", "comment", "progressive", "progression")


def _jpegs(root, limit: int | None = None) -> list[str]:
    out = []
    for folder, _dirs, names in sorted(os.walk(root)):
        for name in sorted(names):
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                if sniff_format(fh.read(64)) == "JPEG":
                    out.append(path)
    return out[:limit]


def _no_pillow():
    raise AssertionError("the walk asked Pillow")


@pytest.mark.parametrize("root, limit", [(FIXTURES, None), (DATA, 300)], ids=["fixtures", "pool"])
def test_every_walked_jpeg_reads_as_pillow_reads_it(root, limit):
    paths = _jpegs(root, limit)
    walked = 0
    for path in paths:
        data = open(path, "rb").read()
        header = read_jpeg_header(data, _no_pillow)
        if header is None:
            continue
        walked += 1
        with Image.open(io.BytesIO(data)) as img:
            assert header.size == img.size, path
            for key in KEYS:
                assert header.info.get(key) == img.info.get(key), (path, key)
    # The walk is meant for ordinary files: nearly all of them (a regression to "always Pillow" fails here).
    assert walked >= 0.9 * len(paths) and len(paths) >= 30, (walked, len(paths))


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg(*segments: bytes) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (5, 3), "red").save(buf, "JPEG")
    plain = buf.getvalue()
    return plain[:2] + b"".join(segments) + plain[2:]


def test_exif_xmp_and_comment_segments_as_pillow_gives_them():
    exif = b"Exif\0\0" + b"II*\0\x08\0\0\0\0\0"
    xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>made by a test</x:xmpmeta>"
    data = _jpeg(_segment(0xE1, exif), _segment(0xE1, xmp), _segment(0xFE, b"a comment"))
    header = read_jpeg_header(data, _no_pillow)
    assert isinstance(header, JpegHeader) and header.size == (5, 3)
    assert header.info["exif"] == exif
    assert header.info["xmp"] == b"<x:xmpmeta>made by a test</x:xmpmeta>"
    assert header.info["comment"] == b"a comment"


@pytest.mark.parametrize("damage", ["truncated", "junk between segments", "bad segment length", "no frame header",
                                    "two frame headers", "12-bit frame", "zero height", "unexpected marker",
                                    "short quantization table", "short JFIF", "short Adobe", "multi-picture index",
                                    "truncated scan header"])
def test_anything_unusual_is_left_to_pillow(damage):
    plain = _jpeg()
    sof = plain.index(b"\xff\xc0")
    sos = plain.index(b"\xff\xda")
    cases = {
        "truncated": plain[: sof + 6],
        "truncated scan header": plain[: sos + 6],
        "junk between segments": plain[:2] + b"\x00\x00" + plain[2:],
        "bad segment length": plain[:2] + b"\xff\xe1\x00\x01" + plain[2:],
        "no frame header": plain[:sof] + plain[sof + 2 + struct.unpack(">H", plain[sof + 2 : sof + 4])[0]:],
        "two frame headers": plain[:sof] + plain[sof : sof + 19] + plain[sof:],
        "12-bit frame": plain[: sof + 4] + b"\x0c" + plain[sof + 5 :],
        "zero height": plain[: sof + 5] + b"\x00\x00" + plain[sof + 7 :],
        "unexpected marker": plain[:2] + _segment(0xF0, b"JPG0") + plain[2:],
        "short quantization table": plain[:2] + _segment(0xDB, b"\x00" + bytes(63)) + plain[2:],
        "short JFIF": plain[:2] + _segment(0xE0, b"JFIF\0") + plain[2:],
        "short Adobe": plain[:2] + _segment(0xEE, b"Adobe") + plain[2:],
        "multi-picture index": plain[:2] + _segment(0xE2, b"MPF\0II*\0\x08\0\0\0") + plain[2:],
    }
    assert read_jpeg_header(cases[damage], _no_pillow) is None


@pytest.mark.parametrize("segment", [b"\x00" + bytes(63), b"JFIF\0", b"Adobe"], ids=["dqt", "jfif", "adobe"])
def test_what_the_walk_declines_pillow_refuses_too(segment):
    """The segments declined above are ones Pillow's header parse refuses: not a lost optimisation but
    the same error record as before."""
    from PIL import UnidentifiedImageError

    marker = {b"\x00": 0xDB, b"J": 0xE0, b"A": 0xEE}[segment[:1]]
    plain = _jpeg()
    with pytest.raises((UnidentifiedImageError, SyntaxError, OSError)):
        Image.open(io.BytesIO(plain[:2] + _segment(marker, segment) + plain[2:]))


def test_other_attributes_come_from_pillow_opened_once():
    opened = []

    def open_with_pillow():
        opened.append(1)
        return Image.open(io.BytesIO(data))

    data = _jpeg()
    header = read_jpeg_header(data, open_with_pillow)
    assert header is not None and opened == []
    assert (header.mode, header.format) == ("RGB", "JPEG")
    assert header.getexif() is not None
    assert opened == [1]


def test_only_a_metadata_scan_takes_the_walk(tmp_path):
    path = tmp_path / "plain.jpg"
    path.write_bytes(_jpeg(_segment(0xFE, b"hello")))
    metadata_only = Media.open(path, allow_pixels=False)
    assert isinstance(metadata_only.header, JpegHeader)
    assert (metadata_only.width, metadata_only.height, metadata_only.info) == (5, 3, {"comment": b"hello"})
    with_pixels = Media.open(path)
    assert not isinstance(with_pixels.header, JpegHeader) and with_pixels.info["comment"] == b"hello"
