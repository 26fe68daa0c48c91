"""A tiny, bounded TIFF IFD walker for the few EXIF text tags generators write."""

from __future__ import annotations

import struct

MAX_EXIF_VALUE = 4 << 20  # bytes of one EXIF text value (WebP EXIF may hold whole workflows)
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_IFD0_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software"}
_EXIF_TAGS = {0x9286: "UserComment", 0x927C: "MakerNote"}
# ComfyUI's WebP saver counts downward from Make for each extra_pnginfo key.
COMFY_EXIF_TAGS = {0x010D: "DocumentName", 0x010C: "Tag 0x010C", 0x010B: "Tag 0x010B"}


def tiff_fields(blob: bytes) -> tuple[dict[str, bytes], str]:
    """The few text tags generators use, from EXIF bytes ("Exif\\0\\0" + TIFF or bare TIFF).

    A deliberately tiny, bounded walker: IFD0 and the Exif IFD only.
    """
    if blob.startswith(b"Exif\0\0"):
        blob = blob[6:]
    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        return {}, "<"
    order = "<" if blob[:2] == b"II" else ">"
    out: dict[str, bytes] = {}
    try:
        ifd0 = struct.unpack_from(order + "I", blob, 4)[0]
        # Fooocus puts UserComment and MakerNote in IFD0 (Pillow's top level), so look there too.
        exif_ifd = _walk_ifd(
            blob, order, ifd0, {**_IFD0_TAGS, **COMFY_EXIF_TAGS, **_EXIF_TAGS, 0x8769: "ExifIFD"}, out
        )
        if exif_ifd is not None:
            _walk_ifd(blob, order, exif_ifd, _EXIF_TAGS, out)
    except struct.error:
        pass
    return out, order


def _walk_ifd(
    blob: bytes, order: str, offset: int, wanted: dict[int, str], out: dict[str, bytes]
) -> int | None:
    if offset < 8 or offset + 2 > len(blob):
        return None
    count = min(struct.unpack_from(order + "H", blob, offset)[0], 1024, (len(blob) - offset - 2) // 12)
    pointer: int | None = None
    for index in range(count):
        entry = offset + 2 + 12 * index
        tag, kind, n = struct.unpack_from(order + "HHI", blob, entry)
        name = wanted.get(tag)
        if name == "ExifIFD":
            if kind in (4, 13):  # LONG or IFD
                pointer = struct.unpack_from(order + "I", blob, entry + 8)[0]
            continue
        if name is None or kind not in _TYPE_SIZES:
            continue
        size = _TYPE_SIZES[kind] * n
        start = entry + 8 if size <= 4 else struct.unpack_from(order + "I", blob, entry + 8)[0]
        if size > MAX_EXIF_VALUE or start + size > len(blob):
            continue
        out[name] = blob[start : start + size]
    return pointer


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
