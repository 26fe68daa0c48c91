"""PNG chunk machinery: walking chunks, checking CRCs, and keeping text chunks within bounds.

Pillow reads PNG text chunks itself, but refuses a whole file for one chunk over its text limits or
one bad ancillary checksum before the image data. These helpers walk the raw chunks (bounded) so
that media.py can hand Pillow a copy it will read, and say what was left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# PNG text limits handed to Pillow. Its defaults (1 MiB per chunk after inflating) reject real
# ComfyUI workflows, which can run to several MiB; a file over a limit fails to open at all, and its
# metadata is lost with it. These stay bounded so that a zTXt/iTXt zip bomb (kilobytes inflating to
# gigabytes) cannot eat the heap: one chunk inflates to at most MAX_TEXT_CHUNK, all of a file's text
# together to at most MAX_TEXT_MEMORY.
MAX_TEXT_MEMORY = 64 << 20
MAX_TEXT_CHUNK = MAX_TEXT_MEMORY // 2

# One bound for every walk over a PNG's chunks (8 KiB IDAT chunks: about 1.6 GB of image data)
_MAX_PNG_CHUNKS = 200_000


def png_chunks(data: bytes, limit: int) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, type) of each whole PNG chunk after the signature, in file order, up to IEND, at
    most `limit` of them; a chunk running past the end of the data stops the walk (damaged or cut)."""
    pos = 8
    for _ in range(limit):
        if pos + 12 > len(data):
            return
        end = pos + 12 + int.from_bytes(data[pos:pos + 4], "big")
        if end > len(data):
            return
        kind = data[pos + 4:pos + 8]
        yield pos, end, kind
        if kind == b"IEND":
            return
        pos = end


