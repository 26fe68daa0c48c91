"""A small, bounded ISO base media file format (MP4, MOV, M4V, 3GP) box walker and metadata reader.

Only what provenance and custody need is read: brands, duration, tracks (codec, size), QuickTime and
iTunes-style metadata (udta '©xxx' atoms, meta/keys/ilst with com.apple.quicktime.* keys) and XMP
(the XMP 'uuid' box, QuickTime's udta 'XMP_' atom). Declared sizes are never trusted past the bytes
that are there (nor past the enclosing box); depth and box count are bounded, so a hostile file costs
at most MAX_BOXES steps. Box layouts: ISO/IEC 14496-12 (boxes, mvhd, tkhd, mdhd, hdlr, stsd), Apple's
QuickTime File Format reference (udta text atoms, metadata 'keys'/'ilst'/'data'), XMP Specification
Part 3 §1.1.4 (the XMP uuid BE7ACFCB-97A9-42E8-9C71-999491E3AFAC).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 12
MAX_BOXES = 20_000  # boxes visited per file, all depths together
MAX_TEXT = 1 << 20  # bytes read of one metadata value (a ComfyUI workflow in 'comment' runs to ~100 KB)
MAX_TAG_BYTES = 4 << 20  # all metadata values of a file together
MAX_XMP = 4 << 20  # bytes of one XMP packet
MAX_TAGS = 256

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
C2PA_UUID = bytes.fromhex("D8FEC3D61B0E483C92975828877EC481")

# Boxes whose payload is a list of boxes (after a 4-byte version/flags for 'meta' in ISO files).
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex",
                         b"moof", b"traf", b"meta", b"ilst", b"tref"})
_EPOCH_1904 = _dt.datetime(1904, 1, 1, tzinfo=_dt.timezone.utc)


@dataclass(frozen=True)
class Box:
    kind: bytes  # four characters, e.g. b"moov"
    start: int  # offset of the box header
    body: int  # offset of the payload
    end: int  # offset after the box, never past the bytes that are there
    depth: int
    cut: bool = False  # its declared size ran past the enclosing box or the file


class WalkBudget:
    """Boxes left to visit in one file; shared by nested walks."""

    def __init__(self, boxes: int = MAX_BOXES) -> None:
        self.left = boxes
        self.exhausted = False


def boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0,
          budget: WalkBudget | None = None) -> Iterator[Box]:
    """The boxes in data[start:end], in order; a box cut short is yielded with cut=True and ends the walk."""
    budget = budget or WalkBudget()
    end = len(data) if end is None else min(end, len(data))
    pos = start
    while pos + 8 <= end:
        if budget.left <= 0:
            budget.exhausted = True
            return
        budget.left -= 1
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        head = 8
        if size == 1:
            if pos + 16 > end:
                yield Box(kind, pos, end, end, depth, True)
                return
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = end - pos  # "to the end of the file" (or of the enclosing box)
        if kind == b"uuid":
            head += 16
        if size < head:
            yield Box(kind, pos, min(pos + head, end), end, depth, True)
            return
        box_end = pos + size
        if box_end > end:
            yield Box(kind, pos, min(pos + head, end), end, depth, True)
            return
        yield Box(kind, pos, pos + head, box_end, depth)
        pos = box_end


def walk(data: bytes, budget: WalkBudget | None = None) -> Iterator[Box]:
    """Every box of the file, depth first, within MAX_DEPTH and the budget."""
    budget = budget or WalkBudget()
    stack: list[Iterator[Box]] = [boxes(data, 0, None, 0, budget)]
    while stack:
        box = next(stack[-1], None)
        if box is None:
            stack.pop()
            continue
        yield box
        if box.kind in _CONTAINERS and not box.cut and box.depth + 1 < MAX_DEPTH:
            body = box.body
            if box.kind == b"meta" and data[body + 4:body + 8] != b"hdlr":
                body += 4  # ISO 'meta' is a full box; QuickTime's 'meta' (starting with 'hdlr') is not
            stack.append(boxes(data, body, box.end, box.depth + 1, budget))
        elif box.kind == b"stsd" and not box.cut and box.depth + 1 < MAX_DEPTH:
            stack.append(boxes(data, box.body + 8, box.end, box.depth + 1, budget))  # sample entries


@dataclass
class Track:
    handler: str | None = None  # "vide", "soun", "meta" …
    codec: str | None = None  # first sample entry: "avc1", "hvc1", "vp09", "mp4a" …
    width: int | None = None
    height: int | None = None
    timescale: int | None = None
    duration: int | None = None


@dataclass
class BmffInfo:
    major_brand: str | None = None
    brands: list[str] = field(default_factory=list)
    duration_s: float | None = None
    creation_time: str | None = None
    tracks: list[Track] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # metadata key -> text, as the file names them
    xmp: list[bytes] = field(default_factory=list)  # XMP packets, in file order
    c2pa_box: bool = False  # a C2PA manifest-store uuid box is present
    problems: list[str] = field(default_factory=list)  # structure that did not parse (cut, over budget)
    cut: bool = False  # a box's declared size runs past the data: the file is truncated (or forged)

    @property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.handler == "vide"), None)


def _u(data: bytes, pos: int, n: int) -> int:
    return int.from_bytes(data[pos:pos + n], "big")


def _text(raw: bytes) -> str:
    text = raw.split(b"\0", 1)[0][:MAX_TEXT].decode("utf-8", "replace")
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text).strip()


def _fourcc(raw: bytes) -> str:
    return raw.decode("latin-1")


def _time_1904(seconds: int) -> str | None:
    if not seconds:
        return None
    try:
        return (_EPOCH_1904 + _dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return None


def _data_value(data: bytes, box: Box) -> str | None:
    """The value of an iTunes/QuickTime metadata 'data' box: text (UTF-8/16) or a number."""
    if box.end - box.body < 8:
        return None
    type_code = _u(data, box.body, 4) & 0xFFFFFF
    raw = data[box.body + 8:box.end]
    if type_code in (1, 4):  # UTF-8 (4: UTF-8 sort)
        return _text(raw)
    if type_code in (2, 5):  # UTF-16 BE
        return _text(raw.decode("utf-16-be", "replace").encode("utf-8"))
    if type_code in (21, 22) and 0 < len(raw) <= 8:  # signed / unsigned integer
        return str(int.from_bytes(raw, "big", signed=type_code == 21))
    return None


def read(data: bytes) -> BmffInfo:
    """What the boxes of an MP4/MOV say; never raises on bad data (problems lists what did not parse)."""
    info = BmffInfo()
    budget = WalkBudget()
    track: Track | None = None
    keys: list[str] = []  # QuickTime 'keys' of the current 'meta', 1-based in 'ilst'
    path: list[bytes] = []
    for box in walk(data, budget):
        del path[box.depth:]
        path.append(box.kind)
        if box.cut:
            info.cut = True
            info.problems.append(f"box '{_fourcc(box.kind)}' at offset {box.start} runs past the end of "
                                 "the data (file truncated or size forged)")
        body, end, kind = box.body, box.end, box.kind
        parent = path[-2] if len(path) > 1 else None
        if kind == b"ftyp" and end - body >= 8:
            info.major_brand = _fourcc(data[body:body + 4])
            info.brands = [_fourcc(data[i:i + 4]) for i in range(body + 8, min(end, body + 8 + 4 * 32) - 3, 4)]
        elif kind == b"mvhd" and end - body >= 32:
            version = data[body]
            if version == 1:
                created, scale, dur = _u(data, body + 4, 8), _u(data, body + 20, 4), _u(data, body + 24, 8)
            else:
                created, scale, dur = _u(data, body + 4, 4), _u(data, body + 12, 4), _u(data, body + 16, 4)
            if scale and dur not in (0, (1 << 32) - 1, (1 << 64) - 1):  # all ones: "unknown"
                info.duration_s = dur / scale
            info.creation_time = _time_1904(created)
        elif kind == b"trak":
            track = Track()
            info.tracks.append(track)
        elif kind == b"tkhd" and track is not None and end - body >= 84:
            off = body + (88 if data[body] == 1 else 76)
            if end >= off + 8:
                track.width, track.height = _u(data, off, 4) >> 16, _u(data, off + 4, 4) >> 16
        elif kind == b"mdhd" and track is not None and end - body >= 24:
            if data[body] == 1:
                track.timescale, track.duration = _u(data, body + 20, 4), _u(data, body + 24, 8)
            else:
                track.timescale, track.duration = _u(data, body + 12, 4), _u(data, body + 16, 4)
        elif kind == b"hdlr" and end - body >= 12:
            handler = _fourcc(data[body + 8:body + 12])
            if track is not None and parent == b"mdia":
                track.handler = handler
        elif parent == b"stsd" and track is not None and track.codec is None:
            track.codec = _fourcc(kind).strip()
            if track.handler == "vide" and end - body >= 28:  # VisualSampleEntry: width, height at +24
                # The larger of the presentation (tkhd) and coded sizes: the one a bound must hold for.
                w, h = _u(data, body + 24, 2), _u(data, body + 26, 2)
                track.width, track.height = max(w, track.width or 0) or None, max(h, track.height or 0) or None
        elif kind == b"keys" and end - body >= 8:
            keys = _keys(data, body + 8, end, _u(data, body + 4, 4))
        elif parent == b"ilst":
            _ilst_item(data, box, keys, info, budget)
        elif parent == b"udta" and kind[:1] == b"\xa9" and not box.cut:
            _udta_text(data, box, info, budget)
        elif kind == b"XMP_" and parent == b"udta" and not box.cut:
            info.xmp.append(data[body:min(end, body + MAX_XMP)])
        elif kind == b"uuid" and not box.cut:
            uid = data[box.start + (16 if _u(data, box.start, 4) == 1 else 8):body]
            if uid == XMP_UUID:
                info.xmp.append(data[body:min(end, body + MAX_XMP)])
            elif uid == C2PA_UUID:
                info.c2pa_box = True
        if kind == b"meta":
            keys = []
    if budget.exhausted:
        info.problems.append(f"more than {MAX_BOXES} boxes: the rest of the file was not walked")
    return info


def _keys(data: bytes, pos: int, end: int, count: int) -> list[str]:
    out: list[str] = []
    for _ in range(min(count, MAX_TAGS)):
        if pos + 8 > end:
            break
        size = _u(data, pos, 4)
        if size < 8 or pos + size > end:
            break
        out.append(_text(data[pos + 8:pos + size])[:200])  # after size and namespace ('mdta')
        pos += size
    return out


def _add_tag(info: BmffInfo, key: str, value: str | None) -> None:
    if value and len(info.tags) < MAX_TAGS and key not in info.tags \
            and sum(map(len, info.tags.values())) + len(value) <= MAX_TAG_BYTES:
        info.tags[key] = value


def _ilst_item(data: bytes, box: Box, keys: list[str], info: BmffInfo, budget: WalkBudget) -> None:
    """One ilst entry: its type is a 1-based index into 'keys' (QuickTime) or an atom name (iTunes)."""
    index = int.from_bytes(box.kind, "big")
    key = keys[index - 1] if keys and 0 < index <= len(keys) else _atom_name(box.kind)
    for child in boxes(data, box.body, box.end, box.depth + 1, budget):
        if child.kind == b"data" and not child.cut:
            _add_tag(info, key, _data_value(data, child))
            return


def _udta_text(data: bytes, box: Box, info: BmffInfo, budget: WalkBudget) -> None:
    """A QuickTime udta text atom ('©too', '©mak' …): 16-bit size, 16-bit language, text; or an
    iTunes-style atom holding a 'data' box."""
    body = box.body
    key = _atom_name(box.kind)
    if data[body + 4:body + 8] == b"data":
        for child in boxes(data, body, box.end, box.depth + 1, budget):
            if child.kind == b"data" and not child.cut:
                _add_tag(info, key, _data_value(data, child))
                return
        return
    if box.end - body >= 4:
        size = _u(data, body, 2)
        _add_tag(info, key, _text(data[body + 4:min(box.end, body + 4 + size)]))


def _atom_name(kind: bytes) -> str:
    return kind.decode("latin-1").replace("\xa9", "©")


def summary(info: BmffInfo) -> dict[str, Any]:
    """The walker's findings as JSON-ready facts (for tests and the fuzz harness)."""
    return {"major_brand": info.major_brand, "duration_s": info.duration_s, "tracks": len(info.tracks),
            "tags": dict(info.tags), "xmp": len(info.xmp), "c2pa_box": info.c2pa_box,
            "problems": list(info.problems)}
