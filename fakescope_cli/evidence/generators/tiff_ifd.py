"""Our one TIFF/EXIF IFD walker: IFD0, the Exif sub-IFD (0x8769) and the GPS IFD (0x8825).

Both EXIF readers use it: the exif reader (camera, lens, exposure, GPS presence, Software) and
the generators reader (the text tags generators write). It reads nothing else (no thumbnail IFD,
no MakerNote parsing), and it never raises on hostile bytes: every offset and count is checked
against the data before it is used, an IFD's entries are capped, each IFD is read at most once
(a pointer back to one already read is a loop), and what it skips it says in `warnings`.
Field types and layout: TIFF 6.0 §2 and EXIF 2.32 §4.6.2.
"""

from __future__ import annotations

import struct

MAX_EXIF_VALUE = 4 << 20  # bytes of one EXIF value (WebP EXIF may hold whole workflows)
MAX_ENTRIES = 1024  # entries read per IFD; cameras write well under 100
MAX_WARNINGS = 5

# TIFF field types: (bytes per value, struct code of one value, or None for text/opaque bytes).
ASCII, BYTE, UNDEFINED = 2, 1, 7
_TYPES: dict[int, tuple[int, str | None]] = {
    1: (1, "B"),  # BYTE
    2: (1, None),  # ASCII
    3: (2, "H"),  # SHORT
    4: (4, "I"),  # LONG
    5: (8, "II"),  # RATIONAL
    6: (1, "b"),  # SBYTE
    7: (1, None),  # UNDEFINED
    8: (2, "h"),  # SSHORT
    9: (4, "i"),  # SLONG
    10: (8, "ii"),  # SRATIONAL
    11: (4, "f"),  # FLOAT
    12: (8, "d"),  # DOUBLE
    13: (4, "I"),  # IFD (TIFF Technical Note 1)
}
_POINTER_TYPES = (3, 4, 13)  # SHORT, LONG, IFD: what writers use for sub-IFD offsets
EXIF_IFD_POINTER = 0x8769
GPS_IFD_POINTER = 0x8825

_IFD0_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software"}
_EXIF_TAGS = {0x9286: "UserComment", 0x927C: "MakerNote"}
# ComfyUI's WebP saver counts downward from Make for each extra_pnginfo key.
COMFY_EXIF_TAGS = {0x010D: "DocumentName", 0x010C: "Tag 0x010C", 0x010B: "Tag 0x010B"}


class Entry:
    """One IFD entry: its value is `size` bytes at `start`, all inside the data."""

    __slots__ = ("kind", "count", "start", "size", "cut")

    def __init__(self, kind: int, count: int, start: int, size: int, cut: bool = False) -> None:
        self.kind, self.count, self.start, self.size = kind, count, start, size
        self.cut = cut  # its declared size ran past the data (or MAX_EXIF_VALUE): only what fit

    def __repr__(self) -> str:
        cut = ", cut=True" if self.cut else ""
        return f"Entry(kind={self.kind}, count={self.count}, start={self.start}, size={self.size}{cut})"


