"""PNG text chunks read from the raw bytes: those after the image data (Pillow reads them only on full decode), or all of them when Pillow could not parse the header."""

from __future__ import annotations

import zlib

from fakescope_cli.media import MAX_TEXT_CHUNK

MAX_LATE_TEXT = MAX_TEXT_CHUNK  # bytes of PNG text read from the raw chunks (Pillow's bound)


def png_late_texts(data: bytes, after_idat_only: bool = True) -> dict[str, str]:
    """tEXt/zTXt/iTXt chunks after the image data: Pillow reads those only on full decode.

    With `after_idat_only=False` (Pillow could not parse the header, so it gave no text at all)
    the chunks before the image data are read too. Walks chunk headers only (a seek per chunk);
    text is bounded in total.
    """
    out: dict[str, str] = {}
    pos, seen_idat, budget, steps = 8, False, MAX_LATE_TEXT, 0
    end = len(data)
    while pos + 8 <= end and steps < 200_000:
        steps += 1
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        body_start = pos + 8
        body_end = body_start + length
        if body_end + 4 > end or length > 0x7FFFFFFF:
            break
        if ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            break
        elif (seen_idat or not after_idat_only) and ctype in (b"tEXt", b"zTXt", b"iTXt") \
                and length <= budget:
            parsed = _png_text_chunk(ctype, data[body_start:body_end], budget)
            budget -= max(length, len(parsed[1]) if parsed else 0)  # inflated text counts too
            if parsed is None and ctype != b"tEXt":
                budget = 0  # corrupt or over-long compressed text: stop inflating anything more
            if parsed is not None and parsed[0] not in out:
                out[parsed[0]] = parsed[1]
        pos = body_end + 4
    return out


def _inflate(blob: bytes, limit: int) -> bytes | None:
    try:
        inflater = zlib.decompressobj()
        result = inflater.decompress(blob, limit)
    except zlib.error:
        return None
    return result if not inflater.unconsumed_tail else None


def _png_text_chunk(ctype: bytes, body: bytes, limit: int) -> tuple[str, str] | None:
    key, sep, rest = body.partition(b"\0")
    if not sep or not key or len(key) > 79:
        return None
    name = key.decode("latin-1")
    if ctype == b"tEXt":
        return name, rest.decode("latin-1")
    if ctype == b"zTXt":
        raw = _inflate(rest[1:], limit)
        return (name, raw.decode("latin-1")) if raw is not None else None
    # iTXt: compression flag, method, language\0, translated keyword\0, text
    if len(rest) < 2:
        return None
    flag, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if flag:
        inflated = _inflate(text, limit)
        if inflated is None:
            return None
        text = inflated
    return name, text.decode("utf-8", "replace")
