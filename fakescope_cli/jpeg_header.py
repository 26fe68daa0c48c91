"""A JPEG's frame size and the metadata segments fakescope reads, without Pillow.

Why: a metadata-only scan (`--no-pixels`) of a JPEG needs its size and three segments (EXIF, XMP,
comment), and importing Pillow for them (PIL.Image, the JPEG plugin, and the TIFF plugin it loads
for any EXIF block) is ~15 ms of a one-file scan. The walk is deliberately narrow: any JPEG it is
not sure of (junk or fill bytes between segments, an unexpected marker, a truncated or second frame
header, a frame, quantization table or JFIF/Adobe segment Pillow would refuse, a multi-picture
index) gets `None`, and Media opens it with Pillow as always, so an unusual file reads as before.
One difference is left on purpose: Pillow also reads the DPI from EXIF while opening a JPEG and
refuses the file when that tag is of a shape it cannot read (an empty XResolution); the walk does not
read that tag, so a metadata-only scan reads such a file where a pixel scan calls it corrupt. `info` holds the keys Pillow's JPEG plugin gives these
segments, with the same values (tests/test_jpeg_header.py compares both on every fixture JPEG);
anything else asked of the header opens the file with Pillow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_TABLES = frozenset({0xC4, 0xCC, 0xDD})  # DHT, DAC, DRI (DQT is checked as Pillow does)
_APP0, _APP1, _APP2, _APP14, _DQT, _COM, _SOS = 0xE0, 0xE1, 0xE2, 0xEE, 0xDB, 0xFE, 0xDA
_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
_LAYERS = (1, 3, 4)  # what Pillow's JPEG plugin opens (L, RGB, CMYK)


class JpegHeader:
    """`size` and `info` of a JPEG as Pillow's header would give them; other attributes come from
    the Pillow image, opened on first use."""

    format = "JPEG"

    def __init__(self, size: tuple[int, int], info: dict[str, Any], open_with_pillow: Callable[[], Any]) -> None:
        self.size = size
        self.info = info
        self._open_with_pillow = open_with_pillow
        self._pillow: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_pillow", "_open_with_pillow"):
            raise AttributeError(name)
        if self._pillow is None:
            self._pillow = self._open_with_pillow()
        return getattr(self._pillow, name)


def read_jpeg_header(data: bytes, open_with_pillow: Callable[[], Any]) -> JpegHeader | None:
    """The header of a plain JPEG, or None for one to leave to Pillow."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    info: dict[str, Any] = {}
    size: tuple[int, int] | None = None
    pos, end = 2, len(data)
    while True:
        if pos + 4 > end or data[pos] != 0xFF:
            return None  # truncated before the scan, or junk between segments
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > end:
            return None  # Pillow reads the scan header too: a truncated one is refused
        if marker == _SOS:
            break
        segment = data[pos + 4 : pos + 2 + length]
        if marker in _SOF:
            if size is not None or len(segment) < 6 or segment[0] != 8 or segment[5] not in _LAYERS:
                return None
            size = (int.from_bytes(segment[3:5], "big"), int.from_bytes(segment[1:3], "big"))
            if marker in _PROGRESSIVE:
                info["progressive"] = info["progression"] = 1
        elif marker == _APP1 and segment.startswith(b"Exif\0\0"):
            info["exif"] = info["exif"] + segment[6:] if "exif" in info else segment
        elif marker == _APP1 and segment.startswith(_XMP_PREFIX):
            info["xmp"] = segment.split(b"\x00", 1)[1]
        elif marker == _COM:
            info["comment"] = segment
        elif marker == _DQT:
            if not _quantization_tables_whole(segment):
                return None  # Pillow refuses the header ("bad quantization table marker")
        elif marker == _APP2 and segment.startswith(b"MPF\0"):
            return None  # a multi-picture file: Pillow may open it as MPO, or refuse a damaged index
        elif (marker == _APP0 and segment.startswith(b"JFIF") or marker == _APP14 and segment.startswith(b"Adobe")) \
                and len(segment) < 7:
            return None  # too short for the version Pillow reads from it: Pillow refuses the header
        elif not (0xE0 <= marker <= 0xEF or marker in _TABLES):
            return None  # a marker this walk does not expect before the scan
        pos += 2 + length
    if size is None or 0 in size:
        return None
    return JpegHeader(size, info, open_with_pillow)


def _quantization_tables_whole(segment: bytes) -> bool:
    """Does every table of a DQT segment have its 64 entries (1 or 2 bytes each, by its precision)?"""
    pos = 0
    while pos < len(segment):
        pos += 1 + (64 if segment[pos] < 16 else 128)
        if pos > len(segment):
            return False
    return True