def png_crc_mismatches(data: bytes, limit: int | None = None) -> list[str]:
    """Names of PNG chunks whose stored CRC does not match their bytes (Pillow skips IDAT's).

    A mismatch means the file was damaged or edited without updating checksums; the pixels may
    still decode, so it is a warning, not an error. At most `limit` chunks are walked (by default as
    many as every other PNG walk here).
    """
    import zlib

    return [kind.decode("latin-1") for pos, end, kind in png_chunks(data, limit or _MAX_PNG_CHUNKS)
            if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big")]


_PNG_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
# Inflating costs CPU even when the output is thrown away: once this much text has been inflated
# while measuring, later compressed chunks are dropped unmeasured (a file of many bombs stays cheap).
_TEXT_MEASURE_BUDGET = 4 * MAX_TEXT_MEMORY
_INFLATE_STEP = 1 << 20  # measure in pieces: never more than this is held at once


@dataclass(frozen=True)
class SkippedTextChunk:
    """A PNG text chunk left out of the header parse because it inflates past our limits."""

    chunk_type: str  # tEXt, zTXt or iTXt
    keyword: str
    size: int | None  # bytes of text counted (at most limit + 1); None when not measured
    reason: str  # "chunk": over MAX_TEXT_CHUNK; "memory": over MAX_TEXT_MEMORY with the rest;
    # "budget": not measured (measuring budget spent); "all": dropped in the last-resort parse

    def describe(self) -> str:
        name = f"{self.chunk_type} '{self.keyword}'" if self.keyword else self.chunk_type
        if self.reason == "chunk":
            return f"{name} (over {MAX_TEXT_CHUNK >> 20} MiB inflated)"
        if self.reason == "memory":
            return f"{name} (over the {MAX_TEXT_MEMORY >> 20} MiB of all text chunks together)"
        return f"{name} (not inflated)"


def is_text_limit_error(exc: BaseException) -> bool:
    """Pillow refused a PNG because a text chunk crossed MAX_TEXT_CHUNK / MAX_TEXT_MEMORY."""
    text = str(exc)
    return isinstance(exc, ValueError) and ("MAX_TEXT_CHUNK" in text or "MAX_TEXT_MEMORY" in text)


def _inflated_size(blob: bytes, cap: int) -> int:
    """Bytes `blob` inflates to, counting no further than cap + 1; output is discarded piecewise.

    A zlib error counts as empty text, as Pillow treats it (it drops such a chunk's value)."""
    import zlib

    inflater = zlib.decompressobj()
    total, tail = 0, blob
    try:
        while total <= cap and not inflater.eof:
            out = inflater.decompress(tail, min(_INFLATE_STEP, cap + 1 - total))
            tail = inflater.unconsumed_tail
            if not out and not tail:
                break  # input used up (a truncated stream: Pillow keeps what inflated)
            total += len(out)
    except zlib.error:
        return 0 if total <= cap else total
    return total


def _png_text_keyword(body: bytes) -> str:
    keyword = body.partition(b"\0")[0][:79].decode("latin-1")  # PNG keywords are 1-79 Latin-1
    return "".join(c if c.isprintable() else "?" for c in keyword)


def _png_text_size(ctype: bytes, body: bytes, cap: int) -> tuple[str, int]:
    """(keyword, text bytes) of one text chunk as Pillow would count them; the count stops at cap + 1."""
    name, rest = _png_text_keyword(body), body.partition(b"\0")[2]
    if ctype == b"tEXt":
        return name, len(rest)
    if ctype == b"zTXt":
        return name, _inflated_size(rest[1:], cap) if rest[:1] == b"\0" else 0
    # iTXt: compression flag, method, language\0, translated keyword\0, text
    if len(rest) < 2:
        return name, 0
    flag, method, parts = rest[0], rest[1], rest[2:].split(b"\0", 2)
    if len(parts) < 3:
        return name, 0
    if flag == 0:
        return name, len(parts[2])  # UTF-8 bytes: at least Pillow's character count
    return name, _inflated_size(parts[2], cap) if method == 0 else 0


def png_without_big_text(data: bytes, drop_all: bool = False) -> tuple[bytes, list[SkippedTextChunk]]:
    """A copy of a PNG without the text chunks that Pillow's text limits would refuse.

    Chunks are walked in file order, as Pillow counts them: one over MAX_TEXT_CHUNK, or one that
    would take the running total past MAX_TEXT_MEMORY, is removed; with `drop_all` every text chunk
    is. Kept chunks are copied byte for byte (CRCs included). Nothing is inflated past the limits.
    """
    view = memoryview(data)
    parts: list[memoryview] = [view[:8]]
    skipped: list[SkippedTextChunk] = []
    kept_from, memory, measured = 8, 0, 0
    # A damaged or cut chunk ends the walk: the rest is left as it is, for Pillow to judge.
    for pos, end, ctype in png_chunks(data, _MAX_PNG_CHUNKS):
        if ctype in _PNG_TEXT_TYPES:
            body = data[pos + 8:end - 4]
            reason: str | None = "all" if drop_all else None
            if reason is None and ctype != b"tEXt" and measured > _TEXT_MEASURE_BUDGET:
                reason = "budget"
            if reason is None:
                # Past the room left in the total it is dropped anyway: measure no further.
                cap = min(MAX_TEXT_CHUNK, MAX_TEXT_MEMORY - memory)
                keyword, size = _png_text_size(ctype, body, cap)
                measured += size
                if size > MAX_TEXT_CHUNK:
                    reason = "chunk"
                elif memory + size > MAX_TEXT_MEMORY:
                    reason = "memory"
                else:
                    memory += size
            else:
                keyword, size = _png_text_keyword(body), None
            if reason is not None:
                parts.append(view[kept_from:pos])
                kept_from = end
                skipped.append(SkippedTextChunk(ctype.decode("latin-1"), keyword, size, reason))
    parts.append(view[kept_from:])
    return b"".join(parts), skipped


def png_with_ancillary_crcs_fixed(data: bytes, limit: int = _MAX_PNG_CHUNKS) -> bytes | None:
    """A copy of a PNG whose ancillary chunks with a wrong CRC carry the right one, or None when none
    is wrong.

    Pillow refuses the whole file for one bad checksum in an ancillary chunk (lower-case first letter:
    tEXt, tIME, gAMA…) before the image data, but reads one after it: fixing the copy's checksums gives
    both places the same outcome (the content read, the png-crc warning saying it was damaged)."""
    import zlib

    fixed: bytearray | None = None
    for pos, end, kind in png_chunks(data, limit):
        crc = zlib.crc32(data[pos + 4:end - 4])
        if kind[0] & 0x20 and crc != int.from_bytes(data[end - 4:end], "big"):
            fixed = fixed if fixed is not None else bytearray(data)
            fixed[end - 4:end] = crc.to_bytes(4, "big")
    return bytes(fixed) if fixed is not None else None


def text_limit_message(text: str) -> str:
    return (f"PNG text chunks inflate past fakescope's limit ({MAX_TEXT_CHUNK >> 20} MiB per chunk, "
            f"{MAX_TEXT_MEMORY >> 20} MiB in all; a zip-bomb guard): {text}")