class Ifds:
    """The entries of IFD0, the Exif IFD and the GPS IFD (tag -> Entry; a repeated tag: the last).

    Plain classes, not dataclasses: this module loads on every scan, and a dataclass costs ~0.3 ms
    to build at import."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.order = "<"  # struct byte order: "<" for "II", ">" for "MM"
        self.ifd0: dict[int, Entry] = {}
        self.exif: dict[int, Entry] = {}
        self.gps: dict[int, Entry] = {}
        self.warnings: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.ifd0 or self.exif or self.gps)

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS and message not in self.warnings:
            self.warnings.append(message)

    def raw(self, entry: Entry) -> bytes:
        return self.data[entry.start : entry.start + entry.size]

    def text(self, entry: Entry | None) -> str | None:
        """An ASCII (or BYTE/UNDEFINED) value up to its first NUL; None for numeric types."""
        if entry is None or entry.kind not in (ASCII, BYTE, UNDEFINED):
            return None
        raw = self.raw(entry).split(b"\0", 1)[0]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.warn("an EXIF text value is not valid UTF-8")
            return raw.decode("utf-8", "replace")

    def number(self, entry: Entry | None) -> float | None:
        """The first value of a numeric entry; None for text, an empty or cut value (its count was
        damaged, so where its value lies is a guess) or a zero denominator."""
        if entry is None or entry.count < 1 or entry.cut:
            return None
        code = _TYPES[entry.kind][1]
        if code is None:
            return None
        values = struct.unpack_from(self.order + code, self.data, entry.start)
        if len(values) == 2:
            return values[0] / values[1] if values[1] else None
        return float(values[0])


def read_ifds(blob: bytes) -> Ifds:
    """Walk the TIFF structure at the start of `blob` ("Exif\\0\\0" + TIFF, or bare TIFF)."""
    if blob.startswith(b"Exif\0\0"):
        blob = blob[6:]
    ifds = Ifds(blob)
    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        ifds.warn("the EXIF data does not start with a TIFF header")
        return ifds
    ifds.order = "<" if blob[:2] == b"II" else ">"
    visited: set[int] = set()
    ifds.ifd0 = _read_ifd(ifds, _u32(ifds, 4), "IFD0", visited)
    exif_at = _pointer(ifds, ifds.ifd0, EXIF_IFD_POINTER, "Exif")
    if exif_at is not None:
        ifds.exif = _read_ifd(ifds, exif_at, "Exif", visited)
    gps_at = _pointer(ifds, ifds.ifd0, GPS_IFD_POINTER, "GPS")
    if gps_at is None:
        gps_at = _pointer(ifds, ifds.exif, GPS_IFD_POINTER, "GPS")
    if gps_at is not None:
        ifds.gps = _read_ifd(ifds, gps_at, "GPS", visited)
    return ifds


def _u32(ifds: Ifds, at: int) -> int:
    return int(struct.unpack_from(ifds.order + "I", ifds.data, at)[0])


def _pointer(ifds: Ifds, entries: dict[int, Entry], tag: int, name: str) -> int | None:
    entry = entries.get(tag)
    if entry is None:
        return None
    if entry.kind not in _POINTER_TYPES or entry.count < 1 or entry.cut:
        ifds.warn(f"the {name} IFD pointer holds no usable offset")
        return None
    return int(ifds.number(entry) or 0)


def _read_ifd(ifds: Ifds, offset: int, name: str, visited: set[int]) -> dict[int, Entry]:
    data, order = ifds.data, ifds.order
    if offset in visited:
        ifds.warn(f"the {name} IFD points back to an IFD already read (a loop)")
        return {}
    visited.add(offset)
    if offset < 8 or offset + 2 > len(data):
        ifds.warn(f"the {name} IFD offset points past the end of the EXIF data")
        return {}
    declared = struct.unpack_from(order + "H", data, offset)[0]
    fit = (len(data) - offset - 2) // 12
    if declared > fit:
        ifds.warn(f"the {name} IFD claims {declared} entries; only {fit} fit in the EXIF data")
    elif declared > MAX_ENTRIES:
        ifds.warn(f"the {name} IFD claims {declared} entries; only the first {MAX_ENTRIES} are read")
    entries: dict[int, Entry] = {}
    for index in range(min(declared, fit, MAX_ENTRIES)):
        at = offset + 2 + 12 * index
        tag, kind, count = struct.unpack_from(order + "HHI", data, at)
        if kind not in _TYPES:
            continue  # unknown type: the entry cannot be sized, so it is skipped (TIFF 6.0 §2)
        unit = _TYPES[kind][0]
        size = unit * count
        start = at + 8 if size <= 4 else _u32(ifds, at + 8)
        if start >= len(data) and size:
            ifds.warn(f"{name} IFD entry 0x{tag:04X} points past the end of the EXIF data")
            continue
        # A value running past the end (a damaged count, a cut segment) keeps the whole values
        # that are there, as exiftool and exifread keep a damaged string; `cut` marks it.
        room = min(len(data) - start, MAX_EXIF_VALUE) // unit * unit
        if size > room:
            ifds.warn(f"{name} IFD entry 0x{tag:04X} claims {size} bytes; only {room} are read")
        entries[tag] = Entry(kind, min(size, room) // unit, start, min(size, room), cut=size > room)
    return entries


def tiff_fields(blob: bytes) -> tuple[dict[str, bytes], str]:
    """The raw bytes of the few text tags generators use, from IFD0 and the Exif IFD.

    Fooocus puts UserComment and MakerNote in IFD0 (Pillow's top level), so both are looked at.
    """
    ifds = read_ifds(blob)
    out: dict[str, bytes] = {}
    for entries, wanted in (
        (ifds.ifd0, {**_IFD0_TAGS, **COMFY_EXIF_TAGS, **_EXIF_TAGS}),
        (ifds.exif, _EXIF_TAGS),
    ):
        for tag, name in wanted.items():
            if tag in entries and not entries[tag].cut:  # a cut-short text or JSON is no metadata
                out[name] = ifds.raw(entries[tag])
    return out, ifds.order


def jpeg_raw_exif(data: bytes) -> bytes | None:
    """The TIFF block of a JPEG APP1 segment that holds EXIF under a header Pillow does not take
    ("Exif\\0\\xff", "Exif\\0", "exif\\0\\0" …: exiftool reads these with a warning). Walks the header
    segments up to the image data; None when there is no such segment."""
    pos, n = 2, len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):
            return None
        if marker == 0xFF:
            pos += 1
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > n or end <= pos + 3:
            return None
        if marker == 0xE1 and data[pos + 4 : pos + 8].lower() == b"exif":
            for start in range(pos + 8, min(pos + 12, end - 8)):
                if data[start : start + 4] in (b"II*\0", b"MM\0*"):
                    return data[start:end]
        pos = end
    return None
