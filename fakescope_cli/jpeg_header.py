"""A JPEG's frame size and the metadata segments fakescope reads, without Pillow.

Why: a metadata-only scan (`--no-pixels`) of a JPEG needs its size and three segments (EXIF, XMP,
comment), and importing Pillow for them (PIL.Image, the JPEG plugin, and the TIFF plugin it loads
for any EXIF block) is ~15 ms of a one-file scan. The walk is deliberately narrow: any JPEG it is
not sure of (junk or fill bytes between segments, an unexpected marker, a truncated or second frame
header, a frame Pillow would refuse) gets `None`, and Media opens it with Pillow as always, so an
unusual file reads exactly as before. `info` holds the keys Pillow's JPEG plugin gives these
segments, with the same values (tests/test_jpeg_header.py compares both on every fixture JPEG);
anything else asked of the header opens the file with Pillow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_TABLES = frozenset({0xC4, 0xCC, 0xDB, 0xDD})  # DHT, DAC, DQT, DRI
_APP1, _COM, _SOS = 0xE1, 0xFE, 0xDA
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
        if marker == _SOS:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > end:
            return None
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
        elif not (0xE0 <= marker <= 0xEF or marker in _TABLES):
            return None  # a marker this walk does not expect before the scan
        pos += 2 + length
    if size is None or 0 in size:
        return None
    return JpegHeader(size, info, open_with_pillow)
