"""Whether a file's bytes may hold C2PA data: a manifest store, or a reference to a remote one.

Cheap by design (microseconds for JPEG, PNG and HEIF/AVIF, walked by structure): it decides whether
the c2pa library is imported and run at all, and the XMP reader asks it whether a manifest its XMP
refers to is still there.
"""

from __future__ import annotations

import re

# A C2PA manifest store is a JUMBF superbox whose description box is 'jumd' followed at once by the
# store's UUID, which begins with the bytes "c2pa" (63327061-0011-0010-8000-00AA00389B71; C2PA spec,
# "Manifest store" / ISO/IEC 19566-5). Every embedding (JPEG APP11, PNG caBX, WebP C2PA chunk, BMFF
# uuid box, TIFF tag, GIF extension) keeps those first bytes contiguous. A remote manifest is
# referenced from XMP dcterms:provenance with a URL.
_STORE_MARK = b"jumdc2pa"
_REMOTE_REF = re.compile(rb"\s*(?:=\s*[\"']|>)\s*https?://", re.IGNORECASE)


def _remote_ref(data: bytes, start: int = 0, end: int | None = None) -> bool:
    end = len(data) if end is None else end
    pos = data.find(b"provenance", start, end)
    while pos >= 0:
        if _REMOTE_REF.match(data, pos + 10, end):
            return True
        pos = data.find(b"provenance", pos + 10, end)
    return False


def _jpeg_marker(data: bytes) -> bool | None:
    """Walk the JPEG header segments up to SOS: APP11 holds the store, APP1 the XMP. None if malformed."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata is behind us
            return False
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end <= pos + 3 or end > n:
            return None
        if marker == 0xEB and data.find(_STORE_MARK, pos + 4, end) >= 0:
            return True
        if marker == 0xE1 and _remote_ref(data, pos + 4, end):
            return True
        pos = end
    return None


def _png_marker(data: bytes) -> bool | None:
    """Walk the PNG chunks, skipping image data: caBX holds the store, iTXt/tEXt the XMP."""
    pos, n = 8, len(data)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            return None
        if ctype == b"caBX":
            return True
        if ctype in (b"iTXt", b"tEXt") and _remote_ref(data, pos + 8, end - 4):
            return True
        if ctype == b"IEND":
            return False
        pos = end
    return None


def _bmff_marker(data: bytes) -> bool | None:
    """Walk the top-level ISO BMFF boxes (HEIF, AVIF): the store sits in a top-level 'uuid' box; a
    remote reference is looked for in 'meta' (XMP items kept in mdat are not searched)."""
    pos, n = 0, len(data)
    while pos + 8 <= n:
        size = int.from_bytes(data[pos : pos + 4], "big")
        btype = data[pos + 4 : pos + 8]
        head = 8
        if size == 1:
            if pos + 16 > n:
                return None
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = n - pos
        end = pos + size
        if size < head or end > n:
            return None
        if btype == b"uuid" and data.find(_STORE_MARK, pos + head, end) >= 0:
            return True
        if btype == b"meta" and _remote_ref(data, pos + head, end):
            return True
        pos = end
    return False if pos == n else None


def has_manifest_marker(data: bytes, fmt: str | None = None) -> bool:
    """True when the bytes may hold C2PA data: a manifest store or a remote-manifest reference.

    JPEG, PNG and HEIF/AVIF are walked by structure (microseconds); other formats, and any file whose
    structure surprises the walk, are searched whole.
    """
    walk = {"JPEG": _jpeg_marker, "PNG": _png_marker, "HEIF": _bmff_marker, "AVIF": _bmff_marker}.get(fmt or "")
    if walk is not None:
        found = walk(data)
        if found is not None:
            return found
    return data.find(_STORE_MARK) >= 0 or _remote_ref(data)
